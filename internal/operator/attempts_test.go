package operator

import (
	"errors"
	"fmt"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	failurepb "go.temporal.io/api/failure/v1"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/sdk/temporal"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/drctl/drctl/workflows"
)

func TestFailureText(t *testing.T) {
	fc := temporal.GetDefaultFailureConverter()
	inner := temporal.NewApplicationError("503 Service Unavailable", "drctl.ActionFailed")
	for _, tc := range []struct {
		name string
		err  error
		want string
	}{
		{"an action's error", temporal.NewApplicationError("http.check http://app/healthz: 503", "drctl.ActionFailed"), "http.check http://app/healthz: 503"},
		{"one wrapping an application error", fmt.Errorf("promote db-west: %w", inner), "promote db-west: 503 Service Unavailable"},
		{"a plain error", errors.New("connection refused"), "connection refused"},
		{"a timeout", temporal.NewTimeoutError(enumspb.TIMEOUT_TYPE_START_TO_CLOSE, nil), "timed out (start_to_close)"},
	} {
		if got := failureText(fc.ErrorToFailure(tc.err)); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestInFlight(t *testing.T) {
	now := time.Date(2026, 11, 1, 3, 0, 0, 0, time.UTC)
	fail := temporal.GetDefaultFailureConverter().ErrorToFailure(temporal.NewApplicationError("chaos: injected failure (attempt 1 of 5 failing)", "drctl.ActionFailed"))
	pending := []*workflowpb.PendingActivityInfo{
		{ActivityId: "promote", Attempt: 2, MaximumAttempts: 5, State: enumspb.PENDING_ACTIVITY_STATE_SCHEDULED, LastFailure: fail,
			LastWorkerIdentity: "w1@east", NextAttemptScheduleTime: timestamppb.New(now.Add(41 * time.Second))},
		{ActivityId: "check", Attempt: 1, State: enumspb.PENDING_ACTIVITY_STATE_STARTED},
		{ActivityId: "compensate:fence", Attempt: 3, State: enumspb.PENDING_ACTIVITY_STATE_CANCEL_REQUESTED, LastFailure: &failurepb.Failure{Message: "refused"}},
		{ActivityId: "7", Attempt: 4}, // a notification, no step
	}
	got := inFlight(pending, []string{"promote", "check"}, now)
	if len(got) != 3 {
		t.Fatalf("%d attempts in flight, want 3: %+v", len(got), got)
	}
	p := got[0]
	if p.Step != "promote" || p.Attempt != 2 || p.MaxAttempts != 5 || p.State != "scheduled" || p.LastWorker != "w1@east" ||
		p.LastError != "chaos: injected failure (attempt 1 of 5 failing)" || !p.Retrying() {
		t.Errorf("promote: %+v", p)
	}
	if p.NextAttemptAt == nil || !p.NextAttemptAt.Equal(now.Add(41*time.Second)) || p.NextAttemptIn != "41s" || *p.NextAttemptInMs != 41000 {
		t.Errorf("promote's next attempt: %+v", p)
	}
	if c := got[1]; c.Step != "check" || c.Retrying() || c.NextAttemptAt != nil || c.State != "started" {
		t.Errorf("check, first attempt running: %+v", c)
	}
	if c := got[2]; c.Step != "fence" || !c.Compensation || c.Attempt != 3 || c.LastError != "refused" || c.State != "cancel_requested" {
		t.Errorf("fence's compensation: %+v", c)
	}
}

func TestWithAttempts(t *testing.T) {
	rep := &workflows.Report{
		Steps: []workflows.StepReport{
			{ID: "promote", State: workflows.StepRunning},
			{ID: "fence", State: workflows.StepSucceeded, Attempts: 1},
		},
		Compensations: []workflows.StepReport{{ID: "fence", State: workflows.StepRunning, Attempts: 1}},
	}
	withAttempts(rep, []Attempt{{Step: "promote", Attempt: 3}, {Step: "fence", Attempt: 2, Compensation: true}})
	if rep.Steps[0].Attempts != 3 || rep.Steps[1].Attempts != 1 || rep.Compensations[0].Attempts != 2 {
		t.Errorf("attempts: steps %d, %d; compensation %d", rep.Steps[0].Attempts, rep.Steps[1].Attempts, rep.Compensations[0].Attempts)
	}
}
