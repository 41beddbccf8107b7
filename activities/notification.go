package activities

import (
	"time"

	"github.com/drctl/drctl/runbooks"
)

// Notifications are what a run tells people (run started, a gate waiting,
// a decision, a step failing, the run's end). They are plain data recorded
// in the workflow history, shared by the interpreter that makes them and
// the notifier activity that posts them (activities/slack); this package
// has no I/O dependency, so the workflow code links none.

// OutputRPO is the output an action that loses data on failover (promote)
// reports its RPO in: a duration, or RPOUnknown when it could not be
// measured. The run's report takes the largest and says when one is
// unknown.
const (
	OutputRPO  = "rpo"
	RPOUnknown = "unknown"
)

// NotifyActivity is the name the worker registers Notifier.Notify under.
const NotifyActivity = "drctl.notify"

// Kinds of notification.
const (
	KindRunStarted        = "run_started"        // posts the run's thread root
	KindApprovalRequested = "approval_requested" // posts the approval message with buttons
	KindApprovalDecided   = "approval_decided"   // edits the approval message, notes it in the thread
	KindStepFailed        = "step_failed"        // thread: a step failed (and whether it retries)
	KindRunFinished       = "run_finished"       // thread (broadcast): outcome, RTO and RPO
	// KindReadinessChanged: a runbook turned ready or not ready (State),
	// with the failing checks; the first is the root of the runbook's
	// readiness thread (Thread), later ones reply in it.
	KindReadinessChanged = "readiness_changed"
	// KindSiteLost and KindSiteBack: a site watch declared a site lost, or
	// saw it reachable again (State lost, back). Reason is the sentence to
	// post (what was proposed, or why nothing; that failback is manual),
	// Failing the evidence, one line per place; WorkflowID is the site
	// watch, Runbook and Lock the on_loss runbook's when there is one.
	KindSiteLost = "site_lost"
	KindSiteBack = "site_back"
)

// Decisions an approval_decided notification reports.
const (
	DecisionApproved = "approved"
	DecisionRejected = "rejected"
	DecisionTimedOut = "timed_out"
	// DecisionCancelled: the run stopped (failed, aborted, cancelled) while
	// the gate waited; nobody decided and nobody can any more.
	DecisionCancelled = "cancelled"
)

// MessageRef names a posted message: the channel ID and its ts.
type MessageRef struct {
	Channel string `json:"channel"`
	TS      string `json:"ts"`
}

// Notification is what the workflow asks to be told (in Slack). It is plain
// data recorded in the workflow history, so it never holds a secret.
type Notification struct {
	Kind string `json:"kind"`
	// Key is the idempotency key, stable across retries of one notification
	// and distinct between notifications (the workflow sets it).
	Key string `json:"key"`
	// Channel is the runbook's channel; empty means the configured one.
	// Once Thread is set, the thread's channel is used.
	Channel string `json:"channel,omitempty"`
	// Thread is the run's thread root (the run_started message).
	Thread *MessageRef `json:"thread,omitempty"`
	// Ref is the approval message an approval_decided edits.
	Ref *MessageRef `json:"ref,omitempty"`

	WorkflowID string `json:"workflow_id"`
	// RunID pins the approval buttons to this run: a click on a message
	// left by an earlier run of the same lock decides nothing.
	RunID     string    `json:"run_id,omitempty"`
	Runbook   string    `json:"runbook"`
	Lock      string    `json:"lock,omitempty"`
	Mode      string    `json:"mode,omitempty"`
	StartedBy string    `json:"started_by,omitempty"`
	StartedAt time.Time `json:"started_at,omitzero"`
	Reason    string    `json:"reason,omitempty"` // why the run was started

	Step        string   `json:"step,omitempty"`
	StepMessage string   `json:"step_message,omitempty"` // the gate's message
	Approvers   []string `json:"approvers,omitempty"`
	// Changes are the Observe results of what the gate guards.
	Changes []string `json:"changes,omitempty"`

	Objectives runbooks.Objectives `json:"objectives,omitzero"`
	// Elapsed is the run's age when the notification was made.
	Elapsed runbooks.Duration `json:"elapsed,omitempty"`

	Decision  string    `json:"decision,omitempty"` // approved, rejected, timed_out
	DecidedBy string    `json:"decided_by,omitempty"`
	DecidedAt time.Time `json:"decided_at,omitzero"`
	Via       string    `json:"via,omitempty"` // cli, slack
	// DecisionReason is the decider's reason, or why the gate timed out.
	DecisionReason string `json:"decision_reason,omitempty"`

	Attempt int32  `json:"attempt,omitempty"` // step_failed: the attempt that failed
	Retries bool   `json:"retries,omitempty"` // step_failed: another attempt follows
	Error   string `json:"error,omitempty"`   // step_failed, run_finished

	State string `json:"state,omitempty"` // run_finished: the run's final state; readiness_changed: ready, not_ready
	// Failing are a readiness_changed's failing checks ("name: reason").
	Failing []string           `json:"failing,omitempty"`
	RTO     *runbooks.Duration `json:"rto,omitempty"`
	RPO     *runbooks.Duration `json:"rpo,omitempty"`
}

// WebhookActivity is the name the worker registers the readiness webhook
// poster under; it does nothing when no webhook is configured.
const WebhookActivity = "drctl.webhook"

// WebhookEvent is what the readiness webhook receives (as JSON, signed).
type WebhookEvent struct {
	Kind       string         `json:"kind"` // readiness_changed
	Runbook    string         `json:"runbook"`
	State      string         `json:"state"` // ready, not_ready
	Since      time.Time      `json:"since"`
	Failing    []WebhookCheck `json:"failing,omitempty"`
	Evaluation string         `json:"evaluation"` // the evaluation's workflow ID
}

// WebhookCheck is a failing check in a WebhookEvent.
type WebhookCheck struct {
	Name   string `json:"name"`
	Reason string `json:"reason"`
}
