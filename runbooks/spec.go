package runbooks

import (
	"encoding/json"
	"fmt"
	"time"
)

// APIVersion is the only runbook format version this build understands.
const APIVersion = "drctl/v1"

// Runbook is the typed form of a runbook file. It is plain data, JSON
// serialisable, and it is the workflow's input: a run replays against the
// runbook it started with, whatever happens to the file afterwards.
type Runbook struct {
	APIVersion  string `json:"apiVersion"`
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	// Lock names what this runbook moves. At most one run per lock exists at
	// a time; the workflow ID is derived from it.
	Lock       string     `json:"lock"`
	Objectives Objectives `json:"objectives"`
	// Notify says where the run reports progress and asks for approvals.
	Notify  Notify   `json:"notify,omitzero"`
	Drill   Drill    `json:"drill,omitzero"`
	Params  []Param  `json:"params,omitempty"`
	Targets []Target `json:"targets,omitempty"`
	// Preflight checks run (in parallel) before any step; if one fails the
	// run stops with nothing changed.
	Preflight []Step `json:"preflight,omitempty"`
	Steps     []Step `json:"steps"`

	// File is the path the runbook was read from, for messages only.
	File string `json:"file,omitempty"`

	// pos says where each part was written, so Validate can point at the
	// exact line of a needs entry or a with key. Only Parse fills it; it is
	// not part of the workflow input.
	pos positions
	// broken names the parts that were not read, in a runbook Load decoded
	// despite shape problems; nil otherwise.
	broken brokenParts
}

// Objectives are the recovery objectives a run is measured against.
// A zero duration counts as stated only when the runbook wrote it (RTOSet,
// RPOSet).
type Objectives struct {
	RTO Duration `json:"rto,omitempty"`
	RPO Duration `json:"rpo,omitempty"`
	// RTOSet and RPOSet record that the runbook states the objective, so
	// that "rpo: 0s" (no data loss at all) is an objective, not "none".
	RTOSet bool `json:"rto_set,omitempty"`
	RPOSet bool `json:"rpo_set,omitempty"`
	// DrillEvery is how often the runbook must pass a drill (drill_every).
	DrillEvery Duration `json:"drill_every,omitempty"`
	// Readiness is the share of time its readiness evaluation must find it
	// ready (readiness: "99.5% over 30d").
	Readiness *ReadinessObjective `json:"readiness,omitempty"`
}

// HasRTO reports whether the runbook states an RTO objective.
func (o Objectives) HasRTO() bool { return o.RTOSet || o.RTO > 0 }

// HasRPO reports whether the runbook states an RPO objective.
func (o Objectives) HasRPO() bool { return o.RPOSet || o.RPO > 0 }

// Notify routes a run's messages. Empty fields fall back to the worker's
// configuration (slack.channel).
// Drill says how a drill of the runbook comes back. Failback names a
// runbook (a path relative to this file) that a drill runs after the
// forward path, instead of the compensations, to put everything back: the
// way back for steps no compensation can undo (a promotion).
type Drill struct {
	Failback string `json:"failback,omitempty"`
}

type Notify struct {
	// SlackChannel is a channel ID (C0123...) or #name.
	SlackChannel string `json:"slack_channel,omitempty"`
}

// Param is a runbook parameter, set with `drctl run --set name=value`.
// Values are strings; actions convert them to the type their input needs.
type Param struct {
	Name        string   `json:"name"`
	Description string   `json:"description,omitempty"`
	Default     *string  `json:"default,omitempty"`
	Required    bool     `json:"required,omitempty"`
	Allowed     []string `json:"allowed,omitempty"`
	Line        int      `json:"-"`
}

// Target is a resource the runbook acts on. It names where credentials come
// from, never the secret itself.
type Target struct {
	Name string `json:"name"`
	Kind string `json:"kind"`
	// Site is where the target lives (site: east). An action that needs
	// the site's local reach (ReachSite) on the target runs only on a
	// worker started in that site; empty: any worker.
	Site        string            `json:"site,omitempty"`
	Credentials *CredentialRef    `json:"credentials,omitempty"`
	Attributes  map[string]string `json:"attributes,omitempty"`
	Line        int               `json:"-"`
}

// CredentialRef says where a worker finds a secret: an environment variable
// or a file on the worker's host. Exactly one is set.
type CredentialRef struct {
	Env  string `json:"env,omitempty"`
	File string `json:"file,omitempty"`
}

// Failure policies for a step (on_failure) and approval timeouts (on_timeout).
const (
	OnFailureAbort    = "abort"    // stop the run, compensate completed steps (default)
	OnFailureContinue = "continue" // record the failure; dependents still run
)

// Step is one node of the runbook's DAG: either an action (Action set) or an
// approval gate (Approval set), never both.
type Step struct {
	ID          string         `json:"id"`
	Description string         `json:"description,omitempty"`
	Action      string         `json:"action,omitempty"`
	With        map[string]any `json:"with,omitempty"`
	Needs       []string       `json:"needs,omitempty"`
	Retry       *RetryPolicy   `json:"retry,omitempty"`
	// Timeout bounds one attempt (start-to-close). Zero: the action's default.
	Timeout Duration `json:"timeout,omitempty"`
	// Deadline bounds all attempts together (schedule-to-close). Zero: none.
	Deadline Duration `json:"deadline,omitempty"`
	// Heartbeat is the heartbeat timeout for long actions. Zero: the action's default.
	Heartbeat  Duration      `json:"heartbeat,omitempty"`
	Compensate *Compensation `json:"compensate,omitempty"`
	Approval   *Approval     `json:"approval,omitempty"`
	// OnFailure is OnFailureAbort (default) or OnFailureContinue.
	OnFailure string `json:"on_failure,omitempty"`
	// RunOn places the step's action (and its compensation) on the
	// workers of one site, or on any worker (RunOnAny), whatever the
	// action's reach says. Empty: where the action's reach puts it.
	RunOn string `json:"run_on,omitempty"`
	// Reach is the action's reach, copied from the catalog when the
	// runbook is loaded (Place), so a run routes by what its catalog said
	// when it started. Not written in runbooks.
	Reach Reach `json:"reach,omitempty"`
	// Local is the action's locality (ActionSpec.Local), copied likewise.
	Local bool `json:"local,omitempty"`
	// Runbook, in a step that runs another runbook (a fan-out step), is
	// that runbook's path relative to this file, and Child the runbook
	// itself, loaded with this one (Load), so a run carries the exact text
	// of its children too. With holds the child's parameters; one it does
	// not give takes this runbook's parameter of the same name, if any.
	Runbook string   `json:"runbook,omitempty"`
	Child   *Runbook `json:"child,omitempty"`
	// ForEach runs the child once per item: a list, or one expression
	// whose value is a list or comma-separated text. As names the child
	// parameter each item is given as. Each child holds its own lock: the
	// child runbook's lock, then "-" and the item.
	ForEach any    `json:"for_each,omitempty"`
	As      string `json:"as,omitempty"`
	// MaxParallel bounds the children running at once (default
	// DefaultMaxParallel).
	MaxParallel int `json:"max_parallel,omitempty"`
	Line        int `json:"-"`
}

// Fan-out bounds: children running at once, and items in one fan-out.
const (
	// Temporal's limits bound these: 2,000 pending children per workflow,
	// and a parent's history holds a few KB per child (its input and its
	// result), under 51,200 events and 50 MB.
	DefaultMaxParallel = 10
	MaxParallel        = 500
	MaxForEach         = 1000
)

// RunOnAny, as a step's run_on, lets any worker run the step's action.
const RunOnAny = "any"

// RetryPolicy maps onto Temporal's retry policy. Unset fields take drctl's
// defaults (see DefaultRetry).
type RetryPolicy struct {
	MaxAttempts        int      `json:"max_attempts,omitempty"`
	InitialInterval    Duration `json:"initial_interval,omitempty"`
	BackoffCoefficient float64  `json:"backoff,omitempty"`
	MaxInterval        Duration `json:"max_interval,omitempty"`
}

// Compensation undoes a completed step when the run is aborted or fails, and
// is the failback in drill mode.
type Compensation struct {
	Action  string         `json:"action"`
	With    map[string]any `json:"with,omitempty"`
	Timeout Duration       `json:"timeout,omitempty"`
	Retry   *RetryPolicy   `json:"retry,omitempty"`
	// Reach and Local are the compensation action's (see Step.Reach).
	Reach Reach `json:"reach,omitempty"`
	Local bool  `json:"local,omitempty"`
	Line  int   `json:"-"`
}

// Approval is a gate: the run waits until an allowed approver decides.
type Approval struct {
	Message   string   `json:"message,omitempty"`
	Approvers []string `json:"approvers"`
	// TwoPerson, when true (the default), refuses an approval by whoever
	// started the run.
	TwoPerson bool `json:"two_person"`
	// MinApprovals distinct allowed approvers must approve before the gate
	// opens (0 and 1 mean one). Above one, the starter never counts,
	// whatever two_person says. One rejection stops the run.
	MinApprovals int      `json:"min_approvals,omitempty"`
	Timeout      Duration `json:"timeout,omitempty"`
	// OnTimeout is OnFailureAbort (default) or OnFailureContinue.
	OnTimeout string `json:"on_timeout,omitempty"`
	// DrillApprovers are identities a drill schedule may name
	// (--auto-approve) to approve this gate automatically, in scheduled
	// drills only; the reviewed runbook, not whoever writes a schedule,
	// says which gates a machine may open.
	DrillApprovers []string `json:"drill_approvers,omitempty"`
	// AutoApprove lets a site watch's auto_approve_after open this gate
	// when nobody decided in that time, in a run the watch proposed; the
	// reviewed runbook, not whoever configures a watcher, says which
	// gates may open with nobody there.
	AutoApprove bool `json:"auto_approve,omitempty"`
}

// Outputs of an approval gate, for ${{ steps.GATE.outputs.KEY }}:
// GateOutputDecidedBy is who made the deciding decision, GateOutputDecision
// is approved or timed_out (a rejected gate stops the run). GateOutputs
// lists them for the validator.
const (
	GateOutputDecidedBy = "decided_by"
	GateOutputDecision  = "decision"
)

// GateOutputs are the outputs every approval gate has.
var GateOutputs = []string{GateOutputDecidedBy, GateOutputDecision}

// Duration is a time.Duration written as Go duration text ("90s", "5m").
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

func (d Duration) String() string { return time.Duration(d).String() }

// MarshalJSON writes the duration as text so histories stay readable.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// UnmarshalJSON accepts duration text or integer nanoseconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		// Machine-written (reports, histories): a run may measure more
		// than MaxDuration, so only the syntax is checked here.
		v, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("%q is not a duration", s)
		}
		*d = Duration(v)
		return nil
	}
	var n int64
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("duration must be text like \"30s\": %s", b)
	}
	*d = Duration(n)
	return nil
}

// Bounds on the numbers a runbook gives, checked by the parser and the
// validator (with file:line) and again by the workflow before a run starts
// (CheckBounds), so no value can overflow what Temporal takes or hold a
// run for longer than anyone would wait.
const (
	// MaxDuration bounds every duration a person writes: objectives,
	// timeouts, retry intervals, waits, approval timeouts, action inputs.
	MaxDuration = Duration(30 * 24 * time.Hour)
	// MaxAttempts bounds retry.max_attempts (0 means unlimited within
	// the step's deadline).
	MaxAttempts = 100
	// MaxBackoff bounds retry.backoff (the interval's growth factor).
	MaxBackoff = 10.0
	// MaxApprovals bounds approval.min_approvals.
	MaxApprovals = 10
)

// ParseDuration parses duration text a person wrote (Go syntax); it refuses
// negative values and values above MaxDuration.
func ParseDuration(s string) (Duration, error) {
	v, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration; write a number with a unit, like 30s, 5m or 1h30m", s)
	}
	if v < 0 {
		return 0, fmt.Errorf("%q is negative; durations must be zero or more", s)
	}
	if Duration(v) > MaxDuration {
		return 0, fmt.Errorf("%q is longer than the most a runbook may give (%s, 30 days)", s, MaxDuration)
	}
	return Duration(v), nil
}

// Step returns the step (or preflight check) with the given id.
func (rb *Runbook) Step(id string) (Step, bool) {
	for _, s := range rb.Steps {
		if s.ID == id {
			return s, true
		}
	}
	for _, s := range rb.Preflight {
		if s.ID == id {
			return s, true
		}
	}
	return Step{}, false
}

// Param returns the parameter with the given name.
func (rb *Runbook) Param(name string) (Param, bool) {
	for _, p := range rb.Params {
		if p.Name == name {
			return p, true
		}
	}
	return Param{}, false
}
