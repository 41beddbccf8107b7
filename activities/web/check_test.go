package web_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/drctl/drctl/activities"
	"github.com/drctl/drctl/activities/web"
)

// statusServer answers the i-th request (0-based) with statuses[i], and
// every later one with the last status. It counts the requests it answers.
type statusServer struct {
	*httptest.Server
	requests atomic.Int64
}

func newStatusServer(t *testing.T, statuses ...int) *statusServer {
	t.Helper()
	s := &statusServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		i := int(s.requests.Add(1)) - 1
		w.WriteHeader(statuses[min(i, len(statuses)-1)])
	}))
	t.Cleanup(s.Close)
	return s
}

func request(with map[string]any) activities.Request {
	return activities.Request{Step: "check", Action: web.Name, With: with}
}

func TestApplyPasses(t *testing.T) {
	const (
		ok  = http.StatusOK
		bad = http.StatusServiceUnavailable
	)
	tests := []struct {
		name      string
		statuses  []int
		with      map[string]any
		wantTries int
	}{
		{"healthy at once", []int{ok}, nil, 1},
		{"after two failures", []int{bad, bad, ok}, nil, 3},
		{"three in a row after failures", []int{bad, bad, ok}, map[string]any{"successes": "3"}, 5},
		{"a failure resets the streak", []int{ok, bad, ok, ok}, map[string]any{"successes": 2}, 4},
		{"other expected status", []int{ok, http.StatusTeapot}, map[string]any{"expect_status": "418"}, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := newStatusServer(t, tc.statuses...)
			with := map[string]any{"url": srv.URL + "/healthz", "interval": "1ms", "deadline": "10s"}
			for k, v := range tc.with {
				with[k] = v
			}
			res, err := (&web.Check{}).Apply(context.Background(), request(with))
			if err != nil {
				t.Fatalf("Apply: %v", err)
			}
			if got := srv.requests.Load(); got != int64(tc.wantTries) {
				t.Errorf("server answered %d requests, want %d", got, tc.wantTries)
			}
			if res.Outputs["tries"] != tc.wantTries {
				t.Errorf("outputs.tries = %v, want %d", res.Outputs["tries"], tc.wantTries)
			}
			wantStatus := tc.statuses[len(tc.statuses)-1]
			if res.Outputs["status"] != wantStatus {
				t.Errorf("outputs.status = %v, want %d", res.Outputs["status"], wantStatus)
			}
			if res.Changed {
				t.Error("Changed = true; a health check changes nothing")
			}
			if !strings.Contains(res.Summary, srv.URL) {
				t.Errorf("summary %q does not name the URL", res.Summary)
			}
		})
	}
}

// TestApplyDeadlineRetries: many tries, then a retryable error naming the URL.
func TestApplyDeadlineRetries(t *testing.T) {
	srv := newStatusServer(t, http.StatusServiceUnavailable)
	url := srv.URL + "/healthz"
	_, err := (&web.Check{}).Apply(context.Background(), request(map[string]any{
		"url": url, "interval": "20ms", "deadline": "300ms",
	}))
	if err == nil {
		t.Fatal("Apply passed against a server that always answers 503")
	}
	if activities.IsPermanent(err) {
		t.Errorf("error %q is permanent; the service may recover, so it must be retryable", err)
	}
	for _, want := range []string{url, "not healthy within 300ms"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
	if n := srv.requests.Load(); n < 2 {
		t.Errorf("server answered %d requests in 300ms at a 20ms interval, want several", n)
	}
}

// TestApplyDeadlineNamesLastStatus uses an interval longer than the
// deadline, so the deadline always ends during the pause after an answer
// (never during a request) and the last status is known.
func TestApplyDeadlineNamesLastStatus(t *testing.T) {
	srv := newStatusServer(t, http.StatusBadGateway)
	url := srv.URL + "/healthz"
	_, err := (&web.Check{}).Apply(context.Background(), request(map[string]any{
		"url": url, "interval": "1h", "deadline": "300ms",
	}))
	if err == nil {
		t.Fatal("Apply passed against a server that always answers 502")
	}
	if activities.IsPermanent(err) {
		t.Errorf("error %q is permanent, want retryable", err)
	}
	for _, want := range []string{url, "1 tries", ": 502 (want 200))"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
}

// TestApplyAnswersBeforeTheStepTimeout: a step timeout shorter than the
// check's deadline (demo.yaml's preflight: timeout 30s, deadline 1m) ends
// the attempt; the check gives up a moment before it with the endpoint's
// last answer, so the operator sees the 503 rather than a bare "timed out".
func TestApplyAnswersBeforeTheStepTimeout(t *testing.T) {
	srv := newStatusServer(t, http.StatusServiceUnavailable)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second) // the attempt's timeout
	defer cancel()
	_, err := (&web.Check{}).Apply(ctx, request(map[string]any{"url": srv.URL, "interval": "50ms", "deadline": "1m"}))
	// The check's own error, whenever it came: a busy machine may have
	// used up the attempt's time too, but the answer is the check's.
	if err == nil || !strings.Contains(err.Error(), ": 503 (want 200)") || !strings.Contains(err.Error(), "not healthy within ") || strings.Contains(err.Error(), "within 1m0s") {
		t.Errorf("error %v does not name the 503 and a limit below the step's timeout", err)
	}
}

func TestApplyStopsWhenCancelled(t *testing.T) {
	srv := newStatusServer(t, http.StatusServiceUnavailable)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := (&web.Check{}).Apply(ctx, request(map[string]any{"url": srv.URL, "interval": "1h", "deadline": "1h"}))
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Apply with a cancelled context = %v, want context.Canceled", err)
	}
}

func TestRedirectsAreNotFollowed(t *testing.T) {
	var followed atomic.Int64
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/elsewhere", http.StatusFound)
	})
	mux.HandleFunc("/elsewhere", func(w http.ResponseWriter, _ *http.Request) {
		followed.Add(1)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	url := srv.URL + "/healthz"
	check := &web.Check{}

	res, err := check.Apply(context.Background(), request(map[string]any{"url": url, "expect_status": 302, "deadline": "10s"}))
	if err != nil {
		t.Fatalf("Apply expecting 302: %v", err)
	}
	if res.Outputs["status"] != http.StatusFound {
		t.Errorf("status %v, want 302", res.Outputs["status"])
	}

	_, err = check.Apply(context.Background(), request(map[string]any{"url": url, "interval": "1h", "deadline": "200ms"}))
	if err == nil || !strings.Contains(err.Error(), ": 302 (want 200)") {
		t.Errorf("Apply expecting 200 from a redirect = %v, want a failure naming status 302", err)
	}

	obs, err := check.Observe(context.Background(), request(map[string]any{"url": url}))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(obs.Current, ": 302 (want 200)") {
		t.Errorf("Observe = %q, want it to report 302", obs.Current)
	}
	if n := followed.Load(); n != 0 {
		t.Errorf("the redirect target was requested %d times", n)
	}
}

func TestObserve(t *testing.T) {
	srv := newStatusServer(t, http.StatusServiceUnavailable, http.StatusOK)
	url := srv.URL + "/healthz"
	obs, err := (&web.Check{}).Observe(context.Background(), request(map[string]any{"url": url, "successes": 3}))
	if err != nil {
		t.Fatalf("Observe: %v", err)
	}
	if want := "GET " + url + ": 503 (want 200)"; obs.Current != want {
		t.Errorf("Current = %q, want %q", obs.Current, want)
	}
	if len(obs.Changes) != 0 {
		t.Errorf("Changes = %v; a health check changes nothing", obs.Changes)
	}
	if n := srv.requests.Load(); n != 1 {
		t.Errorf("Observe made %d requests, want 1", n)
	}
}

// TestObserveUnreachable: a service that does not answer is an observation,
// not an error; plan shows it.
func TestObserveUnreachable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL + "/healthz"
	srv.Close()
	obs, err := (&web.Check{}).Observe(context.Background(), request(map[string]any{"url": url}))
	if err != nil {
		t.Fatalf("Observe: %v", err)
	}
	if !strings.HasPrefix(obs.Current, "GET "+url+": ") || strings.Contains(obs.Current, "want 200") {
		t.Errorf("Current = %q, want the request error", obs.Current)
	}
}

func TestBadInputIsPermanent(t *testing.T) {
	tests := []struct {
		name string
		with map[string]any
		say  string
	}{
		{"no url", map[string]any{}, `needs url or urls`},
		{"credentials in the url", map[string]any{"url": "http://user:hunter2@127.0.0.1:1/"}, `carries credentials`},
		{"json field without value", map[string]any{"url": "http://127.0.0.1:1", "json_field": "status"}, `json_field and json_value go together`},
		{"not a url", map[string]any{"url": "not a url"}, `url "not a url" is not an http(s) URL`},
		{"other scheme", map[string]any{"url": "ftp://example.com/x"}, `url "ftp://example.com/x"`},
		{"no host", map[string]any{"url": "http://"}, `url "http://"`},
		{"unparsable", map[string]any{"url": "http://[::1"}, `url "http://[::1"`},
		{"bad successes", map[string]any{"url": "http://127.0.0.1:1", "successes": "three"}, `input "successes"`},
		{"bad deadline", map[string]any{"url": "http://127.0.0.1:1", "deadline": "soon"}, `input "deadline"`},
		{"unknown input", map[string]any{"url": "http://127.0.0.1:1", "method": "POST"}, `unknown input "method"`},
	}
	check := &web.Check{}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, applyErr := check.Apply(context.Background(), request(tc.with))
			_, observeErr := check.Observe(context.Background(), request(tc.with))
			for what, err := range map[string]error{"Apply": applyErr, "Observe": observeErr} {
				if err == nil {
					t.Errorf("%s succeeded, want a permanent error", what)
					continue
				}
				if !activities.IsPermanent(err) {
					t.Errorf("%s error %q is retryable, want permanent", what, err)
				}
				if !strings.Contains(err.Error(), tc.say) {
					t.Errorf("%s error %q does not contain %q", what, err, tc.say)
				}
			}
		})
	}
}

func TestSpecDeclaresEveryInput(t *testing.T) {
	spec := (&web.Check{}).Spec()
	if spec.Name != web.Name {
		t.Errorf("spec name %q, want %q", spec.Name, web.Name)
	}
	for _, name := range []string{"url", "expect_status", "successes", "interval", "timeout", "deadline"} {
		if _, ok := spec.Input(name); !ok {
			t.Errorf("spec lacks input %q", name)
		}
	}
	if in, _ := spec.Input("urls"); in.Type != "list" {
		t.Error("urls is not a list input")
	}
}
