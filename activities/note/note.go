// Package note implements the note action: a line for the run's report and
// the worker's log ("announce in the incident channel", "ticket opened").
// It changes nothing outside drctl, so it is trivially idempotent.
package note

import (
	"context"

	"go.temporal.io/sdk/activity"

	"github.com/drctl/drctl/activities"
	"github.com/drctl/drctl/runbooks"
)

// Name is the action's name in runbooks.
const Name = "note"

// Note is the note action.
type Note struct{}

var _ activities.Action = Note{}

// Spec implements activities.Action.
func (Note) Spec() runbooks.ActionSpec {
	return runbooks.ActionSpec{
		Name:    Name,
		Doc:     "Record a message in the run report and the worker log.",
		Inputs:  []runbooks.InputSpec{{Name: "message", Type: runbooks.TypeString, Required: true, Doc: "text to record"}},
		Outputs: []string{"message"},
		Undo:    runbooks.UndoNotNeeded, // a note records; it changes nothing
		Local:   true,                   // and does no I/O: no round trip through the server
	}
}

type input struct {
	Message string `json:"message"`
}

// Observe implements activities.Action.
func (n Note) Observe(_ context.Context, req activities.Request) (activities.Observation, error) {
	var in input
	if err := activities.Decode(n.Spec(), req.With, &in); err != nil {
		return activities.Observation{}, err
	}
	return activities.Observation{Current: "would record: " + in.Message}, nil
}

// Apply implements activities.Action.
func (n Note) Apply(ctx context.Context, req activities.Request) (activities.Result, error) {
	var in input
	if err := activities.Decode(n.Spec(), req.With, &in); err != nil {
		return activities.Result{}, err
	}
	if activity.IsActivity(ctx) {
		activity.GetLogger(ctx).Info("note", "step", req.Step, "message", in.Message)
	}
	return activities.Result{Changed: true, Summary: in.Message, Outputs: map[string]any{"message": in.Message}}, nil
}
