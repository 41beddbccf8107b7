package runbooks_test

import (
	"reflect"
	"strings"
	"testing"

	"github.com/drctl/drctl/runbooks"
)

// header is a valid runbook header for inline test runbooks.
const header = "apiVersion: drctl/v1\nname: t\nlock: t\n"

// validateCase is a runbook (YAML appended to header) and the problems
// Validate must report, exactly.
type validateCase struct {
	name  string
	steps string
	want  []string
}

// checkValidate runs each case as a subtest.
func checkValidate(t *testing.T, tests []validateCase) {
	t.Helper()
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

func TestValidate(t *testing.T) {
	checkValidate(t, []validateCase{
		{"clean", `
steps:
  - {id: a, action: note, with: {message: hi}}
  - {id: b, needs: [a], action: wait, with: {duration: 5s}}
`, nil},
		{"compensation may use its own step's outputs", `
targets: {db: {kind: postgres}}
steps:
  - id: promote
    action: postgres.promote
    with: {target: db}
    compensate: {action: note, with: {message: "${{ steps.promote.outputs.lsn }}"}}
`, nil},
		{"steps may use preflight outputs without needs", `
preflight:
  - {id: up, action: http.check, with: {url: "https://x"}}
steps:
  - {id: a, action: note, with: {message: "${{ steps.up.outputs.status }}"}}
`, nil},
		{"transitive ancestors count", `
steps:
  - {id: a, action: http.check, with: {url: "https://x"}}
  - {id: b, needs: [a], action: note, with: {message: b}}
  - {id: c, needs: [b], action: note, with: {message: "${{ steps.a.outputs.status }}"}}
`, nil},
		{"undeclared outputs are not checked", `
steps:
  - {id: a, action: note, with: {message: a}}
  - {id: b, needs: [a], action: note, with: {message: "${{ steps.a.outputs.anything }}"}}
`, nil},
		{"a single expression is checked at run time", `
params: {n: {default: "3"}}
steps:
  - {id: a, action: http.check, with: {url: x, successes: "${{ params.n }}", deadline: "${{ params.n }}", headers: "${{ params.n }}"}}
`, nil},
		{"either input, also as an expression or in a compensation", `
params: {urls: {default: "https://x"}}
targets: {lb: {kind: haproxy}}
steps:
  - {id: a, action: http.check, with: {urls: "${{ params.urls }}"}}
  - {id: b, action: note, with: {message: b}, compensate: {action: traffic.drain, with: {target: lb, backends: [app]}}}
  - {id: c, action: http.call, with: {url: "https://x", json: {a: b}, body: ""}}
`, nil},
		{"exclusive inputs given by expressions", `
params: {b: {default: x}}
steps:
  - {id: a, action: http.call, with: {url: "https://x", json: "${{ params.b }}", body: "${{ params.b }}"}}
`, []string{`test.yaml:7:82: step "a": action "http.call" takes json or body, not json and body together (keep one of json and body)`}},
		{"a target of a kind the input takes", `
targets: {db: {kind: postgres}, repl: {kind: postgres-replication}}
steps:
  - {id: a, action: postgres.rejoin, with: {target: db, replication: repl}}
  - {id: b, action: postgres.rejoin, with: {target: db, replication: db}}
`, nil},
		{"dangling needs", `
steps:
  - {id: fence, action: note, with: {message: a}}
  - {id: b, needs: [fenc], action: note, with: {message: b}}
`, []string{`test.yaml:7:21: step "b": needs "fenc", which is not a step (did you mean "fence"?)`}},
		{"not an ancestor", `
steps:
  - {id: a, action: http.check, with: {url: "https://x"}}
  - {id: b, action: note, with: {message: "${{ steps.a.outputs.status }}"}}
`, []string{`test.yaml:7:43: step "b": ${{ steps.a.outputs.status }} uses step "a", which does not run before this step (add a to needs)`}},
		{"literal target must be declared", `
targets: {payments-db: {kind: postgres}}
steps:
  - {id: a, action: postgres.fence, with: {target: payments}}
`, []string{`test.yaml:7:52: step "a": input "target" names target "payments", which is not declared (declare payments under targets:)`}},
	})
}

// A runbook built in code has no positions; Validate still reports every
// problem, located by the Line fields when they are set.
func TestValidateRunbookBuiltInCode(t *testing.T) {
	rb := &runbooks.Runbook{
		APIVersion: runbooks.APIVersion,
		Name:       "built",
		Lock:       "built",
		Steps: []runbooks.Step{
			{ID: "a", Action: "note", With: map[string]any{"message": "${{ params.missing }}"}, Line: 7},
			{ID: "b", Needs: []string{"c"}, Action: "note", With: map[string]any{"message": "b"}},
			{ID: "c", Needs: []string{"b"}, Approval: &runbooks.Approval{}},
		},
	}
	var got []string
	for _, p := range runbooks.Validate(rb, catalog) {
		got = append(got, p.String())
	}
	want := []string{
		`step "c": the approval has no approvers (add approvers: [alice, "group:dba"], the people allowed to decide)`,
		`step "b": needs form a cycle: b -> c -> b (a step cannot wait for itself; remove one of these needs)`,
		`7: step "a": ${{ params.missing }} uses param "missing", which is not declared (declare missing under params:)`,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestValidateWithoutCatalogSkipsActionChecks(t *testing.T) {
	rb := mustParse(t, header+"steps:\n  - {id: a, action: no.such.action, with: {whatever: 1}}\n")
	if problems := runbooks.Validate(rb, nil); len(problems) != 0 {
		t.Errorf("Validate(rb, nil) = %v, want no problems", problems)
	}
	if problems := runbooks.Validate(rb, catalog); len(problems) != 1 {
		t.Errorf("Validate(rb, catalog) = %v, want the unknown action", problems)
	}
}

func TestAncestors(t *testing.T) {
	rb := mustParse(t, `
steps:
  - {id: a}
  - {id: b, needs: [a]}
  - {id: c, needs: [b, ghost]}
  - {id: d, needs: [e]}
  - {id: e, needs: [d, a]}
`)
	tests := map[string][]string{
		"a": nil,
		"c": {"a", "b"},
		"d": {"a", "e"}, // on a cycle: d itself is left out
	}
	for id, want := range tests {
		got := runbooks.Ancestors(rb, id)
		wantSet := map[string]bool{}
		for _, w := range want {
			wantSet[w] = true
		}
		if !reflect.DeepEqual(got, wantSet) {
			t.Errorf("Ancestors(%s) = %v, want %v", id, got, wantSet)
		}
	}
}

// TestReservedLockPrefixes: a lock may not take the names drctl gives its
// own workflows (a runbook's readiness record, a drill schedule's firings).
func TestReservedLockPrefixes(t *testing.T) {
	for _, lock := range []string{"readiness-payments", "drill-payments"} {
		rb := mustParse(t, "apiVersion: drctl/v1\nname: x\nlock: "+lock+"\nsteps:\n  - {id: a, action: note, with: {message: hi}}\n")
		ps := runbooks.Validate(rb, catalog)
		if len(ps) != 1 || !strings.Contains(ps[0].String(), "starts with a prefix drctl keeps for its own workflows") {
			t.Errorf("lock %s: %v", lock, ps)
		}
	}
}
