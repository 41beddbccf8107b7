package tests

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"go.temporal.io/api/workflowservice/v1"

	"github.com/drctl/drctl/internal/devserver"
)

// TestNoWorkerIsSaidNotHidden: with nothing polling the task queue, every
// command says so instead of waiting silently. run warns; plan prints the
// stages, says the state was not observed and exits 1, leaving no plan
// workflow behind; status shows the summary and why; abort queues the
// signal and points at --force, which ends the run and frees the lock.
func TestNoWorkerIsSaidNotHidden(t *testing.T) {
	srv := startServer(t, devserver.Options{})
	c := testConfig(t, srv)
	c.Temporal.TaskQueue = "nobody-polls-" + c.Temporal.TaskQueue
	health := healthServer(t)
	file := writeRunbook(t, fmt.Sprintf(gatedRunbook, "no-worker"))
	want := fmt.Sprintf("no worker is polling task queue %q", c.Temporal.TaskQueue)

	if out, code := drctl(t, c, "run", "--yes", file, "--set", "url="+health.URL, "--detach", "--as", "alice"); code != 0 || !strings.Contains(out, "warning: "+want) {
		t.Fatalf("run: exit %d\n%s", code, out)
	}
	if out, code := drctl(t, c, "plan", file, "--set", "url="+health.URL); code != 1 || !strings.Contains(out, "go-ahead") || !strings.Contains(out, "current state not observed: "+want) {
		t.Fatalf("plan: exit %d\n%s", code, out)
	}
	if out, code := drctl(t, c, "status", "no-worker"); code != 0 || !strings.Contains(out, want) {
		t.Fatalf("status: exit %d\n%s", code, out)
	}
	if out, code := drctl(t, c, "abort", "no-worker", "--reason", "test"); code != 0 || !strings.Contains(out, "sent as a signal") || !strings.Contains(out, "abort no-worker --force") {
		t.Fatalf("abort: exit %d\n%s", code, out)
	}
	if out, code := drctl(t, c, "abort", "no-worker", "--force", "--reason", "no worker will come", "--as", "carol"); code != 0 || !strings.Contains(out, "terminated by carol; no compensation ran; the lock is free") {
		t.Fatalf("abort --force: exit %d\n%s", code, out)
	}
	if out, code := drctl(t, c, "run", "--yes", file, "--set", "url="+health.URL, "--detach", "--as", "alice"); code != 0 {
		t.Fatalf("a new run of the freed lock: exit %d\n%s", code, out)
	}
	// No plan workflow was left queued.
	resp, err := srv.Client().ListWorkflow(context.Background(), &workflowservice.ListWorkflowExecutionsRequest{Namespace: c.Temporal.Namespace})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range resp.GetExecutions() {
		if strings.HasPrefix(e.GetExecution().GetWorkflowId(), "drctl-plan-") {
			t.Errorf("a plan workflow was started with no worker: %s", e.GetExecution().GetWorkflowId())
		}
	}
}
