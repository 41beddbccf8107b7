package workflows

import (
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/drctl/drctl/activities"
	"github.com/drctl/drctl/runbooks"
)

// Names of the workflows and of the messages they accept. The CLI, the
// Slack integration and tests use these constants, never literals.
const (
	RunbookWorkflow = "drctl.Runbook"
	PlanWorkflow    = "drctl.Plan"

	QueryProgress = "progress" // returns Report
	UpdateDecide  = "decide"   // Decision -> DecisionResult
	SignalDecide  = "decide"   // Decision, validated when a worker picks it up
	UpdateControl = "control"  // Control -> ControlResult
	SignalControl = "control"  // Control

	// MemoKey holds a Status in the workflow memo, readable without a worker.
	MemoKey = "drctl"
)

// Modes of a run.
const (
	ModeFailover = "failover" // act, and stay failed over
	ModeDrill    = "drill"    // act, then run every compensation as the failback
)

// WorkflowIDPrefix prefixes the lock to form a run's workflow ID.
const WorkflowIDPrefix = "drctl-"

// WorkflowID is the workflow ID of the run holding lock. One ID per lock is
// what makes "one run per lock" hold: the server refuses a second start.
func WorkflowID(lock string) string { return WorkflowIDPrefix + lock }

// RunInput starts a run.
type RunInput struct {
	Runbook runbooks.Runbook `json:"runbook"`
	// Params set by the operator; defaults are filled in by the workflow.
	Params    map[string]string `json:"params,omitempty"`
	Mode      string            `json:"mode"`
	StartedBy string            `json:"started_by"`
	Reason    string            `json:"reason,omitempty"`
	// Chaos injects faults into steps; drills only.
	Chaos []activities.Fault `json:"chaos,omitempty"`
}

// Decision approves or rejects an approval gate.
type Decision struct {
	Step    string `json:"step"`
	Approve bool   `json:"approve"`
	By      string `json:"by"`
	Reason  string `json:"reason,omitempty"`
	// Via names the front end: "cli", "slack".
	Via string `json:"via,omitempty"`
	// Groups are approver groups the front end has verified By belongs to
	// (for example Slack user groups); they match "group:NAME" approvers.
	Groups []string `json:"groups,omitempty"`
}

// Identities and reasons are recorded in the run's audit trail and printed
// by the CLI and Slack, so their shape is checked by CheckIdentity and
// CheckReason wherever they enter: the operator before it sends, and the
// workflow (from versionNotifyOrdered on) before it records.
const (
	maxIdentity = 64
	maxReason   = 500
)

// CheckIdentity accepts who starts or decides: 1 to 64 letters, digits and
// . _ - @ + (alice, alice@example.com, oncall-dba). Anything else, and in
// particular "*" and "group:NAME", which are approver patterns and not
// people, is refused, so no identity can match a pattern it only spells.
func CheckIdentity(who string) error {
	if who == "" {
		return fmt.Errorf("an identity is needed; set --as NAME or DRCTL_IDENTITY")
	}
	if len(who) > maxIdentity {
		return fmt.Errorf("identity of %d bytes is longer than %d", len(who), maxIdentity)
	}
	for _, c := range who {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("._-@+", c)
		if !ok {
			return fmt.Errorf("identity %q has %q; use letters, digits and . _ - @ + only", who, c)
		}
	}
	return nil
}

// CheckReason accepts one line of at most 500 characters of printable text:
// no control characters (a terminal escape in a reason could redraw the
// audit trail it is printed in) and no bidirectional overrides.
func CheckReason(reason string) error {
	if n := utf8.RuneCountInString(reason); n > maxReason {
		return fmt.Errorf("reason of %d characters is longer than %d", n, maxReason)
	}
	if !utf8.ValidString(reason) {
		return errors.New("reason is not valid UTF-8")
	}
	for _, c := range reason {
		if unicode.IsControl(c) || unicode.Is(unicode.Bidi_Control, c) {
			return fmt.Errorf("reason has the control character %U; write one line of plain text", c)
		}
	}
	return nil
}

// DecisionResult is the answer to an accepted Decision.
type DecisionResult struct {
	Step     string    `json:"step"`
	Approved bool      `json:"approved"`
	By       string    `json:"by"`
	At       time.Time `json:"at"`
}

// Control operations.
const (
	OpPause  = "pause"
	OpResume = "resume"
	OpAbort  = "abort"
)

// Control pauses, resumes or aborts a run.
type Control struct {
	Op     string `json:"op"`
	By     string `json:"by"`
	Reason string `json:"reason,omitempty"`
}

// ControlResult is the answer to an accepted Control.
type ControlResult struct {
	State string `json:"state"`
}

// Run states.
const (
	StateRunning      = "running"
	StatePaused       = "paused"
	StateCompensating = "compensating"
	StateSucceeded    = "succeeded"
	StateFailed       = "failed"
	StateAborted      = "aborted"
)

// Step states.
const (
	StepPending   = "pending"
	StepRunning   = "running"
	StepWaiting   = "waiting" // approval gate awaiting a decision
	StepSucceeded = "succeeded"
	StepFailed    = "failed"
	StepSkipped   = "skipped" // never started: the run stopped first
	StepCancelled = "cancelled"
)

// Step kinds in a report.
const (
	KindPreflight    = "preflight"
	KindStep         = "step"
	KindApproval     = "approval"
	KindCompensation = "compensation"
)

// Report is the run report: returned as the workflow result, attached to the
// failure when a run fails, and answered by the progress query.
type Report struct {
	WorkflowID string              `json:"workflow_id"`
	RunID      string              `json:"run_id"`
	Runbook    string              `json:"runbook"`
	Lock       string              `json:"lock"`
	Mode       string              `json:"mode"`
	StartedBy  string              `json:"started_by"`
	Reason     string              `json:"reason,omitempty"`
	State      string              `json:"state"`
	Error      string              `json:"error,omitempty"`
	StartedAt  time.Time           `json:"started_at"`
	EndedAt    *time.Time          `json:"ended_at,omitempty"`
	Objectives runbooks.Objectives `json:"objectives"`
	// RTO is the time from start until every step was verified done; set
	// only when the run succeeded.
	RTO *runbooks.Duration `json:"rto,omitempty"`
	// RPO is the largest "rpo" output any step reported (for example the
	// replication lag at the moment of promotion).
	RPO *runbooks.Duration `json:"rpo,omitempty"`
	// RPOUnknown is set when a step could not measure its data loss (a
	// dead primary with nothing replayed to compare against).
	RPOUnknown    bool         `json:"rpo_unknown,omitempty"`
	Steps         []StepReport `json:"steps"`
	Compensations []StepReport `json:"compensations,omitempty"`
	Events        []Event      `json:"events,omitempty"`
	Paused        bool         `json:"paused,omitempty"`
	// Chaos lists the faults a drill injected.
	Chaos []activities.Fault `json:"chaos,omitempty"`
}

// StepReport is one step's record.
type StepReport struct {
	ID        string         `json:"id"`
	Kind      string         `json:"kind"`
	Action    string         `json:"action,omitempty"`
	State     string         `json:"state"`
	Attempts  int32          `json:"attempts,omitempty"`
	Changed   bool           `json:"changed,omitempty"`
	Summary   string         `json:"summary,omitempty"`
	Error     string         `json:"error,omitempty"`
	StartedAt *time.Time     `json:"started_at,omitempty"`
	EndedAt   *time.Time     `json:"ended_at,omitempty"`
	Outputs   map[string]any `json:"outputs,omitempty"`
	Approval  *ApprovalState `json:"approval,omitempty"`
}

// ApprovalState is an approval gate's record.
type ApprovalState struct {
	Message   string     `json:"message,omitempty"`
	Approvers []string   `json:"approvers"`
	TwoPerson bool       `json:"two_person"`
	Decision  string     `json:"decision,omitempty"` // approved, rejected, timed_out
	By        string     `json:"by,omitempty"`
	Via       string     `json:"via,omitempty"`
	Reason    string     `json:"reason,omitempty"`
	At        *time.Time `json:"at,omitempty"`
}

// Event is an audit record: who did what to the run, and why.
type Event struct {
	At     time.Time `json:"at"`
	Kind   string    `json:"kind"` // approved, rejected, refused, paused, resumed, abort, timed_out, step_failed
	Step   string    `json:"step,omitempty"`
	By     string    `json:"by,omitempty"`
	Reason string    `json:"reason,omitempty"`
}

// Status is the small summary kept in the workflow memo so `drctl status`
// and `drctl list` work with no worker running.
type Status struct {
	Runbook   string    `json:"runbook"`
	Lock      string    `json:"lock"`
	Mode      string    `json:"mode"`
	StartedBy string    `json:"started_by"`
	StartedAt time.Time `json:"started_at"`
	Reason    string    `json:"reason,omitempty"`
	State     string    `json:"state"`
	Running   []string  `json:"running,omitempty"`
	Waiting   []string  `json:"waiting,omitempty"` // approval gates awaiting a decision
	Done      int       `json:"done"`
	Total     int       `json:"total"`
}

// Step returns the report of the step with the given id.
func (r *Report) Step(id string) (StepReport, bool) {
	for _, s := range r.Steps {
		if s.ID == id {
			return s, true
		}
	}
	return StepReport{}, false
}
