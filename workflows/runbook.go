package workflows

import (
	"errors"
	"fmt"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/drctl/drctl/activities"
	"github.com/drctl/drctl/runbooks"
)

// Defaults for steps that do not set their own.
var (
	// DefaultTimeout bounds one attempt of an action.
	DefaultTimeout = 5 * time.Minute
	// DefaultHeartbeat is how long a silent activity may go before Temporal
	// presumes its worker dead and retries it elsewhere. The registry
	// heartbeats for every action, so this bounds worker-loss detection.
	DefaultHeartbeat = 10 * time.Second
	// DefaultRetry is used for steps without a retry block.
	DefaultRetry = runbooks.RetryPolicy{
		MaxAttempts:        5,
		InitialInterval:    runbooks.Duration(time.Second),
		BackoffCoefficient: 2,
		MaxInterval:        runbooks.Duration(30 * time.Second),
	}
)

// Failure types of a run that did not succeed; the run report travels as the
// failure's details.
const (
	ErrRunFailed  = "drctl.RunFailed"
	ErrRunAborted = "drctl.RunAborted"
)

// Interpreter versions. Every change to the command sequence of runs is a
// new version, chosen with workflow.GetVersion when a run starts, so runs
// recorded by an older build replay unchanged (tests/histories proves it).
const (
	versionChange = "drctl-interpreter"
	// versionOriginal: compensate succeeded steps only; a failing step
	// leaves gates and waits to run out.
	versionOriginal = workflow.DefaultVersion
	// versionCompensateAttempted: compensate failed and cancelled actions
	// too (they may have acted part-way), skip compensations of steps that
	// changed nothing, cancel gates and waits as soon as a step fails.
	versionCompensateAttempted workflow.Version = 1
	// versionNotify: runs post progress and approval requests through the
	// notifier activity (Slack).
	versionNotify workflow.Version = 2
	// versionNotifyQuiet: a notifier that says it is off (no message, no
	// error) turns notifications off for the run (no gate Observes for
	// nobody); a gate the run stops at is edited as no longer needed; a
	// closing run waits at most a few seconds for its last notifications.
	versionNotifyQuiet workflow.Version = 3
	// versionNotifyOrdered: one sender posts the run's notifications in
	// the order the run produced them (a gate's Observes run in its turn),
	// so a thread never shows "run finished" above "approved by bob"; who
	// starts, decides or controls the run, and their reasons, are checked
	// (CheckIdentity, CheckReason) before anything of theirs is recorded.
	versionNotifyOrdered workflow.Version = 4
	// versionSteadyState: a drill observes what its steps touch before the
	// first acts and after the way back, and fails when anything is not
	// back (steady.go).
	versionSteadyState workflow.Version = 5
	// versionScheduled: a run records its outcome in search attributes as
	// it ends; a drill's failback child takes the faults meant for it and
	// the drill's automatic approver, and carries search attributes; a
	// gate of a run that names an automatic approver (a scheduled drill
	// whose schedule says so) is decided by it at once, under the same
	// rules as a person's decision.
	versionScheduled workflow.Version = 6
	// versionSites: an action runs where its reach, its step's run_on and
	// its target's site place it (a site's task queue, or the shared one);
	// an action whose worker lacks the target's secret is offered to the
	// other workers in turn (placement.go); a run a site watch proposed
	// counts its RTO from the detection and, when its site says
	// auto_approve_after, approves a gate nobody decided in that time.
	// (The plan and readiness workflows, short-lived, place their Observes
	// the same way without a version.)
	versionSites workflow.Version = 7
	// versionLatest is the version new runs take.
	versionLatest = versionSites
)

// InterpreterVersion is the interpreter version new runs take (what
// `drctl version` reports; runs keep the version they started with).
const InterpreterVersion = int(versionLatest)

// Run is the runbook interpreter workflow.
func Run(ctx workflow.Context, in RunInput) (*Report, error) {
	version := workflow.GetVersion(ctx, versionChange, versionOriginal, versionLatest)
	if err := checkInput(in, version); err != nil {
		return nil, temporal.NewNonRetryableApplicationError(err.Error(), ErrRunFailed, nil)
	}
	if version >= versionScheduled {
		if err := checkLineage(ctx, in); err != nil {
			return nil, temporal.NewNonRetryableApplicationError(err.Error(), ErrRunFailed, nil)
		}
	}
	r, err := newRunner(ctx, in)
	if err != nil {
		return nil, temporal.NewNonRetryableApplicationError(err.Error(), ErrRunFailed, nil)
	}
	r.version = version
	r.note.on = version >= versionNotify
	if err := r.registerHandlers(ctx); err != nil {
		return nil, err
	}
	if version >= versionSites {
		r.startMemoWriter(ctx)
	}
	r.publish()
	r.notifyRunStarted()
	metricRunStarted(ctx, r.rep)

	if r.runPreflight(ctx) {
		if r.version >= versionSteadyState && r.rep.Mode == ModeDrill {
			r.steadyBefore(ctx)
		}
		r.runSteps(ctx)
	}
	return r.finish(ctx)
}

type runner struct {
	ctx     workflow.Context // root context, for memo updates
	in      RunInput
	rb      *runbooks.Runbook
	params  map[string]string
	rep     *Report
	index   map[string]int // step id -> index in rep.Steps
	outputs map[string]map[string]any

	running   int
	completed []string // succeeded action steps, in completion order
	paused    bool
	aborting  *Control
	failed    string // first step whose failure stops the run
	decisions map[string]Decision
	// queued holds signalled decisions for gates not reached yet; they are
	// checked when the gate opens.
	queued   map[string][]Decision
	lastMemo string
	version  workflow.Version
	// attempted lists action steps whose activity was started, in the
	// order they ended (succeeded, failed or cancelled).
	attempted []string
	note      notifier
	// probes are the Observes a drill's steady-state check repeats.
	probes []steadyProbe
	// fanouts are the running fan-out steps' progress, for the memo.
	fanouts map[string]*FanOutProgress
	// memoNext is the memo a publish left for the memo writer (from
	// versionSites on): the writer upserts the latest once the work of the
	// moment has run, so a step that starts and ends in one workflow task
	// (a local activity) costs one memo write, not two or three.
	memoNext   *Status
	memoWriter bool
}

func newRunner(ctx workflow.Context, in RunInput) (*runner, error) {
	rb := in.Runbook
	params, err := runbooks.ParamValues(&rb, in.Params)
	if err != nil {
		return nil, err
	}
	if in.Mode == "" {
		in.Mode = ModeFailover
	}
	info := workflow.GetInfo(ctx)
	r := &runner{
		ctx:       ctx,
		in:        in,
		rb:        &rb,
		params:    params,
		index:     map[string]int{},
		outputs:   map[string]map[string]any{},
		decisions: map[string]Decision{},
		queued:    map[string][]Decision{},
		fanouts:   map[string]*FanOutProgress{},
		note:      notifier{gates: map[string]*activities.MessageRef{}, gateDone: map[string]bool{}},
		rep: &Report{
			WorkflowID: info.WorkflowExecution.ID,
			RunID:      info.WorkflowExecution.RunID,
			Runbook:    rb.Name,
			Lock:       rb.Lock,
			Mode:       in.Mode,
			StartedBy:  in.StartedBy,
			Reason:     in.Reason,
			State:      StateRunning,
			// The time the run was asked for, not when a worker first took
			// it: time with no worker up counts against the RTO.
			StartedAt:  workflow.GetInfo(ctx).WorkflowStartTime,
			Objectives: rb.Objectives,
			Chaos:      in.Chaos,
			FailbackOf: in.FailbackOf,
			Detection:  in.Detection,
		},
	}
	// Target attributes may use params and run fields; fix them now, so
	// every step sees the same targets.
	targets, err := runbooks.ResolveTargets(rb.Targets, runbooks.Scope{Params: params, Run: r.runFields()})
	if err != nil {
		return nil, err
	}
	r.rb.Targets = targets
	add := func(s runbooks.Step, kind string) {
		sr := StepReport{ID: s.ID, Kind: kind, Action: s.Action, State: StepPending}
		if s.Approval != nil {
			sr.Kind = KindApproval
			sr.Approval = &ApprovalState{Message: s.Approval.Message, Approvers: s.Approval.Approvers, TwoPerson: s.Approval.TwoPerson}
			if s.Approval.MinApprovals > 1 {
				sr.Approval.MinApprovals = s.Approval.MinApprovals
			}
		}
		r.index[s.ID] = len(r.rep.Steps)
		r.rep.Steps = append(r.rep.Steps, sr)
	}
	for _, s := range rb.Preflight {
		add(s, KindPreflight)
	}
	for _, s := range rb.Steps {
		add(s, KindStep)
	}
	return r, nil
}

func (r *runner) step(id string) *StepReport { return &r.rep.Steps[r.index[id]] }

func (r *runner) now() time.Time { return workflow.Now(r.ctx) }

func (r *runner) stopping() bool { return r.aborting != nil || r.failed != "" }

func (r *runner) event(kind, step, by, reason string) {
	r.rep.Events = append(r.rep.Events, Event{At: r.now(), Kind: kind, Step: step, By: by, Reason: reason})
}

// runPreflight runs every preflight check in parallel and reports whether
// all passed. Nothing has changed yet when one fails, so nothing is
// compensated.
func (r *runner) runPreflight(ctx workflow.Context) bool {
	pctx, cancel := workflow.WithCancel(ctx)
	defer cancel()
	for _, s := range r.rb.Preflight {
		r.launch(pctx, s)
	}
	_ = workflow.Await(ctx, func() bool { return r.running == 0 || r.aborting != nil })
	if r.aborting != nil {
		cancel() // an abort during preflight stops the checks
		_ = workflow.Await(ctx, func() bool { return r.running == 0 })
	}
	if r.running > 0 { // the workflow was cancelled while checks ran
		r.drain()
	}
	return !r.stopping() && ctx.Err() == nil
}

// runSteps runs the step DAG: every step whose needs are met starts at once,
// so independent branches run in parallel. Once the run is stopping nothing
// new starts; the loop ends when no step is running.
func (r *runner) runSteps(ctx workflow.Context) {
	stepCtx, cancelSteps := workflow.WithCancel(ctx)
	// Gates and waits get their own context: from versionCompensateAttempted
	// on they are cancelled as soon as a step fails, so compensation does
	// not wait for a decision or a timer that no longer matters.
	holdCtx, cancelHolds := workflow.WithCancel(stepCtx)
	aborted, held := false, false
	for {
		if r.aborting != nil && !aborted {
			aborted = true
			cancelSteps() // an operator abort stops running steps too
		}
		if r.failed != "" && !held && r.version >= versionCompensateAttempted {
			held = true
			cancelHolds()
		}
		if !r.paused && !r.stopping() {
			for _, s := range r.rb.Steps {
				if !r.ready(s) {
					continue
				}
				if s.Approval != nil || s.Action == activities.ActionWait {
					r.launch(holdCtx, s)
				} else {
					r.launch(stepCtx, s)
				}
			}
		}
		if r.running == 0 && (r.stopping() || !r.anyPending()) {
			break
		}
		progress := r.progressMark()
		if err := workflow.Await(ctx, func() bool { return r.progressMark() != progress }); err != nil {
			// The workflow itself was cancelled: treat it as an abort.
			if r.aborting == nil {
				r.aborting = &Control{Op: OpAbort, By: "temporal", Reason: "workflow cancellation requested"}
				r.event(EventAbort, "", "temporal", "workflow cancellation requested")
			}
			cancelSteps()
			r.drain()
			break
		}
	}
	cancelSteps()
	r.skipPending()
}

func (r *runner) skipPending() {
	for i := range r.rep.Steps {
		if r.rep.Steps[i].State == StepPending {
			r.rep.Steps[i].State = StepSkipped
		}
	}
}

// drain waits, on a context that survives cancellation, until every running
// step has acknowledged cancellation: compensating while an action might
// still act would race it.
func (r *runner) drain() {
	dctx, _ := workflow.NewDisconnectedContext(r.ctx)
	_ = workflow.Await(dctx, func() bool { return r.running == 0 })
}

// progressMark changes whenever something the main loop reacts to changes.
func (r *runner) progressMark() string {
	return fmt.Sprintf("%d/%d/%t/%t/%s", r.running, len(r.completed), r.paused, r.aborting != nil, r.failed)
}

func (r *runner) anyPending() bool {
	for _, s := range r.rb.Steps {
		if r.step(s.ID).State == StepPending {
			return true
		}
	}
	return false
}

func (r *runner) ready(s runbooks.Step) bool {
	if r.step(s.ID).State != StepPending {
		return false
	}
	for _, n := range s.Needs {
		st := r.step(n)
		ok := st.State == StepSucceeded || (st.State == StepFailed && r.onFailure(n) == runbooks.OnFailureContinue)
		if !ok {
			return false
		}
	}
	return true
}

func (r *runner) onFailure(id string) string {
	s, _ := r.rb.Step(id)
	if s.OnFailure == "" {
		return runbooks.OnFailureAbort
	}
	return s.OnFailure
}

func (r *runner) launch(ctx workflow.Context, s runbooks.Step) {
	st := r.step(s.ID)
	now := r.now()
	st.State, st.StartedAt = StepRunning, &now
	r.running++
	r.publish()
	workflow.Go(ctx, func(ctx workflow.Context) {
		defer func() {
			r.running--
			end := r.now()
			st := r.step(s.ID)
			st.EndedAt = &end
			st.TookMs = millis(end.Sub(*st.StartedAt))
			metricStepFinished(r.ctx, r.rep, st)
			r.publish()
		}()
		switch {
		case s.Approval != nil:
			r.awaitApproval(ctx, s)
		case s.Action == activities.ActionWait:
			r.wait(ctx, s)
		case s.Child != nil:
			r.fanOut(ctx, s)
		default:
			r.execute(ctx, s)
		}
	})
}

func (r *runner) runFields() map[string]string {
	return runbooks.RunFields(r.rep.WorkflowID, r.rep.Mode, r.rep.StartedBy, r.rep.Lock)
}

func (r *runner) scope() runbooks.Scope {
	return runbooks.Scope{
		Params:  r.params,
		Outputs: r.outputs,
		Run:     r.runFields(),
		Targets: runbooks.TargetScope(r.rb.Targets),
	}
}

// checkChaos accepts faults only in drills and only for action steps.
func (r *runner) fault(step string, compensating bool) *activities.Fault {
	if compensating {
		return nil
	}
	for i := range r.in.Chaos {
		if r.in.Chaos[i].Step == step {
			return &r.in.Chaos[i]
		}
	}
	return nil
}

func (r *runner) request(step, action string, with map[string]any, compensating bool) activities.Request {
	return activities.Request{
		Fault: r.fault(step, compensating),
		Run: activities.Run{
			WorkflowID: r.rep.WorkflowID, RunID: r.rep.RunID, FirstRunID: workflow.GetInfo(r.ctx).FirstRunID,
			Lock: r.rep.Lock, Mode: r.rep.Mode, StartedBy: r.rep.StartedBy,
			Runbook: r.rep.Runbook,
		},
		Step:         step,
		Action:       action,
		With:         with,
		Targets:      r.rb.Targets,
		Compensating: compensating,
	}
}

func (r *runner) execute(ctx workflow.Context, s runbooks.Step) {
	st := r.step(s.ID)
	with, err := runbooks.ResolveMap(s.With, r.scope())
	if err != nil {
		r.fail(s, 0, fmt.Errorf("resolve inputs: %w", err))
		return
	}
	ctx = workflow.WithActivityOptions(ctx, activityOptions(s.ID, s.Timeout, s.Deadline, s.Heartbeat, s.Retry))
	var res activities.Result
	site := runbooks.Where(s.RunOn, s.Reach, with, r.rb.Targets)
	if site != "" && s.Deadline > 0 && r.version >= versionSites {
		// Waiting in the site's queue for a worker counts against the
		// deadline, and says so when it is what ran out.
		o := workflow.GetActivityOptions(ctx)
		o.ScheduleToStartTimeout = s.Deadline.D()
		ctx = workflow.WithActivityOptions(ctx, o)
	}
	err = r.runAction(ctx, site, s.Local && s.RunOn == "", s.Action, r.request(s.ID, s.Action, with, false), &res)
	r.attempted = append(r.attempted, s.ID)
	if err != nil {
		if temporal.IsCanceledError(err) {
			st.State = StepCancelled
			return
		}
		attempts := attemptsOf(err)
		if site != "" && neverStarted(err) {
			// Said in words: ErrorText would keep only "timed out".
			err = fmt.Errorf("%s: no worker of site %s took the step within its deadline (task queue %s); start one there with drctl worker --site %s",
				ErrorText(err), site, SiteQueue(workflow.GetInfo(ctx).TaskQueueName, site), site)
		}
		r.fail(s, attempts, err)
		return
	}
	st.State, st.Attempts, st.Changed, st.Summary, st.Worker = StepSucceeded, res.Attempt, res.Changed, res.Summary, res.Worker
	st.Outputs = res.Outputs
	r.outputs[s.ID] = nonNil(res.Outputs)
	r.completed = append(r.completed, s.ID)
}

func (r *runner) wait(ctx workflow.Context, s runbooks.Step) {
	st := r.step(s.ID)
	with, err := runbooks.ResolveMap(s.With, r.scope())
	if err != nil {
		r.fail(s, 0, fmt.Errorf("resolve inputs: %w", err))
		return
	}
	d, err := runbooks.ParseDuration(fmt.Sprint(with["duration"]))
	if err != nil {
		r.fail(s, 0, fmt.Errorf("duration: %w", err))
		return
	}
	if err := workflow.Sleep(ctx, d.D()); err != nil {
		st.State = StepCancelled
		return
	}
	st.State, st.Summary = StepSucceeded, "waited "+d.String()
	r.outputs[s.ID] = map[string]any{}
	r.completed = append(r.completed, s.ID)
}

// fail records a step failure. Unless the step says on_failure: continue,
// the run stops: nothing new starts and completed steps are compensated.
func (r *runner) fail(s runbooks.Step, attempts int32, err error) {
	st := r.step(s.ID)
	st.State, st.Attempts, st.Error = StepFailed, attempts, ErrorText(err)
	r.event(EventStepFailed, s.ID, "", st.Error)
	r.notifyStepFailed(s.ID)
	if r.onFailure(s.ID) == runbooks.OnFailureContinue && s.Approval == nil {
		r.outputs[s.ID] = map[string]any{}
		return
	}
	if r.failed == "" {
		r.failed = s.ID
	}
}

func (r *runner) finish(ctx workflow.Context) (*Report, error) {
	succeeded := !r.stopping() && ctx.Err() == nil
	if succeeded {
		// A proposed run's clock started when its site was declared lost.
		from := r.rep.StartedAt
		if d := r.in.Detection; d != nil && r.version >= versionSites && d.At.Before(from) {
			from = d.At
		}
		rto := runbooks.Duration(r.now().Sub(from))
		r.rep.RTO = &rto
	}
	r.rep.RPO = r.maxRPO()
	r.skipPending()
	compensationsFailed := 0
	steadyBack := true
	var failbackErr error
	switch {
	case succeeded && r.rep.Mode == ModeDrill && r.in.Failback != nil && r.version >= versionSteadyState:
		err := r.failback()
		failbackErr = err
		// From versionScheduled on, a failed way back is compared too: the
		// report names what it left changed.
		if r.rep.Steady != nil && (err == nil || r.version >= versionScheduled) {
			steadyBack = r.steadyAfter()
		}
	case !succeeded && r.aborting == nil && r.rep.Mode == ModeDrill && r.in.Failback != nil && r.version >= versionScheduled && r.changedForGood():
		// The forward path failed after a step no compensation undoes (a
		// promotion): the failback runbook is the way back from there,
		// not compensations that cannot restore the whole. An abort is a
		// person saying stop: it compensates, and starts nothing as big
		// as a failback.
		failbackErr = r.failback()
		if r.rep.Steady != nil {
			steadyBack = r.steadyAfter()
		}
	case succeeded && r.rep.Mode == ModeDrill:
		compensationsFailed = r.compensate("drill failback")
		if r.rep.Steady != nil {
			steadyBack = r.steadyAfter()
		}
	case !succeeded:
		compensationsFailed = r.compensate("run stopped")
		if r.rep.Mode == ModeDrill && r.rep.Steady != nil {
			// A failed drill still says what its way back left changed.
			steadyBack = r.steadyAfter()
		}
	}
	end := r.now()
	r.rep.EndedAt = &end
	switch {
	case succeeded && compensationsFailed > 0:
		// A drill whose failback failed left the system failed over.
		r.rep.State = StateFailed
		r.rep.Error = fmt.Sprintf("drill failback: %d compensation(s) failed; the system is still failed over", compensationsFailed)
		if !steadyBack {
			r.rep.Error += "; not back as before the drill: " + steadySummary(r.rep.Steady.Differences)
		}
	case succeeded && failbackErr != nil:
		r.rep.State = StateFailed
		r.rep.Error = "drill: " + failbackErr.Error() + "; the system may still be failed over"
		if !steadyBack {
			r.rep.Error += "; not back as before the drill: " + steadySummary(r.rep.Steady.Differences)
		}
	case succeeded && !steadyBack:
		r.rep.State = StateFailed
		r.rep.Error = "drill: the way back ran, but not everything is as it was before the drill: " + steadySummary(r.rep.Steady.Differences)
	case succeeded:
		r.rep.State = StateSucceeded
	case r.aborting != nil:
		r.rep.State = StateAborted
		r.rep.Error = fmt.Sprintf("aborted by %s: %s", r.aborting.By, r.aborting.Reason)
	default:
		r.rep.State = StateFailed
		if r.failed != "" {
			r.rep.Error = fmt.Sprintf("step %q failed: %s", r.failed, r.step(r.failed).Error)
		}
	}
	if !succeeded && failbackErr != nil {
		r.rep.Error += "; the way back: " + failbackErr.Error()
	} else if !succeeded && r.rep.Failback != nil {
		r.rep.Error += "; the way back: failback " + r.rep.Failback.Runbook + " succeeded"
	}
	if r.version >= versionScheduled && r.rep.State != StateSucceeded {
		// RTO is the time to a verified recovery: a run that did not
		// succeed (a drill that did not get everything back) has none.
		r.rep.RTO = nil
	}
	if r.rep.RTO != nil {
		r.rep.RTOMs = millis(r.rep.RTO.D())
	}
	if r.rep.RPO != nil && !r.rep.RPOUnknown {
		r.rep.RPOMs = millis(r.rep.RPO.D())
	}
	if !succeeded && compensationsFailed > 0 {
		r.rep.Error += fmt.Sprintf("; %d compensation(s) failed", compensationsFailed)
	}
	if !succeeded && !steadyBack {
		r.rep.Error += "; not back as before the drill: " + steadySummary(r.rep.Steady.Differences)
	}
	if r.version >= versionScheduled {
		r.upsertOutcome()
	}
	r.stopMemoWriter()
	r.publish()
	metricRunFinished(ctx, r.rep)
	r.notifyFinished()
	r.flushNotifications()
	// Let accepted updates finish before the run closes.
	_ = workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) })
	switch r.rep.State {
	case StateSucceeded:
		return r.rep, nil
	case StateAborted:
		return nil, temporal.NewNonRetryableApplicationError(r.rep.Error, ErrRunAborted, nil, r.rep)
	default:
		return nil, temporal.NewNonRetryableApplicationError(r.rep.Error, ErrRunFailed, nil, r.rep)
	}
}

// changedForGood reports whether one of the steps only the failback
// undoes (Failback.After) succeeded and changed something.
func (r *runner) changedForGood() bool {
	for _, id := range r.in.Failback.After {
		if i, ok := r.index[id]; ok && r.rep.Steps[i].State == StepSucceeded && r.rep.Steps[i].Changed {
			return true
		}
	}
	return false
}

// compensate runs compensations in reverse order of completion, on a
// context that survives cancellation of the run, and returns how many
// failed. A failing compensation is recorded and the rest still run.
//
// Which steps: from versionCompensateAttempted on, every action step whose
// activity was started — also those that failed or were cancelled, since
// they may have acted part-way (compensations observe first, so undoing
// nothing is safe) — except succeeded steps that changed nothing, which
// have nothing of this run's to undo. Before that version: succeeded steps.
func (r *runner) compensate(why string) int {
	order := r.completed
	if r.version >= versionCompensateAttempted {
		order = r.attempted
	}
	failed := 0
	started := false
	ctx, _ := workflow.NewDisconnectedContext(r.ctx)
	for i := len(order) - 1; i >= 0; i-- {
		id := order[i]
		s, _ := r.rb.Step(id)
		if s.Compensate == nil {
			continue
		}
		st := r.step(id)
		if r.version >= versionCompensateAttempted && st.State == StepSucceeded && !st.Changed {
			r.rep.Compensations = append(r.rep.Compensations, StepReport{ID: id, Kind: KindCompensation, Action: s.Compensate.Action, State: StepSkipped, Summary: "nothing to undo: the step found its work already done"})
			continue
		}
		if !started {
			started = true
			r.rep.State = StateCompensating
			r.publish()
		}
		c := s.Compensate
		start := r.now()
		cr := StepReport{ID: id, Kind: KindCompensation, Action: c.Action, State: StepRunning, StartedAt: &start, Summary: why}
		with, err := runbooks.ResolveMap(c.With, r.scope())
		if err == nil {
			actx := workflow.WithActivityOptions(ctx, activityOptions("compensate:"+id, c.Timeout, 0, 0, c.Retry))
			var res activities.Result
			err = r.runAction(actx, runbooks.Where(s.RunOn, c.Reach, with, r.rb.Targets), c.Local && s.RunOn == "", c.Action, r.request(id, c.Action, with, true), &res)
			cr.Attempts, cr.Changed, cr.Outputs, cr.Worker = res.Attempt, res.Changed, res.Outputs, res.Worker
			if res.Summary != "" {
				cr.Summary = res.Summary
			}
		}
		end := r.now()
		cr.EndedAt = &end
		cr.TookMs = millis(end.Sub(start))
		if err != nil {
			failed++
			cr.State, cr.Error, cr.Attempts = StepFailed, ErrorText(err), attemptsOf(err)
			r.event(EventCompensationFailed, id, "", cr.Error)
		} else {
			cr.State = StepSucceeded
		}
		r.rep.Compensations = append(r.rep.Compensations, cr)
	}
	return failed
}

func (r *runner) maxRPO() *runbooks.Duration {
	var worst *runbooks.Duration
	for _, st := range r.rep.Steps {
		v, ok := st.Outputs[activities.OutputRPO]
		if !ok {
			continue
		}
		d, err := time.ParseDuration(fmt.Sprint(v))
		if err != nil || d < 0 { // activities.RPOUnknown, or not a duration
			// A step that could not measure its data loss says so; the
			// report must not look as if nothing was lost.
			r.rep.RPOUnknown = true
			continue
		}
		if rd := runbooks.Duration(d); worst == nil || rd > *worst {
			worst = &rd
		}
	}
	return worst
}

// publish refreshes the memo (status readable with no worker) and the
// workflow's current details, when they changed.
func (r *runner) publish() {
	s := Status{
		Runbook: r.rep.Runbook, Lock: r.rep.Lock, Mode: r.rep.Mode,
		StartedBy: r.rep.StartedBy, StartedAt: r.rep.StartedAt, Reason: r.rep.Reason,
		State: r.rep.State, Total: len(r.rep.Steps),
	}
	if r.paused && s.State == StateRunning {
		s.State = StatePaused
	}
	for _, st := range r.rep.Steps {
		switch st.State {
		case StepRunning:
			s.Running = append(s.Running, st.ID)
		case StepWaiting:
			s.Waiting = append(s.Waiting, st.ID)
		case StepSucceeded, StepFailed, StepSkipped, StepCancelled:
			s.Done++
		}
		if st.State == StepSucceeded && st.Changed && st.Kind == KindStep && st.Action != "" {
			s.Changed = append(s.Changed, st.ID)
		}
	}
	r.rep.Paused = r.paused
	text := fmt.Sprintf("%s: %d/%d steps done", s.State, s.Done, s.Total)
	if len(s.Running) > 0 {
		text += "; running " + strings.Join(s.Running, ", ")
	}
	if len(s.Waiting) > 0 {
		text += "; awaiting approval: " + strings.Join(s.Waiting, ", ")
	}
	for _, id := range workflow.DeterministicKeys(r.fanouts) {
		p := *r.fanouts[id]
		s.FanOut = append(s.FanOut, p)
		text += "; " + p.String()
	}
	if text == r.lastMemo {
		return
	}
	r.lastMemo = text
	metricApprovalsWaiting(r.ctx, r.rep, len(s.Waiting))
	workflow.SetCurrentDetails(r.ctx, text)
	if r.memoWriter {
		r.memoNext = &s
		return
	}
	_ = workflow.UpsertMemo(r.ctx, map[string]any{MemoKey: s})
}

// startMemoWriter starts the coroutine that writes the memo publish left.
func (r *runner) startMemoWriter(ctx workflow.Context) {
	r.memoWriter = true
	workflow.Go(ctx, func(ctx workflow.Context) {
		for {
			if err := workflow.Await(ctx, func() bool { return r.memoNext != nil || !r.memoWriter }); err != nil || !r.memoWriter {
				return
			}
			s := *r.memoNext
			r.memoNext = nil
			_ = workflow.UpsertMemo(ctx, map[string]any{MemoKey: s})
		}
	})
}

// stopMemoWriter writes what is left for the memo writer and has publish
// write at once from here on: the run is ending, and the writer might not
// run again before it does.
func (r *runner) stopMemoWriter() {
	if !r.memoWriter {
		return
	}
	r.memoWriter = false
	if s := r.memoNext; s != nil {
		r.memoNext = nil
		_ = workflow.UpsertMemo(r.ctx, map[string]any{MemoKey: *s})
	}
}

// runAction runs an action where it belongs (runAction in placement.go);
// runs from before versionSites send every action to the shared queue. An
// action that does no I/O (local) runs as a local activity when no
// run_on places it.
func (r *runner) runAction(ctx workflow.Context, site string, local bool, name string, req activities.Request, out any) error {
	switch {
	case r.version < versionSites:
		return workflow.ExecuteActivity(ctx, name, req).Get(ctx, out)
	case local && site == "":
		o := workflow.GetActivityOptions(ctx)
		lctx := workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{
			StartToCloseTimeout: o.StartToCloseTimeout, ScheduleToCloseTimeout: o.ScheduleToCloseTimeout, RetryPolicy: o.RetryPolicy,
		})
		return workflow.ExecuteLocalActivity(lctx, name, req).Get(ctx, out)
	}
	return runAction(ctx, site, name, req, out)
}

func activityOptions(id string, timeout, deadline, heartbeat runbooks.Duration, retry *runbooks.RetryPolicy) workflow.ActivityOptions {
	p := DefaultRetry
	if retry != nil {
		if retry.MaxAttempts != 0 {
			p.MaxAttempts = retry.MaxAttempts
		}
		if retry.InitialInterval != 0 {
			p.InitialInterval = retry.InitialInterval
		}
		if retry.BackoffCoefficient != 0 {
			p.BackoffCoefficient = retry.BackoffCoefficient
		}
		if retry.MaxInterval != 0 {
			p.MaxInterval = retry.MaxInterval
		}
	}
	// A first interval above the cap (max_interval unset, its default
	// shorter) would make the server refuse the policy and the run hang:
	// the cap is at least the first interval.
	if p.MaxInterval < p.InitialInterval {
		p.MaxInterval = p.InitialInterval
	}
	o := workflow.ActivityOptions{
		ActivityID:             id,
		Summary:                id,
		StartToCloseTimeout:    DefaultTimeout,
		ScheduleToCloseTimeout: deadline.D(),
		HeartbeatTimeout:       DefaultHeartbeat,
		WaitForCancellation:    true,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:    p.InitialInterval.D(),
			BackoffCoefficient: p.BackoffCoefficient,
			MaximumInterval:    p.MaxInterval.D(),
			MaximumAttempts:    int32(p.MaxAttempts),
		},
	}
	if timeout > 0 {
		o.StartToCloseTimeout = timeout.D()
	}
	if heartbeat > 0 {
		o.HeartbeatTimeout = heartbeat.D()
	}
	return o
}

// attemptsOf reads the attempt count an action failure carries.
func attemptsOf(err error) int32 {
	var ae *temporal.ApplicationError
	if errors.As(err, &ae) && ae.HasDetails() {
		var d activities.FailureDetail
		if ae.Details(&d) == nil {
			return d.Attempt
		}
	}
	return 0
}

// ErrorText is the innermost useful message of an activity error, without
// Temporal's wrapping ("activity error (type: ..., scheduledEventID: ...)")
// or the type and retryability it appends ("(type: drctl.ActionFailed,
// retryable: true)"): reports, Slack and readiness are read by people.
func ErrorText(err error) string {
	var ae *temporal.ApplicationError
	if errors.As(err, &ae) {
		return ae.Message()
	}
	var te *temporal.TimeoutError
	if errors.As(err, &te) {
		return fmt.Sprintf("timed out (%s)", strings.ToLower(strings.TrimPrefix(enumspb.TimeoutType_name[int32(te.TimeoutType())], "TIMEOUT_TYPE_")))
	}
	return err.Error()
}

func nonNil(m map[string]any) map[string]any {
	if m == nil {
		return map[string]any{}
	}
	return m
}

// millis is a duration as the whole milliseconds JSON readers compute
// with (beside the duration's text).
func millis(d time.Duration) *int64 {
	v := d.Milliseconds()
	return &v
}
