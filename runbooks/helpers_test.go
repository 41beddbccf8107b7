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

var catalog = testCatalog{
	"http.check": {Name: "http.check", Doc: "GET a URL until it answers as expected.", Inputs: []runbooks.InputSpec{
		in("url", runbooks.TypeString, true),
		in("expect_status", runbooks.TypeInt, false),
		in("successes", runbooks.TypeInt, false),
		in("deadline", runbooks.TypeDuration, false),
		in("headers", runbooks.TypeMap, false),
	}, Outputs: []string{"status"}},
	"note": {Name: "note", Doc: "Record a message in the run.", Inputs: []runbooks.InputSpec{
		in("message", runbooks.TypeString, true),
	}},
	"wait": {Name: "wait", Doc: "Wait.", Inputs: []runbooks.InputSpec{
		in("duration", runbooks.TypeDuration, true),
	}},
	"postgres.fence": {Name: "postgres.fence", Doc: "Refuse writes on a node.", Inputs: []runbooks.InputSpec{
		in("target", runbooks.TypeTarget, true),
	}},
	"postgres.promote": {Name: "postgres.promote", Doc: "Promote a standby.", Inputs: []runbooks.InputSpec{
		in("target", runbooks.TypeTarget, true),
		in("max_lag_bytes", runbooks.TypeInt, false),
		in("wait", runbooks.TypeBool, false),
	}, Outputs: []string{"lsn", "lag_bytes"}},
	"postgres.unfence": {Name: "postgres.unfence", Doc: "Accept writes again.", Inputs: []runbooks.InputSpec{
		in("target", runbooks.TypeTarget, true),
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
