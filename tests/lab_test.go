package tests

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/drctl/drctl/internal/testwait"

	"github.com/drctl/drctl/internal/config"
	"github.com/drctl/drctl/internal/devserver"
	"github.com/drctl/drctl/internal/lab"
	"github.com/drctl/drctl/runbooks"
	"github.com/drctl/drctl/worker"
	"github.com/drctl/drctl/workflows"
)

// needLab skips unless PostgreSQL 15, BIND 9 and HAProxy are installed; CI
// (DRCTL_CI=1) fails instead.
func needLab(t *testing.T) {
	t.Helper()
	if missing := lab.Missing(); len(missing) > 0 {
		if os.Getenv("DRCTL_CI") == "" {
			t.Skipf("the lab needs %s (%s); CI sets DRCTL_CI=1 and fails instead", strings.Join(missing, ", "), lab.InstallCommand(missing))
		}
		t.Fatalf("the lab needs %s: %s", strings.Join(missing, ", "), lab.InstallCommand(missing))
	}
}

// labStateDir is a state directory the postgres OS user can traverse
// (t.TempDir() is not, when the tests run as root).
func labStateDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "drctl-labtest-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, "lab")
}

// TestLabUpStatusDown drives `drctl lab up|status|down` through the binary:
// the lab outlives `up`, its files are there (secrets only in a 0600 file,
// never printed), status sees every component, and `down` leaves no process
// and no bound port behind.
func TestLabUpStatusDown(t *testing.T) {
	needLab(t)
	dir := labStateDir(t)
	c := config.Defaults()
	start := time.Now()
	out, code := drctl(t, c, "lab", "up", "--state", dir)
	if code != 0 {
		t.Fatalf("lab up: exit %d\n%s", code, out)
	}
	t.Logf("lab up: %s", time.Since(start).Round(time.Millisecond))
	st, err := lab.ReadState(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if lab.Alive(st.SupervisorPID) {
			_ = lab.Down(context.Background(), dir)
		}
	})
	if !lab.Alive(st.SupervisorPID) {
		t.Fatalf("the supervisor (pid %d) is not running after lab up returned", st.SupervisorPID)
	}

	secrets, err := lab.ReadSecrets(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{lab.EnvDBEast, lab.EnvDBWest, lab.EnvReplEast, lab.EnvReplWest, lab.EnvTSIGSecret} {
		if secrets[k] == "" {
			t.Errorf("%s has no %s", lab.EnvFile, k)
		}
	}
	if fi, err := os.Stat(filepath.Join(dir, lab.EnvFile)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("%s: mode %v (%v), want 0600", lab.EnvFile, fi.Mode().Perm(), err)
	}
	params, err := os.ReadFile(filepath.Join(dir, lab.ParamsFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"dns_server:", "lb_socket:", "west_address: 127.0.0.22", "west_db_address: 127.0.0.12", "east_data_dir:", "health_url:"} {
		if !strings.Contains(string(params), want) {
			t.Errorf("%s lacks %q:\n%s", lab.ParamsFile, want, params)
		}
	}

	status, code := drctl(t, c, "lab", "status", "--state", dir)
	if code != 0 {
		t.Fatalf("lab status: exit %d\n%s", code, status)
	}
	for component, want := range map[string]string{
		"postgres east":       "primary on 127.0.0.11:",
		"postgres west":       "standby streaming from 127.0.0.11:",
		"dns app.drctl.test.": "A 127.0.0.21 (east)",
		"dns db.drctl.test.":  "A 127.0.0.11 (east)",
		"haproxy":             "sends requests to east's app",
	} {
		if !slices.ContainsFunc(strings.Split(status, "\n"), func(line string) bool {
			f := strings.Fields(line)
			return strings.HasPrefix(strings.TrimSpace(line), component+" ") && slices.Contains(f, "ok") && strings.Contains(line, want)
		}) {
			t.Errorf("lab status: no line %q ok %q:\n%s", component, want, status)
		}
	}
	for k, v := range secrets {
		for _, text := range []string{out, status, string(params)} {
			if strings.Contains(text, v) {
				t.Errorf("the value of %s appears in the lab's output or params", k)
			}
		}
	}
	t.Logf("lab status:\n%s", status)

	start = time.Now()
	out, code = drctl(t, c, "lab", "down", "--state", dir)
	if code != 0 {
		t.Fatalf("lab down: exit %d\n%s", code, out)
	}
	t.Logf("lab down: %s", time.Since(start).Round(time.Millisecond))
	if left := lab.Leftovers(st); len(left) > 0 {
		t.Errorf("after lab down still running or bound: %v", left)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("lab down left %s behind (%v)", dir, err)
	}
	if out, code := drctl(t, c, "lab", "down", "--state", dir); code != 0 || !strings.Contains(out, "no lab") {
		t.Errorf("a second lab down: exit %d\n%s", code, out)
	}
}

// TestDemoFailoverAndFailback is `drctl demo --yes --failback` without the
// terminal: site-failover.yaml runs for real against the lab while a load
// generator writes through HAProxy, then failback.yaml brings the app home.
func TestDemoFailoverAndFailback(t *testing.T) {
	needLab(t)
	ctx := testwait.Context(t)
	srv := startServer(t, devserver.Options{})
	c := testConfig(t, srv)

	start := time.Now()
	l, err := lab.Start(ctx, lab.Options{Dir: labStateDir(t)})
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	t.Cleanup(func() {
		if !closed {
			_ = l.Close()
		}
	})
	t.Logf("lab up: %s", time.Since(start).Round(time.Millisecond))
	for k, v := range l.Secrets() {
		t.Setenv(k, v)
	}
	startWorker(t, srv, c)
	reg, err := worker.Actions(c)
	if err != nil {
		t.Fatal(err)
	}
	starter := operatorAs(srv, c, "oncall-sre")
	second := operatorAs(srv, c, "oncall-dba")
	refused := 0
	approve := func(ctx context.Context, id string, gate workflows.StepReport) {
		if _, err := starter.Decide(ctx, id, gate.ID, true, ""); err != nil && strings.Contains(err.Error(), "two-person rule") {
			refused++
		}
		if _, err := second.Decide(ctx, id, gate.ID, true, "test"); err != nil && ctx.Err() == nil {
			t.Errorf("approve %s: %v", gate.ID, err)
		}
	}

	// Failover.
	rb, err := runbooks.Load("../runbooks/site-failover.yaml", reg)
	if err != nil {
		t.Fatal(err)
	}
	res, err := l.Exercise(ctx, rb, lab.ExerciseOptions{Operator: starter, Reason: "test: east is lost", Approve: approve})
	if err != nil {
		t.Fatal(err)
	}
	rep := res.Report
	logOutcome(t, "failover", res)
	if rep.State != workflows.StateSucceeded {
		t.Fatalf("failover run %s: %s", rep.State, rep.Error)
	}
	if refused != 1 {
		t.Errorf("the two-person rule refused the starter %d times, want 1", refused)
	}
	if res.FenceAt.IsZero() || res.AckedBeforeFence < 10 {
		t.Errorf("%d writes acknowledged before the fence (at %v); the load should have been writing", res.AckedBeforeFence, res.FenceAt)
	}
	west := lab.West
	if res.Primary != west {
		t.Errorf("primary after failover: %s, want west", res.Primary)
	}
	beforeFence := res.Load.IDs()[:res.AckedBeforeFence]
	if n, err := lab.Present(ctx, l.AppDSN(west), beforeFence); err != nil || n != len(beforeFence) {
		t.Errorf("writes acknowledged before the fence present on west: %d of %d (%v)", n, len(beforeFence), err)
	}
	if res.Lost() != 0 {
		t.Errorf("%d acknowledged writes missing on west", res.Lost())
	}
	if by := res.Load.BySite(); by[west] == 0 {
		t.Errorf("no write acknowledged by west's database after the failover (%v)", by)
	}
	// DNS, asked of the authoritative server directly.
	for name, want := range map[string]string{lab.AppName: lab.WestAppAddr, lab.DBName: lab.WestDBAddr} {
		rrs, err := l.DNS.Query(ctx, name, "A")
		if err != nil || len(rrs) != 1 || !strings.HasSuffix(rrs[0].String(), "\t"+want) {
			t.Errorf("%s A: %v (%v), want %s", name, rrs, err, want)
		}
	}
	// Requests through HAProxy land on west, and the app writes there.
	if res.Served.Site != west || res.Served.DBSite != west {
		t.Errorf("through HAProxy: app %q writing to %q, want west and west", res.Served.Site, res.Served.DBSite)
	}
	if state, err := l.LB.Command(ctx, "show servers state "+lab.AppBackend); err != nil || !strings.Contains(state, "west1") {
		t.Errorf("show servers state: %v %v", state, err)
	}
	if rep.RTO == nil || rep.RTO.D() <= 0 || rep.RTO.D() > rep.Objectives.RTO.D() {
		t.Errorf("RTO %v: want a positive duration within the objective %s", rep.RTO, rep.Objectives.RTO)
	}
	if rep.RPO == nil || rep.RPO.D() < 0 || rep.RPO.D() > time.Second {
		t.Errorf("RPO %v: want measured, and at most 1s with east fenced and reachable", rep.RPO)
	}
	if res.Load.WriteGap() > rep.RTO.D()+time.Second {
		t.Errorf("the app could not write for %s, longer than the run's RTO %s", res.Load.WriteGap(), rep.RTO)
	}
	allAcked := res.Load.IDs()

	// Failback.
	rb, err = runbooks.Load("../runbooks/failback.yaml", reg)
	if err != nil {
		t.Fatal(err)
	}
	back, err := l.Exercise(ctx, rb, lab.ExerciseOptions{Operator: starter, Reason: "test: east is back", Approve: approve})
	if err != nil {
		t.Fatal(err)
	}
	logOutcome(t, "failback", back)
	if back.Report.State != workflows.StateSucceeded {
		t.Fatalf("failback run %s: %s", back.Report.State, back.Report.Error)
	}
	if back.Primary != lab.East || back.Served.DBSite != lab.East || back.Served.Site != lab.East {
		t.Errorf("after failback: primary %s, HAProxy sends to %s's app writing to %s", back.Primary, back.Served.Site, back.Served.DBSite)
	}
	if standby, err := l.Node(lab.East).InRecovery(ctx); err != nil || standby {
		t.Errorf("east in recovery after failback: %v (%v)", standby, err)
	}
	if standby, err := l.Node(west).InRecovery(ctx); err != nil || !standby {
		t.Errorf("west is not a standby again after failback: in recovery %v (%v)", standby, err)
	}
	allAcked = append(allAcked, back.Load.IDs()...)
	if n, err := lab.Present(ctx, l.AppDSN(lab.East), allAcked); err != nil || n != len(allAcked) {
		t.Errorf("after failback, east has %d of the %d writes acknowledged during both runs (%v)", n, len(allAcked), err)
	}

	// The lab stops every process it started, the ones pg_ctl restarted
	// during the rejoins included, and frees every port.
	st := l.State(0)
	pids := []int{st.DNS.PID, st.HAProxy.PID}
	for _, n := range st.Postgres {
		pids = append(pids, lab.PostmasterPID(n.DataDir))
	}
	closed = true
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if left := lab.Leftovers(st); len(left) > 0 {
		t.Errorf("after Close still running or bound: %v", left)
	}
	if slices.ContainsFunc(pids, lab.Alive) {
		t.Errorf("a lab process outlived Close: %v", pids)
	}
}

func logOutcome(t *testing.T, what string, res *lab.Outcome) {
	t.Helper()
	rep := res.Report
	var steps []string
	for _, s := range rep.Steps {
		if s.StartedAt != nil && s.EndedAt != nil {
			steps = append(steps, s.ID+" "+s.EndedAt.Sub(*s.StartedAt).Round(time.Millisecond).String())
		}
	}
	t.Logf("%s: %s, RTO %v, RPO %v; %d writes acknowledged (%v), %d refused, longest gap %s, %d present on %s; steps: %s",
		what, rep.State, rep.RTO, rep.RPO, len(res.Load.Acks), res.Load.BySite(), res.Load.Failed,
		res.Load.WriteGap().Round(time.Millisecond), res.Present, res.Primary, strings.Join(steps, ", "))
}

// TestShippedRunbooksDocumented: every shipped runbook opens with a comment
// naming it and saying when and how to run it (worker/ validates them).
func TestShippedRunbooksDocumented(t *testing.T) {
	files, err := filepath.Glob("../runbooks/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no shipped runbooks (%v)", err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		name := strings.TrimSuffix(filepath.Base(f), ".yaml")
		var header []string
		for _, line := range strings.Split(string(b), "\n") {
			if !strings.HasPrefix(line, "#") {
				break
			}
			if strings.HasPrefix(line, "# yaml-language-server:") {
				continue // the editor's schema line comes first
			}
			header = append(header, line)
		}
		if len(header) < 3 || !strings.HasPrefix(header[0], "# "+name) {
			t.Errorf("%s: want a comment of a few lines at the top, starting with %q", f, "# "+name)
		}
	}
}
