package tests

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/drctl/drctl/internal/testwait"

	"github.com/drctl/drctl/internal/devserver"
	"github.com/drctl/drctl/internal/pglab"
	"github.com/drctl/drctl/workflows"
)

const switchoverRunbook = `apiVersion: drctl/v1
name: switchover
lock: pg-crash
objectives: {rpo: 0s}
targets:
  east: {kind: postgres, credentials: {env: DRCTL_TEST_EAST_DSN}}
  west: {kind: postgres, credentials: {env: DRCTL_TEST_WEST_DSN}}
steps:
  - id: fence
    action: postgres.fence
    with: {target: east}
    compensate: {action: postgres.unfence, with: {target: east}}
  - id: catch-up
    needs: [fence]
    action: postgres.wait_caught_up
    with: {primary: east, standby: west}
    deadline: 1m
  - id: promote
    needs: [catch-up]
    action: postgres.promote
    with: {target: west, old_primary: east}
    heartbeat: 1s
    retry: {initial_interval: 100ms}
`

func newPair(t *testing.T) *pglab.Pair {
	t.Helper()
	ctx := testwait.Context(t)
	pair, err := pglab.NewPair(ctx, pglab.Options{})
	if errors.Is(err, pglab.ErrNotInstalled) && os.Getenv("DRCTL_CI") == "" {
		t.Skip("PostgreSQL 15 is needed (apt-get install postgresql-15); CI sets DRCTL_CI=1 and fails instead: ", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := pair.Close(); err != nil {
			t.Errorf("close pair: %v", err)
		}
	})
	return pair
}

// TestWorkerKilledAfterPromoteDoesNotPromoteTwice kills the worker process
// with SIGKILL right after pg_promote ran and before the activity reported.
// A fresh worker's retry finds the node promoted by this very step (its
// intent is on the node), records the promotion without acting again, and
// the run completes with the RPO of the promotion.
func TestWorkerKilledAfterPromoteDoesNotPromoteTwice(t *testing.T) {
	pair := newPair(t)
	srv := startServer(t, devserver.Options{})
	c := testConfig(t, srv)
	env := []string{
		"DRCTL_TEST_EAST_DSN=" + pair.Primary.DSN(pglab.AdminUser, pair.AdminPassword, "postgres"),
		"DRCTL_TEST_WEST_DSN=" + pair.Standby.DSN(pglab.AdminUser, pair.AdminPassword, "postgres"),
	}
	hold := t.TempDir()
	first := startWorkerProcess(t, c, "worker-east", append(env, "DRCTL_TEST_HOLD_AFTER_PROMOTE="+hold)...)

	rb := loadRunbook(t, nil, writeRunbook(t, switchoverRunbook))
	op := operatorAs(srv, c, "alice")
	if _, err := op.Start(context.Background(), rb, nil, workflows.ModeFailover, "crash test"); err != nil {
		t.Fatal(err)
	}
	testwait.For(t, "pg_promote to have run", func() bool {
		_, err := os.Stat(filepath.Join(hold, "promoted"))
		return err == nil
	})
	first.kill9(t)
	killedAt := time.Now()
	startWorkerProcess(t, c, "worker-west", env...)

	ctx := testwait.Context(t)
	rep, err := op.Wait(ctx, "pg-crash")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("run finished %s after the kill", time.Since(killedAt).Round(time.Millisecond))
	if rep.State != workflows.StateSucceeded {
		t.Fatalf("state %s: %s", rep.State, rep.Error)
	}
	p, _ := rep.Step("promote")
	if p.Attempts < 2 || p.Changed || !strings.Contains(p.Summary, "promoted by an earlier attempt of this step") {
		t.Fatalf("promote: attempts %d changed %t summary %q; want a retry that found the promotion done", p.Attempts, p.Changed, p.Summary)
	}
	if p.Outputs["timeline"] != float64(2) {
		t.Fatalf("timeline %v, want 2: exactly one promotion", p.Outputs["timeline"])
	}
	if rep.RPO == nil || *rep.RPO != 0 {
		t.Fatalf("RPO %v, want 0 for a planned switchover", rep.RPO)
	}
	var promotions int
	if err := pair.Standby.QueryRow(ctx, `SELECT count(*) FROM drctl.promotions`).Scan(&promotions); err != nil || promotions != 1 {
		t.Fatalf("drctl.promotions has %d rows (%v), want 1", promotions, err)
	}
}
