package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/drctl/drctl/activities"
	"github.com/drctl/drctl/runbooks"
	"github.com/drctl/drctl/workflows"
)

// repoRoot is the module root, two levels up from this package.
var repoRoot = func() string {
	abs, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		panic(err)
	}
	return abs
}()

// drctl runs the CLI in-process with args, in an empty working directory
// and home, with no DRCTL_* variables, and returns stdout, stderr and the
// command's error.
func drctl(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "DRCTL_") {
			t.Setenv(k, "")
			os.Unsetenv(k)
		}
	}
	t.Setenv("HOME", t.TempDir())
	t.Chdir(t.TempDir())
	// Nothing listens here: a command that dials fails fast instead of
	// finding a developer's server.
	t.Setenv("DRCTL_TEMPORAL_ADDRESS", "127.0.0.1:1")

	var out, errOut bytes.Buffer
	root := newRoot()
	root.SetArgs(args)
	root.SetOut(&out)
	root.SetErr(&errOut)
	err = root.ExecuteContext(context.Background())
	return out.String(), errOut.String(), err
}

func demoRunbook() string { return shippedRunbook("demo.yaml") }

func shippedRunbook(name string) string { return filepath.Join(repoRoot, "runbooks", name) }

// withoutFailback is site-failover.yaml without its drill.failback.
func withoutFailback(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(shippedRunbook("site-failover.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Replace(string(b), "drill: {failback: failback.yaml}\n", "", 1)
	if text == string(b) {
		t.Fatal("site-failover.yaml names no failback")
	}
	return writeRunbook(t, text)
}

func writeRunbook(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "broken.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestValidateDemo(t *testing.T) {
	out, _, err := drctl(t, "validate", demoRunbook())
	if err != nil {
		t.Fatalf("validate demo.yaml: %v\n%s", err, out)
	}
	if want := demoRunbook() + ": ok (demo, "; !strings.HasPrefix(out, want) {
		t.Errorf("output %q, want it to start with %q", out, want)
	}
}

const brokenRunbook = `apiVersion: drctl/v1
name: broken
lock: broken
steps:
  - id: first
    action: note
    with: {message: hi}
    timeout: 5 minutes
  - id: second
    needs: [first]
    action: dns.flip
`

func TestValidateBroken(t *testing.T) {
	path := writeRunbook(t, brokenRunbook)
	out, _, err := drctl(t, "validate", path)
	if err == nil {
		t.Fatalf("validate of a broken runbook succeeded:\n%s", out)
	}
	if !strings.Contains(err.Error(), "1 of 1 runbook(s) have problems") {
		t.Errorf("error %q, want a count of runbooks with problems", err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	located := regexp.MustCompile(`^` + regexp.QuoteMeta(path) + `:\d+:\d+: `)
	for _, l := range lines {
		if !located.MatchString(l) {
			t.Errorf("problem line %q is not located as %s:LINE:COL", l, path)
		}
	}
	if !strings.Contains(out, path+":8:") || !strings.Contains(out, `"5 minutes" is not a duration`) {
		t.Errorf("output does not report the bad duration on line 8:\n%s", out)
	}
}

func TestValidateUnknownAction(t *testing.T) {
	path := writeRunbook(t, strings.Replace(brokenRunbook, "    timeout: 5 minutes\n", "", 1))
	out, _, err := drctl(t, "validate", path)
	if err == nil {
		t.Fatalf("validate of a runbook with an unknown action succeeded:\n%s", out)
	}
	if !strings.Contains(out, path+":10:") || !strings.Contains(out, "dns.flip") {
		t.Errorf("output does not report the unknown action dns.flip at line 10:\n%s", out)
	}
}

func TestValidateSeveral(t *testing.T) {
	broken := writeRunbook(t, brokenRunbook)
	out, _, err := drctl(t, "validate", demoRunbook(), broken)
	if err == nil || !strings.Contains(err.Error(), "1 of 2 runbook(s)") {
		t.Errorf("error = %v, want 1 of 2 runbooks with problems", err)
	}
	if !strings.Contains(out, demoRunbook()+": ok") || !strings.Contains(out, broken+":") {
		t.Errorf("output does not report both files:\n%s", out)
	}
}

func TestValidateRefuses(t *testing.T) {
	tests := []struct {
		name string
		args []string
		say  string
	}{
		{"no file", []string{"validate"}, "requires at least 1 arg"},
		{"missing file", []string{"validate", "/nonexistent/runbook.yaml"}, "/nonexistent/runbook.yaml: read runbook: open /nonexistent/runbook.yaml: no such file or directory"},
		{"a device", []string{"validate", "/dev/zero"}, "/dev/zero: read runbook: /dev/zero is not a regular file (a character device)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, _, err := drctl(t, tc.args...)
			if err == nil || !strings.Contains(out+err.Error(), tc.say) {
				t.Errorf("drctl %v: error = %v, output %q; want one containing %q", tc.args, err, out, tc.say)
			}
		})
	}
}

// TestValidateChecksEveryFile: an unreadable file is one problem among the
// others; the files after it are still checked.
func TestValidateChecksEveryFile(t *testing.T) {
	broken := writeRunbook(t, brokenRunbook)
	out, _, err := drctl(t, "validate", "/nonexistent.yaml", broken, demoRunbook())
	if err == nil || !strings.Contains(err.Error(), "2 of 3 runbook(s) have problems") {
		t.Errorf("error = %v, want 2 of 3", err)
	}
	if !strings.Contains(out, "/nonexistent.yaml: read runbook") || !strings.Contains(out, broken+":") || !strings.Contains(out, demoRunbook()+": ok") {
		t.Errorf("output does not report all three files:\n%s", out)
	}
}

// TestConfigErrorsReachTheUser: a config file with an unknown key stops
// the command with an error naming the key.
func TestConfigErrorsReachTheUser(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "drctl.yaml")
	if err := os.WriteFile(cfg, []byte("temporal:\n  adress: x:1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, _, err := drctl(t, "validate", "--config", cfg, demoRunbook())
	if err == nil || !strings.Contains(err.Error(), "adress") {
		t.Errorf("error = %v, want one naming the unknown key adress", err)
	}
}

func TestSchema(t *testing.T) {
	out, _, err := drctl(t, "schema")
	if err != nil {
		t.Fatalf("schema: %v", err)
	}
	var schema struct {
		Defs map[string]struct {
			Properties map[string]struct {
				Enum []string `json:"enum"`
			} `json:"properties"`
		} `json:"$defs"`
	}
	if err := json.Unmarshal([]byte(out), &schema); err != nil {
		t.Fatalf("schema output is not JSON: %v\n%s", err, out)
	}
	for _, def := range []string{"step", "preflight"} {
		enum := schema.Defs[def].Properties["action"].Enum
		for _, want := range []string{"http.check", "note", "wait"} {
			if !slices.Contains(enum, want) {
				t.Errorf("$defs.%s.properties.action.enum = %v, missing %q", def, enum, want)
			}
		}
	}
}

// TestRefusedBeforeDialing: these mistakes are caught before any server is
// contacted (the configured address has no server, so a dial would fail
// with a different error).
func TestRefusedBeforeDialing(t *testing.T) {
	tests := []struct {
		name string
		args []string
		say  []string
	}{
		{"run with a bogus mode", []string{"run", "--mode", "bogus", demoRunbook()}, []string{`mode "bogus" is not one of failover, drill`}},
		{"drill of a runbook that cannot be put back", []string{"run", "--mode", "drill", "--set", "west_address=x", "--set", "health_url=http://x", "--set", "west_db_address=x", withoutFailback(t)}, []string{`step "promote-west": a drill cannot put back postgres.promote`, `step "traffic-to-west": traffic.shift changes its target and has no compensate:`}},
		{"run with chaos outside a drill", []string{"run", "--chaos", "promote=fail:1", "--set", "service_url=http://x", demoRunbook()}, []string{"chaos is injected in drills only"}},
		{"run with a malformed --set", []string{"run", "--set", "service_url", demoRunbook()}, []string{`--set "service_url": write NAME=VALUE`}},
		{"run with a broken runbook", []string{"run", "/nonexistent/runbook.yaml"}, []string{"/nonexistent/runbook.yaml"}},
		{"reject without a reason", []string{"reject", "demo", "go-ahead"}, []string{"rejection needs --reason"}},
		{"abort without a reason", []string{"abort", "demo"}, []string{"abort needs --reason"}},
		{"status with a bad output", []string{"status", "-o", "yaml", "demo"}, []string{`--output "yaml": use table or json`}},
		{"list with a bad output", []string{"list", "-o", "xml"}, []string{`--output "xml"`}},
		{"plan with a malformed --set", []string{"plan", "--set", "=x", demoRunbook()}, []string{`--set "=x"`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, _, err := drctl(t, tc.args...)
			if err == nil {
				t.Fatalf("drctl %v succeeded:\n%s", tc.args, out)
			}
			for _, want := range tc.say {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("drctl %v: error %q does not contain %q", tc.args, err, want)
				}
			}
		})
	}
}

func TestParseSets(t *testing.T) {
	got, err := parseSets([]string{"a=1", "b=x=y", "c="})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"a": "1", "b": "x=y", "c": ""}
	if len(got) != len(want) {
		t.Fatalf("parseSets = %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("parseSets[%q] = %q, want %q", k, got[k], v)
		}
	}
	for _, bad := range []string{"novalue", "=x"} {
		if _, err := parseSets([]string{bad}); err == nil || !strings.Contains(err.Error(), bad) {
			t.Errorf("parseSets(%q) error = %v, want one naming it", bad, err)
		}
	}
}

func TestParseChaos(t *testing.T) {
	got, err := parseChaos([]string{"fence=fail:2", "promote=latency:500ms,fail:1", "dns=fail:permanent"})
	if err != nil {
		t.Fatal(err)
	}
	want := []activities.Fault{
		{Step: "fence", Fail: 2},
		{Step: "promote", Fail: 1, Latency: runbooks.Duration(500 * time.Millisecond)},
		{Step: "dns", Permanent: true},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	for _, bad := range []string{"fence", "fence=", "fence=fail:x", "fence=latency:soon", "fence=boom:1"} {
		if _, err := parseChaos([]string{bad}); err == nil {
			t.Errorf("--chaos %q accepted", bad)
		}
	}
}

// TestReportJudgesAZeroRPOObjective: "rpo: 0s" is an objective (no data
// loss), not the absence of one.
func TestReportJudgesAZeroRPOObjective(t *testing.T) {
	zero, lost := runbooks.Duration(0), runbooks.Duration(2*time.Second)
	for _, tc := range []struct {
		rpo  *runbooks.Duration
		obj  runbooks.Objectives
		want string
	}{
		{&zero, runbooks.Objectives{RPOSet: true}, "RPO: 0s (objective 0s: met)"},
		{&lost, runbooks.Objectives{RPOSet: true}, "RPO: 2s (objective 0s: MISSED)"},
		{&lost, runbooks.Objectives{}, "RPO: 2s\n"},
	} {
		var b bytes.Buffer
		printReport(&b, &workflows.Report{State: workflows.StateSucceeded, RPO: tc.rpo, Objectives: tc.obj}, nil)
		if !strings.Contains(b.String(), tc.want) {
			t.Errorf("report %q lacks %q", b.String(), tc.want)
		}
	}
}

// TestValidateNeedsNoWorkerSecrets: checking a runbook reads no secret; a
// configuration naming a Slack token that this machine lacks still
// validates.
func TestValidateNeedsNoWorkerSecrets(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "drctl.yaml")
	if err := os.WriteFile(cfg, []byte("slack:\n  bot_token: {env: DRCTL_TEST_NO_SUCH_TOKEN}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, _, err := drctl(t, "validate", "--config", cfg, demoRunbook()); err != nil || !strings.Contains(out, "ok") {
		t.Fatalf("validate: %q %v", out, err)
	}
}

// TestValidateJSON: validate -o json prints one document with every file's
// result (ok, its problems with line, column, step and hint, or why it
// could not be read) and exits 1 when any has problems.
func TestValidateJSON(t *testing.T) {
	broken := writeRunbook(t, brokenRunbook)
	out, _, err := drctl(t, "-o", "json", "validate", demoRunbook(), broken, "/dev/zero")
	var doc struct {
		Runbooks []struct {
			File     string `json:"file"`
			OK       bool   `json:"ok"`
			Error    string `json:"error"`
			Problems []struct {
				Line    int    `json:"line"`
				Message string `json:"message"`
			} `json:"problems"`
		} `json:"runbooks"`
	}
	dec := json.NewDecoder(strings.NewReader(out))
	if jerr := dec.Decode(&doc); jerr != nil || dec.More() {
		t.Fatalf("stdout is not one JSON document (%v):\n%s", jerr, out)
	}
	if err == nil || len(doc.Runbooks) != 3 || !doc.Runbooks[0].OK || doc.Runbooks[1].OK || len(doc.Runbooks[1].Problems) == 0 || doc.Runbooks[1].Problems[0].Line == 0 || !strings.Contains(doc.Runbooks[2].Error, "not a regular file") {
		t.Fatalf("err %v, document %+v", err, doc)
	}
}

// TestActionsAndVersion: drctl actions says, per action, its inputs (the
// kinds a target input takes) and whether a drill can put it back; an
// unknown name is refused; drctl version names the Go it was built with.
func TestActionsAndVersion(t *testing.T) {
	out, _, err := drctl(t, "actions", "postgres.promote", "postgres.fence", "http.check")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"target*", "target (postgres)",
		"in a drill: no compensation can undo it",
		"in a drill: its compensate: step puts it back",
		"in a drill: reads only; nothing to put back",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("actions output lacks %q:\n%s", want, out)
		}
	}
	if _, _, err := drctl(t, "actions", "postgres.demote"); err == nil || !strings.Contains(err.Error(), `no action "postgres.demote"`) {
		t.Errorf("unknown action: %v", err)
	}
	if out, _, err := drctl(t, "version"); err != nil || !strings.HasPrefix(out, "drctl ") || !strings.Contains(out, "go1.") {
		t.Errorf("version: %q %v", out, err)
	}
}
