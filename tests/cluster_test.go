package tests

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/drctl/drctl/internal/config"
	"github.com/drctl/drctl/internal/lab"
	"github.com/drctl/drctl/internal/operator"
	"github.com/drctl/drctl/internal/tcluster"
	"github.com/drctl/drctl/internal/testwait"
	"github.com/drctl/drctl/worker"
	"github.com/drctl/drctl/workflows"
)

// TestCluster runs drctl against the production-shaped engine: the
// Temporal server built from its module, on PostgreSQL, its four services
// as four processes, reached over mutual TLS (internal/tcluster). One
// cluster serves the subtests; the one that kills the history service
// runs last.
func TestCluster(t *testing.T) {
	cl := startCluster(t)
	t.Run("EndToEndThroughTheCLI", func(t *testing.T) { clusterEndToEnd(t, cl) })
	t.Run("WorkerKilledMidStep", func(t *testing.T) { clusterWorkerKilled(t, cl) })
	t.Run("HistoryKilledMidRun", func(t *testing.T) { clusterHistoryKilled(t, cl) })
}

// startCluster starts a cluster for t and points the drctl binary and the
// worker processes the test starts at it: drctl reads temporal.address
// and temporal.tls from DRCTL_* variables, as an operator's shell would
// set them.
func startCluster(t *testing.T) *tcluster.Cluster {
	t.Helper()
	began := time.Now()
	cl, err := tcluster.Start(testwait.Context(t), tcluster.Options{})
	if errors.Is(err, tcluster.ErrNotInstalled) && os.Getenv("DRCTL_CI") == "" {
		t.Skip("the Temporal server (`make cluster`) and PostgreSQL 15 are needed; CI sets DRCTL_CI=1 and fails instead: ", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("cluster (PostgreSQL, 4 services, mutual TLS) started in %s at %s; logs in %s", time.Since(began).Round(time.Millisecond), cl.Address, cl.Dir)
	t.Cleanup(func() {
		if t.Failed() {
			for _, s := range tcluster.Services {
				if b, err := os.ReadFile(cl.LogFile(s)); err == nil {
					t.Logf("--- %s log (last lines) ---\n%s", s, lastLines(string(b), 15))
				}
			}
		}
		if err := cl.Stop(); err != nil {
			t.Logf("stop cluster: %v", err)
		}
	})
	for _, kv := range cl.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	return cl
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// clusterConfig is a worker/CLI configuration for cl with a task queue of
// the test's own.
func clusterConfig(t *testing.T, cl *tcluster.Cluster) config.Config {
	c := config.Defaults()
	c.Temporal.Address, c.Temporal.Namespace, c.Temporal.TLS = cl.Address, cl.Namespace, cl.TLS
	c.Temporal.TaskQueue = "q-" + strings.ToLower(strings.NewReplacer("/", "-", " ", "-").Replace(t.Name()))
	c.Identity = "worker@test"
	c.Worker.Sites = lab.Sites
	return c
}

// startClusterWorker runs an in-process worker that dials the cluster the
// way `drctl worker` does (worker.Dial, TLS from the configuration).
func startClusterWorker(t *testing.T, c config.Config) {
	t.Helper()
	cli, err := worker.Dial(testwait.Context(t), c, worker.DialOptions{})
	if err != nil {
		t.Fatal(err)
	}
	reg, err := worker.Actions(c)
	if err != nil {
		t.Fatal(err)
	}
	w := worker.New(cli, c, reg)
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Stop(); cli.Close() })
}

func clusterOperator(cl *tcluster.Cluster, c config.Config, who string) *operator.Operator {
	return &operator.Operator{Client: cl.Client(), TaskQueue: c.Temporal.TaskQueue, Identity: who, UpdateWait: 5 * time.Second}
}

// clusterEndToEnd drives a gated run with the drctl binary over TLS: run
// --detach, approval, status, history export and its replay.
func clusterEndToEnd(t *testing.T, cl *tcluster.Cluster) {
	c := clusterConfig(t, cl)
	startClusterWorker(t, c)
	health := healthServer(t)
	file := writeRunbook(t, fmt.Sprintf(gatedRunbook, "cluster-e2e"))
	op := clusterOperator(cl, c, "test")

	began := time.Now()
	out, code := drctl(t, c, "run", "--yes", file, "--set", "url="+health.URL, "--detach", "--as", "alice", "--reason", "cluster e2e")
	if code != 0 || !strings.Contains(out, "started failover run of e2e as drctl-cluster-e2e") {
		t.Fatalf("run: exit %d\n%s", code, out)
	}
	testwait.For(t, "the gate to await approval", func() bool {
		st, err := op.Status(context.Background(), "cluster-e2e")
		return err == nil && slices.Contains(st.Waiting, "go-ahead")
	})
	gate := time.Now()
	out, code = drctl(t, c, "approve", "cluster-e2e", "go-ahead", "--as", "alice")
	if code == 0 || !strings.Contains(out, "two-person rule: alice started this run") {
		t.Fatalf("self-approval: exit %d\n%s", code, out)
	}
	out, code = drctl(t, c, "approve", "cluster-e2e", "go-ahead", "--as", "bob", "--reason", "checked")
	if code != 0 || !strings.Contains(out, "step go-ahead approved by bob") {
		t.Fatalf("approve: exit %d\n%s", code, out)
	}
	approved := time.Now()
	rep, err := op.Wait(testwait.Context(t), "cluster-e2e")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("start to gate %s, approval through the CLI %s, approval to end %s",
		gate.Sub(began).Round(time.Millisecond), approved.Sub(gate).Round(time.Millisecond), time.Since(approved).Round(time.Millisecond))
	if rep.State != workflows.StateSucceeded || rep.RTO == nil || rep.StartedBy != "alice" {
		t.Fatalf("report: state %s rto %v by %s (%s)", rep.State, rep.RTO, rep.StartedBy, rep.Error)
	}
	if s, _ := rep.Step("done"); s.Summary != "verified after 2 tries" {
		t.Fatalf("done step summary = %q", s.Summary)
	}
	if !hasEvent(rep, "approved", "go-ahead", "bob") {
		t.Fatalf("no approval event: %+v", rep.Events)
	}
	out, code = drctl(t, c, "status", "cluster-e2e", "-o", "json")
	var got workflows.Report
	if code != 0 || json.Unmarshal([]byte(out), &got) != nil || got.State != workflows.StateSucceeded {
		t.Fatalf("status -o json: exit %d\n%s", code, out)
	}
	hist := filepath.Join(t.TempDir(), "history.json")
	if out, code = drctl(t, c, "history", "export", "cluster-e2e", "-f", hist); code != 0 {
		t.Fatalf("history export: exit %d\n%s", code, out)
	}
	if out, code = drctl(t, c, "replay", hist); code != 0 || !strings.Contains(out, "compatible") {
		t.Fatalf("replay: exit %d\n%s", code, out)
	}
}

// clusterWorkerKilled is the worker-kill test on the cluster.
func clusterWorkerKilled(t *testing.T, cl *tcluster.Cluster) {
	c := clusterConfig(t, cl)
	workerKilledMidStep(t, c, clusterOperator(cl, c, "alice"), "cluster-crash")
}

// clusterHistoryKilled: the history service process is SIGKILLed while a
// step is in flight; the step's activity ends while history is down. Once
// history is restarted the run resumes and completes, the side effect
// applied once.
func clusterHistoryKilled(t *testing.T, cl *tcluster.Cluster) {
	c := clusterConfig(t, cl)
	dir := t.TempDir()
	marker, release := filepath.Join(dir, "marker"), filepath.Join(dir, "release")
	startWorkerProcess(t, c, "worker-east")
	op := clusterOperator(cl, c, "alice")
	if _, err := op.Start(context.Background(), markerRunbook("cluster-history", marker, release), nil, workflows.ModeFailover, "history kill test"); err != nil {
		t.Fatal(err)
	}
	testwait.For(t, "the side effect", func() bool {
		b, _ := os.ReadFile(marker)
		return len(b) > 0
	})
	pid := cl.PID(tcluster.History)
	if err := cl.Kill(tcluster.History); err != nil {
		t.Fatal(err)
	}
	killedAt := time.Now()
	// The run cannot be read while no history host owns its shard.
	testwait.For(t, "the run to be unreadable with history down", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_, err := cl.Client().DescribeWorkflow(ctx, "drctl-cluster-history", "")
		return err != nil
	})
	// The step ends while history is down: its completion cannot be
	// recorded until history is back (the SDK retries it, or the step's
	// heartbeat timeout retries the step, which finds the marker).
	if err := os.WriteFile(release, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	down := time.Since(killedAt)
	if err := cl.Restart(testwait.Context(t), tcluster.History); err != nil {
		t.Fatal(err)
	}
	restartedAt := time.Now()
	t.Logf("history (pid %d) killed, down for %s, restarted as pid %d: listening %s later", pid, down.Round(time.Millisecond), cl.PID(tcluster.History), restartedAt.Sub(killedAt.Add(down)).Round(time.Millisecond))
	var st operator.RunStatus
	testwait.For(t, "the run to finish after history's restart", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		var err error
		st, err = op.Status(ctx, "cluster-history")
		return err == nil && st.Closed
	})
	seen := time.Since(restartedAt)
	rep, err := op.Wait(testwait.Context(t), "cluster-history")
	if err != nil {
		t.Fatal(err)
	}
	ended := "unknown"
	if rep.EndedAt != nil {
		ended = rep.EndedAt.Sub(restartedAt).Round(time.Millisecond).String()
	}
	act, _ := rep.Step("act")
	t.Logf("run completed %s after history's restart (seen closed after %s; %s after the kill); act took %d attempt(s)",
		ended, seen.Round(time.Millisecond), time.Since(killedAt).Round(time.Millisecond), act.Attempts)
	checkActedOnce(t, rep, marker)
}
