package operator

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"

	"github.com/drctl/drctl/runbooks"
	"github.com/drctl/drctl/workflows"
)

// Bounds of a readiness schedule's interval, and its default.
const (
	MinReadinessEvery     = time.Minute
	MaxReadinessEvery     = 24 * time.Hour
	DefaultReadinessEvery = 5 * time.Minute
)

// ReadinessOptions describe a readiness schedule.
type ReadinessOptions struct {
	Every  time.Duration // 0: DefaultReadinessEvery
	Params map[string]string
	// Acting lists the steps whose Observe must find something to change
	// (runbooks.ActingSteps with the action catalog).
	Acting []string
	// AlertAfter: evaluations in a row before a change is announced (0: 2).
	AlertAfter int
}

// AddReadiness creates (or replaces) the readiness schedule of rb: every
// Every, a read-only evaluation whose result goes to the runbook's record.
func (o *Operator) AddReadiness(ctx context.Context, rb *runbooks.Runbook, ro ReadinessOptions) (string, error) {
	if err := runbooks.CheckName(rb.Name); err != nil {
		return "", err
	}
	every := ro.Every
	if every == 0 {
		every = DefaultReadinessEvery
	}
	if every < MinReadinessEvery || every > MaxReadinessEvery {
		return "", fmt.Errorf("--every %s: readiness is evaluated between every %s and every %s", every, MinReadinessEvery, MaxReadinessEvery)
	}
	if ro.AlertAfter < 0 || ro.AlertAfter > 100 {
		return "", fmt.Errorf("--alert-after %d is outside 1..100 (0 means the default, 2)", ro.AlertAfter)
	}
	if err := runbooks.CheckBounds(rb); err != nil {
		return "", err
	}
	if _, err := runbooks.ParamValues(rb, ro.Params); err != nil {
		return "", err
	}
	id := workflows.ReadinessScheduleID(rb.Name)
	in := workflows.ReadinessInput{Runbook: *rb, Params: ro.Params, StartedBy: o.Identity, Acting: ro.Acting, AlertAfter: ro.AlertAfter, Every: runbooks.Duration(every)}
	spec := client.ScheduleSpec{Intervals: []client.ScheduleIntervalSpec{{Every: every}}}
	action := &client.ScheduleWorkflowAction{
		ID:                  workflows.WorkflowIDPrefix + id,
		Workflow:            workflows.ReadinessWorkflow,
		Args:                []any{in},
		TaskQueue:           o.TaskQueue,
		WorkflowTaskTimeout: 3 * time.Second,
		StaticSummary:       "readiness evaluation of " + rb.Name,
	}
	err := o.putSchedule(ctx, "readiness schedule", client.ScheduleOptions{
		ID: id, Spec: spec, Action: action, Overlap: enumspb.SCHEDULE_OVERLAP_POLICY_SKIP,
		Note: "created by " + o.Identity, TriggerImmediately: true,
	})
	if err != nil {
		return "", err
	}
	return id, nil
}

// ControlReadiness triggers, pauses, resumes or removes the readiness
// schedule of runbook. Removing keeps the record (the SLO's history).
func (o *Operator) ControlReadiness(ctx context.Context, runbook, op string) error {
	if err := runbooks.CheckName(runbook); err != nil {
		return err
	}
	return o.controlSchedule(ctx, workflows.ReadinessScheduleID(runbook), op, "", "readiness schedule", "drctl readiness")
}

// ReadinessStatus is a runbook's readiness as its record holds it.
type ReadinessStatus struct {
	workflows.ReadinessState
	RecordID string `json:"record_id"`
}

// Readiness reads the readiness records (of runbook, or all), from their
// memos: no worker needed.
func (o *Operator) Readiness(ctx context.Context, runbook string) ([]ReadinessStatus, error) {
	query := fmt.Sprintf("WorkflowType = '%s' AND ExecutionStatus = 'Running'", workflows.ReadinessRecordWorkflow)
	if runbook != "" {
		if err := runbooks.CheckName(runbook); err != nil {
			return nil, err
		}
		query += fmt.Sprintf(" AND WorkflowId = '%s'", workflows.ReadinessRecordID(runbook))
	}
	resp, err := o.Client.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Query: query, PageSize: 1000})
	if err != nil {
		return nil, fmt.Errorf("list readiness records: %w", err)
	}
	var out []ReadinessStatus
	for _, e := range resp.GetExecutions() {
		rs := ReadinessStatus{RecordID: e.GetExecution().GetWorkflowId()}
		f := e.GetMemo().GetFields()[workflows.MemoKey]
		if f == nil || converter.GetDefaultDataConverter().FromPayload(f, &rs.ReadinessState) != nil || rs.Evaluations == 0 {
			continue // started, nothing evaluated yet
		}
		out = append(out, rs)
	}
	slices.SortFunc(out, func(a, b ReadinessStatus) int { return strings.Compare(a.Runbook, b.Runbook) })
	return out, nil
}

// controlSchedule pauses, resumes, triggers or deletes schedule id; kind
// and list name it and the command that lists its kind, for the
// not-found hint.
func (o *Operator) controlSchedule(ctx context.Context, id, op, note, kind, list string) error {
	h := o.Client.ScheduleClient().GetHandle(ctx, id)
	if note == "" {
		note = op + " by " + o.Identity
	} else {
		note = op + " by " + o.Identity + ": " + note
	}
	var err error
	switch op {
	case "pause":
		err = h.Pause(ctx, client.SchedulePauseOptions{Note: note})
	case "resume":
		err = h.Unpause(ctx, client.ScheduleUnpauseOptions{Note: note})
	case "trigger":
		err = h.Trigger(ctx, client.ScheduleTriggerOptions{Overlap: enumspb.SCHEDULE_OVERLAP_POLICY_SKIP})
	case "delete":
		err = h.Delete(ctx)
	default:
		return fmt.Errorf("unknown schedule operation %q", op)
	}
	var nf *serviceerror.NotFound
	if errors.As(err, &nf) {
		return fmt.Errorf("no %s %s; `%s` shows them", kind, id, list)
	}
	if err != nil {
		return fmt.Errorf("%s %s %s: %w", op, kind, id, err)
	}
	return nil
}
