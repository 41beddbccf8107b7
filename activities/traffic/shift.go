package traffic

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/drctl/drctl/activities"
	"github.com/drctl/drctl/runbooks"
)

// ShiftName is the action's name in runbooks.
const ShiftName = "traffic.shift"

// DefaultUpTimeout is how long traffic.shift waits for its to-servers to
// come up before it gives up, leaving the from-servers serving.
const DefaultUpTimeout = 30 * time.Second

// MaxWeight is the largest weight HAProxy accepts.
const MaxWeight = 256

type shiftInput struct {
	Target    string            `json:"target"`
	Backend   string            `json:"backend"`
	Backends  []string          `json:"backends"`
	To        []string          `json:"to"`
	From      []string          `json:"from"`
	Mode      string            `json:"mode"`
	Weight    *int              `json:"weight"`
	UpTimeout runbooks.Duration `json:"up_timeout"`

	backends []string
}

func (in *shiftInput) validate() error {
	in.backends = backendsOf(in.Backend, in.Backends)
	if len(in.backends) == 0 {
		return activities.Permanentf("%s: name the backend (backend: app) or backends (backends: [app, api])", ShiftName)
	}
	if len(in.To) == 0 && len(in.From) == 0 {
		return activities.Permanentf("%s: nothing to shift; name the servers to make ready (to:) and/or to take out (from:)", ShiftName)
	}
	for _, s := range in.To {
		if slices.Contains(in.From, s) {
			return activities.Permanentf("%s: server %q is in both to and from", ShiftName, s)
		}
	}
	switch in.Mode {
	case "":
		in.Mode = ModeMaint
	case ModeMaint, ModeDrain:
	default:
		return activities.Permanentf("%s: mode %q is not %s or %s", ShiftName, in.Mode, ModeMaint, ModeDrain)
	}
	if in.Weight != nil && (*in.Weight < 1 || *in.Weight > MaxWeight) {
		return activities.Permanentf("%s: weight %d is not between 1 and %d (take a server out with from:, not with weight 0)", ShiftName, *in.Weight, MaxWeight)
	}
	if in.UpTimeout <= 0 {
		in.UpTimeout = runbooks.Duration(DefaultUpTimeout)
	}
	return nil
}

// toHolds: a to-server is ready, at the requested weight.
func (in *shiftInput) toHolds(sv Server) bool {
	return sv.Mode() == ModeReady && (in.Weight == nil || sv.Weight == *in.Weight)
}

// fromHolds: a from-server is out in the requested mode. A server forced
// into maintenance also satisfies mode drain: it takes even less traffic,
// and moving it to drain would let persistent clients back in.
func (in *shiftInput) fromHolds(sv Server) bool {
	if in.Mode == ModeMaint {
		return sv.Admin&AdminForcedMaint != 0
	}
	return sv.Admin&(AdminForcedMaint|AdminForcedDrain) != 0
}

// upCommands are the commands that make the to-servers ready, weight
// first so a server comes up at the weight asked for.
func (in *shiftInput) upCommands(snap Snapshot) ([]string, error) {
	var cmds []string
	for _, b := range in.backends {
		for _, name := range in.To {
			sv, _ := snap.Server(b, name)
			if sv.Admin&(AdminInheritedMaint|AdminInheritedDrain) != 0 {
				return nil, activities.Permanentf("%s: %s inherits %s from the server it tracks; `set server` cannot make it ready, make the tracked server ready", ShiftName, sv.Ref(), sv.Mode())
			}
			if in.Weight != nil && sv.Weight != *in.Weight {
				cmds = append(cmds, fmt.Sprintf("set server %s weight %d", sv.Ref(), *in.Weight))
			}
			if sv.Mode() != ModeReady {
				cmds = append(cmds, fmt.Sprintf("set server %s state ready", sv.Ref()))
			}
		}
	}
	return cmds, nil
}

func (in *shiftInput) outCommands(snap Snapshot) []string {
	var cmds []string
	for _, b := range in.backends {
		for _, name := range in.From {
			if sv, _ := snap.Server(b, name); !in.fromHolds(sv) {
				cmds = append(cmds, fmt.Sprintf("set server %s state %s", sv.Ref(), in.Mode))
			}
		}
	}
	return cmds
}

// notServing lists the to-servers that are not ready, weighted and up.
func (in *shiftInput) notServing(snap Snapshot) []Server {
	var out []Server
	for _, b := range in.backends {
		for _, name := range in.To {
			if sv, _ := snap.Server(b, name); !in.toHolds(sv) || !sv.Up() {
				out = append(out, sv)
			}
		}
	}
	return out
}

// Shift is traffic.shift: make servers ready in one or more backends, then
// take others out (maint or drain), keeping the service available.
type Shift struct{ *Provider }

var _ activities.Action = Shift{}

// Spec implements activities.Action.
func (Shift) Spec() runbooks.ActionSpec {
	return runbooks.ActionSpec{
		Name:  ShiftName,
		Reach: runbooks.ReachSite, // the runtime API is a unix socket on the load balancer\'s host
		Undo:  runbooks.UndoByCompensation,
		Doc: "Move traffic between HAProxy servers over the runtime API: in every backend named, make the `to` servers ready " +
			"(at `weight` when given) and wait until HAProxy reports them up, then put the `from` servers in `mode` (maint, the default, " +
			"or drain; a server in maint already counts as drained). Sends nothing when the state already holds; verifies by reading it back. " +
			"Existing sessions on the from-servers are not cut: wait for them with traffic.drain.",
		Inputs: []runbooks.InputSpec{
			{Name: "target", Type: runbooks.TypeTarget, Kinds: []string{TargetKind}, Required: true, Doc: "the haproxy target (attribute socket: the runtime API socket path on the worker)"},
			{Name: "backend", Type: runbooks.TypeString, Doc: "the backend (or use backends)"},
			{Name: "backends", Type: runbooks.TypeList, Doc: "several backends, each with the same server names"},
			{Name: "to", Type: runbooks.TypeList, Doc: "servers to make ready"},
			{Name: "from", Type: runbooks.TypeList, Doc: "servers to take out"},
			{Name: "mode", Type: runbooks.TypeString, Doc: "how the from-servers go out: maint (default) or drain"},
			{Name: "weight", Type: runbooks.TypeInt, Doc: "weight (1-256) for the to-servers; default: leave as is"},
			{Name: "up_timeout", Type: runbooks.TypeDuration, Doc: "how long to wait for the to-servers to come up (default 30s)"},
		},
		Outputs: []string{"before", "after", "commands"},
		Groups: []runbooks.InputGroup{
			{Inputs: []string{"backend", "backends"}, Rule: runbooks.AtLeastOne},
			{Inputs: []string{"to", "from"}, Rule: runbooks.AtLeastOne},
		},
	}
}

func (a Shift) prepare(ctx context.Context, req activities.Request) (*shiftInput, *runtime, Snapshot, error) {
	in := &shiftInput{}
	if err := activities.Decode(a.Spec(), req.With, in); err != nil {
		return nil, nil, nil, err
	}
	if err := in.validate(); err != nil {
		return nil, nil, nil, err
	}
	r, err := a.runtime(req, in.Target)
	if err != nil {
		return nil, nil, nil, err
	}
	snap, err := r.snapshot(ctx, false)
	if err != nil {
		return nil, nil, nil, err
	}
	if err := r.check(snap, in.backends, in.To, in.From); err != nil {
		return nil, nil, nil, err
	}
	if err := in.keepsServing(snap); err != nil {
		return nil, nil, nil, err
	}
	return in, r, snap, nil
}

// keepsServing refuses a shift that would leave a backend with no server
// in ready mode: taking servers out without bringing any in is an outage,
// not a failover.
func (in *shiftInput) keepsServing(snap Snapshot) error {
	out := map[string]bool{}
	for _, f := range in.From {
		out[f] = true
	}
	for _, b := range in.backends {
		serving := len(in.To) > 0
		for _, srv := range snap[b] {
			if !out[srv.Name] && srv.Mode() == ModeReady {
				serving = true
			}
		}
		if !serving {
			return activities.Permanentf("shifting %s would leave backend %s with no server in ready mode; name the servers to bring in with to:", in.Target, b)
		}
	}
	return nil
}

// Observe implements activities.Action.
func (a Shift) Observe(ctx context.Context, req activities.Request) (activities.Observation, error) {
	in, _, snap, err := a.prepare(ctx, req)
	if err != nil {
		return activities.Observation{}, err
	}
	up, err := in.upCommands(snap)
	if err != nil {
		return activities.Observation{}, err
	}
	o := activities.Observation{Current: describe(snap, in.backends), State: drillState(in.Target, snap, in.backends, in.Weight != nil)}
	o.Changes = append(o.Changes, up...)
	if len(up) > 0 || len(in.notServing(snap)) > 0 {
		var names []string
		for _, b := range in.backends {
			names = append(names, refs(b, in.To))
		}
		o.Changes = append(o.Changes, "wait until "+strings.Join(names, ", ")+" are up")
	}
	o.Changes = append(o.Changes, in.outCommands(snap)...)
	return o, nil
}

// Apply implements activities.Action.
func (a Shift) Apply(ctx context.Context, req activities.Request) (activities.Result, error) {
	in, r, before, err := a.prepare(ctx, req)
	if err != nil {
		return activities.Result{}, err
	}
	up, err := in.upCommands(before)
	if err != nil {
		return activities.Result{}, err
	}
	sent := 0
	for _, cmd := range up {
		if err := r.set(ctx, cmd); err != nil {
			return activities.Result{}, err
		}
		sent++
	}
	snap := before
	if len(up) > 0 || len(in.notServing(before)) > 0 {
		if snap, err = a.waitUp(ctx, r, in); err != nil {
			return activities.Result{}, err
		}
	}
	// The from-commands come from the latest read: a retry after a crash
	// between the two phases sends only what is still missing.
	for _, cmd := range in.outCommands(snap) {
		if err := r.set(ctx, cmd); err != nil {
			return activities.Result{}, err
		}
		sent++
	}
	after, err := r.snapshot(ctx, true)
	if err != nil {
		return activities.Result{}, err
	}
	if err := in.verify(r, after); err != nil {
		return activities.Result{}, err
	}
	res := activities.Result{
		Changed: sent > 0,
		Outputs: map[string]any{"before": states(before, in.backends), "after": states(after, in.backends), "commands": sent},
	}
	if sent == 0 {
		res.Summary = fmt.Sprintf("%s: already shifted (%s)", in.Target, describe(after, in.backends))
	} else {
		res.Summary = fmt.Sprintf("%s: %d command(s); %s", in.Target, sent, transitions(before, after, in))
	}
	return res, nil
}

// waitUp polls until every to-server is ready, weighted and up, or the
// up-timeout ends; the error is retryable and says the from-servers were
// left serving.
func (a Shift) waitUp(ctx context.Context, r *runtime, in *shiftInput) (Snapshot, error) {
	deadline := time.Now().Add(in.UpTimeout.D())
	for {
		snap, err := r.snapshot(ctx, false)
		if err != nil {
			return nil, err
		}
		waiting := in.notServing(snap)
		if len(waiting) == 0 {
			return snap, nil
		}
		if time.Now().After(deadline) {
			var ss []string
			for _, sv := range waiting {
				ss = append(ss, sv.Ref()+" "+sv.State())
			}
			return nil, fmt.Errorf("%s on %s: %s not serving after %s (health checks failing?); the from-servers were left in service",
				ShiftName, r, strings.Join(ss, ", "), in.UpTimeout)
		}
		if err := sleep(ctx, a.poll()); err != nil {
			return nil, err
		}
	}
}

// verify checks the postcondition on a fresh read.
func (in *shiftInput) verify(r *runtime, snap Snapshot) error {
	var bad []string
	for _, sv := range in.notServing(snap) {
		bad = append(bad, sv.Ref()+" is "+sv.State()+", want ready up")
	}
	for _, b := range in.backends {
		for _, name := range in.From {
			if sv, _ := snap.Server(b, name); !in.fromHolds(sv) {
				bad = append(bad, sv.Ref()+" is "+sv.State()+", want "+in.Mode)
			}
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("%s on %s: not verified: %s", ShiftName, r, strings.Join(bad, "; "))
	}
	return nil
}

// transitions says what changed for the named servers: "app/west1 maint down w1 -> ready up w1".
func transitions(before, after Snapshot, in *shiftInput) string {
	var out []string
	for _, b := range in.backends {
		for _, name := range append(slices.Clone(in.To), in.From...) {
			x, _ := before.Server(b, name)
			y, _ := after.Server(b, name)
			if x.Mode() != y.Mode() || x.Weight != y.Weight || x.Op != y.Op {
				out = append(out, fmt.Sprintf("%s %s %s w%d -> %s %s w%d", y.Ref(), x.Mode(), x.Op, x.Weight, y.Mode(), y.Op, y.Weight))
			}
		}
	}
	if len(out) == 0 {
		return "no state change seen"
	}
	return strings.Join(out, ", ")
}
