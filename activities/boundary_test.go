package activities_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/worker"

	"github.com/drctl/drctl/activities"
	"github.com/drctl/drctl/runbooks"
)

// boundaryEnv registers act through the registry, as a worker does, in a
// Temporal test activity environment.
func boundaryEnv(t *testing.T, act *fakeAction) *testsuite.TestActivityEnvironment {
	t.Helper()
	reg := activities.NewRegistry()
	if err := reg.Add(act); err != nil {
		t.Fatal(err)
	}
	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	reg.RegisterActivities(env)
	return env
}

// applicationError returns the action failure inside err.
func applicationError(t *testing.T, err error) *temporal.ApplicationError {
	t.Helper()
	if err == nil {
		t.Fatal("activity succeeded, want a failure")
	}
	var appErr *temporal.ApplicationError
	if !errors.As(err, &appErr) {
		t.Fatalf("error %v (%T) holds no ApplicationError", err, err)
	}
	if appErr.Type() != activities.FailureType {
		t.Errorf("failure type %q, want %q", appErr.Type(), activities.FailureType)
	}
	var d activities.FailureDetail
	if err := appErr.Details(&d); err != nil {
		t.Fatalf("failure details: %v", err)
	}
	if d.Attempt != 1 {
		t.Errorf("FailureDetail.Attempt = %d, want 1", d.Attempt)
	}
	return appErr
}

func TestBoundaryFailures(t *testing.T) {
	tests := []struct {
		name         string
		err          error
		nonRetryable bool
		delay        time.Duration
	}{
		{"plain error stays retryable", errors.New("connection refused"), false, 0},
		{"retryable Error stays retryable", &activities.Error{Op: "promote", Target: "db@west", Err: errors.New("busy")}, false, 0},
		{"permanent error", activities.Permanentf("bad credentials"), true, 0},
		{"wrapped permanent error", &activities.Error{Op: "promote", Target: "db@west", Err: activities.Permanentf("bad credentials")}, true, 0},
		{"retry after sets the next delay", activities.RetryAfter(errors.New("rate limited"), 90*time.Second), false, 90 * time.Second},
		{"wrapped retry after", fmt.Errorf("call: %w", activities.RetryAfter(errors.New("429"), 3*time.Second)), false, 3 * time.Second},
	}
	for _, tc := range tests {
		for _, activity := range []string{"fake", "fake" + activities.ObserveSuffix} {
			t.Run(tc.name+"/"+activity, func(t *testing.T) {
				act := &fakeAction{name: "fake", applyErr: tc.err}
				env := boundaryEnv(t, act)
				_, err := env.ExecuteActivity(activity, activities.Request{Step: "s"})
				appErr := applicationError(t, err)
				if appErr.NonRetryable() != tc.nonRetryable {
					t.Errorf("NonRetryable() = %v, want %v", appErr.NonRetryable(), tc.nonRetryable)
				}
				if appErr.NextRetryDelay() != tc.delay {
					t.Errorf("NextRetryDelay() = %s, want %s", appErr.NextRetryDelay(), tc.delay)
				}
				if !strings.Contains(err.Error(), tc.err.Error()) {
					t.Errorf("failure %q lost the action's message %q", err, tc.err)
				}
			})
		}
	}
}

func TestBoundaryMissingRequiredInput(t *testing.T) {
	for _, activity := range []string{"fake", "fake" + activities.ObserveSuffix} {
		t.Run(activity, func(t *testing.T) {
			act := &fakeAction{name: "fake", inputs: []runbooks.InputSpec{
				{Name: "url", Type: runbooks.TypeString, Required: true},
				{Name: "note", Type: runbooks.TypeString},
			}}
			env := boundaryEnv(t, act)
			_, err := env.ExecuteActivity(activity, activities.Request{Step: "s", With: map[string]any{"note": "x"}})
			appErr := applicationError(t, err)
			if !appErr.NonRetryable() {
				t.Error("a missing required input is retryable; retrying cannot add it")
			}
			if !strings.Contains(err.Error(), `missing required input "url"`) {
				t.Errorf("failure %q does not name the missing input", err)
			}
			if act.applied != 0 || act.observed != 0 {
				t.Errorf("action ran (apply %d, observe %d) despite a missing input", act.applied, act.observed)
			}
		})
	}
}

func TestBoundaryApplySucceeds(t *testing.T) {
	act := &fakeAction{
		name:   "fake",
		inputs: []runbooks.InputSpec{{Name: "url", Type: runbooks.TypeString, Required: true}},
		result: activities.Result{Changed: true, Summary: "done", Outputs: map[string]any{"k": "v"}},
	}
	env := boundaryEnv(t, act)
	req := activities.Request{
		Run:  activities.Run{WorkflowID: "w", RunID: "r"},
		Step: "s", Action: "fake", With: map[string]any{"url": "http://x"},
	}
	val, err := env.ExecuteActivity("fake", req)
	if err != nil {
		t.Fatalf("ExecuteActivity: %v", err)
	}
	var res activities.Result
	if err := val.Get(&res); err != nil {
		t.Fatal(err)
	}
	if res.Attempt != 1 {
		t.Errorf("Result.Attempt = %d, want 1 (filled in by the registry)", res.Attempt)
	}
	if !res.Changed || res.Summary != "done" || res.Outputs["k"] != "v" {
		t.Errorf("result %+v lost what Apply returned", res)
	}
	if act.applied != 1 || act.lastReq.IdempotencyKey() != req.IdempotencyKey() || act.lastReq.With["url"] != "http://x" {
		t.Errorf("Apply ran %d times with %+v, want once with %+v", act.applied, act.lastReq, req)
	}
}

func TestBoundaryObserveSucceeds(t *testing.T) {
	act := &fakeAction{name: "fake"}
	env := boundaryEnv(t, act)
	val, err := env.ExecuteActivity("fake"+activities.ObserveSuffix, activities.Request{Step: "s"})
	if err != nil {
		t.Fatalf("ExecuteActivity: %v", err)
	}
	var obs activities.Observation
	if err := val.Get(&obs); err != nil {
		t.Fatal(err)
	}
	if obs.Current != "fine" || len(obs.Changes) != 1 {
		t.Errorf("observation %+v, want what Observe returned", obs)
	}
	if act.observed != 1 || act.applied != 0 {
		t.Errorf("observe ran %d, apply ran %d; want 1 and 0", act.observed, act.applied)
	}
}

// A secret this worker lacks crosses the boundary as NoCredentialType,
// not retried here, with the worker's identity, so the interpreter can
// offer the action to another worker; a result names its worker too.
func TestBoundaryNoCredential(t *testing.T) {
	act := &fakeAction{name: "fake", applyErr: activities.NoCredentialf("target db: environment variable DB_DSN is not set on worker w1")}
	env := boundaryEnv(t, act)
	env.SetWorkerOptions(worker.Options{BackgroundActivityContext: activities.WithWorker(context.Background(), "worker-east")})
	_, err := env.ExecuteActivity("fake", activities.Request{Action: "fake"})
	var appErr *temporal.ApplicationError
	if !errors.As(err, &appErr) || appErr.Type() != activities.NoCredentialType || !appErr.NonRetryable() {
		t.Fatalf("error %v; want a non-retryable %s", err, activities.NoCredentialType)
	}
	var d activities.FailureDetail
	if err := appErr.Details(&d); err != nil || d.Worker != "worker-east" || d.Attempt != 1 {
		t.Errorf("details %+v (%v); want worker-east, attempt 1", d, err)
	}

	ok := &fakeAction{name: "fake"}
	env = boundaryEnv(t, ok)
	env.SetWorkerOptions(worker.Options{BackgroundActivityContext: activities.WithWorker(context.Background(), "worker-west")})
	v, err := env.ExecuteActivity("fake", activities.Request{Action: "fake"})
	if err != nil {
		t.Fatal(err)
	}
	var res activities.Result
	if err := v.Get(&res); err != nil || res.Worker != "worker-west" {
		t.Errorf("result %+v (%v); want it to name worker-west", res, err)
	}
}
