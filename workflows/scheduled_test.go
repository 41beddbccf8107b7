package workflows_test

import (
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/drctl/drctl/activities"
	"github.com/drctl/drctl/activities/note"
	"github.com/drctl/drctl/runbooks"
	"github.com/drctl/drctl/workflows"
)

// firingID is the workflow ID of a drill schedule's firing in these tests;
// drillID is the drill it starts (the lock "test").
const (
	firingID = "drctl-drill-test-2026-11-29T00:00:00Z"
	drillID  = "drctl-test"
)

// firing stands in for a drill schedule's firing: it starts the drill as
// its child, the only way a run takes an automatic approver.
func firing(ctx workflow.Context, in workflows.RunInput) (*workflows.Report, error) {
	cctx := workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{WorkflowID: drillID})
	var rep workflows.Report
	err := workflow.ExecuteChildWorkflow(cctx, workflows.RunbookWorkflow, in).Get(ctx, &rep)
	if err != nil {
		return nil, err
	}
	return &rep, nil
}

// drill runs rb as a scheduled drill's firing would, with autoApprove as
// the schedule's automatic approver.
func (h *harness) drill(rb runbooks.Runbook, autoApprove string) {
	h.env.RegisterWorkflowWithOptions(firing, workflow.RegisterOptions{Name: "test.firing"})
	h.env.SetStartWorkflowOptions(client.StartWorkflowOptions{ID: firingID})
	h.env.ExecuteWorkflow("test.firing", workflows.RunInput{Runbook: rb, Mode: workflows.ModeDrill, StartedBy: "alice", AutoApprove: autoApprove})
}

// decideInDrill sends a decision to the drill a firing started.
func (h *harness) decideInDrill(at time.Duration, d workflows.Decision) {
	h.env.RegisterDelayedCallback(func() {
		_ = h.env.SignalWorkflowByID(drillID, workflows.SignalDecide, d)
	}, at)
}

// drillGate is a gate the automatic approver bot may open in drills.
func drillGate(id string, approvers []string, bot string, needs ...string) runbooks.Step {
	g := gate(id, approvers, needs...)
	g.Approval.DrillApprovers = []string{bot}
	return g
}

// TestAutoApproverDecidesTheGatesItIsAllowed: a scheduled drill's
// automatic approver opens a gate that names it in drill_approvers at
// once (it need not be a person's approver), recorded as an automatic
// decision by the schedule.
func TestAutoApproverDecidesTheGatesItIsAllowed(t *testing.T) {
	h := newHarness(t)
	h.drill(book(act("fence"), drillGate("go", []string{"oncall"}, "drill-bot", "fence"), act("promote", "go")), "drill-bot")
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
		{"mallory", "gate \"go\" does not name mallory in drill_approvers"},
		{"alice", "two-person rule: alice started this run"},
	} {
		t.Run(tc.auto, func(t *testing.T) {
			h := newHarness(t)
			h.decideInDrill(time.Hour, workflows.Decision{Step: "go", Approve: true, By: "bob"})
			h.drill(book(drillGate("go", []string{"alice", "bob"}, "alice"), act("promote", "go")), tc.auto)
			rep := h.report(t)
			g := stepState(t, rep, "go")
			if rep.State != workflows.StateSucceeded || g.Approval.By != "bob" || g.Approval.Via == workflows.ViaSchedule {
				t.Fatalf("state %s; gate %+v", rep.State, g.Approval)
			}
			refused := false
			for _, e := range rep.Events {
				refused = refused || e.Kind == workflows.EventRefused && e.By == tc.auto && strings.Contains(e.Reason, "automatic approval: "+tc.refusal)
			}
			if !refused || rep.RTO == nil || rep.RTO.D() < 59*time.Minute {
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
	h.run(book(gate("go", []string{"bob"}), act("promote", "go")), workflows.ModeDrill)
	h.report(t)
	if done, err := forged(); !done || err == nil || !strings.Contains(err.Error(), "only the run itself decides as its schedule's automatic approver") {
		t.Fatalf("forged schedule decision: done %v, %v", done, err)
	}
}

// TestAutomaticApprovalOnlyFromASchedule: a run started directly (by any
// Temporal client) cannot name an automatic approver, nor claim to be a
// drill's failback to get one.
func TestAutomaticApprovalOnlyFromASchedule(t *testing.T) {
	for name, in := range map[string]workflows.RunInput{
		"automatic approver": {Runbook: book(drillGate("go", []string{"bob"}, "bob")), Mode: workflows.ModeDrill, StartedBy: "alice", AutoApprove: "bob"},
		"forged failback":    {Runbook: book(drillGate("go", []string{"bob"}, "bob")), Mode: workflows.ModeFailover, StartedBy: "alice", AutoApprove: "bob", FailbackOf: "drctl-other"},
	} {
		h := newHarness(t)
		h.env.ExecuteWorkflow(workflows.RunbookWorkflow, in)
		if err := h.env.GetWorkflowError(); err == nil || !strings.Contains(err.Error(), "automatic approval comes only from a drill schedule") && !strings.Contains(err.Error(), "is not that drill's failback") {
			t.Errorf("%s: %v", name, err)
		}
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
			fb := book(drillGate("ok", []string{"oncall"}, "drill-bot"), step("back", "ok"))
			fb.Name = "back"
			env.RegisterWorkflowWithOptions(firing, workflow.RegisterOptions{Name: "test.firing"})
			env.SetStartWorkflowOptions(client.StartWorkflowOptions{ID: firingID})
			env.ExecuteWorkflow("test.firing", workflows.RunInput{
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

// TestReportDurationsInMilliseconds: beside their text, RTO and each step's
// time are whole milliseconds in the report, for scripts.
func TestReportDurationsInMilliseconds(t *testing.T) {
	h := newHarness(t)
	h.decide(90*time.Second, workflows.Decision{Step: "go", Approve: true, By: "bob"})
	h.run(book(gate("go", []string{"bob"}), act("promote", "go")), workflows.ModeFailover)
	rep := h.report(t)
	g := stepState(t, rep, "go")
	if rep.RTOMs == nil || *rep.RTOMs != rep.RTO.D().Milliseconds() || g.TookMs == nil || *g.TookMs != 90000 {
		t.Fatalf("rto %v rto_ms %v; gate took_ms %v", rep.RTO, rep.RTOMs, g.TookMs)
	}
}
