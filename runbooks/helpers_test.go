package runbooks_test

import (
	"slices"

	"github.com/drctl/drctl/runbooks"
)

// testCatalog is a literal action catalog for tests, shaped like the real
// registry's but independent of it.
type testCatalog map[string]runbooks.ActionSpec

var _ runbooks.Catalog = testCatalog(nil)

func (c testCatalog) Lookup(name string) (runbooks.ActionSpec, bool) {
	spec, ok := c[name]
	return spec, ok
}

func (c testCatalog) Names() []string {
	names := make([]string, 0, len(c))
	for n := range c {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

func in(name string, t runbooks.InputType, required bool) runbooks.InputSpec {
	return runbooks.InputSpec{Name: name, Type: t, Required: required, Doc: "the " + name}
}

// target is a target input that accepts the given kinds.
func target(name string, required bool, kinds ...string) runbooks.InputSpec {
	spec := in(name, runbooks.TypeTarget, required)
	spec.Kinds = kinds
	return spec
}

var catalog = testCatalog{
	"http.check": {Name: "http.check", Doc: "GET a URL until it answers as expected.", Inputs: []runbooks.InputSpec{
		in("url", runbooks.TypeString, false),
		in("urls", runbooks.TypeList, false),
		in("expect_status", runbooks.TypeInt, false),
		in("successes", runbooks.TypeInt, false),
		in("deadline", runbooks.TypeDuration, false),
		in("headers", runbooks.TypeMap, false),
		in("json_field", runbooks.TypeString, false),
		in("json_value", runbooks.TypeString, false),
	}, Outputs: []string{"status"}, Groups: []runbooks.InputGroup{
		{Inputs: []string{"url", "urls"}, Rule: runbooks.AtLeastOne},
		{Inputs: []string{"json_field", "json_value"}, Rule: runbooks.AllOrNone},
	}},
	"http.call": {Name: "http.call", Doc: "Call a webhook.", Inputs: []runbooks.InputSpec{
		in("url", runbooks.TypeString, true),
		in("json", runbooks.TypeAny, false),
		in("body", runbooks.TypeString, false),
		in("headers", runbooks.TypeMap, false),
		target("auth", false, "http"),
	}, Outputs: []string{"status", "body"}, Groups: []runbooks.InputGroup{
		{Inputs: []string{"json", "body"}, Rule: runbooks.AtMostOne},
	}},
	"note": {Name: "note", Doc: "Record a message in the run.", Inputs: []runbooks.InputSpec{
		in("message", runbooks.TypeString, true),
	}},
	"wait": {Name: "wait", Doc: "Wait.", Inputs: []runbooks.InputSpec{
		in("duration", runbooks.TypeDuration, true),
	}},
	"dns.set": {Name: "dns.set", Doc: "Set an RRset.", Inputs: []runbooks.InputSpec{
		target("target", true, "dns"),
		in("name", runbooks.TypeString, true),
		in("values", runbooks.TypeList, true),
	}},
	"postgres.fence": {Name: "postgres.fence", Doc: "Refuse writes on a node.", Inputs: []runbooks.InputSpec{
		target("target", true, "postgres"),
	}},
	"postgres.promote": {Name: "postgres.promote", Doc: "Promote a standby.", Inputs: []runbooks.InputSpec{
		target("target", true, "postgres"),
		in("max_lag_bytes", runbooks.TypeInt, false),
		in("wait", runbooks.TypeBool, false),
	}, Outputs: []string{"lsn", "lag_bytes"}},
	"postgres.rejoin": {Name: "postgres.rejoin", Doc: "Follow a new primary.", Inputs: []runbooks.InputSpec{
		target("target", true, "postgres"),
		target("replication", false, "postgres-replication", "postgres"),
	}},
	"postgres.unfence": {Name: "postgres.unfence", Doc: "Accept writes again.", Inputs: []runbooks.InputSpec{
		target("target", true, "postgres"),
	}},
	"traffic.drain": {Name: "traffic.drain", Doc: "Wait for sessions to end.", Inputs: []runbooks.InputSpec{
		target("target", true, "haproxy"),
		in("backend", runbooks.TypeString, false),
		in("backends", runbooks.TypeList, false),
	}, Groups: []runbooks.InputGroup{
		{Inputs: []string{"backend", "backends"}, Rule: runbooks.AtLeastOne},
	}},
	"traffic.shift": {Name: "traffic.shift", Doc: "Shift traffic.", Inputs: []runbooks.InputSpec{
		in("backend", runbooks.TypeString, true),
		in("weight", runbooks.TypeInt, true),
		in("ratio", runbooks.TypeFloat, false),
		in("servers", runbooks.TypeList, false),
		in("labels", runbooks.TypeMap, false),
		in("extra", runbooks.TypeAny, false),
	}},
}
