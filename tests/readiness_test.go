package tests

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/drctl/drctl/activities"
	"github.com/drctl/drctl/activities/dns"
	"github.com/drctl/drctl/activities/slack/slacklab"
	"github.com/drctl/drctl/activities/webhook"
	"github.com/drctl/drctl/internal/config"
	"github.com/drctl/drctl/internal/devserver"
	"github.com/drctl/drctl/internal/lab"
	"github.com/drctl/drctl/internal/operator"
	"github.com/drctl/drctl/internal/testwait"
	"github.com/drctl/drctl/runbooks"
	"github.com/drctl/drctl/worker"
	"github.com/drctl/drctl/workflows"
)

// Readiness end to end: a readiness schedule evaluates site-failover on the
// lab, the record announces each change once (Slack, threaded, and a signed
// webhook), and the SLO reads the record's history and the runs.

const (
	readinessSlackChannel = "C0READY"
	envReadinessHookKey   = "DRCTL_TEST_READINESS_WEBHOOK_SECRET"
	readinessHookSecret   = "readiness-webhook-test-secret"
)

// hookReceiver is a readiness webhook endpoint: it verifies every request's
// signature (as a receiver would, with webhook.Verify) and keeps the events
// that pass; a request that does not pass is answered 401 and counted.
type hookReceiver struct {
	mu       sync.Mutex
	events   []activities.WebhookEvent
	ids      []string
	rejected []string
}

func startHookReceiver(t *testing.T, secret string) (*httptest.Server, *hookReceiver) {
	t.Helper()
	h := &hookReceiver{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err == nil {
			err = webhook.Verify([]byte(secret), r.Header, body, time.Now(), 5*time.Minute)
		}
		var ev activities.WebhookEvent
		if err == nil {
			err = json.Unmarshal(body, &ev)
		}
		h.mu.Lock()
		defer h.mu.Unlock()
		if err != nil {
			h.rejected = append(h.rejected, err.Error())
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		h.events = append(h.events, ev)
		h.ids = append(h.ids, r.Header.Get(webhook.HeaderEventID))
	}))
	t.Cleanup(srv.Close)
	return srv, h
}

func (h *hookReceiver) received() (events []activities.WebhookEvent, rejected []string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.events), slices.Clone(h.rejected)
}

// readinessMessages are the readiness announcements the workspace holds
// for runbook (by the idempotency key the record puts in their metadata).
func readinessMessages(ws *slacklab.Workspace, runbook string) []slacklab.Message {
	var out []slacklab.Message
	for _, m := range ws.Messages() {
		if key, _ := m.Metadata.EventPayload["key"].(string); strings.HasPrefix(key, workflows.ReadinessRecordID(runbook)+"-") {
			out = append(out, m)
		}
	}
	return out
}

// readinessProbe triggers evaluations of one runbook's readiness schedule
// and reads its record.
type readinessProbe struct {
	ctx     context.Context
	op      *operator.Operator
	runbook string
}

// record is the runbook's readiness record as `drctl readiness` reads it
// (memo through visibility); ok is false until it holds an evaluation.
func (p *readinessProbe) record() (operator.ReadinessStatus, bool) {
	rs, err := p.op.Readiness(p.ctx, p.runbook)
	if err != nil || len(rs) != 1 {
		return operator.ReadinessStatus{}, false
	}
	return rs[0], true
}

// waitEvaluations waits until the record holds at least n evaluations and
// the schedule runs none (a trigger while one runs is skipped: overlap
// policy skip), and returns the record.
func (p *readinessProbe) waitEvaluations(t *testing.T, n int) operator.ReadinessStatus {
	t.Helper()
	var st operator.ReadinessStatus
	testwait.For(t, fmt.Sprintf("readiness record of %s with %d evaluations", p.runbook, n), func() bool {
		var ok bool
		st, ok = p.record()
		return ok && st.Evaluations >= n
	})
	h := p.op.Client.ScheduleClient().GetHandle(p.ctx, workflows.ReadinessScheduleID(p.runbook))
	testwait.For(t, "the readiness schedule to run no evaluation", func() bool {
		d, err := h.Describe(p.ctx)
		return err == nil && len(d.Info.RunningWorkflows) == 0
	})
	return st
}

// evaluate triggers one evaluation (as `drctl readiness check` does) and
// waits until the record took it.
func (p *readinessProbe) evaluate(t *testing.T) operator.ReadinessStatus {
	t.Helper()
	before, _ := p.record()
	if err := p.op.ControlReadiness(p.ctx, p.runbook, "trigger"); err != nil {
		t.Fatal(err)
	}
	return p.waitEvaluations(t, before.Evaluations+1)
}

// evaluation is the evaluation the record took last (the result of the
// workflow it names), with every check.
func (p *readinessProbe) evaluation(t *testing.T, st operator.ReadinessStatus) workflows.Evaluation {
	t.Helper()
	var ev workflows.Evaluation
	if err := p.op.Client.GetWorkflow(p.ctx, st.LastRun, "").Get(p.ctx, &ev); err != nil {
		t.Fatalf("evaluation %s: %v", st.LastRun, err)
	}
	return ev
}

func checksText(ev workflows.Evaluation) string {
	var b strings.Builder
	for _, c := range ev.Checks {
		mark := "ok  "
		if !c.OK {
			mark = "FAIL"
		}
		fmt.Fprintf(&b, "\n  %s %s: %s", mark, c.Name, c.Reason)
	}
	return b.String()
}

func failingCheck(failing []workflows.ReadinessCheck, name string) (workflows.ReadinessCheck, bool) {
	for _, c := range failing {
		if c.Name == name {
			return c, true
		}
	}
	return workflows.ReadinessCheck{}, false
}

// TestReadinessOnTheLab registers site-failover's readiness on the lab and
// drives it through three changes: west's standby stopped (not ready,
// standby-streaming:db-west, announced once in Slack and once to the
// webhook), west streaming again (ready, announced once, in the first
// message's thread), and the app's DNS TTL raised over the RTO (not ready,
// dns-ttl). Announcements wait for AlertAfter (2) evaluations in a row.
func TestReadinessOnTheLab(t *testing.T) {
	needLab(t)
	ctx := testwait.Context(t)
	srv := startServer(t, devserver.Options{})
	c := testConfig(t, srv)
	ws := slacklab.Start(t)
	t.Setenv("DRCTL_TEST_SLACK_BOT", slacklab.Token)
	c.Slack.Channel, c.Slack.APIURL = readinessSlackChannel, ws.APIURL()
	c.Slack.BotToken = config.SecretRef{Env: "DRCTL_TEST_SLACK_BOT"}
	hookSrv, hooks := startHookReceiver(t, readinessHookSecret)
	t.Setenv(envReadinessHookKey, readinessHookSecret)
	c.Readiness.WebhookURL = hookSrv.URL + "/drctl"
	c.Readiness.WebhookSecret = config.SecretRef{Env: envReadinessHookKey}
	l, err := lab.Start(ctx, lab.Options{Dir: labStateDir(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	for k, v := range l.Secrets() {
		t.Setenv(k, v)
	}
	startWorker(t, srv, c)
	op := operatorAs(srv, c, "oncall-sre")
	rb := addSiteFailoverReadiness(t, ctx, op, l)
	p := &readinessProbe{ctx: ctx, op: op, runbook: rb.Name}
	noNews := func(stage string, wantSlack, wantHooks int) ([]slacklab.Message, []activities.WebhookEvent) {
		t.Helper()
		msgs := readinessMessages(ws, rb.Name)
		events, rejected := hooks.received()
		if len(msgs) != wantSlack || len(events) != wantHooks || len(rejected) != 0 {
			t.Fatalf("%s: %d Slack readiness messages (want %d), %d webhook events (want %d), rejected requests %q",
				stage, len(msgs), wantSlack, len(events), wantHooks, rejected)
		}
		return msgs, events
	}

	// All well: the first evaluation (AddReadiness triggers it) and one more.
	p.waitEvaluations(t, 1)
	st := p.evaluate(t)
	ev := p.evaluation(t, st)
	if !st.Ready || len(st.Failing) != 0 || !ev.Ready || len(ev.Checks) == 0 || st.Checks != len(ev.Checks) {
		t.Fatalf("healthy lab: record ready %v, failing %+v; evaluation ready %v:%s", st.Ready, st.Failing, ev.Ready, checksText(ev))
	}
	for _, want := range []string{"preflight:west-is-standby", "standby-streaming:db-west", "observe:promote-west", "observe:dns-to-west", "observe:traffic-to-west"} {
		if !slices.ContainsFunc(ev.Checks, func(c workflows.ReadinessCheck) bool { return c.Name == want }) {
			t.Errorf("healthy lab: no check %s:%s", want, checksText(ev))
		}
	}
	if !slices.ContainsFunc(ev.Checks, func(c workflows.ReadinessCheck) bool { return strings.HasPrefix(c.Name, "dns-ttl:") }) {
		t.Errorf("healthy lab: no dns-ttl check:%s", checksText(ev))
	}
	t.Logf("healthy lab: ready after %d evaluations, %d/%d checks passing, lag %v:%s", st.Evaluations, st.Checks-len(st.Failing), st.Checks, st.Lag, checksText(ev))
	noNews("healthy lab", 0, 0) // nobody needs telling that all is well

	// West's standby stops: not ready within two evaluations, said once.
	west, east := l.Node(lab.West), l.Node(lab.East)
	if err := west.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	st = p.evaluate(t)
	t.Logf("west stopped, 1st evaluation: ready %v, failing %v", st.Ready, names(st.Failing))
	if len(readinessMessages(ws, rb.Name)) != 0 {
		t.Errorf("not ready was announced after one evaluation; AlertAfter is 2")
	}
	st = p.evaluate(t)
	c1, found := failingCheck(st.Failing, "standby-streaming:db-west")
	if st.Ready || !found || !strings.Contains(c1.Reason, "standby not streaming") {
		t.Fatalf("west stopped, 2nd evaluation: ready %v, failing %+v; want standby-streaming:db-west: standby not streaming", st.Ready, st.Failing)
	}
	t.Logf("west stopped, 2nd evaluation: not ready since %s; %s: %s", st.Since.Format(time.RFC3339), c1.Name, c1.Reason)
	msgs, events := noNews("west stopped", 1, 1)
	drift := msgs[0]
	if drift.ThreadTS != "" || drift.Channel != readinessSlackChannel || !strings.Contains(drift.Text, "NOT ready") || !strings.Contains(drift.Text, "standby-streaming:db-west") {
		t.Errorf("drift message %+v", drift)
	}
	if e := events[0]; e.Kind != activities.KindReadinessChanged || e.State != workflows.VerdictNotReady || e.Runbook != rb.Name ||
		!slices.ContainsFunc(e.Failing, func(c activities.WebhookCheck) bool { return c.Name == "standby-streaming:db-west" }) {
		t.Errorf("webhook event %+v", e)
	}
	t.Logf("Slack: %q; webhook: %s %s, failing %d checks", drift.Text, events[0].State, events[0].Evaluation, len(events[0].Failing))
	p.evaluate(t) // still not ready: nothing more is said
	noNews("west still stopped", 1, 1)

	// West streams again: ready, said once, in the drift message's thread.
	if err := west.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := l.Pair.WaitStreaming(ctx, west, east); err != nil {
		t.Fatal(err)
	}
	p.evaluate(t)
	st = p.evaluate(t)
	if !st.Ready || len(st.Failing) != 0 {
		t.Fatalf("west streaming again: ready %v, failing %+v", st.Ready, st.Failing)
	}
	msgs, events = noNews("west streaming again", 2, 2)
	recovery := msgs[1]
	if recovery.ThreadTS != drift.TS || !strings.Contains(recovery.Text, "ready again") {
		t.Errorf("recovery message %+v; want it in thread %s", recovery, drift.TS)
	}
	if e := events[1]; e.State != workflows.VerdictReady || len(e.Failing) != 0 {
		t.Errorf("webhook event %+v", e)
	}
	t.Logf("west streaming again: ready since %s after %d evaluations; Slack (thread %s): %q; webhook: %s",
		st.Since.Format(time.RFC3339), st.Evaluations, recovery.ThreadTS, recovery.Text, events[1].State)

	// The app's TTL raised over the RTO objective (5m): not ready, dns-ttl.
	setAppTTL(t, ctx, rb, labParams(l, rb), time.Hour)
	rrs, err := l.DNS.Query(ctx, lab.AppName, "A")
	if err != nil || len(rrs) != 1 || rrs[0].Header().Ttl != 3600 {
		t.Fatalf("%s A after raising its TTL: %v (%v)", lab.AppName, rrs, err)
	}
	p.evaluate(t)
	st = p.evaluate(t)
	var ttl workflows.ReadinessCheck
	for _, c := range st.Failing {
		if strings.HasPrefix(c.Name, "dns-ttl:") && strings.Contains(c.Name, lab.AppName+".") {
			ttl = c
		}
	}
	if st.Ready || ttl.Name == "" || !strings.Contains(ttl.Reason, "ttl 1h0m0s is longer than the RTO objective 5m0s") {
		t.Fatalf("TTL 1h: ready %v, failing %+v; want a dns-ttl check for %s saying its TTL is longer than the RTO objective", st.Ready, st.Failing, lab.AppName)
	}
	if len(st.Failing) != 1 {
		t.Errorf("TTL 1h: failing %v; want only %s", names(st.Failing), ttl.Name)
	}
	t.Logf("TTL 1h: not ready; %s: %s", ttl.Name, ttl.Reason)
	msgs, events = noNews("TTL 1h", 3, 3)
	t.Logf("TTL 1h: Slack (thread %s): %q; webhook: %s; record: %d evaluations, %d alerts, %d changes",
		msgs[2].ThreadTS, msgs[2].Text, events[2].State, st.Evaluations, st.Alerts, len(st.Changes))
}

func names(cs []workflows.ReadinessCheck) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.Name)
	}
	return out
}

// setAppTTL sets the TTL of the app's A record through the DNS provider's
// dns.set_ttl action (RFC 2136 with the lab's TSIG key), values unchanged.
func setAppTTL(t *testing.T, ctx context.Context, rb *runbooks.Runbook, params map[string]string, ttl time.Duration) {
	t.Helper()
	values, err := runbooks.ParamValues(rb, params)
	if err != nil {
		t.Fatal(err)
	}
	targets, err := runbooks.ResolveTargets(rb.Targets, runbooks.Scope{Params: values})
	if err != nil {
		t.Fatal(err)
	}
	req := activities.Request{
		Run:  activities.Run{WorkflowID: "readiness-test", RunID: "ttl"},
		Step: "raise-ttl", Action: dns.SetTTLAction, Targets: targets,
		With: map[string]any{"target": "dns", "name": values["app_name"], "type": "A", "ttl": ttl.String()},
	}
	res, err := dns.SetTTL{Provider: &dns.Provider{}}.Apply(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("DNS: %s", res.Summary)
}

// sloRunbook is a note-only runbook with every objective an SLO reads.
const sloRunbook = `apiVersion: drctl/v1
name: slo-app
lock: slo-app
objectives: {rto: 5m, drill_every: 7d, readiness: "99.5% over 30d"}
steps:
  - id: announce
    action: note
    with: {message: "slo run by ${{ run.started_by }}"}
  - id: done
    needs: [announce]
    action: note
    with: {message: done}
`

// TestSLOFromRecordedRuns records a readiness history with evaluation times
// of its own choosing (sent to the record as the worker's recorder sends
// them): ready for 10 days, not ready for exactly 1 hour, ready since. Then
// two passing drills, one failing drill and one failover of a note-only
// runbook. operator.SLOs and `drctl slo -o json` must agree: 1h not ready
// of "99.5% over 30d" leaves 2h36m of the 3h36m budget; 2 of 3 drills and
// 1 of 1 runs met their objectives; the last passing drill is the second.
func TestSLOFromRecordedRuns(t *testing.T) {
	ctx := testwait.Context(t)
	srv := startServer(t, devserver.Options{})
	c := testConfig(t, srv)
	startWorker(t, srv, c)
	rb := loadRunbook(t, nil, writeRunbook(t, sloRunbook))
	op := operatorAs(srv, c, "oncall-sre")

	// The history: evaluations 10 days 2 hours ago until 1 hour ago.
	base := time.Now().Add(-(10*24*time.Hour + 2*time.Hour)).Truncate(time.Second)
	down := base.Add(10 * 24 * time.Hour)
	type at struct {
		t     time.Time
		ready bool
	}
	var history []at
	for d := range 10 {
		history = append(history, at{base.Add(time.Duration(d) * 24 * time.Hour), true})
	}
	history = append(history, at{down, false}, at{down.Add(30 * time.Minute), false}, at{down.Add(time.Hour), true}, at{down.Add(90 * time.Minute), true})
	id := workflows.ReadinessRecordID(rb.Name)
	for i, h := range history {
		ev := workflows.Evaluation{
			Runbook: rb.Name, WorkflowID: fmt.Sprintf("slo-evaluation-%d", i+1), At: h.t, Ready: h.ready,
			Checks:     []workflows.ReadinessCheck{{Name: "preflight:up", OK: h.ready, Reason: "recorded by the test"}},
			Objectives: rb.Objectives, Every: runbooks.Duration(5 * time.Minute),
		}
		// Exactly as worker/scheduled.go's recorder starts and signals it.
		_, err := srv.Client().SignalWithStartWorkflow(ctx, id, workflows.SignalEvaluation, ev, client.StartWorkflowOptions{
			ID: id, TaskQueue: c.Temporal.TaskQueue, WorkflowTaskTimeout: 3 * time.Second,
			StaticSummary: "readiness record of " + ev.Runbook,
		}, workflows.ReadinessRecordWorkflow, workflows.ReadinessState{})
		if err != nil {
			t.Fatal(err)
		}
	}
	p := &readinessProbe{ctx: ctx, op: op, runbook: rb.Name}
	testwait.For(t, "the record to take every evaluation", func() bool {
		st, ok := p.record()
		return ok && st.Evaluations == len(history)
	})

	// Runs: two passing drills, a failing one (chaos), one failover.
	run := func(mode string, chaos ...activities.Fault) *workflows.Report {
		t.Helper()
		if _, err := op.StartWith(ctx, rb, operator.StartOptions{Mode: mode, Reason: "slo test", Chaos: chaos}); err != nil {
			t.Fatal(err)
		}
		rep, err := op.Wait(ctx, rb.Lock)
		if err != nil {
			t.Fatal(err)
		}
		return rep
	}
	var reps []*workflows.Report
	for _, r := range []struct {
		mode  string
		chaos []activities.Fault
		want  string
	}{
		{workflows.ModeDrill, nil, workflows.StateSucceeded},
		{workflows.ModeDrill, nil, workflows.StateSucceeded},
		{workflows.ModeDrill, []activities.Fault{{Step: "done", Permanent: true}}, workflows.StateFailed},
		{workflows.ModeFailover, nil, workflows.StateSucceeded},
	} {
		rep := run(r.mode, r.chaos...)
		if rep.State != r.want || rep.EndedAt == nil {
			t.Fatalf("%s: %s (%s), want %s", r.mode, rep.State, rep.Error, r.want)
		}
		reps = append(reps, rep)
	}

	var s operator.SLO
	testwait.For(t, "the SLO to count every run", func() bool {
		ss, err := op.SLOs(ctx, rb.Name)
		if err != nil || len(ss) != 1 {
			return false
		}
		s = ss[0]
		return s.Drills.Total == 3 && s.Runs.Total == 1
	})
	checkSLO := func(from string, s operator.SLO) {
		t.Helper()
		r := s.Readiness
		if r == nil {
			t.Fatalf("%s: no readiness in %+v", from, s)
		}
		wantCovered := time.Since(base)
		if r.NotReady.D() != time.Hour || r.Covered.D() > wantCovered || r.Covered.D() < wantCovered-testwait.Bound {
			t.Errorf("%s: covered %s, not ready %s; want covered about %s, not ready 1h", from, r.Covered, r.NotReady, wantCovered.Round(time.Second))
		}
		if want := 100 * float64(r.Covered-r.NotReady) / float64(r.Covered); r.Availability != want || r.Availability < 99.58 || r.Availability > 99.59 {
			t.Errorf("%s: availability %.4f%%, want %.4f%% (about 99.587%%)", from, r.Availability, want)
		}
		if r.Objective != "99.5% over 30d" || r.Budget.D() != 3*time.Hour+36*time.Minute || r.BudgetLeft.D() != 2*time.Hour+36*time.Minute || r.Met == nil || !*r.Met || !r.Ready {
			t.Errorf("%s: objective %q, budget %s, left %s, met %v, ready %v; want 99.5%% over 30d, 3h36m, 2h36m, met, ready",
				from, r.Objective, r.Budget, r.BudgetLeft, r.Met, r.Ready)
		}
		if s.Window.D() != 30*24*time.Hour || s.Drills != (operator.Share{Total: 3, Met: 2}) || s.Runs != (operator.Share{Total: 1, Met: 1}) {
			t.Errorf("%s: window %s, drills %+v, runs %+v; want 30d, 2 of 3, 1 of 1", from, s.Window, s.Drills, s.Runs)
		}
		d := s.Drill
		// The last passing drill is the second: it ended (closed) after its
		// report's end and before the failing drill started.
		if d.LastPass == nil || d.LastPass.Before(reps[1].EndedAt.Truncate(time.Millisecond)) || d.LastPass.After(reps[2].StartedAt) {
			t.Errorf("%s: last passing drill %v; want between %s and %s", from, d.LastPass, reps[1].EndedAt, reps[2].StartedAt)
		}
		if d.Every.D() != 7*24*time.Hour || d.Met == nil || !*d.Met || d.Since == nil || d.Since.D() > testwait.Bound {
			t.Errorf("%s: drill every %s, met %v, since %v", from, d.Every, d.Met, d.Since)
		}
	}
	checkSLO("operator.SLOs", s)
	t.Logf("operator.SLOs: availability %.4f%% of %s, not ready %s, budget %s, left %s; drills %d/%d, runs %d/%d, last passing drill %s (%s ago)",
		s.Readiness.Availability, s.Readiness.Covered.D().Round(time.Second), s.Readiness.NotReady, s.Readiness.Budget, s.Readiness.BudgetLeft,
		s.Drills.Met, s.Drills.Total, s.Runs.Met, s.Runs.Total, s.Drill.LastPass.Format(time.RFC3339Nano), s.Drill.Since.D().Round(time.Millisecond))

	// The CLI says the same.
	var stdout, stderr bytes.Buffer
	if code := drctlTo(t, c, &stdout, &stderr, "slo", rb.Name, "-o", "json"); code != 0 {
		t.Fatalf("drctl slo -o json: exit %d: %s", code, stderr.String())
	}
	var ss []operator.SLO
	if err := json.Unmarshal(stdout.Bytes(), &ss); err != nil || len(ss) != 1 {
		t.Fatalf("drctl slo -o json: %v: %s", err, stdout.String())
	}
	checkSLO("drctl slo -o json", ss[0])
	if !ss[0].Drill.LastPass.Equal(*s.Drill.LastPass) {
		t.Errorf("drctl slo: last passing drill %s, operator.SLOs %s", ss[0].Drill.LastPass, s.Drill.LastPass)
	}
	table, code := drctl(t, c, "slo")
	if code != 0 || !strings.Contains(table, "2h36m0s of 3h36m0s") || !strings.Contains(table, "99.5% over 30d (met)") || !strings.Contains(table, "7d (met)") {
		t.Errorf("drctl slo: exit %d:\n%s", code, table)
	}
	t.Logf("drctl slo:\n%s", table)
}

// addSiteFailoverReadiness registers site-failover's readiness with the
// lab's parameters, evaluated every hour: within a test only the
// evaluations it triggers run (AddReadiness triggers the first).
func addSiteFailoverReadiness(t *testing.T, ctx context.Context, op *operator.Operator, l *lab.Lab) *runbooks.Runbook {
	t.Helper()
	cat := worker.Catalog()
	rb, err := runbooks.Load("../runbooks/site-failover.yaml", cat)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := op.AddReadiness(ctx, rb, operator.ReadinessOptions{Every: time.Hour, Params: labParams(l, rb), Acting: runbooks.ActingSteps(rb, cat)}); err != nil {
		t.Fatal(err)
	}
	return rb
}
