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

// DrainName is the action's name in runbooks.
const DrainName = "traffic.drain"

// DefaultDrainDeadline bounds traffic.drain when neither its deadline input
// nor the step's timeout is shorter.
const DefaultDrainDeadline = 5 * time.Minute

// DrainProgress is the heartbeat detail of traffic.drain.
type DrainProgress struct {
	// Sessions is the total of current and queued sessions left on the servers.
	Sessions int `json:"sessions"`
	// PerServer maps "backend/server" to its sessions.
	PerServer map[string]int `json:"per_server"`
}

type drainInput struct {
	Target   string            `json:"target"`
	Backend  string            `json:"backend"`
	Backends []string          `json:"backends"`
	Servers  []string          `json:"servers"`
	Deadline runbooks.Duration `json:"deadline"`

	backends []string
}

// Drain is traffic.drain: wait until servers already taken out have no
// sessions left.
type Drain struct{ *Provider }

var _ activities.Action = Drain{}

// Spec implements activities.Action.
func (Drain) Spec() runbooks.ActionSpec {
	return runbooks.ActionSpec{
		Name:  DrainName,
		Reach: runbooks.ReachSite, // the runtime API is a unix socket on the load balancer\'s host
		Undo:  runbooks.UndoNotNeeded,
		Doc: "Wait until the named servers (already in maint or drain, e.g. by traffic.shift) have no current or queued sessions " +
			"(scur and qcur of `show stat`), heartbeating the count. Refuses a server that is still ready. Fails, without retry, " +
			"when sessions are left at the deadline.",
		Inputs: []runbooks.InputSpec{
			{Name: "target", Type: runbooks.TypeTarget, Kinds: []string{TargetKind}, Required: true, Doc: "the haproxy target"},
			{Name: "backend", Type: runbooks.TypeString, Doc: "the backend (or use backends)"},
			{Name: "backends", Type: runbooks.TypeList, Doc: "several backends"},
			{Name: "servers", Type: runbooks.TypeList, Required: true, Doc: "servers to wait for"},
			{Name: "deadline", Type: runbooks.TypeDuration, Doc: "give up when sessions are left after this long (default 5m, or the step's timeout when shorter)"},
		},
		Outputs: []string{"sessions_at_start", "waited"},
		Groups:  []runbooks.InputGroup{{Inputs: []string{"backend", "backends"}, Rule: runbooks.AtLeastOne}},
	}
}

func (a Drain) prepare(req activities.Request) (*drainInput, *runtime, error) {
	in := &drainInput{}
	if err := activities.Decode(a.Spec(), req.With, in); err != nil {
		return nil, nil, err
	}
	if in.backends = backendsOf(in.Backend, in.Backends); len(in.backends) == 0 {
		return nil, nil, activities.Permanentf("%s: name the backend (backend: app) or backends", DrainName)
	}
	if len(in.Servers) == 0 {
		return nil, nil, activities.Permanentf("%s: name the servers to wait for (servers: [east1])", DrainName)
	}
	if in.Deadline <= 0 {
		in.Deadline = runbooks.Duration(DefaultDrainDeadline)
	}
	r, err := a.runtime(req, in.Target)
	return in, r, err
}

// read counts the sessions left on the servers. ready lists those that
// still take new sessions: they would never drain, so Apply refuses them.
func (in *drainInput) read(ctx context.Context, r *runtime) (snap Snapshot, p DrainProgress, ready []string, err error) {
	if snap, err = r.snapshot(ctx, true); err != nil {
		return nil, DrainProgress{}, nil, err
	}
	if err := r.check(snap, in.backends, in.Servers); err != nil {
		return nil, DrainProgress{}, nil, err
	}
	p = DrainProgress{PerServer: map[string]int{}}
	for _, b := range in.backends {
		for _, name := range in.Servers {
			sv, _ := snap.Server(b, name)
			if sv.Mode() == ModeReady {
				ready = append(ready, sv.Ref())
			}
			n := max(sv.Sessions, 0) + max(sv.Queued, 0)
			p.PerServer[sv.Ref()] = n
			p.Sessions += n
		}
	}
	return snap, p, ready, nil
}

// refuse is Apply's error for servers that are still ready.
func (in *drainInput) refuse(r *runtime, ready []string) error {
	_, name, _ := strings.Cut(ready[0], "/")
	return activities.Permanentf("%s on %s: %s is ready and takes new sessions, so it would never drain; take it out first (traffic.shift from: [%s])", DrainName, r, ready[0], name)
}

func (p DrainProgress) String() string {
	var parts []string
	for ref, n := range p.PerServer {
		if n > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", ref, n))
		}
	}
	if len(parts) == 0 {
		return "no sessions"
	}
	slices.Sort(parts)
	return fmt.Sprintf("%d session(s): %s", p.Sessions, strings.Join(parts, ", "))
}

// Observe implements activities.Action.
func (a Drain) Observe(ctx context.Context, req activities.Request) (activities.Observation, error) {
	in, r, err := a.prepare(req)
	if err != nil {
		return activities.Observation{}, err
	}
	snap, p, ready, err := in.read(ctx, r)
	if err != nil {
		return activities.Observation{}, err
	}
	o := activities.Observation{Current: p.String(), State: drillState(in.Target, snap, in.backends, false)}
	if len(ready) > 0 {
		// Not an error: an earlier step (traffic.shift) may take them out.
		o.Current += fmt.Sprintf("; %s still ready: Apply refuses unless an earlier step takes them out", strings.Join(ready, ", "))
	}
	if p.Sessions > 0 {
		o.Changes = []string{fmt.Sprintf("wait up to %s for %s", in.Deadline, p)}
	}
	return o, nil
}

// Apply implements activities.Action. It changes nothing, so Changed is
// always false; it returns once no session is left.
func (a Drain) Apply(ctx context.Context, req activities.Request) (activities.Result, error) {
	in, r, err := a.prepare(req)
	if err != nil {
		return activities.Result{}, err
	}
	start := time.Now()
	deadline := start.Add(in.Deadline.D())
	first := -1
	for {
		_, p, ready, err := in.read(ctx, r)
		if err != nil {
			return activities.Result{}, err
		}
		if len(ready) > 0 {
			return activities.Result{}, in.refuse(r, ready)
		}
		if first < 0 {
			first = p.Sessions
		}
		activities.Heartbeat(ctx, p)
		if p.Sessions == 0 {
			waited := time.Since(start).Round(time.Millisecond)
			return activities.Result{
				Summary: fmt.Sprintf("%s: %s drained (%d session(s) at start, waited %s)", in.Target, strings.Join(refsAll(in.backends, in.Servers), ", "), first, waited),
				Outputs: map[string]any{"sessions_at_start": first, "waited": runbooks.Duration(waited).String()},
			}, nil
		}
		if time.Now().After(deadline) {
			return activities.Result{}, activities.Permanentf("%s on %s: %s left after %s (deadline); raise deadline or cut them", DrainName, r, p, in.Deadline)
		}
		if err := sleep(ctx, a.poll()); err != nil {
			return activities.Result{}, fmt.Errorf("%s on %s: %s left when the step ended: %w", DrainName, r, p, err)
		}
	}
}

func refsAll(backends, servers []string) []string {
	var out []string
	for _, b := range backends {
		for _, s := range servers {
			out = append(out, b+"/"+s)
		}
	}
	return out
}
