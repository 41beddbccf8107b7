package operator

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"

	"github.com/drctl/drctl/activities"
	"github.com/drctl/drctl/runbooks"
	"github.com/drctl/drctl/workflows"
)

// Bounds of a drill schedule's interval: more often than hourly is a
// load test, not a drill; less often than yearly is not a schedule.
const (
	MinDrillEvery = time.Hour
	MaxDrillEvery = 366 * 24 * time.Hour
)

// cronRE is the shape of a five-field cron expression whose minute field
// is one number, so it fires at most once an hour (MinDrillEvery), or one
// of the @names that fire at most daily; the server parses the rest.
var cronRE = regexp.MustCompile(`^(@(daily|weekly|monthly|yearly|annually|midnight)|[0-5]?[0-9]( [0-9A-Za-z*/,?-]+){4})$`)

// ScheduleOptions describe a drill schedule.
type ScheduleOptions struct {
	// Every or Cron (exactly one) says when the drill runs.
	Every time.Duration
	Cron  string
	// Params, Failback and Chaos are the drill's, as for StartOptions.
	Params   map[string]string
	Failback *workflows.Failback
	Chaos    []activities.Fault
	Reason   string
	// AutoApprove names who approves the drill's gates automatically;
	// empty: gates wait for people and notify like any run.
	AutoApprove string
	// Signers, when any, make the drill accept signed CLI decisions only.
	Signers []workflows.Signer
}

// DrillSchedule is a drill schedule as listed.
type DrillSchedule struct {
	ID          string      `json:"id"`
	Runbook     string      `json:"runbook"`
	Spec        string      `json:"spec"`
	CreatedBy   string      `json:"created_by"`
	AutoApprove string      `json:"auto_approve,omitempty"`
	Paused      bool        `json:"paused"`
	Note        string      `json:"note,omitempty"`
	Next        *time.Time  `json:"next,omitempty"`
	Recent      []DrillFire `json:"recent,omitempty"`
}

// DrillFire is one recent firing of a schedule.
type DrillFire struct {
	At         time.Time `json:"at"`
	WorkflowID string    `json:"workflow_id"`
}

// scheduleMemo is what a schedule remembers for listing.
type scheduleMemo struct {
	Runbook     string `json:"runbook"`
	Spec        string `json:"spec"`
	CreatedBy   string `json:"created_by"`
	AutoApprove string `json:"auto_approve,omitempty"`
}

const scheduleMemoKey = "drctl"

// ScheduleDrill creates the drill schedule of rb, or replaces it (the
// runbook text, parameters, timing and approver) when it exists.
// Overlap policy skip: a firing while the previous drill still runs is
// dropped by Temporal; a firing that finds the lock held by another run is
// recorded as skipped by the drill itself.
func (o *Operator) ScheduleDrill(ctx context.Context, rb *runbooks.Runbook, so ScheduleOptions) (string, error) {
	spec, text, err := drillSpec(so.Every, so.Cron)
	if err != nil {
		return "", err
	}
	id := workflows.ScheduleID(rb.Name)
	reason := so.Reason
	if reason == "" {
		reason = "scheduled drill (" + text + ")"
	}
	in := workflows.ScheduledDrillInput{Schedule: id, Run: workflows.RunInput{
		Runbook: *rb, Params: so.Params, Mode: workflows.ModeDrill, StartedBy: o.Identity, Reason: reason,
		Chaos: so.Chaos, Signers: so.Signers, Failback: so.Failback, AutoApprove: so.AutoApprove,
	}}
	if err := workflows.CheckScheduledDrill(in); err != nil {
		return "", err
	}
	action := &client.ScheduleWorkflowAction{
		// Temporal appends each firing's time: drctl-drill-NAME-<time>,
		// an ID `drctl history export` and `drctl status` take.
		ID:                  workflows.WorkflowIDPrefix + id,
		Workflow:            workflows.ScheduledDrillWorkflow,
		Args:                []any{in},
		TaskQueue:           o.TaskQueue,
		WorkflowTaskTimeout: 3 * time.Second,
		StaticSummary:       fmt.Sprintf("scheduled drill of %s (%s)", rb.Name, text),
	}
	memo := map[string]any{scheduleMemoKey: scheduleMemo{Runbook: rb.Name, Spec: text, CreatedBy: o.Identity, AutoApprove: so.AutoApprove}}
	err = o.putSchedule(ctx, "drill schedule", client.ScheduleOptions{
		ID: id, Spec: spec, Action: action, Overlap: enumspb.SCHEDULE_OVERLAP_POLICY_SKIP,
		Note: "created by " + o.Identity, Memo: memo,
	})
	if err != nil {
		return "", err
	}
	return id, nil
}

// drillSpec turns --every or --cron into a schedule spec and its text.
func drillSpec(every time.Duration, cron string) (client.ScheduleSpec, string, error) {
	switch {
	case every != 0 && cron != "":
		return client.ScheduleSpec{}, "", errors.New("give --every or --cron, not both")
	case every != 0:
		if every < MinDrillEvery || every > MaxDrillEvery {
			return client.ScheduleSpec{}, "", fmt.Errorf("--every %s: a drill schedule runs between every %s and every %s", every, MinDrillEvery, MaxDrillEvery)
		}
		return client.ScheduleSpec{Intervals: []client.ScheduleIntervalSpec{{Every: every}}}, "every " + every.String(), nil
	case cron != "":
		if !cronRE.MatchString(cron) {
			return client.ScheduleSpec{}, "", fmt.Errorf("--cron %q: write five fields (minute hour day-of-month month day-of-week) with one minute, so a drill runs at most hourly, e.g. \"0 3 * * MON\"", cron)
		}
		return client.ScheduleSpec{CronExpressions: []string{cron}}, "cron " + cron, nil
	default:
		return client.ScheduleSpec{}, "", errors.New("say when the drill runs: --every 168h or --cron \"0 3 * * MON\"")
	}
}

// ScheduleID turns what an operator types (a runbook name or a schedule
// ID) into a drill schedule's ID.
func ScheduleID(arg string) string {
	if strings.HasPrefix(arg, workflows.SchedulePrefix) {
		return arg
	}
	return workflows.ScheduleID(arg)
}

// DrillSchedules lists drctl's drill schedules.
func (o *Operator) DrillSchedules(ctx context.Context) ([]DrillSchedule, error) {
	it, err := o.Client.ScheduleClient().List(ctx, client.ScheduleListOptions{PageSize: 100})
	if err != nil {
		return nil, fmt.Errorf("list schedules: %w", err)
	}
	var out []DrillSchedule
	for it.HasNext() {
		e, err := it.Next()
		if err != nil {
			return nil, fmt.Errorf("list schedules: %w", err)
		}
		if !strings.HasPrefix(e.ID, workflows.SchedulePrefix) || e.WorkflowType.Name != workflows.ScheduledDrillWorkflow {
			continue
		}
		ds := DrillSchedule{ID: e.ID, Paused: e.Paused, Note: e.Note}
		var m scheduleMemo
		if f := e.Memo.GetFields()[scheduleMemoKey]; f != nil && converter.GetDefaultDataConverter().FromPayload(f, &m) == nil {
			ds.Runbook, ds.Spec, ds.CreatedBy, ds.AutoApprove = m.Runbook, m.Spec, m.CreatedBy, m.AutoApprove
		}
		if len(e.NextActionTimes) > 0 {
			next := e.NextActionTimes[0]
			ds.Next = &next
		}
		for _, a := range e.RecentActions {
			f := DrillFire{At: a.ActualTime}
			if a.StartWorkflowResult != nil {
				f.WorkflowID = a.StartWorkflowResult.WorkflowID
			}
			ds.Recent = append(ds.Recent, f)
		}
		out = append(out, ds)
	}
	return out, nil
}

// ControlSchedule pauses, resumes, triggers or deletes a drill schedule.
func (o *Operator) ControlSchedule(ctx context.Context, arg, op, note string) error {
	return o.controlSchedule(ctx, ScheduleID(arg), op, note, "drill schedule", "drctl drill list")
}

// Drill is one past (or running) run as visibility records it (a drill,
// in `drctl drills`).
type Drill struct {
	WorkflowID string     `json:"workflow_id"`
	RunID      string     `json:"run_id"`
	Runbook    string     `json:"runbook"`
	Mode       string     `json:"mode"`
	StartedAt  time.Time  `json:"started_at"`
	EndedAt    *time.Time `json:"ended_at,omitempty"`
	StartedBy  string     `json:"started_by,omitempty"`
	Schedule   string     `json:"schedule,omitempty"`
	// Outcome is the run's state (succeeded, failed, aborted, skipped), or
	// running.
	Outcome string `json:"outcome"`
	// Why a skipped drill did not run, or why a drill failed (memo).
	Note  string `json:"note,omitempty"`
	RTOMs *int64 `json:"rto_ms,omitempty"`
	RPOMs *int64 `json:"rpo_ms,omitempty"`
	Met   *bool  `json:"objectives_met,omitempty"`
}

// Drills lists drills of runbook (all runbooks when empty), newest first,
// from Temporal visibility: the runs' search attributes and memos.
func (o *Operator) Drills(ctx context.Context, runbook string, limit int) ([]Drill, error) {
	query := fmt.Sprintf("%s = '%s'", workflows.SearchMode.GetName(), workflows.ModeDrill)
	if runbook != "" {
		// The name is checked by the runbook name rule (no quote can pass),
		// so it is safe inside the query's string literal.
		if err := runbooks.CheckName(runbook); err != nil {
			return nil, err
		}
		query += fmt.Sprintf(" AND %s = '%s'", workflows.SearchRunbook.GetName(), runbook)
	}
	return o.visible(ctx, query, limit)
}

// visible lists runs matching a visibility query, newest first, with what
// their search attributes and memos say.
func (o *Operator) visible(ctx context.Context, query string, limit int) ([]Drill, error) {
	var out []Drill
	dc := converter.GetDefaultDataConverter()
	err := o.page(ctx, query, limit, func(e *workflowpb.WorkflowExecutionInfo) bool {
		d := Drill{WorkflowID: e.GetExecution().GetWorkflowId(), RunID: e.GetExecution().GetRunId(), StartedAt: e.GetStartTime().AsTime()}
		if e.GetCloseTime() != nil && e.GetStatus() != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
			t := e.GetCloseTime().AsTime()
			d.EndedAt = &t
		}
		fields := e.GetSearchAttributes().GetIndexedFields()
		str := func(name string) string {
			var v string
			if p := fields[name]; p != nil {
				_ = dc.FromPayload(p, &v)
			}
			return v
		}
		num := func(name string) *int64 {
			var v int64
			if p := fields[name]; p != nil && dc.FromPayload(p, &v) == nil {
				return &v
			}
			return nil
		}
		d.Runbook, d.Mode, d.Schedule, d.Outcome = str(workflows.SearchRunbook.GetName()), str(workflows.SearchMode.GetName()), str(workflows.SearchSchedule.GetName()), str(workflows.SearchOutcome.GetName())
		d.RTOMs, d.RPOMs = num(workflows.SearchRTOMs.GetName()), num(workflows.SearchRPOMs.GetName())
		if p := fields[workflows.SearchMet.GetName()]; p != nil {
			var v bool
			if dc.FromPayload(p, &v) == nil {
				d.Met = &v
			}
		}
		st := memoStatus(e)
		d.StartedBy = st.StartedBy
		if st.State == workflows.StateSkipped {
			d.Note = st.Reason
		}
		if d.Outcome == "" {
			d.Outcome = closeState(e)
		}
		out = append(out, d)
		return len(out) < limit
	})
	return out, err
}

// searchAttributesSuffix is searchAttributesHint as a suffix of an error.
func (o *Operator) searchAttributesSuffix(err error) string {
	if h := o.searchAttributesHint(err); h != "" {
		return "; " + h
	}
	return ""
}

// putSchedule creates a schedule, or replaces the one with its ID: a
// replaced schedule is deleted and created again, so that everything it
// holds (spec, action, memo) is the new definition. Its past firings stay
// in visibility (`drctl drills`, the readiness record).
func (o *Operator) putSchedule(ctx context.Context, kind string, opts client.ScheduleOptions) error {
	sc := o.Client.ScheduleClient()
	_, err := sc.Create(ctx, opts)
	if errors.Is(err, temporal.ErrScheduleAlreadyRunning) {
		if err = sc.GetHandle(ctx, opts.ID).Delete(ctx); err != nil {
			return fmt.Errorf("replace %s %s: %w", kind, opts.ID, err)
		}
		_, err = sc.Create(ctx, opts)
	}
	if err != nil {
		return fmt.Errorf("create %s %s: %w", kind, opts.ID, err)
	}
	return nil
}
