package webhook_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/drctl/drctl/activities"
	"github.com/drctl/drctl/activities/webhook"
)

func TestPostIsSignedAndVerifiable(t *testing.T) {
	secret := []byte("s3cret")
	var got activities.WebhookEvent
	var verr error
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		verr = webhook.Verify(secret, r.Header, body, time.Now(), 5*time.Minute)
		_ = json.Unmarshal(body, &got)
		if webhook.Verify([]byte("other"), r.Header, body, time.Now(), 5*time.Minute) == nil {
			t.Error("a wrong secret verified")
		}
		if webhook.Verify(secret, r.Header, append(body, ' '), time.Now(), 5*time.Minute) == nil {
			t.Error("a changed body verified")
		}
		if webhook.Verify(secret, r.Header, body, time.Now().Add(time.Hour), 5*time.Minute) == nil {
			t.Error("an old request verified")
		}
	}))
	defer srv.Close()
	ev := activities.WebhookEvent{Kind: activities.KindReadinessChanged, Runbook: "site-failover", State: "not_ready", Evaluation: "e1",
		Failing: []activities.WebhookCheck{{Name: "standby-streaming:db-west", Reason: "standby not streaming"}}}
	p := &webhook.Poster{URL: srv.URL, Secret: secret}
	if err := p.Post(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	if verr != nil || got.Runbook != "site-failover" || len(got.Failing) != 1 {
		t.Fatalf("verify %v, got %+v", verr, got)
	}
}

func TestPostErrors(t *testing.T) {
	for _, tc := range []struct {
		status    int
		permanent bool
	}{{400, true}, {404, true}, {429, false}, {503, false}} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(tc.status) }))
		err := (&webhook.Poster{URL: srv.URL, Secret: []byte("x")}).Post(context.Background(), activities.WebhookEvent{})
		srv.Close()
		if err == nil || activities.IsPermanent(err) != tc.permanent || !strings.Contains(err.Error(), "webhook answered") {
			t.Errorf("%d: err %v, permanent %v", tc.status, err, activities.IsPermanent(err))
		}
	}
	if err := (&webhook.Poster{}).Post(context.Background(), activities.WebhookEvent{}); err != nil {
		t.Errorf("unconfigured poster: %v", err)
	}
}

func TestCheckURL(t *testing.T) {
	for url, ok := range map[string]bool{
		"https://hooks.example.com/x": true, "http://127.0.0.1:8080/h": true, "http://localhost/h": true,
		"http://hooks.example.com/x": false, "ftp://x/y": false, "https://user:pw@x/": false, "/relative": false,
	} {
		if err := webhook.CheckURL(url); (err == nil) != ok {
			t.Errorf("%s: %v", url, err)
		}
	}
}

// TestErrorsNameTheHostOnly: a webhook URL may hold a token in its path or
// query; a failed post names only the host.
func TestErrorsNameTheHostOnly(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	addr := srv.Listener.Addr().String()
	srv.Close() // nothing answers there now
	err := (&webhook.Poster{URL: "http://" + addr + "/hooks/T0KEN-abc?key=S3CRET", Secret: []byte("x")}).Post(context.Background(), activities.WebhookEvent{})
	if err == nil || strings.Contains(err.Error(), "T0KEN") || strings.Contains(err.Error(), "S3CRET") || !strings.Contains(err.Error(), addr) {
		t.Fatalf("error %v", err)
	}
}
