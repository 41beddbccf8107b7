package workflows

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/drctl/drctl/activities"
	"github.com/drctl/drctl/runbooks"
)

// Readiness: would the runbook work now? A Temporal Schedule runs
// ReadinessWorkflow every few minutes. It does what `drctl plan` does and
// never acts: it runs the preflight checks (read-only by the validator's
// rule) and every acting step's Observe on a worker, then judges the
// result against named checks (Judge). It hands the evaluation to the
// runbook's readiness record (ReadinessRecord, one long-lived workflow per
// runbook), which keeps the state, since when, the history of changes for
// the SLO, and says once in Slack and a webhook when the state changes.
const (
	ReadinessWorkflow       = "drctl.Readiness"
	ReadinessRecordWorkflow = "drctl.ReadinessRecord"
	// RecordReadinessActivity hands an evaluation to the runbook's record
	// (signal-with-start, by a worker's Temporal client).
	RecordReadinessActivity = "drctl.RecordReadiness"
	// SignalEvaluation carries an Evaluation to the record.
	SignalEvaluation = "evaluation"
	// LockRunActivity says whether a run holds a lock now (a worker reads
	// the run's memo): an evaluation during a run is not a verdict.
	LockRunActivity = "drctl.LockRun"
	// ReadinessPrefix prefixes a readiness schedule's ID.
	ReadinessPrefix = "readiness-"
	// ModeReadiness is an evaluation's mode in its activities' requests.
	ModeReadiness = "readiness"
)

// ReadinessScheduleID is the ID of the readiness schedule of a runbook.
func ReadinessScheduleID(runbook string) string { return ReadinessPrefix + runbook }

// ReadinessRecordID is the workflow ID of the runbook's readiness record.
func ReadinessRecordID(runbook string) string {
	return WorkflowIDPrefix + ReadinessPrefix + runbook
}

// ReadinessInput is what a readiness schedule evaluates.
type ReadinessInput struct {
	Runbook   runbooks.Runbook  `json:"runbook"`
	Params    map[string]string `json:"params,omitempty"`
	StartedBy string            `json:"started_by"`
	// Acting lists the steps whose action changes something (from the
	// action catalog, runbooks.ActingSteps): their Observe must find
	// something to change.
	Acting []string `json:"acting"`
	// AlertAfter is how many evaluations in a row a new state must hold
	// before it is announced (damps flapping); 0 means 2.
	AlertAfter int `json:"alert_after,omitempty"`
	// Every is the schedule's interval, shown with the state.
	Every runbooks.Duration `json:"every,omitempty"`
}

// ReadinessCheck is one named check and its verdict.
type ReadinessCheck struct {
	// Name: preflight:<id>, observe:<id>, standby-streaming:<target>,
	// dns-ttl:<record>, credentials:<step>.
	Name   string `json:"name"`
	OK     bool   `json:"ok"`
	Reason string `json:"reason"`
}

// Evaluation is one readiness evaluation of a runbook.
type Evaluation struct {
	Runbook    string `json:"runbook"`
	WorkflowID string `json:"workflow_id"`
	// RunID tells evaluations apart: a schedule's firings within one
	// second share their workflow ID.
	RunID      string              `json:"run_id,omitempty"`
	At         time.Time           `json:"at"`
	Ready      bool                `json:"ready"`
	Checks     []ReadinessCheck    `json:"checks"`
	Objectives runbooks.Objectives `json:"objectives"`
	Channel    string              `json:"channel,omitempty"`
	AlertAfter int                 `json:"alert_after,omitempty"`
	Every      runbooks.Duration   `json:"every,omitempty"`
	// Lag is the replication lag each standby showed, in seconds.
	Lag map[string]float64 `json:"lag,omitempty"`
	// InProgress names the run that held the runbook's lock: nothing was
	// judged (a failover or drill in progress moves what the checks
	// read), and the record keeps its verdict.
	InProgress string `json:"in_progress,omitempty"`
}

// LockRun is whether a run holds a lock, and which.
type LockRun struct {
	Held   bool   `json:"held"`
	Holder string `json:"holder,omitempty"`
}

// Failing lists the checks that failed.
func (e Evaluation) Failing() []ReadinessCheck {
	var out []ReadinessCheck
	for _, c := range e.Checks {
		if !c.OK {
			out = append(out, c)
		}
	}
	return out
}

// Observed is what an evaluation saw of one step: the preflight's result
// or an acting step's Observe, or the error.
type Observed struct {
	Step        runbooks.Step
	Preflight   bool
	Acting      bool
	With        map[string]any
	Observation *activities.Observation
	Result      *activities.Result
	Err         string
	Unresolved  bool // inputs depend on an earlier step's outputs
}

// Readiness evaluates a runbook and records the evaluation.
func Readiness(ctx workflow.Context, in ReadinessInput) (*Evaluation, error) {
	rb := in.Runbook
	if err := runbooks.CheckBounds(&rb); err != nil {
		return nil, temporal.NewNonRetryableApplicationError(err.Error(), ErrRunFailed, nil)
	}
	sc, err := observeScope(ctx, &rb, in.Params, ModeReadiness, in.StartedBy)
	if err != nil {
		return nil, err
	}
	info := workflow.GetInfo(ctx)
	opts := workflow.ActivityOptions{
		StartToCloseTimeout: 30 * time.Second,
		RetryPolicy:         &temporal.RetryPolicy{MaximumAttempts: 2, InitialInterval: time.Second},
	}
	actx := workflow.WithActivityOptions(ctx, opts)
	rctx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 30 * time.Second,
		RetryPolicy:         &temporal.RetryPolicy{MaximumAttempts: 5},
	})
	var lock LockRun
	if err := workflow.ExecuteActivity(actx, LockRunActivity, rb.Lock).Get(ctx, &lock); err == nil && lock.Held {
		ev := Evaluation{Runbook: rb.Name, WorkflowID: info.WorkflowExecution.ID, RunID: info.WorkflowExecution.RunID, At: workflow.Now(ctx),
			Objectives: rb.Objectives, Channel: rb.Notify.SlackChannel, AlertAfter: in.AlertAfter, Every: in.Every, InProgress: lock.Holder}
		return &ev, workflow.ExecuteActivity(rctx, RecordReadinessActivity, ev).Get(ctx, nil)
	}
	var seen []*Observed
	pending := 0
	observe := func(s runbooks.Step, preflight bool) {
		o := &Observed{Step: s, Preflight: preflight, Acting: slices.Contains(in.Acting, s.ID)}
		seen = append(seen, o)
		with, err := runbooks.ResolveMap(s.With, sc)
		if err != nil && s.Action == actionPromote {
			// A promotion's approved_by comes from its approval gate, which
			// only a run decides; its Observe reads the target and the old
			// primary, so it is observed with the inputs known now.
			with, err = resolveKnown(s.With, sc)
		}
		if err != nil {
			o.Unresolved = true
			return
		}
		o.With = with
		site := runbooks.Where(s.RunOn, s.Reach, with, rb.Targets)
		req := activities.Request{
			Run:  activities.Run{WorkflowID: info.WorkflowExecution.ID, RunID: info.WorkflowExecution.RunID, Lock: rb.Lock, Mode: ModeReadiness, StartedBy: in.StartedBy},
			Step: s.ID, Action: s.Action, With: with, Targets: rb.Targets,
		}
		pending++
		if preflight {
			// A preflight check only reads (the validator's rule): run it.
			workflow.Go(ctx, func(ctx workflow.Context) {
				defer func() { pending-- }()
				var res activities.Result
				if err := observeIn(ctx, opts, site, s.Action, req, &res); err != nil {
					o.Err = placedErrorText(err, site)
					return
				}
				o.Result = &res
			})
			return
		}
		workflow.Go(ctx, func(ctx workflow.Context) {
			defer func() { pending-- }()
			var obs activities.Observation
			if err := observeIn(ctx, opts, site, s.Action+activities.ObserveSuffix, req, &obs); err != nil {
				o.Err = placedErrorText(err, site)
				return
			}
			o.Observation = &obs
		})
	}
	for _, s := range rb.Preflight {
		observe(s, true)
	}
	for _, s := range rb.Steps {
		if s.Action != "" && s.Action != activities.ActionWait && slices.Contains(in.Acting, s.ID) {
			observe(s, false)
		}
	}
	if err := workflow.Await(ctx, func() bool { return pending == 0 }); err != nil {
		return nil, err
	}
	ev := Judge(rb.Objectives, seen)
	ev.Runbook, ev.WorkflowID, ev.RunID, ev.At = rb.Name, info.WorkflowExecution.ID, info.WorkflowExecution.RunID, workflow.Now(ctx)
	ev.Objectives, ev.Channel, ev.AlertAfter, ev.Every = rb.Objectives, rb.Notify.SlackChannel, in.AlertAfter, in.Every
	if err := workflow.ExecuteActivity(rctx, RecordReadinessActivity, ev).Get(ctx, nil); err != nil {
		return &ev, err
	}
	return &ev, nil
}

// resolveKnown resolves the inputs that can be resolved before the run and
// leaves out those that depend on earlier steps' outputs; the target must
// be among the resolved ones.
func resolveKnown(with map[string]any, sc runbooks.Scope) (map[string]any, error) {
	out := map[string]any{}
	for _, k := range workflow.DeterministicKeys(with) {
		if v, err := runbooks.Resolve(with[k], sc); err == nil {
			out[k] = v
		}
	}
	if _, ok := out["target"]; !ok {
		return nil, fmt.Errorf("the target depends on earlier steps")
	}
	return out, nil
}

// Action names the readiness rules know by their meaning.
const (
	actionPromote = "postgres.promote"
	actionDNSSet  = "dns.set"
)

// Judge turns what an evaluation saw into named checks. It is pure: the
// same observations always give the same verdict.
//
//   - preflight:<id> — the preflight check passes.
//   - credentials:<step> — a worker holds the credentials the step needs.
//   - observe:<id> — an acting step's Observe succeeds and finds something
//     to change ("nothing to change" means the system is already on the
//     other side, or the plan no longer matches it).
//   - standby-streaming:<target> — the standby a promotion would promote
//     is a standby, streams from a primary, and its replay lag is within
//     the RPO objective.
//   - dns-ttl:<record> — a record a step moves has a TTL no longer than the
//     RTO objective (clients keep the old address for up to the TTL).
func Judge(obj runbooks.Objectives, seen []*Observed) Evaluation {
	var ev Evaluation
	add := func(name string, ok bool, reason string) {
		ev.Checks = append(ev.Checks, ReadinessCheck{Name: name, OK: ok, Reason: reason})
	}
	for _, o := range seen {
		s := o.Step
		switch {
		case o.Unresolved:
			continue // observed at run time: its inputs come from earlier steps
		case o.Err != "" && strings.Contains(o.Err, "credentials"):
			add("credentials:"+s.ID, false, o.Err)
			if s.Action == actionPromote {
				add("standby-streaming:"+target(o), false, "standby not streaming: could not observe "+target(o)+": "+o.Err)
			}
			continue
		case o.Preflight && o.Err != "":
			add("preflight:"+s.ID, false, o.Err)
			continue
		case o.Preflight:
			add("preflight:"+s.ID, true, o.Result.Summary)
			continue
		}
		if s.Action == actionPromote {
			ok, why := standbyStreaming(obj, o, &ev)
			add("standby-streaming:"+target(o), ok, why)
		}
		switch {
		case o.Err != "":
			add("observe:"+s.ID, false, "could not observe: "+o.Err)
			continue
		case len(o.Observation.Changes) == 0:
			add("observe:"+s.ID, false, "nothing to change: "+o.Observation.Current)
		default:
			add("observe:"+s.ID, true, "would "+strings.Join(o.Observation.Changes, "; "))
		}
		if s.Action == actionDNSSet && obj.HasRTO() {
			for _, k := range workflow.DeterministicKeys(o.Observation.Measures) {
				rec, ok := strings.CutSuffix(k, " "+activities.MeasureTTL)
				if !ok {
					continue
				}
				ttl := time.Duration(o.Observation.Measures[k] * float64(time.Second))
				ok = ttl <= obj.RTO.D()
				why := fmt.Sprintf("%s ttl %s is within the RTO objective %s", rec, ttl, obj.RTO)
				if !ok {
					why = fmt.Sprintf("%s ttl %s is longer than the RTO objective %s: clients may keep the old address for longer than the failover may take", rec, ttl, obj.RTO)
				}
				add("dns-ttl:"+rec, ok, why)
			}
		}
	}
	ev.Ready = true
	for _, c := range ev.Checks {
		ev.Ready = ev.Ready && c.OK
	}
	return ev
}

// target is the step's target input.
func target(o *Observed) string {
	if t, ok := o.With["target"].(string); ok {
		return t
	}
	if t, ok := o.Step.With["target"].(string); ok {
		return t
	}
	return o.Step.ID
}

// standbyStreaming judges the standby a promotion would promote.
func standbyStreaming(obj runbooks.Objectives, o *Observed, ev *Evaluation) (bool, string) {
	t := target(o)
	if o.Err != "" {
		return false, "standby not streaming: could not observe " + t + ": " + o.Err
	}
	st := o.Observation.State
	if role := st[t+" role"]; role != "standby" {
		return false, fmt.Sprintf("standby not streaming: %s is %s, not a standby", t, orWord(role, "of unknown role"))
	}
	up := st[t+" upstream"]
	if up == "" || up == "none" || up == "unknown" {
		return false, fmt.Sprintf("standby not streaming: %s has no upstream (its WAL receiver is not connected)", t)
	}
	lag, measured := o.Observation.Measures[t+" "+activities.MeasureReplayLag]
	if measured {
		if ev.Lag == nil {
			ev.Lag = map[string]float64{}
		}
		ev.Lag[t] = lag
	}
	d := time.Duration(lag * float64(time.Second))
	if measured && obj.HasRPO() && d > obj.RPO.D() {
		return false, fmt.Sprintf("%s streams from %s but its replay lag %s exceeds the RPO objective %s", t, up, d.Round(time.Millisecond), obj.RPO)
	}
	return true, fmt.Sprintf("%s streams from %s, replay lag %s", t, up, d.Round(time.Millisecond))
}

func orWord(s, d string) string {
	if s == "" {
		return d
	}
	return s
}
