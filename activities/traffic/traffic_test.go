//go:build linux

package traffic_test

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/drctl/drctl/internal/testwait"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/drctl/drctl/activities"
	"github.com/drctl/drctl/activities/traffic"
	"github.com/drctl/drctl/internal/haproxylab"
	"github.com/drctl/drctl/runbooks"
)

// recorder wraps the real runtime API and remembers every command sent, so
// a test can prove that an idempotent re-run sent no set command.
type recorder struct {
	mu   sync.Mutex
	cmds []string
}

func (r *recorder) provider() *traffic.Provider {
	return &traffic.Provider{
		Poll: 10 * time.Millisecond,
		Runtime: func(socket string) traffic.Commander {
			return recording{r: r, c: traffic.Socket{Path: socket}}
		},
	}
}

type recording struct {
	r *recorder
	c traffic.Commander
}

func (c recording) Command(ctx context.Context, cmd string) (string, error) {
	c.r.mu.Lock()
	c.r.cmds = append(c.r.cmds, cmd)
	c.r.mu.Unlock()
	return c.c.Command(ctx, cmd)
}

// sets returns the set commands sent since the last call.
func (r *recorder) sets() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, c := range r.cmds {
		if strings.HasPrefix(c, "set ") {
			out = append(out, c)
		}
	}
	r.cmds = nil
	return out
}

type fixture struct {
	lab *haproxylab.Lab
	rec *recorder
	p   *traffic.Provider
}

func newFixture(t *testing.T, o haproxylab.Options) *fixture {
	t.Helper()
	ctx := testwait.Context(t)
	l, err := haproxylab.Start(ctx, o)
	if errors.Is(err, haproxylab.ErrNotInstalled) && os.Getenv("DRCTL_CI") == "" {
		t.Skip("HAProxy is needed (apt-get install haproxy); CI sets DRCTL_CI=1 and fails instead: ", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := l.Stop(); err != nil {
			t.Errorf("stop lab: %v", err)
		}
	})
	rec := &recorder{}
	return &fixture{lab: l, rec: rec, p: rec.provider()}
}

func request(socket string, with map[string]any) activities.Request {
	return activities.Request{
		Run:     activities.Run{WorkflowID: "drctl-test", RunID: "run-1"},
		Step:    "step",
		With:    with,
		Targets: []runbooks.Target{{Name: "lb", Kind: traffic.TargetKind, Attributes: map[string]string{traffic.SocketAttribute: socket}}},
	}
}

func (f *fixture) req(with map[string]any) activities.Request { return request(f.lab.Socket(), with) }

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// sites sends n requests through the frontend to backend and counts the
// answering sites.
func (f *fixture) sites(t *testing.T, ctx context.Context, backend string, n int) map[string]int {
	t.Helper()
	seen := map[string]int{}
	for range n {
		site, err := f.lab.Get(ctx, backend, "/")
		if err != nil {
			t.Fatal(err)
		}
		seen[site]++
	}
	return seen
}

func (f *fixture) state(t *testing.T, ctx context.Context) traffic.Snapshot {
	t.Helper()
	out, err := f.lab.Command(ctx, "show servers state")
	if err != nil {
		t.Fatal(err)
	}
	snap, err := traffic.ParseServersState(out)
	if err != nil {
		t.Fatal(err)
	}
	return snap
}

var eastToWest = map[string]any{"target": "lb", "backend": "app", "to": []any{"west1"}, "from": []any{"east1"}}

func TestShiftMovesTrafficAndIsIdempotent(t *testing.T) {
	ctx := ctxT(t)
	f := newFixture(t, haproxylab.Options{})
	if seen := f.sites(t, ctx, "", 10); seen["east"] != 10 {
		t.Fatalf("before the shift: %v, want all east", seen)
	}
	shift := traffic.Shift{Provider: f.p}

	obs, err := shift.Observe(ctx, f.req(eastToWest))
	if err != nil {
		t.Fatal(err)
	}
	if len(obs.Changes) != 3 || f.rec.sets() != nil {
		t.Fatalf("observe: %+v, want ready, wait, maint and no set command sent", obs)
	}

	start := time.Now()
	res, err := shift.Apply(ctx, f.req(eastToWest))
	took := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("shift + verify: %s (%s)", took, res.Summary)
	want := []string{"set server app/west1 state ready", "set server app/east1 state maint"}
	if got := f.rec.sets(); !slices.Equal(got, want) {
		t.Errorf("commands %q, want %q (to-servers up before from-servers out)", got, want)
	}
	if !res.Changed || res.Outputs["commands"] != 2 {
		t.Errorf("result %+v, want changed with 2 commands", res)
	}
	before := res.Outputs["before"].(map[string]any)["app"].(map[string]any)
	after := res.Outputs["after"].(map[string]any)["app"].(map[string]any)
	if before["west1"] != "maint down w1" || after["west1"] != "ready up w1 0 sess" || after["east1"] != "maint down w1 0 sess" {
		t.Errorf("before %v after %v", before, after)
	}
	if seen := f.sites(t, ctx, "", 50); seen["west"] != 50 {
		t.Fatalf("after the shift: %v, want all 50 on west", seen)
	}

	// Again: the state holds, so nothing is sent.
	res, err = shift.Apply(ctx, f.req(eastToWest))
	if err != nil {
		t.Fatal(err)
	}
	if res.Changed || res.Outputs["commands"] != 0 {
		t.Errorf("second shift %+v, want already done", res)
	}
	if got := f.rec.sets(); got != nil {
		t.Errorf("second shift sent %q, want no set command", got)
	}
	obs, err = shift.Observe(ctx, f.req(eastToWest))
	if err != nil || len(obs.Changes) != 0 {
		t.Errorf("observe after the shift: %+v, %v; want no changes", obs, err)
	}
}

func TestShiftSeveralBackendsWithWeightAndDrainMode(t *testing.T) {
	ctx := ctxT(t)
	f := newFixture(t, haproxylab.Options{Backends: []string{"app", "api"}})
	with := map[string]any{"target": "lb", "backends": []any{"app", "api"}, "to": "west1", "from": []any{"east1"}, "mode": "drain", "weight": "10"}
	shift := traffic.Shift{Provider: f.p}
	if _, err := shift.Apply(ctx, f.req(with)); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"set server app/west1 weight 10", "set server app/west1 state ready",
		"set server api/west1 weight 10", "set server api/west1 state ready",
		"set server app/east1 state drain", "set server api/east1 state drain",
	}
	if got := f.rec.sets(); !slices.Equal(got, want) {
		t.Errorf("commands %q,\nwant %q", got, want)
	}
	snap := f.state(t, ctx)
	for _, b := range []string{"app", "api"} {
		west, _ := snap.Server(b, "west1")
		east, _ := snap.Server(b, "east1")
		if west.Mode() != traffic.ModeReady || west.Weight != 10 || east.Mode() != traffic.ModeDrain {
			t.Errorf("%s: west1 %s, east1 %s", b, west.State(), east.State())
		}
		if seen := f.sites(t, ctx, b, 20); seen["west"] != 20 {
			t.Errorf("backend %s after the shift: %v, want all west", b, seen)
		}
	}
	if res, err := shift.Apply(ctx, f.req(with)); err != nil || res.Changed || f.rec.sets() != nil {
		t.Errorf("second shift: %+v, %v; want already done, nothing sent", res, err)
	}
	// A server in maint already counts as drained: asking for drain does
	// not let it take persistent traffic again.
	maint := map[string]any{"target": "lb", "backend": "app", "from": []any{"east1"}}
	if _, err := shift.Apply(ctx, f.req(maint)); err != nil {
		t.Fatal(err)
	}
	f.rec.sets()
	drainAgain := map[string]any{"target": "lb", "backend": "app", "from": []any{"east1"}, "mode": "drain"}
	if res, err := shift.Apply(ctx, f.req(drainAgain)); err != nil || res.Changed || f.rec.sets() != nil {
		t.Errorf("drain of a server in maint: %+v, %v; want already done", res, err)
	}
}

// With health checks, a to-server whose site fails never counts as up, so
// the from-servers keep serving; once the site answers, the shift completes.
func TestShiftWaitsForToServersToComeUp(t *testing.T) {
	ctx := ctxT(t)
	f := newFixture(t, haproxylab.Options{HealthChecks: true})
	f.lab.West.Fail(true)
	with := map[string]any{"target": "lb", "backend": "app", "to": []any{"west1"}, "from": []any{"east1"}, "up_timeout": "500ms"}
	shift := traffic.Shift{Provider: f.p}
	_, err := shift.Apply(ctx, f.req(with))
	if err == nil || activities.IsPermanent(err) || !strings.Contains(err.Error(), "app/west1") || !strings.Contains(err.Error(), "left in service") {
		t.Fatalf("shift to a failing site: %v, want a retryable error naming app/west1", err)
	}
	if got := f.rec.sets(); !slices.Equal(got, []string{"set server app/west1 state ready"}) {
		t.Errorf("commands %q, want only west1 made ready", got)
	}
	if seen := f.sites(t, ctx, "", 10); seen["east"] != 10 {
		t.Fatalf("after the failed shift: %v, want east still serving", seen)
	}

	f.lab.West.Fail(false)
	res, err := shift.Apply(ctx, f.req(with))
	if err != nil {
		t.Fatal(err)
	}
	if got := f.rec.sets(); !slices.Equal(got, []string{"set server app/east1 state maint"}) {
		t.Errorf("retry sent %q, want only east1 taken out", got)
	}
	if !res.Changed {
		t.Errorf("retry: %+v, want changed", res)
	}
	if seen := f.sites(t, ctx, "", 20); seen["west"] != 20 {
		t.Fatalf("after the shift: %v, want all west", seen)
	}
}

// registryEnv runs the traffic actions as a worker does, in a Temporal test
// activity environment, recording heartbeats.
func registryEnv(t *testing.T, p *traffic.Provider, beats chan<- traffic.DrainProgress) *testsuite.TestActivityEnvironment {
	t.Helper()
	reg := activities.NewRegistry()
	if err := reg.Add(traffic.Actions(p)...); err != nil {
		t.Fatal(err)
	}
	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	env.SetTestTimeout(time.Minute)
	reg.RegisterActivities(env)
	if beats != nil {
		env.SetOnActivityHeartbeatListener(func(_ *activity.Info, details converter.EncodedValues) {
			var p traffic.DrainProgress
			if details.Get(&p) == nil {
				select {
				case beats <- p:
				default:
				}
			}
		})
	}
	return env
}

func TestDrainWaitsForLongRequest(t *testing.T) {
	ctx := ctxT(t)
	f := newFixture(t, haproxylab.Options{})
	held := make(chan error, 1)
	go func() {
		site, err := f.lab.Get(ctx, "", haproxylab.HoldPath)
		if err == nil && site != "east" {
			err = errors.New("held request answered by " + site)
		}
		held <- err
	}()
	testwait.For(t, "the held request to reach east", func() bool { return f.lab.East.Held() == 1 })
	if _, err := (traffic.Shift{Provider: f.p}).Apply(ctx, f.req(eastToWest)); err != nil {
		t.Fatal(err)
	}

	beats := make(chan traffic.DrainProgress, 16)
	env := registryEnv(t, f.p, beats)
	type outcome struct {
		res activities.Result
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		v, err := env.ExecuteActivity(traffic.DrainName, f.req(map[string]any{"target": "lb", "backend": "app", "servers": []any{"east1"}, "deadline": "30s"}))
		var o outcome
		if o.err = err; err == nil {
			o.err = v.Get(&o.res)
		}
		done <- o
	}()
	select {
	case p := <-beats:
		if p.Sessions != 1 || p.PerServer["app/east1"] != 1 {
			t.Errorf("heartbeat %+v, want 1 session on app/east1", p)
		}
	case o := <-done:
		t.Fatalf("drain returned while a request was held: %+v", o)
	case <-time.After(testwait.Bound):
		t.Fatal("no heartbeat from drain")
	}
	select {
	case o := <-done:
		t.Fatalf("drain returned while a request was held: %+v", o)
	default:
	}
	// The shift did not cut the held request: it completes when the site
	// answers, and only then does the drain return.
	f.lab.East.Release()
	if err := <-held; err != nil {
		t.Fatalf("held request: %v", err)
	}
	select {
	case o := <-done:
		if o.err != nil {
			t.Fatal(o.err)
		}
		if o.res.Changed || o.res.Outputs["sessions_at_start"] != float64(1) {
			t.Errorf("drain result %+v, want unchanged, 1 session at start", o.res)
		}
		t.Logf("drain: %s", o.res.Summary)
	case <-time.After(testwait.Bound):
		t.Fatal("drain did not return after the held request completed")
	}
}

func TestDrainRefusesReadyServerAndStopsAtDeadline(t *testing.T) {
	ctx := ctxT(t)
	f := newFixture(t, haproxylab.Options{})
	drain := traffic.Drain{Provider: f.p}
	_, err := drain.Apply(ctx, f.req(map[string]any{"target": "lb", "backend": "app", "servers": []any{"east1"}}))
	if err == nil || !activities.IsPermanent(err) || !strings.Contains(err.Error(), "app/east1 is ready") {
		t.Errorf("drain of a ready server: %v, want a permanent refusal", err)
	}

	go func() { _, _ = f.lab.Get(ctx, "", haproxylab.HoldPath) }()
	testwait.For(t, "the held request to reach east", func() bool { return f.lab.East.Held() == 1 })
	if _, err := (traffic.Shift{Provider: f.p}).Apply(ctx, f.req(eastToWest)); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = drain.Apply(ctx, f.req(map[string]any{"target": "lb", "backend": "app", "servers": []any{"east1"}, "deadline": "200ms"}))
	if err == nil || !activities.IsPermanent(err) || !strings.Contains(err.Error(), "app/east1 1") {
		t.Errorf("drain past its deadline: %v, want a permanent error counting the session left", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("drain with a 200ms deadline took %s", took)
	}
	f.lab.East.Release()
}

func TestUnknownBackendOrServerIsPermanent(t *testing.T) {
	ctx := ctxT(t)
	f := newFixture(t, haproxylab.Options{Backends: []string{"app", "api"}})
	env := registryEnv(t, f.p, nil)
	tests := []struct {
		action string
		with   map[string]any
		want   []string
	}{
		{traffic.ShiftName, map[string]any{"target": "lb", "backend": "nope", "to": []any{"west1"}}, []string{`no backend "nope"`, "api, app"}},
		{traffic.ShiftName, map[string]any{"target": "lb", "backends": []any{"app", "api"}, "to": []any{"north1"}, "from": []any{"east1"}}, []string{`no server "north1"`, "east1, west1"}},
		{traffic.DrainName, map[string]any{"target": "lb", "backend": "app", "servers": []any{"south1"}}, []string{`no server "south1"`}},
		{traffic.StatusName, map[string]any{"target": "lb", "backend": "web"}, []string{`no backend "web"`}},
		{traffic.ShiftName, map[string]any{"target": "lb", "backend": "app", "to": []any{"east1"}, "from": []any{"east1"}}, []string{"both to and from"}},
		{traffic.ShiftName, map[string]any{"target": "lb", "backend": "app", "to": []any{"west1"}, "mode": "off"}, []string{`mode "off"`}},
	}
	for _, tc := range tests {
		for _, name := range []string{tc.action, tc.action + activities.ObserveSuffix} {
			_, err := env.ExecuteActivity(name, f.req(tc.with))
			var appErr *temporal.ApplicationError
			if !errors.As(err, &appErr) || !appErr.NonRetryable() {
				t.Errorf("%s %v: %v, want a non-retryable failure", name, tc.with, err)
				continue
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%s: %q does not say %q", name, err, w)
				}
			}
		}
	}
	if got := f.rec.sets(); got != nil {
		t.Errorf("refused requests sent %q", got)
	}
	if seen := f.sites(t, ctx, "", 5); seen["east"] != 5 {
		t.Errorf("after refused requests: %v, want east untouched", seen)
	}
}

func TestSocketMissingOrRefusedIsRetryable(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.sock")
	refused := filepath.Join(dir, "refused.sock")
	ln, err := net.Listen("unix", refused)
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close() // the file stays, nothing listens: connection refused

	env := registryEnv(t, &traffic.Provider{}, nil)
	for _, socket := range []string{missing, refused} {
		_, err := env.ExecuteActivity(traffic.ShiftName, request(socket, eastToWest))
		var appErr *temporal.ApplicationError
		if !errors.As(err, &appErr) || appErr.NonRetryable() || !strings.Contains(err.Error(), socket) {
			t.Errorf("socket %s: %v, want a retryable failure naming the socket", socket, err)
		}
	}
	req := request(missing, eastToWest)
	req.Targets[0].Attributes = nil
	if _, err := (traffic.Shift{}).Apply(context.Background(), req); err == nil || !activities.IsPermanent(err) || !strings.Contains(err.Error(), `"socket" attribute`) {
		t.Errorf("target without a socket: %v, want a permanent error", err)
	}
}

func TestStatus(t *testing.T) {
	ctx := ctxT(t)
	f := newFixture(t, haproxylab.Options{Backends: []string{"app", "api"}})
	status := traffic.Status{Provider: f.p}
	res, err := status.Apply(ctx, f.req(map[string]any{"target": "lb", "expect_ready": []any{"east1"}}))
	if err != nil {
		t.Fatal(err)
	}
	if got := res.Outputs["ready"]; !slices.Equal(got.([]string), []string{"api/east1", "app/east1"}) {
		t.Errorf("ready %v", got)
	}
	west := res.Outputs["backends"].(map[string]any)["app"].(map[string]any)["west1"].(map[string]any)
	if west["mode"] != traffic.ModeMaint || west["up"] != false || west["sessions"] != 0 {
		t.Errorf("app/west1 %v", west)
	}
	_, err = status.Apply(ctx, f.req(map[string]any{"target": "lb", "backend": "app", "expect_ready": []any{"west1"}}))
	if err == nil || activities.IsPermanent(err) || !strings.Contains(err.Error(), "app/west1 is maint") {
		t.Errorf("expect_ready west1: %v, want a retryable failure naming app/west1", err)
	}
	if f.rec.sets() != nil {
		t.Error("status sent a set command")
	}
}

// TestRuntimeLatency measures one runtime API command over the socket and a
// whole shift with its verification.
func TestRuntimeLatency(t *testing.T) {
	ctx := ctxT(t)
	f := newFixture(t, haproxylab.Options{})
	sock := traffic.Socket{Path: f.lab.Socket()}
	for _, cmd := range []string{"get weight app/east1", "show servers state", "show stat"} {
		const n = 200
		start := time.Now()
		for range n {
			if _, err := sock.Command(ctx, cmd); err != nil {
				t.Fatal(err)
			}
		}
		t.Logf("%-20s %v per command (%d commands)", cmd, time.Since(start)/n, n)
	}
	shift := traffic.Shift{Provider: &traffic.Provider{Poll: 10 * time.Millisecond}}
	back := map[string]any{"target": "lb", "backend": "app", "to": []any{"east1"}, "from": []any{"west1"}}
	var total time.Duration
	const rounds = 20
	for i := range rounds {
		with := eastToWest
		if i%2 == 1 {
			with = back
		}
		start := time.Now()
		if _, err := shift.Apply(ctx, f.req(with)); err != nil {
			t.Fatal(err)
		}
		total += time.Since(start)
	}
	start := time.Now()
	if _, err := shift.Apply(ctx, f.req(back)); err != nil {
		t.Fatal(err)
	}
	t.Logf("shift + verify: %v mean over %d shifts; already-done shift: %v", total/rounds, rounds, time.Since(start))
}

func TestShiftRefusesToEmptyABackend(t *testing.T) {
	f := newFixture(t, haproxylab.Options{})
	ctx := ctxT(t)
	_, err := traffic.Shift{Provider: f.p}.Apply(ctx, f.req(map[string]any{"target": "lb", "backend": "app", "from": []any{"east1"}}))
	if err == nil || !activities.IsPermanent(err) || !strings.Contains(err.Error(), "would leave backend app with no server in ready mode") {
		t.Fatalf("shift out the only ready server: %v", err)
	}
	if sent := f.rec.sets(); len(sent) != 0 {
		t.Fatalf("commands sent: %v", sent)
	}
	if site, err := f.lab.Get(ctx, "app", "/"); err != nil || site != "east" {
		t.Fatalf("after the refused shift: %q %v; east must still serve", site, err)
	}
}
