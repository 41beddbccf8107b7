package postgres_test

import (
	"maps"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/drctl/drctl/activities"
	"github.com/drctl/drctl/activities/postgres"
)

// facts is what a drill sees of one node.
type facts struct{ role, fenced, upstream string }

func (f facts) add(state map[string]string, target string) {
	state[target+" role"], state[target+" fenced"], state[target+" upstream"] = f.role, f.fenced, f.upstream
}

// TestObserveState walks a real pair through a switchover — fence east,
// promote west, rejoin east as west's standby — and checks at every stage
// that every action's Observe reports the facts of exactly the nodes it
// reads, the same on two reads of the unchanged pair, and that each step
// moves the facts it should.
func TestObserveState(t *testing.T) {
	ctx := ctxT(t)
	l := newLab(t)
	rejoinWith := map[string]any{"target": "east", "source": "west", "data_dir": l.east.DataDir, "start_options": l.east.StartOptions(), "replication": "west-replication"}
	actions := []struct {
		name   string
		action activities.Action
		with   map[string]any
		reads  []string
	}{
		{"status", postgres.Status{Provider: l.p}, map[string]any{"target": "east"}, []string{"east"}},
		{"fence", postgres.Fence{Provider: l.p}, map[string]any{"target": "east"}, []string{"east"}},
		{"unfence", postgres.Unfence{Provider: l.p}, map[string]any{"target": "east"}, []string{"east", "west"}},
		{"unfence forced", postgres.Unfence{Provider: l.p}, map[string]any{"target": "east", "force": true}, []string{"east"}},
		{"wait_caught_up", postgres.WaitCaughtUp{Provider: l.p}, map[string]any{"primary": "east", "standby": "west"}, []string{"east", "west"}},
		{"promote", postgres.Promote{Provider: l.p}, map[string]any{"target": "west", "old_primary": "east"}, []string{"east", "west"}},
		{"rejoin", postgres.Rejoin{Provider: l.p}, rejoinWith, []string{"east", "west"}},
	}
	stages := []struct {
		name       string
		step       func(t *testing.T)
		east, west facts
	}{
		{"initial", func(*testing.T) {}, facts{"primary", "false", "none"}, facts{"standby", "false", "east"}},
		{"east fenced", func(t *testing.T) {
			apply(t, ctx, postgres.Fence{Provider: l.p}, l.req("fence", map[string]any{"target": "east"}))
		}, facts{"primary", "true", "none"}, facts{"standby", "false", "east"}},
		{"west promoted", func(t *testing.T) {
			apply(t, ctx, postgres.WaitCaughtUp{Provider: l.p}, l.req("catch-up", map[string]any{"primary": "east", "standby": "west"}))
			apply(t, ctx, postgres.Promote{Provider: l.p}, l.req("promote", map[string]any{"target": "west", "old_primary": "east"}))
		}, facts{"primary", "true", "none"}, facts{"primary", "false", "none"}},
		// pg_rewind copies the source's pg_hba.conf, so the rejoined node
		// is no longer fenced.
		{"east rejoined", func(t *testing.T) {
			apply(t, ctx, postgres.Rejoin{Provider: l.p}, l.req("rejoin", rejoinWith))
		}, facts{"standby", "false", "west"}, facts{"primary", "false", "none"}},
	}
	for _, stage := range stages {
		stage.step(t)
		world := map[string]facts{"east": stage.east, "west": stage.west}
		for _, a := range actions {
			want := map[string]string{}
			for _, n := range a.reads {
				world[n].add(want, n)
			}
			var first map[string]string
			for i := range 2 {
				obs, err := a.action.Observe(ctx, l.req(a.name, maps.Clone(a.with)))
				if err != nil {
					t.Fatalf("%s: %s Observe: %v", stage.name, a.name, err)
				}
				if i == 0 {
					first = obs.State
				} else if !maps.Equal(first, obs.State) {
					t.Errorf("%s: %s state of an unchanged pair moved: %q, then %q", stage.name, a.name, first, obs.State)
				}
			}
			if !maps.Equal(first, want) {
				t.Errorf("%s: %s state %q,\nwant %q", stage.name, a.name, first, want)
			}
		}
	}
}

// TestObserveStateUnreachableAndUnnamed: a node that cannot be reached is
// a fact, not an error, where the action tolerates it (promote's old
// primary); an upstream no target names is its address.
func TestObserveStateUnreachableAndUnnamed(t *testing.T) {
	ctx := ctxT(t)
	l := newLab(t)

	dsns := maps.Clone(l.dsns)
	dsns["east"] = "host=127.0.0.1 port=1 user=drctl_admin password=x dbname=postgres sslmode=disable"
	down := &postgres.Provider{Secrets: mapSecrets(dsns), ConnectTimeout: time.Second}
	obs, err := postgres.Promote{Provider: down}.Observe(ctx, l.req("promote", map[string]any{"target": "west", "old_primary": "east", "old_primary_dead": true}))
	if err != nil {
		t.Fatal(err)
	}
	// west streams from the real east, whose address no target has now.
	want := map[string]string{
		"east role": "unreachable", "east fenced": "unknown", "east upstream": "unknown",
		"west role": "standby", "west fenced": "false", "west upstream": net.JoinHostPort(l.east.Host, strconv.Itoa(l.east.Port)),
	}
	if !maps.Equal(obs.State, want) {
		t.Fatalf("state %q,\nwant %q", obs.State, want)
	}

	req := l.req("status", map[string]any{"target": "west"})
	req.Targets = l.targets[1:] // no east
	obs, err = postgres.Status{Provider: l.p}.Observe(ctx, req)
	if err != nil || obs.State["west upstream"] != want["west upstream"] {
		t.Fatalf("status of west without an east target: %q %v; want upstream %s", obs.State, err, want["west upstream"])
	}
}
