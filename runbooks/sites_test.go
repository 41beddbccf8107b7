package runbooks_test

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/drctl/drctl/runbooks"
)

func TestSitesValidate(t *testing.T) {
	tests := []struct {
		name  string
		steps string // YAML appended to header
		want  []string
	}{
		{"sites and run_on", `
targets: {db-east: {kind: postgres, site: east}, db-west: {kind: postgres, site: west}}
steps:
  - {id: a, action: postgres.fence, with: {target: db-east}, run_on: west}
  - {id: b, action: postgres.fence, with: {target: db-east}, run_on: any}
  - {id: c, action: note, with: {message: "${{ targets.db-east.site }}"}}
`, nil},
		{"run_on names no site", `
targets: {db-east: {kind: postgres, site: east}}
steps:
  - {id: a, action: postgres.fence, with: {target: db-east}, run_on: wset}
`, []string{`test.yaml:7:70: step "a": run_on "wset" names no site a target lives in (write run_on: any or one of the targets' sites: east)`}},
		{"run_on on a gate", `
steps:
  - {id: a, approval: {approvers: [bob]}, run_on: any}
`, []string{`test.yaml:6:51: step "a": run_on places an action on a worker; an approval gate runs in the workflow itself (remove run_on)`}},
		{"a site that is not a name", `
targets: {db: {kind: postgres, site: "East Coast"}}
steps:
  - {id: a, action: postgres.fence, with: {target: db}}
`, []string{`test.yaml:5:38: site "East Coast" of target "db" is not a site name (use a-z, 0-9, '.', '_' and '-', starting with a letter or digit, like east or eu-west-1)`}},
		{"any is not a site", `
targets: {db: {kind: postgres, site: any}}
steps:
  - {id: a, action: postgres.fence, with: {target: db}}
`, []string{`test.yaml:5:38: site "any" of target "db" is not a site name (use a-z, 0-9, '.', '_' and '-', starting with a letter or digit, like east or eu-west-1)`}},
		{"site written as an attribute", `
targets: {db: {kind: postgres, attributes: {site: east}}}
steps:
  - {id: a, action: postgres.fence, with: {target: db}}
`, []string{`test.yaml:5:45: site of target "db" is written as an attribute; drctl places actions by a target's own site (write site: east beside kind; ${{ targets.db.site }} still reads it)`}},
		{"no site to read", `
targets: {db: {kind: postgres}}
steps:
  - {id: a, action: note, with: {message: "${{ targets.db.site }}"}}
`, []string{`test.yaml:7:43: step "a": ${{ targets.db.site }} uses attribute "site", which target "db" does not have (known attributes: kind)`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rb := mustParse(t, header+tt.steps)
			var got []string
			for _, p := range runbooks.Validate(rb, catalog) {
				got = append(got, p.String())
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

// Load copies each action's reach from the catalog into the runbook, and
// Where places a step by it, its run_on and its target's site.
func TestPlacement(t *testing.T) {
	cat := testCatalog{}
	for name, spec := range catalog {
		cat[name] = spec
	}
	rejoin := cat["postgres.rejoin"]
	rejoin.Reach = runbooks.ReachSite
	cat["postgres.rejoin"] = rejoin
	if err := runbooks.CheckCatalog(cat); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "sites.yaml")
	src := header + `
targets: {db-east: {kind: postgres, site: east}, db-west: {kind: postgres, site: west}, db: {kind: postgres}}
steps:
  - {id: fence, action: postgres.fence, with: {target: db-east}, compensate: {action: postgres.rejoin, with: {target: db-east}}}
  - {id: rejoin, action: postgres.rejoin, with: {target: db-east}}
  - {id: rejoin-any, action: postgres.rejoin, with: {target: db-east}, run_on: any}
  - {id: fence-from-west, action: postgres.fence, with: {target: db-east}, run_on: west}
  - {id: rejoin-nowhere, action: postgres.rejoin, with: {target: db}}
`
	if err := os.WriteFile(file, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	rb, err := runbooks.Load(file, cat)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"fence": "", "rejoin": "east", "rejoin-any": "", "fence-from-west": "west", "rejoin-nowhere": ""}
	for id, site := range want {
		s, _ := rb.Step(id)
		if got := runbooks.Where(s.RunOn, s.Reach, s.With, rb.Targets); got != site {
			t.Errorf("step %s (reach %q, run_on %q) runs in %q, want %q", id, s.Reach, s.RunOn, got, site)
		}
	}
	fence, _ := rb.Step("fence")
	if c := fence.Compensate; c.Reach != runbooks.ReachSite || runbooks.Where(fence.RunOn, c.Reach, c.With, rb.Targets) != "east" {
		t.Errorf("fence's compensation has reach %q; want it placed in east", c.Reach)
	}

	bad := rejoin
	bad.Name, bad.Inputs = "bad", []runbooks.InputSpec{in("node", runbooks.TypeString, true)}
	if err := runbooks.CheckSpec(bad); err == nil || !strings.Contains(err.Error(), `needs a target input named "target"`) {
		t.Errorf("CheckSpec of a site-reach action with no target input: %v", err)
	}
}
