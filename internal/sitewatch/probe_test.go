package sitewatch_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/drctl/drctl/internal/pglab"
	"github.com/drctl/drctl/internal/sitewatch"
	"github.com/drctl/drctl/internal/testwait"
)

var dial = (&net.Dialer{}).DialContext

// probe runs one probe bounded by a short timeout, as a round does.
func probe(t *testing.T, url string) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	return sitewatch.Probe(ctx, dial, url)
}

// listen returns a loopback listener that serves each connection with
// serve until the test ends.
func listen(t *testing.T, serve func(net.Conn)) net.Listener {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go serve(c)
		}
	}()
	return l
}

// closedPort is a loopback port nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func TestProbeTCP(t *testing.T) {
	l := listen(t, func(c net.Conn) { c.Close() })
	if err := probe(t, "tcp://"+l.Addr().String()); err != nil {
		t.Fatalf("listening port: %v", err)
	}
	if err := probe(t, "tcp://"+closedPort(t)); err == nil || !strings.Contains(err.Error(), "refused") {
		t.Fatalf("closed port: %v", err)
	}
}

// TestProbePostgresAnswers: a server answering the SSLRequest with 'N' (no
// TLS) or 'S' is alive; anything else, or silence, is not.
func TestProbePostgresAnswers(t *testing.T) {
	answer := func(b byte) net.Listener {
		return listen(t, func(c net.Conn) {
			defer c.Close()
			buf := make([]byte, 8)
			if _, err := c.Read(buf); err == nil && string(buf) == "\x00\x00\x00\x08\x04\xd2\x16\x2f" {
				c.Write([]byte{b})
			}
		})
	}
	for _, b := range []byte{'N', 'S'} {
		if err := probe(t, "postgres://"+answer(b).Addr().String()); err != nil {
			t.Errorf("answer %q: %v", b, err)
		}
	}
	if err := probe(t, "postgres://"+answer('H').Addr().String()); err == nil || !strings.Contains(err.Error(), "not a PostgreSQL server") {
		t.Errorf("answer 'H': %v", err)
	}
	// A listener that accepts and never answers (a hung server, or a
	// blackholed path behind a proxy) fails within the probe's bound.
	silent := listen(t, func(c net.Conn) { time.Sleep(5 * time.Second); c.Close() })
	start := time.Now()
	if err := probe(t, "postgres://"+silent.Addr().String()); err == nil {
		t.Error("a silent server passed")
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("the silent server held the probe %s; its bound is 500ms", took)
	}
	if err := probe(t, "postgres://"+closedPort(t)); err == nil {
		t.Error("a closed port passed")
	}
}

// TestProbePostgresReal: a real PostgreSQL 15 answers the SSLRequest with
// no user or password; stopped, it fails.
func TestProbePostgresReal(t *testing.T) {
	ctx := testwait.Context(t)
	pair, err := pglab.NewPair(ctx, pglab.Options{})
	if errors.Is(err, pglab.ErrNotInstalled) && os.Getenv("DRCTL_CI") == "" {
		t.Skip("PostgreSQL 15 is needed (apt-get install postgresql-15); CI sets DRCTL_CI=1 and fails instead: ", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pair.Close() })
	url := fmt.Sprintf("postgres://%s:%d", pair.Primary.Host, pair.Primary.Port)
	if err := probe(t, url); err != nil {
		t.Fatalf("running server: %v", err)
	}
	if err := pair.Primary.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if err := probe(t, url); err == nil {
		t.Fatal("stopped server passed")
	}
}

func TestProbeHTTP(t *testing.T) {
	var sawAuth bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sawAuth = sawAuth || r.Header.Get("Authorization") != ""
		switch r.URL.Path {
		case "/health":
			fmt.Fprint(w, strings.Repeat("ok", 1<<20)) // a large body is not read whole
		case "/redirect":
			http.Redirect(w, r, "/health", http.StatusFound)
		case "/login":
			http.Redirect(w, r, "/sso?token=secret#secret", http.StatusFound)
		default:
			http.Error(w, "down", http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	if err := probe(t, srv.URL+"/health"); err != nil {
		t.Errorf("healthy: %v", err)
	}
	if err := probe(t, srv.URL+"/sick"); err == nil || !strings.Contains(err.Error(), "503") {
		t.Errorf("503: %v", err)
	}
	if err := probe(t, srv.URL+"/redirect"); err == nil || !strings.Contains(err.Error(), "redirect to /health not followed") {
		t.Errorf("redirect: %v", err)
	}
	if err := probe(t, srv.URL+"/login"); err == nil || !strings.Contains(err.Error(), "redirect to /sso not followed") || strings.Contains(err.Error(), "secret") {
		t.Errorf("redirect with a token: %v; want it named without its query", err)
	}
	if err := probe(t, "http://"+closedPort(t)+"/health"); err == nil {
		t.Error("closed port passed")
	}
	if sawAuth {
		t.Error("a probe sent credentials")
	}
	tls := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer tls.Close()
	if err := probe(t, tls.URL+"/health"); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("https with an untrusted certificate: %v", err)
	}
}

func TestProbeRefusesBadURLs(t *testing.T) {
	for url, want := range map[string]string{
		"postgres://drctl:secret@10.0.0.1:5432":  "has a user or password",
		"ftp://10.0.0.1:21":                      `scheme "ftp"`,
		"tcp://10.0.0.1":                         "host:port",
		"tcp://10.0.0.1:99999":                   "port",
		"postgres://10.0.0.1:5432/appdb":         "no path",
		"ftp://drctl:secret@10.0.0.1:21":         "has a user or password",
		"http://drctl:secret@[::1":               "not a URL",
		"http://10.0.0.1:80/health?token=secret": "has a query or fragment",
		"https://10.0.0.1:443/health#secret":     "has a query or fragment",
		"tcp://10.0.0.1:5432?secret":             "has a query or fragment",
	} {
		err := probe(t, url)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v; want %q", url, err, want)
		}
		if err != nil && strings.Contains(err.Error(), "secret") {
			t.Errorf("%s: the error shows the password: %v", url, err)
		}
	}
}

// TestProbeUsesDial: every probe goes through the watcher's Dial, so a
// broken Dial fails them all.
func TestProbeUsesDial(t *testing.T) {
	l := listen(t, func(c net.Conn) { c.Close() })
	broken := func(context.Context, string, string) (net.Conn, error) {
		return nil, errors.New("network unreachable (test)")
	}
	for _, u := range []string{"tcp://", "postgres://", "http://"} {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := sitewatch.Probe(ctx, broken, u+l.Addr().String())
		cancel()
		if err == nil || !strings.Contains(err.Error(), "network unreachable (test)") {
			t.Errorf("%s with a broken dial: %v", u, err)
		}
	}
}
