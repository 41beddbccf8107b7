package main

import (
	"context"
	"sync"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/client"
)

// history follows a run's event history (a long poll) for what kill points
// and checks need: which activities (steps) have ended, and the worker that
// completed each.
type history struct {
	changed chan struct{} // a new event arrived
	done    chan struct{} // the history is complete (or the poll failed)

	mu          sync.Mutex
	scheduled   map[int64]string // scheduled event id -> activity id (the step)
	endedSteps  map[string]bool
	completions map[string]string // step -> identity of the worker that completed it
	// startedAt and closedAt are the times of the run's first and closing
	// events: the run holds its lock in between.
	startedAt, closedAt time.Time
	err                 error
}

func followHistory(ctx context.Context, c client.Client, workflowID, runID string) *history {
	h := &history{changed: make(chan struct{}, 1), done: make(chan struct{}),
		scheduled: map[int64]string{}, endedSteps: map[string]bool{}, completions: map[string]string{}}
	go func() {
		defer close(h.done)
		it := c.GetWorkflowHistory(ctx, workflowID, runID, true, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
		for it.HasNext() {
			ev, err := it.Next()
			if err != nil {
				h.mu.Lock()
				h.err = err
				h.mu.Unlock()
				return
			}
			h.record(ev)
			select {
			case h.changed <- struct{}{}:
			default:
			}
		}
	}()
	return h
}

func (h *history) record(ev *historypb.HistoryEvent) {
	h.mu.Lock()
	defer h.mu.Unlock()
	switch ev.GetEventType() {
	case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
		h.startedAt = ev.GetEventTime().AsTime()
	case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED, enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED,
		enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED, enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED,
		enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_TIMED_OUT, enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW:
		h.closedAt = ev.GetEventTime().AsTime()
	}
	if a := ev.GetActivityTaskScheduledEventAttributes(); a != nil {
		h.scheduled[ev.GetEventId()] = a.GetActivityId()
	}
	var sched int64
	switch {
	case ev.GetActivityTaskCompletedEventAttributes() != nil:
		a := ev.GetActivityTaskCompletedEventAttributes()
		sched = a.GetScheduledEventId()
		h.completions[h.scheduled[sched]] = a.GetIdentity()
	case ev.GetActivityTaskFailedEventAttributes() != nil:
		sched = ev.GetActivityTaskFailedEventAttributes().GetScheduledEventId()
	case ev.GetActivityTaskTimedOutEventAttributes() != nil:
		sched = ev.GetActivityTaskTimedOutEventAttributes().GetScheduledEventId()
	case ev.GetActivityTaskCanceledEventAttributes() != nil:
		sched = ev.GetActivityTaskCanceledEventAttributes().GetScheduledEventId()
	default:
		return
	}
	h.endedSteps[h.scheduled[sched]] = true
}

// ended reports whether the step's activity has ended, however.
func (h *history) ended(step string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.endedSteps[step]
}

// failure is why following the history stopped early, if it did.
func (h *history) failure() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.err
}

// open is how long the run was open, from its start to its close (0 if it
// has not closed).
func (h *history) open() time.Duration {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closedAt.IsZero() {
		return 0
	}
	return h.closedAt.Sub(h.startedAt)
}

// completedBy is the identity of the worker that completed the step.
func (h *history) completedBy(step string) (string, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	by, ok := h.completions[step]
	return by, ok
}
