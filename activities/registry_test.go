package activities_test

import (
	"context"
	"reflect"
	"strings"
	"testing"

	"go.temporal.io/sdk/activity"

	"github.com/drctl/drctl/activities"
	"github.com/drctl/drctl/runbooks"
)

// fakeAction is an action whose Apply and Observe answer as configured and
// count their calls.
type fakeAction struct {
	name     string
	inputs   []runbooks.InputSpec
	applyErr error
	result   activities.Result
	applied  int
	observed int
	lastReq  activities.Request
}

var _ activities.Action = (*fakeAction)(nil)

func (f *fakeAction) Spec() runbooks.ActionSpec {
	return runbooks.ActionSpec{Name: f.name, Doc: "fake", Inputs: f.inputs}
}

func (f *fakeAction) Observe(_ context.Context, req activities.Request) (activities.Observation, error) {
	f.observed++
	f.lastReq = req
	if f.applyErr != nil {
		return activities.Observation{}, f.applyErr
	}
	return activities.Observation{Current: "fine", Changes: []string{"nothing really"}}, nil
}

func (f *fakeAction) Apply(_ context.Context, req activities.Request) (activities.Result, error) {
	f.applied++
	f.lastReq = req
	return f.result, f.applyErr
}

// recordingRegistry is an activities.ActivityRegistry that records names.
type recordingRegistry struct{ names []string }

func (r *recordingRegistry) RegisterActivityWithOptions(a any, o activity.RegisterOptions) {
	if a == nil {
		panic("nil activity registered as " + o.Name)
	}
	r.names = append(r.names, o.Name)
}

func TestRegistryNativeActions(t *testing.T) {
	reg := activities.NewRegistry()
	spec, ok := reg.Lookup(activities.ActionWait)
	if !ok {
		t.Fatalf("Lookup(%q) not found in a new registry", activities.ActionWait)
	}
	in, ok := spec.Input("duration")
	if !ok || !in.Required || in.Type != runbooks.TypeDuration {
		t.Errorf("wait's duration input = %+v (found %v), want a required duration", in, ok)
	}
	if got := reg.Names(); !reflect.DeepEqual(got, []string{activities.ActionWait}) {
		t.Errorf("Names() = %v, want [wait]", got)
	}
	if _, ok := reg.Action(activities.ActionWait); ok {
		t.Error("Action(wait) found an activity; native actions have none")
	}
}

func TestRegistryAddAndLookup(t *testing.T) {
	reg := activities.NewRegistry()
	b, a := &fakeAction{name: "b.act"}, &fakeAction{name: "a.act"}
	if err := reg.Add(b, a); err != nil {
		t.Fatalf("Add: %v", err)
	}
	if got, want := reg.Names(), []string{"a.act", "b.act", "wait"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Names() = %v, want %v (sorted, natives included)", got, want)
	}
	for _, name := range []string{"a.act", "b.act", "wait"} {
		if spec, ok := reg.Lookup(name); !ok || spec.Name != name {
			t.Errorf("Lookup(%q) = %+v, %v", name, spec, ok)
		}
	}
	if _, ok := reg.Lookup("c.act"); ok {
		t.Error(`Lookup("c.act") found an action never added`)
	}
	if got, ok := reg.Action("a.act"); !ok || got != a {
		t.Errorf(`Action("a.act") = %v, %v; want the added action`, got, ok)
	}
	if _, ok := reg.Action("c.act"); ok {
		t.Error(`Action("c.act") found an action never added`)
	}
}

func TestRegistryAddRefuses(t *testing.T) {
	tests := []struct {
		name  string
		first []activities.Action
		add   []activities.Action
		say   string
	}{
		{"twice in one call", nil, []activities.Action{&fakeAction{name: "x"}, &fakeAction{name: "x"}}, `action "x" is registered twice`},
		{"twice across calls", []activities.Action{&fakeAction{name: "x"}}, []activities.Action{&fakeAction{name: "x"}}, `action "x" is registered twice`},
		{"a native name", nil, []activities.Action{&fakeAction{name: activities.ActionWait}}, `action "wait" is built into the workflow`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			reg := activities.NewRegistry()
			if err := reg.Add(tc.first...); err != nil {
				t.Fatalf("first Add: %v", err)
			}
			err := reg.Add(tc.add...)
			if err == nil || !strings.Contains(err.Error(), tc.say) {
				t.Fatalf("Add error = %v, want one containing %q", err, tc.say)
			}
		})
	}
}

func TestRegistryNativeCannotBeShadowed(t *testing.T) {
	reg := activities.NewRegistry()
	if err := reg.Add(&fakeAction{name: activities.ActionWait}); err == nil {
		t.Fatal("Add(wait) succeeded")
	}
	spec, _ := reg.Lookup(activities.ActionWait)
	if len(spec.Inputs) == 0 {
		t.Error("a refused action replaced the native wait spec")
	}
	if _, ok := reg.Action(activities.ActionWait); ok {
		t.Error("a refused action is registered as an activity")
	}
}

func TestRegisterActivities(t *testing.T) {
	reg := activities.NewRegistry()
	if err := reg.Add(&fakeAction{name: "zeta"}, &fakeAction{name: "http.check"}); err != nil {
		t.Fatal(err)
	}
	var rec recordingRegistry
	reg.RegisterActivities(&rec)
	want := []string{"http.check", "http.check" + activities.ObserveSuffix, "zeta", "zeta.observe"}
	if !reflect.DeepEqual(rec.names, want) {
		t.Errorf("registered %v, want %v (no activity for native wait)", rec.names, want)
	}
}

func TestIdempotencyKey(t *testing.T) {
	base := activities.Request{
		Run:  activities.Run{WorkflowID: "drctl-demo", RunID: "run-1", Lock: "demo", Mode: "failover", StartedBy: "alice"},
		Step: "promote", Action: "note",
	}
	key := base.IdempotencyKey()

	same := []struct {
		name string
		req  func(activities.Request) activities.Request
	}{
		{"unchanged", func(r activities.Request) activities.Request { return r }},
		{"other inputs", func(r activities.Request) activities.Request { r.With = map[string]any{"a": "b"}; return r }},
		{"other starter", func(r activities.Request) activities.Request { r.Run.StartedBy = "bob"; return r }},
		{"other mode", func(r activities.Request) activities.Request { r.Run.Mode = "drill"; return r }},
	}
	for _, tc := range same {
		if got := tc.req(base).IdempotencyKey(); got != key {
			t.Errorf("%s: key %q, want %q (stable)", tc.name, got, key)
		}
	}

	differ := []struct {
		name string
		req  func(activities.Request) activities.Request
	}{
		{"other run", func(r activities.Request) activities.Request { r.Run.RunID = "run-2"; return r }},
		{"other workflow", func(r activities.Request) activities.Request { r.Run.WorkflowID = "drctl-other"; return r }},
		{"other step", func(r activities.Request) activities.Request { r.Step = "fence"; return r }},
		{"compensation", func(r activities.Request) activities.Request { r.Compensating = true; return r }},
	}
	seen := map[string]string{key: "base"}
	for _, tc := range differ {
		got := tc.req(base).IdempotencyKey()
		if prev, dup := seen[got]; dup {
			t.Errorf("%s: key %q equals the key of %s", tc.name, got, prev)
		}
		seen[got] = tc.name
	}
}

func TestRequestTarget(t *testing.T) {
	req := activities.Request{Targets: []runbooks.Target{{Name: "db"}, {Name: "dns"}}}
	if got, ok := req.Target("dns"); !ok || got.Name != "dns" {
		t.Errorf(`Target("dns") = %+v, %v`, got, ok)
	}
	if _, ok := req.Target("cache"); ok {
		t.Error(`Target("cache") found a target not in the request`)
	}
}
