package workflows

import (
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/drctl/drctl/activities"
	"github.com/drctl/drctl/runbooks"
)

// PlanInput asks workers to observe a runbook without acting.
type PlanInput struct {
	Runbook   runbooks.Runbook  `json:"runbook"`
	Params    map[string]string `json:"params,omitempty"`
	StartedBy string            `json:"started_by"`
}

// PlannedStep is one step of a plan: its stage and what its action's
// Observe says about the world now.
type PlannedStep struct {
	ID     string `json:"id"`
	Stage  int    `json:"stage"`
	Kind   string `json:"kind"`
	Action string `json:"action,omitempty"`
	// Site is where the step's action runs: a site's workers, or "" for
	// any worker (runbooks.Where; for inputs known only at run time, by
	// its run_on alone).
	Site        string                  `json:"site,omitempty"`
	Observation *activities.Observation `json:"observation,omitempty"`
	// Note explains a step that was not observed (an approval, a wait, an
	// input that depends on an earlier step's output, an Observe that failed).
	Note string `json:"note,omitempty"`
	// Unserved says why no live worker could observe the step, when that
	// was why: UnservedSite (no worker of its site took it in time) or
	// UnservedCredentials (no worker holds its target's secret).
	Unserved string `json:"unserved,omitempty"`
}

// Why a plan step had no worker to observe it (PlannedStep.Unserved).
const (
	UnservedSite        = "site"
	UnservedCredentials = "credentials"
)

// PlanResult is the outcome of the plan workflow.
type PlanResult struct {
	Stages [][]string    `json:"stages"`
	Steps  []PlannedStep `json:"steps"`
}

// Plan observes every step whose inputs can be resolved before the run (no
// reference to another step's outputs) by calling its action's Observe on a
// worker, which holds the credentials. It changes nothing.
func Plan(ctx workflow.Context, in PlanInput) (*PlanResult, error) {
	rb := in.Runbook
	sc, err := observeScope(ctx, &rb, in.Params, ModePlan, in.StartedBy)
	if err != nil {
		return nil, err
	}
	info := workflow.GetInfo(ctx)
	res := &PlanResult{Stages: runbooks.Stages(&rb)}
	stageOf := map[string]int{}
	for i, stage := range res.Stages {
		for _, id := range stage {
			stageOf[id] = i + 1
		}
	}
	var all []runbooks.Step
	for _, s := range rb.Preflight {
		all = append(all, s)
		res.Steps = append(res.Steps, PlannedStep{ID: s.ID, Stage: 0, Kind: KindPreflight, Action: s.Action})
	}
	for _, s := range rb.Steps {
		all = append(all, s)
		res.Steps = append(res.Steps, PlannedStep{ID: s.ID, Stage: stageOf[s.ID], Kind: KindStep, Action: s.Action})
	}
	opts := workflow.ActivityOptions{
		StartToCloseTimeout: 30 * time.Second,
		RetryPolicy:         &temporal.RetryPolicy{MaximumAttempts: 2},
	}
	pending := 0
	for i, s := range all {
		ps := &res.Steps[i]
		switch {
		case s.Approval != nil:
			ps.Kind = KindApproval
			ps.Note = "approval by one of: " + strings.Join(s.Approval.Approvers, ", ")
			continue
		case s.Action == activities.ActionWait:
			ps.Note = fmt.Sprintf("would wait %v", s.With["duration"])
			continue
		case s.Child != nil:
			ps.Kind = KindRunbook
			each := "once"
			if s.ForEach != nil {
				limit := s.MaxParallel
				if limit <= 0 {
					limit = runbooks.DefaultMaxParallel
				}
				each = fmt.Sprintf("once per item of %v, %d at a time", s.ForEach, limit)
			}
			ps.Note = fmt.Sprintf("would run %s (%s) as child runs, %s; plan it on its own to see its steps", s.Runbook, s.Child.Name, each)
			continue
		}
		with, err := runbooks.ResolveMap(s.With, sc)
		if err != nil {
			ps.Site = runbooks.Where(s.RunOn, "", nil, nil)
			ps.Note = "observed at run time: inputs depend on earlier steps"
			continue
		}
		ps.Site = runbooks.Where(s.RunOn, s.Reach, with, rb.Targets)
		req := activities.Request{
			Run:  activities.Run{WorkflowID: info.WorkflowExecution.ID, RunID: info.WorkflowExecution.RunID, Lock: rb.Lock, Mode: ModePlan, StartedBy: in.StartedBy},
			Step: s.ID, Action: s.Action, With: with, Targets: rb.Targets,
		}
		pending++
		workflow.Go(ctx, func(ctx workflow.Context) {
			defer func() { pending-- }()
			var obs activities.Observation
			if err := observeIn(ctx, opts, ps.Site, s.Action+activities.ObserveSuffix, req, &obs); err != nil {
				ps.Note = "observe failed: " + placedErrorText(err, ps.Site)
				switch {
				case ps.Site != "" && neverStarted(err):
					ps.Unserved = UnservedSite
				case isNoCredential(err):
					ps.Unserved = UnservedCredentials
				}
				return
			}
			ps.Observation = &obs
		})
	}
	if err := workflow.Await(ctx, func() bool { return pending == 0 }); err != nil {
		return nil, err
	}
	return res, nil
}

// observeScope is what a workflow that only observes (plan, readiness)
// resolves before its first Observe: the parameters with their defaults,
// the run fields, and rb's targets (fixed in place); it is the scope the
// steps' inputs resolve in. Errors are non-retryable: the input is wrong.
func observeScope(ctx workflow.Context, rb *runbooks.Runbook, given map[string]string, mode, startedBy string) (runbooks.Scope, error) {
	params, err := runbooks.ParamValues(rb, given)
	if err != nil {
		return runbooks.Scope{}, temporal.NewNonRetryableApplicationError(err.Error(), ErrRunFailed, nil)
	}
	run := runbooks.RunFields(workflow.GetInfo(ctx).WorkflowExecution.ID, mode, startedBy, rb.Lock)
	targets, err := runbooks.ResolveTargets(rb.Targets, runbooks.Scope{Params: params, Run: run})
	if err != nil {
		return runbooks.Scope{}, temporal.NewNonRetryableApplicationError(err.Error(), ErrRunFailed, nil)
	}
	rb.Targets = targets
	return runbooks.Scope{Params: params, Outputs: map[string]map[string]any{}, Run: run, Targets: runbooks.TargetScope(rb.Targets)}, nil
}
