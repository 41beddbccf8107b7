package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/drctl/drctl/internal/devserver"
	"github.com/drctl/drctl/internal/lab"
	"github.com/drctl/drctl/internal/operator"
	"github.com/drctl/drctl/runbooks"
	drworker "github.com/drctl/drctl/worker"
	"github.com/drctl/drctl/workflows"
)

// The demo plays two people, both listed as approvers by the shipped
// runbooks: the two-person rule refuses the one who started the run.
const (
	demoStarter  = "oncall-sre"
	demoApprover = "oncall-dba"
)

func (a *app) demoCmd() *cobra.Command {
	var (
		dir      string
		yes      bool
		failback bool
		keep     bool
	)
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Fail a two-site lab over for real (site-failover.yaml) under write load, with a report; then fail back",
		Long: "demo starts a Temporal dev server (bin/temporal, free ports, state in memory, web UI), a worker\n" +
			"and the two-site lab (see drctl lab), keeps writing through the app while it runs\n" +
			"runbooks/site-failover.yaml for real — fence east, approval, promote west, DNS, traffic,\n" +
			"verify — and prints live progress and a report: RTO, RPO, step timings, and the writes\n" +
			"the app acknowledged against the rows present on west. The approval is asked on the\n" +
			"terminal as a second person (--yes approves). Then it offers runbooks/failback.yaml\n" +
			"(--failback runs it without asking). Everything it started is stopped at the end.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			d := &demo{app: a, out: cmd.OutOrStdout(), in: bufio.NewReader(cmd.InOrStdin()), dir: dir, yes: yes}
			return d.run(cmd.Context(), failback, keep)
		},
	}
	cmd.Flags().StringVar(&dir, "runbooks", "runbooks", "directory of the shipped runbooks (site-failover.yaml, failback.yaml)")
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "approve every gate without asking (as the second person)")
	cmd.Flags().BoolVar(&failback, "failback", false, "run runbooks/failback.yaml after the failover without asking")
	cmd.Flags().BoolVar(&keep, "keep", false, "keep the dev server, its UI, the worker and the lab running after the runs, until Ctrl-C")
	return cmd
}

type demo struct {
	app *app
	out io.Writer
	in  *bufio.Reader
	dir string
	yes bool

	// lines carries the terminal's lines from the one goroutine that reads
	// it, so a prompt given up (its gate decided elsewhere) never races the
	// next prompt for the same input.
	lines     chan string
	readStart sync.Once

	mu sync.Mutex // serialises prompts and progress lines
	ui string
}

func (d *demo) printf(format string, args ...any) {
	d.mu.Lock()
	defer d.mu.Unlock()
	fmt.Fprintf(d.out, format, args...)
}

func (d *demo) run(ctx context.Context, failback, keep bool) error {
	c, err := d.app.config()
	if err != nil {
		return err
	}
	if err := lab.Install(ctx, d.out); err != nil {
		return err
	}
	bin, err := lab.EnsureTemporal(ctx, d.out)
	if err != nil {
		return err
	}
	failover, err := d.app.load(filepath.Join(d.dir, "site-failover.yaml"))
	if err != nil {
		return err
	}
	failbackRB, err := d.app.load(filepath.Join(d.dir, "failback.yaml"))
	if err != nil {
		return err
	}

	start := time.Now()
	srv, err := devserver.Start(ctx, devserver.Options{Binary: bin, UI: true})
	if err != nil {
		return err
	}
	defer srv.Stop()
	d.ui = uiFor(srv.Address)
	d.printf("Temporal dev server on %s (web UI %s)\n", srv.Address, d.ui)

	l, err := lab.Start(ctx, lab.Options{})
	if err != nil {
		return err
	}
	defer func() {
		if err := l.Close(); err != nil {
			d.printf("stopping the lab: %v\n", err)
		}
	}()
	d.printf("lab up in %s (state in %s):\n", time.Since(start).Round(time.Millisecond), l.Dir)
	d.printf("  east: postgres primary %s, app %s; west: postgres standby %s, app %s\n",
		l.Node(lab.East), l.Apps[lab.East].Addr(), l.Node(lab.West), l.Apps[lab.West].Addr())
	d.printf("  DNS %s on %s: app -> %s, db -> %s; HAProxy %s sends app traffic to east1\n",
		l.Zone, l.DNS.Addr(), lab.EastAppAddr, lab.EastDBAddr, l.FrontendURL())

	// The worker runs in this process: it gets the lab's secrets the way a
	// real worker gets them, from its environment.
	for k, v := range l.Secrets() {
		if err := os.Setenv(k, v); err != nil {
			return err
		}
	}
	c.Temporal.Address = srv.Address
	c.Temporal.TaskQueue = "drctl-demo"
	reg, err := d.app.registry()
	if err != nil {
		return err
	}
	w := drworker.New(srv.Client(), c, reg)
	if err := w.Start(); err != nil {
		return err
	}
	defer w.Stop()
	starter := &operator.Operator{Client: srv.Client(), TaskQueue: c.Temporal.TaskQueue, Identity: demoStarter}
	second := &operator.Operator{Client: srv.Client(), TaskQueue: c.Temporal.TaskQueue, Identity: demoApprover}

	d.printf("\n== failover: %s, as %s, while 2 writers POST %s/write ==\n", failover.File, demoStarter, l.FrontendURL())
	res, err := d.exercise(ctx, l, failover, starter, second, "drctl demo: east is lost")
	if err != nil {
		return err
	}
	if err := d.verdict(res, lab.West); err != nil {
		return err
	}

	if !failback && !d.yes {
		failback = d.ask(ctx, "\nfail back to east now (runbooks/failback.yaml)? [y/N] ")
	}
	if failback {
		d.printf("\n== failback: %s, as %s ==\n", failbackRB.File, demoStarter)
		back, err := d.exercise(ctx, l, failbackRB, starter, second, "drctl demo: east is back")
		if err != nil {
			return err
		}
		if err := d.verdict(back, lab.East); err != nil {
			return err
		}
		// Nothing acknowledged in either run may be missing now.
		ids := append(res.Load.IDs(), back.Load.IDs()...)
		n, err := lab.Present(ctx, l.AppDSN(lab.East), ids)
		if err != nil {
			return err
		}
		d.printf("\nafter failover and failback: %d of the %d writes acknowledged during both runs are on east's database\n", n, len(ids))
		if n != len(ids) {
			return fmt.Errorf("%d acknowledged writes lost", len(ids)-n)
		}
	}
	if keep && ctx.Err() == nil {
		d.printf("\n--keep: the dev server (UI %s), the worker and the lab stay up until Ctrl-C\n", d.ui)
		<-ctx.Done()
	}
	return nil
}

// exercise runs one runbook through lab.Exercise with live progress, the
// approval played by two people, and prints the report and the lab's view.
func (d *demo) exercise(ctx context.Context, l *lab.Lab, rb *runbooks.Runbook, starter, second *operator.Operator, reason string) (*lab.Outcome, error) {
	f := &follower{out: d.out}
	lastLoad := time.Now()
	res, err := l.Exercise(ctx, rb, lab.ExerciseOptions{
		Operator: starter,
		Reason:   reason,
		Progress: func(rep *workflows.Report, load *lab.Load) {
			d.mu.Lock()
			defer d.mu.Unlock()
			f.update(rep)
			if time.Since(lastLoad) >= 2*time.Second {
				lastLoad = time.Now()
				st := load.Stats()
				fmt.Fprintf(d.out, "           load: %d writes acknowledged (%s), %d refused\n", len(st.Acks), bySite(st), st.Failed)
			}
		},
		Approve: func(ctx context.Context, id string, gate workflows.StepReport) {
			d.approve(ctx, starter, second, id, gate)
		},
	})
	if err != nil {
		if res != nil && res.Report != nil {
			printReport(d.out, res.Report)
		}
		return nil, fmt.Errorf("%s: %w", rb.Name, err)
	}
	d.mu.Lock()
	printReport(d.out, res.Report)
	d.mu.Unlock()
	d.printOutcome(res)
	return res, nil
}

// approve plays the gate: the starter's approval is refused by the
// two-person rule; the second person approves if --yes or the terminal
// says so, and rejects otherwise.
func (d *demo) approve(ctx context.Context, starter, second *operator.Operator, id string, gate workflows.StepReport) {
	if _, err := starter.Decide(ctx, id, gate.ID, true, ""); err != nil {
		d.printf("  demo: %s approving %s is refused: %v\n", starter.Identity, gate.ID, err)
	}
	ok, reason := true, "drctl demo --yes"
	if !d.yes {
		msg := ""
		if gate.Approval != nil {
			msg = gate.Approval.Message
		}
		ok = d.ask(ctx, fmt.Sprintf("\n  %s\n  approve %s as %s? [y/N] ", msg, gate.ID, second.Identity))
		reason = "approved at the terminal"
		if !ok {
			reason = "declined at the terminal"
		}
	}
	if _, err := second.Decide(ctx, id, gate.ID, ok, reason); err != nil && ctx.Err() == nil {
		d.printf("  demo: %s deciding %s failed: %v\n", second.Identity, gate.ID, err)
	}
}

// ask prompts on the terminal and reads a yes or no (default no; end of
// input, or ctx ending first, is no).
func (d *demo) ask(ctx context.Context, prompt string) bool {
	d.readStart.Do(func() {
		d.lines = make(chan string)
		go func() {
			defer close(d.lines)
			for {
				line, err := d.in.ReadString('\n')
				if line != "" {
					d.lines <- line
				}
				if err != nil {
					return
				}
			}
		}()
	})
	d.mu.Lock()
	fmt.Fprint(d.out, prompt)
	d.mu.Unlock()
	select {
	case <-ctx.Done():
		return false
	case line := <-d.lines:
		switch strings.ToLower(strings.TrimSpace(line)) {
		case "y", "yes":
			return true
		}
		return false
	}
}

func (d *demo) printOutcome(res *lab.Outcome) {
	d.mu.Lock()
	defer d.mu.Unlock()
	w := d.out
	st := res.Load
	fmt.Fprintf(w, "writes: %d acknowledged (%s), %d refused while the database moved; longest gap between acknowledged writes %s\n",
		len(st.Acks), bySite(st), st.Failed, st.WriteGap().Round(time.Millisecond))
	if !res.FenceAt.IsZero() {
		fmt.Fprintf(w, "        %d acknowledged before the fence at +%s\n", res.AckedBeforeFence, res.FenceAt.Sub(res.Report.StartedAt).Round(time.Millisecond))
	}
	fmt.Fprintf(w, "rows:   %d of %d acknowledged writes present on %s's database (the primary now): ", res.Present, len(st.Acks), res.Primary)
	if res.Lost() == 0 {
		fmt.Fprintln(w, "nothing committed was lost")
	} else {
		fmt.Fprintf(w, "%d LOST\n", res.Lost())
	}
	fmt.Fprintf(w, "DNS:    app -> %s (%s), db -> %s (%s), answered by the zone's authoritative server\n",
		strings.Join(res.DNSApp, ","), lab.SiteOf(firstOf(res.DNSApp)), strings.Join(res.DNSDB, ","), lab.SiteOf(firstOf(res.DNSDB)))
	fmt.Fprintf(w, "HAProxy: requests land on %s's app, which writes to %s's database\n", res.Served.Site, res.Served.DBSite)
	fmt.Fprintf(w, "the run in the Temporal UI: %s/namespaces/default/workflows/%s/%s/history\n", d.ui, res.WorkflowID, res.Report.RunID)
}

// verdict fails the demo unless the run succeeded, lost nothing and left
// the app writing on site.
func (d *demo) verdict(res *lab.Outcome, site string) error {
	var problems []string
	if res.Report.State != workflows.StateSucceeded {
		problems = append(problems, "the run "+res.Report.State)
	}
	if res.Lost() != 0 {
		problems = append(problems, fmt.Sprintf("%d acknowledged writes missing", res.Lost()))
	}
	if res.Primary != site || res.Served.DBSite != site {
		problems = append(problems, fmt.Sprintf("the app writes on %s's database (primary: %s), not %s", res.Served.DBSite, res.Primary, site))
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}

func bySite(st lab.LoadStats) string {
	counts := st.BySite()
	sites := make([]string, 0, len(counts))
	for s := range counts {
		sites = append(sites, s)
	}
	sort.Strings(sites)
	parts := make([]string, len(sites))
	for i, s := range sites {
		parts[i] = fmt.Sprintf("%d on %s", counts[s], s)
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

func firstOf(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[0]
}
