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
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/client"

	"github.com/drctl/drctl/activities/traffic"
	"github.com/drctl/drctl/internal/config"
	"github.com/drctl/drctl/internal/devserver"
	"github.com/drctl/drctl/internal/haproxylab"
	"github.com/drctl/drctl/internal/lab"
	"github.com/drctl/drctl/internal/operator"
	"github.com/drctl/drctl/runbooks"
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
	reg, err := worker.Actions(config.Defaults())
	if err != nil {
		return 1, err
	}
	rb, err := runbooks.Load(o.runbook, reg)
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
		for _, steps := range [][]runbooks.Step{rb.Preflight, rb.Steps} {
			for i := range steps {
				if steps[i].Action != "" {
					steps[i].Heartbeat = runbooks.Duration(o.heartbeat)
				}
			}
		}
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
		build := exec.CommandContext(ctx, "go", "build", "-o", o.worker, "./tests/testworker")
		build.Dir = root
		if out, err := build.CombinedOutput(); err != nil {
			return 1, fmt.Errorf("build tests/testworker: %w\n%s", err, out)
		}
	}
	srv, err := devserver.Start(ctx, devserver.Options{Binary: temporal})
	if err != nil {
		return 1, err
	}
	defer func() {
		if err := srv.Stop(); err != nil {
			fmt.Fprintln(stderr, "chaos: stop the dev server:", err)
		}
	}()

	rel := o.runbook
	if r, err := filepath.Rel(root, o.runbook); err == nil && !strings.HasPrefix(r, "..") {
		rel = r
	}
	fmt.Fprintf(stdout, "drctl chaos: %s, each run on a fresh two-site lab under write load through HAProxy (2 writers, every 10ms)\n", rel)
	if o.heartbeat > 0 {
		fmt.Fprintf(stdout, "  heartbeat timeout of every action step set to %s in the runs' copy of the runbook (the file is unchanged; drctl's default\n"+
			"  is %s): a step the killed worker held is retried once that passes, after its retry backoff (1s unless the step sets one)\n", o.heartbeat, workflows.DefaultHeartbeat)
	} else {
		fmt.Fprintf(stdout, "  the runbook's heartbeat timeouts (drctl's default %s) bound how soon a killed worker's step is retried\n", workflows.DefaultHeartbeat)
	}
	fmt.Fprintf(stdout, "  worker: tests/testworker, its own process, SIGKILLed at the kill point; a fresh one is started at once (sticky timeout %s)\n", config.Defaults().Worker.StickyTimeout)
	fmt.Fprintf(stdout, "  the run is started by %s; its gate is approved by %s; Temporal dev server %s\n", starter, approver, srv.Address)
	if len(notInside) > 0 {
		fmt.Fprintf(stdout, "  not killed inside (too short to catch; their boundaries are kill points): %s\n", strings.Join(notInside, ", "))
	}
	fmt.Fprintln(stdout)

	s := &suite{srv: srv, rb: rb, worker: o.worker, log: stderr}
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

// Kill points.

// Ways a kill point is reached.
const (
	atNeeds   = iota // the steps it needs have ended (gates: decided)
	atWaiting        // the approval gate waits for a decision
	atPromote        // postgres.promote has run pg_promote (the testworker holds the step there)
	atRunning        // the step's activity has run for a while
)

type killPoint struct {
	name   string
	steps  []string // the steps that start next (before:), or the step killed in (in:)
	inside bool
	how    int
	needs  []string      // atNeeds
	gates  []string      // the approval gates among needs
	after  time.Duration // atRunning
}

func pointName(p *killPoint) string {
	if p == nil {
		return "baseline"
	}
	return p.name
}

func (p *killPoint) describe() string {
	switch p.how {
	case atWaiting:
		return "while the gate waits for a decision; the decision comes after the fresh worker started"
	case atPromote:
		return "right after pg_promote, before the step verified and recorded the promotion"
	case atRunning:
		return fmt.Sprintf("once the step has run for %s", p.after)
	}
	if len(p.needs) == 0 {
		return "right after the run started"
	}
	var parts []string
	for _, n := range p.needs {
		if slices.Contains(p.gates, n) {
			parts = append(parts, n+" was approved")
		} else {
			parts = append(parts, n+" ended")
		}
	}
	return "right after " + strings.Join(parts, ", ")
}

// killPoints derives the kill points from the runbook's graph, in the order
// a run reaches them, and lists the steps too short to be killed inside.
func killPoints(rb *runbooks.Runbook) (points []*killPoint, notInside []string) {
	var preflight []string
	for _, s := range rb.Preflight {
		preflight = append(preflight, s.ID)
	}
	needed, gate := map[string]bool{}, map[string]bool{}
	for _, s := range rb.Steps {
		for _, n := range s.Needs {
			needed[n] = true
		}
		gate[s.ID] = s.Approval != nil
	}
	byNeeds := map[string]*killPoint{}
	before := func(id string, needs []string) {
		key := strings.Join(slices.Sorted(slices.Values(needs)), ",")
		if p := byNeeds[key]; p != nil {
			p.name += "+" + id
			p.steps = append(p.steps, id)
			return
		}
		p := &killPoint{name: "before:" + id, steps: []string{id}, how: atNeeds, needs: needs}
		for _, n := range needs {
			if gate[n] {
				p.gates = append(p.gates, n)
			}
		}
		byNeeds[key] = p
		points = append(points, p)
	}
	var leaves []string
	for i, s := range append(append([]runbooks.Step{}, rb.Preflight...), rb.Steps...) {
		isPreflight := i < len(rb.Preflight)
		needs := s.Needs
		switch {
		case isPreflight:
			needs = nil
		case len(needs) == 0:
			needs = preflight
		}
		before(s.ID, needs)
		if !isPreflight && !needed[s.ID] {
			leaves = append(leaves, s.ID)
		}
		in := &killPoint{name: "in:" + s.ID, steps: []string{s.ID}, inside: true}
		switch {
		case s.Approval != nil:
			in.how = atWaiting
		case s.Action == "postgres.promote":
			in.how = atPromote
		case s.Action == "http.check" && checkLength(s) > 0:
			in.how, in.after = atRunning, checkLength(s)/2
		default:
			notInside = append(notInside, s.ID)
			continue
		}
		points = append(points, in)
	}
	end := &killPoint{name: "before:end", how: atNeeds, needs: leaves}
	for _, n := range leaves {
		if gate[n] {
			end.gates = append(end.gates, n)
		}
	}
	points = append(points, end)
	return points, notInside
}

// checkLength is how long an http.check step takes at least when the
// service is healthy: (successes-1) intervals; 0 when unknown or instant.
func checkLength(s runbooks.Step) time.Duration {
	n, err := strconv.Atoi(fmt.Sprint(s.With["successes"]))
	if err != nil || n < 2 {
		return 0
	}
	d, err := time.ParseDuration(fmt.Sprint(s.With["interval"]))
	if err != nil {
		return 0
	}
	return time.Duration(n-1) * d
}

// selectPoints picks the points the -points flag names: a point's full
// name, or before:STEP for any step of a group that starts together.
func selectPoints(all []*killPoint, spec string) ([]*killPoint, error) {
	if spec == "all" {
		return all, nil
	}
	var out []*killPoint
	for _, want := range strings.Split(spec, ",") {
		want = strings.TrimSpace(want)
		i := slices.IndexFunc(all, func(p *killPoint) bool {
			if p.name == want {
				return true
			}
			prefix := "before:"
			if p.inside {
				prefix = "in:"
			}
			return slices.ContainsFunc(p.steps, func(s string) bool { return prefix+s == want })
		})
		if i < 0 {
			names := make([]string, len(all))
			for j, p := range all {
				names[j] = p.name
			}
			return nil, fmt.Errorf("no kill point %q; there are: %s", want, strings.Join(names, ", "))
		}
		if !slices.Contains(out, all[i]) {
			out = append(out, all[i])
		}
	}
	return out, nil
}

// One run.

type suite struct {
	srv    *devserver.Server
	rb     *runbooks.Runbook
	worker string
	log    io.Writer
	runs   int
}

type result struct {
	point     *killPoint
	state     string
	rto       time.Duration // 0: none (the run did not succeed)
	open      time.Duration // from the run's start until it closed and released its lock
	killed    bool
	inFlight  string // what the run had in flight when the worker died
	retried   []string
	acked     int
	lost      int
	problems  []string // invariant violations
	steps     []workflows.StepReport
	extraTime time.Duration
}

func (r *result) completed() bool { return r.state == workflows.StateSucceeded }

func (r *result) line() string {
	s := fmt.Sprintf("%s, RTO %s, %d violation(s)", r.state, fmtDur(r.rto), len(r.problems))
	if r.point != nil {
		s += "; in flight at the kill: " + r.inFlight
	}
	return s
}

// runOnce runs the runbook once on a fresh lab, killing the worker at p
// (nil: never). Errors are failures of the harness; what the run did wrong
// is in the result's problems.
func (s *suite) runOnce(ctx context.Context, p *killPoint) (_ *result, err error) {
	ctx, cancel := context.WithTimeout(ctx, runTimeout)
	defer cancel()
	s.runs++
	queue := fmt.Sprintf("chaos-%d", s.runs)
	res := &result{point: p, inFlight: "-"}

	l, err := lab.Start(ctx, lab.Options{})
	if err != nil {
		return nil, err
	}
	defer func() {
		if cerr := l.Close(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("stop the lab: %w", cerr))
		}
	}()
	var env []string
	for k, v := range l.Secrets() {
		env = append(env, k+"="+v)
	}
	promoted := ""
	firstEnv := env
	if p != nil && p.how == atPromote {
		hold, err := os.MkdirTemp("", "drctl-chaos-hold-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(hold)
		promoted = filepath.Join(hold, "promoted")
		firstEnv = append(slices.Clip(env), "DRCTL_TEST_HOLD_AFTER_PROMOTE="+hold)
	}
	first, err := startWorker(ctx, s.worker, s.srv.Address, queue, killedWorker, firstEnv)
	if err != nil {
		return nil, err
	}
	defer first.stop()
	var fresh *workerProc
	defer func() {
		if fresh != nil {
			fresh.stop()
		}
	}()

	load := lab.StartLoad(ctx, l.FrontendURL(), 2, 10*time.Millisecond)
	defer load.Stop()
	if err := lab.WaitFor(ctx, 30*time.Second, 10*time.Millisecond, func() bool { return load.Acked() >= 10 }); err != nil {
		return nil, fmt.Errorf("the app acknowledged no writes through %s: %w", l.FrontendURL(), err)
	}

	op := &operator.Operator{Client: s.srv.Client(), TaskQueue: queue, Identity: starter}
	second := &operator.Operator{Client: s.srv.Client(), TaskQueue: queue, Identity: approver}
	params := map[string]string{}
	for k, v := range l.Params() {
		if _, ok := s.rb.Param(k); ok {
			params[k] = v
		}
	}
	reason := "chaos: baseline"
	if p != nil {
		reason = "chaos: worker killed " + p.name
	}
	started, err := op.Start(ctx, s.rb, params, workflows.ModeFailover, reason)
	if err != nil {
		return nil, err
	}
	histCtx, stopHist := context.WithCancel(ctx)
	defer stopHist()
	hist := followHistory(histCtx, s.srv.Client(), started.WorkflowID, started.RunID)

	var (
		snapshot map[string]bool
		decided  = map[string]bool{}
		waiting  []string
	)
	due := func() bool {
		if p == nil || res.killed {
			return false
		}
		switch p.how {
		case atNeeds:
			return !slices.ContainsFunc(p.needs, func(n string) bool { return !decided[n] && !hist.ended(n) })
		case atWaiting:
			return slices.Contains(waiting, p.steps[0])
		case atPromote:
			_, err := os.Stat(promoted)
			return err == nil
		case atRunning:
			return s.runningFor(ctx, started, p.steps[0]) >= p.after
		}
		return false
	}
	kill := func() error {
		if err := first.kill(); err != nil {
			return err
		}
		res.killed = true
		res.inFlight = s.inFlight(ctx, op, started)
		snapshot = sideEffectsInPlace(ctx, l, promoted)
		fresh, err = startWorker(ctx, s.worker, s.srv.Address, queue, freshWorker, env)
		return err
	}

	maybeKill := func() error {
		if due() {
			return kill()
		}
		return nil
	}

	limit, stopLimit := context.WithTimeout(ctx, runLimit)
	defer stopLimit()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
follow:
	for {
		if err := maybeKill(); err != nil {
			return nil, err
		}
		st, err := op.Status(ctx, started.WorkflowID)
		if err != nil {
			return nil, err
		}
		if st.Closed {
			// The kill point may be the run's very end: read the whole
			// history before deciding it was not reached.
			select {
			case <-hist.done:
			case <-ctx.Done():
			}
			if due() {
				if err := kill(); err != nil {
					return nil, err
				}
				res.inFlight = "nothing (the run had ended)"
			}
			break follow
		}
		waiting = st.Waiting
		if err := maybeKill(); err != nil {
			return nil, err
		}
		for _, gate := range st.Waiting {
			if decided[gate] || (p != nil && p.how == atWaiting && p.steps[0] == gate && !res.killed) {
				continue
			}
			if _, err := second.Decide(ctx, started.WorkflowID, gate, true, "chaos: approved by a second person"); err != nil {
				fmt.Fprintf(s.log, "chaos: %s approving %s: %v (trying again)\n", approver, gate, err)
				continue
			}
			decided[gate] = true
			if err := maybeKill(); err != nil {
				return nil, err
			}
		}
		select {
		case <-limit.Done():
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			res.state = "still running"
			res.problems = append(res.problems, fmt.Sprintf("the run did not end within %s", runLimit))
			// End it, so that the next run can take the lock.
			if err := s.srv.Client().TerminateWorkflow(ctx, started.WorkflowID, started.RunID, "chaos: did not end"); err != nil {
				return nil, err
			}
			return res, nil
		case <-hist.changed:
		case <-tick.C:
		}
	}
	if err := hist.failure(); err != nil {
		return nil, fmt.Errorf("follow the run's history: %w", err)
	}
	if p != nil && !res.killed {
		res.inFlight = "NOT REACHED: the run ended first"
		res.problems = append(res.problems, "the kill point was not reached")
	}

	rep, err := op.Report(ctx, started.WorkflowID)
	if err != nil {
		return nil, err
	}
	// Let the load see the app write again after the run, then stop it.
	n := load.Acked()
	_ = lab.WaitFor(ctx, 5*time.Second, 10*time.Millisecond, func() bool { return load.Acked() >= n+10 })
	stats := load.Stop()

	res.state, res.steps = rep.State, rep.Steps
	if rep.RTO != nil {
		res.rto = rep.RTO.D()
	}
	for _, st := range rep.Steps {
		if st.Attempts > 1 {
			change := "no change"
			if st.Changed {
				change = "changed"
			}
			res.retried = append(res.retried, fmt.Sprintf("%s×%d %s", st.ID, st.Attempts, change))
		}
	}
	res.acked = len(stats.Acks)
	res.open = hist.open()
	res.problems = append(res.problems, s.check(ctx, l, rep, stats, res, snapshot, hist)...)
	return res, nil
}

// runningFor is how long the step's current activity attempt has been
// running on a worker (0 when it is not).
func (s *suite) runningFor(ctx context.Context, started operator.Started, step string) time.Duration {
	desc, err := s.srv.Client().DescribeWorkflow(ctx, started.WorkflowID, started.RunID)
	if err != nil {
		return 0
	}
	d := desc.RawResponse
	for _, pa := range d.GetPendingActivities() {
		if pa.GetActivityId() == step && pa.GetState() == enumspb.PENDING_ACTIVITY_STATE_STARTED && pa.GetLastStartedTime() != nil {
			return time.Since(pa.GetLastStartedTime().AsTime())
		}
	}
	return 0
}

// inFlight describes what the run had in flight, as the server saw it just
// after the kill: activities (scheduled, or started on the dead worker),
// gates waiting, a workflow task (scheduled, or started on the dead worker).
func (s *suite) inFlight(ctx context.Context, op *operator.Operator, started operator.Started) string {
	desc, err := s.srv.Client().DescribeWorkflow(ctx, started.WorkflowID, started.RunID)
	if err != nil {
		return "unknown: " + err.Error()
	}
	d := desc.RawResponse
	var parts []string
	for _, pa := range d.GetPendingActivities() {
		name := pa.GetActivityId()
		if _, ok := s.rb.Step(name); !ok {
			name = pa.GetActivityType().GetName() // an activity of the interpreter's own
		}
		state := strings.ToLower(strings.TrimPrefix(pa.GetState().String(), "PENDING_ACTIVITY_STATE_"))
		parts = append(parts, name+" "+state)
	}
	if st, err := op.Status(ctx, started.WorkflowID); err == nil {
		for _, g := range st.Waiting {
			parts = append(parts, g+" waiting")
		}
	}
	if wt := d.GetPendingWorkflowTask(); wt != nil {
		parts = append(parts, "workflow task "+strings.ToLower(strings.TrimPrefix(wt.GetState().String(), "PENDING_WORKFLOW_TASK_STATE_")))
	}
	if len(parts) == 0 {
		return "nothing"
	}
	return strings.Join(parts, ", ")
}

// Side effects.

// sideEffects are the steps of site-failover.yaml that change the lab, and
// how to see from outside that the change is in place.
var sideEffects = []struct {
	step  string
	what  string
	there func(ctx context.Context, l *lab.Lab) bool
}{
	{"fence-east", "east's database fenced", func(_ context.Context, l *lab.Lab) bool { return l.Fenced(lab.East) }},
	{"promote-west", "west's database a primary", func(ctx context.Context, l *lab.Lab) bool {
		standby, err := l.Node(lab.West).InRecovery(ctx)
		return err == nil && !standby
	}},
	{"dns-to-west", "app answers west", func(ctx context.Context, l *lab.Lab) bool {
		return answers(ctx, l, lab.AppName, lab.WestAppAddr)
	}},
	{"db-dns-to-west", "db answers west", func(ctx context.Context, l *lab.Lab) bool {
		return answers(ctx, l, lab.DBName, lab.WestDBAddr)
	}},
	{"traffic-to-west", "HAProxy sends app traffic to west only", func(ctx context.Context, l *lab.Lab) bool {
		state, err := l.LB.Command(ctx, "show servers state "+lab.AppBackend)
		if err != nil {
			return false
		}
		snap, err := traffic.ParseServersState(state)
		if err != nil {
			return false
		}
		east, _ := snap.Server(lab.AppBackend, haproxylab.EastServer)
		west, _ := snap.Server(lab.AppBackend, haproxylab.WestServer)
		return east.Mode() == traffic.ModeMaint && west.Mode() == traffic.ModeReady
	}},
}

func answers(ctx context.Context, l *lab.Lab, name, addr string) bool {
	got, err := lab.LookupA(ctx, l.DNS.Addr(), name+"."+l.Zone)
	return err == nil && slices.Equal(got, []string{addr})
}

// sideEffectsInPlace reads which side effects are in place, by step; with
// no worker running nothing changes them while it looks. promoted is the
// file the testworker writes once it has run pg_promote ("" if it holds no
// promotion).
func sideEffectsInPlace(ctx context.Context, l *lab.Lab, promoted string) map[string]bool {
	out := map[string]bool{}
	for _, e := range sideEffects {
		out[e.step] = e.there(ctx, l)
	}
	if promoted != "" {
		if _, err := os.Stat(promoted); err == nil {
			out["promote-west"] = true
		}
	}
	return out
}

// check tests the invariants from outside the run and returns what is
// violated.
func (s *suite) check(ctx context.Context, l *lab.Lab, rep *workflows.Report, stats lab.LoadStats, res *result, snapshot map[string]bool, hist *history) []string {
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }

	if rep.State != workflows.StateSucceeded {
		bad("the run ended %s: %s", rep.State, rep.Error)
	}
	// Exactly one primary.
	if standby, err := l.Node(lab.West).InRecovery(ctx); err != nil || standby {
		bad("west's database is not a primary (in recovery %t, %v)", standby, err)
	}
	if writable, err := l.AppWritable(ctx, lab.East); err != nil || writable {
		bad("east's database takes the app's writes too (writable %t, %v)", writable, err)
	}
	// Names, asked of the zone's authoritative server.
	for name, want := range map[string]string{lab.AppName: lab.WestAppAddr, lab.DBName: lab.WestDBAddr} {
		if got, err := lab.LookupA(ctx, l.DNS.Addr(), name+"."+l.Zone); err != nil || !slices.Equal(got, []string{want}) {
			bad("DNS %s answers %v (%v), want %s", name, got, err, want)
		}
	}
	// Traffic: requests through HAProxy land on west's app, writing on west.
	for range 3 {
		h, err := lab.GetHealth(ctx, l.FrontendURL())
		if err != nil || h.Site != lab.West || h.DBSite != lab.West {
			bad("a request through HAProxy: app %q writing to %q (%v), want west and west", h.Site, h.DBSite, err)
			break
		}
	}
	// No acknowledged write lost.
	ids := stats.IDs()
	present, err := lab.Present(ctx, l.AppDSN(lab.West), ids)
	res.lost = len(ids) - present
	if err != nil {
		bad("counting the acknowledged writes on west: %v", err)
	} else if res.lost > 0 {
		beforeFence := 0
		if f, ok := rep.Step("fence-east"); ok && f.StartedAt != nil {
			beforeFence = stats.Before(*f.StartedAt)
		}
		on, _ := lab.Present(ctx, l.AppDSN(lab.West), ids[:beforeFence])
		bad("%d of %d acknowledged writes are not on west (%d of the %d acknowledged before the fence)", res.lost, len(ids), beforeFence-on, beforeFence)
	}
	// West promoted exactly once.
	if tl, err := l.Timeline(ctx, lab.West); err != nil || tl != 2 {
		bad("west's timeline is %d (%v), want 2: one promotion", tl, err)
	}
	if n, err := l.Promotions(ctx, lab.West); err != nil || n != 1 {
		bad("drctl.promotions on west has %d rows (%v), want 1", n, err)
	}
	// No step acted again: a step whose change was in place when the
	// worker died, and that a later attempt finished, must report no change.
	for _, e := range sideEffects {
		st, ok := rep.Step(e.step)
		if !ok || !snapshot[e.step] {
			continue
		}
		if by, _ := hist.completedBy(e.step); by == killedWorker {
			continue // finished before the kill
		}
		if st.Changed {
			bad("%s acted twice: %s when the worker was killed, yet attempt %d reported a change (%s)", e.step, e.what, st.Attempts, st.Summary)
		}
	}
	// Every step reports its outcome.
	for _, st := range rep.Steps {
		if st.State != workflows.StepSucceeded && rep.State == workflows.StateSucceeded {
			bad("step %s: %s in a run that succeeded", st.ID, st.State)
		}
	}
	return problems
}

// The run's history.

// history follows a run's event history (a long poll) for what kill points
// and checks need: which activities (steps) have ended, and the worker that
// completed each.
type history struct {
	changed chan struct{} // a new event arrived
	done    chan struct{} // the history is complete (or the poll failed)

	mu          sync.Mutex
	scheduled   map[int64]string // scheduled event id -> activity id (the step)
	endedSteps  map[string]bool
	completions map[string]string // step -> identity of the worker that completed it
	// startedAt and closedAt are the times of the run's first and closing
	// events: the run holds its lock in between.
	startedAt, closedAt time.Time
	err                 error
}

func followHistory(ctx context.Context, c client.Client, workflowID, runID string) *history {
	h := &history{changed: make(chan struct{}, 1), done: make(chan struct{}),
		scheduled: map[int64]string{}, endedSteps: map[string]bool{}, completions: map[string]string{}}
	go func() {
		defer close(h.done)
		it := c.GetWorkflowHistory(ctx, workflowID, runID, true, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
		for it.HasNext() {
			ev, err := it.Next()
			if err != nil {
				h.mu.Lock()
				h.err = err
				h.mu.Unlock()
				return
			}
			h.record(ev)
			select {
			case h.changed <- struct{}{}:
			default:
			}
		}
	}()
	return h
}

func (h *history) record(ev *historypb.HistoryEvent) {
	h.mu.Lock()
	defer h.mu.Unlock()
	switch ev.GetEventType() {
	case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
		h.startedAt = ev.GetEventTime().AsTime()
	case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED, enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED,
		enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED, enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED,
		enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_TIMED_OUT, enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW:
		h.closedAt = ev.GetEventTime().AsTime()
	}
	if a := ev.GetActivityTaskScheduledEventAttributes(); a != nil {
		h.scheduled[ev.GetEventId()] = a.GetActivityId()
	}
	var sched int64
	switch {
	case ev.GetActivityTaskCompletedEventAttributes() != nil:
		a := ev.GetActivityTaskCompletedEventAttributes()
		sched = a.GetScheduledEventId()
		h.completions[h.scheduled[sched]] = a.GetIdentity()
	case ev.GetActivityTaskFailedEventAttributes() != nil:
		sched = ev.GetActivityTaskFailedEventAttributes().GetScheduledEventId()
	case ev.GetActivityTaskTimedOutEventAttributes() != nil:
		sched = ev.GetActivityTaskTimedOutEventAttributes().GetScheduledEventId()
	case ev.GetActivityTaskCanceledEventAttributes() != nil:
		sched = ev.GetActivityTaskCanceledEventAttributes().GetScheduledEventId()
	default:
		return
	}
	h.endedSteps[h.scheduled[sched]] = true
}

// ended reports whether the step's activity has ended, however.
func (h *history) ended(step string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.endedSteps[step]
}

// failure is why following the history stopped early, if it did.
func (h *history) failure() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.err
}

// open is how long the run was open, from its start to its close (0 if it
// has not closed).
func (h *history) open() time.Duration {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closedAt.IsZero() {
		return 0
	}
	return h.closedAt.Sub(h.startedAt)
}

// completedBy is the identity of the worker that completed the step.
func (h *history) completedBy(step string) (string, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	by, ok := h.completions[step]
	return by, ok
}

// Worker processes.

// workerProc is a testworker process.
type workerProc struct {
	cmd    *exec.Cmd
	out    *readyWriter
	exited chan struct{}
}

// startWorker starts a testworker polling queue and returns once it is
// connected. It dies with this process (parent-death signal).
func startWorker(ctx context.Context, bin, address, queue, identity string, env []string) (*workerProc, error) {
	out := &readyWriter{ready: make(chan struct{})}
	cmd := exec.Command(bin, "-address", address, "-task-queue", queue, "-identity", identity)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start worker %s: %w", identity, err)
	}
	w := &workerProc{cmd: cmd, out: out, exited: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		close(w.exited)
	}()
	select {
	case <-out.ready:
		return w, nil
	case <-w.exited:
		return nil, fmt.Errorf("worker %s exited before it was ready: %s", identity, out.String())
	case <-time.After(30 * time.Second):
	case <-ctx.Done():
	}
	w.stop()
	return nil, fmt.Errorf("worker %s not ready within 30s: %s", identity, out.String())
}

// kill sends SIGKILL and returns once the process is gone.
func (w *workerProc) kill() error {
	if err := w.cmd.Process.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("kill worker %d: %w", w.cmd.Process.Pid, err)
	}
	<-w.exited
	return nil
}

// stop asks the worker to stop (SIGTERM), kills it after 15s, and returns
// once it is gone.
func (w *workerProc) stop() {
	_ = w.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-w.exited:
	case <-time.After(15 * time.Second):
		_ = w.kill()
	}
}

// readyWriter collects a worker's output and closes ready at its "ready"
// line.
type readyWriter struct {
	mu    sync.Mutex
	b     strings.Builder
	ready chan struct{}
	seen  bool
}

func (r *readyWriter) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.b.Write(p)
	if !r.seen && strings.Contains(r.b.String(), "ready\n") {
		r.seen = true
		close(r.ready)
	}
	return len(p), nil
}

func (r *readyWriter) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.TrimSpace(r.b.String())
}

// The table.

// printResults prints the table, each violation and the summary, and
// returns the exit code: 1 if an invariant was violated or a kill point
// not reached.
func printResults(w io.Writer, results []*result) int {
	var base []time.Duration
	for _, r := range results {
		if r.point == nil && r.rto > 0 {
			base = append(base, r.rto)
		}
	}
	baseline := median(base)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "KILL POINT\tIN FLIGHT AT THE KILL\tCOMPLETED\tVIOLATIONS\tRTO\tEXTRA\tCLOSED AFTER\tRETRIED STEPS\tWRITES ACKED/LOST")
	var (
		kills, completed, violations int
		extras                       []time.Duration
	)
	for _, r := range results {
		extra := "-"
		if r.point != nil {
			kills++
			if r.rto > 0 && baseline > 0 {
				r.extraTime = r.rto - baseline
				extras = append(extras, r.extraTime)
				extra = fmtSigned(r.extraTime)
			}
		}
		if r.completed() {
			completed++
		}
		violations += len(r.problems)
		yes := "no"
		if r.completed() {
			yes = "yes"
		}
		retried := strings.Join(r.retried, ", ")
		if retried == "" {
			retried = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\t%d/%d\n", pointName(r.point), r.inFlight, yes, len(r.problems), fmtDur(r.rto), extra, fmtDur(r.open), retried, r.acked, r.lost)
	}
	tw.Flush()
	for _, r := range results {
		for _, p := range r.problems {
			fmt.Fprintf(w, "VIOLATION %s: %s\n", pointName(r.point), p)
		}
		if len(r.problems) > 0 {
			for _, st := range r.steps {
				fmt.Fprintf(w, "    %-18s %-10s attempts %d changed %-5t %s\n", st.ID, st.State, st.Attempts, st.Changed, st.Summary)
			}
		}
	}
	fmt.Fprintln(w)
	sort.Slice(extras, func(i, j int) bool { return extras[i] < extras[j] })
	extraText := "no baseline to compare with"
	if len(extras) > 0 {
		extraText = fmt.Sprintf("median %s, max %s (baseline RTO %s)", fmtDur(median(extras)), fmtDur(extras[len(extras)-1]), fmtDur(baseline))
	}
	fmt.Fprintf(w, "summary: runs %d, kills %d, completed %d of %d, invariant violations %d; extra time per kill: %s\n",
		len(results), kills, completed, len(results), violations, extraText)
	fmt.Fprintln(w, "IN FLIGHT: what the server had pending just after the SIGKILL (started = held by the dead worker). EXTRA: RTO minus the\n"+
		"baseline's. CLOSED AFTER: from the run's start until it closed and released its lock. RETRIED STEPS: steps run more than once,\n"+
		"and whether the attempt that finished changed anything.")
	if violations > 0 || completed < len(results) {
		return 1
	}
	return 0
}

func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Sorted(slices.Values(ds))
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func fmtDur(d time.Duration) string {
	if d == 0 {
		return "-"
	}
	return d.Round(10 * time.Millisecond).String()
}

func fmtSigned(d time.Duration) string {
	if d >= 0 {
		return "+" + d.Round(10*time.Millisecond).String()
	}
	return d.Round(10 * time.Millisecond).String()
}
