package slackapp_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/drctl/drctl/activities"

	drslack "github.com/drctl/drctl/activities/slack"
	"github.com/drctl/drctl/activities/slack/slacklab"
	"github.com/drctl/drctl/internal/config"
	"github.com/drctl/drctl/internal/slackapp"
)

// fuzzMaxBody is the App's body bound in the fuzz target: small, so the
// fuzzer reaches the 413 path.
const fuzzMaxBody = 8 << 10

// How a fuzz input signs its request (the low two bits of how), and what
// else it changes.
const (
	signReal      = 0  // HMAC with the signing secret over the timestamp sent
	signAsGiven   = 1  // the sig argument, verbatim
	signWrong     = 2  // HMAC with another secret
	signUpperHex  = 3  // the real HMAC, hex upper-cased
	sendGET       = 4  // GET instead of POST
	noTimestamp   = 8  // no X-Slack-Request-Timestamp header
	timestampText = 16 // the ts argument as the timestamp, not now+skew
)

// FuzzInteractivity sends the interactivity endpoint arbitrary bodies,
// timestamps and signature headers — correctly signed arbitrary bodies as
// well as garbage — each to a fresh App, then the same request again, and
// holds it to its invariants:
//
//   - it never panics (on the request or in the decision it dispatches);
//   - it answers 200, 400, 401, 405, 409 or 413 only, with a short body
//     that holds neither the signing secret nor the bot token;
//   - a request whose signature does not verify (by an independent check)
//     is answered 401 (405, 413 before that) and has no effect at all: no
//     decision, no call to Slack;
//   - a decision is sent only for a verified block_actions click on a drctl
//     button by a mapped user, as that user's identity, for the run and
//     step the button names — once: the same request again is 409 and
//     decides nothing;
//   - a verified click like that which is acknowledged (200) is decided.
func FuzzInteractivity(f *testing.F) {
	ws := slacklab.Start(f)
	ws.SetGroup("SDBA", "UDAVE")
	f.Setenv("DRCTL_TEST_SLACK_BOT", slacklab.Token)
	f.Setenv("DRCTL_TEST_SLACK_SIGNING", signingSecret)
	cfg := config.Slack{
		Channel:       slackChannel,
		BotToken:      config.SecretRef{Env: "DRCTL_TEST_SLACK_BOT"},
		SigningSecret: config.SecretRef{Env: "DRCTL_TEST_SLACK_SIGNING"},
		Mode:          "http",
		Users:         users,
		Groups:        map[string]string{"SDBA": "dba"},
		GroupTTL:      time.Minute,
		APIURL:        ws.APIURL(),
	}
	msg := ws.Post(slackChannel, "approval", drslack.ApprovalBlocks(activities.Notification{WorkflowID: "drctl-payments", Runbook: "payments", Step: "go-ahead"})...)
	value := drslack.ButtonValue{Run: "drctl-payments", Step: "go-ahead"}.Encode()
	click := func(user, action, value string) string {
		return fuzzClick(ws, msg, user, action, value, drslack.ApprovalBlockID)
	}

	for _, s := range []struct {
		body, ts string
		skew     int64
		how      uint8
		sig      string
	}{
		{body: click("UBOB", drslack.ActionApprove, value)},
		{body: click("UALICE", drslack.ActionReject, value), skew: -60},
		{body: click("UDAVE", drslack.ActionApprove, value), skew: 200},
		{body: click("UEVE", drslack.ActionApprove, value)},
		{body: click("UBOB", drslack.ActionApprove, drslack.ButtonValue{Run: "drctl-nope", Step: "go-ahead"}.Encode())},
		{body: click("UBOB", drslack.ActionApprove, drslack.ButtonValue{Run: "drctl-payments", RunID: "r-1", Step: "go-ahead"}.Encode())},
		{body: click("UBOB", drslack.ActionApprove, `{"nope":1}`)},
		{body: click("UBOB", "someone_elses_button", value)},
		{body: click("", drslack.ActionApprove, value)},
		{body: fuzzClick(ws, msg, "UBOB", drslack.ActionApprove, value, "")},
		{body: `payload={"type":"block_actions","user":{"id":"UBOB"},"actions":[{"block_id":"b","action_id":"x","value":"1"},{"block_id":"drctl_decide","action_id":"drctl_reject","value":"{\"run\":\"drctl-payments\",\"step\":\"go-ahead\"}"}]}`},
		{body: `payload={"type":"block_actions","user":{"id":"UBOB"},"actions":[{"action_id":"drctl_approve","value":"{\"run\":\"drctl-payments\",\"step\":\"go-ahead\"}"}]}`},
		{body: `payload={"type":"view_submission","user":{"id":"UBOB"},"view":{"id":"V1"}}`},
		{body: `payload={"type":"block_actions","user":{"id":"UBOB"},"container":5}`},
		{body: "payload=%7Bnot+json"},
		{body: "foo=bar"},
		{body: "payload=a;b=c"},
		{body: "payload=%zz"},
		{body: "payload=" + url.QueryEscape(signingSecret)},
		{body: ""},
		{body: "payload=" + strings.Repeat("x", fuzzMaxBody)},
		{body: click("UBOB", drslack.ActionApprove, value), skew: -400},
		{body: click("UBOB", drslack.ActionApprove, value), skew: 400},
		{body: click("UBOB", drslack.ActionApprove, value), how: signAsGiven, sig: "v0=deadbeef"},
		{body: click("UBOB", drslack.ActionApprove, value), how: signAsGiven, sig: "v0=" + strings.Repeat("0", 64)},
		{body: click("UBOB", drslack.ActionApprove, value), how: signAsGiven, sig: ""},
		{body: click("UBOB", drslack.ActionApprove, value), how: signWrong},
		{body: click("UBOB", drslack.ActionApprove, value), how: signUpperHex},
		{body: click("UBOB", drslack.ActionApprove, value), how: sendGET},
		{body: click("UBOB", drslack.ActionApprove, value), how: noTimestamp},
		{body: click("UBOB", drslack.ActionApprove, value), how: timestampText, ts: "1700000000"},
		{body: click("UBOB", drslack.ActionApprove, value), how: timestampText, ts: "+1"},
		{body: click("UBOB", drslack.ActionApprove, value), how: timestampText, ts: "9223372036854775807"},
		{body: click("UBOB", drslack.ActionApprove, value), how: timestampText, ts: "-9223372036854775808"},
	} {
		f.Add(s.body, s.ts, s.skew, s.how, s.sig)
	}

	f.Fuzz(func(t *testing.T, body, ts string, skew int64, how uint8, sig string) {
		now := time.Now()
		h := http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}
		if how&timestampText == 0 {
			ts = strconv.FormatInt(now.Unix()+skew, 10)
		}
		if how&noTimestamp == 0 {
			h.Set("X-Slack-Request-Timestamp", ts)
		}
		switch how & 3 {
		case signReal:
			sig = "v0=" + macHex(signingSecret, ts, body)
		case signWrong:
			sig = "v0=" + macHex("not-the-secret", ts, body)
		case signUpperHex:
			sig = "v0=" + strings.ToUpper(macHex(signingSecret, ts, body))
		}
		h.Set("X-Slack-Signature", sig)
		method := http.MethodPost
		if how&sendGET != 0 {
			method = http.MethodGet
		}
		verified := verify(h, body, now)
		want, isClick := expectedDecision(body)

		dec := &fakeDecider{}
		app, err := slackapp.New(cfg, dec, slackapp.Options{Logger: quiet(), MaxBody: fuzzMaxBody, DecideTimeout: 2 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		defer app.Close()
		before := slackCalls(ws)

		// The first delivery.
		code, reply := serve(app, method, h, body)
		app.Wait()
		checkAnswer(t, code, reply)
		ds, _ := dec.decisions()
		refusedFirst := code == http.StatusMethodNotAllowed || code == http.StatusRequestEntityTooLarge || code == http.StatusUnauthorized
		switch {
		case method != http.MethodPost:
			if code != http.StatusMethodNotAllowed {
				t.Fatalf("%s answered %d, want 405", method, code)
			}
		case len(body) > fuzzMaxBody:
			if code != http.StatusRequestEntityTooLarge {
				t.Fatalf("a %d-byte body answered %d, want 413", len(body), code)
			}
		case verified == sigRefused:
			if code != http.StatusUnauthorized {
				t.Fatalf("an unverifiable request answered %d, want 401", code)
			}
		case verified == sigAccepted:
			if refusedFirst || code == http.StatusConflict {
				t.Fatalf("a verified first delivery answered %d, want 200 or 400", code)
			}
		}
		if refusedFirst {
			if len(ds) != 0 {
				t.Fatalf("a refused request (%d) decided %+v", code, ds)
			}
			if after := slackCalls(ws); after != before {
				t.Fatalf("a refused request (%d) called Slack: %v, then %v", code, before, after)
			}
		}
		switch {
		case len(ds) > 1:
			t.Fatalf("one request decided %d times: %+v", len(ds), ds)
		case len(ds) == 1:
			d := ds[0]
			if code != http.StatusOK || verified == sigRefused || !isClick || want.By == "" {
				t.Fatalf("decided %+v for a request answered %d, verified %v, a mapped click %v (%+v)", d, code, verified, isClick && want.By != "", want)
			}
			if d.By != want.By || d.Approve != want.Approve || d.Step != want.Step || d.Via != "slack" {
				t.Fatalf("decided %+v, want %+v", d, want)
			}
		case code == http.StatusOK && isClick && want.By != "":
			t.Fatalf("a verified click by %s was acknowledged and not decided (want %+v)", want.By, want)
		}

		// The same request again.
		again, reply := serve(app, method, h, body)
		app.Wait()
		checkAnswer(t, again, reply)
		switch {
		case refusedFirst && again != code:
			t.Fatalf("refused with %d, then answered %d", code, again)
		case !refusedFirst && again != http.StatusConflict:
			t.Fatalf("a verified request sent again answered %d, want 409", again)
		}
		if ds2, _ := dec.decisions(); len(ds2) != len(ds) {
			t.Fatalf("the request sent again decided %+v", ds2[len(ds):])
		}
	})
}

// fuzzClick is the form body Slack posts when user clicks action (in the
// block blockID; none when empty) on msg.
func fuzzClick(ws *slacklab.Workspace, msg slacklab.Message, user, action, value, blockID string) string {
	blocks, _ := json.Marshal(msg.Blocks)
	act := map[string]any{"type": "button", "action_id": action, "value": value, "action_ts": "1700000000.000100"}
	if blockID != "" {
		act["block_id"] = blockID
	}
	payload, _ := json.Marshal(map[string]any{
		"type":         "block_actions",
		"user":         map[string]any{"id": user, "username": strings.ToLower(user)},
		"api_app_id":   "A0DRCTL",
		"container":    map[string]any{"type": "message", "message_ts": msg.TS, "channel_id": msg.Channel},
		"channel":      map[string]any{"id": msg.Channel},
		"message":      map[string]any{"type": "message", "ts": msg.TS, "text": msg.Text, "blocks": json.RawMessage(blocks)},
		"response_url": ws.ResponseURL("fuzz"),
		"trigger_id":   "1.2.3",
		"actions":      []any{act},
	})
	return url.Values{"payload": {string(payload)}}.Encode()
}

func macHex(secret, ts, body string) string {
	mac := hmac.New(sha256.New, []byte(secret))
	fmt.Fprintf(mac, "v0:%s:%s", ts, body)
	return hex.EncodeToString(mac.Sum(nil))
}

type sigVerdict int

const (
	sigRefused sigVerdict = iota
	sigAccepted
	sigBorderline // within seconds of the five-minute window's edge
)

// verify is Slack's request signing, written out independently of the
// App: v0=hex(HMAC-SHA256(secret, "v0:" + timestamp + ":" + body)), the
// timestamp a decimal number of seconds within five minutes of now.
func verify(h http.Header, body string, now time.Time) sigVerdict {
	ts := h.Get("X-Slack-Request-Timestamp")
	hexMAC, ok := strings.CutPrefix(h.Get("X-Slack-Signature"), "v0=")
	if !ok || ts == "" {
		return sigRefused
	}
	got, err := hex.DecodeString(hexMAC)
	want, _ := hex.DecodeString(macHex(signingSecret, ts, body))
	if err != nil || !hmac.Equal(got, want) {
		return sigRefused
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return sigRefused
	}
	switch d := now.Sub(time.Unix(sec, 0)).Abs(); {
	case d < 5*time.Minute-5*time.Second:
		return sigAccepted
	case d > 5*time.Minute+5*time.Second:
		return sigRefused
	}
	return sigBorderline
}

// wantDecision is the decision a click asks for; By is empty when the
// clicker is not mapped to an identity.
type wantDecision struct {
	By, Run, Step string
	Approve       bool
}

// expectedDecision reads body the way Slack means it, independently of
// the App: a form whose payload is a block_actions interaction; its first
// block action (one with a block_id) that is a drctl button decides, with
// a button value naming a run and a step, by a user with an ID.
func expectedDecision(body string) (wantDecision, bool) {
	form, err := url.ParseQuery(body)
	if err != nil {
		return wantDecision{}, false
	}
	var cb struct {
		Type string `json:"type"`
		User struct {
			ID string `json:"id"`
		} `json:"user"`
		Actions []json.RawMessage `json:"actions"`
	}
	if err := json.Unmarshal([]byte(form.Get("payload")), &cb); err != nil || cb.Type != "block_actions" {
		return wantDecision{}, false
	}
	for _, raw := range cb.Actions {
		var fields map[string]any
		if json.Unmarshal(raw, &fields) != nil {
			return wantDecision{}, false
		}
		if _, ok := fields["block_id"].(string); !ok {
			continue // an attachment action, not a block's
		}
		var a struct {
			ActionID string `json:"action_id"`
			Value    string `json:"value"`
		}
		if json.Unmarshal(raw, &a) != nil {
			return wantDecision{}, false
		}
		if a.ActionID != drslack.ActionApprove && a.ActionID != drslack.ActionReject {
			continue
		}
		var v struct{ Run, Step string }
		if json.Unmarshal([]byte(a.Value), &v) != nil || v.Run == "" || v.Step == "" || cb.User.ID == "" {
			return wantDecision{}, false
		}
		return wantDecision{By: users[cb.User.ID], Run: v.Run, Step: v.Step, Approve: a.ActionID == drslack.ActionApprove}, true
	}
	return wantDecision{}, false
}

func serve(app http.Handler, method string, h http.Header, body string) (int, string) {
	r := httptest.NewRequest(method, slackapp.Path, strings.NewReader(body))
	r.Header = h.Clone()
	w := httptest.NewRecorder()
	app.ServeHTTP(w, r)
	return w.Code, w.Body.String()
}

// checkAnswer holds every answer to the status codes the endpoint uses and
// to a short body that gives nothing secret away.
func checkAnswer(t *testing.T, code int, reply string) {
	t.Helper()
	switch code {
	case http.StatusOK, http.StatusBadRequest, http.StatusUnauthorized, http.StatusMethodNotAllowed, http.StatusConflict, http.StatusRequestEntityTooLarge:
	default:
		t.Fatalf("answered %d", code)
	}
	if len(reply) > 256 {
		t.Fatalf("answered %d with %d bytes: %.300q", code, len(reply), reply)
	}
	for _, secret := range []string{signingSecret, slacklab.Token} {
		if strings.Contains(reply, secret) {
			t.Fatalf("the answer %q holds a secret", reply)
		}
	}
}

// slackCalls counts the calls the App can make to Slack.
func slackCalls(ws *slacklab.Workspace) [4]int {
	return [4]int{ws.Calls("chat.update"), ws.Calls("chat.postEphemeral"), ws.Calls("response_url"), ws.Calls("usergroups.users.list")}
}
