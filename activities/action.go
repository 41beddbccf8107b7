package activities

import (
	"context"
	"fmt"
	"strings"

	"github.com/drctl/drctl/runbooks"
)

// Run identifies the run a request belongs to.
type Run struct {
	WorkflowID string `json:"workflow_id"`
	RunID      string `json:"run_id"`
	// FirstRunID is the run ID the workflow started with; it survives a
	// reset, so idempotency keys do too.
	FirstRunID string `json:"first_run_id,omitempty"`
	Lock       string `json:"lock"`
	Mode       string `json:"mode"`
	StartedBy  string `json:"started_by"`
	// Runbook names the runbook the run interprets (for traces); empty in
	// requests of runs recorded before it was sent.
	Runbook string `json:"runbook,omitempty"`
}

// Request is the input of every action activity. With holds the step's
// inputs after expression resolution; it never holds secrets (runbooks name
// credential sources, and providers read the secret on the worker).
type Request struct {
	Run     Run               `json:"run"`
	Step    string            `json:"step"`
	Action  string            `json:"action"`
	With    map[string]any    `json:"with,omitempty"`
	Targets []runbooks.Target `json:"targets,omitempty"`
	// Compensating is true when the action runs as a step's compensation.
	Compensating bool `json:"compensating,omitempty"`
	// Fault is chaos injected into this step by a drill; nil otherwise.
	Fault *Fault `json:"fault,omitempty"`
}

// Fault is chaos a drill injects into one step, at the activity boundary,
// before the action runs: every attempt is delayed by Latency, and the
// first Fail attempts fail with a retryable error (all of them with a
// permanent one when Permanent is set). It exercises the runbook's
// retries, timeouts, circuit breakers and compensations without touching
// the real systems more than the run itself does.
type Fault struct {
	Step      string            `json:"step"`
	Fail      int               `json:"fail,omitempty"`
	Permanent bool              `json:"permanent,omitempty"`
	Latency   runbooks.Duration `json:"latency,omitempty"`
}

func (f Fault) String() string {
	var parts []string
	if f.Latency > 0 {
		parts = append(parts, "latency "+f.Latency.String())
	}
	switch {
	case f.Permanent:
		parts = append(parts, "a permanent failure")
	case f.Fail > 0:
		parts = append(parts, fmt.Sprintf("%d failing attempt(s)", f.Fail))
	}
	return f.Step + ": " + strings.Join(parts, ", ")
}

// IdempotencyKey is stable across retries of one step in one run (and
// across a reset of the run), and differs between runs and between a step
// and its compensation.
func (r Request) IdempotencyKey() string {
	run := r.Run.FirstRunID
	if run == "" {
		run = r.Run.RunID
	}
	k := r.Run.WorkflowID + "/" + run + "/" + r.Step
	if r.Compensating {
		k += "/compensate"
	}
	return k
}

// Target returns the runbook target with the given name.
func (r Request) Target(name string) (runbooks.Target, bool) {
	for _, t := range r.Targets {
		if t.Name == name {
			return t, true
		}
	}
	return runbooks.Target{}, false
}

// Result is what Apply reports.
type Result struct {
	// Changed is false when the desired state already held and Apply did
	// nothing ("already done").
	Changed bool           `json:"changed"`
	Summary string         `json:"summary,omitempty"`
	Outputs map[string]any `json:"outputs,omitempty"`
	// Attempt is the Temporal attempt number that produced this result, and
	// Worker the identity of the worker it ran on; set by the registry, not
	// by actions.
	Attempt int32  `json:"attempt,omitempty"`
	Worker  string `json:"worker,omitempty"`
}

// Observation is what Observe reports: the current state and what Apply
// would change. No Changes means Apply would do nothing.
type Observation struct {
	Current string   `json:"current"`
	Changes []string `json:"changes,omitempty"`
	// State is the steady state of what the action touches, as facts a
	// drill compares before and after (key: "<target> <thing>", value: its
	// state), e.g. "db-east role": "primary", "db-east fenced": "false",
	// "dns app.example. A": "10.0.0.1 ttl 30s", "lb app/east1": "ready".
	// Only what must be back after a drill belongs here: roles, records,
	// TTLs, server states, health; never counters, LSNs, timelines or
	// lag, which move on their own.
	State map[string]string `json:"state,omitempty"`
	// Measures are numbers that move on their own and matter to whether a
	// failover would work now, read by the readiness evaluation (and never
	// compared by a drill): "<target> replay_lag_seconds" of a standby,
	// "<target> <fqdn> <TYPE> ttl_seconds" of a DNS record.
	Measures map[string]float64 `json:"measures,omitempty"`
}

// Measures keys' suffixes.
const (
	MeasureReplayLag = "replay_lag_seconds"
	MeasureTTL       = "ttl_seconds"
)

// Action is one runbook action. Implementations must make Apply idempotent
// (observe, decide, act, verify) and Observe free of side effects.
type Action interface {
	Spec() runbooks.ActionSpec
	Observe(ctx context.Context, req Request) (Observation, error)
	Apply(ctx context.Context, req Request) (Result, error)
}
