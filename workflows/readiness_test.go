package workflows_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/drctl/drctl/activities"
	"github.com/drctl/drctl/runbooks"
	"github.com/drctl/drctl/workflows"
)

func checkNamed(ev workflows.Evaluation, name string) (workflows.ReadinessCheck, bool) {
	for _, c := range ev.Checks {
		if c.Name == name {
			return c, true
		}
	}
	return workflows.ReadinessCheck{}, false
}

// TestJudge: each named check from what an evaluation saw.
func TestJudge(t *testing.T) {
	obj := runbooks.Objectives{RTO: runbooks.Duration(5 * time.Minute), RTOSet: true, RPO: runbooks.Duration(30 * time.Second), RPOSet: true}
	promote := runbooks.Step{ID: "promote-west", Action: "postgres.promote", With: map[string]any{"target": "db-west"}}
	dnsSet := runbooks.Step{ID: "dns-to-west", Action: "dns.set", With: map[string]any{"target": "dns"}}
	pre := runbooks.Step{ID: "west-is-standby", Action: "postgres.status"}
	streaming := &activities.Observation{Current: "standby", Changes: []string{"promote db-west"},
		State:    map[string]string{"db-west role": "standby", "db-west upstream": "db-east"},
		Measures: map[string]float64{"db-west replay_lag_seconds": 0.2}}
	ttl := func(s float64) *activities.Observation {
		return &activities.Observation{Current: "app A", Changes: []string{"set app A"}, Measures: map[string]float64{"dns app.example. A ttl_seconds": s}}
	}
	for _, tc := range []struct {
		name   string
		seen   []*workflows.Observed
		ready  bool
		check  string
		ok     bool
		reason string
	}{
		{"all good", []*workflows.Observed{
			{Step: pre, Preflight: true, Result: &activities.Result{Summary: "db-west: standby"}},
			{Step: promote, Acting: true, Observation: streaming},
			{Step: dnsSet, Acting: true, Observation: ttl(30)},
		}, true, "standby-streaming:db-west", true, "db-west streams from db-east"},
		{"preflight fails", []*workflows.Observed{{Step: pre, Preflight: true, Err: "db-west is a primary, want standby"}},
			false, "preflight:west-is-standby", false, "want standby"},
		{"standby down", []*workflows.Observed{{Step: promote, Acting: true, Err: "connect: connection refused"}},
			false, "standby-streaming:db-west", false, "standby not streaming: could not observe db-west: connect: connection refused"},
		{"no upstream", []*workflows.Observed{{Step: promote, Acting: true, Observation: &activities.Observation{Changes: []string{"promote"},
			State: map[string]string{"db-west role": "standby", "db-west upstream": "none"}}}},
			false, "standby-streaming:db-west", false, "has no upstream"},
		{"lag over the RPO", []*workflows.Observed{{Step: promote, Acting: true, Observation: &activities.Observation{Changes: []string{"promote"},
			State: map[string]string{"db-west role": "standby", "db-west upstream": "db-east"}, Measures: map[string]float64{"db-west replay_lag_seconds": 45}}}},
			false, "standby-streaming:db-west", false, "replay lag 45s exceeds the RPO objective 30s"},
		{"already failed over", []*workflows.Observed{{Step: promote, Acting: true, Observation: &activities.Observation{Current: "db-west: primary",
			State: map[string]string{"db-west role": "primary", "db-west upstream": "none"}}}},
			false, "observe:promote-west", false, "nothing to change: db-west: primary"},
		{"ttl over the RTO", []*workflows.Observed{{Step: dnsSet, Acting: true, Observation: ttl(3600)}},
			false, "dns-ttl:dns app.example. A", false, "ttl 1h0m0s is longer than the RTO objective 5m0s"},
		{"missing credentials", []*workflows.Observed{{Step: dnsSet, Acting: true, Err: "target dns has no credentials; add credentials: {env: NAME}"}},
			false, "credentials:dns-to-west", false, "has no credentials"},
		{"inputs from earlier steps", []*workflows.Observed{{Step: dnsSet, Acting: true, Unresolved: true}}, true, "", true, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ev := workflows.Judge(obj, tc.seen)
			if ev.Ready != tc.ready {
				t.Fatalf("ready %v, want %v: %+v", ev.Ready, tc.ready, ev.Checks)
			}
			if tc.check == "" {
				if len(ev.Checks) != 0 {
					t.Fatalf("checks %+v", ev.Checks)
				}
				return
			}
			c, found := checkNamed(ev, tc.check)
			if !found || c.OK != tc.ok || !strings.Contains(c.Reason, tc.reason) {
				t.Fatalf("check %s: found %v %+v; want ok %v with %q; all %+v", tc.check, found, c, tc.ok, tc.reason, ev.Checks)
			}
		})
	}
}

// TestReadinessAnnouncesOnceAfterItHolds: a change is announced after it
// held AlertAfter evaluations in a row, once; a blip shorter than that is
// not; the first verdict is announced only when it is "not ready".
func TestReadinessAnnouncesOnceAfterItHolds(t *testing.T) {
	at := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	var st workflows.ReadinessState
	var said []string
	for i, ready := range []bool{true, true, false, true, true, false, false, false, true, true, true} {
		ev := workflows.Evaluation{Runbook: "rb", At: at.Add(time.Duration(i) * time.Minute), Ready: ready}
		if !ready {
			ev.Checks = []workflows.ReadinessCheck{{Name: "standby-streaming:db-west", Reason: "standby not streaming"}}
		}
		if v := st.Apply(ev); v != "" {
			said = append(said, v+"@"+ev.At.Format("04"))
		}
	}
	if want := []string{"not_ready@06", "ready@09"}; strings.Join(said, ",") != strings.Join(want, ",") {
		t.Fatalf("announced %v, want %v", said, want)
	}
	if !st.Ready || st.Since != at.Add(8*time.Minute) || st.Evaluations != 11 || len(st.Changes) != 5 {
		t.Fatalf("state %+v", st)
	}
	// The same evaluation twice (its signal retried) counts once: a single
	// failing evaluation is not announced.
	var dup workflows.ReadinessState
	dup.Apply(workflows.Evaluation{Runbook: "rb", WorkflowID: "e", RunID: "r1", At: at, Ready: true})
	bad := workflows.Evaluation{Runbook: "rb", WorkflowID: "e", RunID: "r2", At: at.Add(time.Minute)}
	dup.Apply(bad)
	if v := dup.Apply(bad); v != "" || dup.Evaluations != 2 {
		t.Fatalf("a repeated evaluation: announced %q after %d evaluations", v, dup.Evaluations)
	}
	var first workflows.ReadinessState
	first.Apply(workflows.Evaluation{Runbook: "rb", At: at})
	if v := first.Apply(workflows.Evaluation{Runbook: "rb", At: at.Add(time.Minute)}); v != workflows.VerdictNotReady || first.Announced != workflows.VerdictNotReady {
		t.Fatalf("a runbook not ready from the start: announced %q, state %q", v, first.Announced)
	}
}

// TestReadinessDuringARun: while a run holds the runbook's lock, an
// evaluation judges nothing (a failover moves what the checks read on
// purpose) and the record keeps its verdict, streak and changes.
func TestReadinessDuringARun(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	s.SetLogger(nopLogger{})
	env := s.NewTestWorkflowEnvironment()
	env.RegisterWorkflowWithOptions(workflows.Readiness, workflow.RegisterOptions{Name: workflows.ReadinessWorkflow})
	env.RegisterActivityWithOptions(func(context.Context, string) (workflows.LockRun, error) {
		return workflows.LockRun{Held: true, Holder: "run drctl-app-site (runbook site-failover, drill) started by oncall-sre"}, nil
	}, activity.RegisterOptions{Name: workflows.LockRunActivity})
	observed := false
	env.RegisterActivityWithOptions(func(context.Context, activities.Request) (activities.Observation, error) {
		observed = true
		return activities.Observation{}, nil
	}, activity.RegisterOptions{Name: "test.do" + activities.ObserveSuffix})
	var recorded workflows.Evaluation
	env.RegisterActivityWithOptions(func(_ context.Context, ev workflows.Evaluation) error {
		recorded = ev
		return nil
	}, activity.RegisterOptions{Name: workflows.RecordReadinessActivity})
	env.ExecuteWorkflow(workflows.ReadinessWorkflow, workflows.ReadinessInput{Runbook: book(act("promote")), StartedBy: "alice", Acting: []string{"promote"}})
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	if observed || recorded.InProgress == "" || len(recorded.Checks) != 0 {
		t.Fatalf("observed %v; recorded %+v", observed, recorded)
	}
	at := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	var st workflows.ReadinessState
	st.Apply(workflows.Evaluation{Runbook: "rb", RunID: "r1", At: at, Ready: true})
	during := workflows.Evaluation{Runbook: "rb", RunID: "r2", At: at.Add(time.Minute), InProgress: recorded.InProgress}
	for i := range 3 {
		during.RunID, during.At = fmt.Sprint("d", i), at.Add(time.Duration(i+1)*time.Minute)
		if v := st.Apply(during); v != "" {
			t.Fatalf("announced %q during a run", v)
		}
	}
	if !st.Ready || st.Streak != 1 || len(st.Changes) != 1 || st.InProgress == "" || st.Evaluations != 4 {
		t.Fatalf("state during a run: %+v", st)
	}
	st.Apply(workflows.Evaluation{Runbook: "rb", RunID: "r9", At: at.Add(time.Hour), Ready: true})
	if st.InProgress != "" || st.Streak != 2 {
		t.Fatalf("after the run: %+v", st)
	}
}
