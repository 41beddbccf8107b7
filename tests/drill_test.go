package tests

import (
	"context"

	"encoding/json"
	"fmt"
	"maps"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/jackc/pgx/v5"

	"github.com/drctl/drctl/activities"
	"github.com/drctl/drctl/internal/config"
	"github.com/drctl/drctl/internal/devserver"
	"github.com/drctl/drctl/internal/lab"
	"github.com/drctl/drctl/internal/operator"
	"github.com/drctl/drctl/internal/pglab"
	"github.com/drctl/drctl/internal/testwait"
	"github.com/drctl/drctl/runbooks"
	"github.com/drctl/drctl/worker"
	"github.com/drctl/drctl/workflows"
)

// labWithWorker starts a dev server, the lab and a worker holding the
// lab's secrets, all stopped when t ends.
func labWithWorker(t *testing.T) (context.Context, *devserver.Server, config.Config, *lab.Lab) {
	t.Helper()
	ctx, srv, c, l := startLab(t)
	startWorker(t, srv, c)
	return ctx, srv, c, l
}

// startLab starts a dev server and the lab, with the lab's secrets in this
// process's environment, all stopped when t ends; no worker.
func startLab(t *testing.T) (context.Context, *devserver.Server, config.Config, *lab.Lab) {
	t.Helper()
	needLab(t)
	ctx := testwait.Context(t)
	srv := startServer(t, devserver.Options{})
	c := testConfig(t, srv)
	l, err := lab.Start(ctx, lab.Options{Dir: labStateDir(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	for k, v := range l.Secrets() {
		t.Setenv(k, v)
	}
	return ctx, srv, c, l
}

// TestDrillOnTheLab drills drill-app-west.yaml on the lab (BIND, HAProxy,
// both sites' apps): the drill moves the app's name and traffic to west,
// proves west serves, puts both back, and the steady-state check finds
// everything as it was. Then the same drill with the traffic step's
// compensation removed: it must fail, naming the load balancer's servers
// (was / now), and the lab must indeed still send traffic to west.
func TestDrillOnTheLab(t *testing.T) {
	ctx, srv, c, l := labWithWorker(t)
	rb, err := runbooks.Load("../runbooks/drill-app-west.yaml", worker.Catalog())
	if err != nil {
		t.Fatal(err)
	}
	if ps := runbooks.ValidateDrill(rb, worker.Catalog()); len(ps) > 0 {
		t.Fatalf("drill-app-west cannot be drilled: %v", ps)
	}
	op := operatorAs(srv, c, "oncall-sre")
	drill := func(rb *runbooks.Runbook, chaos ...activities.Fault) *workflows.Report {
		t.Helper()
		if _, err := op.StartWith(ctx, rb, operator.StartOptions{Params: labParams(l, rb), Mode: workflows.ModeDrill, Reason: "test drill", Chaos: chaos}); err != nil {
			t.Fatal(err)
		}
		rep, err := op.Wait(ctx, rb.Lock)
		if err != nil {
			t.Fatal(err)
		}
		return rep
	}
	servers := func() string {
		out, err := l.LB.Command(ctx, "show servers state "+lab.AppBackend)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}

	rep := drill(rb)
	if rep.State != workflows.StateSucceeded || rep.Steady == nil || len(rep.Steady.Differences) != 0 {
		t.Fatalf("drill: %s (%s), steady %+v", rep.State, rep.Error, rep.Steady)
	}
	for _, key := range []string{"lb app/east1", "lb app/west1"} {
		if rep.Steady.Before[key] == "" || rep.Steady.Before[key] != rep.Steady.After[key] {
			t.Errorf("%s: before %q, after %q", key, rep.Steady.Before[key], rep.Steady.After[key])
		}
	}
	dnsCompared := false
	for k := range rep.Steady.Before {
		dnsCompared = dnsCompared || strings.HasPrefix(k, "dns ") && strings.HasSuffix(k, " A")
	}
	if !dnsCompared {
		t.Errorf("the app's DNS record was not compared: %v", rep.Steady.Before)
	}
	if v, _ := rep.Step("verify"); v.State != workflows.StepSucceeded {
		t.Errorf("verify: %s %s", v.State, v.Error)
	}
	rrs, err := l.DNS.Query(ctx, lab.AppName, "A")
	if err != nil || len(rrs) != 1 || !strings.HasSuffix(rrs[0].String(), "\t"+lab.EastAppAddr) {
		t.Errorf("after the drill %s A: %v (%v), want %s", lab.AppName, rrs, err, lab.EastAppAddr)
	}
	t.Logf("drill: RTO %s, %d facts compared; traffic:\n%s", rep.RTO, len(rep.Steady.Before), servers())

	// Chaos on the real providers: two failing attempts of the traffic
	// shift are absorbed by its retries; a permanent fault in the check
	// fails the drill, the way back still runs, and everything is back.
	rep = drill(rb, activities.Fault{Step: "traffic-to-west", Fail: 2})
	if shift, _ := rep.Step("traffic-to-west"); rep.State != workflows.StateSucceeded || shift.Attempts != 3 || len(rep.Steady.Differences) != 0 {
		t.Fatalf("drill with fail:2 on the shift: %s (%s), shift attempts %d, steady %+v", rep.State, rep.Error, shift.Attempts, rep.Steady)
	}
	rep = drill(rb, activities.Fault{Step: "verify", Permanent: true})
	if rep.State != workflows.StateFailed || rep.Steady == nil || rep.Steady.After == nil || len(rep.Steady.Differences) != 0 || len(rep.Compensations) != 2 {
		t.Fatalf("drill with a permanent fault in verify: %s (%s), compensations %d, steady %+v", rep.State, rep.Error, len(rep.Compensations), rep.Steady)
	}
	t.Logf("permanent fault: %s; way back: %d compensations, everything back", rep.Error, len(rep.Compensations))

	// Without a way back for the traffic step, the drill must say so.
	broken := *rb
	broken.Steps = slices.Clone(rb.Steps)
	for i := range broken.Steps {
		if broken.Steps[i].ID == "traffic-to-west" {
			broken.Steps[i].Compensate = nil
		}
	}
	begin := time.Now()
	rep = drill(&broken)
	if rep.State != workflows.StateFailed || rep.Steady == nil {
		t.Fatalf("drill with no way back for traffic: %s, steady %+v", rep.State, rep.Steady)
	}
	var keys []string
	for _, d := range rep.Steady.Differences {
		keys = append(keys, d.Key+": "+d.Was+" -> "+d.Now)
	}
	// The app's health answer names the site that serves: west now.
	want := []string{
		l.Params()["health_url"] + ` health: unhealthy: 200, site is not "west" -> healthy`,
		"lb app/east1: ready -> maint", "lb app/west1: maint -> ready",
	}
	if !slices.Equal(keys, want) {
		t.Errorf("differences %q, want %q", keys, want)
	}
	// Asked independently of drctl: the load balancer still sends the
	// app's requests to west, as the failed drill says.
	resp, err := http.Get(l.Params()["health_url"])
	if err != nil {
		t.Fatal(err)
	}
	var health lab.HealthAnswer
	err = json.NewDecoder(resp.Body).Decode(&health)
	resp.Body.Close()
	if err != nil || health.Site != lab.West {
		t.Errorf("after the failed drill the app answers from %q (%v), want west", health.Site, err)
	}
	if !strings.Contains(rep.Error, "not everything is as it was before the drill") {
		t.Errorf("error %q", rep.Error)
	}
	t.Logf("failed drill after %s: %s", time.Since(begin).Round(time.Millisecond), rep.Error)
}

// drillLab is a lab with a worker, and the two people who drill on it: one
// starts the drills, the other decides their gates.
type drillLab struct {
	*lab.Lab
	starter, second *operator.Operator
	metrics         string // the worker's /metrics URL
}

func startDrillLab(t *testing.T) *drillLab {
	t.Helper()
	_, srv, c, l := startLab(t)
	metrics := startMetricsWorker(t, c, l.Secrets())
	return &drillLab{Lab: l, starter: operatorAs(srv, c, "oncall-sre"), second: operatorAs(srv, c, "oncall-dba"), metrics: metrics}
}

// params are the lab's values of the parameters rb declares.
func (d *drillLab) params(rb *runbooks.Runbook) map[string]string { return labParams(d.Lab, rb) }

// labParams are the lab's values of the parameters rb declares.
func labParams(l *lab.Lab, rb *runbooks.Runbook) map[string]string {
	params := map[string]string{}
	for k, v := range l.Params() {
		if _, ok := rb.Param(k); ok {
			params[k] = v
		}
	}
	return params
}

// shipped loads a shipped runbook and the way back its drills take
// (drill.failback), with the lab's parameters.
func (d *drillLab) shipped(t *testing.T, file string) (*runbooks.Runbook, *workflows.Failback) {
	t.Helper()
	cat := worker.Catalog()
	rb, err := runbooks.Load("../runbooks/"+file, cat)
	if err != nil {
		t.Fatal(err)
	}
	if rb.Drill.Failback == "" {
		t.Fatalf("%s names no failback for its drills", file)
	}
	fb, err := runbooks.Load("../runbooks/"+rb.Drill.Failback, cat)
	if err != nil {
		t.Fatal(err)
	}
	return rb, &workflows.Failback{Runbook: *fb, Params: d.params(fb), After: runbooks.OnlyFailbackUndoes(rb, cat)}
}

// drill runs rb as a drill with fb as its way back and chaos in its forward
// path, approves every gate of the drill and of its failback as it opens,
// and returns the report once the drill has ended, whatever its state.
func (d *drillLab) drill(t *testing.T, rb *runbooks.Runbook, fb *workflows.Failback, chaos ...activities.Fault) *workflows.Report {
	t.Helper()
	ctx := testwait.Context(t) // one bound per drill
	if _, err := d.starter.StartWith(ctx, rb, operator.StartOptions{
		Params: d.params(rb), Mode: workflows.ModeDrill, Reason: "test: drill " + rb.Name,
		Chaos: chaos, Failback: fb,
	}); err != nil {
		t.Fatal(err)
	}
	parent := workflows.WorkflowID(rb.Lock)
	approved := map[string]bool{}
	testwait.For(t, "the drill of "+rb.Name+" to end", func() bool {
		for _, id := range []string{parent, parent + workflows.FailbackSuffix} {
			st, err := d.starter.Status(ctx, id)
			if err != nil {
				continue
			}
			for _, g := range st.Waiting {
				if !approved[id+"/"+g] {
					if _, err := d.second.Decide(ctx, id, g, true, "drill"); err == nil {
						approved[id+"/"+g] = true
					}
				}
			}
		}
		st, err := d.starter.Status(ctx, parent)
		return err == nil && st.Closed
	})
	rep, err := d.starter.Wait(ctx, parent)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("drill of %s %s; gates approved: %v", rb.Name, rep.State, slices.Sorted(maps.Keys(approved)))
	if rep.Steady != nil {
		for _, diff := range rep.Steady.Differences {
			t.Logf("  not back: %s: was %q, now %q", diff.Key, diff.Was, diff.Now)
		}
		t.Logf("  steady state: %d facts compared; not compared: %v", len(rep.Steady.Before), rep.Steady.NotCompared)
	}
	return rep
}

// home checks, from outside drctl, that the lab is home after a drill:
// east's database is the only writable primary (west a standby streaming
// from it, east unfenced), and every line of `drctl lab status`
// (lab.Status) is ok and says that DNS, the apps and the load balancer
// all lead to east.
func (d *drillLab) home(t *testing.T) {
	t.Helper()
	ctx := testwait.Context(t)
	for site, wantStandby := range map[string]bool{lab.East: false, lab.West: true} {
		standby, err := d.Node(site).InRecovery(ctx)
		if err != nil || standby != wantStandby {
			t.Errorf("%s: pg_is_in_recovery() = %v (%v), want %v", site, standby, err, wantStandby)
		}
		writable, err := d.AppWritable(ctx, site)
		if err != nil || writable == wantStandby {
			t.Errorf("%s: writable for the app %v (%v), want %v", site, writable, err, !wantStandby)
		}
	}
	// lab.Status reads what the lab's supervisor writes; this process
	// owns the lab, so it stands in as the supervisor.
	dir := t.TempDir()
	if err := d.WriteFiles(dir, d.State(os.Getpid())); err != nil {
		t.Fatal(err)
	}
	_, checks, err := lab.Status(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	eastDB := net.JoinHostPort(lab.EastDBAddr, strconv.Itoa(d.Node(lab.East).Port))
	want := map[string]string{ // component: what its detail must say
		"supervisor":                        "pid ",
		"dns " + lab.AppName + "." + d.Zone: "A " + lab.EastAppAddr + " (east)",
		"dns " + lab.DBName + "." + d.Zone:  "A " + lab.EastDBAddr + " (east)",
		"postgres east":                     "primary on " + eastDB,
		"postgres west":                     "standby streaming from " + eastDB,
		"app east":                          "writes to east's database",
		"app west":                          "writes to east's database",
		"haproxy":                           "to east's app (writes to east's database)",
	}
	for _, c := range checks {
		t.Logf("  lab status: %-30s ok=%t %s", c.Component, c.OK, c.Detail)
		if !c.OK || !strings.Contains(c.Detail, want[c.Component]) || strings.Contains(c.Detail, "fenced") {
			t.Errorf("lab status %s: ok %t, %q; want ok and %q, not fenced", c.Component, c.OK, c.Detail, want[c.Component])
		}
		delete(want, c.Component)
	}
	if len(want) > 0 {
		t.Errorf("lab status has no line for %v", slices.Sorted(maps.Keys(want)))
	}
}

// writeTable holds the write load's rows, one per acknowledged write.
const writeTable = "drill_writes"

// writeLoad is a client of the lab's database, like the apps: it finds the
// primary by the database's DNS name (asked of the zone's server for every
// new connection, never cached), connects as the app's role and inserts a
// row with the next id every few milliseconds. A write is acknowledged when
// its INSERT, a transaction of its own, returned without error: it was
// committed. After an error the client drops its connection and connects
// again, so it follows the name wherever it moves.
type writeLoad struct {
	cancel context.CancelFunc
	done   chan struct{}

	mu      sync.Mutex
	acks    []writeAck
	failed  int
	lastErr string
}

// writeAck is an acknowledged write and the site whose database took it.
type writeAck struct {
	id   int64
	at   time.Time
	site string
}

// writeInterval paces the load; after an error the client waits
// reconnectWait before connecting again, to spare the database a storm of
// refused connections while it is fenced.
const (
	writeInterval = 10 * time.Millisecond
	reconnectWait = 50 * time.Millisecond
)

// startWriteLoad creates the load's table on east and starts writing; it
// returns once the first writes are acknowledged. The load stops at the
// end of the test at the latest.
func startWriteLoad(t *testing.T, l *lab.Lab) *writeLoad {
	t.Helper()
	ctx := testwait.Context(t)
	p := l.Pair
	app, err := pgx.Connect(ctx, l.Node(lab.East).DSN(pglab.AppUser, p.AppPassword, pglab.AppDB))
	if err != nil {
		t.Fatal(err)
	}
	_, err = app.Exec(ctx, "CREATE TABLE "+writeTable+" (id bigint PRIMARY KEY, at timestamptz NOT NULL DEFAULT clock_timestamp())")
	app.Close(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := pgx.ParseConfig(fmt.Sprintf("host=%s port=%d user=%s dbname=%s sslmode=disable connect_timeout=2",
		lab.DBName+"."+l.Zone, p.Primary.Port, pglab.AppUser, pglab.AppDB))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Password = p.AppPassword
	resolver := l.DNS.Addr()
	cfg.LookupFunc = func(ctx context.Context, host string) ([]string, error) { return lab.LookupA(ctx, resolver, host) }

	lctx, cancel := context.WithCancel(context.Background())
	w := &writeLoad{cancel: cancel, done: make(chan struct{})}
	t.Cleanup(func() { w.stop() })
	go w.run(lctx, cfg)
	testwait.For(t, "the write load's first writes", func() bool { return len(w.stats().acks) >= 20 })
	return w
}

func (w *writeLoad) run(ctx context.Context, cfg *pgx.ConnConfig) {
	defer close(w.done)
	var conn *pgx.Conn
	defer func() {
		if conn != nil {
			conn.Close(context.Background())
		}
	}()
	tick := time.NewTicker(writeInterval)
	defer tick.Stop()
	failed := func(err error) {
		if ctx.Err() != nil {
			return // stopped, not failed
		}
		w.mu.Lock()
		w.failed++
		w.lastErr = err.Error()
		w.mu.Unlock()
		if conn != nil {
			conn.Close(context.Background())
			conn = nil
		}
		select {
		case <-ctx.Done():
		case <-time.After(reconnectWait):
		}
	}
	for id := int64(1); ctx.Err() == nil; {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		opCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
		if conn == nil {
			c, err := pgx.ConnectConfig(opCtx, cfg)
			if err != nil {
				cancel()
				failed(err)
				continue
			}
			conn = c
		}
		// Every attempt takes a new id: one that failed may still have
		// committed, and is not counted either way.
		var addr string
		err := conn.QueryRow(opCtx, "INSERT INTO "+writeTable+" (id) VALUES ($1) RETURNING host(inet_server_addr())", id).Scan(&addr)
		cancel()
		if err != nil {
			id++
			failed(err)
			continue
		}
		w.mu.Lock()
		w.acks = append(w.acks, writeAck{id: id, at: time.Now(), site: lab.SiteOf(addr)})
		w.mu.Unlock()
		id++
	}
}

// writeStats is what the load saw.
type writeStats struct {
	acks    []writeAck // in order
	failed  int
	lastErr string
}

func (w *writeLoad) stats() writeStats {
	w.mu.Lock()
	defer w.mu.Unlock()
	return writeStats{acks: slices.Clone(w.acks), failed: w.failed, lastErr: w.lastErr}
}

func (w *writeLoad) stop() writeStats {
	w.cancel()
	<-w.done
	return w.stats()
}

// stopAfter waits until the load has had n more writes acknowledged (after
// a drill: proof that clients write again), then stops it.
func (w *writeLoad) stopAfter(t *testing.T, n int) writeStats {
	t.Helper()
	from := len(w.stats().acks)
	testwait.For(t, fmt.Sprintf("%d more acknowledged writes", n), func() bool { return len(w.stats().acks) >= from+n })
	return w.stop()
}

func (s writeStats) ids() []int64 {
	ids := make([]int64, len(s.acks))
	for i, a := range s.acks {
		ids[i] = a.id
	}
	return ids
}

// bySite counts acknowledged writes by the site whose database took them.
func (s writeStats) bySite() map[string]int {
	n := map[string]int{}
	for _, a := range s.acks {
		n[a.site]++
	}
	return n
}

// outages are the pauses of more than 300 ms between two acknowledged
// writes: when clients could not write, and where they wrote after.
func (s writeStats) outages() []string {
	var out []string
	for i := 1; i < len(s.acks); i++ {
		if gap := s.acks[i].at.Sub(s.acks[i-1].at); gap > 300*time.Millisecond {
			out = append(out, fmt.Sprintf("%s (%s -> %s)", gap.Round(time.Millisecond), s.acks[i-1].site, s.acks[i].site))
		}
	}
	return out
}

func (s writeStats) String() string {
	return fmt.Sprintf("%d acknowledged (by site %v), %d failed (last: %s); write outages %v",
		len(s.acks), s.bySite(), s.failed, s.lastErr, s.outages())
}

// missingOn lists the acknowledged writes that are not rows on site's
// database.
func missingOn(t *testing.T, l *lab.Lab, site string, s writeStats) []int64 {
	t.Helper()
	ctx := testwait.Context(t)
	conn, err := pgx.Connect(ctx, l.AppDSN(site))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	rows, err := conn.Query(ctx, "SELECT id FROM "+writeTable+" WHERE id = ANY($1)", s.ids())
	if err != nil {
		t.Fatal(err)
	}
	found, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		t.Fatal(err)
	}
	return slices.DeleteFunc(s.ids(), func(id int64) bool { return slices.Contains(found, id) })
}

// TestDrillSiteFailoverWithFailback drills the whole site failover on the
// lab while a client writes to the database by its DNS name: the forward
// path (fence east, promote west, DNS and traffic to west, verified), then
// failback.yaml as the way back (a child run with its own gate), then the
// steady-state check: every database's role, fencing and upstream, both
// DNS records and TTLs, the load balancer's servers and the health answer
// are as they were before the drill. No acknowledged write may be lost:
// those west took while it was the primary must be on east afterwards.
func TestDrillSiteFailoverWithFailback(t *testing.T) {
	d := startDrillLab(t)
	rb, fb := d.shipped(t, "site-failover.yaml")
	load := startWriteLoad(t, d.Lab)
	rep := d.drill(t, rb, fb)
	writes := load.stopAfter(t, 50)
	checkDrillHome(t, d, rep, writes)
}

// TestDrillPlannedSwitchover is the same for planned-switchover.yaml: under
// write load, a drill to west and back (failback.yaml) loses no
// acknowledged write and leaves everything as it was.
func TestDrillPlannedSwitchover(t *testing.T) {
	d := startDrillLab(t)
	rb, fb := d.shipped(t, "planned-switchover.yaml")
	load := startWriteLoad(t, d.Lab)
	rep := d.drill(t, rb, fb)
	writes := load.stopAfter(t, 50)
	checkDrillHome(t, d, rep, writes)
}

// checkDrillHome checks a drill with failback that ran under write load:
// it succeeded with RTOs both ways and nothing differing, clients wrote on
// both sites and every acknowledged write is on east, which is home again.
func checkDrillHome(t *testing.T, d *drillLab, rep *workflows.Report, writes writeStats) {
	t.Helper()
	t.Logf("writes: %s", writes)
	if rep.State != workflows.StateSucceeded || rep.Steady == nil || len(rep.Steady.Differences) != 0 {
		t.Fatalf("drill %s: %s", rep.State, rep.Error)
	}
	if rep.Failback == nil || rep.Failback.State != workflows.StateSucceeded || rep.Failback.RTO == nil || rep.RTO == nil {
		t.Fatalf("drill RTO %v; failback report %+v", rep.RTO, rep.Failback)
	}
	for _, key := range []string{"db-east role", "db-west role", "db-west upstream", "lb app/east1", "lb app/west1"} {
		if rep.Steady.Before[key] == "" {
			t.Errorf("%s was not compared: %v", key, rep.Steady.Before)
		}
	}
	// The load followed the database's name to west and back, so the
	// check below covers writes west took and the failback carried home.
	if by := writes.bySite(); by[lab.East] == 0 || by[lab.West] == 0 || writes.acks[len(writes.acks)-1].site != lab.East {
		t.Errorf("writes by site %v, last on %s: the load did not write on both sites and end on east", by, writes.acks[len(writes.acks)-1].site)
	}
	if missing := missingOn(t, d.Lab, lab.East, writes); len(missing) > 0 {
		t.Errorf("%d of %d acknowledged writes are not on east: %v", len(missing), len(writes.acks), missing[:min(len(missing), 20)])
	}
	d.home(t)
	t.Logf("drill: RTO %s (objective %s), time back (failback RTO) %s; %d facts compared before and after",
		rep.RTO, rep.Objectives.RTO, rep.Failback.RTO, len(rep.Steady.Before))
	d.checkMetrics(t, rep)
}

// checkMetrics scrapes the worker's /metrics after a drill with failback
// that succeeded: the drill counted once as a succeeded drill of its
// runbook, its failback as a failback (not a failover) of the failback runbook, a step
// duration for the promotions both ways, the drill's RTO and its objective,
// and when the drill last passed.
func (d *drillLab) checkMetrics(t *testing.T, rep *workflows.Report) {
	t.Helper()
	drill := map[string]string{"runbook": rep.Runbook, "mode": workflows.ModeDrill}
	var fams map[string]*dto.MetricFamily
	testwait.For(t, "the drill's end on /metrics", func() bool {
		fams = scrape(t, d.metrics)
		_, ok := value(fams, "drctl_runs_finished_total", drill)
		return ok
	})
	for _, tc := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"drctl_runs_started_total", drill, 1},
		{"drctl_runs_finished_total", map[string]string{"runbook": rep.Runbook, "mode": workflows.ModeDrill, "outcome": workflows.StateSucceeded}, 1},
		{"drctl_runs_finished_total", map[string]string{"runbook": rep.Failback.Runbook, "mode": workflows.ModeFailback, "outcome": workflows.StateSucceeded}, 1},
		{"drctl_run_rto_seconds", drill, rep.RTO.D().Seconds()},
		{"drctl_objective_rto_seconds", map[string]string{"runbook": rep.Runbook}, rep.Objectives.RTO.D().Seconds()},
	} {
		if v, ok := value(fams, tc.name, tc.labels); !ok || v != tc.want {
			t.Errorf("/metrics after the drill: %s%v = %v (present %t), want %v", tc.name, tc.labels, v, ok, tc.want)
		}
	}
	for _, rb := range []string{rep.Runbook, rep.Failback.Runbook} {
		if n := histogramCount(fams, "drctl_step_duration_seconds", map[string]string{"runbook": rb, "action": "postgres.promote", "outcome": "succeeded"}); n != 1 {
			t.Errorf("/metrics: %d postgres.promote durations of %s, want 1", n, rb)
		}
	}
	if v, ok := value(fams, "drctl_drill_last_success_timestamp_seconds", map[string]string{"runbook": rep.Runbook}); !ok || v < float64(rep.StartedAt.Unix()) {
		t.Errorf("/metrics: drctl_drill_last_success_timestamp_seconds = %v (present %t), want at least %d", v, ok, rep.StartedAt.Unix())
	}
}

// TestDrillChaosSiteFailover injects faults into the real providers during
// drills of site-failover.yaml. Two failing attempts of the promotion and
// of the app's DNS change are absorbed by their retries. A permanent fault
// in the database's DNS change (after the promotion, which no compensation
// undoes) fails the drill; the way back is then the failback runbook, not
// the compensations, and it brings the lab home: east the only writable
// primary, every name and server as before, no acknowledged write lost.
func TestDrillChaosSiteFailover(t *testing.T) {
	d := startDrillLab(t)
	rb, fb := d.shipped(t, "site-failover.yaml")

	rep := d.drill(t, rb, fb, activities.Fault{Step: "promote-west", Fail: 2}, activities.Fault{Step: "dns-to-west", Fail: 2})
	promote, _ := rep.Step("promote-west")
	dns, _ := rep.Step("dns-to-west")
	if rep.State != workflows.StateSucceeded || promote.Attempts != 3 || dns.Attempts != 3 || rep.Steady == nil || len(rep.Steady.Differences) != 0 ||
		rep.Failback == nil || rep.Failback.State != workflows.StateSucceeded {
		t.Fatalf("drill with fail:2 on promote-west and dns-to-west: %s (%s); attempts: promote %d, dns %d", rep.State, rep.Error, promote.Attempts, dns.Attempts)
	}
	t.Logf("fail:2 absorbed: promote-west %d attempts, dns-to-west %d attempts; RTO %s, time back %s", promote.Attempts, dns.Attempts, rep.RTO, rep.Failback.RTO)

	load := startWriteLoad(t, d.Lab)
	rep = d.drill(t, rb, fb, activities.Fault{Step: "db-dns-to-west", Permanent: true})
	writes := load.stopAfter(t, 50)
	t.Logf("writes: %s", writes)
	t.Logf("permanent fault: %s", rep.Error)
	failedStep, _ := rep.Step("db-dns-to-west")
	promote, _ = rep.Step("promote-west")
	if rep.State != workflows.StateFailed || failedStep.State != workflows.StepFailed || failedStep.Attempts != 1 || promote.State != workflows.StepSucceeded {
		t.Fatalf("drill with a permanent fault in db-dns-to-west: %s (%s); db-dns-to-west %s after %d attempt(s), promote-west %s",
			rep.State, rep.Error, failedStep.State, failedStep.Attempts, promote.State)
	}
	if rep.RTO != nil || workflows.ObjectivesMet(rep) {
		t.Errorf("a failed drill reports an RTO of %s (objectives met: %v)", rep.RTO, workflows.ObjectivesMet(rep))
	}
	// West was promoted: only failback.yaml brings that back, so it is the
	// way back, and the compensations do not run.
	if rep.Failback == nil || rep.Failback.State != workflows.StateSucceeded || len(rep.Compensations) != 0 {
		t.Fatalf("way back after the failed forward path: failback %+v, %d compensation(s)", rep.Failback, len(rep.Compensations))
	}
	if rep.Steady == nil || len(rep.Steady.Differences) != 0 || !strings.Contains(rep.Error, "the way back: failback failback succeeded") {
		t.Fatalf("after the failback: steady %+v; error %q", rep.Steady, rep.Error)
	}
	if missing := missingOn(t, d.Lab, lab.East, writes); len(missing) > 0 {
		t.Errorf("%d of %d acknowledged writes are not on east: %v", len(missing), len(writes.acks), missing[:min(len(missing), 20)])
	}
	d.home(t)
	t.Logf("the failback brought the lab home in %s; %d facts compared", rep.Failback.RTO, len(rep.Steady.Before))
}

// TestDrillFailbackFails drills the site failover with a permanent fault in
// the way back's promotion of east (failback.yaml's promote-east), under
// write load. The forward path succeeds, the failback fails and undoes its
// fence of west: the lab stays failed over to west, consistently (west the
// only writable primary, east its standby, every name at west). The drill
// must fail, say so in its failback's report, and the steady-state check
// must name each target that is not as before. The lab is left failed over.
func TestDrillFailbackFails(t *testing.T) {
	d := startDrillLab(t)
	rb, fb := d.shipped(t, "site-failover.yaml")
	fb.Chaos = []activities.Fault{{Step: "promote-east", Permanent: true}}
	load := startWriteLoad(t, d.Lab)
	rep := d.drill(t, rb, fb)
	writes := load.stopAfter(t, 50)
	t.Logf("writes: %s", writes)
	t.Logf("drill %s: %s; forward RTO %v", rep.State, rep.Error, rep.RTO)
	if rep.Failback == nil {
		t.Fatalf("drill %s without a failback report: %s", rep.State, rep.Error)
	}
	for _, c := range rep.Failback.Compensations {
		t.Logf("  failback compensation %s (%s): %s: %s %s", c.ID, c.Action, c.State, c.Summary, c.Error)
	}
	promote, _ := rep.Failback.Step("promote-east")
	if rep.State != workflows.StateFailed || rep.Failback.State != workflows.StateFailed ||
		promote.State != workflows.StepFailed || !strings.Contains(promote.Error, "chaos") {
		t.Errorf("drill %s, failback %s (%s), promote-east %s: %s", rep.State, rep.Failback.State, rep.Failback.Error, promote.State, promote.Error)
	}
	if rep.Failback.RTO != nil {
		t.Errorf("the failed failback reports an RTO of %s", rep.Failback.RTO)
	}
	// The drill did not recover everything: it has no RTO and nothing met.
	if rep.RTO != nil || workflows.ObjectivesMet(rep) || !strings.Contains(rep.Error, "not back as before the drill") {
		t.Errorf("failed drill: RTO %v, objectives met %v, error %q", rep.RTO, workflows.ObjectivesMet(rep), rep.Error)
	}

	// The steady-state check: every database's role and upstream, both
	// names, the load balancer's servers and the app's health are not as
	// before the drill; the fences are (west's was undone).
	app := "dns " + lab.AppName + "." + d.Zone + " A"
	db := "dns " + lab.DBName + "." + d.Zone + " A"
	var keys []string
	if rep.Steady != nil {
		for _, diff := range rep.Steady.Differences {
			keys = append(keys, diff.Key)
		}
	}
	want := []string{"db-east role", "db-east upstream", "db-west role", "db-west upstream", app, db,
		d.Params()["health_url"] + " health", "lb app/east1", "lb app/west1"}
	slices.Sort(want)
	if rep.Steady == nil || rep.Steady.After == nil || !slices.Equal(keys, want) {
		var before []string
		if rep.Steady != nil {
			before = slices.Sorted(maps.Keys(rep.Steady.Before))
		}
		t.Errorf("the steady-state check names %q, want %q (facts compared: %q)", keys, want, before)
	}

	// Asked of the lab: failed over to west, consistently, and no
	// acknowledged write lost.
	ctx := testwait.Context(t)
	for site, want := range map[string]bool{lab.East: false, lab.West: true} {
		if writable, err := d.AppWritable(ctx, site); err != nil || writable != want {
			t.Errorf("%s after the failed failback: writable for the app %v (%v), want %v", site, writable, err, want)
		}
	}
	if standby, err := d.Node(lab.East).InRecovery(ctx); err != nil || !standby {
		t.Errorf("east after the failed failback: in recovery %v (%v), want west's standby", standby, err)
	}
	for name, want := range map[string]string{lab.AppName: lab.WestAppAddr, lab.DBName: lab.WestDBAddr} {
		if addrs, err := lab.LookupA(ctx, d.DNS.Addr(), name+"."+d.Zone); err != nil || !slices.Equal(addrs, []string{want}) {
			t.Errorf("%s.%s: %v (%v), want %s", name, d.Zone, addrs, err, want)
		}
	}
	if missing := missingOn(t, d.Lab, lab.West, writes); len(missing) > 0 {
		t.Errorf("%d of %d acknowledged writes are not on west: %v", len(missing), len(writes.acks), missing[:min(len(missing), 20)])
	}
}
