package runbooks_test

import (
	"errors"
	"io/fs"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/drctl/drctl/runbooks"
)

func mustParse(t *testing.T, src string) *runbooks.Runbook {
	t.Helper()
	rb, err := runbooks.Parse("test.yaml", []byte(src))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return rb
}

func TestParseFillsTheModel(t *testing.T) {
	rb, err := runbooks.Load("testdata/good/site-failover.yaml", catalog)
	if err != nil {
		t.Fatal(err)
	}
	if rb.File != "testdata/good/site-failover.yaml" || rb.APIVersion != runbooks.APIVersion || rb.Name != "site-failover" || rb.Lock != "payments" {
		t.Errorf("header = %q %q %q %q", rb.File, rb.APIVersion, rb.Name, rb.Lock)
	}
	if rb.Objectives.RTO.D() != 5*time.Minute || rb.Objectives.RPO.D() != 30*time.Second {
		t.Errorf("objectives = %+v", rb.Objectives)
	}

	var params []string
	for _, p := range rb.Params {
		params = append(params, p.Name)
	}
	if want := []string{"target_site", "ticket", "weight"}; !reflect.DeepEqual(params, want) {
		t.Errorf("params in order = %v, want %v", params, want)
	}
	site, _ := rb.Param("target_site")
	if site.Default == nil || *site.Default != "west" || !reflect.DeepEqual(site.Allowed, []string{"east", "west"}) || site.Line != 8 {
		t.Errorf("target_site = %+v", site)
	}
	if ticket, _ := rb.Param("ticket"); !ticket.Required || ticket.Default != nil {
		t.Errorf("ticket = %+v", ticket)
	}

	if len(rb.Targets) != 3 || rb.Targets[0].Name != "payments-db" || rb.Targets[2].Name != "lb" {
		t.Fatalf("targets = %+v", rb.Targets)
	}
	db := rb.Targets[0]
	if db.Kind != "postgres" || db.Credentials == nil || db.Credentials.Env != "PAYMENTS_DB_DSN" || db.Site != "east" || db.Attributes["host"] != "db1.east.example.com" || db.Line != 12 {
		t.Errorf("payments-db = %+v", db)
	}
	if c := rb.Targets[1].Credentials; c == nil || c.File != "/etc/drctl/standby.dsn" {
		t.Errorf("standby credentials = %+v", c)
	}

	fence, _ := rb.Step("fence")
	wantRetry := &runbooks.RetryPolicy{MaxAttempts: 5, InitialInterval: runbooks.Duration(time.Second), BackoffCoefficient: 2, MaxInterval: runbooks.Duration(30 * time.Second)}
	if !reflect.DeepEqual(fence.Retry, wantRetry) {
		t.Errorf("fence.Retry = %+v, want %+v", fence.Retry, wantRetry)
	}
	if fence.Timeout.D() != 2*time.Minute || fence.Deadline.D() != 10*time.Minute || fence.Heartbeat.D() != 10*time.Second || fence.OnFailure != runbooks.OnFailureAbort {
		t.Errorf("fence timing = %v %v %v %q", fence.Timeout, fence.Deadline, fence.Heartbeat, fence.OnFailure)
	}
	if c := fence.Compensate; c == nil || c.Action != "postgres.unfence" || c.With["target"] != "payments-db" || c.Timeout.D() != time.Minute || c.Line != 41 {
		t.Errorf("fence.Compensate = %+v", c)
	}
	if fence.Line != 32 {
		t.Errorf("fence.Line = %d, want 32", fence.Line)
	}

	gate, _ := rb.Step("go-ahead")
	wantApproval := &runbooks.Approval{
		Message:   "Promote the standby and move traffic?",
		Approvers: []string{"alice", "bob", "group:dba"},
		TwoPerson: true, // not written: defaults to true
		Timeout:   runbooks.Duration(15 * time.Minute),
		OnTimeout: runbooks.OnFailureAbort,
	}
	if !reflect.DeepEqual(gate.Approval, wantApproval) || !reflect.DeepEqual(gate.Needs, []string{"fence"}) {
		t.Errorf("go-ahead = %+v %+v", gate.Approval, gate.Needs)
	}

	shift, _ := rb.Step("shift")
	wantWith := map[string]any{
		"backend": "${{ targets.lb.kind }}",
		"weight":  "${{ params.weight }}",
		"servers": []any{"west-1", "west-2"},
		"labels":  map[string]any{"site": "west", "reason": "failover ${{ run.id }}"},
		"ratio":   0.5,
	}
	if !reflect.DeepEqual(shift.With, wantWith) {
		t.Errorf("shift.With = %#v\nwant %#v", shift.With, wantWith)
	}
	promote, _ := rb.Step("promote")
	if v, ok := promote.With["max_lag_bytes"].(int); !ok || v != 1048576 {
		t.Errorf("max_lag_bytes = %#v, want int 1048576", promote.With["max_lag_bytes"])
	}
}

func TestParseScalars(t *testing.T) {
	rb := mustParse(t, `
steps:
  - id: a
    with:
      text: hello
      quoted: "42"
      int: 42
      negative: -7
      hex: 0x10
      float: 2.5
      whole_float: 2.0
      yes: yes
      bool: true
      date: 2024-01-02
      empty:
      list: [a, 1, false]
      nested: {x: {y: [1]}}
    approval:
      two_person: false
`)
	want := map[string]any{
		"text": "hello", "quoted": "42", "int": 42, "negative": -7, "hex": 16,
		"float": 2.5, "whole_float": 2.0, "yes": "yes", "bool": true, "date": "2024-01-02",
		"empty": nil, "list": []any{"a", 1, false}, "nested": map[string]any{"x": map[string]any{"y": []any{1}}},
	}
	if got := rb.Steps[0].With; !reflect.DeepEqual(got, want) {
		t.Errorf("With = %#v\nwant %#v", got, want)
	}
	if rb.Steps[0].Approval.TwoPerson {
		t.Error("two_person: false was ignored")
	}
}

func TestParseProblems(t *testing.T) {
	tests := []struct {
		name, src string
		want      []string
	}{
		{"unknown top-level key", "apiVersion: drctl/v1\nstep: []\n",
			[]string{`test.yaml:2:1: unknown key "step" in the runbook (did you mean "steps"?)`}},
		{"synonym hint", "steps:\n  - id: a\n    after: [b]\n",
			[]string{`test.yaml:3:5: step "a": unknown key "after" in a step (did you mean "needs"?)`}},
		{"bad duration names the key", "steps:\n  - id: a\n    heartbeat: 10\n",
			[]string{`test.yaml:3:16: step "a": heartbeat: "10" is not a duration; write a number with a unit, like 30s, 5m or 1h30m`}},
		{"steps not a list", "steps: {a: 1}\n",
			[]string{`test.yaml:1:8: steps must be a list of steps, not a mapping (start each step with '- id: NAME')`}},
		{"step not a mapping", "steps: [fence]\n",
			[]string{`test.yaml:1:9: a step must be a mapping of keys (id, description, action, with, needs, retry, timeout, deadline, heartbeat, on_failure, run_on, compensate, approval, runbook, for_each, as, max_parallel), not "fence" (write key: value pairs, one per line)`}},
		{"every problem, in file order", "name: [x]\nlock: {a: b}\nobjectives: {rto: soon}\n",
			[]string{
				`test.yaml:1:7: name must be text, not a list (write name: VALUE on one line)`,
				`test.yaml:2:7: lock must be text, not a mapping (write lock: VALUE on one line)`,
				`test.yaml:3:19: rto: "soon" is not a duration; write a number with a unit, like 30s, 5m or 1h30m`,
			}},
		{"non-text key", "steps:\n  - id: a\n    with: {[x]: 1}\n",
			[]string{`test.yaml:3:12: step "a": a key must be plain text, not a list`}},
		{"only comments", "# nothing here\n",
			[]string{`test.yaml: the file is empty (start with apiVersion: drctl/v1)`}},
		{"syntax error on the first line", "a: b: c\n",
			[]string{`test.yaml:1: invalid YAML: mapping values are not allowed in this context (fix the YAML syntax; quote text that contains ': ' or starts with a special character)`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rb, err := runbooks.Parse("test.yaml", []byte(tt.src))
			if rb != nil {
				t.Errorf("Parse returned a runbook along with problems")
			}
			var problems runbooks.Problems
			if !errors.As(err, &problems) {
				t.Fatalf("err = %v (%T), want Problems", err, err)
			}
			if got := strings.Split(problems.Error(), "\n"); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

func TestParseSuccessReturnsUntypedNilError(t *testing.T) {
	_, err := runbooks.Parse("ok.yaml", []byte("steps: []\n"))
	if err != nil {
		t.Fatalf("err = %#v, want nil (not a nil Problems inside an error)", err)
	}
}

func TestLoadUnreadableFile(t *testing.T) {
	_, err := runbooks.Load("testdata/no-such-file.yaml", catalog)
	var problems runbooks.Problems
	if !errors.Is(err, fs.ErrNotExist) || errors.As(err, &problems) {
		t.Errorf("err = %v, want a wrapped fs.ErrNotExist, not Problems", err)
	}
}
