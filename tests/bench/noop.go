package main

import (
	"context"
	"slices"

	"github.com/drctl/drctl/activities"
	"github.com/drctl/drctl/runbooks"
	"github.com/drctl/drctl/worker"
)

// noopAction is the bench's own action: it does nothing and no I/O, but
// is not marked local, so every step of it is a real activity (a task
// through the server's matching service), the way a step of any action
// that reaches a system over the network runs. Set against the note rows
// it shows what a local activity saves.
const noopAction = "bench.noop"

type noop struct{}

var _ activities.Action = noop{}

func (noop) Spec() runbooks.ActionSpec {
	return runbooks.ActionSpec{
		Name:  noopAction,
		Doc:   "Do nothing, as an ordinary (not local) activity: the bench's activity step.",
		Undo:  runbooks.UndoNotNeeded,
		Reach: runbooks.ReachNetwork,
	}
}

func (noop) Observe(context.Context, activities.Request) (activities.Observation, error) {
	return activities.Observation{Current: "nothing to do"}, nil
}

func (noop) Apply(context.Context, activities.Request) (activities.Result, error) {
	return activities.Result{Changed: true, Summary: "did nothing"}, nil
}

// benchCatalog is the shipped catalog with the bench's action, the
// catalog of the worker startEnv starts.
type benchCatalog struct{ runbooks.Catalog }

var _ runbooks.Catalog = benchCatalog{}

func catalog() benchCatalog { return benchCatalog{worker.Catalog()} }

func (c benchCatalog) Lookup(action string) (runbooks.ActionSpec, bool) {
	if action == noopAction {
		return noop{}.Spec(), true
	}
	return c.Catalog.Lookup(action)
}

func (c benchCatalog) Names() []string {
	names := append(c.Catalog.Names(), noopAction)
	slices.Sort(names)
	return names
}
