package workflows_test

import (
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/drctl/drctl/activities"
	"github.com/drctl/drctl/activities/note"
	"github.com/drctl/drctl/runbooks"
	"github.com/drctl/drctl/workflows"
)

func (h *harness) drill(rb runbooks.Runbook, autoApprove string) {
	h.env.ExecuteWorkflow(workflows.RunbookWorkflow, workflows.RunInput{Runbook: rb, Mode: workflows.ModeDrill, StartedBy: "alice", AutoApprove: autoApprove})
}

// TestAutoApproverDecidesTheGatesItIsAllowed: a scheduled drill's
// automatic approver opens a gate that allows it at once, recorded as an
// automatic decision by the schedule.
func TestAutoApproverDecidesTheGatesItIsAllowed(t *testing.T) {
	h := newHarness(t)
	h.drill(book(act("fence"), gate("go", []string{"drill-bot"}, "fence"), act("promote", "go")), "drill-bot")
	rep := h.report(t)
	g := stepState(t, rep, "go")
	if rep.State != workflows.StateSucceeded || g.Approval.By != "drill-bot" || g.Approval.Via != workflows.ViaSchedule || !strings.Contains(g.Summary, "automatically") {
		t.Fatalf("state %s (%s); gate %+v, summary %q", rep.State, rep.Error, g.Approval, g.Summary)
	}
	if !hasEvent(rep, workflows.EventApproved, "go", "drill-bot") {
		t.Fatalf("events %+v", rep.Events)
	}
}

// TestAutoApproverHeldToTheGateRules: an automatic approver the gate does
// not allow, or who started the run (two-person rule), decides nothing:
// the refusal is recorded and the gate waits for a person.
func TestAutoApproverHeldToTheGateRules(t *testing.T) {
	for _, tc := range []struct{ auto, refusal string }{
		{"mallory", "mallory may not decide step \"go\""},
		{"alice", "two-person rule: alice started this run"},
	} {
		t.Run(tc.auto, func(t *testing.T) {
			h := newHarness(t)
			h.decide(time.Hour, workflows.Decision{Step: "go", Approve: true, By: "bob"})
			h.drill(book(gate("go", []string{"alice", "bob"}), act("promote", "go")), tc.auto)
			rep := h.report(t)
			g := stepState(t, rep, "go")
			if rep.State != workflows.StateSucceeded || g.Approval.By != "bob" || g.Approval.Via == workflows.ViaSchedule {
				t.Fatalf("state %s; gate %+v", rep.State, g.Approval)
			}
			refused := false
			for _, e := range rep.Events {
				refused = refused || e.Kind == workflows.EventRefused && e.By == tc.auto && strings.Contains(e.Reason, "automatic approval: "+tc.refusal)
			}
			if !refused || rep.RTO == nil || rep.RTO.D() < time.Hour {
				t.Fatalf("refusal recorded %v, RTO %v (the gate must have waited for bob); events %+v", refused, rep.RTO, rep.Events)
			}
		})
	}
}

// TestNoMessageCanClaimTheSchedule: a decision sent from outside that says
// it came through the schedule is refused.
func TestNoMessageCanClaimTheSchedule(t *testing.T) {
	h := newHarness(t)
	forged := h.decide(time.Minute, workflows.Decision{Step: "go", Approve: true, By: "bob", Via: workflows.ViaSchedule})
	h.decide(2*time.Minute, workflows.Decision{Step: "go", Approve: false, By: "bob", Reason: "test over"})
	h.drill(book(gate("go", []string{"bob"}), act("promote", "go")), "")
	h.report(t)
	if done, err := forged(); !done || err == nil || !strings.Contains(err.Error(), "only the run itself decides as its schedule's automatic approver") {
		t.Fatalf("forged schedule decision: done %v, %v", done, err)
	}
}

func TestAutoApproveOnlyInDrills(t *testing.T) {
	h := newHarness(t)
	h.env.ExecuteWorkflow(workflows.RunbookWorkflow, workflows.RunInput{Runbook: book(act("a")), Mode: workflows.ModeFailover, StartedBy: "alice", AutoApprove: "bob"})
	if err := h.env.GetWorkflowError(); err == nil || !strings.Contains(err.Error(), "automatic approval is for scheduled drills only") {
		t.Fatalf("auto-approve in a failover: %v", err)
	}
}

// TestFailbackTakesItsFaultsAndTheAutoApprover: the drill's failback child
// gets the faults meant for its steps (and only those) and the drill's
// automatic approver; a permanent fault in the way back fails the drill.
func TestFailbackTakesItsFaultsAndTheAutoApprover(t *testing.T) {
	for _, tc := range []struct {
		name  string
		fault activities.Fault
		state string
	}{
		{"retries absorb", activities.Fault{Step: "back", Fail: 1}, workflows.StateSucceeded},
		{"permanent", activities.Fault{Step: "back", Permanent: true}, workflows.StateFailed},
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
			env.RegisterActivityWithOptions((&notes{}).notify, activity.RegisterOptions{Name: activities.NotifyActivity})
			step := func(id string, needs ...string) runbooks.Step {
				return runbooks.Step{ID: id, Action: "note", Needs: needs, With: map[string]any{"message": id},
					Retry: &runbooks.RetryPolicy{MaxAttempts: 3, InitialInterval: runbooks.Duration(time.Second)}}
			}
			fb := book(gate("ok", []string{"drill-bot"}), step("back", "ok"))
			fb.Name = "back"
			env.ExecuteWorkflow(workflows.RunbookWorkflow, workflows.RunInput{
				Runbook: book(step("forth")), Mode: workflows.ModeDrill, StartedBy: "alice", AutoApprove: "drill-bot",
				Failback: &workflows.Failback{Runbook: fb, Chaos: []activities.Fault{tc.fault}},
			})
			rep := (&harness{env: env}).report(t)
			if rep.State != tc.state || rep.Failback == nil || len(rep.Chaos) != 0 {
				t.Fatalf("drill %s (%s), failback %+v, drill chaos %+v", rep.State, rep.Error, rep.Failback, rep.Chaos)
			}
			back, _ := rep.Failback.Step("back")
			ok, _ := rep.Failback.Step("ok")
			if len(rep.Failback.Chaos) != 1 || rep.Failback.Chaos[0] != tc.fault || ok.Approval.Via != workflows.ViaSchedule {
				t.Fatalf("failback chaos %+v, gate %+v", rep.Failback.Chaos, ok.Approval)
			}
			if tc.fault.Permanent {
				if back.State != workflows.StepFailed || !strings.Contains(rep.Error, "failback back failed") {
					t.Fatalf("back %s; drill error %q", back.State, rep.Error)
				}
			} else if back.Attempts != 2 {
				t.Fatalf("back attempts %d, want 2", back.Attempts)
			}
		})
	}
}

// TestObjectivesMet: only a succeeded run within every objective it states,
// with its RPO measured when it states one, has met its objectives.
func TestObjectivesMet(t *testing.T) {
	d := func(s string) *runbooks.Duration {
		v, err := runbooks.ParseDuration(s)
		if err != nil {
			t.Fatal(err)
		}
		return &v
	}
	obj := func(rto, rpo string) runbooks.Objectives {
		var o runbooks.Objectives
		if rto != "" {
			o.RTO, o.RTOSet = *d(rto), true
		}
		if rpo != "" {
			o.RPO, o.RPOSet = *d(rpo), true
		}
		return o
	}
	for _, tc := range []struct {
		name string
		rep  workflows.Report
		want bool
	}{
		{"within both", workflows.Report{State: workflows.StateSucceeded, Objectives: obj("1m", "0s"), RTO: d("30s"), RPO: d("0s")}, true},
		{"no objectives", workflows.Report{State: workflows.StateSucceeded, RTO: d("30s")}, true},
		{"rto missed", workflows.Report{State: workflows.StateSucceeded, Objectives: obj("1m", ""), RTO: d("61s")}, false},
		{"rpo missed", workflows.Report{State: workflows.StateSucceeded, Objectives: obj("", "0s"), RTO: d("1s"), RPO: d("1ms")}, false},
		{"rpo unmeasured", workflows.Report{State: workflows.StateSucceeded, Objectives: obj("", "30s"), RTO: d("1s")}, false},
		{"rpo unknown", workflows.Report{State: workflows.StateSucceeded, Objectives: obj("", "30s"), RTO: d("1s"), RPO: d("0s"), RPOUnknown: true}, false},
		{"failed", workflows.Report{State: workflows.StateFailed, Objectives: obj("1m", "")}, false},
	} {
		if got := workflows.ObjectivesMet(&tc.rep); got != tc.want {
			t.Errorf("%s: met %v, want %v", tc.name, got, tc.want)
		}
	}
}
