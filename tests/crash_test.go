package tests

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/drctl/drctl/internal/testwait"

	"github.com/drctl/drctl/activities"
	"github.com/drctl/drctl/internal/devserver"
	"github.com/drctl/drctl/runbooks"
	"github.com/drctl/drctl/workflows"
)

// TestWorkerKilledMidStepActsExactlyOnce kills the worker process with
// SIGKILL while a step is inside its activity, after the side effect and
// before the activity reported. A fresh worker process picks the run up:
// the retried step observes that the side effect already happened and does
// not act again, and the run completes.
func TestWorkerKilledMidStepActsExactlyOnce(t *testing.T) {
	srv := startServer(t, devserver.Options{})
	c := testConfig(t, srv)
	dir := t.TempDir()
	marker, release := filepath.Join(dir, "marker"), filepath.Join(dir, "release")

	first := startWorkerProcess(t, c, "worker-east")
	rb := &runbooks.Runbook{
		APIVersion: runbooks.APIVersion, Name: "crash", Lock: "crash",
		Steps: []runbooks.Step{
			{ID: "before", Action: "note", With: map[string]any{"message": "before"}},
			{
				ID: "act", Action: "marker.write", Needs: []string{"before"},
				With:      map[string]any{"file": marker, "release": release},
				Heartbeat: runbooks.Duration(time.Second),
				Retry:     &runbooks.RetryPolicy{InitialInterval: runbooks.Duration(100 * time.Millisecond)},
			},
			{ID: "after", Action: "note", Needs: []string{"act"}, With: map[string]any{"message": "after"}},
		},
	}
	op := operatorAs(srv, c, "alice")
	if _, err := op.Start(context.Background(), rb, nil, workflows.ModeFailover, "crash test"); err != nil {
		t.Fatal(err)
	}
	testwait.For(t, "the side effect", func() bool {
		b, _ := os.ReadFile(marker)
		return len(b) > 0
	})
	first.kill9(t)
	killedAt := time.Now()

	startWorkerProcess(t, c, "worker-west")
	if err := os.WriteFile(release, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	ctx := testwait.Context(t)
	rep, err := op.Wait(ctx, "crash")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("run finished %s after the kill", time.Since(killedAt).Round(time.Millisecond))
	if rep.State != workflows.StateSucceeded {
		t.Fatalf("state = %s (%s)", rep.State, rep.Error)
	}
	b, err := os.ReadFile(marker)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 1 {
		t.Fatalf("side effect applied %d times, want once:\n%s", len(lines), b)
	}
	key := activities.Request{Run: activities.Run{WorkflowID: rep.WorkflowID, RunID: rep.RunID}, Step: "act"}.IdempotencyKey()
	if !strings.HasPrefix(lines[0], key+" ") || !strings.Contains(lines[0], "attempt=1") {
		t.Fatalf("marker = %q, want the first attempt's write keyed %s", lines[0], key)
	}
	s, _ := rep.Step("act")
	if s.Attempts < 2 || s.Changed {
		t.Fatalf("act: attempts %d changed %t; want a retry that found the work done", s.Attempts, s.Changed)
	}
	if fmt.Sprint(s.Outputs["pid"]) == fmt.Sprint(first.cmd.Process.Pid) {
		t.Fatalf("the step was completed by the killed worker")
	}
	if after, _ := rep.Step("after"); after.State != workflows.StepSucceeded {
		t.Fatalf("after: %s", after.State)
	}
}
