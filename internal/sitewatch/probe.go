package sitewatch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/drctl/drctl/internal/config"
)

// DialFunc opens a connection, as net.Dialer.DialContext does.
type DialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// maxBody is how much of an HTTP probe's answer is read (and discarded).
const maxBody = 4 << 10

// sslRequest is PostgreSQL's SSLRequest: length 8, code 80877103. Any
// server answers it with one byte, 'S' or 'N', before any authentication.
var sslRequest = []byte{0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f}

// Probe checks one probe URL (config.CheckProbe's rules) through dial,
// bounded by ctx. A nil error means the target answered as expected.
func Probe(ctx context.Context, dial DialFunc, raw string) error {
	u, err := config.CheckProbe(raw)
	if err != nil {
		return err
	}
	switch u.Scheme {
	case "tcp":
		c, err := dial(ctx, "tcp", u.Host)
		if err != nil {
			return err
		}
		return c.Close()
	case "postgres":
		return probePostgres(ctx, dial, u.Host)
	default:
		return probeHTTP(ctx, dial, u)
	}
}

// probePostgres sends an SSLRequest and expects 'S' or 'N': the server is
// up and speaking its protocol. No startup message is sent, so no user,
// database or password is ever needed, and nothing is logged as a failed
// login on the server.
func probePostgres(ctx context.Context, dial DialFunc, addr string) error {
	c, err := dial(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	if d, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(d)
	}
	stop := context.AfterFunc(ctx, func() { _ = c.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if _, err := c.Write(sslRequest); err != nil {
		return fmt.Errorf("postgres %s: send SSLRequest: %w", addr, err)
	}
	var b [1]byte
	if _, err := io.ReadFull(c, b[:]); err != nil {
		return fmt.Errorf("postgres %s: no answer to SSLRequest: %w", addr, err)
	}
	if b[0] != 'S' && b[0] != 'N' {
		return fmt.Errorf("postgres %s: answered %q to SSLRequest, not a PostgreSQL server", addr, b[0])
	}
	return nil
}

// probeHTTP GETs u and expects 2xx. No redirect is followed (a health
// endpoint that redirects is misconfigured, and following could leave the
// site), no proxy is used (it would answer for the site), no credential is
// sent, and at most maxBody bytes of the answer are read.
func probeHTTP(ctx context.Context, dial DialFunc, u *url.URL) error {
	client := &http.Client{
		Transport: &http.Transport{
			DialContext:       dial,
			Proxy:             nil,
			DisableKeepAlives: true, // every round reaches the site anew
			ForceAttemptHTTP2: false,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return fmt.Errorf("GET %s: %w", shown(u), unwrapURL(err))
	}
	req.Header.Set("User-Agent", "drctl-sitewatch")
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("GET %s: %w", shown(u), unwrapURL(err))
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxBody))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		if loc, err := url.Parse(resp.Header.Get("Location")); err == nil && loc.String() != "" {
			return fmt.Errorf("GET %s: %s (redirect to %s not followed)", shown(u), resp.Status, shown(loc))
		}
		return fmt.Errorf("GET %s: %s", shown(u), resp.Status)
	}
	return nil
}

// shown is u as a probe's error may show it: no password, query or
// fragment, any of which may hold a token (config refuses them in a
// probe; a redirect's Location may still carry them).
func shown(u *url.URL) string {
	c := *u
	c.User, c.RawQuery, c.ForceQuery, c.Fragment, c.RawFragment = nil, "", false, "", ""
	return c.String()
}

// unwrapURL drops the *url.Error around err, which repeats the whole URL.
func unwrapURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}
