package workflows

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/drctl/drctl/activities"
	"github.com/drctl/drctl/runbooks"
)

// Steady state (from versionSteadyState on, drills only). A drill is the
// forward path, then the way back (the compensations), then proof that
// every target is as it was: before the first step acts, the run observes
// what each preflight check and action step touches (its Observe's State, read-only, with the
// inputs known then) and after the way back observes the same steps with
// the same inputs again. Any fact that differs fails the drill, listed as
// was / now. A drill never reports succeeded while the end state differs.

// SteadyCheck is a drill's before/after comparison.
type SteadyCheck struct {
	Before map[string]string `json:"before,omitempty"`
	After  map[string]string `json:"after,omitempty"`
	// Differences lists each fact that is not back, sorted by key.
	Differences []StateDiff `json:"differences,omitempty"`
	// NotCompared names steps whose state could not be read before the
	// drill (inputs known only at run time, or Observe failed), and why.
	NotCompared []string `json:"not_compared,omitempty"`
}

// StateDiff is one fact that differs after a drill ("" = absent).
type StateDiff struct {
	Key string `json:"key"`
	Was string `json:"was"`
	Now string `json:"now"`
}

// steadyProbe is one step's Observe, as made before the drill.
type steadyProbe struct {
	step, action string
	with         map[string]any
}

// settleTries and settleWait: after the way back, a fact may take a moment
// to settle (a load balancer's health check, a standby reconnecting), so
// the comparison is repeated before it counts as a difference.
const (
	settleTries = 10
	settleWait  = 2 * time.Second
)

// steadyBefore observes every action step whose inputs are known now.
func (r *runner) steadyBefore(ctx workflow.Context) {
	sc := &SteadyCheck{}
	r.rep.Steady = sc
	// Preflight checks count: they read what the runbook is about to
	// touch (a standby's role and upstream) with inputs known now.
	for _, s := range slices.Concat(r.rb.Preflight, r.rb.Steps) {
		if s.Action == "" || s.Action == activities.ActionWait {
			continue
		}
		with, err := runbooks.ResolveMap(s.With, r.scope())
		if err != nil {
			sc.NotCompared = append(sc.NotCompared, fmt.Sprintf("%s: inputs known only at run time", s.ID))
			continue
		}
		r.probes = append(r.probes, steadyProbe{step: s.ID, action: s.Action, with: with})
	}
	state, failed := r.observeProbes(ctx)
	for _, id := range workflow.DeterministicKeys(failed) {
		sc.NotCompared = append(sc.NotCompared, fmt.Sprintf("%s: could not observe: %s", id, failed[id]))
	}
	r.probes = slices.DeleteFunc(r.probes, func(p steadyProbe) bool { _, bad := failed[p.step]; return bad })
	sc.Before = state
}

// steadyAfter observes again and records what is not back. It returns
// whether everything is.
func (r *runner) steadyAfter() bool {
	sc := r.rep.Steady
	ctx, _ := workflow.NewDisconnectedContext(r.ctx)
	for try := 1; ; try++ {
		state, failed := r.observeProbes(ctx)
		diffs := compareState(sc.Before, state)
		for _, id := range workflow.DeterministicKeys(failed) {
			diffs = append(diffs, StateDiff{Key: id + " (observe)", Was: "observed", Now: "could not observe: " + failed[id]})
		}
		sc.After, sc.Differences = state, diffs
		if len(diffs) == 0 || try == settleTries {
			return len(diffs) == 0
		}
		_ = workflow.Sleep(ctx, settleWait)
	}
}

// observeProbes runs every probe's Observe in parallel and merges their
// State in runbook order; failed maps a step to its error.
func (r *runner) observeProbes(ctx workflow.Context) (map[string]string, map[string]string) {
	opts := workflow.ActivityOptions{
		StartToCloseTimeout: 30 * time.Second,
		RetryPolicy:         &temporal.RetryPolicy{MaximumAttempts: 3},
	}
	octx := workflow.WithActivityOptions(ctx, opts)
	results := make([]workflow.Future, len(r.probes))
	for i, p := range r.probes {
		// compensating: true keeps a drill's chaos faults off these reads
		// (faults are for the forward path); an Observe acts on nothing.
		req := r.request(p.step, p.action, p.with, true)
		if r.version < versionSites {
			results[i] = workflow.ExecuteActivity(octx, p.action+activities.ObserveSuffix, req)
			continue
		}
		s, _ := r.rb.Step(p.step)
		f, set := workflow.NewFuture(ctx)
		results[i] = f
		workflow.Go(ctx, func(ctx workflow.Context) {
			var obs activities.Observation
			err := observeIn(ctx, opts, runbooks.Where(s.RunOn, s.Reach, p.with, r.rb.Targets), p.action+activities.ObserveSuffix, req, &obs)
			set.Set(obs, err)
		})
	}
	state, failed := map[string]string{}, map[string]string{}
	for i, f := range results {
		var obs activities.Observation
		if err := f.Get(ctx, &obs); err != nil {
			failed[r.probes[i].step] = ErrorText(err)
			continue
		}
		for _, k := range workflow.DeterministicKeys(obs.State) {
			state[k] = obs.State[k]
		}
	}
	return state, failed
}

// compareState lists every key whose value differs, or that is only on one
// side, sorted by key.
func compareState(before, after map[string]string) []StateDiff {
	keys := append(workflow.DeterministicKeys(before), workflow.DeterministicKeys(after)...)
	slices.Sort(keys)
	keys = slices.Compact(keys)
	var out []StateDiff
	for _, k := range keys {
		if before[k] != after[k] {
			out = append(out, StateDiff{Key: k, Was: before[k], Now: after[k]})
		}
	}
	return out
}

// steadySummary is the drill's failure text: each difference, was → now.
func steadySummary(d []StateDiff) string {
	parts := make([]string, 0, len(d))
	for _, x := range d {
		parts = append(parts, fmt.Sprintf("%s: was %q, now %q", x.Key, x.Was, x.Now))
	}
	return strings.Join(parts, "; ")
}

// failback runs the drill's failback runbook as a child workflow under the
// drill's lock (workflow ID <drill>-failback), started by the same person,
// with its own gates; its report becomes the drill's Failback.
func (r *runner) failback() error {
	fb := r.in.Failback
	ctx, _ := workflow.NewDisconnectedContext(r.ctx)
	r.rep.State = StateCompensating
	r.publish()
	opts := workflow.ChildWorkflowOptions{
		WorkflowID:          r.rep.WorkflowID + FailbackSuffix,
		WorkflowTaskTimeout: 3 * time.Second,
		StaticSummary:       fmt.Sprintf("failback of drill %s: %s", r.rep.WorkflowID, fb.Runbook.Name),
	}
	in := RunInput{
		Runbook: fb.Runbook, Params: fb.Params, Mode: ModeFailover,
		StartedBy: r.rep.StartedBy, Reason: "failback of drill " + r.rep.WorkflowID, Signers: r.in.Signers,
	}
	if r.version >= versionScheduled {
		in.Chaos, in.AutoApprove, in.FailbackOf = fb.Chaos, r.in.AutoApprove, r.rep.WorkflowID
		opts.TypedSearchAttributes = StartSearchAttributes(fb.Runbook.Name, fb.Runbook.Lock, ModeFailback)
	}
	cctx := workflow.WithChildOptions(ctx, opts)
	var rep Report
	err := workflow.ExecuteChildWorkflow(cctx, RunbookWorkflow, in).Get(ctx, &rep)
	if err != nil {
		var ae *temporal.ApplicationError
		if errors.As(err, &ae) && ae.HasDetails() && ae.Details(&rep) == nil {
			r.rep.Failback = &rep
			return fmt.Errorf("failback %s %s: %s", fb.Runbook.Name, rep.State, rep.Error)
		}
		return fmt.Errorf("failback %s: %s", fb.Runbook.Name, ErrorText(err))
	}
	r.rep.Failback = &rep
	return nil
}
