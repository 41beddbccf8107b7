package workflows

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/drctl/drctl/runbooks"
)

// Scheduled drills. A Temporal Schedule (no timer of drctl's own) starts
// ScheduledDrillWorkflow, which starts the drill as a child under the
// runbook's lock, exactly as `drctl run --mode drill` would, and waits for
// it, so the schedule's overlap policy (skip) sees a drill in progress. A
// drill that cannot take its lock is not queued and does not fail: it is
// recorded as skipped, with the run holding the lock named, in the
// wrapper's result, memo and search attributes (`drctl drills` lists it).
const (
	ScheduledDrillWorkflow = "drctl.ScheduledDrill"
	// LockHolderActivity names the run holding a lock (a worker reads the
	// run's memo with its Temporal client).
	LockHolderActivity = "drctl.LockHolder"
	// SchedulePrefix prefixes a drill schedule's ID: drill-<runbook>.
	SchedulePrefix = "drill-"
	// StateSkipped is a scheduled drill that did not start.
	StateSkipped = "skipped"
)

// ScheduleID is the ID of the drill schedule of a runbook.
func ScheduleID(runbook string) string { return SchedulePrefix + runbook }

// ScheduledDrillInput is what a drill schedule starts with: the drill's
// input as checked when the schedule was written (the runbook's text is
// frozen there, as for any run).
type ScheduledDrillInput struct {
	Schedule string   `json:"schedule"`
	Run      RunInput `json:"run"`
}

// ScheduledDrillResult is one firing of a drill schedule.
type ScheduledDrillResult struct {
	Schedule   string `json:"schedule"`
	WorkflowID string `json:"workflow_id"`
	RunID      string `json:"run_id,omitempty"`
	State      string `json:"state"`
	// Skipped says why the drill did not start (the lock's holder).
	Skipped string `json:"skipped,omitempty"`
	// Error says why a drill that ended with no report ended.
	Error  string  `json:"error,omitempty"`
	Report *Report `json:"report,omitempty"`
}

// CheckScheduledDrill is the check of a schedule's drill: a drill, valid
// as a run.
func CheckScheduledDrill(in ScheduledDrillInput) error {
	if in.Run.Mode != ModeDrill {
		return fmt.Errorf("a drill schedule runs drills; mode %q", in.Run.Mode)
	}
	if in.Schedule != ScheduleID(in.Run.Runbook.Name) {
		return fmt.Errorf("schedule %q is not the drill schedule of runbook %s (%s)", in.Schedule, in.Run.Runbook.Name, ScheduleID(in.Run.Runbook.Name))
	}
	if who := in.Run.AutoApprove; who != "" && !namesDrillApprover(&in.Run.Runbook, who) && (in.Run.Failback == nil || !namesDrillApprover(&in.Run.Failback.Runbook, who)) {
		return fmt.Errorf("no gate of %s names %s in drill_approvers, so it could approve nothing; add drill_approvers: [%s] to the gates a scheduled drill may open by itself", in.Run.Runbook.Name, who, who)
	}
	// The version this workflow was written against, not the latest: a
	// later change to the checks must not change how a recorded firing
	// replays.
	return checkInput(in.Run, versionScheduled)
}

// namesDrillApprover reports whether a gate of rb names who in its
// drill_approvers.
func namesDrillApprover(rb *runbooks.Runbook, who string) bool {
	for _, s := range rb.Steps {
		if s.Approval != nil && slices.Contains(s.Approval.DrillApprovers, who) {
			return true
		}
	}
	return false
}

// ScheduledDrill is the workflow a drill schedule starts.
func ScheduledDrill(ctx workflow.Context, in ScheduledDrillInput) (*ScheduledDrillResult, error) {
	if err := CheckScheduledDrill(in); err != nil {
		return nil, temporal.NewNonRetryableApplicationError(err.Error(), ErrRunFailed, nil)
	}
	rb := &in.Run.Runbook
	id := WorkflowID(rb.Lock)
	res := &ScheduledDrillResult{Schedule: in.Schedule, WorkflowID: id}
	// The drill holds the lock on its own: stopping this wrapper (or
	// deleting the schedule) never cuts a drill short.
	run := in.Run
	run.Mode = ModeDrill
	cctx := workflow.WithChildOptions(ctx, runChildOptions(ctx, run, workflow.Now(ctx),
		fmt.Sprintf("%s (drill, schedule %s)", rb.Name, in.Schedule), SearchSchedule.ValueSet(in.Schedule)))
	child := workflow.ExecuteChildWorkflow(cctx, RunbookWorkflow, in.Run)
	var exec workflow.Execution
	if err := child.GetChildWorkflowExecution().Get(ctx, &exec); err != nil {
		if !temporal.IsWorkflowExecutionAlreadyStartedError(err) {
			return nil, err
		}
		return skipped(ctx, in, res)
	}
	res.RunID = exec.RunID
	rep, err := childReport(ctx, child)
	if rep == nil { // ended with no report (terminated, timed out)
		res.State, res.Error = StateFailed, ErrorText(err)
		return res, nil
	}
	res.Report, res.State = rep, rep.State
	return res, nil
}

// skipped records a firing that found the lock held.
func skipped(ctx workflow.Context, in ScheduledDrillInput, res *ScheduledDrillResult) (*ScheduledDrillResult, error) {
	rb := &in.Run.Runbook
	res.State = StateSkipped
	res.Skipped = lockHeld(ctx, rb.Lock)
	now := workflow.Now(ctx)
	_ = workflow.UpsertTypedSearchAttributes(ctx, append(startAttributes(rb.Name, rb.Lock, ModeDrill),
		SearchSchedule.ValueSet(in.Schedule), SearchOutcome.ValueSet(StateSkipped), SearchMet.ValueSet(false))...)
	_ = workflow.UpsertMemo(ctx, map[string]any{MemoKey: Status{
		Runbook: rb.Name, Lock: rb.Lock, Mode: ModeDrill, StartedBy: in.Run.StartedBy, StartedAt: now,
		Reason: res.Skipped, State: StateSkipped, Total: len(rb.Steps) + len(rb.Preflight),
	}})
	return res, nil
}

// lockHeld says who holds lock, for a run that could not start under it.
func lockHeld(ctx workflow.Context, lock string) string {
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 30 * time.Second,
		RetryPolicy:         &temporal.RetryPolicy{MaximumAttempts: 3},
	})
	var holder string
	if err := workflow.ExecuteActivity(actx, LockHolderActivity, lock).Get(ctx, &holder); err != nil {
		holder = fmt.Sprintf("a run that could not be described (%s)", ErrorText(err))
	}
	return fmt.Sprintf("lock %q is held by %s", lock, holder)
}

// childReport waits for a child run's report: its result, or the report
// a failed run carries. It is nil, with the error, when the run ended
// without one (terminated, timed out, cancelled before it reported).
func childReport(ctx workflow.Context, f workflow.ChildWorkflowFuture) (*Report, error) {
	var rep Report
	err := f.Get(ctx, &rep)
	var ae *temporal.ApplicationError
	if err == nil || (errors.As(err, &ae) && ae.HasDetails() && ae.Details(&rep) == nil) {
		return &rep, nil
	}
	return nil, err
}
