package main

import (
	"context"
	"fmt"
	"time"

	enumspb "go.temporal.io/api/enums/v1"

	"github.com/drctl/drctl/internal/pglab"
	"github.com/drctl/drctl/runbooks"
	"github.com/drctl/drctl/tests/internal/benchkit"
	"github.com/drctl/drctl/worker"
)

// runbook is the drctl side's runbook for a switchover from old to nw.
func (b *bench) runbook(old, nw *pglab.Node) (*runbooks.Runbook, error) {
	b.seq++
	from, to := b.target[old], b.target[nw]
	src := fmt.Sprintf(`apiVersion: drctl/v1
name: pgbench-switchover
description: Planned switchover %[2]s -> %[3]s, timed by tests/pgbench.
lock: pgbench-%[1]d-%[6]d
targets:
  a: {kind: postgres, credentials: {env: %[4]s}}
  b: {kind: postgres, credentials: {env: %[5]s}}
steps:
  - id: fence
    action: postgres.fence
    with: {target: %[2]s}
  - id: catch-up
    needs: [fence]
    action: postgres.wait_caught_up
    with: {primary: %[2]s, standby: %[3]s}
    deadline: 1m
  - id: promote
    needs: [catch-up]
    action: postgres.promote
    with: {target: %[3]s, old_primary: %[2]s}
`, b.seq, from, to, envA, envB, time.Now().UnixNano())
	rb, err := runbooks.Parse("pgbench-switchover.yaml", []byte(src))
	if err != nil {
		return nil, fmt.Errorf("generated runbook: %w", err)
	}
	if probs := runbooks.Validate(rb, worker.Catalog()); len(probs) > 0 {
		return nil, fmt.Errorf("generated runbook is invalid:\n%w", probs)
	}
	return rb, nil
}

// drctl runs the switchover as a drctl run and fills in s.
func (b *bench) drctl(ctx context.Context, old, nw *pglab.Node, s *sample) error {
	rb, err := b.runbook(old, nw)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, b.o.timeout)
	defer cancel()
	r, err := benchkit.RunToEnd(ctx, b.op, rb, "pgbench")
	s.wall = r.Wall
	if err != nil {
		return err
	}
	st, rep := r.Started, r.Report
	if rep.RTO != nil {
		s.rto = rep.RTO.D()
	}
	exec, err := b.activityTimes(ctx, st.WorkflowID, st.RunID)
	if err != nil {
		return err
	}
	for i, id := range []string{"fence", "catch-up", "promote"} {
		sr, ok := rep.Step(id)
		if !ok || sr.StartedAt == nil || sr.EndedAt == nil {
			return fmt.Errorf("run %s: the report lacks step %s's times", st.WorkflowID, id)
		}
		s.phases[i] = sr.EndedAt.Sub(*sr.StartedAt)
		s.exec[i] = exec[id]
	}
	return nil
}

// activityTimes reads from a run's history how long each activity ran on
// the worker (ActivityTaskStarted to ActivityTaskCompleted, last attempt),
// by activity ID, which is the step ID.
func (b *bench) activityTimes(ctx context.Context, workflowID, runID string) (map[string]time.Duration, error) {
	it := b.op.Client.GetWorkflowHistory(ctx, workflowID, runID, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	ids := map[int64]string{}
	started := map[int64]time.Time{}
	out := map[string]time.Duration{}
	for it.HasNext() {
		e, err := it.Next()
		if err != nil {
			return nil, fmt.Errorf("history of %s: %w", workflowID, err)
		}
		switch e.GetEventType() {
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
			ids[e.GetEventId()] = e.GetActivityTaskScheduledEventAttributes().GetActivityId()
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_STARTED:
			started[e.GetActivityTaskStartedEventAttributes().GetScheduledEventId()] = e.GetEventTime().AsTime()
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
			id := e.GetActivityTaskCompletedEventAttributes().GetScheduledEventId()
			out[ids[id]] = e.GetEventTime().AsTime().Sub(started[id])
		}
	}
	return out, nil
}
