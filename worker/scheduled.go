package worker

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	sdkworker "go.temporal.io/sdk/worker"

	"github.com/drctl/drctl/internal/operator"
	"github.com/drctl/drctl/workflows"
)

// registerClientActivities registers the activities that talk to Temporal
// itself: naming a lock's holder for a scheduled drill that found it held,
// and handing a readiness evaluation to the runbook's record.
func registerClientActivities(w sdkworker.ActivityRegistry, c client.Client, taskQueue string) {
	h := lockHolder{op: &operator.Operator{Client: c}}
	w.RegisterActivityWithOptions(h.Holder, activity.RegisterOptions{Name: workflows.LockHolderActivity})
	w.RegisterActivityWithOptions(h.Run, activity.RegisterOptions{Name: workflows.LockRunActivity})
	r := recorder{c: c, taskQueue: taskQueue}
	w.RegisterActivityWithOptions(r.Record, activity.RegisterOptions{Name: workflows.RecordReadinessActivity})
	w.RegisterActivityWithOptions(pollers{c: c}.Workers, activity.RegisterOptions{Name: workflows.WorkersActivity})
}

// pollers lists the workers of a task queue.
type pollers struct{ c client.Client }

// recentPoll is how recently a worker must have polled to be offered an
// action; the server keeps pollers it has not heard from for minutes.
const recentPoll = time.Minute

// Workers returns the identities of the workers that polled queue's
// activities within recentPoll, most recently seen first (a dead site's
// workers, seen last before it died, come last).
func (p pollers) Workers(ctx context.Context, queue string) ([]string, error) {
	resp, err := p.c.DescribeTaskQueue(ctx, queue, enumspb.TASK_QUEUE_TYPE_ACTIVITY)
	if err != nil {
		return nil, fmt.Errorf("describe task queue %s: %w", queue, err)
	}
	seen := map[string]time.Time{}
	for _, pi := range resp.GetPollers() {
		at := pi.GetLastAccessTime()
		if at == nil || time.Since(at.AsTime()) > recentPoll {
			continue
		}
		if t := at.AsTime(); t.After(seen[pi.GetIdentity()]) {
			seen[pi.GetIdentity()] = t
		}
	}
	out := slices.Collect(maps.Keys(seen))
	slices.SortFunc(out, func(a, b string) int {
		if c := seen[b].Compare(seen[a]); c != 0 {
			return c
		}
		return strings.Compare(a, b)
	})
	return out, nil
}

type recorder struct {
	c         client.Client
	taskQueue string
}

// Record signals the evaluation to the runbook's readiness record,
// starting the record if it is not running.
func (r recorder) Record(ctx context.Context, ev workflows.Evaluation) error {
	id := workflows.ReadinessRecordID(ev.Runbook)
	_, err := r.c.SignalWithStartWorkflow(ctx, id, workflows.SignalEvaluation, ev, client.StartWorkflowOptions{
		ID: id, TaskQueue: r.taskQueue, WorkflowTaskTimeout: 3 * time.Second,
		StaticSummary: "readiness record of " + ev.Runbook,
	}, workflows.ReadinessRecordWorkflow, workflows.ReadinessState{})
	if err != nil {
		return fmt.Errorf("record readiness of %s: %w", ev.Runbook, err)
	}
	return nil
}

type lockHolder struct{ op *operator.Operator }

// Holder describes the run holding lock from its memo (no worker needed).
func (h lockHolder) Holder(ctx context.Context, lock string) (string, error) {
	st, err := h.op.Status(ctx, workflows.WorkflowID(lock))
	if err != nil {
		return "", err
	}
	return describe(st), nil
}

// Run says whether a run holds lock now, and which (no run of the lock
// ever: not held).
func (h lockHolder) Run(ctx context.Context, lock string) (workflows.LockRun, error) {
	st, err := h.op.Status(ctx, workflows.WorkflowID(lock))
	switch {
	case errors.Is(err, operator.ErrNoRun):
		return workflows.LockRun{}, nil
	case err != nil:
		return workflows.LockRun{}, err
	case st.Closed:
		return workflows.LockRun{}, nil
	}
	return workflows.LockRun{Held: true, Holder: describe(st)}, nil
}

// describe names a run the way both activities report a lock's holder.
func describe(st operator.RunStatus) string {
	return fmt.Sprintf("run %s (runbook %s, %s, %s) started by %s at %s",
		st.WorkflowID, st.Runbook, st.Mode, st.State, st.StartedBy, st.StartedAt.UTC().Format(time.RFC3339))
}

// CheckSearchAttributes reports an error naming the one command to run when
// the namespace lacks any of drctl's search attributes: runs set them, and
// a run that upserts an unregistered attribute cannot end. When the
// server does not say (no permission to list them), it returns nil.
func CheckSearchAttributes(ctx context.Context, c client.Client, namespace string) error {
	resp, err := c.OperatorService().ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: namespace})
	if err != nil {
		return nil
	}
	var missing []string
	for _, a := range workflows.SearchAttributes {
		_, custom := resp.GetCustomAttributes()[a.Name]
		_, system := resp.GetSystemAttributes()[a.Name]
		if !custom && !system {
			missing = append(missing, a.Name)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	slices.Sort(missing)
	return fmt.Errorf("namespace %q lacks drctl's search attributes %s; register them once with:\n  %s",
		namespace, strings.Join(missing, ", "), workflows.SearchAttributesCommand(namespace))
}
