// Package webhook posts readiness changes to a generic HTTP endpoint: one
// JSON document (activities.WebhookEvent) per change, signed the way Slack
// signs the requests it sends, so a receiver can check it came from drctl
// and is fresh:
//
//	X-Drctl-Request-Timestamp: <unix seconds>
//	X-Drctl-Signature: v0=<hex HMAC-SHA256(secret, "v0:" + timestamp + ":" + body)>
//	X-Drctl-Event-Id: <the evaluation's workflow ID> (the same on a retry)
//
// The URL must be https, or http to a loopback address. The secret never
// appears in an error, a log line or the event.
package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/drctl/drctl/activities"
)

// Header names of a signed request.
const (
	HeaderTimestamp = "X-Drctl-Request-Timestamp"
	HeaderSignature = "X-Drctl-Signature"
	HeaderEventID   = "X-Drctl-Event-Id"
)

// Poster posts events; the zero value (no URL) posts nothing.
type Poster struct {
	URL    string
	Secret []byte
	// Client defaults to one with a 10 s timeout that follows no redirect.
	Client *http.Client
}

// CheckURL accepts https URLs and http URLs to a loopback address.
func CheckURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.User != nil {
		return fmt.Errorf("webhook URL must be an absolute http(s) URL without credentials")
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if ip := net.ParseIP(u.Hostname()); (ip != nil && ip.IsLoopback()) || u.Hostname() == "localhost" {
			return nil
		}
	}
	return fmt.Errorf("webhook URL must use https (http only to a loopback address), not %s://%s", u.Scheme, u.Hostname())
}

// Sign is the signature of body sent at ts.
func Sign(secret []byte, ts string, body []byte) string {
	m := hmac.New(sha256.New, secret)
	fmt.Fprintf(m, "v0:%s:", ts)
	m.Write(body)
	return "v0=" + hex.EncodeToString(m.Sum(nil))
}

// Verify checks a received request's signature and that its timestamp is
// within maxAge of now (a receiver's side; drctl's tests use it).
func Verify(secret []byte, header http.Header, body []byte, now time.Time, maxAge time.Duration) error {
	ts := header.Get(HeaderTimestamp)
	n, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return errors.New("no valid timestamp")
	}
	if d := now.Sub(time.Unix(n, 0)); d > maxAge || d < -maxAge {
		return fmt.Errorf("timestamp is %s away from now", d.Round(time.Second))
	}
	if !hmac.Equal([]byte(Sign(secret, ts, body)), []byte(header.Get(HeaderSignature))) {
		return errors.New("signature does not match")
	}
	return nil
}

// Deliver is Post as an activity (its result is nothing).
func (p *Poster) Deliver(ctx context.Context, ev activities.WebhookEvent) (struct{}, error) {
	return struct{}{}, p.Post(ctx, ev)
}

// Post sends ev; a 2xx answer is success. 4xx answers (but 408 and 429)
// are permanent: retrying the same request cannot help.
func (p *Poster) Post(ctx context.Context, ev activities.WebhookEvent) error {
	if p == nil || p.URL == "" {
		return nil
	}
	body, err := json.Marshal(ev)
	if err != nil {
		return activities.Permanent(err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.URL, bytes.NewReader(body))
	if err != nil {
		return activities.Permanentf("webhook: %v", err)
	}
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "drctl")
	req.Header.Set(HeaderTimestamp, ts)
	req.Header.Set(HeaderSignature, Sign(p.Secret, ts, body))
	req.Header.Set(HeaderEventID, ev.Evaluation)
	c := p.Client
	if c == nil {
		c = &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	resp, err := c.Do(req)
	if err != nil {
		// url.Error prints the whole URL, which may carry a token in its
		// path or query: name the host only.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("webhook POST to %s: %v", req.URL.Host, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	switch {
	case resp.StatusCode/100 == 2:
		return nil
	case resp.StatusCode/100 == 4 && resp.StatusCode != http.StatusRequestTimeout && resp.StatusCode != http.StatusTooManyRequests:
		return activities.Permanentf("webhook answered %s", resp.Status)
	}
	return fmt.Errorf("webhook answered %s", resp.Status)
}
