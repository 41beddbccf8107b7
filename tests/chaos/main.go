// Command chaos kills drctl's worker at every point of a real failover and
// checks from outside that the failover still happens, and happens once.
//
// For each kill point it starts a fresh two-site lab (internal/lab), a
// worker as a separate process (tests/testworker, holding the lab's
// secrets in its environment) and runbooks/site-failover.yaml under the
// lab's write load through HAProxy; the run is started by oncall-sre and
// its approval gate approved by oncall-dba. At the kill point the worker
// gets SIGKILL and a fresh worker process is started at once. Kill points
// are derived from the runbook: before each step starts (right after the
// steps it needs have completed, or its gate was decided), and inside the
// steps that last long enough to be caught (an approval gate while it
// waits, postgres.promote right after pg_promote, http.check between its
// probes).
//
// Once the run has ended it checks the invariants, none of which it takes
// from the run's own report: the run succeeded; west's database is the
// primary and east's accepts no writes from the app; BIND answers west's
// addresses for app and db; requests through HAProxy land on west's app,
// which writes to west's database; every write the load generator saw
// acknowledged is on west; west was promoted exactly once (timeline 2, one
// row in drctl.promotions); and no step whose side effect was already in
// place when the worker died reports that it acted again. A baseline run
// without a kill gives the extra time each kill cost (its RTO minus the
// baseline's).
//
// Usage, from the module root:
//
//	go run ./tests/chaos                          # every kill point, and a baseline
//	go run ./tests/chaos -points in:promote-west,before:traffic-to-west -baseline=false
//	go run ./tests/chaos -list                    # the kill points
//
// It exits 1 when an invariant is violated or a kill point was not reached,
// 2 on bad usage. Everything it starts is stopped before it returns.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/drctl/drctl/internal/config"
	"github.com/drctl/drctl/internal/devserver"
	"github.com/drctl/drctl/internal/lab"
	"github.com/drctl/drctl/runbooks"
	"github.com/drctl/drctl/tests/internal/benchkit"
	"github.com/drctl/drctl/worker"
	"github.com/drctl/drctl/workflows"
)

// The two people of the run: the two-person rule lets only the second
// approve.
const (
	starter  = "oncall-sre"
	approver = "oncall-dba"
)

// Identities of the two worker processes of a run.
const (
	killedWorker = "worker-killed"
	freshWorker  = "worker-fresh"
)

// runLimit bounds a run of the runbook: one that has not ended by then
// violates "the run completes". runTimeout bounds everything one run takes,
// from the lab's start to its stop.
const (
	runLimit   = 2 * time.Minute
	runTimeout = 4 * time.Minute
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

type options struct {
	points    string
	heartbeat time.Duration
	repeat    int
	baseline  bool
	runbook   string
	worker    string
	list      bool
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("chaos", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	fs.StringVar(&o.points, "points", "all", `kill points: "all" or a comma list (before:STEP, in:STEP, before:end; -list shows them)`)
	fs.DurationVar(&o.heartbeat, "heartbeat", time.Second, "heartbeat timeout set on every action step of the runbook (0: keep the runbook's, by default 10s)")
	fs.IntVar(&o.repeat, "repeat", 1, "runs per kill point (and of the baseline)")
	fs.BoolVar(&o.baseline, "baseline", true, "also run without a kill, to measure the extra time each kill costs")
	fs.StringVar(&o.runbook, "runbook", "", "the runbook (default: runbooks/site-failover.yaml of the module)")
	fs.StringVar(&o.worker, "worker", "", "a built tests/testworker binary (default: build one into a temporary directory)")
	fs.BoolVar(&o.list, "list", false, "list the kill points and exit")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 || o.repeat < 1 || o.heartbeat < 0 {
		fmt.Fprintln(stderr, "chaos: takes flags only; -repeat at least 1, -heartbeat not negative")
		return 2
	}
	code, err := runSuite(ctx, o, stdout, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "chaos:", err)
		return 1
	}
	return code
}

func runSuite(ctx context.Context, o options, stdout, stderr io.Writer) (int, error) {
	root, err := lab.ModuleRoot()
	if err != nil {
		return 1, err
	}
	if o.runbook == "" {
		o.runbook = filepath.Join(root, "runbooks", "site-failover.yaml")
	}
	rb, err := runbooks.Load(o.runbook, worker.Catalog())
	if err != nil {
		return 1, err
	}
	all, notInside := killPoints(rb)
	if o.list {
		for _, p := range all {
			fmt.Fprintf(stdout, "%-60s %s\n", p.name, p.describe())
		}
		return 0, nil
	}
	points, err := selectPoints(all, o.points)
	if err != nil {
		return 2, err
	}
	if o.heartbeat > 0 {
		setHeartbeats(rb, o.heartbeat)
	}

	if err := lab.Install(ctx, stderr); err != nil {
		return 1, err
	}
	temporal, err := lab.EnsureTemporal(ctx, stderr)
	if err != nil {
		return 1, err
	}
	if o.worker == "" {
		dir, err := os.MkdirTemp("", "drctl-chaos-bin-")
		if err != nil {
			return 1, err
		}
		defer os.RemoveAll(dir)
		o.worker = filepath.Join(dir, "testworker")
		if err := buildTestworker(ctx, root, o.worker); err != nil {
			return 1, err
		}
	}
	// The workers are testworker processes: the dev server only.
	env, err := benchkit.Start(ctx, benchkit.Options{Server: devserver.Options{Binary: temporal}})
	if err != nil {
		return 1, err
	}
	defer func() {
		if err := env.Close(); err != nil {
			fmt.Fprintln(stderr, "chaos:", err)
		}
	}()

	rel := o.runbook
	if r, err := filepath.Rel(root, o.runbook); err == nil && !strings.HasPrefix(r, "..") {
		rel = r
	}
	printHeader(stdout, rel, o.heartbeat, env.Server.Address, notInside)

	s := &suite{srv: env.Server, rb: rb, worker: o.worker, log: stderr}
	var jobs []*killPoint
	for range o.repeat {
		if o.baseline {
			jobs = append(jobs, nil)
		}
	}
	for _, p := range points {
		for range o.repeat {
			jobs = append(jobs, p)
		}
	}
	var results []*result
	for i, p := range jobs {
		res, err := s.runOnce(ctx, p)
		if err != nil {
			return 1, fmt.Errorf("run %d (%s): %w", i+1, pointName(p), err)
		}
		results = append(results, res)
		fmt.Fprintf(stderr, "chaos: run %d/%d %s: %s\n", i+1, len(jobs), pointName(p), res.line())
	}
	return printResults(stdout, results), nil
}

// setHeartbeats sets the heartbeat timeout of every action step of rb (a
// copy in memory; the file is unchanged).
func setHeartbeats(rb *runbooks.Runbook, d time.Duration) {
	for _, steps := range [][]runbooks.Step{rb.Preflight, rb.Steps} {
		for i := range steps {
			if steps[i].Action != "" {
				steps[i].Heartbeat = runbooks.Duration(d)
			}
		}
	}
}

// buildTestworker builds tests/testworker of the module in root into bin.
func buildTestworker(ctx context.Context, root, bin string) error {
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./tests/testworker")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("build tests/testworker: %w\n%s", err, out)
	}
	return nil
}

// printHeader says what the suite runs, and how.
func printHeader(w io.Writer, runbook string, heartbeat time.Duration, server string, notInside []string) {
	fmt.Fprintf(w, "drctl chaos: %s, each run on a fresh two-site lab under write load through HAProxy (2 writers, every 10ms)\n", runbook)
	if heartbeat > 0 {
		fmt.Fprintf(w, "  heartbeat timeout of every action step set to %s in the runs' copy of the runbook (the file is unchanged; drctl's default\n"+
			"  is %s): a step the killed worker held is retried once that passes, after its retry backoff (1s unless the step sets one)\n", heartbeat, workflows.DefaultHeartbeat)
	} else {
		fmt.Fprintf(w, "  the runbook's heartbeat timeouts (drctl's default %s) bound how soon a killed worker's step is retried\n", workflows.DefaultHeartbeat)
	}
	fmt.Fprintf(w, "  worker: tests/testworker, its own process, SIGKILLed at the kill point; a fresh one is started at once (sticky timeout %s)\n", config.Defaults().Worker.StickyTimeout)
	fmt.Fprintf(w, "  the run is started by %s; its gate is approved by %s; Temporal dev server %s\n", starter, approver, server)
	if len(notInside) > 0 {
		fmt.Fprintf(w, "  not killed inside (too short to catch; their boundaries are kill points): %s\n", strings.Join(notInside, ", "))
	}
	fmt.Fprintln(w)
}
