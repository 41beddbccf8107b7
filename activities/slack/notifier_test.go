package slack_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/drctl/drctl/activities"

	slackgo "github.com/slack-go/slack"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	drslack "github.com/drctl/drctl/activities/slack"
	"github.com/drctl/drctl/activities/slack/slacklab"
	"github.com/drctl/drctl/internal/config"
	"github.com/drctl/drctl/runbooks"
)

const channel = "C0DR"

func notifier(t *testing.T, apiURL string, opts drslack.Options) *drslack.Notifier {
	t.Helper()
	t.Setenv("DRCTL_TEST_SLACK_BOT", slacklab.Token)
	n, err := drslack.New(config.Slack{
		Channel:  channel,
		BotToken: config.SecretRef{Env: "DRCTL_TEST_SLACK_BOT"},
		APIURL:   apiURL,
	}, opts)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

var started = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func gate(key string) activities.Notification {
	return activities.Notification{
		Kind: activities.KindApprovalRequested, Key: key,
		WorkflowID: "drctl-payments", Runbook: "payments-failover", Lock: "payments", Mode: "failover",
		StartedBy: "alice", StartedAt: started,
		Step: "promote-west", StepMessage: "Promote *payments-db@west*?",
		Approvers:  []string{"bob", "group:dba"},
		Changes:    []string{"promote payments-db@west to primary", "fence payments-db@east"},
		Objectives: runbooks.Objectives{RTO: runbooks.Duration(15 * time.Minute), RPO: runbooks.Duration(30 * time.Second)},
		Elapsed:    runbooks.Duration(3*time.Minute + 12*time.Second),
	}
}

func blockText(b slackgo.Block) string {
	switch b := b.(type) {
	case *slackgo.HeaderBlock:
		return b.Text.Text
	case *slackgo.SectionBlock:
		return b.Text.Text
	case *slackgo.ContextBlock:
		var s []string
		for _, e := range b.ContextElements.Elements {
			if t, ok := e.(*slackgo.TextBlockObject); ok {
				s = append(s, t.Text)
			}
		}
		return strings.Join(s, " ")
	}
	return ""
}

func TestApprovalMessage(t *testing.T) {
	ws := slacklab.Start(t)
	n := notifier(t, ws.APIURL(), drslack.Options{})
	ref, err := n.Notify(context.Background(), gate("k-gate"))
	if err != nil {
		t.Fatal(err)
	}
	msgs := ws.Messages()
	if len(msgs) != 1 || ref != (activities.MessageRef{Channel: channel, TS: msgs[0].TS}) {
		t.Fatalf("ref %+v, messages %+v", ref, msgs)
	}
	m := msgs[0]
	if m.ThreadTS != "" || m.Metadata.EventType != "drctl" || m.Metadata.EventPayload["key"] != "k-gate" {
		t.Fatalf("message thread %q metadata %+v", m.ThreadTS, m.Metadata)
	}
	if !strings.Contains(m.Text, "promote-west") {
		t.Fatalf("fallback text %q", m.Text)
	}
	bs := m.Blocks.BlockSet
	if len(bs) != 5 {
		t.Fatalf("%d blocks, want header, context, section, approvers, actions", len(bs))
	}
	want := []struct {
		typ  slackgo.MessageBlockType
		text []string
	}{
		{slackgo.MBTHeader, []string{"Approval needed: promote-west — payments-failover"}},
		{slackgo.MBTContext, []string{"Runbook *payments-failover*", "run `drctl-payments`", "started by alice", "elapsed 3m12s of the 15m0s RTO objective (21%)"}},
		{slackgo.MBTSection, []string{"Promote *payments-db@west*?", "*What it will change:*", "• promote payments-db@west to primary", "• fence payments-db@east"}},
		{slackgo.MBTContext, []string{"*May approve:* bob, group:dba", "two-person rule: alice started the run"}},
	}
	for i, w := range want {
		if bs[i].BlockType() != w.typ {
			t.Fatalf("block %d is %s, want %s", i, bs[i].BlockType(), w.typ)
		}
		for _, s := range w.text {
			if got := blockText(bs[i]); !strings.Contains(got, s) {
				t.Errorf("block %d: %q lacks %q", i, got, s)
			}
		}
	}
	actions, ok := bs[4].(*slackgo.ActionBlock)
	if !ok || actions.BlockID != drslack.ApprovalBlockID || len(actions.Elements.ElementSet) != 2 {
		t.Fatalf("actions block %+v", bs[4])
	}
	for i, w := range []struct {
		id, label string
		style     slackgo.Style
	}{{drslack.ActionApprove, "Approve", slackgo.StylePrimary}, {drslack.ActionReject, "Reject", slackgo.StyleDanger}} {
		b, ok := actions.Elements.ElementSet[i].(*slackgo.ButtonBlockElement)
		if !ok || b.ActionID != w.id || b.Text.Text != w.label || b.Style != w.style {
			t.Fatalf("button %d: %+v", i, actions.Elements.ElementSet[i])
		}
		if b.Confirm == nil || !strings.Contains(b.Confirm.Title.Text, "promote-west") || b.Confirm.Confirm.Text != w.label || b.Confirm.Deny.Text != "Cancel" {
			t.Fatalf("button %d confirmation: %+v", i, b.Confirm)
		}
		v, err := drslack.ParseButtonValue(b.Value)
		if err != nil || v != (drslack.ButtonValue{Run: "drctl-payments", Step: "promote-west"}) {
			t.Fatalf("button %d value %q: %+v %v", i, b.Value, v, err)
		}
	}
}

func TestOutcomeEdit(t *testing.T) {
	at := started.Add(5 * time.Minute)
	for _, tc := range []struct {
		name     string
		decision activities.Notification
		want     string
	}{
		{"approved in slack", activities.Notification{Decision: activities.DecisionApproved, DecidedBy: "bob", Via: "slack", DecidedAt: at}, ":white_check_mark: *Approved* by bob via slack at 12:05:00Z"},
		{"rejected with reason", activities.Notification{Decision: activities.DecisionRejected, DecidedBy: "bob", Via: "slack", DecidedAt: at, DecisionReason: "west is flapping"}, ":x: *Rejected* by bob via slack at 12:05:00Z: west is flapping"},
		{"timed out", activities.Notification{Decision: activities.DecisionTimedOut, DecidedAt: at, DecisionReason: "no decision within 10m"}, ":hourglass: *Timed out* at 12:05:00Z: no decision within 10m"},
		{"decided from the cli", activities.Notification{Decision: activities.DecisionApproved, DecidedBy: "carol", Via: "cli", DecidedAt: at}, ":white_check_mark: *Approved* by carol via cli at 12:05:00Z"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ws := slacklab.Start(t)
			n := notifier(t, ws.APIURL(), drslack.Options{})
			ctx := context.Background()
			root, err := n.Notify(ctx, activities.Notification{Kind: activities.KindRunStarted, Key: "k-start", WorkflowID: "drctl-payments", Runbook: "payments-failover", StartedBy: "alice", StartedAt: started})
			if err != nil {
				t.Fatal(err)
			}
			g := gate("k-gate")
			g.Thread = &root
			ref, err := n.Notify(ctx, g)
			if err != nil {
				t.Fatal(err)
			}
			d := gate("k-decided")
			d.Kind, d.Thread, d.Ref = activities.KindApprovalDecided, &root, &ref
			d.Decision, d.DecidedBy, d.Via, d.DecidedAt, d.DecisionReason = tc.decision.Decision, tc.decision.DecidedBy, tc.decision.Via, tc.decision.DecidedAt, tc.decision.DecisionReason
			got, err := n.Notify(ctx, d)
			if err != nil || got != ref {
				t.Fatalf("decided: ref %+v, %v", got, err)
			}
			msgs := ws.Messages()
			if len(msgs) != 3 {
				t.Fatalf("%d messages, want root, approval, thread note", len(msgs))
			}
			edited := msgs[1]
			if edited.TS != ref.TS || edited.Edits != 1 {
				t.Fatalf("approval message edits %d", edited.Edits)
			}
			bs := edited.Blocks.BlockSet
			for _, b := range bs {
				if b.BlockType() == slackgo.MBTAction {
					t.Fatal("the decided message still has buttons")
				}
			}
			if last := blockText(bs[len(bs)-1]); last != tc.want {
				t.Fatalf("outcome %q, want %q", last, tc.want)
			}
			if h := blockText(bs[0]); !strings.Contains(h, "promote-west") {
				t.Fatalf("header lost: %q", h)
			}
			if note := msgs[2]; note.ThreadTS != root.TS || !strings.Contains(note.Text, tc.want) {
				t.Fatalf("thread note %+v", note)
			}
		})
	}
}

func TestProgressThread(t *testing.T) {
	ws := slacklab.Start(t)
	n := notifier(t, ws.APIURL(), drslack.Options{})
	ctx := context.Background()
	base := activities.Notification{
		WorkflowID: "drctl-payments", Runbook: "payments-failover", Mode: "drill", StartedBy: "alice", StartedAt: started, Reason: "quarterly drill",
		Objectives: runbooks.Objectives{RTO: runbooks.Duration(15 * time.Minute), RPO: runbooks.Duration(30 * time.Second)},
	}
	start := base
	start.Kind, start.Key = activities.KindRunStarted, "k1"
	root, err := n.Notify(ctx, start)
	if err != nil {
		t.Fatal(err)
	}
	failed := base
	failed.Kind, failed.Key, failed.Thread, failed.Step, failed.Attempt, failed.Retries, failed.Error = activities.KindStepFailed, "k2", &root, "promote-west", 1, true, "promote payments-db@west: connection refused"
	decided := base
	decided.Kind, decided.Key, decided.Thread, decided.Step = activities.KindApprovalDecided, "k3", &root, "go-ahead"
	decided.Decision, decided.DecidedBy, decided.Via, decided.DecidedAt = activities.DecisionApproved, "bob", "slack", started.Add(time.Minute)
	rto, rpo := runbooks.Duration(4*time.Minute+2*time.Second), runbooks.Duration(45*time.Second)
	finished := base
	finished.Kind, finished.Key, finished.Thread, finished.State, finished.Elapsed, finished.RTO, finished.RPO = activities.KindRunFinished, "k4", &root, "succeeded", rto, &rto, &rpo
	for _, note := range []activities.Notification{failed, decided, finished} {
		if _, err := n.Notify(ctx, note); err != nil {
			t.Fatalf("%s: %v", note.Kind, err)
		}
	}
	msgs := ws.Messages()
	want := []string{
		":rotating_light: *drill* run of *payments-failover* started by alice (run `drctl-payments`, RTO objective 15m0s, RPO objective 30s): quarterly drill",
		":warning: Step *promote-west* failed (attempt 1, retrying): promote payments-db@west: connection refused",
		"Step *go-ahead*: :white_check_mark: *Approved* by bob via slack at 12:01:00Z",
		":white_check_mark: Run `drctl-payments` of *payments-failover* succeeded after 4m2s\nRTO 4m2s, within the 15m0s objective · RPO 45s, *missed* the 30s objective",
	}
	if len(msgs) != len(want) {
		t.Fatalf("%d messages, want %d", len(msgs), len(want))
	}
	for i, w := range want {
		if !strings.Contains(msgs[i].Text, w) {
			t.Errorf("message %d: %q lacks %q", i, msgs[i].Text, w)
		}
		if i > 0 && msgs[i].ThreadTS != root.TS {
			t.Errorf("message %d is not in the run's thread", i)
		}
	}
	if !msgs[3].Broadcast {
		t.Error("run_finished is not broadcast to the channel")
	}
}

// A retried post (an attempt whose post landed but whose answer was lost)
// finds the earlier message by its key instead of posting again.
func TestRetriedPostFindsTheEarlierMessage(t *testing.T) {
	ws := slacklab.Start(t)
	n := notifier(t, ws.APIURL(), drslack.Options{})
	ctx := context.Background()
	root1, err := n.Notify(ctx, activities.Notification{Kind: activities.KindRunStarted, Key: "k-root", WorkflowID: "drctl-x", StartedAt: started})
	if err != nil {
		t.Fatal(err)
	}
	root2, err := n.Notify(ctx, activities.Notification{Kind: activities.KindRunStarted, Key: "k-root", WorkflowID: "drctl-x", StartedAt: started})
	if err != nil || root2 != root1 {
		t.Fatalf("retried root: %+v %v, want %+v", root2, err, root1)
	}
	note := activities.Notification{Kind: activities.KindStepFailed, Key: "k-fail", Thread: &root1, WorkflowID: "drctl-x", Step: "s", Error: "boom"}
	a, err := n.Notify(ctx, note)
	if err != nil {
		t.Fatal(err)
	}
	b, err := n.Notify(ctx, note)
	if err != nil || a != b {
		t.Fatalf("retried thread post: %+v %v, want %+v", b, err, a)
	}
	other, err := n.Notify(ctx, activities.Notification{Kind: activities.KindStepFailed, Key: "k-other", Thread: &root1, WorkflowID: "drctl-x", Step: "s", Error: "boom"})
	if err != nil || other == a {
		t.Fatalf("a different key must post: %+v %v", other, err)
	}
	if got := len(ws.Messages()); got != 3 || ws.Calls("chat.postMessage") != 3 {
		t.Fatalf("%d messages from %d posts, want 3", got, ws.Calls("chat.postMessage"))
	}
	if ws.Calls("conversations.history") != 2 || ws.Calls("conversations.replies") != 3 {
		t.Fatalf("look-ups: history %d replies %d", ws.Calls("conversations.history"), ws.Calls("conversations.replies"))
	}
}

// Inside the activity, the first attempt posts without a look-up.
func TestFirstAttemptPostsWithoutLookup(t *testing.T) {
	ws := slacklab.Start(t)
	n := notifier(t, ws.APIURL(), drslack.Options{})
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestActivityEnvironment()
	n.Register(env)
	note := activities.Notification{Kind: activities.KindRunStarted, Key: "k", WorkflowID: "drctl-x", StartedAt: started}
	v, err := env.ExecuteActivity(activities.NotifyActivity, note)
	if err != nil {
		t.Fatal(err)
	}
	var ref activities.MessageRef
	if err := v.Get(&ref); err != nil || ref.TS == "" {
		t.Fatalf("ref %+v %v", ref, err)
	}
	if ws.Calls("conversations.history") != 0 || len(ws.Messages()) != 1 {
		t.Fatalf("history calls %d, messages %d", ws.Calls("conversations.history"), len(ws.Messages()))
	}
}

func TestRateLimitedOnceThenOneMessage(t *testing.T) {
	ws := slacklab.Start(t)
	n := notifier(t, ws.APIURL(), drslack.Options{})
	ws.RateLimitNext("chat.postMessage", 1)
	begin := time.Now()
	if _, err := n.Notify(context.Background(), gate("k")); err != nil {
		t.Fatal(err)
	}
	if got := len(ws.Messages()); got != 1 || ws.Calls("chat.postMessage") != 2 {
		t.Fatalf("%d messages after %d posts, want 1 after 2", got, ws.Calls("chat.postMessage"))
	}
	if waited := time.Since(begin); waited < time.Second {
		t.Fatalf("posted again after %s, before Retry-After", waited)
	}
}

func TestLongRateLimitSetsTheNextRetryDelay(t *testing.T) {
	ws := slacklab.Start(t)
	n := notifier(t, ws.APIURL(), drslack.Options{MaxInlineWait: time.Second})
	ws.RateLimitNext("chat.postMessage", 120)
	_, err := activities.Bounded(n.Notify)(context.Background(), gate("k"))
	var ae *temporal.ApplicationError
	if !errors.As(err, &ae) || ae.NonRetryable() || ae.NextRetryDelay() != 120*time.Second {
		t.Fatalf("error %v, want a retryable rate-limit error with a 2m delay", err)
	}
	if len(ws.Messages()) != 0 {
		t.Fatal("posted despite the rate limit")
	}
}

func TestErrorsNeverHoldTheToken(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	unreachable := "http://" + l.Addr().String() + "/"
	l.Close()
	n := notifier(t, unreachable, drslack.Options{HTTPTimeout: 2 * time.Second})
	_, err = activities.Bounded(n.Notify)(context.Background(), gate("k"))
	var ae *temporal.ApplicationError
	if !errors.As(err, &ae) || ae.NonRetryable() {
		t.Fatalf("unreachable Slack: %v, want a retryable error", err)
	}
	if strings.Contains(err.Error(), slacklab.Token) {
		t.Fatalf("error holds the token: %v", err)
	}

	ws := slacklab.Start(t)
	t.Setenv("DRCTL_TEST_SLACK_WRONG", "xoxb-wrong-token-1234")
	bad, err := drslack.New(config.Slack{Channel: channel, BotToken: config.SecretRef{Env: "DRCTL_TEST_SLACK_WRONG"}, APIURL: ws.APIURL()}, drslack.Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = activities.Bounded(bad.Notify)(context.Background(), gate("k"))
	if !errors.As(err, &ae) || !ae.NonRetryable() || !strings.Contains(err.Error(), "invalid_auth (check slack.bot_token)") {
		t.Fatalf("bad token: %v, want a non-retryable invalid_auth", err)
	}
	if strings.Contains(err.Error(), "xoxb-wrong-token-1234") {
		t.Fatalf("error holds the token: %v", err)
	}
}

func TestSlackOffDoesNothing(t *testing.T) {
	n, err := drslack.New(config.Slack{Channel: channel}, drslack.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ref, err := n.Notify(context.Background(), gate("k"))
	if err != nil || ref != (activities.MessageRef{}) || n.Enabled() {
		t.Fatalf("disabled notifier: %+v %v", ref, err)
	}
}
