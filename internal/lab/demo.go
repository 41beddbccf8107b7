//go:build linux

package lab

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/drctl/drctl/internal/config"
	"github.com/drctl/drctl/internal/devserver"
	"github.com/drctl/drctl/internal/operator"
	"github.com/drctl/drctl/runbooks"
	"github.com/drctl/drctl/worker"
	"github.com/drctl/drctl/workflows"
)

// The demo plays two people, both listed as approvers by the shipped
// runbooks: the two-person rule refuses the one who started the run.
const (
	DemoStarter  = "oncall-sre"
	DemoApprover = "oncall-dba"
)

// DemoTaskQueue is the task queue of the demo's worker.
const DemoTaskQueue = "drctl-demo"

// DemoOptions configures Demo.
type DemoOptions struct {
	// Config is the worker's configuration; the demo points it at its own
	// dev server and DemoTaskQueue.
	Config config.Config
	// Failover and Failback are the runbooks it runs (the shipped
	// site-failover.yaml and failback.yaml). Both are required.
	Failover, Failback *runbooks.Runbook
	// Yes approves every gate as the second person without asking.
	Yes bool
	// RunFailback runs Failback after the failover without asking; when
	// neither it nor Yes is set the demo asks.
	RunFailback bool
	// Keep leaves the dev server, the worker and the lab up after the runs
	// until ctx ends.
	Keep bool
	// In answers the demo's questions (approve? fail back?); nil or its end
	// answers no.
	In io.Reader
	// Out receives everything the demo shows. Required.
	Out io.Writer
	// Follow returns, for each run, what prints the run's progress given
	// every report read while it runs; Report prints a run's final report.
	// Both write to Out and are called one at a time with everything else
	// the demo writes there. Required.
	Follow func() func(*workflows.Report)
	Report func(*workflows.Report)
}

// Demo is `drctl demo`: it installs what the lab needs, starts a Temporal
// dev server (free ports, state in memory, web UI), the lab and a worker
// holding the lab's secrets, and runs Failover for real under write load,
// with the approval played by two people; then, if asked to, Failback. It
// measures each run from outside (writes acknowledged against rows
// present, DNS, where HAProxy sends requests) and fails unless the run
// succeeded, lost nothing and left the app writing on the expected site.
// Everything it started is stopped before it returns.
func Demo(ctx context.Context, o DemoOptions) error {
	in := o.In
	if in == nil {
		in = strings.NewReader("")
	}
	d := &demo{o: o, in: bufio.NewReader(in)}
	return d.run(ctx)
}

type demo struct {
	o  DemoOptions
	in *bufio.Reader
	ui string // the dev server's web UI

	// lines carries the terminal's lines from the one goroutine that reads
	// it, so a prompt given up (its gate decided elsewhere) never races the
	// next prompt for the same input.
	lines     chan string
	readStart sync.Once

	mu sync.Mutex // serialises prompts and progress lines
}

func (d *demo) printf(format string, args ...any) {
	d.mu.Lock()
	defer d.mu.Unlock()
	fmt.Fprintf(d.o.Out, format, args...)
}

func (d *demo) run(ctx context.Context) error {
	if err := Install(ctx, d.o.Out); err != nil {
		return err
	}
	bin, err := EnsureTemporal(ctx, d.o.Out)
	if err != nil {
		return err
	}

	start := time.Now()
	srv, err := devserver.Start(ctx, devserver.Options{Binary: bin, UI: true})
	if err != nil {
		return err
	}
	defer srv.Stop()
	d.ui = srv.UIURL
	d.printf("Temporal dev server on %s (web UI %s)\n", srv.Address, d.ui)

	l, err := Start(ctx, Options{})
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
		l.Node(East), l.Apps[East].Addr(), l.Node(West), l.Apps[West].Addr())
	d.printf("  DNS %s on %s: app -> %s, db -> %s; HAProxy %s sends app traffic to east1\n",
		l.Zone, l.DNS.Addr(), EastAppAddr, EastDBAddr, l.FrontendURL())

	// The worker runs in this process and is handed the lab's secrets; a
	// real worker reads them from its environment.
	c := d.o.Config
	c.Temporal.Address = srv.Address
	c.Temporal.TaskQueue = DemoTaskQueue
	c.Worker.Sites = Sites
	w, err := worker.Start(ctx, c, worker.Options{Client: srv.Client(), Secrets: l.Secrets()})
	if err != nil {
		return err
	}
	defer w.Stop()
	starter := &operator.Operator{Client: srv.Client(), TaskQueue: c.Temporal.TaskQueue, Identity: DemoStarter}
	second := &operator.Operator{Client: srv.Client(), TaskQueue: c.Temporal.TaskQueue, Identity: DemoApprover}

	d.printf("\n== failover: %s, as %s, while 2 writers POST %s/write ==\n", d.o.Failover.File, DemoStarter, l.FrontendURL())
	res, err := d.exercise(ctx, l, d.o.Failover, starter, second, "drctl demo: east is lost")
	if err != nil {
		return err
	}
	if err := res.verdict(West); err != nil {
		return err
	}

	failback := d.o.RunFailback
	if !failback && !d.o.Yes {
		failback = d.ask(ctx, "\nfail back to east now (runbooks/failback.yaml)? [y/N] ")
	}
	if failback {
		d.printf("\n== failback: %s, as %s ==\n", d.o.Failback.File, DemoStarter)
		back, err := d.exercise(ctx, l, d.o.Failback, starter, second, "drctl demo: east is back")
		if err != nil {
			return err
		}
		if err := back.verdict(East); err != nil {
			return err
		}
		// Nothing acknowledged in either run may be missing now.
		ids := append(res.Load.IDs(), back.Load.IDs()...)
		n, err := Present(ctx, l.AppDSN(East), ids)
		if err != nil {
			return err
		}
		d.printf("\nafter failover and failback: %d of the %d writes acknowledged during both runs are on east's database\n", n, len(ids))
		if n != len(ids) {
			return fmt.Errorf("%d acknowledged writes lost", len(ids)-n)
		}
	}
	if d.o.Keep && ctx.Err() == nil {
		d.printf("\n--keep: the dev server (UI %s), the worker and the lab stay up until Ctrl-C\n", d.ui)
		<-ctx.Done()
	}
	return nil
}

// exercise runs one runbook through Exercise with live progress, the
// approval played by two people, and prints the report and the lab's view.
func (d *demo) exercise(ctx context.Context, l *Lab, rb *runbooks.Runbook, starter, second *operator.Operator, reason string) (*Outcome, error) {
	progress := d.o.Follow()
	lastLoad := time.Now()
	res, err := l.Exercise(ctx, rb, ExerciseOptions{
		Operator: starter,
		Reason:   reason,
		Progress: func(rep *workflows.Report, load *Load) {
			d.mu.Lock()
			defer d.mu.Unlock()
			progress(rep)
			if time.Since(lastLoad) >= 2*time.Second {
				lastLoad = time.Now()
				st := load.Stats()
				fmt.Fprintf(d.o.Out, "           load: %d writes acknowledged (%s), %d refused\n", len(st.Acks), st.bySite(), st.Failed)
			}
		},
		Approve: func(ctx context.Context, id string, gate workflows.StepReport) {
			d.approve(ctx, starter, second, id, gate)
		},
	})
	if err != nil {
		if res != nil && res.Report != nil {
			d.report(res.Report)
		}
		return nil, fmt.Errorf("%s: %w", rb.Name, err)
	}
	d.report(res.Report)
	d.printOutcome(res)
	return res, nil
}

func (d *demo) report(rep *workflows.Report) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.o.Report(rep)
}

// approve plays the gate: the starter's approval is refused by the
// two-person rule; the second person approves if Yes or the terminal says
// so, and rejects otherwise.
func (d *demo) approve(ctx context.Context, starter, second *operator.Operator, id string, gate workflows.StepReport) {
	if _, err := starter.Decide(ctx, id, gate.ID, true, ""); err != nil {
		d.printf("  demo: %s approving %s is refused: %v\n", starter.Identity, gate.ID, err)
	}
	ok, reason := true, "drctl demo --yes"
	if !d.o.Yes {
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

// ask prompts on Out and reads a yes or no from In (default no; end of
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
	d.printf("%s", prompt)
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

func (d *demo) printOutcome(res *Outcome) {
	d.mu.Lock()
	defer d.mu.Unlock()
	w := d.o.Out
	st := res.Load
	fmt.Fprintf(w, "writes: %d acknowledged (%s), %d refused while the database moved; longest gap between acknowledged writes %s\n",
		len(st.Acks), st.bySite(), st.Failed, st.WriteGap().Round(time.Millisecond))
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
		strings.Join(res.DNSApp, ","), SiteOf(first(res.DNSApp)), strings.Join(res.DNSDB, ","), SiteOf(first(res.DNSDB)))
	fmt.Fprintf(w, "HAProxy: requests land on %s's app, which writes to %s's database\n", res.Served.Site, res.Served.DBSite)
	fmt.Fprintf(w, "the run in the Temporal UI: %s/namespaces/default/workflows/%s/%s/history\n", d.ui, res.WorkflowID, res.Report.RunID)
}

// verdict is nil if the run succeeded, lost nothing and left the app
// writing on site; otherwise it says what went wrong.
func (o *Outcome) verdict(site string) error {
	var problems []string
	if o.Report.State != workflows.StateSucceeded {
		problems = append(problems, "the run "+o.Report.State)
	}
	if o.Lost() != 0 {
		problems = append(problems, fmt.Sprintf("%d acknowledged writes missing", o.Lost()))
	}
	if o.Primary != site || o.Served.DBSite != site {
		problems = append(problems, fmt.Sprintf("the app writes on %s's database (primary: %s), not %s", o.Served.DBSite, o.Primary, site))
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}

// bySite is "N on SITE, ..." of the acknowledged writes, or "none".
func (s LoadStats) bySite() string {
	counts := s.BySite()
	sites := make([]string, 0, len(counts))
	for site := range counts {
		sites = append(sites, site)
	}
	sort.Strings(sites)
	parts := make([]string, len(sites))
	for i, site := range sites {
		parts[i] = fmt.Sprintf("%d on %s", counts[site], site)
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}
