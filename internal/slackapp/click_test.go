package slackapp_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/drctl/drctl/activities"

	"github.com/drctl/drctl/internal/testwait"

	drslack "github.com/drctl/drctl/activities/slack"
	"github.com/drctl/drctl/activities/slack/slacklab"
	"github.com/drctl/drctl/internal/config"
	"github.com/drctl/drctl/internal/devserver"
	"github.com/drctl/drctl/internal/operator"
	"github.com/drctl/drctl/internal/slackapp"
	"github.com/drctl/drctl/runbooks"
	"github.com/drctl/drctl/worker"
	"github.com/drctl/drctl/workflows"
)

const (
	signingSecret = "slacklab-signing-secret"
	slackChannel  = "C0DR"
)

var users = map[string]string{"UALICE": "alice", "UBOB": "bob", "UCAROL": "carol", "UDAVE": "dave"}

func slackConfig(t *testing.T, ws *slacklab.Workspace) config.Slack {
	t.Setenv("DRCTL_TEST_SLACK_BOT", slacklab.Token)
	t.Setenv("DRCTL_TEST_SLACK_SIGNING", signingSecret)
	t.Setenv("DRCTL_TEST_SLACK_APP", "xapp-slacklab")
	return config.Slack{
		Channel:       slackChannel,
		BotToken:      config.SecretRef{Env: "DRCTL_TEST_SLACK_BOT"},
		SigningSecret: config.SecretRef{Env: "DRCTL_TEST_SLACK_SIGNING"},
		AppToken:      config.SecretRef{Env: "DRCTL_TEST_SLACK_APP"},
		Mode:          "http",
		Users:         users,
		Groups:        map[string]string{"SDBA": "dba"},
		GroupTTL:      time.Minute,
		APIURL:        ws.APIURL(),
	}
}

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

// signed is a signed interactivity request, kept so it can be replayed.
type signed struct {
	header http.Header
	body   string
}

func sign(secret string, at time.Time, body string) signed {
	ts := fmt.Sprint(at.Unix())
	mac := hmac.New(sha256.New, []byte(secret))
	fmt.Fprintf(mac, "v0:%s:%s", ts, body)
	h := http.Header{}
	h.Set("Content-Type", "application/x-www-form-urlencoded")
	h.Set("X-Slack-Request-Timestamp", ts)
	h.Set("X-Slack-Signature", "v0="+hex.EncodeToString(mac.Sum(nil)))
	return signed{header: h, body: body}
}

func (s signed) post(t *testing.T, endpoint string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, endpoint, strings.NewReader(s.body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header = s.header.Clone()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// clickBody is the form body Slack posts when user clicks action on msg.
func clickBody(t *testing.T, ws *slacklab.Workspace, msg slacklab.Message, user, action, value, replyID string) string {
	t.Helper()
	blocks, err := json.Marshal(msg.Blocks)
	if err != nil {
		t.Fatal(err)
	}
	payload := map[string]any{
		"type":         "block_actions",
		"user":         map[string]any{"id": user, "username": strings.ToLower(user)},
		"api_app_id":   "A0DRCTL",
		"container":    map[string]any{"type": "message", "message_ts": msg.TS, "channel_id": msg.Channel},
		"channel":      map[string]any{"id": msg.Channel},
		"message":      map[string]any{"type": "message", "ts": msg.TS, "text": msg.Text, "blocks": json.RawMessage(blocks)},
		"response_url": ws.ResponseURL(replyID),
		"trigger_id":   "1.2.3",
		"actions": []map[string]any{{
			"type": "button", "action_id": action, "block_id": drslack.ApprovalBlockID,
			"value": value, "action_ts": fmt.Sprint(time.Now().Unix()),
		}},
	}
	b, err := json.Marshal(payload)
	if err != nil {
		t.Fatal(err)
	}
	return url.Values{"payload": {string(b)}}.Encode()
}

func replies(ws *slacklab.Workspace, replyID string) []string {
	var out []string
	for _, e := range ws.Ephemerals() {
		if strings.HasSuffix(e.ResponseURL, "/response/"+replyID) {
			out = append(out, e.Text)
		}
	}
	return out
}

const gatedRunbook = `apiVersion: drctl/v1
name: slack-gate
lock: %s
objectives: {rto: 5m}
steps:
  - id: announce
    action: note
    with: {message: "hello"}
  - id: go-ahead
    needs: [announce]
    approval:
      message: "Promote west?"
      approvers: [alice, bob, "group:dba"]
  - id: done
    needs: [go-ahead]
    action: note
    with: {message: "done"}
`

// TestClicksDecideARealRun drives a gated run on a real dev server with
// signed interactivity requests: refused requests change nothing, the
// validator's refusals reach the clicker, and a double click by a member of
// an approver user group is one approval.
func TestClicksDecideARealRun(t *testing.T) {
	ctx := context.Background()
	sctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	srv, err := devserver.Start(sctx, devserver.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Stop() })
	cfg := config.Defaults()
	cfg.Temporal.Address, cfg.Temporal.TaskQueue, cfg.Identity = srv.Address, "q-slackapp", "worker@test"
	reg, err := worker.Actions(cfg)
	if err != nil {
		t.Fatal(err)
	}
	w := worker.New(srv.Client(), cfg, reg)
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)

	file := filepath.Join(t.TempDir(), "runbook.yaml")
	if err := os.WriteFile(file, []byte(fmt.Sprintf(gatedRunbook, "slack-gate")), 0o644); err != nil {
		t.Fatal(err)
	}
	rb, err := runbooks.Load(file, reg)
	if err != nil {
		t.Fatal(err)
	}
	starter := &operator.Operator{Client: srv.Client(), TaskQueue: cfg.Temporal.TaskQueue, Identity: "alice", UpdateWait: 5 * time.Second}
	run, err := starter.Start(ctx, rb, nil, workflows.ModeFailover, "slack test")
	if err != nil {
		t.Fatal(err)
	}
	testwait.For(t, "the gate to await approval", func() bool {
		st, err := starter.Status(ctx, run.WorkflowID)
		return err == nil && slices.Contains(st.Waiting, "go-ahead")
	})

	ws := slacklab.Start(t)
	ws.SetGroup("SDBA", "UDAVE")
	scfg := slackConfig(t, ws)
	n, err := drslack.New(scfg, drslack.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ref, err := n.Notify(ctx, activities.Notification{
		Kind: activities.KindApprovalRequested, Key: run.WorkflowID + "/go-ahead", WorkflowID: run.WorkflowID,
		Runbook: rb.Name, StartedBy: "alice", Step: "go-ahead", StepMessage: "Promote west?",
		Approvers: []string{"alice", "bob", "group:dba"},
	})
	if err != nil {
		t.Fatal(err)
	}
	msg := ws.Messages()[0]
	if msg.TS != ref.TS {
		t.Fatalf("posted %+v, ref %+v", msg, ref)
	}
	value := drslack.ButtonValue{Run: run.WorkflowID, Step: "go-ahead"}.Encode()

	decider := &operator.Operator{Client: srv.Client(), TaskQueue: cfg.Temporal.TaskQueue, Identity: "slack@test", UpdateWait: 5 * time.Second}
	app, err := slackapp.New(scfg, decider, slackapp.Options{Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(app.Close)
	endpoint := httptest.NewServer(app)
	t.Cleanup(endpoint.Close)

	stillWaiting := func(t *testing.T) {
		t.Helper()
		rep, err := starter.Report(ctx, run.WorkflowID)
		if err != nil {
			t.Fatal(err)
		}
		if s, _ := rep.Step("go-ahead"); s.State != workflows.StepWaiting || s.Approval.Decision != "" {
			t.Fatalf("gate is %s/%q, want still waiting", s.State, s.Approval.Decision)
		}
		for _, e := range rep.Events {
			if e.Kind == "approved" || e.Kind == "rejected" {
				t.Fatalf("unexpected event %+v", e)
			}
		}
		if m := ws.Messages()[0]; m.Edits != 0 {
			t.Fatal("the approval message was edited")
		}
	}

	now := time.Now()
	bobApproves := clickBody(t, ws, msg, "UBOB", drslack.ActionApprove, value, "refused")
	for _, tc := range []struct {
		name string
		req  signed
		want int
	}{
		{"bad signature", sign("not-the-secret", now, bobApproves), http.StatusUnauthorized},
		{"tampered body", signed{header: sign(signingSecret, now, bobApproves).header, body: strings.Replace(bobApproves, "UBOB", "UALICE", 1)}, http.StatusUnauthorized},
		{"stale timestamp", sign(signingSecret, now.Add(-6*time.Minute), bobApproves), http.StatusUnauthorized},
		{"no signature", signed{header: http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}, body: bobApproves}, http.StatusUnauthorized},
		{"malformed payload", sign(signingSecret, now, "payload=%7Bnot+json"), http.StatusBadRequest},
		{"no payload", sign(signingSecret, now.Add(-time.Second), "foo=bar"), http.StatusBadRequest},
		{"not drctl's button", sign(signingSecret, now, clickBody(t, ws, msg, "UBOB", drslack.ActionApprove, `{"nope":1}`, "refused")), http.StatusBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.req.post(t, endpoint.URL); got != tc.want {
				t.Fatalf("status %d, want %d", got, tc.want)
			}
			app.Wait()
			stillWaiting(t)
		})
	}
	if got := replies(ws, "refused"); len(got) != 0 {
		t.Fatalf("refused requests were answered in Slack: %q", got)
	}

	for _, tc := range []struct {
		name, user, action, value, want string
	}{
		{"unknown run", "UBOB", drslack.ActionApprove, drslack.ButtonValue{Run: "drctl-nope", Step: "go-ahead"}.Encode(), `Not recorded: no run "drctl-nope"`},
		{"unmapped user", "UEVE", drslack.ActionApprove, value, "Not recorded: your Slack user UEVE is not mapped to a drctl identity"},
		{"unauthorized user", "UCAROL", drslack.ActionApprove, value, `Not recorded: carol may not decide step "go-ahead"; allowed approvers: alice, bob, group:dba`},
		{"self-approval", "UALICE", drslack.ActionApprove, value, "Not recorded: two-person rule: alice started this run and may not approve its gates"},
		{"unknown step", "UBOB", drslack.ActionApprove, drslack.ButtonValue{Run: run.WorkflowID, Step: "done"}.Encode(), `Not recorded: step "done" is an action, not an approval gate`},
		{"a message of an earlier run", "UBOB", drslack.ActionApprove, drslack.ButtonValue{Run: run.WorkflowID, RunID: "an-earlier-run", Step: "go-ahead"}.Encode(), "Not recorded: this message belongs to an earlier run of " + run.WorkflowID},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := strings.ReplaceAll(tc.name, " ", "-")
			if got := sign(signingSecret, time.Now(), clickBody(t, ws, msg, tc.user, tc.action, tc.value, id)).post(t, endpoint.URL); got != http.StatusOK {
				t.Fatalf("status %d, want 200 (acknowledged, then refused)", got)
			}
			app.Wait()
			got := replies(ws, id)
			if len(got) != 1 || !strings.Contains(got[0], tc.want) {
				t.Fatalf("replies %q, want one containing %q", got, tc.want)
			}
			stillWaiting(t)
		})
	}

	// Dave approves through the dba user group, and his click arrives twice.
	dave := clickBody(t, ws, msg, "UDAVE", drslack.ActionApprove, value, "dave")
	first := sign(signingSecret, time.Now(), dave)
	second := sign(signingSecret, time.Now().Add(-time.Second), dave)
	var wg sync.WaitGroup
	codes := make([]int, 2)
	for i, req := range []signed{first, second} {
		wg.Go(func() { codes[i] = req.post(t, endpoint.URL) })
	}
	wg.Wait()
	if codes[0] != http.StatusOK || codes[1] != http.StatusOK {
		t.Fatalf("double click answered %v", codes)
	}
	app.Wait()
	if got := first.post(t, endpoint.URL); got != http.StatusConflict {
		t.Fatalf("replayed request answered %d, want 409", got)
	}
	rep, err := starter.Wait(ctx, run.WorkflowID)
	if err != nil {
		t.Fatal(err)
	}
	if rep.State != workflows.StateSucceeded {
		t.Fatalf("run %s: %s", rep.State, rep.Error)
	}
	approvals := 0
	for _, e := range rep.Events {
		if e.Kind == "approved" {
			approvals++
			if e.By != "dave" || e.Step != "go-ahead" {
				t.Fatalf("approval event %+v", e)
			}
		}
	}
	if s, _ := rep.Step("go-ahead"); approvals != 1 || s.Approval.Via != "slack" || s.Approval.By != "dave" {
		t.Fatalf("%d approvals, gate %+v", approvals, s.Approval)
	}
	got := replies(ws, "dave")
	if len(got) != 2 || !strings.Contains(got[0], "Recorded: dave approved step go-ahead of run drctl-slack-gate") || got[0] != got[1] {
		t.Fatalf("double click replies %q", got)
	}
	edited := ws.Messages()[0]
	last := edited.Blocks.BlockSet[len(edited.Blocks.BlockSet)-1]
	if edited.Edits == 0 || !strings.Contains(textOf(last), "*Approved* by dave via slack at ") {
		t.Fatalf("approval message after the decision: %d edits, last block %q", edited.Edits, textOf(last))
	}
	for _, b := range edited.Blocks.BlockSet {
		if b.BlockType() == "actions" {
			t.Fatal("the decided message still has buttons")
		}
	}
	if ws.Calls("usergroups.users.list") != 1 {
		t.Fatalf("%d group reads, want 1 (the cache answers the rest)", ws.Calls("usergroups.users.list"))
	}

	if got := sign(signingSecret, time.Now(), clickBody(t, ws, msg, "UBOB", drslack.ActionReject, value, "late")).post(t, endpoint.URL); got != http.StatusOK {
		t.Fatalf("late click answered %d", got)
	}
	app.Wait()
	if got := replies(ws, "late"); len(got) != 1 || !strings.Contains(got[0], "has ended") {
		t.Fatalf("late click replies %q", got)
	}
}
