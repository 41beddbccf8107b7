//go:build linux

package dns_test

import (
	"maps"
	"testing"

	"github.com/drctl/drctl/activities"
	"github.com/drctl/drctl/activities/dns"
)

// TestObserveState: every action's Observe reports its RRset as the fact a
// drill compares, the same on two reads of an unchanged zone, and a change
// to the RRset on the server changes it. Each row has an RRset of its own.
func TestObserveState(t *testing.T) {
	l := newLab(t)
	ctx := ctxT(t)
	set := func(with map[string]any) func(t *testing.T) {
		return func(t *testing.T) {
			t.Helper()
			if _, err := (dns.Set{Provider: l.p}).Apply(ctx, l.req(with)); err != nil {
				t.Fatal(err)
			}
		}
	}
	tests := []struct {
		name   string
		action activities.Action
		with   map[string]any
		key    string
		want   string
		change func(t *testing.T)
		after  string
	}{
		{
			"set", dns.Set{Provider: l.p}, map[string]any{"name": "db-east", "type": "A", "values": []any{"192.0.2.99"}},
			"zone db-east.drctl.test. A", "192.0.2.11 ttl 300s",
			set(map[string]any{"name": "db-east", "type": "A", "values": []any{"192.0.2.99"}}), "192.0.2.99 ttl 60s",
		},
		{
			"set_ttl", dns.SetTTL{Provider: l.p}, map[string]any{"name": "www", "type": "A", "ttl": "30s"},
			"zone www.drctl.test. A", "192.0.2.1, 192.0.2.2 ttl 300s",
			func(t *testing.T) {
				if _, err := (dns.SetTTL{Provider: l.p}).Apply(ctx, l.req(map[string]any{"name": "www", "type": "A", "ttl": "30s"})); err != nil {
					t.Fatal(err)
				}
			}, "192.0.2.1, 192.0.2.2 ttl 30s",
		},
		{
			"check cname", dns.Check{Provider: l.p}, map[string]any{"name": "db", "type": "CNAME", "expect": []any{"db-east"}},
			"zone db.drctl.test. CNAME", "db-east.drctl.test. ttl 300s",
			set(map[string]any{"name": "db", "type": "CNAME", "values": []any{"db-west"}, "ttl": "5m"}), "db-west.drctl.test. ttl 300s",
		},
		{
			"check absent", dns.Check{Provider: l.p}, map[string]any{"name": "gone", "type": "A", "expect": []any{}},
			"zone gone.drctl.test. A", "absent",
			set(map[string]any{"name": "gone", "type": "A", "values": []any{"192.0.2.7"}}), "192.0.2.7 ttl 60s",
		},
		{
			"set removes txt", dns.Set{Provider: l.p}, map[string]any{"name": "@", "type": "TXT", "values": []any{}},
			"zone drctl.test. TXT", "owner=drctl ttl 300s",
			set(map[string]any{"name": "@", "type": "TXT", "values": []any{}}), "absent",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			observe := func() map[string]string {
				t.Helper()
				obs, err := tc.action.Observe(ctx, l.req(maps.Clone(tc.with)))
				if err != nil {
					t.Fatal(err)
				}
				return obs.State
			}
			first, second := observe(), observe()
			if want := map[string]string{tc.key: tc.want}; !maps.Equal(first, want) {
				t.Fatalf("state %q, want %q", first, want)
			}
			if !maps.Equal(first, second) {
				t.Fatalf("state of an unchanged zone moved: %q, then %q", first, second)
			}
			tc.change(t)
			if got, want := observe(), map[string]string{tc.key: tc.after}; !maps.Equal(got, want) {
				t.Fatalf("state after the change %q, want %q", got, want)
			}
		})
	}
	// The same RRset is the same fact whichever action reads it, so a
	// drill's facts from several steps agree.
	check, err := (dns.Check{Provider: l.p}).Observe(ctx, l.req(map[string]any{"name": "www", "type": "A"}))
	if err != nil {
		t.Fatal(err)
	}
	setTTL, err := (dns.SetTTL{Provider: l.p}).Observe(ctx, l.req(map[string]any{"name": "WWW.drctl.test.", "type": "a", "ttl": "1h"}))
	if err != nil || !maps.Equal(check.State, setTTL.State) {
		t.Fatalf("dns.check state %q, dns.set_ttl state %q (%v); want the same", check.State, setTTL.State, err)
	}
}
