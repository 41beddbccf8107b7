package runbooks_test

import (
	"reflect"
	"strings"
	"testing"

	"github.com/drctl/drctl/runbooks"
)

func TestParseRefs(t *testing.T) {
	tests := []struct {
		in      string
		want    []runbooks.Ref
		wantErr string
	}{
		{"plain text", nil, ""},
		{"${{ params.site }}", []runbooks.Ref{{Kind: "params", Name: "site", Raw: "${{ params.site }}"}}, ""},
		{"a ${{steps.promote.outputs.lsn}} b ${{ run.id }}", []runbooks.Ref{
			{Kind: "steps", Name: "promote", Key: "lsn", Raw: "${{steps.promote.outputs.lsn}}"},
			{Kind: "run", Name: "id", Raw: "${{ run.id }}"},
		}, ""},
		{"${{ targets.payments-db.site }}", []runbooks.Ref{{Kind: "targets", Name: "payments-db", Key: "site", Raw: "${{ targets.payments-db.site }}"}}, ""},
		{"${{ params.a", nil, "unterminated expression"},
		{"${{ params.a ${{ params.b }}", nil, "is not a reference"},
		{"${{ run.host }}", nil, `"run.host" is not a reference`},
		{"${{ steps.a.lsn }}", nil, "is not a reference"},
		{"${{ }}", nil, "is not a reference"},
	}
	for _, tt := range tests {
		got, err := runbooks.ParseRefs(tt.in)
		switch {
		case tt.wantErr != "":
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseRefs(%q) error = %v, want one containing %q", tt.in, err, tt.wantErr)
			}
		case err != nil:
			t.Errorf("ParseRefs(%q): %v", tt.in, err)
		case !reflect.DeepEqual(got, tt.want):
			t.Errorf("ParseRefs(%q) = %#v, want %#v", tt.in, got, tt.want)
		}
	}
}

func TestResolve(t *testing.T) {
	scope := runbooks.Scope{
		Params:  map[string]string{"site": "west", "n": "3"},
		Outputs: map[string]map[string]any{"promote": {"lsn": "0/3000060", "lag_bytes": 42, "hosts": []any{"a", "b"}}},
		Run:     map[string]string{"id": "run-1", "mode": "drill"},
		Targets: runbooks.TargetScope([]runbooks.Target{{Name: "db", Kind: "postgres", Attributes: map[string]string{"site": "east"}}}),
	}
	tests := []struct {
		name    string
		in      any
		want    any
		wantErr string
	}{
		{"text without expressions", "hello", "hello", ""},
		{"a single expression keeps the value's type", "${{ steps.promote.outputs.lag_bytes }}", 42, ""},
		{"a single expression may be a list", " ${{ steps.promote.outputs.hosts }} ", []any{"a", "b"}, ""},
		{"embedded expressions render as text", "lag ${{ steps.promote.outputs.lag_bytes }} on ${{ steps.promote.outputs.hosts }}", `lag 42 on ["a","b"]`, ""},
		{"params, run and targets", "${{ params.site }}/${{ run.mode }}/${{ targets.db.kind }}@${{ targets.db.site }}", "west/drill/postgres@east", ""},
		{"nested values", map[string]any{"a": []any{"${{ params.n }}", 1, true}}, map[string]any{"a": []any{"3", 1, true}}, ""},
		{"non-strings are untouched", 2.5, 2.5, ""},
		{"missing param", "${{ params.ticket }}", nil, `parameter "ticket" has no value; pass --set ticket=VALUE`},
		{"missing output", "${{ steps.promote.outputs.lsnn }}", nil, `step "promote" has no output "lsnn" (it has: hosts, lag_bytes, lsn)`},
		{"step without outputs", "${{ steps.fence.outputs.x }}", nil, `step "fence" has not produced outputs`},
		{"missing target attribute", "${{ targets.db.zone }}", nil, `target "db" has no attribute "zone"`},
		{"error names where", map[string]any{"a": []any{"ok", "${{ params.x }}"}}, nil, `a: [1]: ${{ params.x }}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := runbooks.Resolve(tt.in, scope)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Resolve = %#v, want %#v", got, tt.want)
			}
		})
	}
}

func TestResolveDoesNotModifyItsInput(t *testing.T) {
	with := map[string]any{"a": []any{"${{ params.site }}"}}
	if _, err := runbooks.ResolveMap(with, runbooks.Scope{Params: map[string]string{"site": "west"}}); err != nil {
		t.Fatal(err)
	}
	if with["a"].([]any)[0] != "${{ params.site }}" {
		t.Errorf("ResolveMap changed its input: %v", with)
	}
}

func TestTargetScopeKindWins(t *testing.T) {
	got := runbooks.TargetScope([]runbooks.Target{{Name: "db", Kind: "postgres", Attributes: map[string]string{"kind": "mysql"}}})
	if got["db"]["kind"] != "postgres" {
		t.Errorf("targets.db.kind = %q, want the target's kind, postgres", got["db"]["kind"])
	}
}

func TestWalkStringsPaths(t *testing.T) {
	var got []string
	runbooks.WalkStrings(map[string]any{"b": []any{"x", 1, map[string]any{"k": "y"}}, "a": "z"}, func(path, s string) {
		got = append(got, path+"="+s)
	})
	want := []string{"a=z", "b[0]=x", "b[2].k=y"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("WalkStrings visited %v, want %v", got, want)
	}
}
