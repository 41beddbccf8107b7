package workflows_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/drctl/drctl/internal/sshsig"
	"golang.org/x/crypto/ssh"

	"github.com/drctl/drctl/internal/testwait"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/drctl/drctl/activities"
	"github.com/drctl/drctl/activities/note"
	"github.com/drctl/drctl/runbooks"
	"github.com/drctl/drctl/workflows"
)

// recorder is a fake provider: every call of an action is recorded, and a
// step listed in fail fails (permanently when listed in permanent).
type recorder struct {
	mu        sync.Mutex
	calls     []string // "step" or "compensate:step"
	fail      map[string]bool
	permanent map[string]bool
	unchanged map[string]bool // steps that find their work already done
	hooks     map[string]func(ctx context.Context) error
}

func newRecorder() *recorder {
	return &recorder{fail: map[string]bool{}, permanent: map[string]bool{}, unchanged: map[string]bool{}, hooks: map[string]func(context.Context) error{}}
}

func (r *recorder) do(ctx context.Context, req activities.Request) (activities.Result, error) {
	name := req.Step
	if req.Compensating {
		name = "compensate:" + req.Step
	}
	r.mu.Lock()
	r.calls = append(r.calls, name)
	hook := r.hooks[name]
	fail, perm, unchanged := r.fail[name], r.permanent[name], r.unchanged[name]
	r.mu.Unlock()
	if hook != nil {
		if err := hook(ctx); err != nil {
			return activities.Result{}, err
		}
	}
	attempt := activity.GetInfo(ctx).Attempt
	if fail {
		err := fmt.Errorf("%s broke on attempt %d", name, attempt)
		if perm {
			err = activities.Permanent(err)
		}
		return activities.Result{}, temporal.NewApplicationErrorWithOptions(err.Error(), activities.FailureType,
			temporal.ApplicationErrorOptions{NonRetryable: perm, Details: []any{activities.FailureDetail{Attempt: attempt}}})
	}
	out := map[string]any{"echo": req.With["value"]}
	return activities.Result{Changed: !unchanged, Summary: "did " + name, Outputs: out, Attempt: attempt}, nil
}

func (r *recorder) Calls() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.calls...)
}

func (r *recorder) count(name string) int {
	n := 0
	for _, c := range r.Calls() {
		if c == name {
			n++
		}
	}
	return n
}

type harness struct {
	testsuite.WorkflowTestSuite
	env   *testsuite.TestWorkflowEnvironment
	rec   *recorder
	notes *notes
}

// notes is a fake notifier: it records what the run would post.
// notes is a fake notifier: a message reaches the channel (sent) when its
// call returns, after the delay set for its kind.
type notes struct {
	mu    sync.Mutex
	sent  []activities.Notification
	delay map[string]time.Duration
}

func (n *notes) notify(_ context.Context, note activities.Notification) (activities.MessageRef, error) {
	time.Sleep(n.delay[note.Kind]) // a slow Slack; the map is only read
	n.mu.Lock()
	defer n.mu.Unlock()
	n.sent = append(n.sent, note)
	return activities.MessageRef{Channel: "C1", TS: fmt.Sprintf("1.%d", len(n.sent))}, nil
}

func (n *notes) kinds() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []string
	for _, s := range n.sent {
		out = append(out, s.Kind+":"+s.Step)
	}
	return out
}

func newHarness(t *testing.T) *harness {
	h := &harness{rec: newRecorder(), notes: &notes{}}
	h.SetLogger(nopLogger{})
	h.env = h.NewTestWorkflowEnvironment()
	h.env.RegisterWorkflowWithOptions(workflows.Run, workflow.RegisterOptions{Name: workflows.RunbookWorkflow})
	h.env.RegisterActivityWithOptions(h.rec.do, activity.RegisterOptions{Name: "test.do"})
	h.env.RegisterActivityWithOptions(h.rec.do, activity.RegisterOptions{Name: "test.undo"})
	h.env.RegisterActivityWithOptions(func(context.Context, activities.Request) (activities.Observation, error) {
		return activities.Observation{Current: "standby", Changes: []string{"promote it"}}, nil
	}, activity.RegisterOptions{Name: "test.do" + activities.ObserveSuffix})
	h.env.RegisterActivityWithOptions(h.notes.notify, activity.RegisterOptions{Name: activities.NotifyActivity})
	h.env.SetTestTimeout(30 * time.Second)
	return h
}

func act(id string, needs ...string) runbooks.Step {
	return runbooks.Step{
		ID: id, Action: "test.do", Needs: needs,
		With:       map[string]any{"value": id},
		Retry:      &runbooks.RetryPolicy{MaxAttempts: 3, InitialInterval: runbooks.Duration(time.Second)},
		Compensate: &runbooks.Compensation{Action: "test.undo"},
	}
}

func gate(id string, approvers []string, needs ...string) runbooks.Step {
	return runbooks.Step{ID: id, Needs: needs, Approval: &runbooks.Approval{Approvers: approvers, TwoPerson: true}}
}

func book(steps ...runbooks.Step) runbooks.Runbook {
	return runbooks.Runbook{APIVersion: runbooks.APIVersion, Name: "test", Lock: "test", Steps: steps}
}

func (h *harness) run(rb runbooks.Runbook, mode string) {
	h.env.ExecuteWorkflow(workflows.RunbookWorkflow, workflows.RunInput{Runbook: rb, Mode: mode, StartedBy: "alice"})
}

// report returns the run report whether the run succeeded or not.
func (h *harness) report(t *testing.T) *workflows.Report {
	t.Helper()
	if !h.env.IsWorkflowCompleted() {
		t.Fatal("workflow did not complete")
	}
	var rep workflows.Report
	if err := h.env.GetWorkflowError(); err != nil {
		var ae *temporal.ApplicationError
		if !errors.As(err, &ae) {
			t.Fatalf("workflow error is not an application error: %v", err)
		}
		if err := ae.Details(&rep); err != nil {
			t.Fatalf("failure carries no report: %v", err)
		}
		return &rep
	}
	if err := h.env.GetWorkflowResult(&rep); err != nil {
		t.Fatal(err)
	}
	return &rep
}

// decide sends a decision as an Update at the given workflow time and
// returns a function reporting its outcome (nil error = accepted).
func (h *harness) decide(at time.Duration, d workflows.Decision) func() (bool, error) {
	var (
		done   bool
		result error
	)
	h.env.RegisterDelayedCallback(func() {
		h.env.UpdateWorkflow(workflows.UpdateDecide, "", &testsuite.TestUpdateCallback{
			OnAccept:   func() {},
			OnReject:   func(err error) { done, result = true, err },
			OnComplete: func(_ interface{}, err error) { done, result = true, err },
		}, d)
	}, at)
	return func() (bool, error) { return done, result }
}

func (h *harness) control(at time.Duration, c workflows.Control) func() (bool, error) {
	var (
		done   bool
		result error
	)
	h.env.RegisterDelayedCallback(func() {
		h.env.UpdateWorkflow(workflows.UpdateControl, "", &testsuite.TestUpdateCallback{
			OnAccept:   func() {},
			OnReject:   func(err error) { done, result = true, err },
			OnComplete: func(_ interface{}, err error) { done, result = true, err },
		}, c)
	}, at)
	return func() (bool, error) { return done, result }
}

func stepState(t *testing.T, rep *workflows.Report, id string) workflows.StepReport {
	t.Helper()
	s, ok := rep.Step(id)
	if !ok {
		t.Fatalf("report has no step %q", id)
	}
	return s
}

func TestApproveLetsTheRunContinue(t *testing.T) {
	h := newHarness(t)
	decided := h.decide(time.Minute, workflows.Decision{Step: "go", Approve: true, By: "bob", Reason: "west is healthy"})
	h.run(book(act("fence"), gate("go", []string{"bob"}, "fence"), act("promote", "go")), workflows.ModeFailover)

	rep := h.report(t)
	if rep.State != workflows.StateSucceeded {
		t.Fatalf("state = %s (%s), want succeeded", rep.State, rep.Error)
	}
	if ok, err := decided(); !ok || err != nil {
		t.Fatalf("approval: done=%v err=%v", ok, err)
	}
	g := stepState(t, rep, "go")
	if g.Approval.Decision != "approved" || g.Approval.By != "bob" || g.Approval.Reason != "west is healthy" {
		t.Fatalf("approval record = %+v", g.Approval)
	}
	if got := h.rec.Calls(); !slices.Equal(got, []string{"fence", "promote"}) {
		t.Fatalf("calls = %v", got)
	}
	if rep.RTO == nil || rep.RTO.D() < time.Minute {
		t.Fatalf("RTO = %v, want at least the minute spent at the gate", rep.RTO)
	}
	if !hasEvent(rep, "approved", "go", "bob") {
		t.Fatalf("events = %+v, want an approved event by bob", rep.Events)
	}
}

func TestRejectStopsAndCompensates(t *testing.T) {
	h := newHarness(t)
	h.decide(time.Minute, workflows.Decision{Step: "go", Approve: false, By: "bob", Reason: "west is not ready"})
	h.run(book(act("fence"), gate("go", []string{"bob"}, "fence"), act("promote", "go")), workflows.ModeFailover)

	rep := h.report(t)
	if rep.State != workflows.StateFailed || !strings.Contains(rep.Error, "rejected by bob: west is not ready") {
		t.Fatalf("state = %s, error = %q", rep.State, rep.Error)
	}
	if got := h.rec.Calls(); !slices.Equal(got, []string{"fence", "compensate:fence"}) {
		t.Fatalf("calls = %v, want fence then its compensation and no promote", got)
	}
	if s := stepState(t, rep, "promote"); s.State != workflows.StepSkipped {
		t.Fatalf("promote state = %s, want skipped", s.State)
	}
}

func TestTwoPersonRuleRefusesSelfApproval(t *testing.T) {
	h := newHarness(t)
	self := h.decide(time.Minute, workflows.Decision{Step: "go", Approve: true, By: "alice"})
	other := h.decide(2*time.Minute, workflows.Decision{Step: "go", Approve: true, By: "bob"})
	h.run(book(gate("go", []string{"alice", "bob"}), act("promote", "go")), workflows.ModeFailover)

	rep := h.report(t)
	if done, err := self(); !done || err == nil || !strings.Contains(err.Error(), "two-person rule: alice started this run") {
		t.Fatalf("self-approval: done=%v err=%v, want refused by the two-person rule", done, err)
	}
	if done, err := other(); !done || err != nil {
		t.Fatalf("second approver: done=%v err=%v", done, err)
	}
	if g := stepState(t, rep, "go"); g.Approval.By != "bob" {
		t.Fatalf("approved by %q, want bob", g.Approval.By)
	}
}

func TestUnauthorizedApproverRefused(t *testing.T) {
	h := newHarness(t)
	mallory := h.decide(time.Minute, workflows.Decision{Step: "go", Approve: true, By: "mallory"})
	early := h.decide(0, workflows.Decision{Step: "promote", Approve: true, By: "bob"})
	h.decide(2*time.Minute, workflows.Decision{Step: "go", Approve: true, By: "bob"})
	twice := h.decide(3*time.Minute, workflows.Decision{Step: "go", Approve: false, By: "bob"})
	hold := runbooks.Step{ID: "hold", Action: activities.ActionWait, With: map[string]any{"duration": "10m"}, Needs: []string{"promote"}}
	h.run(book(gate("go", []string{"bob", "group:dba"}), act("promote", "go"), hold), workflows.ModeFailover)

	rep := h.report(t)
	if _, err := mallory(); err == nil || !strings.Contains(err.Error(), "mallory may not decide step \"go\"; allowed approvers: bob, group:dba") {
		t.Fatalf("mallory: %v", err)
	}
	if _, err := early(); err == nil || !strings.Contains(err.Error(), "not an approval gate") {
		t.Fatalf("decision on an action step: %v", err)
	}
	if done, err := twice(); !done || err == nil || !strings.Contains(err.Error(), "already approved by bob") {
		t.Fatalf("second decision on a decided gate: %v", err)
	}
	if rep.State != workflows.StateSucceeded {
		t.Fatalf("state = %s", rep.State)
	}
}

func TestGroupApproverAcceptedWhenFrontEndVouches(t *testing.T) {
	h := newHarness(t)
	d := h.decide(time.Minute, workflows.Decision{Step: "go", Approve: true, By: "dana", Groups: []string{"dba"}, Via: "slack"})
	h.run(book(gate("go", []string{"group:dba"})), workflows.ModeFailover)
	if _, err := d(); err != nil {
		t.Fatalf("group approval refused: %v", err)
	}
	if rep := h.report(t); rep.State != workflows.StateSucceeded {
		t.Fatalf("state = %s", rep.State)
	}
}

func TestApprovalTimeout(t *testing.T) {
	for _, tc := range []struct {
		onTimeout string
		want      string
		calls     []string
	}{
		{runbooks.OnFailureAbort, workflows.StateFailed, []string{"fence", "compensate:fence"}},
		{runbooks.OnFailureContinue, workflows.StateSucceeded, []string{"fence", "promote"}},
	} {
		t.Run(tc.onTimeout, func(t *testing.T) {
			h := newHarness(t)
			g := gate("go", []string{"bob"}, "fence")
			g.Approval.Timeout = runbooks.Duration(15 * time.Minute)
			g.Approval.OnTimeout = tc.onTimeout
			h.run(book(act("fence"), g, act("promote", "go")), workflows.ModeFailover)
			rep := h.report(t)
			if rep.State != tc.want {
				t.Fatalf("state = %s (%s), want %s", rep.State, rep.Error, tc.want)
			}
			if got := h.rec.Calls(); !slices.Equal(got, tc.calls) {
				t.Fatalf("calls = %v, want %v", got, tc.calls)
			}
			if s := stepState(t, rep, "go"); s.Approval.Decision != "timed_out" {
				t.Fatalf("decision = %q, want timed_out", s.Approval.Decision)
			}
		})
	}
}

func TestAbortCompensatesInReverseCompletionOrder(t *testing.T) {
	h := newHarness(t)
	// a and b run in parallel and b finishes first; the run is held at a
	// gate after c when the operator aborts. Completion order is b, a, c, so
	// compensation order must be c, a, b.
	h.rec.hooks["a"] = func(ctx context.Context) error { time.Sleep(50 * time.Millisecond); return nil }
	aborted := h.control(time.Hour, workflows.Control{Op: workflows.OpAbort, By: "carol", Reason: "site is back"})
	h.run(book(act("a"), act("b"), act("c", "a", "b"), gate("hold", []string{"bob"}, "c"), act("d", "hold")), workflows.ModeFailover)

	rep := h.report(t)
	if _, err := aborted(); err != nil {
		t.Fatalf("abort refused: %v", err)
	}
	if rep.State != workflows.StateAborted || !strings.Contains(rep.Error, "aborted by carol: site is back") {
		t.Fatalf("state = %s, error = %q", rep.State, rep.Error)
	}
	calls := h.rec.Calls()
	if !slices.Equal(calls[3:], []string{"compensate:c", "compensate:a", "compensate:b"}) {
		t.Fatalf("calls = %v, want compensations c, a, b (reverse completion: b, a, c)", calls)
	}
	if s := stepState(t, rep, "hold"); s.State != workflows.StepCancelled {
		t.Fatalf("gate state = %s, want cancelled", s.State)
	}
	if !hasEvent(rep, "abort", "", "carol") {
		t.Fatalf("no abort event by carol: %+v", rep.Events)
	}
	if len(rep.Compensations) != 3 {
		t.Fatalf("compensations = %+v", rep.Compensations)
	}
}

func TestRetriesExhaustedThenCompensation(t *testing.T) {
	h := newHarness(t)
	h.rec.fail["promote"] = true
	h.run(book(act("fence"), act("promote", "fence"), act("dns", "promote")), workflows.ModeFailover)

	rep := h.report(t)
	if rep.State != workflows.StateFailed {
		t.Fatalf("state = %s", rep.State)
	}
	p := stepState(t, rep, "promote")
	if p.Attempts != 3 || h.rec.count("promote") != 3 {
		t.Fatalf("attempts = %d (calls %d), want 3", p.Attempts, h.rec.count("promote"))
	}
	if !strings.Contains(p.Error, "promote broke on attempt 3") {
		t.Fatalf("error = %q", p.Error)
	}
	if got := h.rec.Calls(); got[len(got)-1] != "compensate:fence" || h.rec.count("dns") != 0 {
		t.Fatalf("calls = %v, want fence compensated and dns never run", got)
	}
}

func TestPermanentErrorFailsAtOnce(t *testing.T) {
	h := newHarness(t)
	h.rec.fail["promote"], h.rec.permanent["promote"] = true, true
	h.run(book(act("promote")), workflows.ModeFailover)
	rep := h.report(t)
	if p := stepState(t, rep, "promote"); p.Attempts != 1 || h.rec.count("promote") != 1 {
		t.Fatalf("attempts = %d, want 1 for a non-retryable error", p.Attempts)
	}
}

func TestOnFailureContinue(t *testing.T) {
	h := newHarness(t)
	h.rec.fail["notify"], h.rec.permanent["notify"] = true, true
	n := act("notify")
	n.OnFailure = runbooks.OnFailureContinue
	h.run(book(n, act("promote", "notify")), workflows.ModeFailover)
	rep := h.report(t)
	if rep.State != workflows.StateSucceeded || h.rec.count("promote") != 1 {
		t.Fatalf("state = %s, calls = %v", rep.State, h.rec.Calls())
	}
}

func TestParallelBranchesRunConcurrently(t *testing.T) {
	h := newHarness(t)
	// left blocks until right has started: this completes only if the two
	// branches run at the same time.
	rightStarted := make(chan struct{})
	h.rec.hooks["left"] = func(ctx context.Context) error {
		select {
		case <-rightStarted:
			return nil
		case <-time.After(testwait.Bound):
			return activities.Permanentf("right never started while left ran")
		}
	}
	h.rec.hooks["right"] = func(ctx context.Context) error { close(rightStarted); return nil }
	h.run(book(act("root"), act("left", "root"), act("right", "root"), act("join", "left", "right")), workflows.ModeFailover)
	rep := h.report(t)
	if rep.State != workflows.StateSucceeded {
		t.Fatalf("state = %s (%s)", rep.State, rep.Error)
	}
	calls := h.rec.Calls()
	if calls[0] != "root" || calls[3] != "join" {
		t.Fatalf("calls = %v, want root first and join last", calls)
	}
}

func TestPauseHoldsNewStepsUntilResume(t *testing.T) {
	h := newHarness(t)
	var stateWhilePaused string
	var secondRanWhilePaused bool
	h.control(0, workflows.Control{Op: workflows.OpPause, By: "carol", Reason: "checking replication"})
	h.env.RegisterDelayedCallback(func() {
		secondRanWhilePaused = h.rec.count("second") > 0
		v, err := h.env.QueryWorkflow(workflows.QueryProgress)
		if err == nil {
			var rep workflows.Report
			_ = v.Get(&rep)
			stateWhilePaused = stepState(t, &rep, "second").State
		}
	}, 30*time.Minute)
	resumed := h.control(time.Hour, workflows.Control{Op: workflows.OpResume, By: "carol"})
	w := runbooks.Step{ID: "first", Action: activities.ActionWait, With: map[string]any{"duration": "1m"}}
	h.run(book(w, act("second", "first")), workflows.ModeFailover)

	rep := h.report(t)
	if _, err := resumed(); err != nil {
		t.Fatalf("resume: %v", err)
	}
	if secondRanWhilePaused || stateWhilePaused != workflows.StepPending {
		t.Fatalf("while paused: second ran=%v state=%q, want not run and pending", secondRanWhilePaused, stateWhilePaused)
	}
	if rep.State != workflows.StateSucceeded || !hasEvent(rep, "paused", "", "carol") || !hasEvent(rep, "resumed", "", "carol") {
		t.Fatalf("state = %s, events = %+v", rep.State, rep.Events)
	}
	if rep.RTO.D() < time.Hour {
		t.Fatalf("RTO = %v, want the paused hour included", rep.RTO)
	}
}

func TestSignalPathUsesTheSameRules(t *testing.T) {
	h := newHarness(t)
	h.env.RegisterDelayedCallback(func() {
		h.env.SignalWorkflow(workflows.SignalDecide, workflows.Decision{Step: "go", Approve: true, By: "alice"})
	}, time.Minute)
	h.env.RegisterDelayedCallback(func() {
		h.env.SignalWorkflow(workflows.SignalDecide, workflows.Decision{Step: "go", Approve: true, By: "bob", Via: "cli"})
	}, 2*time.Minute)
	h.run(book(gate("go", []string{"alice", "bob"}), act("promote", "go")), workflows.ModeFailover)
	rep := h.report(t)
	if rep.State != workflows.StateSucceeded {
		t.Fatalf("state = %s", rep.State)
	}
	if !hasEvent(rep, "refused", "go", "alice") {
		t.Fatalf("self-approval by signal was not refused and recorded: %+v", rep.Events)
	}
	if g := stepState(t, rep, "go"); g.Approval.By != "bob" || g.Approval.Via != "cli" {
		t.Fatalf("approval = %+v", g.Approval)
	}
}

func TestDrillFailsBackAfterSuccess(t *testing.T) {
	h := newHarness(t)
	h.run(book(act("fence"), act("promote", "fence")), workflows.ModeDrill)
	rep := h.report(t)
	if rep.State != workflows.StateSucceeded || rep.RTO == nil {
		t.Fatalf("state = %s rto = %v", rep.State, rep.RTO)
	}
	if got := h.rec.Calls(); !slices.Equal(got, []string{"fence", "promote", "compensate:promote", "compensate:fence"}) {
		t.Fatalf("calls = %v", got)
	}
}

func TestOutputsFlowIntoLaterSteps(t *testing.T) {
	h := newHarness(t)
	b := act("b", "a")
	b.With = map[string]any{"value": "from a: ${{ steps.a.outputs.echo }} for ${{ params.site }}"}
	rb := book(act("a"), b)
	def := "west"
	rb.Params = []runbooks.Param{{Name: "site", Default: &def}}
	h.run(rb, workflows.ModeFailover)
	rep := h.report(t)
	if got := stepState(t, rep, "b").Outputs["echo"]; got != "from a: a for west" {
		t.Fatalf("b echoed %q", got)
	}
}

func TestWorkflowCancellationStillCompensates(t *testing.T) {
	h := newHarness(t)
	h.env.RegisterDelayedCallback(func() { h.env.CancelWorkflow() }, time.Minute)
	h.run(book(act("fence"), gate("go", []string{"bob"}, "fence")), workflows.ModeFailover)
	if got := h.rec.Calls(); !slices.Equal(got, []string{"fence", "compensate:fence"}) {
		t.Fatalf("calls = %v, want fence compensated after cancellation", got)
	}
}

func hasEvent(rep *workflows.Report, kind, step, by string) bool {
	for _, e := range rep.Events {
		if e.Kind == kind && e.Step == step && e.By == by {
			return true
		}
	}
	return false
}

type nopLogger struct{}

func (nopLogger) Debug(string, ...interface{}) {}
func (nopLogger) Info(string, ...interface{})  {}
func (nopLogger) Warn(string, ...interface{})  {}
func (nopLogger) Error(string, ...interface{}) {}

func TestApprovalMessageIsResolvedAtTheGate(t *testing.T) {
	h := newHarness(t)
	var msg string
	h.env.RegisterDelayedCallback(func() {
		v, err := h.env.QueryWorkflow(workflows.QueryProgress)
		if err != nil {
			t.Error(err)
			return
		}
		var rep workflows.Report
		_ = v.Get(&rep)
		msg = stepState(t, &rep, "go").Approval.Message
	}, time.Minute)
	h.decide(2*time.Minute, workflows.Decision{Step: "go", Approve: true, By: "bob"})
	g := gate("go", []string{"bob"}, "a")
	g.Approval.Message = "Promote ${{ params.site }} after ${{ steps.a.outputs.echo }}?"
	rb := book(act("a"), g)
	site := "west"
	rb.Params = []runbooks.Param{{Name: "site", Default: &site}}
	h.run(rb, workflows.ModeFailover)
	h.report(t)
	if msg != "Promote west after a?" {
		t.Fatalf("gate message = %q", msg)
	}
}

// TestFailedStepIsCompensatedToo: a step that failed may have acted part
// way; its compensation (which observes first) runs too, before those of
// the steps completed earlier.
func TestFailedStepIsCompensatedToo(t *testing.T) {
	h := newHarness(t)
	h.rec.fail["promote"], h.rec.permanent["promote"] = true, true
	h.run(book(act("fence"), act("promote", "fence")), workflows.ModeFailover)
	h.report(t)
	if got := h.rec.Calls(); !slices.Equal(got, []string{"fence", "promote", "compensate:promote", "compensate:fence"}) {
		t.Fatalf("calls = %v", got)
	}
}

// TestUnchangedStepIsNotCompensated: a step that found its work already
// done (someone fenced the node before this run) has nothing of this run's
// to undo.
func TestUnchangedStepIsNotCompensated(t *testing.T) {
	h := newHarness(t)
	h.rec.unchanged["fence"] = true
	h.run(book(act("fence"), act("dns", "fence")), workflows.ModeDrill)
	rep := h.report(t)
	if got := h.rec.Calls(); !slices.Equal(got, []string{"fence", "dns", "compensate:dns"}) {
		t.Fatalf("calls = %v, want fence left as it was", got)
	}
	if len(rep.Compensations) != 2 || rep.Compensations[1].State != workflows.StepSkipped {
		t.Fatalf("compensations = %+v", rep.Compensations)
	}
}

// TestFailureCancelsWaitingGates: a failed step must not leave the run
// waiting for a decision that no longer matters before it compensates.
func TestFailureCancelsWaitingGates(t *testing.T) {
	h := newHarness(t)
	h.rec.fail["dns"], h.rec.permanent["dns"] = true, true
	h.run(book(act("fence"), act("dns", "fence"), gate("traffic-ok", []string{"bob"}, "fence")), workflows.ModeFailover)
	rep := h.report(t)
	if rep.State != workflows.StateFailed {
		t.Fatalf("state = %s", rep.State)
	}
	if s := stepState(t, rep, "traffic-ok"); s.State != workflows.StepCancelled {
		t.Fatalf("gate state = %s, want cancelled", s.State)
	}
	if got := h.rec.Calls(); got[len(got)-1] != "compensate:fence" {
		t.Fatalf("calls = %v", got)
	}
}

func TestDrillWithFailedFailbackIsAFailure(t *testing.T) {
	h := newHarness(t)
	h.rec.fail["compensate:promote"], h.rec.permanent["compensate:promote"] = true, true
	h.run(book(act("fence"), act("promote", "fence")), workflows.ModeDrill)
	rep := h.report(t)
	if rep.State != workflows.StateFailed || !strings.Contains(rep.Error, "still failed over") {
		t.Fatalf("state = %s, error = %q", rep.State, rep.Error)
	}
}

// TestAbortAfterAFailureCancelsRunningActions: once a step failed nothing
// new starts, but an operator may still abort to stop a long running action.
func TestAbortAfterAFailureCancelsRunningActions(t *testing.T) {
	h := newHarness(t)
	h.rec.fail["quick"], h.rec.permanent["quick"] = true, true
	h.rec.hooks["slow"] = func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }
	slow := act("slow")
	slow.Heartbeat = runbooks.Duration(time.Hour)
	aborted := h.control(100*time.Millisecond, workflows.Control{Op: workflows.OpAbort, By: "carol", Reason: "stop it"})
	h.run(book(slow, act("quick")), workflows.ModeFailover)
	rep := h.report(t)
	if _, err := aborted(); err != nil {
		t.Fatalf("abort after a failure: %v", err)
	}
	if rep.State != workflows.StateAborted || stepState(t, rep, "slow").State != workflows.StepCancelled {
		t.Fatalf("state %s, slow %s", rep.State, stepState(t, rep, "slow").State)
	}
}

// TestSpelledIdentitiesAndEscapesAreRefused: an identity that spells an
// approver pattern ("group:dba", "*") is not a member of anything, and a
// reason with a terminal escape is refused before it reaches the audit
// trail; a real member of the list then approves.
func TestSpelledIdentitiesAndEscapesAreRefused(t *testing.T) {
	h := newHarness(t)
	asGroup := h.decide(time.Minute, workflows.Decision{Step: "go", Approve: true, By: "group:dba", Via: "cli"})
	asStar := h.decide(time.Minute+time.Second, workflows.Decision{Step: "go", Approve: true, By: "*", Via: "cli"})
	escape := h.decide(time.Minute+2*time.Second, workflows.Decision{Step: "go", Approve: true, By: "bob", Reason: "ok\x1b[1A\x1b[2Kapproved by security-team", Via: "cli"})
	h.decide(2*time.Minute, workflows.Decision{Step: "go", Approve: true, By: "bob", Reason: "checked", Via: "cli"})
	h.run(book(gate("go", []string{"group:dba", "bob"}), act("promote", "go")), workflows.ModeFailover)
	rep := h.report(t)
	for name, res := range map[string]func() (bool, error){"group:dba": asGroup, "*": asStar, "escape": escape} {
		if done, err := res(); !done || err == nil {
			t.Errorf("decision %s: done %t err %v, want refused", name, done, err)
		}
	}
	if _, err := asGroup(); err == nil || !strings.Contains(err.Error(), `identity "group:dba" has ':'`) {
		t.Errorf("group:dba refused with %v", err)
	}
	if _, err := escape(); err == nil || !strings.Contains(err.Error(), "reason has the control character U+001B") {
		t.Errorf("escape refused with %v", err)
	}
	if rep.State != workflows.StateSucceeded || stepState(t, rep, "go").Approval.By != "bob" {
		t.Fatalf("state %s approval %+v", rep.State, stepState(t, rep, "go").Approval)
	}
	for _, e := range rep.Events {
		if strings.ContainsRune(e.Reason, 0x1b) || strings.ContainsRune(e.By, 0x1b) {
			t.Fatalf("an escape reached the audit trail: %+v", e)
		}
	}
}

// TestMinApprovalsNeedsDistinctApproversNotTheStarter: min_approvals 2
// with the starter among the approvers: the starter's approval and a
// repeated one do not count; the gate opens with the second distinct one.
func TestMinApprovalsNeedsDistinctApproversNotTheStarter(t *testing.T) {
	h := newHarness(t)
	byStarter := h.decide(time.Minute, workflows.Decision{Step: "go", Approve: true, By: "alice", Via: "cli"})
	first := h.decide(2*time.Minute, workflows.Decision{Step: "go", Approve: true, By: "bob", Via: "cli"})
	again := h.decide(3*time.Minute, workflows.Decision{Step: "go", Approve: true, By: "bob", Via: "cli"})
	second := h.decide(4*time.Minute, workflows.Decision{Step: "go", Approve: true, By: "carol", Via: "cli"})
	g := gate("go", []string{"alice", "bob", "carol"})
	g.Approval.TwoPerson, g.Approval.MinApprovals = false, 2
	h.run(book(g, act("promote", "go")), workflows.ModeFailover)
	rep := h.report(t)
	if _, err := byStarter(); err == nil || !strings.Contains(err.Error(), "alice started this run and does not count toward the 2 approvals") {
		t.Errorf("starter: %v", err)
	}
	if _, err := first(); err != nil {
		t.Errorf("first approval: %v", err)
	}
	if _, err := again(); err == nil || !strings.Contains(err.Error(), `bob already approved step "go"; it needs 1 more`) {
		t.Errorf("repeat: %v", err)
	}
	if _, err := second(); err != nil {
		t.Errorf("second approval: %v", err)
	}
	st := stepState(t, rep, "go")
	if rep.State != workflows.StateSucceeded || st.Summary != "approved by bob, carol" || !slices.Equal(st.Approval.ApprovedBy, []string{"bob", "carol"}) {
		t.Fatalf("state %s, go %+v %+v", rep.State, st, st.Approval)
	}
	if starts := h.rec.count("promote"); starts != 1 {
		t.Fatalf("promote ran %d times", starts)
	}
}

// TestSignedDecisions: a run started with signers takes a CLI decision only
// when it is signed by a key of its decider over this run, step and
// verdict; unsigned, forged, moved and wrong-key signatures are refused and
// recorded as refusals, never as decisions.
func TestSignedDecisions(t *testing.T) {
	key := func() ssh.Signer {
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		s, err := ssh.NewSignerFromKey(priv)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	bob, mallory := key(), key()
	const wf, run = "default-test-workflow-id", "default-test-run-id"
	sign := func(k ssh.Signer, d workflows.Decision, runID string) workflows.Decision {
		d.Via, d.SignedAt = workflows.ViaCLI, time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
		sig, err := sshsig.Sign(k, workflows.SignatureNamespace, workflows.SignedText(wf, runID, d))
		if err != nil {
			t.Fatal(err)
		}
		d.Signature = sig
		return d
	}
	approve := workflows.Decision{Step: "go", Approve: true, By: "bob", Reason: "checked"}
	forgedReason := sign(bob, approve, run)
	forgedReason.Reason = "something else"
	other := approve
	other.Step = "other"
	moved := sign(bob, other, run)
	moved.Step = "go"

	h := newHarness(t)
	results := map[string]func() (bool, error){
		"unsigned":          h.decide(time.Minute, workflows.Decision{Step: "go", Approve: true, By: "bob", Via: workflows.ViaCLI}),
		"mallory's key":     h.decide(time.Minute+1*time.Second, sign(mallory, approve, run)),
		"another run":       h.decide(time.Minute+2*time.Second, sign(bob, approve, "an-earlier-run")),
		"another reason":    h.decide(time.Minute+3*time.Second, forgedReason),
		"moved from a step": h.decide(time.Minute+4*time.Second, moved),
		"carol has no key":  h.decide(time.Minute+5*time.Second, sign(bob, workflows.Decision{Step: "go", Approve: true, By: "carol"}, run)),
	}
	good := h.decide(2*time.Minute, sign(bob, approve, run))
	h.env.ExecuteWorkflow(workflows.RunbookWorkflow, workflows.RunInput{
		Runbook: book(gate("go", []string{"bob", "carol"}), act("promote", "go")), Mode: workflows.ModeFailover, StartedBy: "alice",
		Signers: []workflows.Signer{{Identity: "bob", Key: sshsig.MarshalKey(bob.PublicKey())}},
	})
	rep := h.report(t)
	wants := map[string]string{
		"unsigned":          "takes signed decisions only",
		"mallory's key":     "which is not an allowed key",
		"another run":       "signature does not match the message",
		"another reason":    "signature does not match the message",
		"moved from a step": "signature does not match the message",
		"carol has no key":  "carol has no signing key",
	}
	for name, res := range results {
		if done, err := res(); !done || err == nil || !strings.Contains(err.Error(), wants[name]) {
			t.Errorf("%s: done %t, err %v; want refused with %q", name, done, err, wants[name])
		}
	}
	if _, err := good(); err != nil {
		t.Fatalf("bob's signed approval: %v", err)
	}
	st := stepState(t, rep, "go")
	if rep.State != workflows.StateSucceeded || st.Approval.By != "bob" || !st.Approval.Signed {
		t.Fatalf("state %s, approval %+v", rep.State, st.Approval)
	}
}

// TestSignalledDecisionWaitsForItsGate: a decision sent (as a signal) before
// the run reached the gate is kept and applied when the gate opens.
func TestSignalledDecisionWaitsForItsGate(t *testing.T) {
	h := newHarness(t)
	h.env.RegisterDelayedCallback(func() {
		h.env.SignalWorkflow(workflows.SignalDecide, workflows.Decision{Step: "go", Approve: true, By: "alice"})
		h.env.SignalWorkflow(workflows.SignalDecide, workflows.Decision{Step: "go", Approve: true, By: "bob", Via: "cli"})
	}, time.Second)
	settle := runbooks.Step{ID: "settle", Action: activities.ActionWait, With: map[string]any{"duration": "10m"}}
	h.run(book(settle, gate("go", []string{"alice", "bob"}, "settle"), act("promote", "go")), workflows.ModeFailover)
	rep := h.report(t)
	if rep.State != workflows.StateSucceeded || stepState(t, rep, "go").Approval.By != "bob" {
		t.Fatalf("state %s approval %+v", rep.State, stepState(t, rep, "go").Approval)
	}
	if !hasEvent(rep, "refused", "go", "alice") || !hasEvent(rep, "queued", "go", "bob") {
		t.Fatalf("events %+v", rep.Events)
	}
}

// TestNotificationsFollowTheRun: the run posts its start, the gate (with the
// Observe of the step it guards), the decision, and its end, in that order
// even when Slack is slowest for the earliest messages.
func TestNotificationsFollowTheRun(t *testing.T) {
	h := newHarness(t)
	h.notes.delay = map[string]time.Duration{
		activities.KindRunStarted:        300 * time.Millisecond,
		activities.KindApprovalRequested: 200 * time.Millisecond,
		activities.KindApprovalDecided:   300 * time.Millisecond,
	}
	h.decide(time.Minute, workflows.Decision{Step: "go", Approve: true, By: "bob", Via: "cli"})
	rb := book(act("fence"), gate("go", []string{"bob"}, "fence"), act("promote", "go"))
	rb.Notify.SlackChannel = "C0DR"
	h.run(rb, workflows.ModeFailover)
	h.report(t)
	want := []string{"run_started:", "approval_requested:go", "approval_decided:go", "run_finished:"}
	if got := h.notes.kinds(); !slices.Equal(got, want) {
		t.Fatalf("notifications %v, want %v", got, want)
	}
	h.notes.mu.Lock()
	defer h.notes.mu.Unlock()
	req, dec := h.notes.sent[1], h.notes.sent[2]
	if req.Channel != "C0DR" || req.Thread == nil || len(req.Changes) != 1 || !strings.Contains(req.Changes[0], "promote (test.do): now standby; would promote it") {
		t.Fatalf("approval request %+v", req)
	}
	if dec.Ref == nil || dec.Ref.TS != "1.2" || dec.Decision != "approved" || dec.DecidedBy != "bob" || dec.Via != "cli" {
		t.Fatalf("decision %+v", dec)
	}
	keys := map[string]bool{}
	for _, n := range h.notes.sent {
		if n.Key == "" || keys[n.Key] {
			t.Fatalf("notification keys must be present and distinct: %+v", h.notes.sent)
		}
		keys[n.Key] = true
	}
}

// TestOutOfBoundsNumbersAreRefusedBeforeAnything: a runbook that reached
// the workflow without the validator (any Temporal client can start one)
// with max_attempts beyond int32 fails at once, naming the number, and
// calls no activity; before, its workflow task failed forever with the
// lock held.
func TestOutOfBoundsNumbersAreRefusedBeforeAnything(t *testing.T) {
	h := newHarness(t)
	s := act("promote")
	s.Retry.MaxAttempts = 1 << 31
	h.run(book(s), workflows.ModeFailover)
	if !h.env.IsWorkflowCompleted() {
		t.Fatal("workflow did not complete")
	}
	err := h.env.GetWorkflowError()
	if err == nil || !strings.Contains(err.Error(), "retry.max_attempts 2147483648 is outside 0..100") {
		t.Fatalf("error %v, want the out-of-bounds max_attempts named", err)
	}
	if calls := h.rec.Calls(); len(calls) != 0 {
		t.Fatalf("activities ran: %v", calls)
	}
}

// TestSlackDownDoesNotHoldTheRun: a notifier that always fails changes
// nothing about the run.
func TestSlackDownDoesNotHoldTheRun(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	s.SetLogger(nopLogger{})
	env := s.NewTestWorkflowEnvironment()
	env.RegisterWorkflowWithOptions(workflows.Run, workflow.RegisterOptions{Name: workflows.RunbookWorkflow})
	rec := newRecorder()
	env.RegisterActivityWithOptions(rec.do, activity.RegisterOptions{Name: "test.do"})
	env.RegisterActivityWithOptions(func(context.Context, activities.Notification) (activities.MessageRef, error) {
		return activities.MessageRef{}, errors.New("slack is down")
	}, activity.RegisterOptions{Name: activities.NotifyActivity})
	env.RegisterDelayedCallback(func() {
		env.SignalWorkflow(workflows.SignalDecide, workflows.Decision{Step: "go", Approve: true, By: "bob"})
	}, time.Minute)
	env.ExecuteWorkflow(workflows.RunbookWorkflow, workflows.RunInput{Runbook: book(gate("go", []string{"bob"}), act("promote", "go")), StartedBy: "alice"})
	if err := env.GetWorkflowError(); err != nil {
		t.Fatalf("run failed with Slack down: %v", err)
	}
	if rec.count("promote") != 1 {
		t.Fatalf("calls %v", rec.Calls())
	}
}

// TestDrillChaosIsInjectedAtTheActivityBoundary runs real actions (note)
// through the registry's activity wrapper with faults injected: retries
// absorb the failing attempts, a permanent fault fails the drill and its
// completed steps are compensated, and the report lists what was injected.
func TestDrillChaosIsInjectedAtTheActivityBoundary(t *testing.T) {
	for _, tc := range []struct {
		name     string
		fault    activities.Fault
		state    string
		attempts int32
	}{
		{"retries absorb failures", activities.Fault{Step: "b", Fail: 2}, workflows.StateSucceeded, 3},
		{"latency", activities.Fault{Step: "b", Latency: runbooks.Duration(20 * time.Millisecond)}, workflows.StateSucceeded, 1},
		{"permanent failure", activities.Fault{Step: "b", Permanent: true}, workflows.StateFailed, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var s testsuite.WorkflowTestSuite
			s.SetLogger(nopLogger{})
			env := s.NewTestWorkflowEnvironment()
			env.RegisterWorkflowWithOptions(workflows.Run, workflow.RegisterOptions{Name: workflows.RunbookWorkflow})
			reg := activities.NewRegistry()
			if err := reg.Add(note.Note{}); err != nil {
				t.Fatal(err)
			}
			reg.RegisterActivities(env)
			notes := &notes{}
			env.RegisterActivityWithOptions(notes.notify, activity.RegisterOptions{Name: activities.NotifyActivity})
			step := func(id string, needs ...string) runbooks.Step {
				return runbooks.Step{ID: id, Action: "note", Needs: needs, With: map[string]any{"message": id},
					Retry:      &runbooks.RetryPolicy{MaxAttempts: 3, InitialInterval: runbooks.Duration(time.Second)},
					Compensate: &runbooks.Compensation{Action: "note", With: map[string]any{"message": "undo " + id}}}
			}
			env.ExecuteWorkflow(workflows.RunbookWorkflow, workflows.RunInput{
				Runbook: book(step("a"), step("b", "a")), Mode: workflows.ModeDrill, StartedBy: "alice",
				Chaos: []activities.Fault{tc.fault},
			})
			h := &harness{env: env}
			rep := h.report(t)
			b := stepState(t, rep, "b")
			if rep.State != tc.state || b.Attempts != tc.attempts {
				t.Fatalf("state %s (%s), b attempts %d; want %s after %d", rep.State, rep.Error, b.Attempts, tc.state, tc.attempts)
			}
			if len(rep.Chaos) != 1 || rep.Chaos[0] != tc.fault {
				t.Fatalf("report chaos %+v", rep.Chaos)
			}
			if tc.fault.Permanent && !strings.Contains(b.Error, "chaos: injected permanent failure") {
				t.Fatalf("b error %q", b.Error)
			}
		})
	}
}

func TestChaosOnlyInDrills(t *testing.T) {
	h := newHarness(t)
	h.env.ExecuteWorkflow(workflows.RunbookWorkflow, workflows.RunInput{Runbook: book(act("a")), Mode: workflows.ModeFailover, StartedBy: "alice", Chaos: []activities.Fault{{Step: "a", Fail: 1}}})
	if err := h.env.GetWorkflowError(); err == nil || !strings.Contains(err.Error(), "chaos is injected in drills only") {
		t.Fatalf("chaos in a failover: %v", err)
	}
}

// TestNoNotifierNoNotifications: a notifier that is not configured answers
// run_started with no message; the run then sends nothing more and runs no
// gate Observes for nobody.
func TestNoNotifierNoNotifications(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	s.SetLogger(nopLogger{})
	env := s.NewTestWorkflowEnvironment()
	env.RegisterWorkflowWithOptions(workflows.Run, workflow.RegisterOptions{Name: workflows.RunbookWorkflow})
	rec := newRecorder()
	env.RegisterActivityWithOptions(rec.do, activity.RegisterOptions{Name: "test.do"})
	var observed, notified int
	var mu sync.Mutex
	env.RegisterActivityWithOptions(func(context.Context, activities.Request) (activities.Observation, error) {
		mu.Lock()
		observed++
		mu.Unlock()
		return activities.Observation{}, nil
	}, activity.RegisterOptions{Name: "test.do" + activities.ObserveSuffix})
	env.RegisterActivityWithOptions(func(context.Context, activities.Notification) (activities.MessageRef, error) {
		mu.Lock()
		notified++
		mu.Unlock()
		return activities.MessageRef{}, nil // not configured
	}, activity.RegisterOptions{Name: activities.NotifyActivity})
	env.RegisterDelayedCallback(func() {
		env.SignalWorkflow(workflows.SignalDecide, workflows.Decision{Step: "go", Approve: true, By: "bob"})
	}, time.Minute)
	env.ExecuteWorkflow(workflows.RunbookWorkflow, workflows.RunInput{Runbook: book(gate("go", []string{"bob"}), act("promote", "go")), StartedBy: "alice"})
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	if notified != 1 || observed != 0 {
		t.Fatalf("notifications %d, observes %d; want only run_started and no observe", notified, observed)
	}
}

// TestGateOfAStoppedRunIsMarkedNoLongerNeeded: when the run stops while a
// gate waits, the gate's message is edited so nobody clicks it.
func TestGateOfAStoppedRunIsMarkedNoLongerNeeded(t *testing.T) {
	h := newHarness(t)
	h.control(time.Minute, workflows.Control{Op: workflows.OpAbort, By: "carol", Reason: "east is back"})
	h.run(book(gate("go", []string{"bob"}), act("promote", "go")), workflows.ModeFailover)
	h.report(t)
	h.notes.mu.Lock()
	defer h.notes.mu.Unlock()
	var found bool
	for _, n := range h.notes.sent {
		if n.Kind == activities.KindApprovalDecided && n.Step == "go" && n.Decision == activities.DecisionCancelled && n.Ref != nil {
			found = true
		}
		if n.RunID == "" {
			t.Fatalf("notification without the run ID: %+v", n)
		}
	}
	if !found {
		t.Fatalf("no cancelled edit of the gate's message: %+v", h.notes.sent)
	}
}

// A first retry interval above the default cap (max_interval unset) is a
// policy Temporal refuses; the interpreter raises the cap instead of
// leaving the run hanging.
func TestRetryIntervalAboveTheDefaultCap(t *testing.T) {
	h := newHarness(t)
	s := act("slow-retry")
	s.Retry = &runbooks.RetryPolicy{MaxAttempts: 3, InitialInterval: runbooks.Duration(time.Minute)}
	failed := false
	h.rec.hooks["slow-retry"] = func(context.Context) error {
		if failed {
			return nil
		}
		failed = true
		return errors.New("first attempt fails")
	}
	h.run(book(s), workflows.ModeFailover)
	rep := h.report(t)
	if st, _ := rep.Step("slow-retry"); rep.State != workflows.StateSucceeded || st.Attempts != 2 {
		t.Fatalf("run %s, step attempts %d (%s); want succeeded on attempt 2", rep.State, st.Attempts, st.Error)
	}
}
