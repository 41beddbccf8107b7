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
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/drctl/drctl/activities"
	"github.com/drctl/drctl/runbooks"
	"github.com/drctl/drctl/workflows"
)

// fleet stands for the workers of a deployment: holds says which workers
// hold the secret the "needs-secret" steps need; every call is recorded
// with the task queue it was sent to.
type fleet struct {
	mu      sync.Mutex
	shared  string
	holds   map[string]bool
	workers []string // what drctl.Workers answers
	calls   []string // "step@queue"
	listed  []string // queues drctl.Workers was asked about
}

func (f *fleet) do(ctx context.Context, req activities.Request) (activities.Result, error) {
	q := activity.GetInfo(ctx).TaskQueue
	f.mu.Lock()
	f.calls = append(f.calls, req.Step+"@"+q)
	f.mu.Unlock()
	if req.With["secret"] != true {
		return activities.Result{Summary: q}, nil
	}
	// On the shared queue the first worker to poll lacks the secret; on a
	// worker's own queue, that worker answers.
	who := "w1"
	if w, ok := strings.CutPrefix(q, f.shared+"@worker:"); ok {
		who = w
	}
	if !f.holds[who] {
		return activities.Result{}, temporal.NewApplicationErrorWithOptions(
			"target db: environment variable DB_DSN is not set on worker "+who, activities.NoCredentialType,
			temporal.ApplicationErrorOptions{NonRetryable: true, Details: []any{activities.FailureDetail{Attempt: 1, Worker: who}}})
	}
	return activities.Result{Summary: q, Worker: who}, nil
}

func (f *fleet) list(_ context.Context, queue string) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.listed = append(f.listed, queue)
	return f.workers, nil
}

func newFleet(t *testing.T, holds ...string) (*harness, *fleet) {
	h := newHarness(t)
	f := &fleet{shared: "drctl-test", holds: map[string]bool{}, workers: []string{"w1", "w2", "w3"}}
	for _, w := range holds {
		f.holds[w] = true
	}
	h.env.RegisterActivityWithOptions(f.do, activity.RegisterOptions{Name: "test.where"})
	h.env.RegisterActivityWithOptions(f.list, activity.RegisterOptions{Name: workflows.WorkersActivity})
	h.env.SetStartWorkflowOptions(client.StartWorkflowOptions{TaskQueue: f.shared})
	return h, f
}

func where(id string, with map[string]any, reach runbooks.Reach, runOn string) runbooks.Step {
	return runbooks.Step{ID: id, Action: "test.where", With: with, Reach: reach, RunOn: runOn}
}

// Each action goes to the queue its reach, run_on and target's site say.
func TestActionsRunWhereTheyArePlaced(t *testing.T) {
	h, f := newFleet(t)
	rb := book(
		where("rejoin-east", map[string]any{"target": "db-east"}, runbooks.ReachSite, ""),
		where("fence-east", map[string]any{"target": "db-east"}, "", ""),
		where("fence-from-west", map[string]any{"target": "db-east"}, "", "west"),
		where("rejoin-anywhere", map[string]any{"target": "db-east"}, runbooks.ReachSite, runbooks.RunOnAny),
		where("rejoin-nosite", map[string]any{"target": "db"}, runbooks.ReachSite, ""),
	)
	rb.Targets = []runbooks.Target{{Name: "db-east", Kind: "postgres", Site: "east"}, {Name: "db", Kind: "postgres"}}
	h.run(rb, workflows.ModeFailover)
	if rep := h.report(t); rep.State != workflows.StateSucceeded {
		t.Fatalf("run %s: %s", rep.State, rep.Error)
	}
	want := map[string]string{
		"rejoin-east": "drctl-test@east", "fence-east": "drctl-test", "fence-from-west": "drctl-test@west",
		"rejoin-anywhere": "drctl-test", "rejoin-nosite": "drctl-test",
	}
	for id, q := range want {
		if !slices.Contains(f.calls, id+"@"+q) {
			t.Errorf("%s was not sent to %s; calls: %v", id, q, f.calls)
		}
	}
}

// A worker that lacks a target's secret does not fail the step while
// another worker holds it: the step is offered to the others in turn.
func TestMissingCredentialIsOfferedToOtherWorkers(t *testing.T) {
	h, f := newFleet(t, "w3")
	rb := book(where("status", map[string]any{"target": "db", "secret": true}, "", ""))
	h.run(rb, workflows.ModeFailover)
	rep := h.report(t)
	if rep.State != workflows.StateSucceeded {
		t.Fatalf("run %s: %s", rep.State, rep.Error)
	}
	wantCalls := []string{"status@drctl-test", "status@drctl-test@worker:w2", "status@drctl-test@worker:w3"}
	if fmt.Sprint(f.calls) != fmt.Sprint(wantCalls) {
		t.Errorf("calls %v, want %v (w1 lacked it on the shared queue, w2 lacks it, w3 holds it)", f.calls, wantCalls)
	}
	if st, _ := rep.Step("status"); st.Worker != "w3" {
		t.Errorf("status ran on %q, want w3", st.Worker)
	}
	if fmt.Sprint(f.listed) != "[drctl-test]" {
		t.Errorf("workers listed for %v, want the shared queue once", f.listed)
	}
}

// With no worker holding it, the step fails naming every worker asked.
func TestMissingEverywhereFailsNamingTheWorkers(t *testing.T) {
	h, _ := newFleet(t)
	rb := book(where("status", map[string]any{"target": "db", "secret": true}, "", ""))
	h.run(rb, workflows.ModeFailover)
	rep := h.report(t)
	st, _ := rep.Step("status")
	if rep.State != workflows.StateFailed || st.State != workflows.StepFailed {
		t.Fatalf("run %s, step %s; want both failed", rep.State, st.State)
	}
	for _, want := range []string{"DB_DSN is not set", "no live worker holds these credentials (asked: w1, w2, w3)"} {
		if !strings.Contains(st.Error, want) {
			t.Errorf("error %q does not say %q", st.Error, want)
		}
	}
}

// siteWatch stands for the site watch that proposes a run: a parent whose
// workflow ID says so.
func siteWatch(ctx workflow.Context, in workflows.RunInput) (*workflows.Report, error) {
	var rep workflows.Report
	err := workflow.ExecuteChildWorkflow(workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{WorkflowID: "drctl-app"}),
		workflows.RunbookWorkflow, in).Get(ctx, &rep)
	return &rep, err
}

// proposed is the input of a run a site watch proposed, detected 40s
// before it started, whose site says auto_approve_after 5m.
func proposed(h *harness, steps ...runbooks.Step) workflows.RunInput {
	return workflows.RunInput{
		Runbook: book(steps...), Mode: workflows.ModeFailover, StartedBy: "site-watch@east",
		Detection:        &workflows.Detection{Site: "east", At: h.env.Now().Add(-40 * time.Second), Incident: "east#1", Quorum: 2},
		AutoApproveAfter: runbooks.Duration(5 * time.Minute),
	}
}

func newProposalHarness(t *testing.T) *harness {
	h := newHarness(t)
	h.env.RegisterWorkflowWithOptions(siteWatch, workflow.RegisterOptions{Name: "test.site-watch"})
	h.env.SetStartWorkflowOptions(client.StartWorkflowOptions{ID: workflows.SiteWatchID("east")})
	return h
}

func proposedReport(t *testing.T, h *harness) *workflows.Report {
	t.Helper()
	var rep workflows.Report
	if err := h.env.GetWorkflowResult(&rep); err != nil {
		t.Fatal(err)
	}
	return &rep
}

// A proposed run's gate that says auto_approve opens by itself after
// auto_approve_after, recorded as such, and its RTO counts from the
// detection.
func TestProposedRunApprovesAfterSilenceAndCountsFromDetection(t *testing.T) {
	h := newProposalHarness(t)
	g := gate("go", []string{"oncall"})
	g.Approval.AutoApprove = true
	h.env.ExecuteWorkflow("test.site-watch", proposed(h, g, act("promote", "go")))
	rep := proposedReport(t, h)
	st, _ := rep.Step("go")
	if rep.State != workflows.StateSucceeded || st.Approval == nil || st.Approval.Via != workflows.ViaAutoApproveAfter || st.Approval.By != "site-watch@east" {
		t.Fatalf("run %s, gate %+v; want approved via %s by site-watch@east", rep.State, st.Approval, workflows.ViaAutoApproveAfter)
	}
	if !strings.Contains(st.Summary, "nobody decided within 5m0s (auto_approve_after of site east)") {
		t.Errorf("gate summary %q does not say why it opened", st.Summary)
	}
	if rep.RTO == nil || rep.RTO.D() < 5*time.Minute+40*time.Second {
		t.Errorf("RTO %v; want it counted from the detection (at least 5m40s)", rep.RTO)
	}
	if rep.Detection == nil || rep.Detection.Incident != "east#1" {
		t.Errorf("report's detection %+v, want incident east#1", rep.Detection)
	}
}

// A gate the runbook does not let open by itself waits for a person,
// whatever the site's auto_approve_after says.
func TestProposedRunGateWithoutOptInWaitsForAPerson(t *testing.T) {
	h := newProposalHarness(t)
	h.env.RegisterDelayedCallback(func() {
		h.env.SignalWorkflowByID("drctl-app", workflows.SignalDecide, workflows.Decision{Step: "go", Approve: true, By: "oncall", Via: workflows.ViaCLI})
	}, 20*time.Minute)
	h.env.ExecuteWorkflow("test.site-watch", proposed(h, gate("go", []string{"oncall"}), act("promote", "go")))
	rep := proposedReport(t, h)
	st, _ := rep.Step("go")
	if rep.State != workflows.StateSucceeded || st.Approval == nil || st.Approval.By != "oncall" {
		t.Fatalf("run %s, gate %+v; want approved by oncall after 20m", rep.State, st.Approval)
	}
	if !hasEventText(rep, workflows.EventRefused, "does not say auto_approve: true") {
		t.Errorf("no event says why the gate waited: %+v", rep.Events)
	}
}

// A pause stops auto_approve_after's clock; after the resume it starts
// again, so the gate opens 5m after the resume, not during the pause.
func TestPauseHoldsAutoApproval(t *testing.T) {
	h := newProposalHarness(t)
	at := func(d time.Duration, op string) {
		h.env.RegisterDelayedCallback(func() {
			h.env.SignalWorkflowByID("drctl-app", workflows.SignalControl, workflows.Control{Op: op, By: "carol", Reason: "looking"})
		}, d)
	}
	at(4*time.Minute, workflows.OpPause)
	at(12*time.Minute, workflows.OpResume)
	g := gate("go", []string{"oncall"})
	g.Approval.AutoApprove = true
	h.env.ExecuteWorkflow("test.site-watch", proposed(h, g, act("promote", "go")))
	rep := proposedReport(t, h)
	st, _ := rep.Step("go")
	if rep.State != workflows.StateSucceeded || st.Approval == nil || st.Approval.Via != workflows.ViaAutoApproveAfter {
		t.Fatalf("run %s, gate %+v; want approved automatically", rep.State, st.Approval)
	}
	if opened := st.Approval.At.Sub(rep.StartedAt); opened < 16*time.Minute+30*time.Second {
		t.Errorf("gate opened %s after the start; want about 17m (resumed at 12m, then 5m)", opened)
	}
}

func hasEventText(rep *workflows.Report, kind, text string) bool {
	for _, e := range rep.Events {
		if e.Kind == kind && strings.Contains(e.Reason, text) {
			return true
		}
	}
	return false
}

// Only a site watch may say a run was detected or approve after silence.
func TestDetectionOnlyFromASiteWatch(t *testing.T) {
	h := newHarness(t)
	h.env.ExecuteWorkflow(workflows.RunbookWorkflow, workflows.RunInput{
		Runbook: book(act("a")), Mode: workflows.ModeFailover, StartedBy: "mallory",
		AutoApproveAfter: runbooks.Duration(time.Second),
	})
	err := h.env.GetWorkflowError()
	if err == nil || !strings.Contains(err.Error(), "come only from a site watch") {
		t.Fatalf("run started by hand with auto_approve_after: %v; want it refused", err)
	}
}

// An action that does no I/O (Local) runs as a local activity, in the
// worker running the workflow; with run_on it goes through the server.
func TestLocalActionsRunInTheWorkflowsWorker(t *testing.T) {
	h := newHarness(t)
	var mu sync.Mutex
	local := map[string]bool{}
	h.env.RegisterActivityWithOptions(func(ctx context.Context, req activities.Request) (activities.Result, error) {
		mu.Lock()
		defer mu.Unlock()
		local[req.Step] = activity.GetInfo(ctx).IsLocalActivity
		return activities.Result{Summary: req.Step}, nil
	}, activity.RegisterOptions{Name: "test.local"})
	step := func(id, runOn string) runbooks.Step {
		return runbooks.Step{ID: id, Action: "test.local", Local: true, RunOn: runOn}
	}
	h.run(book(step("here", ""), step("placed", "any")), workflows.ModeFailover)
	if rep := h.report(t); rep.State != workflows.StateSucceeded {
		t.Fatalf("run %s: %s", rep.State, rep.Error)
	}
	if !local["here"] || local["placed"] {
		t.Errorf("local activity: here %t, placed %t; want true, false", local["here"], local["placed"])
	}
}
