package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"

	"github.com/drctl/drctl/internal/devserver"
	"github.com/drctl/drctl/internal/lab"
	"github.com/drctl/drctl/internal/operator"
	"github.com/drctl/drctl/runbooks"
	"github.com/drctl/drctl/workflows"
)

// suite is what every run shares: the dev server, the runbook (with the
// suite's heartbeat timeouts) and the testworker binary.
type suite struct {
	srv    *devserver.Server
	rb     *runbooks.Runbook
	worker string
	log    io.Writer
	runs   int
}

// result is what one run did, as the table shows it.
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
	r := &chaosRun{suite: s, point: p, queue: fmt.Sprintf("chaos-%d", s.runs), res: &result{point: p, inFlight: "-"}, decided: map[string]bool{}}

	if r.lab, err = lab.Start(ctx, lab.Options{}); err != nil {
		return nil, err
	}
	defer func() {
		if cerr := r.lab.Close(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("stop the lab: %w", cerr))
		}
	}()
	defer r.stopWorkers()
	if err := r.startWorker(ctx); err != nil {
		return nil, err
	}

	load := lab.StartLoad(ctx, r.lab.FrontendURL(), 2, 10*time.Millisecond)
	defer load.Stop()
	if err := lab.WaitFor(ctx, 30*time.Second, 10*time.Millisecond, func() bool { return load.Acked() >= 10 }); err != nil {
		return nil, fmt.Errorf("the app acknowledged no writes through %s: %w", r.lab.FrontendURL(), err)
	}

	if err := r.start(ctx); err != nil {
		return nil, err
	}
	histCtx, stopHist := context.WithCancel(ctx)
	defer stopHist()
	r.hist = followHistory(histCtx, s.srv.Client(), r.started.WorkflowID, r.started.RunID)

	ended, err := r.follow(ctx)
	if err != nil {
		return nil, err
	}
	if !ended {
		return r.res, nil
	}
	if err := r.hist.failure(); err != nil {
		return nil, fmt.Errorf("follow the run's history: %w", err)
	}
	if p != nil && !r.res.killed {
		r.res.inFlight = "NOT REACHED: the run ended first"
		r.res.problems = append(r.res.problems, "the kill point was not reached")
	}
	if err := r.judge(ctx, load); err != nil {
		return nil, err
	}
	return r.res, nil
}

// chaosRun is one run of the runbook: its lab, its workers, the run and
// what has happened to it so far.
type chaosRun struct {
	*suite
	point *killPoint // nil: no kill
	queue string
	res   *result
	lab   *lab.Lab

	env      []string // the workers' environment: the lab's secrets
	promoted string   // the file the killed worker writes after pg_promote ("": none)
	first    *workerProc
	fresh    *workerProc // started at the kill

	op, second *operator.Operator // who starts the run, who approves it
	started    operator.Started
	hist       *history

	decided  map[string]bool // gates approved
	waiting  []string        // gates waiting, as last seen
	snapshot map[string]bool // side effects in place at the kill, by step
}

// startWorker starts the worker to be killed, holding the lab's secrets in
// its environment as a real worker does; when the kill point is right
// after pg_promote, it holds the step there.
func (r *chaosRun) startWorker(ctx context.Context) error {
	for k, v := range r.lab.Secrets() {
		r.env = append(r.env, k+"="+v)
	}
	env := r.env
	if r.point != nil && r.point.how == atPromote {
		hold, err := os.MkdirTemp("", "drctl-chaos-hold-")
		if err != nil {
			return err
		}
		r.promoted = filepath.Join(hold, "promoted")
		env = append(slices.Clip(env), "DRCTL_TEST_HOLD_AFTER_PROMOTE="+hold)
	}
	var err error
	r.first, err = startWorker(ctx, r.worker, r.srv.Address, r.queue, killedWorker, env)
	return err
}

// stopWorkers stops whichever workers still run and removes what they
// held.
func (r *chaosRun) stopWorkers() {
	if r.fresh != nil {
		r.fresh.stop()
	}
	if r.first != nil {
		r.first.stop()
	}
	if r.promoted != "" {
		_ = os.RemoveAll(filepath.Dir(r.promoted))
	}
}

// start starts the run as the starter, with the lab's parameters.
func (r *chaosRun) start(ctx context.Context) error {
	r.op = &operator.Operator{Client: r.srv.Client(), TaskQueue: r.queue, Identity: starter}
	r.second = &operator.Operator{Client: r.srv.Client(), TaskQueue: r.queue, Identity: approver}
	params := map[string]string{}
	for k, v := range r.lab.Params() {
		if _, ok := r.rb.Param(k); ok {
			params[k] = v
		}
	}
	reason := "chaos: baseline"
	if r.point != nil {
		reason = "chaos: worker killed " + r.point.name
	}
	var err error
	r.started, err = r.op.Start(ctx, r.rb, params, workflows.ModeFailover, reason)
	return err
}

// due reports whether the kill point has been reached and the worker not
// killed yet.
func (r *chaosRun) due(ctx context.Context) bool {
	p := r.point
	if p == nil || r.res.killed {
		return false
	}
	switch p.how {
	case atNeeds:
		return !slices.ContainsFunc(p.needs, func(n string) bool { return !r.decided[n] && !r.hist.ended(n) })
	case atWaiting:
		return slices.Contains(r.waiting, p.steps[0])
	case atPromote:
		_, err := os.Stat(r.promoted)
		return err == nil
	case atRunning:
		return r.runningFor(ctx, r.started, p.steps[0]) >= p.after
	}
	return false
}

// kill SIGKILLs the first worker, records what was in flight and in place,
// and starts a fresh worker at once.
func (r *chaosRun) kill(ctx context.Context) error {
	if err := r.first.kill(); err != nil {
		return err
	}
	r.res.killed = true
	r.res.inFlight = r.inFlight(ctx, r.op, r.started)
	r.snapshot = sideEffectsInPlace(ctx, r.lab, r.promoted)
	var err error
	r.fresh, err = startWorker(ctx, r.worker, r.srv.Address, r.queue, freshWorker, r.env)
	return err
}

func (r *chaosRun) maybeKill(ctx context.Context) error {
	if r.due(ctx) {
		return r.kill(ctx)
	}
	return nil
}

// follow approves the run's gates as the second person and kills the
// worker when the kill point is due, until the run closes (true) or
// runLimit passes (false: the run is terminated and the result says so).
func (r *chaosRun) follow(ctx context.Context) (bool, error) {
	limit, stopLimit := context.WithTimeout(ctx, runLimit)
	defer stopLimit()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		if err := r.maybeKill(ctx); err != nil {
			return false, err
		}
		st, err := r.op.Status(ctx, r.started.WorkflowID)
		if err != nil {
			return false, err
		}
		if st.Closed {
			return true, r.closed(ctx)
		}
		r.waiting = st.Waiting
		if err := r.maybeKill(ctx); err != nil {
			return false, err
		}
		if err := r.approve(ctx); err != nil {
			return false, err
		}
		select {
		case <-limit.Done():
			if ctx.Err() != nil {
				return false, ctx.Err()
			}
			r.res.state = "still running"
			r.res.problems = append(r.res.problems, fmt.Sprintf("the run did not end within %s", runLimit))
			// End it, so that the next run can take the lock.
			return false, r.srv.Client().TerminateWorkflow(ctx, r.started.WorkflowID, r.started.RunID, "chaos: did not end")
		case <-r.hist.changed:
		case <-tick.C:
		}
	}
}

// closed handles the run's close: the kill point may be the run's very end,
// so the whole history is read before deciding it was not reached.
func (r *chaosRun) closed(ctx context.Context) error {
	select {
	case <-r.hist.done:
	case <-ctx.Done():
	}
	if !r.due(ctx) {
		return nil
	}
	if err := r.kill(ctx); err != nil {
		return err
	}
	r.res.inFlight = "nothing (the run had ended)"
	return nil
}

// approve approves, as the second person, the gates waiting, except the one
// the kill point waits in until the worker has been killed.
func (r *chaosRun) approve(ctx context.Context) error {
	p := r.point
	for _, gate := range r.waiting {
		if r.decided[gate] || (p != nil && p.how == atWaiting && p.steps[0] == gate && !r.res.killed) {
			continue
		}
		if _, err := r.second.Decide(ctx, r.started.WorkflowID, gate, true, "chaos: approved by a second person"); err != nil {
			fmt.Fprintf(r.log, "chaos: %s approving %s: %v (trying again)\n", approver, gate, err)
			continue
		}
		r.decided[gate] = true
		if err := r.maybeKill(ctx); err != nil {
			return err
		}
	}
	return nil
}

// judge fills in the result from the run's report and the load, and checks
// the invariants.
func (r *chaosRun) judge(ctx context.Context, load *lab.Load) error {
	rep, err := r.op.Report(ctx, r.started.WorkflowID)
	if err != nil {
		return err
	}
	// Let the load see the app write again after the run, then stop it.
	n := load.Acked()
	_ = lab.WaitFor(ctx, 5*time.Second, 10*time.Millisecond, func() bool { return load.Acked() >= n+10 })
	stats := load.Stop()

	res := r.res
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
	res.open = r.hist.open()
	res.problems = append(res.problems, r.check(ctx, r.lab, rep, stats, res, r.snapshot, r.hist)...)
	return nil
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
