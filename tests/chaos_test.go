package tests

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/drctl/drctl/internal/testwait"

	"github.com/drctl/drctl/internal/devserver"
	"github.com/drctl/drctl/internal/operator"
	"github.com/drctl/drctl/runbooks"
	"github.com/drctl/drctl/workflows"
)

func noteBook(lock string, steps int) *runbooks.Runbook {
	rb := &runbooks.Runbook{APIVersion: runbooks.APIVersion, Name: "notes", Lock: lock}
	for i := 0; i < steps; i++ {
		s := runbooks.Step{ID: fmt.Sprintf("s%d", i), Action: "note", With: map[string]any{"message": fmt.Sprint(i)}}
		if i > 0 {
			s.Needs = []string{fmt.Sprintf("s%d", i-1)}
		}
		rb.Steps = append(rb.Steps, s)
	}
	return rb
}

// TestConcurrentStarts: ten concurrent starts of one lock give exactly one
// run; ten different locks all run to completion.
func TestConcurrentStarts(t *testing.T) {
	srv := startServer(t, devserver.Options{})
	c := testConfig(t, srv)
	startWorker(t, srv, c)
	ctx := context.Background()

	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		started int
		held    int
	)
	same := noteBook("one-of-ten", 3)
	same.Steps[1].Action, same.Steps[1].With = "wait", map[string]any{"duration": "2s"}
	for i := 0; i < 10; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := operatorAs(srv, c, fmt.Sprintf("op%d", i)).Start(ctx, same, nil, workflows.ModeFailover, "")
			mu.Lock()
			defer mu.Unlock()
			var lh *operator.LockHeldError
			switch {
			case err == nil:
				started++
			case errors.As(err, &lh):
				held++
			default:
				t.Errorf("start %d: %v", i, err)
			}
		}()
	}
	wg.Wait()
	if started != 1 || held != 9 {
		t.Fatalf("one lock: %d started, %d refused; want 1 and 9", started, held)
	}

	for i := 0; i < 10; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := operatorAs(srv, c, "op").Start(ctx, noteBook(fmt.Sprintf("lock-%d", i), 3), nil, workflows.ModeFailover, ""); err != nil {
				t.Errorf("start lock-%d: %v", i, err)
			}
		}()
	}
	wg.Wait()
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for i := 0; i < 10; i++ {
		rep, err := operatorAs(srv, c, "op").Wait(wctx, fmt.Sprintf("lock-%d", i))
		if err != nil || rep.State != workflows.StateSucceeded {
			t.Fatalf("lock-%d: %v %v", i, rep, err)
		}
	}
	if rep, err := operatorAs(srv, c, "op").Wait(wctx, "one-of-ten"); err != nil || rep.State != workflows.StateSucceeded {
		t.Fatalf("one-of-ten: %v %v", rep, err)
	}
}

// TestTemporalServerRestartMidRun stops the dev server (persistent state)
// while a run waits on a durable timer, starts it again on the same
// address and database, and the run resumes and completes.
func TestTemporalServerRestartMidRun(t *testing.T) {
	db := filepath.Join(t.TempDir(), "temporal.db")
	addr := freeAddr(t)
	srv, err := devserver.Start(context.Background(), devserver.Options{DBFile: db, HostPort: addr})
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			_ = srv.Stop()
		}
	})
	c := testConfig(t, srv)
	// The worker is a separate process, so it outlives the server restart
	// and reconnects on its own, as a production worker would.
	startWorkerProcess(t, c, "worker")
	rb := noteBook("restart", 3)
	rb.Steps[1].Action, rb.Steps[1].With = "wait", map[string]any{"duration": "3s"}
	op := operatorAs(srv, c, "alice")
	if _, err := op.Start(context.Background(), rb, nil, workflows.ModeFailover, ""); err != nil {
		t.Fatal(err)
	}
	testwait.For(t, "the run to reach its timer", func() bool {
		st, err := op.Status(context.Background(), "restart")
		return err == nil && strings.Contains(strings.Join(st.Running, ","), "s1")
	})
	stopped = true
	if err := srv.Stop(); err != nil {
		t.Fatalf("stop server: %v", err)
	}
	restarted := time.Now()
	srv2 := startServer(t, devserver.Options{DBFile: db, HostPort: addr})
	op2 := operatorAs(srv2, c, "alice")
	ctx := testwait.Context(t)
	rep, err := op2.Wait(ctx, "restart")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("run completed %s after the server came back", time.Since(restarted).Round(time.Millisecond))
	if rep.State != workflows.StateSucceeded {
		t.Fatalf("state %s: %s", rep.State, rep.Error)
	}
}

func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestWestWorkerTakesOverFromEast: workers in "east" and "west" poll the
// same task queue. East's worker is killed while it holds a step; west's
// finishes the run. The takeover time is the step's heartbeat timeout plus
// the retry's start (the README's figures come from this test).
func TestWestWorkerTakesOverFromEast(t *testing.T) {
	srv := startServer(t, devserver.Options{})
	c := testConfig(t, srv)
	dir := t.TempDir()
	marker, release := filepath.Join(dir, "marker"), filepath.Join(dir, "release")
	east := startWorkerProcess(t, c, "worker-east")
	rb := &runbooks.Runbook{
		APIVersion: runbooks.APIVersion, Name: "takeover", Lock: "takeover",
		Steps: []runbooks.Step{{
			ID: "act", Action: "marker.write", With: map[string]any{"file": marker, "release": release},
			Heartbeat: runbooks.Duration(time.Second),
			Retry:     &runbooks.RetryPolicy{InitialInterval: runbooks.Duration(100 * time.Millisecond)},
		}},
	}
	op := operatorAs(srv, c, "alice")
	if _, err := op.Start(context.Background(), rb, nil, workflows.ModeFailover, ""); err != nil {
		t.Fatal(err)
	}
	testwait.For(t, "east to take the step", func() bool {
		b, _ := os.ReadFile(marker)
		return len(b) > 0
	})
	west := startWorkerProcess(t, c, "worker-west")
	if err := os.WriteFile(release, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	east.kill9(t)
	killed := time.Now()
	ctx := testwait.Context(t)
	rep, err := op.Wait(ctx, "takeover")
	if err != nil {
		t.Fatal(err)
	}
	took := time.Since(killed)
	t.Logf("takeover: west finished the run %s after east was killed (step heartbeat timeout 1s)", took.Round(time.Millisecond))
	s, _ := rep.Step("act")
	if rep.State != workflows.StateSucceeded || fmt.Sprint(s.Outputs["pid"]) != fmt.Sprint(west.cmd.Process.Pid) {
		t.Fatalf("state %s, step finished by pid %v (west is %d)", rep.State, s.Outputs["pid"], west.cmd.Process.Pid)
	}
}
