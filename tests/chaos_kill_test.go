package tests

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/drctl/drctl/internal/testwait"
)

// chaosCIPoints are the kill points CI runs: the worker killed right after
// pg_promote (a retry must not promote again), while the approval gate
// waits, and right after the promotion, when the next workflow task is in
// flight. `go run ./tests/chaos` runs every kill point.
const chaosCIPoints = "in:promote-west,in:approve-promotion,before:traffic-to-west"

// TestChaosWorkerKillsDuringSiteFailover runs the chaos command on three of
// its kill points: each time site-failover.yaml fails a fresh lab over under
// write load, the worker process is SIGKILLed at the point and a fresh one
// started, and the command checks from outside that the run completed, west
// alone is primary, DNS and HAProxy point at west, no acknowledged write was
// lost, west was promoted once and no retried step acted again. It exits
// non-zero on any violation.
func TestChaosWorkerKillsDuringSiteFailover(t *testing.T) {
	needLab(t)
	start := time.Now()
	bin := filepath.Join(binDir, "chaos")
	if out, err := exec.Command("go", "build", "-o", bin, "./chaos").CombinedOutput(); err != nil {
		t.Fatalf("build tests/chaos: %v\n%s", err, out)
	}
	ctx := testwait.Context(t)
	cmd := exec.CommandContext(ctx, bin, "-points", chaosCIPoints, "-baseline=false", "-worker", filepath.Join(binDir, "testworker"))
	cmd.Dir = ".." // the module root: its runbooks and bin/temporal
	// On timeout, let it stop what it started (labs, workers, dev server).
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 30 * time.Second
	out, err := cmd.CombinedOutput()
	t.Logf("go run ./tests/chaos -points %s -baseline=false (%s):\n%s", chaosCIPoints, time.Since(start).Round(time.Millisecond), out)
	if err != nil {
		t.Fatalf("chaos: %v", err)
	}
	want := "summary: runs 3, kills 3, completed 3 of 3, invariant violations 0"
	if !strings.Contains(string(out), want) {
		t.Errorf("no %q in the output", want)
	}
	if strings.Contains(string(out), "NOT REACHED") {
		t.Errorf("a kill point was not reached")
	}
}
