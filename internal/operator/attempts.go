package operator

import (
	"regexp"
	"slices"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	failurepb "go.temporal.io/api/failure/v1"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/sdk/temporal"

	"github.com/drctl/drctl/workflows"
)

// Attempt is a step's attempt in flight, as Temporal's pending activity
// holds it. The workflow learns how many attempts a step took only when
// the step ends; until then this is where a retrying step's attempt, last
// error and next try are read.
type Attempt struct {
	Step string `json:"step"`
	// Compensation: the attempt is of Step's compensation.
	Compensation bool `json:"compensation,omitempty"`
	// Attempt is the attempt running or due, counting from 1;
	// MaxAttempts 0 means no limit but the step's deadline.
	Attempt     int32 `json:"attempt"`
	MaxAttempts int32 `json:"max_attempts,omitempty"`
	// State is scheduled (waiting for a worker, or for its next try),
	// started (a worker runs it), cancel_requested or paused.
	State string `json:"state"`
	// LastError is why the previous attempt failed, as reports word it
	// (without Temporal's type and retryability).
	LastError string `json:"last_error,omitempty"`
	// LastWorker is the identity of the worker that ran the last attempt.
	LastWorker string `json:"last_worker,omitempty"`
	// NextAttemptAt is when the next attempt is due, while the step waits
	// out its retry interval; NextAttemptIn is how long that was from the
	// read, as text and in whole milliseconds.
	NextAttemptAt   *time.Time `json:"next_attempt_at,omitempty"`
	NextAttemptIn   string     `json:"next_attempt_in,omitempty"`
	NextAttemptInMs *int64     `json:"next_attempt_in_ms,omitempty"`
}

// Retrying reports whether an earlier attempt of the step failed.
func (a Attempt) Retrying() bool { return a.Attempt > 1 || a.LastError != "" }

// compensationPrefix begins the activity ID of a step's compensation (the
// workflow's activity IDs are the step ID, or this and the step ID).
const compensationPrefix = "compensate:"

// inFlight picks, from a run's pending activities, the attempts of its
// running steps and of its compensations, read at now. Other activities
// (notifications) are left out.
func inFlight(pending []*workflowpb.PendingActivityInfo, running []string, now time.Time) []Attempt {
	var out []Attempt
	for _, p := range pending {
		// An action offered to another worker (the credential fallback)
		// has the worker after an @ in its activity ID; step IDs have none.
		id, _, _ := strings.Cut(p.GetActivityId(), "@")
		a := Attempt{Step: id, Attempt: max(p.GetAttempt(), 1), MaxAttempts: p.GetMaximumAttempts(), LastWorker: p.GetLastWorkerIdentity()}
		if step, ok := strings.CutPrefix(a.Step, compensationPrefix); ok {
			a.Step, a.Compensation = step, true
		} else if !slices.Contains(running, a.Step) {
			continue
		}
		a.State = strings.ToLower(strings.TrimPrefix(enumspb.PendingActivityState_name[int32(p.GetState())], "PENDING_ACTIVITY_STATE_"))
		if f := p.GetLastFailure(); f != nil {
			a.LastError = failureText(f)
		}
		if next := p.GetNextAttemptScheduleTime(); next != nil && p.GetState() == enumspb.PENDING_ACTIVITY_STATE_SCHEDULED {
			at := next.AsTime().UTC()
			in := max(at.Sub(now), 0).Round(time.Millisecond)
			ms := in.Milliseconds()
			a.NextAttemptAt, a.NextAttemptIn, a.NextAttemptInMs = &at, in.String(), &ms
		}
		out = append(out, a)
	}
	return out
}

// temporalSuffixRE is what an ApplicationError's Error() appends to its
// message; an action error wrapping one carries it inside its own text.
var temporalSuffixRE = regexp.MustCompile(` \(type: [^(),]*, retryable: (?:true|false)\)`)

// failureText words a failure as the workflow words a failed step's error:
// an application error's message, a timeout as "timed out (KIND)", and
// never the type and retryability Temporal appends.
func failureText(f *failurepb.Failure) string {
	text := workflows.ErrorText(temporal.GetDefaultFailureConverter().FailureToError(f))
	return temporalSuffixRE.ReplaceAllString(text, "")
}

// withAttempts sets, on each running step and compensation of rep, the
// attempt now in flight: the workflow's own count arrives only when the
// step ends.
func withAttempts(rep *workflows.Report, attempts []Attempt) {
	for _, a := range attempts {
		rows := rep.Steps
		if a.Compensation {
			rows = rep.Compensations
		}
		for i := range rows {
			if rows[i].ID == a.Step && rows[i].State == workflows.StepRunning && rows[i].Attempts < a.Attempt {
				rows[i].Attempts = a.Attempt
			}
		}
	}
}
