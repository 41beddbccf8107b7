package workflows_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/drctl/drctl/activities"
	"github.com/drctl/drctl/runbooks"
	"github.com/drctl/drctl/workflows"
)

// siteHarness runs a site watch of "east" (quorum 2, lost_after 3s,
// stale_after 15s) in the testsuite, with a stand-in for the proposed run
// that records its input and holds its lock until the test ends.
type siteHarness struct {
	testsuite.WorkflowTestSuite
	env *testsuite.TestWorkflowEnvironment
	in  workflows.SiteWatchInput

	mu       sync.Mutex
	proposed []workflows.RunInput
	notes    []activities.Notification
	final    workflows.SiteWatchState
	start    time.Time // the watch's start, in the suite's clock
}

func newSiteHarness(t *testing.T) *siteHarness {
	h := &siteHarness{}
	h.SetLogger(nopLogger{})
	h.env = h.NewTestWorkflowEnvironment()
	h.env.RegisterWorkflowWithOptions(workflows.SiteWatch, workflow.RegisterOptions{Name: workflows.SiteWatchWorkflow})
	h.env.RegisterWorkflowWithOptions(func(ctx workflow.Context, in workflows.RunInput) (*workflows.Report, error) {
		h.mu.Lock()
		h.proposed = append(h.proposed, in)
		h.mu.Unlock()
		return nil, workflow.Await(ctx, func() bool { return false })
	}, workflow.RegisterOptions{Name: workflows.RunbookWorkflow})
	h.env.RegisterActivityWithOptions(func(_ context.Context, n activities.Notification) (activities.MessageRef, error) {
		h.mu.Lock()
		defer h.mu.Unlock()
		h.notes = append(h.notes, n)
		return activities.MessageRef{}, nil
	}, activity.RegisterOptions{Name: activities.NotifyActivity})
	h.env.RegisterActivityWithOptions(func(_ context.Context, lock string) (string, error) {
		return "run drctl-" + lock + " started by alice", nil
	}, activity.RegisterOptions{Name: workflows.LockHolderActivity})
	h.env.SetStartWorkflowOptions(client.StartWorkflowOptions{ID: workflows.SiteWatchID("east")})
	h.env.SetTestTimeout(30 * time.Second)
	h.in = workflows.SiteWatchInput{
		Site: "east", Quorum: 2,
		LostAfter: runbooks.Duration(3 * time.Second), StaleAfter: runbooks.Duration(15 * time.Second),
		Places: []string{"east", "west", "witness"},
		OnLoss: &workflows.OnLoss{
			Runbook: runbooks.Runbook{APIVersion: runbooks.APIVersion, Name: "site-failover", Lock: "app-site", Steps: []runbooks.Step{gate("go", []string{"alice"})}},
			Params:  map[string]string{"from": "east", "to": "west"}, AutoApproveAfter: runbooks.Duration(5 * time.Minute),
		},
	}
	return h
}

// view is a watcher's view of east.
func view(watcher, from string, down bool) workflows.SiteView {
	v := workflows.SiteView{Site: "east", Watcher: watcher, From: from, Down: down,
		Probes: []workflows.ProbeResult{{Probe: "tcp://10.1.0.2:5432", OK: !down}}}
	if down {
		v.Probes[0].Error = "dial tcp 10.1.0.2:5432: connect: no route to host"
	}
	return v
}

// report sends v at each of the times from start, every step, up to end.
func (h *siteHarness) report(v workflows.SiteView, start, every, end time.Duration) {
	for at := start; at <= end; at += every {
		h.env.RegisterDelayedCallback(func() {
			h.env.SignalWorkflow(workflows.SignalSiteView, v)
		}, at)
	}
}

// at sends views at one instant, in one callback.
func (h *siteHarness) at(at time.Duration, views ...workflows.SiteView) {
	h.env.RegisterDelayedCallback(func() {
		for _, v := range views {
			h.env.SignalWorkflow(workflows.SignalSiteView, v)
		}
	}, at)
}

// run runs the watch until end, then queries and cancels it.
func (h *siteHarness) run(t *testing.T, end time.Duration) workflows.SiteWatchState {
	t.Helper()
	h.env.RegisterDelayedCallback(func() {
		v, err := h.env.QueryWorkflow(workflows.QuerySiteWatch)
		if err != nil {
			t.Errorf("query: %v", err)
		} else if err := v.Get(&h.final); err != nil {
			t.Errorf("query result: %v", err)
		}
		h.env.CancelWorkflow()
	}, end)
	h.start = h.env.Now()
	h.env.ExecuteWorkflow(workflows.SiteWatchWorkflow, h.in)
	if !h.env.IsWorkflowCompleted() {
		t.Fatal("site watch did not end")
	}
	return h.final
}

// TestSiteWatchOneWatcherNeverDecides: one place seeing the site down for
// ten minutes declares nothing, nor do two watchers standing in that place.
func TestSiteWatchOneWatcherNeverDecides(t *testing.T) {
	h := newSiteHarness(t)
	h.report(view("w1", "west", true), time.Second, 5*time.Second, 10*time.Minute)
	h.report(view("w2", "west", true), 2*time.Second, 5*time.Second, 10*time.Minute)
	h.report(view("x1", "witness", false), time.Second, 5*time.Second, 10*time.Minute)
	st := h.run(t, 10*time.Minute+time.Second)
	if st.State != workflows.SiteUp || st.Incidents != 0 || len(h.proposed) != 0 || st.LosingSince != nil {
		t.Fatalf("state %s, incidents %d, proposed %d, losing since %v", st.State, st.Incidents, len(h.proposed), st.LosingSince)
	}
	if len(st.Votes) != 2 || st.Votes[0].View.From != "west" && st.Votes[1].View.From != "west" {
		t.Fatalf("votes %+v; want one per place", st.Votes)
	}
}

// TestSiteWatchStaleVoteDoesNotCount: a watcher that said "down" once and
// went quiet is not part of a quorum once its view is older than
// stale_after.
func TestSiteWatchStaleVoteDoesNotCount(t *testing.T) {
	h := newSiteHarness(t)
	h.at(time.Second, view("e1", "east", true))
	h.report(view("w1", "west", true), 20*time.Second, 5*time.Second, 5*time.Minute)
	st := h.run(t, 5*time.Minute+time.Second)
	if st.Incidents != 0 || len(h.proposed) != 0 {
		t.Fatalf("incidents %d, proposed %d: a stale vote counted", st.Incidents, len(h.proposed))
	}
	for _, v := range st.Votes {
		if v.View.From == "east" && v.Fresh {
			t.Fatalf("east's vote is fresh: %+v", v)
		}
	}
}

// TestSiteWatchStaleVoteBreaksAPendingQuorum: a quorum that began is
// broken when its votes go stale before lost_after even with no signal to
// notice it (a timer does): east and west agree at 1s and fall silent; the
// witness keeps one vote fresh; when east speaks again at 20s, lost_after
// counts from 20s, not from 1s.
func TestSiteWatchStaleVoteBreaksAPendingQuorum(t *testing.T) {
	h := newSiteHarness(t)
	h.in.LostAfter = runbooks.Duration(time.Minute)
	h.at(time.Second, view("e1", "east", true), view("w1", "west", true))
	h.at(10*time.Second, view("x1", "witness", true))
	h.at(20*time.Second, view("e1", "east", true))
	h.report(view("e1", "east", true), 22*time.Second, 5*time.Second, 67*time.Second)
	h.report(view("x1", "witness", true), 22*time.Second, 5*time.Second, 67*time.Second)
	st := h.run(t, 70*time.Second)
	if st.Incidents != 0 || len(h.proposed) != 0 || st.LosingSince == nil || st.LosingSince.Sub(h.start) != 20*time.Second {
		t.Fatalf("incidents %d, proposed %d, losing since %v after the start: the quorum counted across its break", st.Incidents, len(h.proposed), st.LosingSince.Sub(h.start))
	}
}

// TestSiteWatchQuorumBrokenBeforeLostAfter: two places agree for less
// than lost_after, then one sees the site again: nothing is declared.
func TestSiteWatchQuorumBrokenBeforeLostAfter(t *testing.T) {
	h := newSiteHarness(t)
	h.at(time.Second, view("w1", "west", true), view("x1", "witness", true))
	h.at(3*time.Second, view("x1", "witness", false))
	h.report(view("w1", "west", true), 5*time.Second, 5*time.Second, 2*time.Minute)
	h.report(view("x1", "witness", false), 5*time.Second, 5*time.Second, 2*time.Minute)
	st := h.run(t, 2*time.Minute+time.Second)
	if st.Incidents != 0 || len(h.proposed) != 0 || st.LosingSince != nil {
		t.Fatalf("incidents %d, proposed %d, losing since %v", st.Incidents, len(h.proposed), st.LosingSince)
	}
}

// TestSiteWatchDeclaresOnceWithEvidence: two places declaring loss at the
// same instant, and going on reporting it, start exactly one run, a
// failover by the site watch with the evidence of both and the detection
// time lost_after after the quorum formed.
func TestSiteWatchDeclaresOnceWithEvidence(t *testing.T) {
	h := newSiteHarness(t)
	h.in.OnLoss.Signers = []workflows.Signer{{Identity: "alice", Key: "ssh-ed25519 AAAA"}}
	h.at(10*time.Second, view("w1", "west", true), view("x1", "witness", true))
	h.report(view("w1", "west", true), 15*time.Second, 5*time.Second, 5*time.Minute)
	h.report(view("x1", "witness", true), 15*time.Second, 5*time.Second, 5*time.Minute)
	h.report(view("e1", "east", true), 16*time.Second, 5*time.Second, 5*time.Minute)
	st := h.run(t, 5*time.Minute+time.Second)
	if len(h.proposed) != 1 || st.Incidents != 1 || st.State != workflows.SiteLost {
		t.Fatalf("proposed %d runs, incidents %d, state %s", len(h.proposed), st.Incidents, st.State)
	}
	in := h.proposed[0]
	d := in.Detection
	if len(in.Signers) != 1 || in.Signers[0].Identity != "alice" {
		t.Fatalf("proposed run's signers %+v; want the watcher's allowed signers", in.Signers)
	}
	if in.Mode != workflows.ModeFailover || in.StartedBy != workflows.SiteWatchStarter("east") || in.Params["to"] != "west" || in.AutoApproveAfter != runbooks.Duration(5*time.Minute) || d == nil {
		t.Fatalf("proposed %+v", in)
	}
	if d.Site != "east" || d.Incident != "east#1" || d.Quorum != 2 || len(d.Evidence) != 2 || d.Evidence[0].From != "west" || d.Evidence[1].From != "witness" {
		t.Fatalf("detection %+v", d)
	}
	inc := st.Recent[0]
	if inc.WorkflowID != workflows.WorkflowID("app-site") || inc.RunID == "" || inc.NotProposed != "" || !inc.DeclaredAt.Equal(d.At) {
		t.Fatalf("incident %+v", inc)
	}
	if started := d.At.Sub(h.start); started != 13*time.Second {
		t.Errorf("declared %s after the start; want 13s (quorum at 10s + lost_after 3s)", started)
	}
	if len(h.notes) != 1 || h.notes[0].Kind != activities.KindSiteLost || !strings.Contains(h.notes[0].Reason, "proposed run drctl-app-site") || len(h.notes[0].Failing) != 2 {
		t.Fatalf("notifications %+v", h.notes)
	}
}

// TestSiteWatchBackThenLostAgain: the site coming back is recorded and
// announced (failback left to people) and starts nothing; a later loss is
// incident 2, and with the first run still holding the lock, nothing is
// proposed and the holder is recorded.
func TestSiteWatchBackThenLostAgain(t *testing.T) {
	h := newSiteHarness(t)
	h.in.OnLoss.Runbook.Drill.Failback = "runbooks/failback.yaml"
	h.report(view("w1", "west", true), time.Second, 5*time.Second, time.Minute)
	h.report(view("x1", "witness", true), time.Second, 5*time.Second, time.Minute)
	h.report(view("w1", "west", false), 65*time.Second, 5*time.Second, 2*time.Minute)
	h.report(view("x1", "witness", false), 65*time.Second, 5*time.Second, 2*time.Minute)
	h.report(view("w1", "west", true), 125*time.Second, 5*time.Second, 3*time.Minute)
	h.report(view("x1", "witness", true), 125*time.Second, 5*time.Second, 3*time.Minute)
	st := h.run(t, 3*time.Minute+time.Second)
	if len(h.proposed) != 1 || st.Incidents != 2 || st.State != workflows.SiteLost || len(st.Recent) != 2 {
		t.Fatalf("proposed %d, incidents %d, state %s, recent %+v", len(h.proposed), st.Incidents, st.State, st.Recent)
	}
	first, second := st.Recent[0], st.Recent[1]
	if first.BackAt == nil || second.ID != "east#2" || second.RunID != "" || !strings.Contains(second.NotProposed, `lock "app-site" is held by run drctl-app-site started by alice`) {
		t.Fatalf("incidents %+v / %+v", first, second)
	}
	var kinds []string
	for _, n := range h.notes {
		kinds = append(kinds, n.Kind)
	}
	if strings.Join(kinds, ",") != "site_lost,site_back,site_lost" {
		t.Fatalf("notifications %v", kinds)
	}
	back := h.notes[1].Reason
	if !strings.Contains(back, "reachable again") || !strings.Contains(back, "NOT automatic") || !strings.Contains(back, "drctl run runbooks/failback.yaml") {
		t.Fatalf("back notification: %s", back)
	}
}

// TestSiteWatchNoOnLoss: with nothing to propose, a loss is declared,
// recorded and announced.
func TestSiteWatchNoOnLoss(t *testing.T) {
	h := newSiteHarness(t)
	h.in.OnLoss = nil
	h.at(time.Second, view("w1", "west", true), view("x1", "witness", true))
	st := h.run(t, time.Minute)
	if st.Incidents != 1 || len(h.proposed) != 0 || !strings.Contains(st.Recent[0].NotProposed, "no on_loss") || len(h.notes) != 1 {
		t.Fatalf("incidents %d, proposed %d, recent %+v, notes %d", st.Incidents, len(h.proposed), st.Recent, len(h.notes))
	}
}

// TestSiteWatchContinuesAsNewWithItsState: after MaxSignals signals the
// watch continues as new carrying its votes, incidents and losing state;
// the next run declares on the carried quorum.
func TestSiteWatchContinuesAsNewWithItsState(t *testing.T) {
	h := newSiteHarness(t)
	h.in.MaxSignals = 4
	h.in.LostAfter = runbooks.Duration(time.Minute)
	h.at(time.Second, view("w1", "west", true), view("x1", "witness", true))
	h.at(2*time.Second, view("w1", "west", true), view("x1", "witness", true))
	h.env.ExecuteWorkflow(workflows.SiteWatchWorkflow, h.in)
	err := h.env.GetWorkflowError()
	var can *workflow.ContinueAsNewError
	if !errors.As(err, &can) {
		t.Fatalf("want continue-as-new, got %v", err)
	}
	var next workflows.SiteWatchInput
	if err := converter.GetDefaultDataConverter().FromPayloads(can.Input, &next); err != nil {
		t.Fatal(err)
	}
	st := next.State
	if st == nil || st.LosingSince == nil || len(st.Votes) != 2 || next.Quorum != 2 || next.OnLoss == nil {
		t.Fatalf("carried %+v", next)
	}

	// The next run declares when the carried quorum has held a minute.
	h2 := newSiteHarness(t)
	h2.env.SetStartTime(h.env.Now())
	h2.report(view("w1", "west", true), 5*time.Second, 5*time.Second, 2*time.Minute)
	h2.report(view("x1", "witness", true), 5*time.Second, 5*time.Second, 2*time.Minute)
	next.MaxSignals = 0
	h2.in = next
	got := h2.run(t, 2*time.Minute)
	if got.Incidents != 1 || len(h2.proposed) != 1 {
		t.Fatalf("after continue-as-new: incidents %d, proposed %d", got.Incidents, len(h2.proposed))
	}
}

// TestSiteWatchOnlyListedPlacesVote: views from a place not in Places
// never vote, however many agree; they are counted, the latest named.
func TestSiteWatchOnlyListedPlacesVote(t *testing.T) {
	h := newSiteHarness(t)
	h.report(view("w1", "west", true), time.Second, 5*time.Second, 5*time.Minute)
	h.report(view("n1", "north", true), time.Second, 5*time.Second, 5*time.Minute)
	h.report(view("n2", "west-2", true), 2*time.Second, 5*time.Second, 5*time.Minute)
	st := h.run(t, 5*time.Minute+time.Second)
	if st.Incidents != 0 || len(h.proposed) != 0 || st.LosingSince != nil || len(st.Votes) != 1 {
		t.Fatalf("incidents %d, proposed %d, losing since %v, votes %+v: an unlisted place voted", st.Incidents, len(h.proposed), st.LosingSince, st.Votes)
	}
	if ig := st.Ignored; ig == nil || ig.Views != 120 || ig.From != "west-2" || ig.Watcher != "n2" {
		t.Fatalf("ignored %+v; want 120 views, the last from west-2 by n2", st.Ignored)
	}
}

// TestSiteWatchRecordsRivalClaims: two watchers claiming one place within
// stale_after are recorded (the place still votes once); when one falls
// silent for stale_after, the rival is no longer shown.
func TestSiteWatchRecordsRivalClaims(t *testing.T) {
	h := newSiteHarness(t)
	h.report(view("watcher-a", "west", false), time.Second, 5*time.Second, time.Minute)
	h.report(view("watcher-b", "west", false), 2*time.Second, 5*time.Second, time.Minute)
	h.report(view("x1", "witness", false), time.Second, 5*time.Second, time.Minute)
	h.env.RegisterDelayedCallback(func() {
		v, err := h.env.QueryWorkflow(workflows.QuerySiteWatch)
		var st workflows.SiteWatchState
		if err == nil {
			err = v.Get(&st)
		}
		if err != nil || len(st.Votes) != 2 || st.Votes[0].View.Watcher != "watcher-b" || st.Votes[0].Rival != "watcher-a" {
			t.Errorf("at 1m: votes %+v (%v); want west by watcher-b, rival watcher-a", st.Votes, err)
		}
	}, time.Minute+time.Second)
	h.report(view("watcher-b", "west", false), 62*time.Second, 5*time.Second, 2*time.Minute)
	st := h.run(t, 2*time.Minute)
	if st.Votes[0].View.From != "west" || st.Votes[0].Rival != "" {
		t.Fatalf("vote %+v; a rival silent for stale_after is still shown", st.Votes[0])
	}
}

// TestSiteWatchCapsViews: a view too large is cut as it arrives: 32
// probes (the rest counted), 512-byte texts and 64-byte names, marked.
func TestSiteWatchCapsViews(t *testing.T) {
	h := newSiteHarness(t)
	v := view(strings.Repeat("w", 200), "west", true)
	v.Probes = nil
	for i := range 40 {
		v.Probes = append(v.Probes, workflows.ProbeResult{Probe: fmt.Sprintf("tcp://10.1.0.%d:5432", i), Error: strings.Repeat("é", 1000)})
	}
	h.at(time.Second, v)
	st := h.run(t, 2*time.Second)
	got := st.Votes[0].View
	if len(got.Probes) != workflows.MaxViewProbes || got.MoreProbes != 8 || len(got.Watcher) > workflows.MaxViewName || !strings.HasSuffix(got.Watcher, "…") {
		t.Fatalf("probes %d (+%d), watcher %q", len(got.Probes), got.MoreProbes, got.Watcher)
	}
	if e := got.Probes[0].Error; len(e) > workflows.MaxViewText || !strings.HasSuffix(e, "…") || !utf8.ValidString(e) {
		t.Fatalf("error of %d bytes, valid UTF-8 %t", len(e), utf8.ValidString(e))
	}
}

// TestSiteWatchDropsLongUnheardVotes: a vote not heard for ten times
// stale_after leaves the state.
func TestSiteWatchDropsLongUnheardVotes(t *testing.T) {
	h := newSiteHarness(t)
	h.at(time.Second, view("e1", "east", false))
	h.report(view("w1", "west", false), time.Second, 5*time.Second, 4*time.Minute)
	st := h.run(t, 4*time.Minute+time.Second)
	if len(st.Votes) != 1 || st.Votes[0].View.From != "west" {
		t.Fatalf("votes %+v; east's, unheard for 4m (10 × 15s = 150s), is still kept", st.Votes)
	}
}

// TestSiteWatchShowsAnotherConfiguration: a vote whose digest is not the
// watch's own is marked.
func TestSiteWatchShowsAnotherConfiguration(t *testing.T) {
	h := newSiteHarness(t)
	same, other := view("w1", "west", false), view("x1", "witness", false)
	same.Digest = workflows.SiteWatchDigest(h.in)
	changed := h.in
	changed.LostAfter = runbooks.Duration(time.Minute)
	other.Digest = workflows.SiteWatchDigest(changed)
	h.at(time.Second, same, other)
	st := h.run(t, 2*time.Second)
	if st.Config != same.Digest || other.Digest == same.Digest || len(st.Votes) != 2 || st.Votes[0].OtherConfig || !st.Votes[1].OtherConfig {
		t.Fatalf("config %s, votes %+v", st.Config, st.Votes)
	}
	if st.Runbook != "site-failover" || st.AutoApproveAfter != runbooks.Duration(5*time.Minute) || len(st.Places) != 3 {
		t.Fatalf("state shows runbook %q, auto_approve_after %s, places %v", st.Runbook, st.AutoApproveAfter, st.Places)
	}
}

// TestSiteWatchTakesEverySignalBeforeContinuingAsNew: the signals that
// arrived with the one that reached MaxSignals are in the carried state.
func TestSiteWatchTakesEverySignalBeforeContinuingAsNew(t *testing.T) {
	h := newSiteHarness(t)
	h.in.MaxSignals = 1
	h.at(0, view("w1", "west", true), view("x1", "witness", true), view("e1", "east", false))
	h.env.ExecuteWorkflow(workflows.SiteWatchWorkflow, h.in)
	var can *workflow.ContinueAsNewError
	if err := h.env.GetWorkflowError(); !errors.As(err, &can) {
		t.Fatalf("want continue-as-new, got %v", err)
	}
	var next workflows.SiteWatchInput
	if err := converter.GetDefaultDataConverter().FromPayloads(can.Input, &next); err != nil {
		t.Fatal(err)
	}
	if st := next.State; st == nil || len(st.Votes) != 3 || st.Signals != 3 || st.LosingSince == nil {
		t.Fatalf("carried %+v; want the three views taken and evaluated", next.State)
	}
}

// TestCheckSiteWatchRefuses: places and a carried state are checked; a
// forged state ends the watch with an error, never a panic.
func TestCheckSiteWatchRefuses(t *testing.T) {
	lost := func(st *workflows.SiteWatchState) { st.State = workflows.SiteLost }
	for _, tc := range []struct {
		name   string
		change func(*workflows.SiteWatchInput)
		want   string
	}{
		{"fewer places than the quorum", func(in *workflows.SiteWatchInput) { in.Places = []string{"west"} }, "places: 1 listed"},
		{"place twice", func(in *workflows.SiteWatchInput) { in.Places = []string{"west", "west"} }, "west is listed twice"},
		{"bad place", func(in *workflows.SiteWatchInput) { in.Places = []string{"west", "North Pole"} }, `"North Pole" is not a site name`},
		{"auto_approve_after too short", func(in *workflows.SiteWatchInput) { in.OnLoss.AutoApproveAfter = runbooks.Duration(time.Second) }, "auto_approve_after 1s"},
		{"unknown state", func(in *workflows.SiteWatchInput) { in.State.State = "gone" }, `state "gone" is not one of`},
		{"lost without incident", func(in *workflows.SiteWatchInput) { lost(in.State) }, "lost with no incident"},
		{"too many votes", func(in *workflows.SiteWatchInput) { in.State.Votes = make([]workflows.Vote, 17) }, "17 votes"},
		{"oversized vote", func(in *workflows.SiteWatchInput) {
			in.State.Votes = []workflows.Vote{{View: workflows.SiteView{From: strings.Repeat("w", 100)}}}
		}, "larger than a view may be"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newSiteHarness(t)
			h.in.State = &workflows.SiteWatchState{Site: "east", State: workflows.SiteUp}
			tc.change(&h.in)
			if err := workflows.CheckSiteWatch(h.in); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("CheckSiteWatch: %v; want %q", err, tc.want)
			}
			h.at(time.Second, view("w1", "west", false), view("x1", "witness", false))
			h.env.ExecuteWorkflow(workflows.SiteWatchWorkflow, h.in)
			if err := h.env.GetWorkflowError(); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("workflow: %v; want %q", err, tc.want)
			}
		})
	}
}
