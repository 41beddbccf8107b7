package runbooks_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/drctl/drctl/runbooks"
)

func TestSitesValidate(t *testing.T) {
	checkValidate(t, []validateCase{
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
	})
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

// writeFiles writes name → text into a new directory and returns it.
func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, text := range files {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

const serviceChild = `apiVersion: drctl/v1
name: service
lock: service
params:
  svc: {required: true}
  to: {default: west}
steps:
  - {id: move, action: note, with: {message: "move ${{ params.svc }} to ${{ params.to }}"}}
`

// Load loads the runbook a fan-out step runs, relative to the file, into
// the step; the validator checks its keys and the child's parameters.
func TestFanOutLoadsAndChecksTheChild(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"services/service.yaml": serviceChild,
		"fleet.yaml": header + `
params: {services: {default: "a,b"}}
steps:
  - {id: db, action: note, with: {message: db}}
  - id: services
    needs: [db]
    runbook: services/service.yaml
    for_each: "${{ params.services }}"
    as: svc
    with: {to: west}
    max_parallel: 100
`,
	})
	rb, err := runbooks.Load(filepath.Join(dir, "fleet.yaml"), catalog)
	if err != nil {
		t.Fatal(err)
	}
	s, _ := rb.Step("services")
	if s.Child == nil || s.Child.Name != "service" || s.As != "svc" || s.MaxParallel != 100 {
		t.Fatalf("fan-out step %+v", s)
	}
	if err := runbooks.CheckBounds(rb); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name, step string
		want       []string
	}{
		{"unknown parameter and missing as", `
  - {id: s, runbook: services/service.yaml, for_each: [a, b], with: {too: x}}
`, []string{
			`fleet.yaml:6:5: step "s": for_each needs as: the child parameter each item is given as (add as: one of services/service.yaml's parameters (svc, to))`,
			`fleet.yaml:6:70: step "s": services/service.yaml has no parameter "too" (its parameters: svc, to)`,
			`fleet.yaml:6:22: step "s": services/service.yaml requires parameter "svc" (add svc: VALUE under with:)`,
		}},
		{"items a lock cannot end with, compensate", `
  - {id: s, runbook: services/service.yaml, for_each: [a, "B C"], as: svc, compensate: {action: note, with: {message: x}}}
`, []string{
			`fleet.yaml:6:88: step "s": a step that runs a runbook cannot have compensate: the child run's steps have their own (remove compensate)`,
			`fleet.yaml:6:59: step "s": for_each item B C is not a name a lock can end with (use a-z, 0-9, '.', '_' and '-', starting with a letter or digit)`,
		}},
		{"for_each not one expression", `
  - {id: s, runbook: services/service.yaml, for_each: "x ${{ params.p }}", as: svc}
`, []string{`fleet.yaml:6:55: step "s": for_each is a list, or one expression whose value is a list or comma-separated text (write for_each: [a, b] or for_each: "${{ params.services }}")`}},
		{"a child that cannot be read", `
  - {id: s, runbook: services/nope.yaml}
`, []string{`fleet.yaml:6:22: step "s": runbook services/nope.yaml cannot be read: no such file or directory (write the child runbook's path relative to this file, inside its directory)`}},
		{"a child outside the runbook's directory", `
  - {id: s, runbook: ../outside.yaml}
  - {id: t, runbook: /etc/hostname, needs: [s]}
`, []string{
			`step "s": runbook ../outside.yaml cannot be read: path escapes from parent`,
			`step "t": runbook /etc/hostname cannot be read: path escapes from parent`,
		}},
		{"duplicates, an empty list, the parent's own lock", `
  - {id: s, runbook: services/service.yaml, for_each: [a, a], as: svc}
  - {id: t, runbook: services/service.yaml, for_each: [], as: svc}
  - {id: u, runbook: own.yaml}
`, []string{
			`fleet.yaml:6:59: step "s": for_each lists a twice (list each item once: each is a run holding its own lock)`,
			`fleet.yaml:7:55: step "t": for_each lists no item (list the items, or remove for_each to run the runbook once)`,
			`fleet.yaml:8:22: step "u": own.yaml holds lock "t", this runbook's own: its run could never start (give one of them another lock)`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := writeFiles(t, map[string]string{"services/service.yaml": serviceChild, "fleet.yaml": header + "params: {p: {default: x}}\nsteps:" + tt.step,
				"own.yaml": header + "steps:\n  - {id: n, action: note, with: {message: n}}\n"})
			_, err := runbooks.Load(filepath.Join(dir, "fleet.yaml"), catalog)
			if err == nil {
				t.Fatal("loaded")
			}
			got := strings.ReplaceAll(err.Error(), dir+"/", "")
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("problems:\n%s\nlack:\n%s", got, w)
				}
			}
		})
	}
}

// The workflow's re-check refuses sites that are not site names: they
// end task queue names, and its input may not have been validated.
func TestCheckBoundsSites(t *testing.T) {
	rb := &runbooks.Runbook{Targets: []runbooks.Target{{Name: "db", Kind: "postgres", Site: "East Coast"}},
		Steps: []runbooks.Step{{ID: "a", Action: "note", RunOn: "west/../x"}, {ID: "b", Action: "note", RunOn: runbooks.RunOnAny}}}
	err := runbooks.CheckBounds(rb)
	for _, want := range []string{`target db: site "East Coast"`, `step a: run_on: site "west/../x"`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("CheckBounds: %v; want it to say %q", err, want)
		}
	}
	if err != nil && strings.Contains(err.Error(), "step b") {
		t.Errorf("run_on: any refused: %v", err)
	}
}
