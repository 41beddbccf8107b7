//go:build linux

package dns_test

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/drctl/drctl/activities"
	"github.com/drctl/drctl/activities/dns"
)

// TestAsActivities runs the actions as a worker does: registered through
// the registry, in a Temporal activity environment.
func TestAsActivities(t *testing.T) {
	l := newLab(t)
	reg := activities.NewRegistry()
	if err := reg.Add(dns.Actions(l.p)...); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{dns.SetAction, dns.CheckAction, dns.SetTTLAction} {
		if _, ok := reg.Lookup(name); !ok {
			t.Errorf("%s not registered", name)
		}
	}
	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	reg.RegisterActivities(env)

	// A retry of a step whose first attempt changed the RRset and died
	// before reporting: nothing is sent, and changed_from is still what the
	// RRset was before the step.
	if _, err := (dns.Set{Provider: l.p}).Apply(ctxT(t), l.req(map[string]any{"name": "www", "type": "A", "values": []any{"192.0.2.50"}})); err != nil {
		t.Fatal(err)
	}
	sent := l.updates.Load()
	env.SetHeartbeatDetails(map[string]any{"before": map[string]any{
		"name": "www.drctl.test.", "type": "A", "ttl": int64(300 * time.Second), "values": []string{"192.0.2.1", "192.0.2.2"},
	}})
	v, err := env.ExecuteActivity(dns.SetAction, l.req(map[string]any{"name": "www", "type": "A", "values": []any{"192.0.2.50"}}))
	if err != nil {
		t.Fatal(err)
	}
	var res activities.Result
	if err := v.Get(&res); err != nil {
		t.Fatal(err)
	}
	from, _ := res.Outputs["changed_from"].([]any)
	if !res.Changed || len(from) != 2 || from[0] != "192.0.2.1" || res.Outputs["previous_ttl"] != "5m0s" {
		t.Errorf("retried apply: %+v", res)
	}
	if l.updates.Load() != sent {
		t.Error("the retry sent an update")
	}

	// A refused key is non-retryable at the boundary.
	t.Setenv(secretEnv, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")
	_, err = env.ExecuteActivity(dns.CheckAction, l.req(map[string]any{"name": "www", "type": "A"}))
	var appErr *temporal.ApplicationError
	if !errors.As(err, &appErr) || !appErr.NonRetryable() || !strings.Contains(appErr.Error(), "BADSIG") {
		t.Errorf("wrong key through the boundary: %v", err)
	}
	if vals, _ := l.answer(t, "www", "A"); !slices.Equal(vals, []string{"192.0.2.50"}) {
		t.Errorf("server answers %v", vals)
	}
}
