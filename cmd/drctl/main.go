// Command drctl runs disaster-recovery runbooks as durable Temporal
// workflows. It is thin: it parses flags, calls drctl's packages and prints.
// main is the only place that exits.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"go.temporal.io/sdk/client"
	"golang.org/x/term"

	"github.com/drctl/drctl/internal/config"
	"github.com/drctl/drctl/internal/operator"
	"github.com/drctl/drctl/runbooks"
	"github.com/drctl/drctl/worker"
	"github.com/drctl/drctl/workflows"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root := newRoot()
	stdout, stderr := &termSafe{w: os.Stdout}, &termSafe{w: os.Stderr}
	root.SetOut(stdout)
	root.SetErr(stderr)
	if cmd, err := root.ExecuteContextC(ctx); err != nil {
		os.Exit(reportError(root, stdout, stderr, withUsage(cmd, err)))
	}
}

// argCountRE matches cobra's argument-count errors ("accepts 1 arg(s),
// received 0"), which say nothing of what the arguments are.
var argCountRE = regexp.MustCompile(`^(accepts|requires at least|requires at most|accepts at most|accepts between) .*arg\(s\)`)

// withUsage adds the command's usage line and an example to an
// argument-count error.
func withUsage(cmd *cobra.Command, err error) error {
	if cmd == nil || !argCountRE.MatchString(err.Error()) {
		return err
	}
	msg := fmt.Sprintf("%v\nusage: %s", err, cmd.UseLine())
	if ex, _, _ := strings.Cut(strings.TrimSpace(cmd.Example), "\n"); ex != "" {
		msg += "\nfor example: " + strings.TrimSpace(ex)
	}
	return errors.New(msg + "\n(" + cmd.CommandPath() + " --help says more)")
}

// reportError says what went wrong and returns the exit code: 1 for an
// error, 2 for a followed run that ended failed or aborted (its report is
// already on stdout). With -o json, stdout holds exactly one JSON document
// either way: the report, or {"error": "..."}.
func reportError(root *cobra.Command, stdout, stderr io.Writer, err error) int {
	var printed interface{ Printed() bool }
	if !errors.As(err, &printed) || !printed.Printed() {
		if o := root.PersistentFlags().Lookup("output"); o != nil && o.Value.String() == "json" {
			_ = operator.JSON(stdout, map[string]string{"error": err.Error()})
		}
	}
	fmt.Fprintln(stderr, "drctl:", err)
	var ve exitCoder
	if errors.As(err, &ve) {
		return ve.ExitCode()
	}
	return 1
}

type exitCoder interface{ ExitCode() int }

// app holds what commands share: flags, and the config, registry and client
// made from them on first use.
type app struct {
	configPath string
	output     string
	colour     string
	cmd        *cobra.Command

	cfg    *config.Config
	client client.Client
}

func newRoot() *cobra.Command {
	a := &app{}
	root := &cobra.Command{
		Use:           "drctl",
		Short:         "Run disaster-recovery runbooks as durable workflows",
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			a.cmd = cmd
			return a.setColour(cmd.OutOrStdout())
		},
		PersistentPostRun: func(*cobra.Command, []string) {
			if a.client != nil {
				a.client.Close()
			}
		},
	}
	pf := root.PersistentFlags()
	pf.StringVar(&a.configPath, "config", "", "config file (default ./drctl.yaml or ~/.config/drctl/drctl.yaml; env DRCTL_CONFIG)")
	pf.String("address", "", "Temporal frontend host:port (env DRCTL_TEMPORAL_ADDRESS; default localhost:7233)")
	pf.String("namespace", "", "Temporal namespace (env DRCTL_TEMPORAL_NAMESPACE; default \"default\")")
	pf.String("task-queue", "", "task queue of drctl workers (env DRCTL_TEMPORAL_TASK_QUEUE; default drctl)")
	pf.String("as", "", "your identity in approvals and the audit trail (env DRCTL_IDENTITY; default $USER@host)")
	pf.StringVarP(&a.output, "output", "o", "table", "output of read commands: table or json (report: md, html or json)")
	pf.StringVar(&a.colour, "color", colourAuto, "colour states in status, list, watch and drills: auto (when stdout is a terminal, NO_COLOR is unset and TERM is not dumb), always or never; never in JSON")

	root.AddCommand(
		a.validateCmd(), a.schemaCmd(), a.actionsCmd(), a.versionCmd(), a.planCmd(), a.runCmd(),
		a.statusCmd(), a.watchCmd(), a.listCmd(),
		a.reportCmd(),
		a.serveCmd(),
		a.decideCmd(true), a.decideCmd(false),
		a.controlCmd("pause"), a.controlCmd("resume"), a.controlCmd("abort"),
		a.drillCmd(), a.drillsCmd(), a.readinessCmd(), a.sloCmd(), a.historyCmd(), a.replayCmd(), a.workerCmd(), a.devCmd(), a.demoCmd(), a.labCmd(), a.slackCmd(),
		a.watchSitesCmd(), a.sitesCmd(),
	)
	a.addCompletions(root)
	addExamples(root)
	return root
}

// setColour turns colour on for stdout when --color, the terminal and the
// environment ask for it (colourOn).
func (a *app) setColour(stdout io.Writer) error {
	ts, ok := stdout.(*termSafe)
	terminal := false
	if ok {
		f, isFile := ts.w.(*os.File)
		terminal = isFile && term.IsTerminal(int(f.Fd()))
	}
	on, err := colourOn(a.colour, a.output == "json", terminal, os.Getenv)
	if ok {
		ts.colour = on
	}
	return err
}

func (a *app) config() (config.Config, error) {
	if a.cfg != nil {
		return *a.cfg, nil
	}
	c, err := config.Load(a.configPath, changedFlags(a.cmd))
	if err != nil {
		return config.Config{}, err
	}
	a.cfg = &c
	return c, nil
}

func (a *app) dial(ctx context.Context) (client.Client, error) {
	if a.client != nil {
		return a.client, nil
	}
	c, err := a.config()
	if err != nil {
		return nil, err
	}
	cl, err := worker.Dial(ctx, c, worker.DialOptions{})
	if err != nil {
		return nil, err
	}
	a.client = cl
	return cl, nil
}

func (a *app) operator(ctx context.Context) (*operator.Operator, error) {
	cl, err := a.dial(ctx)
	if err != nil {
		return nil, err
	}
	c, _ := a.config()
	return &operator.Operator{Client: cl, TaskQueue: c.Temporal.TaskQueue, Namespace: c.Temporal.Namespace, Identity: c.Identity}, nil
}

// load reads and validates a runbook file against this build's actions.
// A bad configuration is reported here too; the actions' secrets are not
// read (the catalog needs none).
func (a *app) load(path string) (*runbooks.Runbook, error) {
	rb, _, err := a.loadFor(path, workflows.ModeFailover, "")
	return rb, err
}

// loadFor is load for a run in mode. A drill also loads its failback
// runbook (failback, else the runbook's drill.failback, relative to the
// runbook's file) and, without one, is refused when a step has no way
// back (runbooks.ValidateDrill), naming each such step.
func (a *app) loadFor(path, mode, failback string) (*runbooks.Runbook, *runbooks.Runbook, error) {
	if _, err := a.config(); err != nil {
		return nil, nil, err
	}
	rb, err := runbooks.Load(path, worker.Catalog())
	if err != nil || mode != workflows.ModeDrill {
		return rb, nil, err
	}
	if failback != "" {
		rb.Drill.Failback = failback
	} else if f := rb.Drill.Failback; f != "" && !filepath.IsAbs(f) {
		failback = filepath.Join(filepath.Dir(path), f)
	}
	if failback == "" {
		if ps := runbooks.ValidateDrill(rb, worker.Catalog()); len(ps) > 0 {
			return nil, nil, ps
		}
		return rb, nil, nil
	}
	fb, err := runbooks.Load(failback, worker.Catalog())
	if err != nil {
		return nil, nil, fmt.Errorf("failback: %w", err)
	}
	return rb, fb, nil
}

func (a *app) jsonOutput() (bool, error) {
	switch a.output {
	case "table", "":
		return false, nil
	case "json":
		return true, nil
	}
	return false, fmt.Errorf("--output %q: use table or json", a.output)
}
