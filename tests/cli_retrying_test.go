package tests

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/drctl/drctl/activities"
	"github.com/drctl/drctl/internal/devserver"
	"github.com/drctl/drctl/internal/operator"
	"github.com/drctl/drctl/internal/testwait"
	"github.com/drctl/drctl/workflows"
)

// retryingRunbook has one step that a drill's chaos fails on its first
// attempts; its retry interval keeps it waiting between attempts long
// enough to be read. run_on: any sends the note through the server as an
// activity (a note is otherwise a local activity, whose attempts the server
// does not list).
const retryingRunbook = `apiVersion: drctl/v1
name: retrying
lock: %s
steps:
  - id: flaky
    action: note
    run_on: any
    with: {message: "flaky"}
    retry: {initial_interval: 1m, max_interval: 1m, max_attempts: 5}
    compensate: {action: note, with: {message: "undo flaky"}}
`

// TestStatusShowsAStepStillRetrying: while a step is between attempts,
// status (text and JSON) shows its attempt, its last error without
// Temporal's type and retryability, and when the next attempt is due;
// states are coloured only when asked (never in JSON, not into a pipe);
// abort --force ends the run and frees its lock.
func TestStatusShowsAStepStillRetrying(t *testing.T) {
	srv := startServer(t, devserver.Options{})
	c := testConfig(t, srv)
	startWorker(t, srv, c)
	ctx := testwait.Context(t)
	file := writeRunbook(t, fmt.Sprintf(retryingRunbook, "retrying"))
	rb := loadRunbook(t, nil, file)
	op := operatorAs(srv, c, "alice")
	if _, err := op.StartWith(ctx, rb, operator.StartOptions{Mode: workflows.ModeDrill, Reason: "retry test", Chaos: []activities.Fault{{Step: "flaky", Fail: 4}}}); err != nil {
		t.Fatal(err)
	}

	var st struct {
		State string `json:"state"`
		Steps []struct {
			ID       string `json:"id"`
			State    string `json:"state"`
			Attempts int32  `json:"attempts"`
		} `json:"steps"`
		InFlight []operator.Attempt `json:"in_flight"`
	}
	// Waiting in-process: a drctl process every 20 ms would starve the
	// worker on two cores.
	testwait.For(t, "flaky's second attempt due", func() bool {
		st, err := op.Status(ctx, "retrying")
		return err == nil && len(st.InFlight) == 1 && st.InFlight[0].Attempt >= 2 && st.InFlight[0].NextAttemptAt != nil
	})
	out, code := drctl(t, c, "-o", "json", "--color", "always", "status", "retrying")
	if err := json.Unmarshal([]byte(out), &st); code != 0 || err != nil || len(st.InFlight) != 1 {
		t.Fatalf("status -o json (exit %d, %v):\n%s", code, err, out)
	}
	a := st.InFlight[0]
	if a.Step != "flaky" || a.MaxAttempts != 5 || !strings.HasPrefix(a.LastError, "chaos: injected failure (attempt ") || strings.Contains(a.LastError, "retryable") ||
		a.NextAttemptInMs == nil || *a.NextAttemptInMs <= 0 || a.NextAttemptIn == "" || a.LastWorker == "" {
		t.Errorf("in flight: %+v\n%s", a, out)
	}
	if len(st.Steps) != 1 || st.Steps[0].State != workflows.StepRunning || st.Steps[0].Attempts != a.Attempt {
		t.Errorf("steps: %+v, want flaky running at attempt %d", st.Steps, a.Attempt)
	}
	if strings.Contains(out, "\x1b") {
		t.Errorf("-o json --color always is coloured:\n%q", out)
	}

	out, code = drctl(t, c, "status", "retrying")
	t.Logf("status while flaky retries:\n%s", out)
	row := regexp.MustCompile(`(?m)^  flaky +step +note +running +(\d+) .*retrying: chaos: injected failure`)
	if m := row.FindStringSubmatch(out); code != 0 || m == nil || m[1] == "1" {
		t.Errorf("status: no row of flaky running with its attempt and last error (exit %d):\n%s", code, out)
	}
	if !regexp.MustCompile(`retrying: step flaky, attempt \d of 5 due in \S+ \(\d\d:\d\d:\d\dZ\); last error: chaos: injected failure \(attempt \d of 4 failing\) \(on `).MatchString(out) {
		t.Errorf("status does not say when flaky's next attempt is due:\n%s", out)
	}
	if strings.Contains(out, "\x1b") {
		t.Errorf("status into a pipe is coloured:\n%q", out)
	}
	if out, _ := drctl(t, c, "--color", "always", "status", "retrying"); !strings.Contains(out, "state: \x1b[36mrunning\x1b[0m") {
		t.Errorf("status --color always does not colour the state:\n%q", out)
	}
	if out, _ := drctl(t, c, "--color", "always", "list"); !regexp.MustCompile("  \x1b\\[36mrunning\x1b\\[0m +\\d{4}-").MatchString(out) {
		t.Errorf("list --color always does not colour the state, padded:\n%q", out)
	}

	out, code = drctl(t, c, "abort", "retrying", "--force", "--reason", "test over", "--as", "carol")
	if code != 0 || !strings.Contains(out, "terminated by carol; no compensation ran; the lock is free") {
		t.Fatalf("abort --force (exit %d):\n%s", code, out)
	}
	if _, err := op.StartWith(ctx, rb, operator.StartOptions{Mode: workflows.ModeDrill, Reason: "again"}); err != nil {
		t.Fatalf("the lock is not free after abort --force: %v", err)
	}
}
