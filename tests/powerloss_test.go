//go:build linux

package tests

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/drctl/drctl/internal/testwait"

	"github.com/jackc/pgx/v5"
	enumspb "go.temporal.io/api/enums/v1"

	"github.com/drctl/drctl/internal/devserver"
	"github.com/drctl/drctl/internal/netlab"
	"github.com/drctl/drctl/internal/pglab"
	"github.com/drctl/drctl/workflows"

	"github.com/drctl/drctl/internal/proclog"
)

const powerLossRunbook = `apiVersion: drctl/v1
name: power-loss
lock: power-loss
objectives: {rpo: 30s}
targets:
  east: {kind: postgres, credentials: {env: DRCTL_TEST_EAST_DSN}}
  west: {kind: postgres, credentials: {env: DRCTL_TEST_WEST_DSN}}
steps:
  - id: fence-east
    action: postgres.fence
    with: {target: east}
    retry: {max_attempts: 2, initial_interval: 100ms}
    timeout: 3s
    heartbeat: 1s
    on_failure: continue
  - id: approve-promotion
    needs: [fence-east]
    approval:
      message: East lost power. Promote west, accepting the writes it did not receive?
      approvers: [oncall-dba]
  - id: promote-west
    needs: [approve-promotion]
    action: postgres.promote
    with:
      target: west
      old_primary: east
      old_primary_dead: true
      accept_data_loss: true
      approved_by: "${{ steps.approve-promotion.outputs.decided_by }}"
    timeout: 30s
    heartbeat: 1s
    retry: {initial_interval: 100ms}
`

// newSite creates a network namespace for one test and removes it at
// cleanup.
func newSite(t *testing.T, name string) *netlab.Site {
	t.Helper()
	ctx := testwait.Context(t)
	site, err := netlab.NewSite(ctx, netlab.Options{Name: name})
	if errors.Is(err, netlab.ErrUnavailable) && os.Getenv("DRCTL_CI") == "" {
		t.Skip("network namespaces are needed (root, iproute2, `ip netns add` permitted); CI sets DRCTL_CI=1 and fails instead: ", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := site.Close(); err != nil {
			t.Errorf("remove %s: %v", site, err)
		}
	})
	return site
}

// siteProcess is a child process running inside a site.
type siteProcess struct {
	cmd    *exec.Cmd
	out    *syncBuffer
	exited chan struct{}
}

func (p *siteProcess) running() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// startInSite starts cmd inside site, reaps it, and kills it at cleanup if
// it still runs.
func startInSite(t *testing.T, site *netlab.Site, cmd *exec.Cmd, deathSig syscall.Signal) *siteProcess {
	t.Helper()
	p := &siteProcess{cmd: cmd, out: &syncBuffer{}, exited: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.out, p.out
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = deathSig
	if err := site.Start(cmd); err != nil {
		t.Fatal(err)
	}
	go func() { _ = cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() {
		if p.running() {
			_ = cmd.Process.Kill()
			<-p.exited
		}
	})
	return p
}

// moveIntoSite restarts the pair's primary inside site, listening on the
// site's address (same port), and points the standby, restarted in the root
// namespace, at it: replication then crosses the veth. pglab keeps managing
// the standby; the primary is this test's process from now on.
func moveIntoSite(t *testing.T, ctx context.Context, pair *pglab.Pair, site *netlab.Site) *siteProcess {
	t.Helper()
	east, west := pair.Primary, pair.Standby
	if err := west.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if err := east.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	allow := fmt.Sprintf("host all all %s scram-sha-256\nhost replication %s %s scram-sha-256\n", site.Subnet, pglab.ReplUser, site.Subnet)
	for _, n := range []*pglab.Node{east, west} {
		f, err := os.OpenFile(filepath.Join(n.DataDir, "pg_hba.conf"), os.O_WRONLY|os.O_APPEND, 0)
		if err == nil {
			_, err = f.WriteString(allow)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	autoConf := filepath.Join(west.DataDir, "postgresql.auto.conf")
	b, err := os.ReadFile(autoConf)
	if err != nil {
		t.Fatal(err)
	}
	from := fmt.Sprintf("host=%s port=%d ", east.Host, east.Port)
	if !strings.Contains(string(b), from) {
		t.Fatalf("%s's primary_conninfo does not name %q:\n%s", west.Name, from, b)
	}
	to := fmt.Sprintf("host=%s port=%d ", site.SiteAddr, east.Port)
	if err := os.WriteFile(autoConf, []byte(strings.Replace(string(b), from, to, 1)), 0o600); err != nil {
		t.Fatal(err)
	}

	cred, err := pglab.Credential("postgres")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(pglab.DefaultBinDir, "postgres"),
		"-D", east.DataDir,
		"-c", "listen_addresses="+site.SiteAddr.String(),
		"-c", "port="+strconv.Itoa(east.Port),
		"-c", "unix_socket_directories="+east.Dir,
		"-c", "cluster_name="+east.Name)
	cmd.Dir = east.Dir
	cmd.Env = []string{"HOME=" + east.Dir, "LC_ALL=C", "PATH=/usr/bin:/bin"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	// SIGQUIT (immediate shutdown) if the test process dies first.
	pg := startInSite(t, site, cmd, syscall.SIGQUIT)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("east's server output:\n%s", proclog.LastLines(pg.out.String(), 30))
		}
	})
	testwait.For(t, "east to accept connections inside "+site.Namespace, func() bool {
		if !pg.running() {
			t.Fatalf("east's postmaster exited:\n%s", pg.out.String())
		}
		b, err := os.ReadFile(filepath.Join(east.DataDir, "postmaster.pid"))
		lines := strings.Split(string(b), "\n")
		return err == nil && len(lines) >= 8 && lines[0] == strconv.Itoa(cmd.Process.Pid) && strings.TrimSpace(lines[7]) == "ready"
	})
	if err := west.Start(ctx); err != nil {
		t.Fatal(err)
	}
	eastAdmin := siteDSN(site, east.Port, pglab.AdminUser, pair.AdminPassword, "postgres")
	testwait.For(t, west.Name+" to stream from east over the veth", func() bool {
		conn, err := pgx.Connect(ctx, eastAdmin)
		if err != nil {
			return false
		}
		defer conn.Close(context.Background())
		var n int
		err = conn.QueryRow(ctx, `SELECT count(*) FROM pg_stat_replication
			WHERE application_name = $1 AND state = 'streaming' AND client_addr = $2::inet`, west.Name, site.HostAddr.String()).Scan(&n)
		return err == nil && n == 1
	})
	return pg
}

// writeFromSite is an app inside site writing to dsn: it creates table
// writes and inserts ids 1, 2, ... one every interval on one connection
// made from inside the site; acked is the last id committed, done gets the
// error that stopped it (the site's power cut).
func writeFromSite(t *testing.T, ctx context.Context, site *netlab.Site, dsn string, every time.Duration) (acked *atomic.Int64, done <-chan error) {
	t.Helper()
	appCfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	appCfg.DialFunc = site.DialContext
	app, err := pgx.ConnectConfig(ctx, appCfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { app.Close(context.Background()) })
	if _, err := app.Exec(ctx, `CREATE TABLE writes (id bigint PRIMARY KEY, at timestamptz NOT NULL DEFAULT clock_timestamp())`); err != nil {
		t.Fatal(err)
	}
	acked = &atomic.Int64{}
	errc := make(chan error, 1)
	go func() {
		tick := time.NewTicker(every)
		defer tick.Stop()
		for id := int64(1); ; id++ {
			<-tick.C
			wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			_, err := app.Exec(wctx, `INSERT INTO writes (id) VALUES ($1)`, id)
			cancel()
			if err != nil {
				errc <- err
				return
			}
			acked.Store(id)
		}
	}()
	return acked, errc
}

// siteDSN is a DSN for a server listening on the site's address.
func siteDSN(site *netlab.Site, port int, user, password, db string) string {
	return fmt.Sprintf("host=%s port=%d user=%s password=%s dbname=%s sslmode=disable", site.SiteAddr, port, user, password, db)
}

// TestSitePowerLoss: east's database, its app and its worker run in a
// network namespace of their own; west's standby (streaming over the veth)
// and west's worker run outside. The app writes to east until east loses
// power: its subnet becomes unreachable, its links go down and everything
// in it is killed, so no connection is closed cleanly and east's pollers
// stay registered with the server. An unplanned failover then runs: the
// fence fails (east is unreachable) and the run goes on, a second person
// approves, west is promoted with east declared dead. The run must finish
// on west's worker with west primary and the RPO in the report; the test
// logs how many acknowledged writes west lacks and how long the failover
// took from the cut.
func TestSitePowerLoss(t *testing.T) {
	site := newSite(t, "east")
	t.Logf("%s", site)
	pair := newPair(t)
	ctx := testwait.Context(t)
	eastDB := moveIntoSite(t, ctx, pair, site)
	east, west := pair.Primary, pair.Standby

	// The dev server listens on loopback (its internal clients assume
	// it); the site reaches it through a relay on the veth's root end.
	srv := startServer(t, devserver.Options{})
	c := testConfig(t, srv)
	exposed, err := site.Expose(srv.Address)
	if err != nil {
		t.Fatal(err)
	}
	env := []string{
		"DRCTL_TEST_EAST_DSN=" + siteDSN(site, east.Port, pglab.AdminUser, pair.AdminPassword, "postgres"),
		"DRCTL_TEST_WEST_DSN=" + west.DSN(pglab.AdminUser, pair.AdminPassword, "postgres"),
	}
	eastCmd := exec.Command(filepath.Join(binDir, "testworker"), "-address", exposed, "-task-queue", c.Temporal.TaskQueue, "-identity", "worker-east")
	eastCmd.Env = append(os.Environ(), env...)
	eastWorker := startInSite(t, site, eastCmd, syscall.SIGKILL)
	westWorker := startWorkerProcess(t, c, "worker-west", env...)
	var pollers []string
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("pollers last seen: %v; east's worker output:\n%s", pollers, proclog.LastLines(eastWorker.out.String(), 20))
		}
	})
	testwait.For(t, "both workers to poll both task queues", func() bool {
		pollers = nil
		for _, typ := range []enumspb.TaskQueueType{enumspb.TASK_QUEUE_TYPE_WORKFLOW, enumspb.TASK_QUEUE_TYPE_ACTIVITY} {
			resp, err := srv.Client().DescribeTaskQueue(ctx, c.Temporal.TaskQueue, typ)
			if err != nil {
				pollers = append(pollers, err.Error())
				return false
			}
			var ids []string
			for _, p := range resp.GetPollers() {
				ids = append(ids, p.GetIdentity())
			}
			pollers = append(pollers, fmt.Sprintf("%s: %v", typ, ids))
			if !slices.Contains(ids, "worker-east") || !slices.Contains(ids, "worker-west") {
				return false
			}
		}
		return true
	})

	// East's app: connections made from inside the site, one insert every
	// 5 ms (a steady load the two-core CI machine replicates without
	// falling behind by CPU alone); acked counts the commits it saw (ids
	// 1..acked).
	acked, appDone := writeFromSite(t, ctx, site, siteDSN(site, east.Port, pglab.AppUser, pair.AppPassword, pglab.AppDB), 5*time.Millisecond)
	westApp := west.DSN(pglab.AppUser, pair.AppPassword, pglab.AppDB)
	testwait.For(t, "writes on east to reach west", func() bool {
		conn, err := pgx.Connect(ctx, westApp)
		if err != nil {
			return false
		}
		defer conn.Close(context.Background())
		var n int64
		return conn.QueryRow(ctx, `SELECT count(*) FROM writes`).Scan(&n) == nil && n >= 400
	})

	cutAt := time.Now()
	if err := site.Cut(ctx); err != nil {
		t.Fatal(err)
	}
	cutTook := time.Since(cutAt)
	var appErr error
	select {
	case appErr = <-appDone:
	case <-time.After(10 * time.Second):
		t.Fatal("east's app still writes after the cut")
	}
	lastAcked := acked.Load()
	for _, p := range []*siteProcess{eastDB, eastWorker} {
		select {
		case <-p.exited:
		case <-time.After(10 * time.Second):
			t.Fatalf("%s still runs after the cut", p.cmd.Path)
		}
	}
	t.Logf("cut %s in %s (route, links, kill); east's app had %d acknowledged writes, then: %v", site.Namespace, cutTook.Round(time.Millisecond), lastAcked, appErr)

	rb := loadRunbook(t, nil, writeRunbook(t, powerLossRunbook))
	op := operatorAs(srv, c, "alice")
	if _, err := op.Start(ctx, rb, nil, workflows.ModeFailover, "east lost power"); err != nil {
		t.Fatal(err)
	}
	testwait.For(t, "the promotion to await approval", func() bool {
		st, err := op.Status(ctx, "power-loss")
		return err == nil && slices.Contains(st.Waiting, "approve-promotion")
	})
	if _, err := operatorAs(srv, c, "oncall-dba").Decide(ctx, "power-loss", "approve-promotion", true, "east is dark"); err != nil {
		t.Fatal(err)
	}
	rep, err := op.Wait(ctx, "power-loss")
	if err != nil {
		t.Fatal(err)
	}
	took := time.Since(cutAt)
	if rep.State != workflows.StateSucceeded {
		t.Fatalf("run %s: %s", rep.State, rep.Error)
	}
	fence, _ := rep.Step("fence-east")
	if fence.State != workflows.StepFailed {
		t.Fatalf("fence-east %s (%s); want failed: east is unreachable", fence.State, fence.Summary)
	}
	gate, _ := rep.Step("approve-promotion")
	if gate.Approval == nil || gate.Approval.By != "oncall-dba" {
		t.Fatalf("approve-promotion decided by %+v, want oncall-dba", gate.Approval)
	}
	promote, _ := rep.Step("promote-west")
	if promote.State != workflows.StepSucceeded || promote.Outputs["timeline"] != float64(2) {
		t.Fatalf("promote-west %s, timeline %v: %s", promote.State, promote.Outputs["timeline"], promote.Error)
	}
	if rep.RPO == nil {
		t.Fatalf("no RPO in the report (rpo_unknown %t)", rep.RPOUnknown)
	}
	if inRecovery, err := west.InRecovery(ctx); err != nil || inRecovery {
		t.Fatalf("west in recovery: %t (%v); want primary", inRecovery, err)
	}

	// Who did the work: everything after the cut must be west's. Tasks the
	// server handed to east's dead pollers show up as timeouts, or (an
	// activity attempt that was retried) only as a late start: history
	// records an activity's last attempt alone, so lost undercounts.
	var lost, timeouts int
	var lastCompletedBy string
	var timeline []string
	it := srv.Client().GetWorkflowHistory(ctx, workflows.WorkflowID("power-loss"), "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			t.Fatal(err)
		}
		name := ev.GetEventType().String()
		if strings.HasSuffix(name, "TimedOut") || strings.HasSuffix(name, "UpdateAccepted") || strings.HasSuffix(name, "Signaled") ||
			strings.HasSuffix(name, "Started") || name == "WorkflowExecutionCompleted" {
			by := ev.GetActivityTaskStartedEventAttributes().GetIdentity() + ev.GetWorkflowTaskStartedEventAttributes().GetIdentity()
			timeline = append(timeline, fmt.Sprintf("  %+7.3fs %s %s", ev.GetEventTime().AsTime().Sub(cutAt).Seconds(), name, by))
		}
		switch ev.GetEventType() {
		case enumspb.EVENT_TYPE_WORKFLOW_TASK_STARTED:
			if ev.GetWorkflowTaskStartedEventAttributes().GetIdentity() == "worker-east" {
				lost++
			}
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_STARTED:
			if ev.GetActivityTaskStartedEventAttributes().GetIdentity() == "worker-east" {
				lost++
			}
		case enumspb.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
			lastCompletedBy = ev.GetWorkflowTaskCompletedEventAttributes().GetIdentity()
			if lastCompletedBy != "worker-west" {
				t.Fatalf("a workflow task completed by %q after east's power loss", lastCompletedBy)
			}
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
			if by := ev.GetActivityTaskCompletedEventAttributes().GetIdentity(); by != "worker-west" {
				t.Fatalf("an activity completed by %q after east's power loss", by)
			}
		case enumspb.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT, enumspb.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT:
			timeouts++
		}
	}
	t.Logf("notable events, from the cut:\n%s", strings.Join(timeline, "\n"))
	if lastCompletedBy != "worker-west" {
		t.Fatalf("the run's last workflow task was completed by %q, want worker-west", lastCompletedBy)
	}

	var onWest int64
	conn, err := pgx.Connect(ctx, westApp)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM writes WHERE id <= $1`, lastAcked).Scan(&onWest); err != nil {
		t.Fatal(err)
	}
	t.Logf("failover: run ended %s after the cut (%d recorded task starts by east's dead pollers, %d timeouts); fence-east failed after %d attempt(s): %s",
		took.Round(time.Millisecond), lost, timeouts, fence.Attempts, fence.Error)
	for _, st := range rep.Steps {
		if st.StartedAt != nil && st.EndedAt != nil {
			t.Logf("step %s %s: %+.3fs to %+.3fs after the cut", st.ID, st.State, st.StartedAt.Sub(cutAt).Seconds(), st.EndedAt.Sub(cutAt).Seconds())
		}
	}
	t.Logf("promote-west: %d attempt(s), %s; west's worker said:\n%s", promote.Attempts, promote.Summary, proclog.LastLines(westWorker.out.String(), 10))
	t.Logf("data: %d of %d acknowledged writes missing on west; reported RPO %s (promote lag_bytes %v)",
		lastAcked-onWest, lastAcked, time.Duration(*rep.RPO), promote.Outputs["lag_bytes"])
}
