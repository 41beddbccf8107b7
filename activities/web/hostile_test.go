package web_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/drctl/drctl/activities"
	"github.com/drctl/drctl/activities/web"
	"github.com/drctl/drctl/runbooks"
)

const (
	hookToken = "hook-t0ken-7f3a9c"
	bodyBound = 4 << 10 // the documented bound on outputs.body
)

// authedCall is an http.call to url whose auth target's bearer token is
// hookToken.
func authedCall(t *testing.T, url string, with map[string]any) activities.Request {
	t.Helper()
	t.Setenv("DRCTL_TEST_HOOK_TOKEN", hookToken)
	w := map[string]any{"url": url, "auth": "hook"}
	for k, v := range with {
		w[k] = v
	}
	req := callRequest("r1", "notify", w)
	req.Targets = []runbooks.Target{{Name: "hook", Kind: web.TargetKind, Credentials: &runbooks.CredentialRef{Env: "DRCTL_TEST_HOOK_TOKEN"}}}
	return req
}

// echoServer answers with status and a body that repeats the request's
// headers every way a careless endpoint does: as header lines, as JSON, as
// a Go map, and the bare token in prose, padded past the output bound.
func echoServer(t *testing.T, status int) *httptest.Server {
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Echo-Authorization", r.Header.Get("Authorization"))
		w.WriteHeader(status)
		_ = r.Header.Write(w)
		js, _ := json.Marshal(map[string]any{"headers": r.Header, "token": strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")})
		fmt.Fprintf(w, "\n%s\n%v\n", js, r.Header)
		fmt.Fprintf(w, "you sent %s, thanks\n", strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "))
		fmt.Fprintf(w, "%s\n", strings.Repeat("padding ", 1024))
		fmt.Fprintf(w, "and again at the end: %s\n", r.Header.Get("Authorization"))
	}))
	t.Cleanup(s.Close)
	return s
}

// TestCallKeepsNoCredentialInOutputs: an endpoint that echoes the request
// puts the bearer token in its answer; what http.call keeps (outputs, which
// land in the workflow history) is bounded, says it was cut, and holds the
// token nowhere.
func TestCallKeepsNoCredentialInOutputs(t *testing.T) {
	srv := echoServer(t, http.StatusOK)
	res, err := (&web.Call{Breakers: &web.Breakers{}}).Apply(context.Background(), authedCall(t, srv.URL, nil))
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	body, _ := res.Outputs["body"].(string)
	if strings.Contains(body, hookToken) {
		t.Errorf("outputs.body holds the bearer token:\n%s", body)
	}
	if !strings.Contains(body, "[redacted]") {
		t.Errorf("outputs.body does not say what was redacted:\n%.300s", body)
	}
	if len(body) > bodyBound {
		t.Errorf("outputs.body is %d bytes, want at most %d", len(body), bodyBound)
	}
	if res.Outputs["body_truncated"] != true {
		t.Errorf("outputs.body_truncated = %v, want true for a %d+ byte answer", res.Outputs["body_truncated"], 8<<10)
	}
	all, _ := json.Marshal(res)
	if strings.Contains(string(all), hookToken) {
		t.Errorf("the result holds the bearer token: %s", all)
	}
}

// TestCallErrorsHoldNoCredential: a refusing endpoint's echo reaches the
// error message (and so the history) redacted, whether the status is
// permanent (4xx) or retryable (5xx).
func TestCallErrorsHoldNoCredential(t *testing.T) {
	for _, tc := range []struct {
		status    int
		permanent bool
	}{
		{http.StatusForbidden, true},
		{http.StatusBadGateway, false},
	} {
		t.Run(fmt.Sprint(tc.status), func(t *testing.T) {
			srv := echoServer(t, tc.status)
			_, err := (&web.Call{Breakers: &web.Breakers{}}).Apply(context.Background(), authedCall(t, srv.URL, nil))
			if err == nil {
				t.Fatalf("Apply passed on %d", tc.status)
			}
			if activities.IsPermanent(err) != tc.permanent {
				t.Errorf("permanent = %v, want %v: %v", activities.IsPermanent(err), tc.permanent, err)
			}
			msg := err.Error()
			if strings.Contains(msg, hookToken) {
				t.Errorf("error holds the bearer token: %s", msg)
			}
			if !strings.Contains(msg, fmt.Sprintf("status %d", tc.status)) || !strings.Contains(msg, "[redacted]") {
				t.Errorf("error %.300q does not name the status and the redaction", msg)
			}
			if len(msg) > bodyBound+512 {
				t.Errorf("error is %d bytes; the body in it is not bounded", len(msg))
			}
		})
	}
}

// TestCallTransportErrorHoldsNoCredential: a failure before any answer
// names the request, never the token.
func TestCallTransportErrorHoldsNoCredential(t *testing.T) {
	var client = &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		return nil, fmt.Errorf("proxy refused %q", r.Header.Get("Authorization"))
	})}
	_, err := (&web.Call{Client: client, Breakers: &web.Breakers{}}).Apply(context.Background(), authedCall(t, "http://127.0.0.1:1/hook", nil))
	if err == nil || strings.Contains(err.Error(), hookToken) || !strings.Contains(err.Error(), "[redacted]") {
		t.Fatalf("transport error %v: want it with the token redacted", err)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// TestCallEndlessBodyIsBounded: an endpoint that never stops sending costs
// a bounded read, and the call still succeeds with a truncated body.
func TestCallEndlessBodyIsBounded(t *testing.T) {
	var sent atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		chunk := []byte(strings.Repeat("y", 1024) + "\n")
		for r.Context().Err() == nil {
			n, err := w.Write(chunk)
			sent.Add(int64(n))
			if err != nil {
				return
			}
		}
	}))
	t.Cleanup(srv.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := (&web.Call{Breakers: &web.Breakers{}}).Apply(ctx, callRequest("r1", "endless", map[string]any{"url": srv.URL, "method": "GET"}))
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	body, _ := res.Outputs["body"].(string)
	if len(body) == 0 || len(body) > bodyBound {
		t.Errorf("outputs.body is %d bytes, want 1..%d", len(body), bodyBound)
	}
	if res.Outputs["body_truncated"] != true {
		t.Errorf("outputs.body_truncated = %v, want true", res.Outputs["body_truncated"])
	}
}

// TestCallShortBodyIsWhole: a small answer is kept as it came, and says so.
func TestCallShortBodyIsWhole(t *testing.T) {
	srv := bodyServer(t, `{"accepted":true,"id":"evt-42"}`)
	res, err := (&web.Call{Breakers: &web.Breakers{}}).Apply(context.Background(), callRequest("r1", "x", map[string]any{"url": srv.URL}))
	if err != nil {
		t.Fatal(err)
	}
	if res.Outputs["body"] != `{"accepted":true,"id":"evt-42"}` || res.Outputs["body_truncated"] != false {
		t.Fatalf("outputs %v", res.Outputs)
	}
	spec := (&web.Call{}).Spec()
	for _, out := range []string{"status", "body", "body_truncated"} {
		if !strings.Contains(strings.Join(spec.Outputs, ","), out) {
			t.Errorf("spec outputs %v lack %s", spec.Outputs, out)
		}
	}
}

// TestCallHeadersAreCheckedByHTTPRules: a header name that is not an
// RFC 9110 token, a value with CR, LF or NUL, or a method that is not a
// token is refused before anything is sent, permanently, with the
// offending text quoted (never raw).
func TestCallHeadersAreCheckedByHTTPRules(t *testing.T) {
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hits.Add(1) }))
	t.Cleanup(srv.Close)
	call := &web.Call{Breakers: &web.Breakers{}}
	for _, tc := range []struct {
		name string
		with map[string]any
		want string
	}{
		{"space in name", map[string]any{"headers": map[string]any{"X Team": "dr"}}, `header name "X Team" is not an HTTP token`},
		{"colon in name", map[string]any{"headers": map[string]any{"X-Team:": "dr"}}, `header name "X-Team:" is not an HTTP token`},
		{"CRLF in name", map[string]any{"headers": map[string]any{"X-A\r\nX-Injected": "1"}}, `header name "X-A\r\nX-Injected" is not an HTTP token`},
		{"empty name", map[string]any{"headers": map[string]any{"": "x"}}, `header name "" is not an HTTP token`},
		{"non-ASCII name", map[string]any{"headers": map[string]any{"X-Équipe": "dr"}}, `header name "X-Équipe" is not an HTTP token`},
		{"CRLF in value", map[string]any{"headers": map[string]any{"X-Team": "dr\r\nX-Injected: 1"}}, `header X-Team: value "dr\r\nX-Injected: 1" has a control character`},
		{"LF in value", map[string]any{"headers": map[string]any{"X-Team": "dr\nx"}}, `header X-Team: value "dr\nx" has a control character`},
		{"NUL in value", map[string]any{"headers": map[string]any{"X-Team": "dr\x00"}}, `header X-Team: value "dr\x00" has a control character`},
		{"framing header", map[string]any{"headers": map[string]any{"Content-Length": "0"}}, "header Content-Length is set by the HTTP client"},
		{"host header", map[string]any{"headers": map[string]any{"host": "evil.example"}}, "header host is set by the HTTP client"},
		{"proxy credentials", map[string]any{"headers": map[string]any{"Proxy-Authorization": "Basic eDp5"}}, "use auth"},
		{"method with a space", map[string]any{"method": "GET / HTTP/1.1\r\nX-Injected: 1\r\n"}, `method "GET / HTTP/1.1\r\nX-INJECTED: 1\r\n" is not an HTTP token`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			with := map[string]any{"url": srv.URL}
			for k, v := range tc.with {
				with[k] = v
			}
			for what, do := range map[string]func() error{
				"Apply":   func() error { _, err := call.Apply(context.Background(), callRequest("r1", "x", with)); return err },
				"Observe": func() error { _, err := call.Observe(context.Background(), callRequest("r1", "x", with)); return err },
			} {
				err := do()
				if err == nil || !activities.IsPermanent(err) {
					t.Fatalf("%s: %v; want a permanent error", what, err)
				}
				if !strings.Contains(err.Error(), tc.want) {
					t.Errorf("%s error %q does not contain %q", what, err, tc.want)
				}
				if strings.ContainsAny(err.Error(), "\r\n\x00") {
					t.Errorf("%s error %q holds a raw control character", what, err)
				}
			}
		})
	}
	if n := hits.Load(); n != 0 {
		t.Fatalf("refused calls reached the endpoint %d times", n)
	}
	// A well-formed header goes out as given.
	got := make(chan string, 1)
	ok := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) { got <- r.Header.Get("X-Team") }))
	t.Cleanup(ok.Close)
	if _, err := call.Apply(context.Background(), callRequest("r1", "x", map[string]any{"url": ok.URL, "headers": map[string]any{"x-team": "dr\tops é"}})); err != nil {
		t.Fatal(err)
	}
	if v := <-got; v != "dr\tops é" {
		t.Fatalf("X-Team arrived as %q", v)
	}
}

// TestCheckBoundsAnsweredValues: a JSON field the gate compares comes from
// the endpoint; its value reaches the gate's error bounded.
func TestCheckBoundsAnsweredValues(t *testing.T) {
	srv := bodyServer(t, `{"status":"`+strings.Repeat("degraded ", 50000)+`"}`)
	_, err := (&web.Check{Breakers: &web.Breakers{}}).Apply(context.Background(), request(map[string]any{
		"url": srv.URL, "json_field": "status", "json_value": "ok", "interval": "1h", "deadline": "300ms",
	}))
	if err == nil || !strings.Contains(err.Error(), `status is "degraded degraded`) || len(err.Error()) > 1024 {
		t.Fatalf("gate error (%d bytes) %.300q: want the value, bounded", len(fmt.Sprint(err)), err)
	}
}

// TestCallRedactsHeadersNamedLikeCredentials: a header a runbook sets
// whose name says it holds a credential is treated as one, even echoed
// bare.
func TestCallRedactsHeadersNamedLikeCredentials(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "key %s, team %s", r.Header.Get("X-Api-Key"), r.Header.Get("X-Team"))
	}))
	t.Cleanup(srv.Close)
	res, err := (&web.Call{Breakers: &web.Breakers{}}).Apply(context.Background(), callRequest("r1", "x", map[string]any{
		"url": srv.URL, "headers": map[string]any{"X-Api-Key": "k3y-abcdef", "X-Team": "dr"},
	}))
	if err != nil {
		t.Fatal(err)
	}
	if got := res.Outputs["body"]; got != "key [redacted], team dr" {
		t.Fatalf("outputs.body = %q", got)
	}
}
