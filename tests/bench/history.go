package main

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
)

// runShape is what a run's history says about how its steps ran: how many
// activities of the steps' action the server scheduled (and of anything
// else), how many local activities the worker ran (recorded as markers),
// how many workflow tasks and events it took.
// The table's "runs as" column comes from it rather than from what the
// tree is believed to do: note is an activity or a local activity
// depending on the build being measured.
type runShape struct {
	activities, other, local, workflowTasks, events int
	// otherTypes are the other activities' types.
	otherTypes []string
	// byType counts the events of each type.
	byType map[enumspb.EventType]int
}

// localActivityMarker is the marker the Go SDK records for a local activity.
const localActivityMarker = "LocalActivity"

func readShape(ctx context.Context, c client.Client, workflowID, runID, action string) (runShape, error) {
	s := runShape{byType: map[enumspb.EventType]int{}}
	it := c.GetWorkflowHistory(ctx, workflowID, runID, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		e, err := it.Next()
		if err != nil {
			return s, fmt.Errorf("history of %s: %w", workflowID, err)
		}
		s.events++
		s.byType[e.GetEventType()]++
		switch e.GetEventType() {
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
			if e.GetActivityTaskScheduledEventAttributes().GetActivityType().GetName() == action {
				s.activities++
			} else {
				s.other++
				if t := e.GetActivityTaskScheduledEventAttributes().GetActivityType().GetName(); !slices.Contains(s.otherTypes, t) {
					s.otherTypes = append(s.otherTypes, t)
				}
			}
		case enumspb.EVENT_TYPE_MARKER_RECORDED:
			if e.GetMarkerRecordedEventAttributes().GetMarkerName() == localActivityMarker {
				s.local++
			}
		case enumspb.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
			s.workflowTasks++
		}
	}
	return s, nil
}

// runsAs names how steps ran: "activity", "local activity" or both with
// their counts.
func (s runShape) runsAs() string {
	switch {
	case s.activities > 0 && s.local == 0:
		return "activity"
	case s.local > 0 && s.activities == 0:
		return "local activity"
	case s.local == 0 && s.activities == 0:
		return "in workflow"
	}
	return fmt.Sprintf("%d activities + %d local", s.activities, s.local)
}

// per is n per step, with one decimal.
func per(n, steps int) string { return fmt.Sprintf("%.1f", float64(n)/float64(steps)) }

// eventCounts lists the event types, most frequent first: "7
// WorkflowTaskScheduled, ...".
func (s runShape) eventCounts() string {
	types := slices.Collect(maps.Keys(s.byType))
	slices.SortFunc(types, func(a, b enumspb.EventType) int {
		if c := s.byType[b] - s.byType[a]; c != 0 {
			return c
		}
		return int(a - b)
	})
	parts := make([]string, len(types))
	for i, t := range types {
		parts[i] = fmt.Sprintf("%d %s", s.byType[t], strings.TrimPrefix(t.String(), "EVENT_TYPE_"))
	}
	return strings.Join(parts, ", ")
}
