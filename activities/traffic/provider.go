package traffic

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/drctl/drctl/activities"
)

// TargetKind is the runbook target kind this provider serves.
const TargetKind = "haproxy"

// SocketAttribute is the target attribute holding the runtime API socket's
// path on the worker.
const SocketAttribute = "socket"

// Provider holds what every traffic action shares.
type Provider struct {
	// Runtime returns the runtime API behind a socket path. Nil: a Socket
	// with CommandTimeout. Tests wrap it to count the commands sent.
	Runtime func(socket string) Commander
	// CommandTimeout bounds one runtime API command. Default 5s.
	CommandTimeout time.Duration
	// Poll is the interval of the wait loops (servers coming up, sessions
	// draining). Default 100ms.
	Poll time.Duration
}

// Actions returns every traffic action on p.
func Actions(p *Provider) []activities.Action {
	return []activities.Action{Shift{Provider: p}, Drain{Provider: p}, Status{Provider: p}}
}

func (p *Provider) poll() time.Duration {
	if p != nil && p.Poll > 0 {
		return p.Poll
	}
	return 100 * time.Millisecond
}

// runtime returns the runtime API of the named target.
func (p *Provider) runtime(req activities.Request, target string) (*runtime, error) {
	t, ok := req.Target(target)
	if !ok {
		return nil, activities.Permanentf("no target %q in the runbook", target)
	}
	if t.Kind != TargetKind {
		return nil, activities.Permanentf("target %s is a %s, not a %s target", target, t.Kind, TargetKind)
	}
	socket := t.Attributes[SocketAttribute]
	if socket == "" {
		return nil, activities.Permanentf("target %s has no %q attribute; set it to the path of haproxy's runtime API socket on the worker (stats socket ... level admin)", target, SocketAttribute)
	}
	var c Commander
	switch {
	case p != nil && p.Runtime != nil:
		c = p.Runtime(socket)
	default:
		var timeout time.Duration
		if p != nil {
			timeout = p.CommandTimeout
		}
		c = Socket{Path: socket, Timeout: timeout}
	}
	return &runtime{target: target, socket: socket, c: c}, nil
}

// backendsOf merges the backend and backends inputs, keeping their order
// and dropping repeats.
func backendsOf(one string, many []string) []string {
	var out []string
	for _, b := range append([]string{one}, many...) {
		if b = strings.TrimSpace(b); b != "" && !slices.Contains(out, b) {
			out = append(out, b)
		}
	}
	return out
}

// check returns a permanent error naming the first backend or server that
// does not exist, and the ones that do.
func (r *runtime) check(snap Snapshot, backends []string, servers ...[]string) error {
	for _, b := range backends {
		if _, ok := snap[b]; !ok {
			return activities.Permanentf("haproxy %s has no backend %q (with servers); backends: %s", r, b, listOrNone(snap.Backends()))
		}
		for _, list := range servers {
			for _, s := range list {
				if _, ok := snap.Server(b, s); !ok {
					return activities.Permanentf("haproxy %s: backend %s has no server %q; its servers: %s", r, b, s, listOrNone(snap.serverNames(b)))
				}
			}
		}
	}
	return nil
}

func listOrNone(names []string) string {
	if len(names) == 0 {
		return "(none)"
	}
	return strings.Join(names, ", ")
}

// describe is one line per backend: "app: east1 ready up w1, west1 maint down w1".
func describe(snap Snapshot, backends []string) string {
	var parts []string
	for _, b := range backends {
		var ss []string
		for _, sv := range snap[b] {
			ss = append(ss, sv.Name+" "+sv.State())
		}
		parts = append(parts, b+": "+strings.Join(ss, ", "))
	}
	return strings.Join(parts, "; ")
}

// drillState is the servers of the backends as the facts a drill compares
// before and after (see activities.Observation.State): "<target>
// <backend>/<server>" is the server's mode, ready, drain or maint, which
// says whether it is in rotation. Operational state, health and sessions
// move on their own and are left out. With weights, "<target>
// <backend>/<server> weight" is its weight too, for the actions that set
// weights.
func drillState(target string, snap Snapshot, backends []string, weights bool) map[string]string {
	out := map[string]string{}
	for _, b := range backends {
		for _, sv := range snap[b] {
			key := target + " " + sv.Ref()
			out[key] = sv.Mode()
			if weights {
				out[key+" weight"] = strconv.Itoa(sv.Weight)
			}
		}
	}
	return out
}

// states maps backend -> server -> State(), for outputs.
func states(snap Snapshot, backends []string) map[string]any {
	out := make(map[string]any, len(backends))
	for _, b := range backends {
		m := map[string]any{}
		for _, sv := range snap[b] {
			m[sv.Name] = sv.State()
		}
		out[b] = m
	}
	return out
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func refs(backend string, servers []string) string {
	out := make([]string, len(servers))
	for i, s := range servers {
		out[i] = backend + "/" + s
	}
	return strings.Join(out, ", ")
}
