package statuspage

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/drctl/drctl/internal/chromium"

	"golang.org/x/net/html"

	"github.com/drctl/drctl/internal/operator"
	"github.com/drctl/drctl/runbooks"
	"github.com/drctl/drctl/workflows"
)

var now = time.Date(2025, 3, 14, 9, 30, 0, 0, time.UTC)

// fake is a Source with fixed answers; a non-nil error field fails that
// read, and block makes ListWith wait for its context to end.
type fake struct {
	readiness []operator.ReadinessStatus
	slos      []operator.SLO
	drills    map[string][]operator.Drill
	runs      []operator.Summary

	readinessErr, drillsErr error
	block                   bool
}

func (f *fake) Readiness(context.Context, string) ([]operator.ReadinessStatus, error) {
	return f.readiness, f.readinessErr
}

func (f *fake) SLOs(context.Context, string) ([]operator.SLO, error) { return f.slos, nil }

func (f *fake) Drills(_ context.Context, runbook string, limit int) ([]operator.Drill, error) {
	if f.drillsErr != nil {
		return nil, f.drillsErr
	}
	ds := f.drills[runbook]
	return ds[:min(limit, len(ds))], nil
}

func (f *fake) ListWith(ctx context.Context, _ operator.ListFilter) ([]operator.Summary, error) {
	if f.block {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return f.runs, nil
}

const hostile = `<script>alert("x")</script> & "quotes" ` + "\u202e" + `txt.exe`

func sample() *fake {
	ms := func(v int64) *int64 { return &v }
	yes, no := true, false
	ended := now.Add(-26 * time.Hour)
	since := runbooks.Duration(26 * time.Hour)
	return &fake{
		readiness: []operator.ReadinessStatus{
			{ReadinessState: workflows.ReadinessState{Runbook: "db-switchover", Ready: true, Since: now.Add(-72 * time.Hour), Last: now.Add(-2 * time.Minute), Checks: 4, Every: runbooks.Duration(5 * time.Minute)}},
			{ReadinessState: workflows.ReadinessState{Runbook: "site-failover", Ready: false, Since: now.Add(-10 * time.Minute), Last: now.Add(-time.Minute), Checks: 6,
				Every:   runbooks.Duration(5 * time.Minute),
				Failing: []workflows.ReadinessCheck{{Name: "standby-streaming:db-west", Reason: "standby not streaming: " + hostile}}}},
			{ReadinessState: workflows.ReadinessState{Runbook: "stale-one", Ready: true, Since: now.Add(-48 * time.Hour), Last: now.Add(-time.Hour), Checks: 2, Every: runbooks.Duration(5 * time.Minute)}},
		},
		slos: []operator.SLO{{
			Runbook: "site-failover", Window: runbooks.Duration(30 * 24 * time.Hour),
			Readiness: &operator.ReadinessSLO{Objective: "99.5% over 30d", Availability: 99.9, Covered: runbooks.Duration(72 * time.Hour),
				Budget: runbooks.Duration(216 * time.Minute), BudgetLeft: runbooks.Duration(206 * time.Minute), Met: &yes},
			Drill: operator.DrillSLO{Every: runbooks.Duration(7 * 24 * time.Hour), LastPass: &ended, Since: &since, Met: &yes},
			Runs:  operator.Share{Total: 1, Met: 1}, Drills: operator.Share{Total: 3, Met: 2},
		}},
		drills: map[string][]operator.Drill{"site-failover": {
			{Runbook: "site-failover", Mode: workflows.ModeDrill, StartedAt: ended.Add(-3 * time.Minute), EndedAt: &ended, StartedBy: "alice", Outcome: workflows.StateSucceeded, RTOMs: ms(41_300), RPOMs: ms(0), Met: &yes},
			{Runbook: "site-failover", Mode: workflows.ModeDrill, StartedAt: ended.Add(-200 * time.Hour), StartedBy: "bob", Outcome: workflows.StateFailed, Met: &no},
		}},
		runs: []operator.Summary{
			{WorkflowID: "drctl-app-site", Status: workflows.Status{Runbook: "site-failover", Lock: "app-site", Mode: workflows.ModeFailover, StartedBy: "carol", StartedAt: now.Add(-4 * time.Minute),
				State: workflows.StateRunning, Waiting: []string{"approve-promotion"}, Done: 2, Total: 8}},
			{WorkflowID: "drctl-old", Closed: true, Status: workflows.Status{Runbook: "old-one", Lock: "old", State: workflows.StateSucceeded, StartedAt: now.Add(-time.Hour)}},
		},
	}
}

func get(t *testing.T, h http.Handler, method, path string) (*http.Response, string) {
	t.Helper()
	return getAt(t, h, method, path, "127.0.0.1:8090")
}

func getAt(t *testing.T, h http.Handler, method, path, host string) (*http.Response, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	r := httptest.NewRequest(method, path, nil)
	r.Host = host
	h.ServeHTTP(rec, r)
	res := rec.Result()
	b, _ := io.ReadAll(res.Body)
	return res, string(b)
}

// TestOnlyLoopbackNamesAreAnswered: a page on the internet that points its
// own name at 127.0.0.1 (DNS rebinding) gets nothing through an operator's
// browser; loopback names are answered, and any host with AnyHost (--public).
func TestOnlyLoopbackNamesAreAnswered(t *testing.T) {
	h := New(sample(), Options{})
	for host, want := range map[string]int{"attacker.example": 421, "attacker.example:8090": 421, "localhost:8090": 200, "127.0.0.1": 200, "[::1]:8090": 200} {
		if res, _ := getAt(t, h, http.MethodGet, "/", host); res.StatusCode != want {
			t.Errorf("Host %s: %d, want %d", host, res.StatusCode, want)
		}
	}
	if res, _ := getAt(t, New(sample(), Options{AnyHost: true}), http.MethodGet, "/", "status.example.com"); res.StatusCode != 200 {
		t.Errorf("AnyHost: %d", res.StatusCode)
	}
}

func parse(t *testing.T, body string) *html.Node {
	t.Helper()
	doc, err := html.Parse(strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

// TestPageShowsWhatTemporalHolds: readiness with the failing check and its
// reason, the SLO row, the drills, the run in progress (not the ended one)
// and the gate with the command that approves it; hostile text stays text.
func TestPageShowsWhatTemporalHolds(t *testing.T) {
	res, body := get(t, New(sample(), Options{Now: func() time.Time { return now }}), http.MethodGet, "/")
	if res.StatusCode != http.StatusOK {
		t.Fatalf("status %d:\n%s", res.StatusCode, body)
	}
	if csp := res.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || strings.Contains(csp, "script-src") {
		t.Errorf("Content-Security-Policy %q must forbid scripts (default-src 'none', no script-src)", csp)
	}
	if ct := res.Header.Get("Content-Type"); ct != "text/html; charset=utf-8" {
		t.Errorf("Content-Type %q", ct)
	}
	doc := parse(t, body)
	if s := chromium.FindAll(doc, func(n *html.Node) bool { return n.Data == "script" }); len(s) > 0 {
		t.Fatalf("the page has %d script elements; the hostile reason was not escaped:\n%s", len(s), body)
	}
	if strings.ContainsRune(body, '\u202e') {
		t.Error("a bidirectional override reached the page; it must be shown as \\u202e")
	}
	rows := func(class string) []string {
		var out []string
		for _, tbl := range chromium.FindAll(doc, func(n *html.Node) bool { return n.Data == "table" && chromium.Attr(n, "class") == class }) {
			for _, tr := range chromium.FindAll(tbl, func(n *html.Node) bool {
				return n.Data == "tr" && chromium.Attr(n, "data-runbook")+chromium.Attr(n, "data-lock") != ""
			}) {
				out = append(out, strings.Join(strings.Fields(chromium.Text(tr)), " "))
			}
		}
		return out
	}
	want := map[string][]string{
		"readiness": {
			"db-switchover READY 2025-03-11 09:30:00 UTC (3d0h ago) 4/4 passing 2m0s ago none",
			`site-failover NOT READY 2025-03-14 09:20:00 UTC (10m0s ago) 5/6 passing 1m0s ago standby-streaming:db-west: standby not streaming: <script>alert("x")</script> & "quotes" \u202etxt.exe`,
			"stale-one READY 2025-03-12 09:30:00 UTC (2d0h ago) 2/2 passing 1h0m0s ago stale: evaluated every 5m0s, last 1h0m0s ago none",
		},
		"slo":   {"site-failover 30d 99.900% of 3d0h 99.5% over 30d (met) 3h26m0s of 3h36m0s 26h0m0s ago 7d (met) 1/1 2/3"},
		"gates": {`app-site site-failover approve-promotion drctl approve app-site approve-promotion --reason "..."`},
		"runs":  {"app-site site-failover failover running 2025-03-14 09:26:00 UTC (4m0s ago) carol 2/8 approve-promotion"},
		"drills": {
			"site-failover 2025-03-13 07:27:00 UTC (26h3m0s ago) succeeded 41.3s 0s met alice",
			"site-failover 2025-03-04 23:30:00 UTC (9d10h ago) failed - - MISSED bob",
		},
	}
	for class, w := range want {
		if got := rows(class); strings.Join(got, "\n") != strings.Join(w, "\n") {
			t.Errorf("%s rows:\n got %q\nwant %q", class, got, w)
		}
	}
	if strings.Contains(body, "old-one") {
		t.Error("an ended run is shown as in progress")
	}
	if !strings.Contains(chromium.Text(doc), "Readiness: 2 of 3 ready") {
		t.Error("the readiness heading does not count the runbooks ready")
	}
	if !strings.Contains(body, `<meta http-equiv="refresh" content="30">`) {
		t.Error("the page does not reload itself every 30s")
	}
}

// TestOnlyGetAndHeadOnSlash: the page is read-only and lives at / alone.
func TestOnlyGetAndHeadOnSlash(t *testing.T) {
	h := New(sample(), Options{})
	for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodPatch, http.MethodOptions} {
		res, _ := get(t, h, m, "/")
		if res.StatusCode != http.StatusMethodNotAllowed || res.Header.Get("Allow") != "GET, HEAD" {
			t.Errorf("%s /: %d, Allow %q; want 405 with Allow: GET, HEAD", m, res.StatusCode, res.Header.Get("Allow"))
		}
	}
	for _, p := range []string{"/index.html", "/api", "/favicon.ico", "//"} {
		if res, _ := get(t, h, http.MethodGet, p); res.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", p, res.StatusCode)
		}
	}
	res, body := get(t, h, http.MethodHead, "/")
	if res.StatusCode != http.StatusOK || body != "" || res.Header.Get("Content-Length") == "0" {
		t.Errorf("HEAD /: %d, %d bytes of body, Content-Length %q; want 200, no body, the GET's length", res.StatusCode, len(body), res.Header.Get("Content-Length"))
	}
}

// TestReadFailureShowsABanner: a failed read is a 503 page that says what
// could not be read and still shows the rest.
func TestReadFailureShowsABanner(t *testing.T) {
	f := sample()
	f.readinessErr = errors.New("list readiness records: connection refused <b>")
	f.drillsErr = errors.New("list runs: unavailable")
	res, body := get(t, New(f, Options{}), http.MethodGet, "/")
	if res.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("status %d, want 503", res.StatusCode)
	}
	doc := parse(t, body)
	banners := chromium.FindAll(doc, func(n *html.Node) bool { return n.Data == "div" && chromium.Attr(n, "class") == "error" })
	if len(banners) != 1 {
		t.Fatalf("%d error banners:\n%s", len(banners), body)
	}
	text := chromium.Text(banners[0])
	for _, w := range []string{"readiness: list readiness records: connection refused <b>", "drills of db-switchover, site-failover, stale-one: list runs: unavailable"} {
		if !strings.Contains(text, w) {
			t.Errorf("the banner does not say %q: %s", w, text)
		}
	}
	if !strings.Contains(chromium.Text(doc), "drctl approve app-site approve-promotion") {
		t.Error("the gate that could be read is not shown beside the banner")
	}
}

// TestReadsAreBounded: a Temporal that does not answer gives a 503 page
// once the per-request timeout ends, saying so.
func TestReadsAreBounded(t *testing.T) {
	f := sample()
	f.block = true
	res, body := get(t, New(f, Options{Timeout: 50 * time.Millisecond}), http.MethodGet, "/")
	if res.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, "no answer from Temporal within 50ms") {
		t.Fatalf("status %d, want 503 naming the timeout:\n%s", res.StatusCode, body)
	}
}

func TestEmptyPageSaysHowToStart(t *testing.T) {
	res, body := get(t, New(&fake{}, Options{Refresh: -1}), http.MethodGet, "/")
	if res.StatusCode != http.StatusOK || !strings.Contains(body, "drctl readiness add FILE") || strings.Contains(body, `http-equiv="refresh"`) {
		t.Errorf("status %d; want 200, the hint to register readiness and no refresh:\n%s", res.StatusCode, body)
	}
}

func TestCheckListen(t *testing.T) {
	for _, c := range []struct {
		addr   string
		public bool
		ok     bool
	}{
		{"127.0.0.1:8090", false, true},
		{"127.0.0.2:0", false, true},
		{"[::1]:8090", false, true},
		{"localhost:8090", false, true},
		{"0.0.0.0:8090", false, false},
		{":8090", false, false},
		{"[::]:8090", false, false},
		{"10.1.2.3:8090", false, false},
		{"status.example.com:8090", false, false},
		{"0.0.0.0:8090", true, true},
		{"8090", false, false},
	} {
		err := CheckListen(c.addr, c.public)
		if (err == nil) != c.ok {
			t.Errorf("CheckListen(%q, %v) = %v; want ok %v", c.addr, c.public, err, c.ok)
		}
		if err != nil && c.public == false && strings.Contains(c.addr, ":") && c.addr != "8090" && !strings.Contains(err.Error(), "--public") {
			t.Errorf("CheckListen(%q): %v does not name --public", c.addr, err)
		}
	}
}

func TestShellWord(t *testing.T) {
	for in, want := range map[string]string{
		"app-site":        "app-site",
		"a b":             `'a b'`,
		"x'; rm -rf ~; '": `'x'\''; rm -rf ~; '\'''`,
		"$(id)":           `'$(id)'`,
		"a\u202eb":        `'a\u202eb'`,
	} {
		if got := shellWord(in); got != want {
			t.Errorf("shellWord(%q) = %s, want %s", in, got, want)
		}
	}
}
