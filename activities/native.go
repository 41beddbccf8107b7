package activities

import "github.com/drctl/drctl/runbooks"

// ActionWait is the durable timer, run by the workflow itself (no activity):
// it survives worker restarts and costs nothing while it waits.
const ActionWait = "wait"

// NativeSpecs are the actions the interpreter workflow runs itself.
func NativeSpecs() []runbooks.ActionSpec {
	return []runbooks.ActionSpec{{
		Name: ActionWait,
		Undo: runbooks.UndoNotNeeded,
		Doc:  "Wait for a duration on a durable timer; survives worker restarts.",
		Inputs: []runbooks.InputSpec{
			{Name: "duration", Type: runbooks.TypeDuration, Required: true, Doc: "how long to wait, e.g. 30s"},
		},
	}}
}
