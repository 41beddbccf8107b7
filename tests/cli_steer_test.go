package tests

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/drctl/drctl/internal/devserver"
	"github.com/drctl/drctl/internal/testwait"
	"github.com/drctl/drctl/workflows"
)

// TestSteeringFromTheShell drives the binary the way an operator's shell
// does: completion offers the lock of a run waiting at a gate and then the
// gate; `list --waiting` finds it; `-o json` of list and status uses
// snake_case keys; once a second run of the same lock has started, the
// first is still reachable by its run ID (status, history export).
func TestSteeringFromTheShell(t *testing.T) {
	srv := startServer(t, devserver.Options{})
	c := testConfig(t, srv)
	startWorker(t, srv, c)
	health := healthServer(t)
	ctx := testwait.Context(t)
	file := writeRunbook(t, fmt.Sprintf(gatedRunbook, "steer"))
	alice, bob := operatorAs(srv, c, "alice"), operatorAs(srv, c, "bob")
	rb := loadRunbook(t, nil, file)
	first, err := alice.Start(ctx, rb, map[string]string{"url": health.URL}, workflows.ModeFailover, "first")
	if err != nil {
		t.Fatal(err)
	}
	testwait.For(t, "the first run at its gate", func() bool {
		st, err := alice.Status(ctx, "steer")
		return err == nil && slices.Contains(st.Waiting, "go-ahead")
	})

	complete := func(args ...string) []string {
		t.Helper()
		out, code := drctl(t, c, append([]string{"__complete"}, args...)...)
		if code != 0 {
			t.Fatalf("__complete %v: exit %d\n%s", args, code, out)
		}
		var words []string
		for _, line := range strings.Split(out, "\n") {
			if line != "" && !strings.HasPrefix(line, ":") && !strings.HasPrefix(line, "Completion ended") {
				words = append(words, strings.SplitN(line, "\t", 2)[0])
			}
		}
		return words
	}
	if got := complete("approve", ""); !slices.Contains(got, "steer") {
		t.Errorf("approve <TAB>: %q, want the lock steer", got)
	}
	if got := complete("approve", "steer", ""); !slices.Equal(got, []string{"go-ahead"}) {
		t.Errorf("approve steer <TAB>: %q, want go-ahead", got)
	}
	if got := complete("run", "--mode", ""); !slices.Equal(got, []string{"failover", "drill"}) {
		t.Errorf("run --mode <TAB>: %q", got)
	}

	out, code := drctl(t, c, "-o", "json", "list", "--waiting")
	var listed []map[string]any
	if code != 0 || json.Unmarshal([]byte(out), &listed) != nil || len(listed) != 1 || listed[0]["workflow_id"] != "drctl-steer" || listed[0]["run_id"] != first.RunID {
		t.Fatalf("list --waiting -o json (exit %d):\n%s", code, out)
	}
	if _, pascal := listed[0]["WorkflowID"]; pascal {
		t.Errorf("list -o json uses PascalCase keys: %s", out)
	}
	if _, err := bob.Decide(ctx, "steer", "go-ahead", true, "ok"); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.Wait(ctx, "steer"); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.Start(ctx, rb, map[string]string{"url": health.URL}, workflows.ModeFailover, "second"); err != nil {
		t.Fatal(err)
	}
	out, code = drctl(t, c, "-o", "json", "status", first.RunID)
	var st map[string]any
	if code != 0 || json.Unmarshal([]byte(out), &st) != nil || st["run_id"] != first.RunID || st["state"] != workflows.StateSucceeded || st["reason"] != "first" {
		t.Fatalf("status of the first run by its run ID (exit %d):\n%s", code, out)
	}
	if out, code := drctl(t, c, "history", "export", first.RunID); code != 0 || !strings.Contains(out, first.RunID) {
		t.Errorf("history export of the first run by its run ID (exit %d): %.300s", code, out)
	}
	if out, code := drctl(t, c, "status", "00000000-0000-4000-8000-000000000000"); code == 0 || !strings.Contains(out, "no run with run ID") {
		t.Errorf("status of an unknown run ID (exit %d):\n%s", code, out)
	}
	// Ending the second run with no compensation names what stays done
	// (through --terminate, the old name of --force, which scripts use).
	testwait.For(t, "the second run at its gate", func() bool {
		st, err := alice.Status(ctx, "steer")
		return err == nil && slices.Contains(st.Waiting, "go-ahead")
	})
	if out, code := drctl(t, c, "abort", "steer", "--terminate", "--reason", "test over", "--as", "carol"); code != 0 || !strings.Contains(out, "not undone (these steps had changed something): announce") || !strings.Contains(out, "--terminate has been deprecated, use --force") {
		t.Errorf("abort --terminate (exit %d):\n%s", code, out)
	}
}

// TestWrongNamespaceAndTLSAreNamed: a namespace the server does not have,
// and TLS spoken to a plain dev server, are each answered with what to
// change, not a raw error.
func TestWrongNamespaceAndTLSAreNamed(t *testing.T) {
	srv := startServer(t, devserver.Options{})
	c := testConfig(t, srv)
	if out, code := drctl(t, c, "--namespace", "nope", "list"); code == 0 || !strings.Contains(out, `has no namespace "nope"`) || !strings.Contains(out, "temporal operator namespace list") {
		t.Errorf("wrong namespace (exit %d):\n%s", code, out)
	}
	cfg := filepath.Join(t.TempDir(), "drctl.yaml")
	if err := os.WriteFile(cfg, []byte("temporal: {tls: {enabled: true}}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, code := drctl(t, c, "--config", cfg, "list"); code == 0 || !strings.Contains(out, "drctl speaks TLS") {
		t.Errorf("TLS to a plain server (exit %d):\n%s", code, out)
	}
}
