package slackapp_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/drctl/drctl/activities"

	drslack "github.com/drctl/drctl/activities/slack"
	"github.com/drctl/drctl/activities/slack/slacklab"
	"github.com/drctl/drctl/internal/slackapp"
)

// A signed click is accepted once. Sent again, it is refused however its
// signature is spelled: hex digits are case-insensitive, so an upper-cased
// copy is the same signature, not a new request.
func TestReplayedClickIsRefused(t *testing.T) {
	ws := slacklab.Start(t)
	cfg := slackConfig(t, ws)
	msg := ws.Post(slackChannel, "approval", drslack.ApprovalBlocks(activities.Notification{WorkflowID: "drctl-payments", Runbook: "payments", Step: "go-ahead"})...)
	dec := &fakeDecider{}
	app, err := slackapp.New(cfg, dec, slackapp.Options{Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(app.Close)
	endpoint := httptest.NewServer(app)
	t.Cleanup(endpoint.Close)

	value := drslack.ButtonValue{Run: "drctl-payments", Step: "go-ahead"}.Encode()
	original := sign(signingSecret, time.Now(), clickBody(t, ws, msg, "UBOB", drslack.ActionApprove, value, "bob"))
	hexMAC := strings.TrimPrefix(original.header.Get("X-Slack-Signature"), "v0=")
	resigned := func(sig string) signed {
		s := signed{header: original.header.Clone(), body: original.body}
		s.header.Set("X-Slack-Signature", sig)
		return s
	}
	respelled := func(f func(hex string) string) signed { return resigned("v0=" + f(hexMAC)) }
	prefixed := func(prefix string) signed { return resigned(prefix + hexMAC) }
	mixed := func(hex string) string {
		b := []byte(hex)
		for i := 0; i < len(b); i += 2 {
			b[i] = strings.ToUpper(string(b[i]))[0]
		}
		return string(b)
	}
	if !strings.ContainsAny(hexMAC, "abcdef") {
		t.Fatal("the signature has no hex letter to upper-case; change the click")
	}

	for _, tc := range []struct {
		name string
		req  signed
		want int
	}{
		{"first delivery", original, http.StatusOK},
		{"replayed with upper-case hex", respelled(strings.ToUpper), http.StatusConflict},
		{"replayed verbatim", original, http.StatusConflict},
		{"replayed with mixed-case hex", respelled(mixed), http.StatusConflict},
		{"upper-case version prefix", prefixed("V0="), http.StatusUnauthorized},
	} {
		if got := tc.req.post(t, endpoint.URL); got != tc.want {
			t.Errorf("%s: status %d, want %d", tc.name, got, tc.want)
		}
		app.Wait()
	}

	if ds, _ := dec.decisions(); len(ds) != 1 || ds[0].By != "bob" {
		t.Fatalf("decisions %+v, want bob's approval once", ds)
	}
	if got := replies(ws, "bob"); len(got) != 1 {
		t.Fatalf("replies %q, want one", got)
	}
}
