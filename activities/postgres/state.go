package postgres

import (
	"context"
	"net"
	"slices"
	"strconv"

	"github.com/drctl/drctl/activities"
)

// Facts of a node beside RolePrimary and RoleStandby (see addFacts).
const (
	// RoleUnreachable is the role of a node that could not be reached.
	RoleUnreachable = "unreachable"
	// factUnknown is a fact of an unreachable node.
	factUnknown = "unknown"
	// noUpstream is the upstream of a node that streams from none: a
	// primary, or a standby whose WAL receiver is not streaming.
	noUpstream = "none"
)

// addFacts adds a node's steady state to state, as the facts a drill
// compares before and after (see activities.Observation.State):
//
//	"<target> role"     primary, standby or unreachable
//	"<target> fenced"   true or false: pg_hba.conf holds drctl's fence
//	"<target> upstream" the runbook's name of the node it streams from, its
//	                    host:port when no target has that address, or none
//
// s nil means the node could not be reached; its fence and upstream are
// then unknown. Timelines, LSNs, lag and sessions move on their own and
// are never facts.
func (p *Provider) addFacts(state map[string]string, req activities.Request, target string, s *NodeStatus) {
	if s == nil {
		state[target+" role"] = RoleUnreachable
		state[target+" fenced"] = factUnknown
		state[target+" upstream"] = factUnknown
		return
	}
	state[target+" role"] = s.Role
	state[target+" fenced"] = strconv.FormatBool(s.Fenced)
	state[target+" upstream"] = p.upstreamName(req, s.Upstream)
}

// measures is a standby's replay lag for the readiness evaluation (see
// activities.Observation.Measures); none for a primary.
func measures(target string, s *NodeStatus) map[string]float64 {
	if s == nil || s.Role != RoleStandby {
		return nil
	}
	return map[string]float64{target + " " + activities.MeasureReplayLag: s.ReplayLag().Seconds()}
}

// addProbed reads a node and adds its facts; a node that cannot be reached
// is a fact (unreachable), not an error.
func (p *Provider) addProbed(ctx context.Context, state map[string]string, req activities.Request, target string) error {
	s, err := p.probe(ctx, req, target)
	if err != nil {
		return err
	}
	p.addFacts(state, req, target, s)
	return nil
}

// upstreamName is the name of the postgres target whose DSN has the
// address addr (host:port), the first by name when several do; addr
// itself when none does; noUpstream when addr is empty. A target whose DSN
// cannot be read is not a match.
func (p *Provider) upstreamName(req activities.Request, addr string) string {
	if addr == "" {
		return noUpstream
	}
	var names []string
	for _, t := range req.Targets {
		if t.Kind == TargetKind {
			names = append(names, t.Name)
		}
	}
	slices.Sort(names)
	for _, name := range names {
		cfg, err := p.dsnConfig(req, name)
		if err == nil && net.JoinHostPort(cfg.Host, strconv.Itoa(int(cfg.Port))) == addr {
			return name
		}
	}
	return addr
}
