package traffic

import (
	"context"
	"fmt"
	"strings"

	"github.com/drctl/drctl/activities"
	"github.com/drctl/drctl/runbooks"
)

// StatusName is the action's name in runbooks.
const StatusName = "traffic.status"

type statusInput struct {
	Target      string   `json:"target"`
	Backend     string   `json:"backend"`
	Backends    []string `json:"backends"`
	ExpectReady []string `json:"expect_ready"`
}

// Status is traffic.status: every server's mode, operational state, weight
// and sessions per backend; with expect_ready it is a gate.
type Status struct{ *Provider }

var _ activities.Action = Status{}

// Spec implements activities.Action.
func (Status) Spec() runbooks.ActionSpec {
	return runbooks.ActionSpec{
		Name:  StatusName,
		Reach: runbooks.ReachSite, // the runtime API is a unix socket on the load balancer\'s host
		Undo:  runbooks.UndoNotNeeded,
		Doc: "Report each server's mode (ready, drain, maint), operational state (up, down, ...), weight and sessions per backend. " +
			"With expect_ready, fail (retryably) unless those servers are ready and up in every backend named.",
		Inputs: []runbooks.InputSpec{
			{Name: "target", Type: runbooks.TypeTarget, Kinds: []string{TargetKind}, Required: true, Doc: "the haproxy target"},
			{Name: "backend", Type: runbooks.TypeString, Doc: "the backend; default: every backend"},
			{Name: "backends", Type: runbooks.TypeList, Doc: "several backends; default: every backend"},
			{Name: "expect_ready", Type: runbooks.TypeList, Doc: "servers that must be ready and up in each backend named (every backend when none is)"},
		},
		Outputs: []string{"backends", "ready"},
	}
}

func (a Status) read(ctx context.Context, req activities.Request) (*statusInput, *runtime, Snapshot, []string, error) {
	in := &statusInput{}
	if err := activities.Decode(a.Spec(), req.With, in); err != nil {
		return nil, nil, nil, nil, err
	}
	r, err := a.runtime(req, in.Target)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	snap, err := r.snapshot(ctx, true)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	backends := backendsOf(in.Backend, in.Backends)
	if len(backends) == 0 {
		backends = snap.Backends()
	}
	if err := r.check(snap, backends, in.ExpectReady); err != nil {
		return nil, nil, nil, nil, err
	}
	return in, r, snap, backends, nil
}

// Observe implements activities.Action.
func (a Status) Observe(ctx context.Context, req activities.Request) (activities.Observation, error) {
	in, _, snap, backends, err := a.read(ctx, req)
	if err != nil {
		return activities.Observation{}, err
	}
	return activities.Observation{Current: describe(snap, backends), State: drillState(in.Target, snap, backends, false)}, nil
}

// Apply implements activities.Action; it changes nothing.
func (a Status) Apply(ctx context.Context, req activities.Request) (activities.Result, error) {
	in, r, snap, backends, err := a.read(ctx, req)
	if err != nil {
		return activities.Result{}, err
	}
	var notReady []string
	for _, b := range backends {
		for _, name := range in.ExpectReady {
			if sv, _ := snap.Server(b, name); sv.Mode() != ModeReady || !sv.Up() {
				notReady = append(notReady, sv.Ref()+" is "+sv.State())
			}
		}
	}
	if len(notReady) > 0 {
		return activities.Result{}, fmt.Errorf("%s on %s: expected ready and up: %s", StatusName, r, strings.Join(notReady, "; "))
	}
	out := map[string]any{}
	var ready []string
	for _, b := range backends {
		servers := map[string]any{}
		for _, sv := range snap[b] {
			servers[sv.Name] = map[string]any{
				"mode": sv.Mode(), "op": sv.Op.String(), "up": sv.Up(), "weight": sv.Weight,
				"sessions": sv.Sessions, "queued": sv.Queued, "status": sv.Status,
			}
			if sv.Mode() == ModeReady && sv.Up() {
				ready = append(ready, sv.Ref())
			}
		}
		out[b] = servers
	}
	return activities.Result{
		Summary: in.Target + ": " + describe(snap, backends),
		Outputs: map[string]any{"backends": out, "ready": ready},
	}, nil
}
