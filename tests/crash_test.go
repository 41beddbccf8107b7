package tests

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/drctl/drctl/internal/config"
	"github.com/drctl/drctl/internal/operator"
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
	workerKilledMidStep(t, c, operatorAs(srv, c, "alice"), "crash")
}

// workerKilledMidStep runs markerRunbook on worker-east, kills it with
// SIGKILL once the side effect is written and before the step reports,
// starts worker-west, and checks that the run completed with the side
// effect applied once (the retry found it done), on c's Temporal.
func workerKilledMidStep(t *testing.T, c config.Config, op *operator.Operator, lock string) {
	dir := t.TempDir()
	marker, release := filepath.Join(dir, "marker"), filepath.Join(dir, "release")
	first := startWorkerProcess(t, c, "worker-east")
	if _, err := op.Start(context.Background(), markerRunbook(lock, marker, release), nil, workflows.ModeFailover, "crash test"); err != nil {
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
	rep, err := op.Wait(testwait.Context(t), lock)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("run finished %s after the kill", time.Since(killedAt).Round(time.Millisecond))
	checkActedOnce(t, rep, marker)
	s, _ := rep.Step("act")
	if s.Attempts < 2 || s.Changed || fmt.Sprint(s.Outputs["pid"]) == fmt.Sprint(first.cmd.Process.Pid) {
		t.Fatalf("act: attempts %d changed %t pid %v; want a retry on the other worker that found the work done", s.Attempts, s.Changed, s.Outputs["pid"])
	}
}

// markerRunbook is before -> act (marker.write: the side effect, then held
// open until release exists) -> after, for the testworker's crash points.
func markerRunbook(lock, marker, release string) *runbooks.Runbook {
	return &runbooks.Runbook{
		APIVersion: runbooks.APIVersion, Name: lock, Lock: lock,
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
}

// checkActedOnce fails t unless the run succeeded and the marker was
// written exactly once, by the first attempt.
func checkActedOnce(t *testing.T, rep *workflows.Report, marker string) {
	t.Helper()
	if rep.State != workflows.StateSucceeded {
		t.Fatalf("state = %s (%s)", rep.State, rep.Error)
	}
	b, err := os.ReadFile(marker)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	key := activities.Request{Run: activities.Run{WorkflowID: rep.WorkflowID, RunID: rep.RunID}, Step: "act"}.IdempotencyKey()
	if len(lines) != 1 || !strings.HasPrefix(lines[0], key+" ") || !strings.Contains(lines[0], "attempt=1") {
		t.Fatalf("marker file, want one line by the first attempt keyed %s:\n%s", key, b)
	}
	if after, _ := rep.Step("after"); after.State != workflows.StepSucceeded {
		t.Fatalf("after: %s", after.State)
	}
}
