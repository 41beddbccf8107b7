package workflows

import (
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/drctl/drctl/activities"
	"github.com/drctl/drctl/runbooks"
)

// ReadinessState is a runbook's readiness record: the current verdict and
// since when, the failing checks, the changes of the verdict within the
// SLO window, and what was last announced. It is the record workflow's
// state and its memo (readable with no worker up).
type ReadinessState struct {
	Runbook     string           `json:"runbook"`
	Ready       bool             `json:"ready"`
	Since       time.Time        `json:"since"`
	First       time.Time        `json:"first"` // first evaluation
	Last        time.Time        `json:"last"`  // latest evaluation
	LastRun     string           `json:"last_run,omitempty"`
	LastRunID   string           `json:"last_run_id,omitempty"`
	Evaluations int              `json:"evaluations"`
	Checks      int              `json:"checks"`
	Failing     []ReadinessCheck `json:"failing,omitempty"`
	// InProgress names the run holding the lock at the latest evaluation
	// (nothing was judged then); empty otherwise.
	InProgress string `json:"in_progress,omitempty"`
	// Streak counts evaluations in a row with the current verdict.
	Streak int `json:"streak"`
	// Announced is the verdict last told people (ready, not_ready), empty
	// before the first announcement.
	Announced  string                 `json:"announced,omitempty"`
	Alerts     int                    `json:"alerts"`
	AlertErr   string                 `json:"alert_error,omitempty"`
	Thread     *activities.MessageRef `json:"thread,omitempty"`
	Changes    []ReadinessChange      `json:"changes,omitempty"`
	Objectives runbooks.Objectives    `json:"objectives"`
	Every      runbooks.Duration      `json:"every,omitempty"`
	Lag        map[string]float64     `json:"lag,omitempty"`
}

// ReadinessChange is a change of the verdict.
type ReadinessChange struct {
	At    time.Time `json:"at"`
	Ready bool      `json:"ready"`
}

// Verdict words.
const (
	VerdictReady    = "ready"
	VerdictNotReady = "not_ready"
)

func verdict(ready bool) string {
	if ready {
		return VerdictReady
	}
	return VerdictNotReady
}

// maxChanges bounds the changes kept (beyond the window they are dropped
// anyway); a flapping runbook must not grow the memo without end.
const maxChanges = 500

// Apply takes an evaluation into the record and says which verdict to
// announce, if any: a verdict is announced once it held for AlertAfter
// evaluations in a row (2 unless the schedule says otherwise) and differs
// from the last one announced. The first verdict ever is announced only
// when it is "not ready" (nobody needs telling that all is well).
func (st *ReadinessState) Apply(ev Evaluation) (announce string) {
	if st.Evaluations > 0 && (ev.RunID != "" && ev.RunID == st.LastRunID || !ev.At.After(st.Last)) {
		// The same evaluation again (its signal retried), or one older
		// than the last taken: counting it would defeat the damping.
		return ""
	}
	if ev.InProgress != "" {
		// A run holds the lock: what the checks read is moving on
		// purpose. The verdict, its streak and the SLO's changes stay.
		st.InProgress, st.Last, st.LastRun, st.LastRunID = ev.InProgress, ev.At, ev.WorkflowID, ev.RunID
		st.Runbook, st.Objectives, st.Every = ev.Runbook, ev.Objectives, ev.Every
		if st.Evaluations == 0 {
			st.First = ev.At
		}
		st.Evaluations++
		return ""
	}
	st.InProgress = ""
	if st.Evaluations == 0 || ev.Ready != st.Ready {
		st.Since, st.Streak = ev.At, 0
		st.Changes = append(st.Changes, ReadinessChange{At: ev.At, Ready: ev.Ready})
	}
	if st.Evaluations == 0 {
		st.First = ev.At
	}
	st.Runbook, st.Ready, st.Last, st.LastRun, st.LastRunID = ev.Runbook, ev.Ready, ev.At, ev.WorkflowID, ev.RunID
	st.Evaluations++
	st.Streak++
	st.Checks, st.Failing, st.Lag = len(ev.Checks), ev.Failing(), ev.Lag
	st.Objectives, st.Every = ev.Objectives, ev.Every
	// Keep the changes the SLO window needs (one before it: the state at
	// its start), at most maxChanges.
	window := 30 * 24 * time.Hour
	if o := st.Objectives.Readiness; o != nil {
		window = o.Window.D()
	}
	for len(st.Changes) > 1 && (st.Changes[1].At.Before(ev.At.Add(-window)) || len(st.Changes) > maxChanges) {
		st.Changes = st.Changes[1:]
	}
	need := ev.AlertAfter
	if need <= 0 {
		need = 2
	}
	v := verdict(ev.Ready)
	switch {
	case st.Streak < need || st.Announced == v:
		return ""
	case st.Announced == "" && ev.Ready:
		st.Announced = v
		return ""
	}
	st.Announced = v
	return v
}

// ReadinessRecord is the long-lived record of one runbook's readiness
// (workflow ID ReadinessRecordID). Evaluations arrive as signals; it
// announces changes (Slack through the notifier, and the webhook), keeps
// its state in its memo and the readiness metrics, and continues as new
// before its history grows large.
func ReadinessRecord(ctx workflow.Context, st ReadinessState) error {
	ch := workflow.GetSignalChannel(ctx, SignalEvaluation)
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 30 * time.Second,
		RetryPolicy:         &temporal.RetryPolicy{MaximumAttempts: 5, InitialInterval: time.Second},
	})
	for {
		var ev Evaluation
		ch.Receive(ctx, &ev)
		st.take(ctx, actx, ev)
		if workflow.GetInfo(ctx).GetCurrentHistoryLength() < 2000 {
			continue
		}
		// Take what already arrived, then start over with the state. Each
		// evaluation decodes into a fresh value (JSON into a used one
		// would keep old map entries).
		for {
			var more Evaluation
			if !ch.ReceiveAsync(&more) {
				break
			}
			st.take(ctx, actx, more)
		}
		return workflow.NewContinueAsNewError(ctx, ReadinessRecordWorkflow, st)
	}
}

// take applies one evaluation: state, announcement, metrics, memo.
func (st *ReadinessState) take(ctx, actx workflow.Context, ev Evaluation) {
	announce := st.Apply(ev)
	var failing []string
	for _, c := range st.Failing {
		failing = append(failing, c.Name)
	}
	MetricReadiness(ctx, ev.Runbook, ev.Ready, failing)
	for _, t := range workflow.DeterministicKeys(ev.Lag) {
		MetricReplicationLag(ctx, ev.Runbook, t, ev.Lag[t])
	}
	if announce != "" {
		st.announce(actx, ev, announce)
	}
	_ = workflow.UpsertMemo(ctx, map[string]any{MemoKey: *st})
}

// announce tells Slack (the runbook's thread of readiness messages) and
// the webhook. A failure is recorded, not retried forever: the next
// change is announced anyway.
func (st *ReadinessState) announce(actx workflow.Context, ev Evaluation, v string) {
	var reasons []string
	for _, c := range st.Failing {
		reasons = append(reasons, c.Name+": "+c.Reason)
	}
	n := activities.Notification{
		Kind: activities.KindReadinessChanged, Key: fmt.Sprintf("%s-%d", ReadinessRecordID(ev.Runbook), st.Evaluations),
		Channel: ev.Channel, Thread: st.Thread, WorkflowID: ReadinessRecordID(ev.Runbook), Runbook: ev.Runbook,
		State: v, Failing: reasons, StartedAt: st.Since,
	}
	var ref activities.MessageRef
	err := workflow.ExecuteActivity(actx, activities.NotifyActivity, n).Get(actx, &ref)
	if err == nil && st.Thread == nil && ref.TS != "" {
		st.Thread = &ref
	}
	hook := activities.WebhookEvent{
		Kind: activities.KindReadinessChanged, Runbook: ev.Runbook, State: v, Since: st.Since,
		Failing: st.webhookChecks(), Evaluation: ev.WorkflowID,
	}
	werr := workflow.ExecuteActivity(actx, activities.WebhookActivity, hook).Get(actx, nil)
	st.AlertErr = ""
	switch {
	case err != nil:
		st.AlertErr = "slack: " + ErrorText(err)
	case werr != nil:
		st.AlertErr = "webhook: " + ErrorText(werr)
	default:
		st.Alerts++
	}
}

// webhookChecks are the failing checks as the webhook sends them.
func (st *ReadinessState) webhookChecks() []activities.WebhookCheck {
	var out []activities.WebhookCheck
	for _, c := range st.Failing {
		out = append(out, activities.WebhookCheck{Name: c.Name, Reason: c.Reason})
	}
	return out
}
