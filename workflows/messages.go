package workflows

import (
	"errors"
	"fmt"
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
	ModePlan     = "plan"     // observe only (PlanWorkflow); never a RunInput mode
	// ModeFailback labels a drill's failback child in metrics and search
	// attributes (its RunInput mode is failover).
	ModeFailback = "failback"
)

// Kinds of audit Event.
const (
	EventApproved           = "approved"
	EventRejected           = "rejected"
	EventRefused            = "refused" // a decision or control the rules refused
	EventQueued             = "queued"  // a decision signalled before its gate opened
	EventTimedOut           = "timed_out"
	EventPaused             = "paused"
	EventResumed            = "resumed"
	EventAbort              = "abort"
	EventStepFailed         = "step_failed"
	EventCompensationFailed = "compensation_failed"
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
	// Signers are the SSH keys CLI decisions must be signed with, read by
	// the starting operator from its allowed-signers file (config
	// approvals.allowed_signers). When any are given, a CLI decision
	// without a valid signature by a key of its decider is refused.
	Signers []Signer `json:"signers,omitempty"`
	// Failback, in a drill, is the runbook that brings everything back
	// after the forward path (instead of the compensations), run as a
	// child workflow with its own gates.
	Failback *Failback `json:"failback,omitempty"`
	// AutoApprove names who approves the gates of this drill (and of its
	// failback) automatically: set by a drill schedule that says so. Each
	// automatic decision is checked like a person's (approvers, two-person
	// rule, min_approvals) and recorded with Via ViaSchedule.
	AutoApprove string `json:"auto_approve,omitempty"`
	// FailbackOf is the workflow ID of the drill whose way back this run
	// is; such a run takes the drill's faults meant for its steps.
	FailbackOf string `json:"failback_of,omitempty"`
	// Detection, in a run a site watch proposed, is the loss that
	// prompted it: who saw what, and when the quorum declared it. The
	// run's RTO counts from Detection.At, not from its start.
	Detection *Detection `json:"detection,omitempty"`
	// AutoApproveAfter, in a run a site watch proposed whose site says
	// auto_approve_after, approves a gate nobody decided within that time
	// (recorded with Via ViaAutoApproveAfter). Zero: gates wait for people.
	AutoApproveAfter runbooks.Duration `json:"auto_approve_after,omitempty"`
}

// Detection is the evidence of a site loss that a site watch declared.
type Detection struct {
	Site string `json:"site"`
	// At is when the quorum of watchers declared the loss (workflow time
	// of the site watch).
	At time.Time `json:"at"`
	// Incident names the site watch's incident ("east#3").
	Incident string `json:"incident"`
	// Quorum is how many watchers in different places had to agree.
	Quorum int `json:"quorum"`
	// Evidence is the view of each watcher that counted towards the
	// quorum (and of those that did not, for the record).
	Evidence []SiteView `json:"evidence"`
}

// SiteView is one watcher's view of one site: whether every probe of the
// site failed (Down), since when, and each probe's last result.
type SiteView struct {
	Site string `json:"site"`
	// Watcher is the watcher process's identity; From is where it stands
	// (a site name, or a witness's place name). Watchers standing in one
	// place count once towards a quorum.
	Watcher string `json:"watcher"`
	From    string `json:"from"`
	Down    bool   `json:"down"`
	// Since is when the watcher last saw the site change (its clock);
	// At is when it made this view (its clock).
	Since  time.Time     `json:"since"`
	At     time.Time     `json:"at"`
	Probes []ProbeResult `json:"probes,omitempty"`
	// MoreProbes counts probes left out of Probes (CapView keeps at most
	// MaxViewProbes).
	MoreProbes int `json:"more_probes,omitempty"`
	// Digest is SiteWatchDigest of the input the watcher would start the
	// site's watch with: the watch compares it with its own to show a
	// watcher whose configuration differs.
	Digest string `json:"digest,omitempty"`
}

// ProbeResult is one probe's outcome in a watcher's view.
type ProbeResult struct {
	Probe  string `json:"probe"` // "tcp://10.0.0.1:5432", "postgres://...", "http://.../health"
	OK     bool   `json:"ok"`
	Error  string `json:"error,omitempty"`
	TookMs int64  `json:"took_ms"`
}

// Failback is a drill's way back: a runbook, its parameters, and the
// faults to inject into its steps (chaos in the way back).
type Failback struct {
	Runbook runbooks.Runbook   `json:"runbook"`
	Params  map[string]string  `json:"params,omitempty"`
	Chaos   []activities.Fault `json:"chaos,omitempty"`
	// After lists the drill's forward steps whose change only this runbook
	// brings back (runbooks.OnlyFailbackUndoes). When the forward path
	// fails after one of them changed something, the failback runs as the
	// way back instead of the compensations.
	After []string `json:"after,omitempty"`
}

// FailbackSuffix ends the workflow ID of a drill's failback run
// (drctl-app-site-failback): its gates are approved under that ID.
const FailbackSuffix = "-failback"

// Signer is one allowed signing key of an identity.
type Signer struct {
	Identity string `json:"identity"`
	Key      string `json:"key"` // one authorized_keys line: "ssh-ed25519 AAAA..."
}

// Front ends a decision comes through (Decision.Via).
const (
	ViaCLI   = "cli"
	ViaSlack = "slack"
	// ViaSchedule marks a decision the run made itself for its automatic
	// approver (RunInput.AutoApprove); no message can carry it.
	ViaSchedule = "schedule"
	// ViaAutoApproveAfter marks a decision the run made itself because
	// nobody decided within RunInput.AutoApproveAfter.
	ViaAutoApproveAfter = "auto_approve_after"
)

// SignatureNamespace is the SSHSIG namespace of decision signatures: a
// signature made for git or anything else is never a decision.
const SignatureNamespace = "drctl-decision"

// SignedText is what an approver signs: the run (workflow and run ID), the
// gate, the verdict, who, why and when. A signature therefore decides one
// gate of one run once; it cannot be moved to another run, step, verdict
// or reason.
func SignedText(workflowID, runID string, d Decision) []byte {
	verdict := "reject"
	if d.Approve {
		verdict = "approve"
	}
	return []byte(fmt.Sprintf("drctl decision v1\nworkflow: %s\nrun: %s\nstep: %s\ndecision: %s\nby: %s\nreason: %s\nsigned_at: %s\n",
		workflowID, runID, d.Step, verdict, d.By, d.Reason, d.SignedAt.UTC().Format(time.RFC3339Nano)))
}

// Decision approves or rejects an approval gate.
type Decision struct {
	Step    string `json:"step"`
	Approve bool   `json:"approve"`
	By      string `json:"by"`
	Reason  string `json:"reason,omitempty"`
	// Via names the front end: ViaCLI, ViaSlack.
	Via string `json:"via,omitempty"`
	// Signature is the decider's SSHSIG signature of SignedText (armored),
	// made at SignedAt; required from CLI deciders when the run has
	// Signers.
	Signature string    `json:"signature,omitempty"`
	SignedAt  time.Time `json:"signed_at,omitzero"`
	// Groups are approver groups the front end has verified By belongs to
	// (for example Slack user groups); they match "group:NAME" approvers.
	Groups []string `json:"groups,omitempty"`
	// auto is set only by the run itself for its automatic approver; it
	// is not serialized, so no message can claim it.
	auto bool
}

// Identities and reasons are recorded in the run's audit trail and printed
// by the CLI and Slack, so their shape is checked by CheckIdentity and
// CheckReason wherever they enter: the operator before it sends, and the
// workflow (from versionNotifyOrdered on) before it records.
const maxReason = 500

// CheckIdentity accepts who starts or decides: runbooks.CheckIdentity's
// rule (1 to 64 of letters, digits and . _ - @ +), so "*" and "group:NAME",
// approver patterns and not people, match nothing they only spell.
func CheckIdentity(who string) error {
	if who == "" {
		return fmt.Errorf("an identity is needed; set --as NAME or DRCTL_IDENTITY")
	}
	return runbooks.CheckIdentity(who)
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
	// Needed is how many more approvals the gate needs (min_approvals);
	// zero once the decision is made.
	Needed int `json:"needed,omitempty"`
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
	StateAborting     = "aborting" // an abort was accepted; running steps are being cancelled
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
	KindRunbook      = "runbook" // a fan-out step: child runs of another runbook
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
	RPOUnknown bool `json:"rpo_unknown,omitempty"`
	// RTOMs and RPOMs are RTO and RPO in whole milliseconds, for scripts.
	RTOMs         *int64       `json:"rto_ms,omitempty"`
	RPOMs         *int64       `json:"rpo_ms,omitempty"`
	Steps         []StepReport `json:"steps"`
	Compensations []StepReport `json:"compensations,omitempty"`
	Events        []Event      `json:"events,omitempty"`
	Paused        bool         `json:"paused,omitempty"`
	// Failback is the report of a drill's failback run.
	Failback *Report `json:"failback,omitempty"`
	// FailbackOf is the drill whose way back this run is (a failback
	// child); its metrics and search attributes say mode "failback", so
	// it is not counted as a failover.
	FailbackOf string `json:"failback_of,omitempty"`
	// Steady is a drill's before/after comparison of every target.
	Steady *SteadyCheck `json:"steady,omitempty"`
	// Chaos lists the faults a drill injected.
	Chaos []activities.Fault `json:"chaos,omitempty"`
	// Detection is the site loss that prompted the run (a site watch's
	// proposal); RTO counts from Detection.At.
	Detection *Detection `json:"detection,omitempty"`
}

// StepReport is one step's record.
type StepReport struct {
	ID       string `json:"id"`
	Kind     string `json:"kind"`
	Action   string `json:"action,omitempty"`
	State    string `json:"state"`
	Attempts int32  `json:"attempts,omitempty"`
	// Worker is the worker the step's action ran on (its last attempt).
	Worker string `json:"worker,omitempty"`
	// Children are a fan-out step's child runs.
	Children  []ChildRun     `json:"children,omitempty"`
	Changed   bool           `json:"changed,omitempty"`
	Summary   string         `json:"summary,omitempty"`
	Error     string         `json:"error,omitempty"`
	StartedAt *time.Time     `json:"started_at,omitempty"`
	EndedAt   *time.Time     `json:"ended_at,omitempty"`
	TookMs    *int64         `json:"took_ms,omitempty"` // EndedAt - StartedAt
	Outputs   map[string]any `json:"outputs,omitempty"`
	Approval  *ApprovalState `json:"approval,omitempty"`
}

// ApprovalState is an approval gate's record.
type ApprovalState struct {
	Message   string   `json:"message,omitempty"`
	Approvers []string `json:"approvers"`
	TwoPerson bool     `json:"two_person"`
	Decision  string   `json:"decision,omitempty"` // approved, rejected, timed_out
	// MinApprovals distinct approvers open the gate (min_approvals; 1
	// unless the runbook says more). ApprovedBy lists them so far.
	MinApprovals int      `json:"min_approvals,omitempty"`
	ApprovedBy   []string `json:"approved_by,omitempty"`
	// Signed: the deciding decision carried a verified SSH signature.
	Signed bool       `json:"signed,omitempty"`
	By     string     `json:"by,omitempty"`
	Via    string     `json:"via,omitempty"`
	Reason string     `json:"reason,omitempty"`
	At     *time.Time `json:"at,omitempty"`
}

// Event is an audit record: who did what to the run, and why.
type Event struct {
	At     time.Time `json:"at"`
	Kind   string    `json:"kind"` // one of the Event* constants
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
	// Changed lists the action steps that succeeded having changed
	// something: what compensations would undo (an abort --terminate
	// names them, since it runs none).
	Changed []string `json:"changed,omitempty"`
	Done    int      `json:"done"`
	Total   int      `json:"total"`
	// FanOut is the progress of each running fan-out step.
	FanOut []FanOutProgress `json:"fan_out,omitempty"`
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
