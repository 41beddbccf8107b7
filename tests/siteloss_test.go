//go:build linux

package tests

import (
	"context"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/drctl/drctl/internal/config"
	"github.com/drctl/drctl/internal/devserver"
	"github.com/drctl/drctl/internal/pglab"
	"github.com/drctl/drctl/internal/proclog"
	"github.com/drctl/drctl/internal/sitewatch"
	"github.com/drctl/drctl/internal/testwait"
	"github.com/drctl/drctl/workflows"
)

// siteFailoverRunbook is the on_loss runbook of the site-loss test: the
// power-loss runbook (fence east from wherever a worker still runs, a
// person approves, west is promoted with east dead) with its targets in
// their sites, under its own lock.
var siteFailoverRunbook = strings.NewReplacer(
	"name: power-loss\nlock: power-loss\nobjectives: {rpo: 30s}", "name: east-lost\nlock: east-lost\nobjectives: {rto: 5m, rpo: 30s}",
	"east: {kind: postgres, credentials", "east: {kind: postgres, site: east, credentials",
	"west: {kind: postgres, credentials", "west: {kind: postgres, site: west, credentials",
).Replace(powerLossRunbook)

// TestSiteLossDetectedProposedAndFailedOver is the whole story across
// three places. East (its primary, its worker and its watcher) runs in a
// network namespace of its own; west's standby (synchronous, so every
// acknowledged write is on west), west's worker and watcher, and a
// witness's watcher run outside. East's app writes until east loses power
// (unreachable route first, links down, everything in it killed). The
// watchers in west and at the witness see every probe of east fail; the
// site watch declares the loss once the quorum of two places held for
// lost_after, and proposes exactly one run of the on_loss runbook, with
// the evidence. A person approves; the run finishes on west's worker with
// west primary, no acknowledged write lost, and its RTO counted from the
// detection, not from the run's start.
func TestSiteLossDetectedProposedAndFailedOver(t *testing.T) {
	site := newSite(t, "east")
	pair := newPair(t)
	ctx := testwait.Context(t)
	eastDB := moveIntoSite(t, ctx, pair, site)
	east, west := pair.Primary, pair.Standby

	// Synchronous replication: a write east acknowledges is flushed on west.
	eastAdmin := siteDSN(site, east.Port, pglab.AdminUser, pair.AdminPassword, "postgres")
	func() {
		conn, err := pgx.Connect(ctx, eastAdmin)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(context.Background())
		if _, err := conn.Exec(ctx, fmt.Sprintf(`ALTER SYSTEM SET synchronous_standby_names = '"%s"'`, west.Name)); err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Exec(ctx, `SELECT pg_reload_conf()`); err != nil {
			t.Fatal(err)
		}
		testwait.For(t, west.Name+" to be east's synchronous standby", func() bool {
			var state string
			err := conn.QueryRow(ctx, `SELECT sync_state FROM pg_stat_replication WHERE application_name = $1`, west.Name).Scan(&state)
			return err == nil && state == "sync"
		})
	}()

	srv := startServer(t, devserver.Options{})
	c := testConfig(t, srv)
	exposedTemporal, err := site.Expose(srv.Address)
	if err != nil {
		t.Fatal(err)
	}
	exposedWest, err := site.Expose(fmt.Sprintf("127.0.0.1:%d", west.Port))
	if err != nil {
		t.Fatal(err)
	}
	env := []string{
		"DRCTL_TEST_EAST_DSN=" + eastAdmin,
		"DRCTL_TEST_WEST_DSN=" + west.DSN(pglab.AdminUser, pair.AdminPassword, "postgres"),
	}
	eastCmd := exec.Command(filepath.Join(binDir, "testworker"), "-address", exposedTemporal, "-task-queue", c.Temporal.TaskQueue, "-identity", "worker-east", "-site", "east")
	eastCmd.Env = append(os.Environ(), env...)
	eastWorker := startInSite(t, site, eastCmd, syscall.SIGKILL)
	westWorker := startSiteWorkerProcess(t, c, "worker-west", "west", env...)

	// The watchers: every second, quorum of two places, lost after 2s.
	runbookFile := writeRunbook(t, siteFailoverRunbook)
	watch := func(eastProbe, westProbe string) config.Config {
		w := c
		w.Watch = config.Watch{Interval: time.Second, Timeout: 800 * time.Millisecond, ReportEvery: 3 * time.Second, Quorum: 2, LostAfter: 2 * time.Second, Places: []string{"east", "west", "witness"}}
		w.Sites = map[string]config.Site{
			"east": {Probes: []string{"postgres://" + eastProbe}, OnLoss: config.OnLoss{Runbook: runbookFile, Reason: "east is dark"}},
			"west": {Probes: []string{"postgres://" + westProbe}},
		}
		return w
	}
	eastAddr := fmt.Sprintf("%s:%d", site.SiteAddr, east.Port)
	rootView := watch(eastAddr, fmt.Sprintf("127.0.0.1:%d", west.Port))
	// East's watcher is a `drctl watch-sites` inside east: it dies with it.
	eastView := watch(eastAddr, exposedWest)
	eastView.Temporal.Address = exposedTemporal
	eastView.Identity = "watcher-east"
	eastView.Watch.From = "east"
	eastConfig := writeWatchConfig(t, eastView)
	eastWatcherCmd := exec.Command(filepath.Join(binDir, "drctl"), "watch-sites", "--config", eastConfig)
	eastWatcherCmd.Env = append(os.Environ(), "DRCTL_CONFIG=")
	eastWatcher := startInSite(t, site, eastWatcherCmd, syscall.SIGKILL)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("east's watcher said:\n%s\neast's worker said:\n%s", proclog.LastLines(eastWatcher.out.String(), 20), proclog.LastLines(eastWorker.out.String(), 20))
		}
	})
	startWatchers(t, srv, rootView, nil, "west", "witness")
	testwait.For(t, "east, west and the witness to see east up", func() bool {
		st, ok := siteWatchOf(t, srv, "east")
		fresh := map[string]bool{}
		for _, v := range st.Votes {
			if v.Fresh && !v.View.Down {
				fresh[v.View.From] = true
			}
		}
		return ok && st.State == workflows.SiteUp && len(fresh) == 3
	})

	// East's app writes from inside east, one insert every 10 ms.
	acked, appDone := writeFromSite(t, ctx, site, siteDSN(site, east.Port, pglab.AppUser, pair.AppPassword, pglab.AppDB), 10*time.Millisecond)
	testwait.For(t, "east's app to have written 200 rows", func() bool { return acked.Load() >= 200 })

	cutAt := time.Now()
	if err := site.Cut(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case <-appDone:
	case <-time.After(30 * time.Second):
		t.Fatal("east's app still writes after the cut")
	}
	lastAcked := acked.Load()
	for _, p := range []*siteProcess{eastDB, eastWorker, eastWatcher} {
		select {
		case <-p.exited:
		case <-time.After(30 * time.Second):
			t.Fatalf("%s still runs after the cut", p.cmd.Path)
		}
	}

	var st sitewatch.Status
	testwait.For(t, "east to be declared lost and a run proposed", func() bool {
		var ok bool
		st, ok = siteWatchOf(t, srv, "east")
		return ok && st.State == workflows.SiteLost && len(st.Recent) == 1 && (st.Recent[0].RunID != "" || st.Recent[0].NotProposed != "")
	})
	proposedAfter := time.Since(cutAt)
	inc := st.Recent[0]
	if inc.WorkflowID != workflows.WorkflowID("east-lost") || inc.RunID == "" {
		t.Fatalf("incident %+v; want a proposed run of east-lost", inc)
	}
	downFrom := map[string]bool{}
	for _, v := range inc.Evidence {
		if v.Down {
			downFrom[v.From] = true
		}
	}
	if !downFrom["west"] || !downFrom["witness"] {
		t.Fatalf("evidence %+v; want west and the witness seeing east down", inc.Evidence)
	}

	op := operatorAs(srv, c, "alice")
	testwait.For(t, "the proposed run to wait for the promotion's approval", func() bool {
		s, err := op.Status(ctx, "east-lost")
		return err == nil && len(s.Waiting) == 1 && s.Waiting[0] == "approve-promotion"
	})
	if _, err := operatorAs(srv, c, "oncall-dba").Decide(ctx, "east-lost", "approve-promotion", true, "east is dark"); err != nil {
		t.Fatal(err)
	}
	rep, err := op.Wait(ctx, "east-lost")
	if err != nil {
		t.Fatal(err)
	}
	if rep.State != workflows.StateSucceeded {
		t.Fatalf("run %s: %s", rep.State, rep.Error)
	}
	if inRecovery, err := west.InRecovery(ctx); err != nil || inRecovery {
		t.Fatalf("west in recovery: %t (%v); want primary", inRecovery, err)
	}
	if fence, _ := rep.Step("fence-east"); fence.State != workflows.StepFailed || fence.Worker != "" && fence.Worker != "worker-west" {
		t.Errorf("fence-east %s on %q; want it tried from west, failing (east is dark)", fence.State, fence.Worker)
	}
	promote, _ := rep.Step("promote-west")
	if promote.Worker != "worker-west" || promote.EndedAt == nil {
		t.Fatalf("promote-west ran on %q (ended %v), want worker-west", promote.Worker, promote.EndedAt)
	}
	d := rep.Detection
	if d == nil || d.Site != "east" || !d.At.Before(rep.StartedAt) && !d.At.Equal(rep.StartedAt) {
		t.Fatalf("report's detection %+v (run started %s); want east's, at or before the start", d, rep.StartedAt)
	}
	if rep.RTO == nil || rep.EndedAt == nil || rep.RTO.D() < rep.EndedAt.Sub(d.At)-time.Second {
		t.Fatalf("RTO %v; want it counted from the detection at %s to the end at %v", rep.RTO, d.At, rep.EndedAt)
	}
	if n := runsOf(t, srv, "east-lost"); n != 1 {
		t.Fatalf("%d runs of east-lost; want exactly one", n)
	}

	conn, err := pgx.Connect(ctx, west.DSN(pglab.AppUser, pair.AppPassword, pglab.AppDB))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var onWest int64
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM writes WHERE id <= $1`, lastAcked).Scan(&onWest); err != nil {
		t.Fatal(err)
	}
	if onWest != lastAcked {
		t.Fatalf("%d of %d acknowledged writes missing on west", lastAcked-onWest, lastAcked)
	}
	if _, err := conn.Exec(ctx, `INSERT INTO writes (id) VALUES ($1)`, lastAcked+1_000_000); err != nil {
		t.Fatalf("west does not take writes: %v", err)
	}
	westServing := time.Since(cutAt)
	t.Logf("site loss: declared %s after the cut (the test saw the proposed run %s after); west promoted %s after the cut, the run ended %s after it (approval at once); RTO reported %s, from the detection; the test wrote to west %s after the cut; %d acknowledged writes, 0 lost; west's worker said:\n%s",
		d.At.Sub(cutAt).Round(time.Millisecond), proposedAfter.Round(time.Millisecond), promote.EndedAt.Sub(cutAt).Round(time.Millisecond), rep.EndedAt.Sub(cutAt).Round(time.Millisecond),
		rep.RTO.D().Round(time.Millisecond), westServing.Round(time.Millisecond), lastAcked, proclog.LastLines(westWorker.out.String(), 5))
}

// writeWatchConfig writes the part of c a `drctl watch-sites` reads.
func writeWatchConfig(t *testing.T, c config.Config) string {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "identity: %s\ntemporal: {address: %q, task_queue: %q}\n", c.Identity, c.Temporal.Address, c.Temporal.TaskQueue)
	w := c.Watch
	fmt.Fprintf(&b, "watch: {from: %s, places: [%s], interval: %s, timeout: %s, report_every: %s, quorum: %d, lost_after: %s}\nsites:\n",
		w.From, strings.Join(w.Places, ", "), w.Interval, w.Timeout, w.ReportEvery, w.Quorum, w.LostAfter)
	for _, name := range slices.Sorted(maps.Keys(c.Sites)) {
		s := c.Sites[name]
		fmt.Fprintf(&b, "  %s:\n    probes: [%q]\n", name, strings.Join(s.Probes, `", "`))
		if s.OnLoss.Runbook != "" {
			fmt.Fprintf(&b, "    on_loss: {runbook: %q, reason: %q}\n", s.OnLoss.Runbook, s.OnLoss.Reason)
		}
	}
	file := filepath.Join(t.TempDir(), "drctl.yaml")
	if err := os.WriteFile(file, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return file
}
