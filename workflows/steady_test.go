package workflows_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/drctl/drctl/activities"
	"github.com/drctl/drctl/runbooks"
	"github.com/drctl/drctl/workflows"
)

// world is a fake system with one fact per step: "serving" moves from east
// to west when a step acts and back when its compensation runs.
type world struct {
	mu     sync.Mutex
	facts  map[string]string
	broken string // a step whose action always fails, having changed nothing
}

func (w *world) act(_ context.Context, req activities.Request) (activities.Result, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if req.Step == w.broken && !req.Compensating {
		return activities.Result{}, errors.New("broken")
	}
	if req.Compensating {
		w.facts[req.Step] = "east"
	} else {
		w.facts[req.Step] = "west"
	}
	return activities.Result{Changed: true}, nil
}

func (w *world) observe(_ context.Context, req activities.Request) (activities.Observation, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return activities.Observation{Current: w.facts[req.Step], State: map[string]string{"lb " + req.Step: w.facts[req.Step]}}, nil
}

func drillEnv(t *testing.T, w *world) *testsuite.TestWorkflowEnvironment {
	t.Helper()
	var s testsuite.WorkflowTestSuite
	s.SetLogger(nopLogger{})
	env := s.NewTestWorkflowEnvironment()
	env.RegisterWorkflowWithOptions(workflows.Run, workflow.RegisterOptions{Name: workflows.RunbookWorkflow})
	env.RegisterActivityWithOptions(w.act, activity.RegisterOptions{Name: "shift"})
	env.RegisterActivityWithOptions(w.observe, activity.RegisterOptions{Name: "shift" + activities.ObserveSuffix})
	env.RegisterActivityWithOptions((&notes{}).notify, activity.RegisterOptions{Name: activities.NotifyActivity})
	env.SetTestTimeout(time.Minute)
	return env
}

func shiftStep(id string, undo bool) runbooks.Step {
	s := runbooks.Step{ID: id, Action: "shift", With: map[string]any{"backend": id}}
	if undo {
		s.Compensate = &runbooks.Compensation{Action: "shift"}
	}
	return s
}

// TestDrillPutsEverythingBack: every step's compensation restores its fact,
// so the after-state equals the before-state and the drill succeeds.
func TestDrillPutsEverythingBack(t *testing.T) {
	w := &world{facts: map[string]string{"app": "east", "api": "east"}}
	env := drillEnv(t, w)
	a, b := shiftStep("app", true), shiftStep("api", true)
	b.Needs = []string{"app"}
	env.ExecuteWorkflow(workflows.RunbookWorkflow, workflows.RunInput{Runbook: book(a, b), Mode: workflows.ModeDrill, StartedBy: "alice"})
	h := &harness{env: env}
	rep := h.report(t)
	if rep.State != workflows.StateSucceeded || rep.Steady == nil || len(rep.Steady.Differences) != 0 {
		t.Fatalf("state %s, error %q, steady %+v", rep.State, rep.Error, rep.Steady)
	}
	if rep.Steady.Before["lb app"] != "east" || rep.Steady.After["lb app"] != "east" || len(rep.Steady.Before) != 2 {
		t.Fatalf("steady %+v", rep.Steady)
	}
}

// TestDrillThatLeavesSomethingChangedFails: a step without a way back
// leaves its fact moved; the drill fails and names it, was and now, after
// giving it time to settle.
func TestDrillThatLeavesSomethingChangedFails(t *testing.T) {
	w := &world{facts: map[string]string{"app": "east", "api": "east"}}
	env := drillEnv(t, w)
	a, b := shiftStep("app", true), shiftStep("api", false)
	b.Needs = []string{"app"}
	env.ExecuteWorkflow(workflows.RunbookWorkflow, workflows.RunInput{Runbook: book(a, b), Mode: workflows.ModeDrill, StartedBy: "alice"})
	h := &harness{env: env}
	rep := h.report(t)
	if rep.State != workflows.StateFailed || rep.Steady == nil {
		t.Fatalf("state %s, steady %+v", rep.State, rep.Steady)
	}
	want := []workflows.StateDiff{{Key: "lb api", Was: "east", Now: "west"}}
	if len(rep.Steady.Differences) != 1 || rep.Steady.Differences[0] != want[0] {
		t.Fatalf("differences %+v, want %+v", rep.Steady.Differences, want)
	}
	if !strings.Contains(rep.Error, `lb api: was "east", now "west"`) {
		t.Fatalf("error %q", rep.Error)
	}
}

// TestFailoverTakesNoSteadyState: only drills compare; a failover stays
// failed over and observes nothing extra.
func TestFailoverTakesNoSteadyState(t *testing.T) {
	w := &world{facts: map[string]string{"app": "east"}}
	env := drillEnv(t, w)
	env.ExecuteWorkflow(workflows.RunbookWorkflow, workflows.RunInput{Runbook: book(shiftStep("app", true)), Mode: workflows.ModeFailover, StartedBy: "alice"})
	h := &harness{env: env}
	rep := h.report(t)
	if rep.State != workflows.StateSucceeded || rep.Steady != nil || w.facts["app"] != "west" {
		t.Fatalf("state %s, steady %+v, app %s", rep.State, rep.Steady, w.facts["app"])
	}
}

// TestFailedDrillSaysWhatIsNotBack: a drill whose second step fails
// compensates the first; the steady-state check still runs and finds
// everything back (the compensation restored it), so the drill reports
// failed for the step, not for the state. Then the same with a first step
// that has no way back: the failed drill also lists what is not back.
func TestFailedDrillSaysWhatIsNotBack(t *testing.T) {
	w := &world{facts: map[string]string{"app": "east", "api": "east"}, broken: "api"}
	env := drillEnv(t, w)
	a, b := shiftStep("app", true), shiftStep("api", true)
	b.Needs = []string{"app"}
	env.ExecuteWorkflow(workflows.RunbookWorkflow, workflows.RunInput{Runbook: book(a, b), Mode: workflows.ModeDrill, StartedBy: "alice"})
	h := &harness{env: env}
	rep := h.report(t)
	if rep.State != workflows.StateFailed || rep.Steady == nil || rep.Steady.After == nil || len(rep.Steady.Differences) != 0 {
		t.Fatalf("state %s, error %q, steady %+v", rep.State, rep.Error, rep.Steady)
	}
	if strings.Contains(rep.Error, "not back") {
		t.Fatalf("error %q", rep.Error)
	}

	w = &world{facts: map[string]string{"app": "east", "api": "east"}, broken: "api"}
	env = drillEnv(t, w)
	a = shiftStep("app", false)
	env.ExecuteWorkflow(workflows.RunbookWorkflow, workflows.RunInput{Runbook: book(a, b), Mode: workflows.ModeDrill, StartedBy: "alice"})
	rep = (&harness{env: env}).report(t)
	if rep.State != workflows.StateFailed || !strings.Contains(rep.Error, `not back as before the drill: lb app: was "east", now "west"`) {
		t.Fatalf("state %s, error %q", rep.State, rep.Error)
	}
}

// TestFailedForwardPathTakesTheFailbackWayBack: a drill whose forward path
// fails after a step only its failback undoes (Failback.After) runs the
// failback runbook as the way back, not the compensations, and compares;
// when no such step changed anything, the compensations are the way back.
func TestFailedForwardPathTakesTheFailbackWayBack(t *testing.T) {
	for _, tc := range []struct {
		name     string
		after    []string
		failback bool
	}{
		{"after the promotion", []string{"promote"}, true},
		{"nothing irreversible", nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := &world{facts: map[string]string{"promote": "east", "dns": "east"}, broken: "dns"}
			env := drillEnv(t, w)
			restore := func(context.Context, activities.Request) (activities.Result, error) {
				w.mu.Lock()
				defer w.mu.Unlock()
				for k := range w.facts {
					w.facts[k] = "east"
				}
				return activities.Result{Changed: true}, nil
			}
			env.RegisterActivityWithOptions(restore, activity.RegisterOptions{Name: "restore"})
			promote, dns := shiftStep("promote", false), shiftStep("dns", true)
			dns.Needs = []string{"promote"}
			fb := book(runbooks.Step{ID: "home", Action: "restore"})
			fb.Name = "failback"
			env.ExecuteWorkflow(workflows.RunbookWorkflow, workflows.RunInput{
				Runbook: book(promote, dns), Mode: workflows.ModeDrill, StartedBy: "alice",
				Failback: &workflows.Failback{Runbook: fb, After: tc.after},
			})
			rep := (&harness{env: env}).report(t)
			if rep.State != workflows.StateFailed || rep.RTO != nil || rep.Steady == nil {
				t.Fatalf("state %s (%s), RTO %v, steady %+v", rep.State, rep.Error, rep.RTO, rep.Steady)
			}
			if tc.failback {
				if rep.Failback == nil || rep.Failback.State != workflows.StateSucceeded || len(rep.Compensations) != 0 || len(rep.Steady.Differences) != 0 ||
					!strings.Contains(rep.Error, "the way back: failback failback succeeded") {
					t.Fatalf("failback %+v, compensations %+v, differences %+v, error %q", rep.Failback, rep.Compensations, rep.Steady.Differences, rep.Error)
				}
				return
			}
			// The compensations cannot move "promote" back (it has none):
			// the comparison says so.
			if rep.Failback != nil || len(rep.Compensations) == 0 || len(rep.Steady.Differences) != 1 || rep.Steady.Differences[0].Key != "lb promote" {
				t.Fatalf("failback %+v, compensations %+v, differences %+v", rep.Failback, rep.Compensations, rep.Steady.Differences)
			}
		})
	}
}
