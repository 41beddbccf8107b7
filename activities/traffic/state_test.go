//go:build linux

package traffic_test

import (
	"maps"
	"testing"

	"github.com/drctl/drctl/activities"
	"github.com/drctl/drctl/activities/traffic"
	"github.com/drctl/drctl/internal/haproxylab"
	"github.com/drctl/drctl/internal/testwait"
)

// TestObserveState: every action's Observe reports the mode of every
// server of the backends it names, the same on two reads of an unchanged
// HAProxy, and a shift changes it. Observe sends no set command.
func TestObserveState(t *testing.T) {
	both := haproxylab.Options{Backends: []string{"app", "api"}}
	tests := []struct {
		name   string
		action func(p *traffic.Provider) activities.Action
		with   map[string]any
		want   map[string]string
		shift  map[string]any
		after  map[string]string // the facts the shift changes
	}{
		{
			name:   "status of every backend",
			action: func(p *traffic.Provider) activities.Action { return traffic.Status{Provider: p} },
			with:   map[string]any{"target": "lb"},
			want:   map[string]string{"lb app/east1": "ready", "lb app/west1": "maint", "lb api/east1": "ready", "lb api/west1": "maint"},
			shift:  eastToWest,
			after:  map[string]string{"lb app/east1": "maint", "lb app/west1": "ready"},
		},
		{
			name:   "shift",
			action: func(p *traffic.Provider) activities.Action { return traffic.Shift{Provider: p} },
			with:   eastToWest,
			want:   map[string]string{"lb app/east1": "ready", "lb app/west1": "maint"},
			shift:  eastToWest,
			after:  map[string]string{"lb app/east1": "maint", "lb app/west1": "ready"},
		},
		{
			name:   "shift with weight and drain",
			action: func(p *traffic.Provider) activities.Action { return traffic.Shift{Provider: p} },
			with:   map[string]any{"target": "lb", "backends": []any{"app", "api"}, "to": []any{"west1"}, "from": []any{"east1"}, "mode": "drain", "weight": 10},
			want: map[string]string{
				"lb app/east1": "ready", "lb app/east1 weight": "1", "lb app/west1": "maint", "lb app/west1 weight": "1",
				"lb api/east1": "ready", "lb api/east1 weight": "1", "lb api/west1": "maint", "lb api/west1 weight": "1",
			},
			shift: map[string]any{"target": "lb", "backends": []any{"app", "api"}, "to": []any{"west1"}, "from": []any{"east1"}, "mode": "drain", "weight": 10},
			after: map[string]string{
				"lb app/east1": "drain", "lb app/west1": "ready", "lb app/west1 weight": "10",
				"lb api/east1": "drain", "lb api/west1": "ready", "lb api/west1 weight": "10",
			},
		},
		{
			// Before the shift that takes east1 out, drain's Observe reports
			// (it does not refuse: the shift is an earlier step).
			name:   "drain",
			action: func(p *traffic.Provider) activities.Action { return traffic.Drain{Provider: p} },
			with:   map[string]any{"target": "lb", "backend": "app", "servers": []any{"east1"}},
			want:   map[string]string{"lb app/east1": "ready", "lb app/west1": "maint"},
			shift:  eastToWest,
			after:  map[string]string{"lb app/east1": "maint", "lb app/west1": "ready"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := ctxT(t)
			f := newFixture(t, both)
			action := tc.action(f.p)
			observe := func() map[string]string {
				t.Helper()
				obs, err := action.Observe(ctx, f.req(tc.with))
				if err != nil {
					t.Fatal(err)
				}
				return obs.State
			}
			first, second := observe(), observe()
			if !maps.Equal(first, tc.want) {
				t.Fatalf("state %q,\nwant %q", first, tc.want)
			}
			if !maps.Equal(first, second) {
				t.Fatalf("state of an unchanged haproxy moved: %q, then %q", first, second)
			}
			if sent := f.rec.sets(); sent != nil {
				t.Fatalf("Observe sent %q", sent)
			}
			if _, err := (traffic.Shift{Provider: f.p}).Apply(ctx, f.req(tc.shift)); err != nil {
				t.Fatal(err)
			}
			want := maps.Clone(tc.want)
			maps.Copy(want, tc.after)
			if got := observe(); !maps.Equal(got, want) {
				t.Fatalf("state after the shift %q,\nwant %q", got, want)
			}
		})
	}
}

// TestObserveStateIgnoresHealth: a server whose site fails its health
// checks is down, but it is still in rotation as far as a drill is
// concerned; op-state flaps are not steady state.
func TestObserveStateIgnoresHealth(t *testing.T) {
	ctx := ctxT(t)
	f := newFixture(t, haproxylab.Options{HealthChecks: true, BothReady: true})
	status := traffic.Status{Provider: f.p}
	observe := func() map[string]string {
		t.Helper()
		obs, err := status.Observe(ctx, f.req(map[string]any{"target": "lb"}))
		if err != nil {
			t.Fatal(err)
		}
		return obs.State
	}
	before := observe()
	if want := map[string]string{"lb app/east1": "ready", "lb app/west1": "ready"}; !maps.Equal(before, want) {
		t.Fatalf("state %q, want %q", before, want)
	}
	f.lab.West.Fail(true)
	defer f.lab.West.Fail(false)
	testwait.For(t, "west1 to fail its health check", func() bool {
		sv, _ := f.state(t, ctx).Server("app", "west1")
		return !sv.Up()
	})
	if after := observe(); !maps.Equal(after, before) {
		t.Fatalf("a failing health check moved the state: %q, then %q", before, after)
	}
}
