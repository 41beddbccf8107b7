package tests

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/drctl/drctl/internal/testwait"

	"github.com/drctl/drctl/internal/config"
	"github.com/drctl/drctl/internal/devserver"
	"github.com/drctl/drctl/internal/operator"
	"github.com/drctl/drctl/runbooks"
	"github.com/drctl/drctl/worker"
	"github.com/drctl/drctl/workflows"
)

func healthServer(t *testing.T) *httptest.Server {
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") }))
	t.Cleanup(s.Close)
	return s
}

// writeRunbook writes text to a temp file and returns its path.
func writeRunbook(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "runbook.yaml")
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func loadRunbook(t *testing.T, c interface{}, path string) *runbooks.Runbook {
	t.Helper()
	reg, err := worker.Actions(config.Defaults())
	if err != nil {
		t.Fatal(err)
	}
	rb, err := runbooks.Load(path, reg)
	if err != nil {
		t.Fatal(err)
	}
	return rb
}

const gatedRunbook = `apiVersion: drctl/v1
name: e2e
lock: %s
objectives: {rto: 5m}
params:
  url: {required: true}
preflight:
  - id: up
    action: http.check
    with: {url: "${{ params.url }}"}
steps:
  - id: announce
    action: note
    with: {message: "started by ${{ run.started_by }}"}
    compensate: {action: note, with: {message: "undo announce"}}
  - id: go-ahead
    needs: [announce]
    approval:
      approvers: [alice, bob]
      drill_approvers: [drill-bot]
  - id: verify
    needs: [go-ahead]
    action: http.check
    with: {url: "${{ params.url }}", successes: 2, interval: 50ms}
  - id: done
    needs: [verify]
    action: note
    with: {message: "verified after ${{ steps.verify.outputs.tries }} tries"}
`

// TestRunbookEndToEndThroughTheCLI drives a whole run with the drctl binary:
// run --detach, a refused self-approval, an approval, status, history export
// and replay of that history.
func TestRunbookEndToEndThroughTheCLI(t *testing.T) {
	srv := startServer(t, devserver.Options{})
	c := testConfig(t, srv)
	startWorker(t, srv, c)
	health := healthServer(t)
	file := writeRunbook(t, fmt.Sprintf(gatedRunbook, "e2e-cli"))
	op := operatorAs(srv, c, "test")

	// Without a terminal to ask on and without --yes, nothing starts.
	out, code := drctl(t, c, "run", file, "--set", "url="+health.URL, "--detach", "--as", "alice", "--reason", "e2e test")
	if code == 0 || !strings.Contains(out, "pass --yes") {
		t.Fatalf("run without --yes and without a terminal: exit %d\n%s", code, out)
	}
	if _, err := op.Status(context.Background(), "e2e-cli"); err == nil {
		t.Fatal("a run was started without confirmation")
	}
	out, code = drctl(t, c, "run", "--yes", file, "--set", "url="+health.URL, "--detach", "--as", "alice", "--reason", "e2e test")
	if code != 0 || !strings.Contains(out, "started failover run of e2e as drctl-e2e-cli") {
		t.Fatalf("run: exit %d\n%s", code, out)
	}
	testwait.For(t, "the gate to await approval", func() bool {
		st, err := op.Status(context.Background(), "e2e-cli")
		return err == nil && slices.Contains(st.Waiting, "go-ahead")
	})

	out, code = drctl(t, c, "approve", "e2e-cli", "go-ahead", "--as", "alice")
	if code == 0 || !strings.Contains(out, "two-person rule: alice started this run") {
		t.Fatalf("self-approval: exit %d\n%s", code, out)
	}
	out, code = drctl(t, c, "approve", "e2e-cli", "verify", "--as", "bob")
	if code == 0 || !strings.Contains(out, `step "verify" is an action, not an approval gate; awaiting approval: go-ahead`) {
		t.Fatalf("approve an action step: exit %d\n%s", code, out)
	}
	out, code = drctl(t, c, "approve", "e2e-cli", "go-ahead", "--as", "bob", "--reason", "checked")
	if code != 0 || !strings.Contains(out, "step go-ahead approved by bob") {
		t.Fatalf("approve: exit %d\n%s", code, out)
	}

	rep, err := op.Wait(context.Background(), "e2e-cli")
	if err != nil {
		t.Fatal(err)
	}
	if rep.State != workflows.StateSucceeded || rep.RTO == nil || rep.StartedBy != "alice" || rep.Reason != "e2e test" {
		t.Fatalf("report: state %s rto %v by %s reason %q (%s)", rep.State, rep.RTO, rep.StartedBy, rep.Reason, rep.Error)
	}
	if s, _ := rep.Step("done"); s.Summary != "verified after 2 tries" {
		t.Fatalf("done step summary = %q", s.Summary)
	}
	if !hasEvent(rep, "approved", "go-ahead", "bob") {
		t.Fatalf("no approval event: %+v", rep.Events)
	}

	out, code = drctl(t, c, "approve", "e2e-cli", "go-ahead", "--as", "bob")
	if code == 0 || !strings.Contains(out, "has ended") {
		t.Fatalf("approve after the end: exit %d\n%s", code, out)
	}
	out, code = drctl(t, c, "status", "e2e-cli", "-o", "json")
	var got workflows.Report
	if code != 0 || json.Unmarshal([]byte(out), &got) != nil || got.State != workflows.StateSucceeded {
		t.Fatalf("status -o json: exit %d\n%s", code, out)
	}
	hist := filepath.Join(t.TempDir(), "history.json")
	if out, code = drctl(t, c, "history", "export", "e2e-cli", "-f", hist); code != 0 {
		t.Fatalf("history export: exit %d\n%s", code, out)
	}
	if out, code = drctl(t, c, "replay", hist); code != 0 || !strings.Contains(out, "compatible") {
		t.Fatalf("replay: exit %d\n%s", code, out)
	}
	if out, code = drctl(t, c, "status", "no-such-lock"); code == 0 || !strings.Contains(out, `no run "no-such-lock"`) {
		t.Fatalf("status of a missing run: exit %d\n%s", code, out)
	}
}

// TestJSONOutputForScripts: with -o json, stdout is exactly one JSON
// document and the exit code says how the run ended (0 succeeded, 1 error,
// 2 failed or aborted), so a script can trust both.
func TestJSONOutputForScripts(t *testing.T) {
	srv := startServer(t, devserver.Options{})
	c := testConfig(t, srv)
	startWorker(t, srv, c)
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	t.Cleanup(down.Close)
	jsonRun := func(args ...string) (map[string]any, int, string) {
		t.Helper()
		var stdout, stderr syncBuffer
		code := drctlTo(t, c, &stdout, &stderr, append([]string{"-o", "json"}, args...)...)
		var doc map[string]any
		dec := json.NewDecoder(strings.NewReader(stdout.String()))
		if err := dec.Decode(&doc); err != nil || dec.More() {
			t.Fatalf("drctl -o json %v: stdout is not one JSON document (%v), exit %d\nstdout:\n%s\nstderr:\n%s", args, err, code, stdout.String(), stderr.String())
		}
		return doc, code, stderr.String()
	}

	failing := writeRunbook(t, `apiVersion: drctl/v1
name: json-fails
lock: json-fails
params:
  url: {required: true}
preflight:
  - id: up
    action: http.check
    with: {url: "${{ params.url }}", deadline: 1s, interval: 100ms}
    retry: {max_attempts: 1}
steps:
  - id: done
    action: note
    with: {message: never}
`)
	doc, code, stderr := jsonRun("run", "--yes", failing, "--set", "url="+down.URL)
	if code != 2 || doc["state"] != workflows.StateFailed || !strings.Contains(stderr, "started failover run") {
		t.Fatalf("run of a failing runbook: exit %d, state %v, stderr %q", code, doc["state"], stderr)
	}

	doc, code, _ = jsonRun("status", "no-such-lock")
	if code != 1 || !strings.Contains(fmt.Sprint(doc["error"]), `no run "no-such-lock"`) {
		t.Fatalf("status of a missing run: exit %d, %v", code, doc)
	}

	gated := writeRunbook(t, fmt.Sprintf(gatedRunbook, "json-aborted"))
	doc, code, _ = jsonRun("run", "--yes", gated, "--set", "url="+healthServer(t).URL, "--detach")
	if code != 0 || doc["workflow_id"] != "drctl-json-aborted" || doc["run_id"] == "" {
		t.Fatalf("run --detach: exit %d, %v", code, doc)
	}
	if out, code := drctl(t, c, "abort", "json-aborted", "--reason", "test"); code != 0 {
		t.Fatalf("abort: exit %d\n%s", code, out)
	}
	doc, code, _ = jsonRun("watch", "json-aborted")
	if code != 2 || doc["state"] != workflows.StateAborted {
		t.Fatalf("watch of an aborted run: exit %d, state %v", code, doc["state"])
	}
}

// TestOneRunPerLock starts the same lock four times at once: exactly one run
// starts and the others are told who holds the lock. A fifth start through
// the CLI is refused too; then the CLI aborts the run.
func TestOneRunPerLock(t *testing.T) {
	srv := startServer(t, devserver.Options{})
	c := testConfig(t, srv)
	startWorker(t, srv, c)
	health := healthServer(t)
	file := writeRunbook(t, fmt.Sprintf(gatedRunbook, "one-lock"))
	rb := loadRunbook(t, nil, file)

	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		started []string
		held    []*operator.LockHeldError
	)
	for _, who := range []string{"alice", "bob", "carol", "dave"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := operatorAs(srv, c, who).Start(context.Background(), rb, map[string]string{"url": health.URL}, "failover", "")
			mu.Lock()
			defer mu.Unlock()
			var lh *operator.LockHeldError
			switch {
			case err == nil:
				started = append(started, who)
			case errors.As(err, &lh):
				held = append(held, lh)
			default:
				t.Errorf("start as %s: %v", who, err)
			}
		}()
	}
	wg.Wait()
	if len(started) != 1 || len(held) != 3 {
		t.Fatalf("started by %v, refused %d; want exactly one start", started, len(held))
	}
	for _, lh := range held {
		if lh.StartedBy != started[0] || lh.WorkflowID != "drctl-one-lock" {
			t.Fatalf("refusal names %q/%s, want the winner %q", lh.StartedBy, lh.WorkflowID, started[0])
		}
	}
	out, code := drctl(t, c, "run", "--yes", file, "--set", "url="+health.URL, "--as", "erin")
	if code == 0 || !strings.Contains(out, `lock "one-lock" is held by run drctl-one-lock (runbook e2e), started by `+started[0]) {
		t.Fatalf("third start: exit %d\n%s", code, out)
	}

	op := operatorAs(srv, c, "test")
	testwait.For(t, "the gate", func() bool {
		st, err := op.Status(context.Background(), "one-lock")
		return err == nil && slices.Contains(st.Waiting, "go-ahead")
	})
	if out, code = drctl(t, c, "abort", "one-lock", "--as", "frank"); code == 0 || !strings.Contains(out, "needs --reason") {
		t.Fatalf("abort without reason: exit %d\n%s", code, out)
	}
	if out, code = drctl(t, c, "abort", "one-lock", "--as", "frank", "--reason", "drill over"); code != 0 {
		t.Fatalf("abort: exit %d\n%s", code, out)
	}
	rep, err := op.Wait(context.Background(), "one-lock")
	if err != nil {
		t.Fatal(err)
	}
	if rep.State != workflows.StateAborted || len(rep.Compensations) != 1 || rep.Compensations[0].State != workflows.StepSucceeded {
		t.Fatalf("after abort: state %s compensations %+v", rep.State, rep.Compensations)
	}
	// The lock is free again once the run has ended.
	if _, err := op.Start(context.Background(), rb, map[string]string{"url": health.URL}, "failover", ""); err != nil {
		t.Fatalf("start after the run ended: %v", err)
	}
}

// TestDecisionSurvivesWorkerAbsence: the gate is reached, the worker goes
// away, the operator approves (queued as a signal since no worker answers
// the update), and a new worker applies it and finishes the run. Status is
// readable from the memo while no worker runs.
func TestDecisionSurvivesWorkerAbsence(t *testing.T) {
	srv := startServer(t, devserver.Options{})
	c := testConfig(t, srv)
	health := healthServer(t)
	rb := loadRunbook(t, nil, writeRunbook(t, fmt.Sprintf(gatedRunbook, "no-worker")))
	reg, err := worker.Actions(c)
	if err != nil {
		t.Fatal(err)
	}
	w := worker.New(srv.Client(), c, reg)
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	alice := operatorAs(srv, c, "alice")
	if _, err := alice.Start(context.Background(), rb, map[string]string{"url": health.URL}, "failover", ""); err != nil {
		t.Fatal(err)
	}
	testwait.For(t, "the gate", func() bool {
		st, err := alice.Status(context.Background(), "no-worker")
		return err == nil && slices.Contains(st.Waiting, "go-ahead")
	})
	w.Stop()

	out, code := drctl(t, c, "status", "no-worker")
	if code != 0 || !strings.Contains(out, "awaiting approval: go-ahead") || !strings.Contains(out, "summary only") {
		t.Fatalf("status without a worker: exit %d\n%s", code, out)
	}
	bob := operatorAs(srv, c, "bob")
	bob.UpdateWait = 2 * time.Second
	d, err := bob.Decide(context.Background(), "no-worker", "go-ahead", true, "worker was down")
	if err != nil || d != operator.Queued {
		t.Fatalf("decide with no worker: %v, %v; want queued", d, err)
	}
	startWorker(t, srv, c)
	rep, err := alice.Wait(context.Background(), "no-worker")
	if err != nil {
		t.Fatal(err)
	}
	if rep.State != workflows.StateSucceeded || !hasEvent(rep, "approved", "go-ahead", "bob") {
		t.Fatalf("state %s events %+v", rep.State, rep.Events)
	}
}

func hasEvent(rep *workflows.Report, kind, step, by string) bool {
	for _, e := range rep.Events {
		if e.Kind == kind && e.Step == step && e.By == by {
			return true
		}
	}
	return false
}

// TestPlanObservesWithoutActing: drctl plan prints the stages and, from a
// worker, each action's read-only Observe; it starts no run and holds no
// lock.
func TestPlanObservesWithoutActing(t *testing.T) {
	srv := startServer(t, devserver.Options{})
	c := testConfig(t, srv)
	startWorker(t, srv, c)
	health := healthServer(t)
	file := writeRunbook(t, fmt.Sprintf(gatedRunbook, "plan-only"))
	out, code := drctl(t, c, "plan", file, "--set", "url="+health.URL)
	for _, want := range []string{
		"preflight (in parallel):",
		"up                   http.check         any      now: GET " + health.URL + ": 200; nothing to change",
		"announce             note               any      now: would record: started by ",
		"go-ahead             approval                    approval by one of: alice, bob",
		"done                 note               any      observed at run time: inputs depend on earlier steps",
	} {
		if code != 0 || !strings.Contains(out, want) {
			t.Fatalf("plan: exit %d, output lacks %q:\n%s", code, want, out)
		}
	}
	if _, err := operatorAs(srv, c, "x").Status(context.Background(), "plan-only"); err == nil {
		t.Fatal("plan started a run holding the lock")
	}
}
