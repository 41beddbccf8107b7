package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/drctl/drctl/internal/testwait"

	"github.com/jackc/pgx/v5"

	"github.com/drctl/drctl/activities"
	"github.com/drctl/drctl/activities/postgres"
	"github.com/drctl/drctl/internal/pglab"
	"github.com/drctl/drctl/runbooks"
)

// lab is a real primary (target "east") and streaming standby ("west").
type lab struct {
	pair    *pglab.Pair
	east    *pglab.Node
	west    *pglab.Node
	dsns    map[string]string
	targets []runbooks.Target
	p       *postgres.Provider
}

type mapSecrets map[string]string

func (m mapSecrets) DSN(t runbooks.Target) (string, error) {
	if d, ok := m[t.Name]; ok {
		return d, nil
	}
	return "", activities.Permanentf("no DSN for %s", t.Name)
}

func newLab(t *testing.T) *lab {
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
			t.Errorf("close lab: %v", err)
		}
	})
	l := &lab{pair: pair, east: pair.Primary, west: pair.Standby}
	l.dsns = map[string]string{
		"east": l.east.DSN(pglab.AdminUser, pair.AdminPassword, "postgres"),
		"west": l.west.DSN(pglab.AdminUser, pair.AdminPassword, "postgres"),
		// What a standby of west streams with: the replication role.
		"west-replication": l.west.DSN(pglab.ReplUser, pair.ReplPassword, "postgres"),
	}
	l.targets = []runbooks.Target{{Name: "east", Kind: "postgres"}, {Name: "west", Kind: "postgres"}, {Name: "west-replication", Kind: "postgres-replication"}}
	l.p = &postgres.Provider{Secrets: mapSecrets(l.dsns)}
	if err := l.appAdminExec(ctx, l.east, `CREATE TABLE writes (id bigint PRIMARY KEY); GRANT ALL ON writes TO `+pglab.AppUser); err != nil {
		t.Fatal(err)
	}
	return l
}

// appAdmin connects to the application database as the admin role.
func (l *lab) appAdmin(ctx context.Context, n *pglab.Node) (*pgx.Conn, error) {
	return pgx.Connect(ctx, n.DSN(pglab.AdminUser, l.pair.AdminPassword, pglab.AppDB))
}

func (l *lab) appAdminExec(ctx context.Context, n *pglab.Node, sql string) error {
	c, err := l.appAdmin(ctx, n)
	if err != nil {
		return err
	}
	defer c.Close(ctx)
	_, err = c.Exec(ctx, sql)
	return err
}

// appCount counts rows of writes with the given id on n.
func (l *lab) appCount(ctx context.Context, n *pglab.Node, id int64) int {
	c, err := l.appAdmin(ctx, n)
	if err != nil {
		return -1
	}
	defer c.Close(ctx)
	var count int
	if err := c.QueryRow(ctx, `SELECT count(*) FROM writes WHERE id = $1`, id).Scan(&count); err != nil {
		return -1
	}
	return count
}

func (l *lab) req(step string, with map[string]any) activities.Request {
	return activities.Request{
		Run:  activities.Run{WorkflowID: "drctl-test", RunID: "run-1"},
		Step: step, With: with, Targets: l.targets,
	}
}

func (l *lab) appConn(ctx context.Context, n *pglab.Node) (*pgx.Conn, error) {
	return pgx.Connect(ctx, n.DSN(pglab.AppUser, l.pair.AppPassword, pglab.AppDB))
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// writer inserts rows through the application role as fast as it can,
// reconnecting after errors, and remembers which inserts were acknowledged.
type writer struct {
	mu    sync.Mutex
	acked []int64
	stop  chan struct{}
	done  chan struct{}
}

func startWriter(t *testing.T, l *lab, n *pglab.Node) *writer {
	w := &writer{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		var conn *pgx.Conn
		next := int64(1)
		for {
			select {
			case <-w.stop:
				if conn != nil {
					conn.Close(context.Background())
				}
				return
			default:
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			if conn == nil {
				c, err := l.appConn(ctx, n)
				if err != nil {
					cancel()
					time.Sleep(5 * time.Millisecond) // a client's reconnect backoff, not a test wait
					continue
				}
				conn = c
			}
			_, err := conn.Exec(ctx, `INSERT INTO public.writes (id) VALUES ($1)`, next)
			cancel()
			if err != nil {
				conn.Close(context.Background())
				conn = nil
				next++ // the outcome is unknown; never reuse the id
				continue
			}
			w.mu.Lock()
			w.acked = append(w.acked, next)
			w.mu.Unlock()
			next++
		}
	}()
	t.Cleanup(func() { w.halt() })
	return w
}

func (w *writer) halt() {
	select {
	case <-w.stop:
	default:
		close(w.stop)
	}
	<-w.done
}

func (w *writer) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.acked)
}

func (w *writer) ackedIDs() []int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.acked)
}

// missing returns the acknowledged ids that are not on node n.
func missing(t *testing.T, ctx context.Context, l *lab, n *pglab.Node, ids []int64) []int64 {
	t.Helper()
	conn, err := l.appAdmin(ctx, n)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT a FROM unnest($1::bigint[]) a WHERE NOT EXISTS (SELECT 1 FROM public.writes w WHERE w.id = a)`, ids)
	if err != nil {
		t.Fatal(err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func apply(t *testing.T, ctx context.Context, a activities.Action, req activities.Request) activities.Result {
	t.Helper()
	res, err := a.Apply(ctx, req)
	if err != nil {
		t.Fatalf("%s: %v", a.Spec().Name, err)
	}
	return res
}

func TestFenceCannotBeBypassedAndUnfenceRestores(t *testing.T) {
	ctx := ctxT(t)
	l := newLab(t)
	client, err := l.appConn(ctx, l.east)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close(ctx)
	if _, err := client.Exec(ctx, `SET default_transaction_read_only = off`); err != nil {
		t.Fatal(err)
	}

	fence := postgres.Fence{Provider: l.p}
	res := apply(t, ctx, fence, l.req("fence", map[string]any{"target": "east"}))
	if !res.Changed || res.Outputs["terminated"].(int) < 1 {
		t.Fatalf("fence: %+v, want changed with the client session terminated", res)
	}
	if _, err := client.Exec(ctx, `INSERT INTO public.writes VALUES (1)`); err == nil {
		t.Fatal("a client session survived the fence and wrote")
	}
	_, err = l.appConn(ctx, l.east)
	if err == nil || !strings.Contains(err.Error(), "pg_hba.conf rejects connection") {
		t.Fatalf("new client connection after the fence: %v, want rejected by pg_hba.conf", err)
	}
	// The admin path and replication keep working.
	if err := l.appAdminExec(ctx, l.east, `INSERT INTO writes VALUES (42)`); err != nil {
		t.Fatalf("admin write after the fence: %v", err)
	}
	testwait.For(t, "the admin's write on the standby", func() bool { return l.appCount(ctx, l.west, 42) == 1 })

	again := apply(t, ctx, fence, l.req("fence", map[string]any{"target": "east"}))
	if again.Changed {
		t.Fatalf("second fence changed something: %+v", again)
	}
	obs, err := fence.Observe(ctx, l.req("fence", map[string]any{"target": "east"}))
	if err != nil || len(obs.Changes) != 0 || !strings.Contains(obs.Current, "fenced") {
		t.Fatalf("observe after fence: %+v %v", obs, err)
	}

	unfence := postgres.Unfence{Provider: l.p}
	if res := apply(t, ctx, unfence, l.req("unfence", map[string]any{"target": "east"})); !res.Changed {
		t.Fatalf("unfence: %+v", res)
	}
	c2, err := l.appConn(ctx, l.east)
	if err != nil {
		t.Fatalf("client connection after unfence: %v", err)
	}
	defer c2.Close(ctx)
	if _, err := c2.Exec(ctx, `INSERT INTO public.writes VALUES (2)`); err != nil {
		t.Fatalf("client write after unfence: %v", err)
	}
	if res := apply(t, ctx, unfence, l.req("unfence", map[string]any{"target": "east"})); res.Changed {
		t.Fatalf("second unfence changed something: %+v", res)
	}
}

func TestPlannedSwitchoverLosesNothingAndOldPrimaryRejoins(t *testing.T) {
	ctx := ctxT(t)
	l := newLab(t)
	w := startWriter(t, l, l.east)
	testwait.For(t, "writes before the switchover", func() bool { return w.count() >= 100 })

	start := time.Now()
	apply(t, ctx, postgres.Fence{Provider: l.p}, l.req("fence", map[string]any{"target": "east"}))
	apply(t, ctx, postgres.WaitCaughtUp{Provider: l.p}, l.req("catch-up", map[string]any{"primary": "east", "standby": "west"}))
	promote := postgres.Promote{Provider: l.p}
	res := apply(t, ctx, promote, l.req("promote", map[string]any{"target": "west", "old_primary": "east"}))
	t.Logf("fence + catch-up + promote + verify: %s, %d writes acknowledged", time.Since(start).Round(time.Millisecond), w.count())
	w.halt()

	if !res.Changed || res.Outputs["rpo"] != "0s" || res.Outputs["lag_bytes"] != int64(0) || res.Outputs["timeline"] != 2 {
		t.Fatalf("promote outputs %+v, want changed, rpo 0s, no lag, timeline 2", res.Outputs)
	}
	if lost := missing(t, ctx, l, l.west, w.ackedIDs()); len(lost) > 0 {
		t.Fatalf("%d acknowledged writes missing on the new primary: %v", len(lost), lost)
	}
	if again := apply(t, ctx, promote, l.req("promote", map[string]any{"target": "west", "old_primary": "east"})); again.Changed || again.Outputs["rpo"] != "0s" {
		t.Fatalf("second promote: %+v, want already done with the recorded outputs", again)
	}

	rejoin := postgres.Rejoin{Provider: l.p}
	with := map[string]any{"target": "east", "source": "west", "data_dir": l.east.DataDir, "start_options": l.east.StartOptions(), "replication": "west-replication"}
	if res := apply(t, ctx, rejoin, l.req("rejoin", with)); !res.Changed {
		t.Fatalf("rejoin: %+v", res)
	}
	if err := l.appAdminExec(ctx, l.west, `INSERT INTO writes VALUES (-1)`); err != nil {
		t.Fatal(err)
	}
	testwait.For(t, "a write on the new primary to reach the rejoined node", func() bool { return l.appCount(ctx, l.east, -1) == 1 })
	if res := apply(t, ctx, rejoin, l.req("rejoin", with)); res.Changed {
		t.Fatalf("second rejoin changed something: %+v", res)
	}
	st := apply(t, ctx, postgres.Status{Provider: l.p}, l.req("status", map[string]any{"target": "east", "role": "standby"}))
	if st.Outputs["timeline"] != 2 {
		t.Fatalf("rejoined node status %+v", st.Outputs)
	}
}

func TestUnplannedFailoverRecordsRPO(t *testing.T) {
	ctx := ctxT(t)
	l := newLab(t)
	w := startWriter(t, l, l.east)
	testwait.For(t, "writes", func() bool { return w.count() >= 100 })
	if err := l.east.Kill(); err != nil {
		t.Fatal(err)
	}
	w.halt()
	promote := postgres.Promote{Provider: l.p}

	_, err := promote.Apply(ctx, l.req("promote", map[string]any{"target": "west", "old_primary": "east"}))
	if err == nil || activities.IsPermanent(err) || !strings.Contains(err.Error(), "cannot reach old primary east") || !strings.Contains(err.Error(), "old_primary_dead: true") {
		t.Fatalf("promote with the old primary unreachable and not declared dead: %v; want a retryable error saying how to declare it", err)
	}
	dead := map[string]any{"target": "west", "old_primary": "east", "old_primary_dead": true}
	_, err = promote.Apply(ctx, l.req("promote", dead))
	if err == nil || !activities.IsPermanent(err) || !strings.Contains(err.Error(), "over max_lag 0s") {
		t.Fatalf("promote over max_lag without accepting data loss: %v", err)
	}
	dead["accept_data_loss"] = true
	_, err = promote.Apply(ctx, l.req("promote", dead))
	if err == nil || !activities.IsPermanent(err) || !strings.Contains(err.Error(), "approved_by") {
		t.Fatalf("accept_data_loss without approved_by: %v", err)
	}
	dead["approved_by"] = "bob"
	res := apply(t, ctx, promote, l.req("promote", dead))
	rpo, err := runbooks.ParseDuration(fmt.Sprint(res.Outputs["rpo"]))
	if err != nil || res.Outputs["lag_bytes"] != int64(-1) {
		t.Fatalf("promote outputs %+v: rpo must be a duration and lag unknown", res.Outputs)
	}
	lost := missing(t, ctx, l, l.west, w.ackedIDs())
	t.Logf("unplanned failover: RPO recorded %s; %d of %d acknowledged writes not on the standby", rpo, len(lost), w.count())
	if rpo.D() > time.Minute {
		t.Fatalf("RPO %s is implausible for a standby streaming on loopback", rpo)
	}
	var approved string
	if err := l.west.QueryRow(ctx, `SELECT approved_by FROM drctl.promotions`).Scan(&approved); err != nil || approved != "bob" {
		t.Fatalf("recorded approver %q (%v)", approved, err)
	}
}

func TestPromoteRefusesSplitBrain(t *testing.T) {
	ctx := ctxT(t)
	l := newLab(t)
	promote := postgres.Promote{Provider: l.p}
	for _, tc := range []struct {
		with map[string]any
		want string
	}{
		{map[string]any{"target": "west", "old_primary": "east"}, "old primary east is still a writable, unfenced primary (split-brain risk); fence it first"},
		{map[string]any{"target": "west", "old_primary": "east", "old_primary_dead": true}, "old primary east was declared dead but answers as a writable, unfenced primary"},
	} {
		_, err := promote.Apply(ctx, l.req("promote", tc.with))
		if err == nil || !activities.IsPermanent(err) || !strings.Contains(err.Error(), tc.want) {
			t.Fatalf("promote %v: %v; want a permanent error containing %q", tc.with, err, tc.want)
		}
	}
	if rec, err := l.west.InRecovery(ctx); err != nil || !rec {
		t.Fatalf("the standby left recovery after refused promotions (in recovery %v, %v)", rec, err)
	}
}

func TestBadInput(t *testing.T) {
	ctx := ctxT(t)
	l := newLab(t)
	status := postgres.Status{Provider: l.p}

	unreachable := &postgres.Provider{Secrets: mapSecrets{"east": "host=127.0.0.1 port=1 user=drctl_admin password=hunter2secret dbname=postgres sslmode=disable"}, ConnectTimeout: time.Second}
	_, err := postgres.Status{Provider: unreachable}.Apply(ctx, l.req("s", map[string]any{"target": "east"}))
	if err == nil || activities.IsPermanent(err) || !strings.Contains(err.Error(), "connect to east at 127.0.0.1:1") || strings.Contains(err.Error(), "hunter2secret") {
		t.Fatalf("unreachable host: %v; want a retryable error naming the target and address, without the password", err)
	}

	badPassword := "wrong-" + l.pair.AdminPassword
	wrong := &postgres.Provider{Secrets: mapSecrets{"east": l.east.DSN(pglab.AdminUser, badPassword, "postgres")}}
	_, err = postgres.Status{Provider: wrong}.Apply(ctx, l.req("s", map[string]any{"target": "east"}))
	if err == nil || !activities.IsPermanent(err) || !strings.Contains(err.Error(), "password authentication failed") || strings.Contains(err.Error(), badPassword) {
		t.Fatalf("wrong password: %v; want a permanent authentication error without the password", err)
	}

	_, err = postgres.Promote{Provider: l.p}.Apply(ctx, l.req("promote", map[string]any{"target": "east", "old_primary": "west"}))
	if err == nil || !activities.IsPermanent(err) || !strings.Contains(err.Error(), "east is not a standby") {
		t.Fatalf("promote a primary: %v", err)
	}

	env := &postgres.Provider{} // reads credentials.env on the worker
	req := l.req("s", map[string]any{"target": "east"})
	req.Targets = []runbooks.Target{{Name: "east", Kind: "postgres", Credentials: &runbooks.CredentialRef{Env: "DRCTL_TEST_UNSET_DSN"}}}
	_, err = postgres.Status{Provider: env}.Apply(ctx, req)
	if err == nil || !activities.IsPermanent(err) || !strings.Contains(err.Error(), "environment variable DRCTL_TEST_UNSET_DSN is not set") {
		t.Fatalf("unset DSN variable: %v", err)
	}
	t.Setenv("DRCTL_TEST_EAST_DSN", l.dsns["east"])
	req.Targets[0].Credentials.Env = "DRCTL_TEST_EAST_DSN"
	if res, err := (postgres.Status{Provider: env}).Apply(ctx, req); err != nil || res.Outputs["role"] != "primary" {
		t.Fatalf("status through credentials.env: %+v %v", res, err)
	}

	_, err = status.Apply(ctx, l.req("s", map[string]any{"target": "east", "role": "standby"}))
	if err == nil || !strings.Contains(err.Error(), "east is a primary, want standby") {
		t.Fatalf("role gate: %v", err)
	}
	_, err = status.Apply(ctx, l.req("s", map[string]any{"target": "nowhere"}))
	if err == nil || !activities.IsPermanent(err) {
		t.Fatalf("unknown target: %v", err)
	}
}

// TestPromoteRetryAfterCrashDoesNotActAgain stops an attempt right after
// pg_promote (before it verified and recorded the promotion), as a worker
// crash would; the next attempt finds the node promoted by this step and
// does not promote again.
func TestPromoteRetryAfterCrashDoesNotActAgain(t *testing.T) {
	ctx := ctxT(t)
	l := newLab(t)
	apply(t, ctx, postgres.Fence{Provider: l.p}, l.req("fence", map[string]any{"target": "east"}))
	crashing := *l.p
	attemptCtx, crash := context.WithCancel(ctx)
	crashing.AfterPromote = func(context.Context) { crash() }
	with := map[string]any{"target": "west", "old_primary": "east"}
	if _, err := (postgres.Promote{Provider: &crashing}).Apply(attemptCtx, l.req("promote", with)); err == nil {
		t.Fatal("the crashed attempt reported success")
	}
	if rec, _ := l.west.InRecovery(ctx); rec {
		t.Fatal("the crashed attempt did not promote; the test proves nothing")
	}
	res := apply(t, ctx, postgres.Promote{Provider: l.p}, l.req("promote", with))
	if res.Changed || !strings.Contains(res.Summary, "promoted by an earlier attempt of this step") || res.Outputs["timeline"] != 2 || res.Outputs["rpo"] != "0s" {
		t.Fatalf("retry: %+v", res)
	}
	// A different step (another run) may not claim the promotion.
	other := l.req("promote", with)
	other.Run.RunID = "run-2"
	if _, err := (postgres.Promote{Provider: l.p}).Apply(ctx, other); err == nil || !strings.Contains(err.Error(), "west is not a standby") {
		t.Fatalf("another run's promote of the promoted node: %v", err)
	}
	other.With = map[string]any{"target": "west", "old_primary": "east", "already_primary_ok": true}
	if res := apply(t, ctx, postgres.Promote{Provider: l.p}, other); res.Changed {
		t.Fatalf("already_primary_ok: %+v", res)
	}
}

// TestUnfenceLeavesTheOldPrimaryFencedOnceTheStandbyIsPrimary: the
// compensation of a fence must not undo it after a promotion, or clients
// would find two writable primaries.
func TestUnfenceLeavesTheOldPrimaryFencedOnceTheStandbyIsPrimary(t *testing.T) {
	ctx := ctxT(t)
	l := newLab(t)
	apply(t, ctx, postgres.Fence{Provider: l.p}, l.req("fence", map[string]any{"target": "east"}))
	guarded := map[string]any{"target": "east", "unless_primary": "west"}
	unfence := postgres.Unfence{Provider: l.p}
	apply(t, ctx, postgres.WaitCaughtUp{Provider: l.p}, l.req("catch-up", map[string]any{"primary": "east", "standby": "west"}))
	apply(t, ctx, postgres.Promote{Provider: l.p}, l.req("promote", map[string]any{"target": "west", "old_primary": "east"}))
	res := apply(t, ctx, unfence, l.req("fence", guarded))
	if res.Changed || !strings.Contains(res.Summary, "east left fenced: west is a primary") {
		t.Fatalf("unfence after promotion: %+v", res)
	}
	if _, err := l.appConn(ctx, l.east); err == nil {
		t.Fatal("a client could connect to the old primary after the guarded unfence")
	}
}

func TestUnfenceGuardAllowsWhileTheStandbyIsStandby(t *testing.T) {
	ctx := ctxT(t)
	l := newLab(t)
	apply(t, ctx, postgres.Fence{Provider: l.p}, l.req("fence", map[string]any{"target": "east"}))
	if res := apply(t, ctx, postgres.Unfence{Provider: l.p}, l.req("fence", map[string]any{"target": "east", "unless_primary": "west"})); !res.Changed {
		t.Fatalf("guarded unfence while west is a standby: %+v", res)
	}
	c, err := l.appConn(ctx, l.east)
	if err != nil {
		t.Fatalf("client after unfence: %v", err)
	}
	c.Close(ctx)
}

// TestFenceRoundTripsARealWorldHBA fences and unfences a node whose
// pg_hba.conf looks like initdb's: comments, blank lines, tabs. Unfence must
// restore it byte for byte.
func TestFenceRoundTripsARealWorldHBA(t *testing.T) {
	ctx := ctxT(t)
	l := newLab(t)
	path := l.east.DataDir + "/pg_hba.conf"
	current, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	original := "# PostgreSQL Client Authentication Configuration File\n#\n\n# TYPE\tDATABASE\tUSER\tADDRESS\tMETHOD\n\n" + string(current) + "\n\n# end\n"
	if err := os.WriteFile(path, []byte(original), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := l.east.Exec(ctx, `SELECT pg_reload_conf()`); err != nil {
		t.Fatal(err)
	}
	apply(t, ctx, postgres.Fence{Provider: l.p}, l.req("fence", map[string]any{"target": "east"}))
	apply(t, ctx, postgres.Unfence{Provider: l.p}, l.req("unfence", map[string]any{"target": "east"}))
	restored, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(restored) != original {
		t.Fatalf("restored pg_hba.conf differs:\n%q\nwant:\n%q", restored, original)
	}
}

func TestRejoinRefusesUnsafeTargets(t *testing.T) {
	ctx := ctxT(t)
	l := newLab(t)
	apply(t, ctx, postgres.Fence{Provider: l.p}, l.req("fence", map[string]any{"target": "east"}))
	apply(t, ctx, postgres.WaitCaughtUp{Provider: l.p}, l.req("catch-up", map[string]any{"primary": "east", "standby": "west"}))
	apply(t, ctx, postgres.Promote{Provider: l.p}, l.req("promote", map[string]any{"target": "west", "old_primary": "east"}))
	apply(t, ctx, postgres.Unfence{Provider: l.p}, l.req("unfence", map[string]any{"target": "east", "force": true}))
	rejoin := postgres.Rejoin{Provider: l.p}
	with := map[string]any{"target": "east", "source": "west", "data_dir": l.east.DataDir, "start_options": l.east.StartOptions(), "replication": "west-replication"}
	_, err := rejoin.Apply(ctx, l.req("rejoin", with))
	if err == nil || !activities.IsPermanent(err) || !strings.Contains(err.Error(), "writable, unfenced primary") {
		t.Fatalf("rejoin of an unfenced primary: %v", err)
	}
	apply(t, ctx, postgres.Fence{Provider: l.p}, l.req("fence2", map[string]any{"target": "east"}))
	with["data_dir"] = l.west.DataDir
	_, err = rejoin.Apply(ctx, l.req("rejoin", with))
	if err == nil || !activities.IsPermanent(err) || !strings.Contains(err.Error(), "not data_dir") {
		t.Fatalf("rejoin naming another node's directory: %v", err)
	}
	if rec, _ := l.west.InRecovery(ctx); rec {
		t.Fatal("the new primary was touched")
	}
}
