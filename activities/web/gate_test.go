package web_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/drctl/drctl/activities"
	"github.com/drctl/drctl/activities/web"
	"github.com/drctl/drctl/runbooks"
)

func bodyServer(t *testing.T, body string) *httptest.Server {
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, body) }))
	t.Cleanup(s.Close)
	return s
}

func TestCheckBodyAndJSONExpectations(t *testing.T) {
	healthy := bodyServer(t, `{"status":"ok","checks":{"db":{"primary":"west"}}}`)
	stale := bodyServer(t, `{"status":"ok","checks":{"db":{"primary":"east"}}}`)
	check := &web.Check{Breakers: &web.Breakers{}}
	for _, tc := range []struct {
		name string
		with map[string]any
		want string // "" = passes
	}{
		{"body contains", map[string]any{"url": healthy.URL, "body_contains": `"status":"ok"`}, ""},
		{"body lacks", map[string]any{"url": healthy.URL, "body_contains": "degraded"}, `body lacks "degraded"`},
		{"json field", map[string]any{"url": healthy.URL, "json_field": "checks.db.primary", "json_value": "west"}, ""},
		{"json field differs", map[string]any{"url": stale.URL, "json_field": "checks.db.primary", "json_value": "west"}, `checks.db.primary is "east" (want "west")`},
		{"json field missing", map[string]any{"url": healthy.URL, "json_field": "checks.cache", "json_value": "ok"}, "no field checks.cache"},
		{"all urls must pass", map[string]any{"urls": []any{healthy.URL, stale.URL}, "json_field": "checks.db.primary", "json_value": "west"}, stale.URL},
		{"several urls pass", map[string]any{"urls": []any{healthy.URL, healthy.URL + "/again"}, "body_contains": "ok"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			with := map[string]any{"interval": "1ms", "deadline": "100ms"}
			for k, v := range tc.with {
				with[k] = v
			}
			_, err := check.Apply(context.Background(), request(with))
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("want pass, got %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("got %v, want a failure containing %q", err, tc.want)
			}
		})
	}
}

// TestBreakerStopsHammeringADeadEndpoint: after Threshold consecutive
// failures no request reaches the endpoint until the breaker's open period
// ends, however often the gate asks.
func TestBreakerStopsHammeringADeadEndpoint(t *testing.T) {
	var hits atomic.Int64
	dead := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		hits.Add(1)
		w.WriteHeader(http.StatusBadGateway)
	}))
	defer dead.Close()
	breakers := &web.Breakers{Threshold: 3, OpenFor: time.Hour}
	check := &web.Check{Breakers: breakers}
	_, err := check.Apply(context.Background(), request(map[string]any{"url": dead.URL, "interval": "1ms", "deadline": "2s"}))
	if err == nil || !strings.Contains(err.Error(), "last: GET "+dead.URL+": 502 (want 200); then its circuit breaker stopped asking") {
		t.Fatalf("gate on a dead endpoint: %v; want a failure with the last real answer and the open circuit", err)
	}
	if n := hits.Load(); n != 3 {
		t.Fatalf("the dead endpoint was asked %d times, want exactly the threshold (3)", n)
	}
	// Another action sharing the breakers does not reach it either.
	if _, err := (&web.Call{Breakers: breakers}).Apply(context.Background(), request(map[string]any{"url": dead.URL})); err == nil || !strings.Contains(err.Error(), "circuit open for "+dead.URL+" after 3 consecutive failures") {
		t.Fatalf("http.call to the same endpoint: %v", err)
	}
	if n := hits.Load(); n != 3 {
		t.Fatalf("asked %d times after the breaker opened", n)
	}
	// A compensation is the way back: it goes out whatever the breaker says.
	undo := request(map[string]any{"url": dead.URL + "/undo"})
	undo.Compensating = true
	if _, err := (&web.Call{Breakers: breakers}).Apply(context.Background(), undo); err == nil || strings.Contains(err.Error(), "circuit open") || hits.Load() != 4 {
		t.Fatalf("compensation while the breaker is open: %v, %d requests", err, hits.Load())
	}
	// A step may tune its endpoint's breaker: 1 failure opens this one.
	var other atomic.Int64
	flaky := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { other.Add(1); w.WriteHeader(http.StatusBadGateway) }))
	defer flaky.Close()
	_, err = check.Apply(context.Background(), request(map[string]any{"url": flaky.URL, "interval": "1ms", "deadline": "2s", "breaker_failures": 1, "breaker_open_for": "10m"}))
	if err == nil || other.Load() != 1 || !strings.Contains(err.Error(), "then its circuit breaker stopped asking") {
		t.Fatalf("breaker_failures 1: %v, %d requests", err, other.Load())
	}
	if _, err := check.Apply(context.Background(), request(map[string]any{"url": flaky.URL, "breaker_failures": 1000})); err == nil || !activities.IsPermanent(err) || !strings.Contains(err.Error(), "breaker_failures 1000 is outside 1..100") {
		t.Fatalf("breaker_failures 1000: %v", err)
	}
}

// TestBreakerClosesWhenTheEndpointRecovers: the endpoint fails twice (the
// breaker opens), then recovers; after the open period one probe gets
// through and the gate passes.
func TestBreakerClosesWhenTheEndpointRecovers(t *testing.T) {
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if hits.Add(1) <= 2 {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	check := &web.Check{Breakers: &web.Breakers{Threshold: 2, OpenFor: 50 * time.Millisecond}}
	if _, err := check.Apply(context.Background(), request(map[string]any{"url": srv.URL, "interval": "5ms", "deadline": "5s", "successes": 2})); err != nil {
		t.Fatalf("gate after recovery: %v", err)
	}
	if n := hits.Load(); n != 4 {
		t.Fatalf("endpoint asked %d times, want 4 (two failures, nothing while open, two successes)", n)
	}
}

type recorded struct {
	mu     sync.Mutex
	keys   []string
	auth   []string
	bodies []string
}

func callServer(t *testing.T, statuses ...int) (*httptest.Server, *recorded) {
	rec := &recorded{}
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		rec.mu.Lock()
		i := len(rec.keys)
		rec.keys = append(rec.keys, r.Header.Get(web.IdempotencyHeader))
		rec.auth = append(rec.auth, r.Header.Get("Authorization"))
		rec.bodies = append(rec.bodies, r.Method+" "+string(b))
		rec.mu.Unlock()
		status := http.StatusOK
		if i < len(statuses) {
			status = statuses[i]
		}
		w.WriteHeader(status)
		fmt.Fprint(w, `{"accepted":true}`)
	}))
	t.Cleanup(s.Close)
	return s, rec
}

func callRequest(run, step string, with map[string]any) activities.Request {
	return activities.Request{Run: activities.Run{WorkflowID: "drctl-x", RunID: run}, Step: step, Action: web.CallName, With: with}
}

func TestCallSendsAStableIdempotencyKey(t *testing.T) {
	srv, rec := callServer(t, http.StatusServiceUnavailable)
	call := &web.Call{Breakers: &web.Breakers{}}
	with := map[string]any{"url": srv.URL + "/failover", "json": map[string]any{"site": "west"}}
	if _, err := call.Apply(context.Background(), callRequest("r1", "announce", with)); err == nil || activities.IsPermanent(err) {
		t.Fatalf("503: %v; want a retryable error", err)
	}
	res, err := call.Apply(context.Background(), callRequest("r1", "announce", with)) // the retry
	if err != nil || res.Outputs["status"] != 200 || res.Outputs["body"] != `{"accepted":true}` {
		t.Fatalf("retry: %+v %v", res, err)
	}
	if _, err := call.Apply(context.Background(), callRequest("r2", "announce", with)); err != nil {
		t.Fatal(err)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if rec.keys[0] == "" || rec.keys[0] != rec.keys[1] || rec.keys[1] == rec.keys[2] {
		t.Fatalf("keys %q: want the same key for a retry and another for another run", rec.keys)
	}
	var body map[string]any
	if err := json.Unmarshal([]byte(strings.TrimPrefix(rec.bodies[0], "POST ")), &body); err != nil || body["site"] != "west" {
		t.Fatalf("body %q", rec.bodies[0])
	}
}

func TestCallAuthAndRefusals(t *testing.T) {
	srv, rec := callServer(t, http.StatusForbidden)
	call := &web.Call{Breakers: &web.Breakers{}}
	t.Setenv("DRCTL_TEST_HOOK_TOKEN", "s3cret-token")
	req := callRequest("r1", "page", map[string]any{"url": srv.URL, "method": "put", "body": "hello", "auth": "pager"})
	req.Targets = []runbooks.Target{{Name: "pager", Kind: "http", Credentials: &runbooks.CredentialRef{Env: "DRCTL_TEST_HOOK_TOKEN"}}}
	_, err := call.Apply(context.Background(), req)
	if err == nil || !activities.IsPermanent(err) || !strings.Contains(err.Error(), "status 403") || strings.Contains(err.Error(), "s3cret-token") {
		t.Fatalf("403: %v; want a permanent error without the token", err)
	}
	rec.mu.Lock()
	if rec.auth[0] != "Bearer s3cret-token" || rec.bodies[0] != "PUT hello" {
		t.Fatalf("sent auth %q body %q", rec.auth[0], rec.bodies[0])
	}
	rec.mu.Unlock()
	for _, tc := range []struct {
		with map[string]any
		want string
	}{
		{map[string]any{"url": srv.URL, "headers": map[string]any{"Authorization": "Bearer x"}}, "use auth"},
		{map[string]any{"url": srv.URL, "json": map[string]any{}, "body": "x"}, "json or body"},
		{map[string]any{"url": srv.URL, "auth": "nobody"}, `no target "nobody"`},
		{map[string]any{"url": "ftp://x"}, "not an http(s) URL"},
	} {
		if _, err := call.Apply(context.Background(), callRequest("r1", "x", tc.with)); err == nil || !activities.IsPermanent(err) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v; want a permanent error containing %q", tc.with, err, tc.want)
		}
	}
	obs, err := call.Observe(context.Background(), callRequest("r1", "x", map[string]any{"url": srv.URL}))
	if err != nil || len(obs.Changes) != 1 || !strings.Contains(obs.Changes[0], "POST "+srv.URL) {
		t.Fatalf("observe: %+v %v", obs, err)
	}
}
