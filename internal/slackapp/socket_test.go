package slackapp_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/drctl/drctl/activities"

	"github.com/drctl/drctl/internal/testwait"

	drslack "github.com/drctl/drctl/activities/slack"
	"github.com/drctl/drctl/activities/slack/slacklab"
	"github.com/drctl/drctl/internal/slackapp"
	"github.com/drctl/drctl/workflows"
)

// fakeDecider approves the first decision per update ID and answers a
// repeated ID with the same result, as the server does.
type fakeDecider struct {
	mu    sync.Mutex
	calls []workflows.Decision
	ids   []string
}

func (f *fakeDecider) DecideAs(_ context.Context, run, _ string, d workflows.Decision, updateID string) (workflows.DecisionResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, d)
	f.ids = append(f.ids, updateID)
	if run != "drctl-payments" {
		return workflows.DecisionResult{}, errors.New(`no run "` + run + `" exists`)
	}
	return workflows.DecisionResult{Step: d.Step, Approved: d.Approve, By: d.By, At: time.Date(2025, 3, 1, 12, 5, 0, 0, time.UTC)}, nil
}

func (f *fakeDecider) decisions() ([]workflows.Decision, []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]workflows.Decision(nil), f.calls...), append([]string(nil), f.ids...)
}

// Over Socket Mode a click is acknowledged by its envelope ID and takes
// the same path as over HTTP.
func TestSocketModeClick(t *testing.T) {
	ws := slacklab.Start(t)
	ws.SetGroup("SDBA", "UDAVE")
	cfg := slackConfig(t, ws)
	cfg.Mode = "socket"
	msg := ws.Post(slackChannel, "approval", drslack.ApprovalBlocks(activities.Notification{WorkflowID: "drctl-payments", Runbook: "payments", Step: "go-ahead"})...)
	dec := &fakeDecider{}
	app, err := slackapp.New(cfg, dec, slackapp.Options{Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- app.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	})

	form := clickBody(t, ws, msg, "UDAVE", drslack.ActionApprove, drslack.ButtonValue{Run: "drctl-payments", Step: "go-ahead"}.Encode(), "socket")
	payload := strings.TrimPrefix(form, "payload=")
	payload = unescape(t, payload)
	env, _ := json.Marshal(map[string]any{"type": "interactive", "envelope_id": "env-1", "payload": json.RawMessage(payload)})
	ws.SendSocket(string(env))

	testwait.For(t, "the ack and the reply", func() bool {
		acked := false
		for _, m := range ws.SocketReceived() {
			acked = acked || strings.Contains(m, `"envelope_id":"env-1"`)
		}
		return acked && len(replies(ws, "socket")) == 1
	})
	ds, ids := dec.decisions()
	want := workflows.Decision{Step: "go-ahead", Approve: true, By: "dave", Via: "slack", Groups: []string{"dba"}}
	if len(ds) != 1 || ds[0].Step != want.Step || !ds[0].Approve || ds[0].By != want.By || ds[0].Via != want.Via || len(ds[0].Groups) != 1 || ds[0].Groups[0] != "dba" {
		t.Fatalf("decisions %+v", ds)
	}
	if wantID := "slack/" + slackChannel + "/" + msg.TS + "/drctl-payments/go-ahead/UDAVE/approve"; ids[0] != wantID {
		t.Fatalf("update ID %q, want %q", ids[0], wantID)
	}
	if got := replies(ws, "socket"); !strings.Contains(got[0], "Recorded: dave approved step go-ahead of run drctl-payments at 12:05:00Z") {
		t.Fatalf("reply %q", got[0])
	}
	testwait.For(t, "the message edit", func() bool { return ws.Messages()[0].Edits == 1 })
}
