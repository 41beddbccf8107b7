package workflows_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/drctl/drctl/activities"
	"github.com/drctl/drctl/runbooks"
	"github.com/drctl/drctl/workflows"
)

// services stands for the services a fleet failover moves: each call
// fails over one (With["svc"]), slowly enough to overlap; those in fail
// fail permanently. It records the most running at once.
type services struct {
	mu      sync.Mutex
	running int
	most    int
	started []string
	done    []string
	undone  []string
	fail    map[string]bool
	hold    time.Duration
}

func (sv *services) move(ctx context.Context, req activities.Request) (activities.Result, error) {
	svc := fmt.Sprint(req.With["svc"])
	sv.mu.Lock()
	if req.Compensating {
		sv.undone = append(sv.undone, svc)
		sv.mu.Unlock()
		return activities.Result{Changed: true}, nil
	}
	sv.running++
	sv.most = max(sv.most, sv.running)
	sv.started = append(sv.started, svc)
	sv.mu.Unlock()
	time.Sleep(sv.hold)
	sv.mu.Lock()
	defer sv.mu.Unlock()
	sv.running--
	if sv.fail[svc] {
		return activities.Result{}, temporal.NewApplicationErrorWithOptions("cannot move "+svc, activities.FailureType,
			temporal.ApplicationErrorOptions{NonRetryable: true, Details: []any{activities.FailureDetail{Attempt: 1}}})
	}
	sv.done = append(sv.done, svc)
	return activities.Result{Changed: true, Summary: "moved " + svc}, nil
}

// serviceRunbook is the child: one step moving the service it is given,
// undone by its compensation.
func serviceRunbook() *runbooks.Runbook {
	return &runbooks.Runbook{APIVersion: runbooks.APIVersion, Name: "service", Lock: "service",
		Params: []runbooks.Param{{Name: "svc", Required: true}},
		Steps: []runbooks.Step{{ID: "move", Action: "test.move", With: map[string]any{"svc": "${{ params.svc }}"},
			Compensate: &runbooks.Compensation{Action: "test.move", With: map[string]any{"svc": "${{ params.svc }}"}}}}}
}

func fleetHarness(t *testing.T, fail ...string) (*harness, *services) {
	h := newHarness(t)
	sv := &services{fail: map[string]bool{}, hold: 20 * time.Millisecond}
	for _, f := range fail {
		sv.fail[f] = true
	}
	h.env.RegisterActivityWithOptions(sv.move, activity.RegisterOptions{Name: "test.move"})
	return h, sv
}

func fanOutStep(items []any, parallel int, onFailure string) runbooks.Step {
	return runbooks.Step{ID: "services", Runbook: "service.yaml", Child: serviceRunbook(), ForEach: items, As: "svc",
		MaxParallel: parallel, OnFailure: onFailure}
}

func items(n int) []any {
	out := make([]any, n)
	for i := range out {
		out[i] = fmt.Sprintf("svc%02d", i)
	}
	return out
}

// A fan-out runs one child per item, never more than max_parallel at
// once, each under its own lock, and sums them up in the step.
func TestFanOutRunsEachChildWithinMaxParallel(t *testing.T) {
	h, sv := fleetHarness(t)
	h.run(book(act("db"), withNeeds(fanOutStep(items(12), 3, ""), "db"), act("verify", "services")), workflows.ModeFailover)
	rep := h.report(t)
	if rep.State != workflows.StateSucceeded {
		t.Fatalf("run %s: %s", rep.State, rep.Error)
	}
	st, _ := rep.Step("services")
	if len(sv.done) != 12 || sv.most > 3 || sv.most < 2 {
		t.Errorf("moved %d services, at most %d at once; want 12, at most 3 (and some overlap)", len(sv.done), sv.most)
	}
	if len(st.Children) != 12 || st.Children[4].WorkflowID != "drctl-service-svc04" || st.Children[4].State != workflows.StateSucceeded || st.Children[4].RTOMs == nil {
		t.Errorf("children %+v", st.Children)
	}
	if !strings.HasPrefix(st.Summary, "12 children: 12 succeeded; slowest ") {
		t.Errorf("summary %q", st.Summary)
	}
}

// With on_failure: abort (the default) a failing child stops the wave: no
// new child starts, the step fails naming it, and the run compensates.
// With continue, every child runs and the run goes on.
func TestFanOutFailurePolicies(t *testing.T) {
	h, sv := fleetHarness(t, "svc01")
	h.run(book(withNeeds(fanOutStep(items(10), 2, "")), act("after", "services")), workflows.ModeFailover)
	rep := h.report(t)
	st, _ := rep.Step("services")
	if rep.State != workflows.StateFailed || st.State != workflows.StepFailed || !strings.Contains(st.Error, "svc01 failed: step \"move\" failed: cannot move svc01") {
		t.Fatalf("run %s, step %s: %s", rep.State, st.State, st.Error)
	}
	if len(sv.done) >= 9 || !strings.Contains(st.Summary, "skipped") {
		t.Errorf("%d services moved after svc01 failed; summary %q; want the wave stopped", len(sv.done), st.Summary)
	}
	if after, _ := rep.Step("after"); after.State != workflows.StepSkipped {
		t.Errorf("after %s, want skipped", after.State)
	}

	h, sv = fleetHarness(t, "svc01")
	h.run(book(fanOutStep(items(10), 2, runbooks.OnFailureContinue), act("after", "services")), workflows.ModeFailover)
	rep = h.report(t)
	st, _ = rep.Step("services")
	if len(sv.done) != 9 || st.State != workflows.StepFailed || !strings.HasPrefix(st.Summary, "10 children: 9 succeeded, 1 failed") {
		t.Fatalf("moved %d, step %s, summary %q; want 9 moved, the failure recorded", len(sv.done), st.State, st.Summary)
	}
	if after, _ := rep.Step("after"); after.State != workflows.StepSucceeded {
		t.Errorf("after %s, want succeeded (on_failure: continue)", after.State)
	}
}

// Aborting the parent cancels its running children, and each compensates
// what it did before the parent ends.
func TestAbortingTheParentCompensatesTheChildren(t *testing.T) {
	h, sv := fleetHarness(t)
	sv.hold = 2 * time.Second
	h.control(time.Second, workflows.Control{Op: workflows.OpAbort, By: "carol", Reason: "stop"})
	h.run(book(fanOutStep(items(6), 3, "")), workflows.ModeFailover)
	rep := h.report(t)
	st, _ := rep.Step("services")
	if rep.State != workflows.StateAborted || st.State != workflows.StepCancelled {
		t.Fatalf("run %s, step %s", rep.State, st.State)
	}
	sv.mu.Lock()
	defer sv.mu.Unlock()
	// Which children had started when the abort came depends on the
	// machine's speed; every one that had must have compensated.
	if len(sv.started) > 3 {
		t.Fatalf("%d children started; want at most 3 (max_parallel 3)", len(sv.started))
	}
	for _, svc := range sv.started {
		if !slices.Contains(sv.undone, svc) {
			t.Errorf("%s moved and was not undone; undone %v", svc, sv.undone)
		}
	}
}

func withNeeds(s runbooks.Step, needs ...string) runbooks.Step {
	s.Needs = needs
	return s
}

// A paused run starts no child; after the resume the rest start.
func TestPauseHoldsTheFanOut(t *testing.T) {
	h, sv := fleetHarness(t)
	sv.hold = time.Second
	var atResume int
	h.control(500*time.Millisecond, workflows.Control{Op: workflows.OpPause, By: "carol", Reason: "look"})
	h.env.RegisterDelayedCallback(func() {
		sv.mu.Lock()
		atResume = len(sv.done)
		sv.mu.Unlock()
		h.env.SignalWorkflow(workflows.SignalControl, workflows.Control{Op: workflows.OpResume, By: "carol", Reason: "go on"})
	}, 10*time.Second)
	h.run(book(fanOutStep(items(4), 1, "")), workflows.ModeFailover)
	rep := h.report(t)
	if rep.State != workflows.StateSucceeded || len(sv.done) != 4 {
		t.Fatalf("run %s, %d moved", rep.State, len(sv.done))
	}
	if atResume > 1 {
		t.Errorf("%d children had run by the resume; want at most the one running when paused", atResume)
	}
}

// A fan-out cut short by another step's failure is not done, and with
// on_failure: continue its outputs stay for the steps after it.
func TestFanOutCutShortAndOutputsKept(t *testing.T) {
	h, sv := fleetHarness(t)
	sv.hold = time.Second
	h.rec.permanent["boom"], h.rec.fail["boom"] = true, true
	h.rec.hooks["boom"] = func(context.Context) error { time.Sleep(1500 * time.Millisecond); return nil }
	h.run(book(fanOutStep(items(6), 1, ""), act("boom")), workflows.ModeFailover)
	rep := h.report(t)
	if st, _ := rep.Step("services"); st.State == workflows.StepSucceeded || !strings.Contains(st.Summary, "skipped") {
		t.Fatalf("services %s (%s); want it not succeeded, children skipped", st.State, st.Summary)
	}

	h, _ = fleetHarness(t, "svc01")
	use := runbooks.Step{ID: "use", Action: "test.do", Needs: []string{"services"}, With: map[string]any{"value": "${{ steps.services.outputs.succeeded }}"}}
	h.run(book(fanOutStep(items(3), 3, runbooks.OnFailureContinue), use), workflows.ModeFailover)
	rep = h.report(t)
	if st, _ := rep.Step("use"); st.State != workflows.StepSucceeded || fmt.Sprint(st.Outputs["echo"]) != "2" {
		t.Fatalf("use %s (%s), echo %v; want succeeded with 2", st.State, st.Error, st.Outputs["echo"])
	}
}

// A drill cannot fan out yet; bad items are refused before anything acts.
func TestFanOutRefusedBeforeItActs(t *testing.T) {
	bad := fanOutStep(nil, 1, "")
	bad.ForEach = "${{ params.svcs }}"
	for _, tc := range []struct {
		name string
		in   workflows.RunInput
		want string
	}{
		{"drill", workflows.RunInput{Runbook: book(fanOutStep(items(2), 1, "")), Mode: workflows.ModeDrill, StartedBy: "alice"}, "a drill cannot yet"},
		{"bad item", workflows.RunInput{Runbook: withParam(book(act("first"), bad), "svcs", "a,B C"), Mode: workflows.ModeFailover, StartedBy: "alice"}, `for_each item "B C"`},
		{"duplicate", workflows.RunInput{Runbook: withParam(book(bad), "svcs", "a,a"), Mode: workflows.ModeFailover, StartedBy: "alice"}, `item "a" is listed twice`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := workflows.CheckInput(tc.in); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("CheckInput: %v; want %q", err, tc.want)
			}
		})
	}
}

// Items known only from an earlier step's outputs are checked when the
// step runs, not refused at the start.
func TestFanOutOverOutputsIsCheckedWhenItRuns(t *testing.T) {
	late := fanOutStep(nil, 1, "")
	late.ForEach, late.Needs = "${{ steps.first.outputs.echo }}", []string{"first"}
	in := workflows.RunInput{Runbook: book(act("first"), late), Mode: workflows.ModeFailover, StartedBy: "alice"}
	if err := workflows.CheckInput(in); err != nil {
		t.Fatalf("CheckInput: %v; want the items left to the step", err)
	}
}

func withParam(rb runbooks.Runbook, name, def string) runbooks.Runbook {
	rb.Params = append(rb.Params, runbooks.Param{Name: name, Default: &def})
	return rb
}
