package web_test

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/drctl/drctl/activities/web"
)

// switchable answers every request with its current status and body; "%d"
// in the body becomes the request's number, so two answers always differ.
type switchable struct {
	*httptest.Server
	mu       sync.Mutex
	status   int
	body     string
	requests atomic.Int64
}

func newSwitchable(t *testing.T, status int, body string) *switchable {
	t.Helper()
	s := &switchable{status: status, body: body}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		n := s.requests.Add(1)
		s.mu.Lock()
		status, body := s.status, s.body
		s.mu.Unlock()
		w.WriteHeader(status)
		fmt.Fprint(w, strings.ReplaceAll(body, "%d", fmt.Sprint(n)))
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *switchable) answer(status int, body string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.status, s.body = status, body
}

// TestObserveState: http.check's Observe reports each URL's health as one
// try sees it, the same for two tries of an unchanged endpoint (whatever
// else its answer holds), and a different fact once the endpoint changes.
func TestObserveState(t *testing.T) {
	tests := []struct {
		name   string
		status int
		body   string
		with   map[string]any
		change func(s *switchable)
		after  string
	}{
		{"status", http.StatusOK, "up %d", nil,
			func(s *switchable) { s.answer(http.StatusServiceUnavailable, "down %d") }, "unhealthy: 503"},
		{"expected status", http.StatusTeapot, "", map[string]any{"expect_status": 418},
			func(s *switchable) { s.answer(http.StatusOK, "") }, "unhealthy: 200"},
		{"body", http.StatusOK, "ok at request %d", map[string]any{"body_contains": "ok"},
			func(s *switchable) { s.answer(http.StatusOK, "degraded at request %d") }, `unhealthy: 200, body lacks "ok"`},
		{"json", http.StatusOK, `{"status":"ok","request":%d}`, map[string]any{"json_field": "status", "json_value": "ok"},
			func(s *switchable) { s.answer(http.StatusOK, `{"status":"degraded since request %d"}`) }, `unhealthy: 200, status is not "ok"`},
		{"not json", http.StatusOK, `{"status":"ok"}`, map[string]any{"json_field": "status", "json_value": "ok"},
			func(s *switchable) { s.answer(http.StatusOK, "<html>%d</html>") }, "unhealthy: 200, body is not JSON"},
		{"gone", http.StatusOK, "", nil,
			func(s *switchable) { s.Close() }, "unhealthy: no answer"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := newSwitchable(t, tc.status, tc.body)
			key := srv.URL + "/healthz health"
			with := map[string]any{"url": srv.URL + "/healthz", "successes": 5}
			maps.Copy(with, tc.with)
			check := &web.Check{Breakers: &web.Breakers{}}
			observe := func() map[string]string {
				t.Helper()
				obs, err := check.Observe(context.Background(), request(with))
				if err != nil {
					t.Fatal(err)
				}
				return obs.State
			}
			first, second := observe(), observe()
			if want := map[string]string{key: "healthy"}; !maps.Equal(first, want) {
				t.Fatalf("state %q, want %q", first, want)
			}
			if !maps.Equal(first, second) {
				t.Fatalf("state of an unchanged endpoint moved: %q, then %q", first, second)
			}
			if n := srv.requests.Load(); n != 2 {
				t.Fatalf("two Observes made %d requests, want one try each (successes is not waited for)", n)
			}
			tc.change(srv)
			after, again := observe(), observe()
			if want := map[string]string{key: tc.after}; !maps.Equal(after, want) {
				t.Fatalf("state after the change %q, want %q", after, want)
			}
			if !maps.Equal(after, again) {
				t.Fatalf("state of an unchanged (unhealthy) endpoint moved: %q, then %q", after, again)
			}
		})
	}
}

// TestObserveStateEveryURL: with several URLs, each is its own fact.
func TestObserveStateEveryURL(t *testing.T) {
	up := newSwitchable(t, http.StatusOK, "")
	down := newSwitchable(t, http.StatusBadGateway, "")
	obs, err := (&web.Check{Breakers: &web.Breakers{}}).Observe(context.Background(), request(map[string]any{"urls": []any{up.URL + "/a", down.URL + "/b"}}))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{up.URL + "/a health": "healthy", down.URL + "/b health": "unhealthy: 502"}
	if !maps.Equal(obs.State, want) {
		t.Fatalf("state %q, want %q", obs.State, want)
	}
}

// TestCallHasNoState: a call cannot be observed without making it.
func TestCallHasNoState(t *testing.T) {
	srv := newSwitchable(t, http.StatusOK, "")
	obs, err := (&web.Call{}).Observe(context.Background(), request(map[string]any{"url": srv.URL}))
	if err != nil || obs.State != nil || srv.requests.Load() != 0 {
		t.Fatalf("http.call Observe: %+v, %v, %d requests; want no state and nothing sent", obs, err, srv.requests.Load())
	}
}
