package report

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/drctl/drctl/internal/chromium"

	"golang.org/x/net/html"

	"github.com/drctl/drctl/activities"
	"github.com/drctl/drctl/runbooks"
	"github.com/drctl/drctl/workflows"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

var t0 = time.Date(2025, 3, 14, 9, 0, 0, 0, time.UTC)

// at is t0 plus d, as the pointer a report holds.
func at(d string) *time.Time {
	v, err := time.ParseDuration(d)
	if err != nil {
		panic(err)
	}
	t := t0.Add(v)
	return &t
}

func dur(d string) *runbooks.Duration {
	v, err := time.ParseDuration(d)
	if err != nil {
		panic(err)
	}
	r := runbooks.Duration(v)
	return &r
}

// drill is a site-failover drill as a worker would report it: the forward
// path succeeded (the fence retried through two injected faults, the
// promotion gate approved by two people, one with a signed decision), the
// failback runbook brought everything back, but one DNS TTL was not, so
// the drill failed. It carries a compensation too, which a drill with a
// failback runbook does not run, so that one fixture shows every section.
func drill() *workflows.Report {
	return &workflows.Report{
		WorkflowID: "drctl-app-site", RunID: "0195c2a4-7c1e-7b39-9d1a-4e2f6b8c0a11",
		Runbook: "site-failover", Lock: "app-site", Mode: workflows.ModeDrill,
		StartedBy: "alice", Reason: "quarterly DR drill",
		State:      workflows.StateFailed,
		Error:      `drill: the way back ran, but not everything is as it was before the drill: dns db.example.internal. A: was "192.0.2.20 ttl 300s", now "192.0.2.20 ttl 30s"`,
		StartedAt:  t0,
		EndedAt:    at("7m12s"),
		Objectives: runbooks.Objectives{RTO: runbooks.Duration(5 * time.Minute), RPO: runbooks.Duration(30 * time.Second), RTOSet: true, RPOSet: true},
		RTO:        dur("3m1.25s"),
		RPO:        dur("800ms"),
		Steps: []workflows.StepReport{
			{ID: "west-is-standby", Kind: workflows.KindPreflight, Action: "postgres.status", State: workflows.StepSucceeded, Attempts: 1,
				Summary: "db-west: standby streaming from db-east, 0 bytes behind", StartedAt: at("0s"), EndedAt: at("420ms")},
			{ID: "fence-east", Kind: workflows.KindStep, Action: "postgres.fence", State: workflows.StepSucceeded, Attempts: 3, Changed: true,
				Summary: "db-east fenced: default_transaction_read_only on, 4 sessions ended", StartedAt: at("450ms"), EndedAt: at("6.2s")},
			{ID: "approve-promotion", Kind: workflows.KindApproval, State: workflows.StepSucceeded,
				StartedAt: at("6.25s"), EndedAt: at("1m58s"),
				Outputs: map[string]any{"decided_by": "carol", "decision": "approved"},
				Approval: &workflows.ApprovalState{
					Message:   "Promote db-west and move the app to west (192.0.2.10)?",
					Approvers: []string{"oncall-dba", "oncall-sre", "group:dr-approvers"}, TwoPerson: true,
					MinApprovals: 2, ApprovedBy: []string{"bob", "carol"}, Decision: "approved",
					Signed: true, By: "carol", Via: workflows.ViaCLI, Reason: "lag 0.8s is within the drill's budget", At: at("1m58s"),
				}},
			{ID: "promote-west", Kind: workflows.KindStep, Action: "postgres.promote", State: workflows.StepSucceeded, Attempts: 1, Changed: true,
				Summary: "db-west promoted (timeline 4); lost at most 800ms of writes", StartedAt: at("1m58.1s"), EndedAt: at("2m9.7s"),
				Outputs: map[string]any{"rpo": "800ms"}},
			{ID: "dns-to-west", Kind: workflows.KindStep, Action: "dns.set", State: workflows.StepSucceeded, Attempts: 1, Changed: true,
				Summary: "app.example.internal. A 192.0.2.10 ttl 30s (was 198.51.100.10 ttl 300s)", StartedAt: at("2m9.8s"), EndedAt: at("2m10.1s")},
			{ID: "db-dns-to-west", Kind: workflows.KindStep, Action: "dns.set", State: workflows.StepSucceeded, Attempts: 1, Changed: true,
				Summary: "db.example.internal. A 192.0.2.20 ttl 30s (was 198.51.100.20 ttl 300s)", StartedAt: at("2m9.8s"), EndedAt: at("2m10.3s")},
			{ID: "traffic-to-west", Kind: workflows.KindStep, Action: "traffic.shift", State: workflows.StepSucceeded, Attempts: 1, Changed: true,
				Summary: "app: west1 ready, east1 maint", StartedAt: at("2m9.8s"), EndedAt: at("2m10s")},
			{ID: "verify", Kind: workflows.KindStep, Action: "http.check", State: workflows.StepSucceeded, Attempts: 1,
				Summary: "3 of 3 checks answered site=west", StartedAt: at("2m10.4s"), EndedAt: at("3m1.2s")},
		},
		Compensations: []workflows.StepReport{
			{ID: "fence-east", Kind: workflows.KindCompensation, Action: "postgres.unfence", State: workflows.StepSucceeded, Attempts: 1, Changed: true,
				Summary: "db-east unfenced: default_transaction_read_only off", StartedAt: at("6m40s"), EndedAt: at("6m41.5s")},
		},
		Events: []workflows.Event{
			{At: *at("1m12s"), Kind: workflows.EventApproved, Step: "approve-promotion", By: "bob", Reason: "go"},
			{At: *at("1m58s"), Kind: workflows.EventApproved, Step: "approve-promotion", By: "carol", Reason: "lag 0.8s is within the drill's budget"},
		},
		Chaos: []activities.Fault{{Step: "fence-east", Fail: 2}},
		Steady: &workflows.SteadyCheck{
			Before: map[string]string{
				"db-west role":                "standby of db-east",
				"db-east role":                "primary",
				"dns app.example.internal. A": "198.51.100.10 ttl 300s",
				"dns db.example.internal. A":  "192.0.2.20 ttl 300s",
				"lb app/east1":                "ready",
				"lb app/west1":                "maint",
			},
			After: map[string]string{
				"db-west role":                "standby of db-east",
				"db-east role":                "primary",
				"dns app.example.internal. A": "198.51.100.10 ttl 300s",
				"dns db.example.internal. A":  "192.0.2.20 ttl 30s",
				"lb app/east1":                "ready",
				"lb app/west1":                "maint",
			},
			Differences: []workflows.StateDiff{{Key: "dns db.example.internal. A", Was: "192.0.2.20 ttl 300s", Now: "192.0.2.20 ttl 30s"}},
			NotCompared: []string{"verify: inputs known only at run time"},
		},
		Failback: &workflows.Report{
			WorkflowID: "drctl-app-site-failback", RunID: "0195c2a9-11d0-7f0e-8a55-93b1c0d2e3f4",
			Runbook: "failback", Lock: "app-site-failback", Mode: workflows.ModeFailover,
			StartedBy: "alice", Reason: "failback of drill drctl-app-site", State: workflows.StateSucceeded,
			StartedAt: *at("3m1.3s"), EndedAt: at("6m30s"),
			Objectives: runbooks.Objectives{RTO: runbooks.Duration(10 * time.Minute), RTOSet: true},
			RTO:        dur("3m28.7s"),
			Steps: []workflows.StepReport{
				{ID: "west-is-primary", Kind: workflows.KindPreflight, Action: "postgres.status", State: workflows.StepSucceeded, Attempts: 1,
					Summary: "db-west: primary", StartedAt: at("3m1.3s"), EndedAt: at("3m1.6s")},
				{ID: "go-ahead", Kind: workflows.KindApproval, State: workflows.StepSucceeded, StartedAt: at("3m1.7s"), EndedAt: at("4m30s"),
					Approval: &workflows.ApprovalState{Approvers: []string{"oncall-dba"}, Decision: "approved", By: "dave", Via: workflows.ViaSlack, At: at("4m30s")}},
				{ID: "promote-east", Kind: workflows.KindStep, Action: "postgres.promote", State: workflows.StepSucceeded, Attempts: 1, Changed: true,
					Summary: "db-east promoted (timeline 5)", StartedAt: at("4m30.1s"), EndedAt: at("4m41s")},
				{ID: "dns-to-east", Kind: workflows.KindStep, Action: "dns.set", State: workflows.StepSucceeded, Attempts: 1, Changed: true,
					Summary: "app.example.internal. A 198.51.100.10 ttl 300s", StartedAt: at("4m41.1s"), EndedAt: at("4m41.4s")},
				{ID: "verify", Kind: workflows.KindStep, Action: "http.check", State: workflows.StepSucceeded, Attempts: 1,
					Summary: "3 of 3 checks answered site=east", StartedAt: at("4m41.5s"), EndedAt: at("6m29.9s")},
			},
		},
	}
}

func TestGolden(t *testing.T) {
	for _, tc := range []struct {
		file   string
		render func(*bytes.Buffer, *workflows.Report) error
	}{
		{"drill.md", func(b *bytes.Buffer, r *workflows.Report) error { return Markdown(b, r) }},
		{"drill.json", func(b *bytes.Buffer, r *workflows.Report) error { return JSON(b, r) }},
	} {
		t.Run(tc.file, func(t *testing.T) {
			var got bytes.Buffer
			if err := tc.render(&got, drill()); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join("testdata", tc.file)
			if *update {
				if err := os.WriteFile(path, got.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to write it)", err)
			}
			if !bytes.Equal(got.Bytes(), want) {
				t.Errorf("%s differs from the rendering; review the change and run with -update\ngot:\n%s", path, got.String())
			}
		})
	}
}

// TestGoldenJSONRoundTrips: the JSON golden file is the report itself, so
// it reads back into the same rendering.
func TestGoldenJSONRoundTrips(t *testing.T) {
	var a, b bytes.Buffer
	if err := JSON(&a, drill()); err != nil {
		t.Fatal(err)
	}
	var back workflows.Report
	if err := json.Unmarshal(a.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	var m1, m2 bytes.Buffer
	if err := Markdown(&m1, drill()); err != nil {
		t.Fatal(err)
	}
	if err := Markdown(&m2, &back); err != nil {
		t.Fatal(err)
	}
	if err := JSON(&b, &back); err != nil {
		t.Fatal(err)
	}
	if a.String() != b.String() || m1.String() != m2.String() {
		t.Error("a report read back from its JSON renders differently")
	}
}

func TestObjectiveVerdicts(t *testing.T) {
	obj := runbooks.Objectives{RTO: runbooks.Duration(time.Minute), RPO: 0, RTOSet: true, RPOSet: true}
	for _, tc := range []struct {
		name     string
		edit     func(r *workflows.Report)
		rto, rpo string
	}{
		{"met", func(r *workflows.Report) { r.RTO, r.RPO = dur("59s"), dur("0s") }, "met", "met"},
		{"missed", func(r *workflows.Report) { r.RTO, r.RPO = dur("61s"), dur("1ms") }, "missed", "missed"},
		{"failed run", func(r *workflows.Report) { r.State = workflows.StateFailed }, "not measured", "not measured"},
		{"unknown RPO is never met", func(r *workflows.Report) { r.RTO, r.RPO, r.RPOUnknown = dur("1s"), dur("0s"), true }, "met", "unknown"},
		{"no objective", func(r *workflows.Report) { r.Objectives = runbooks.Objectives{}; r.RTO = dur("1s") }, "no objective", "not measured"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &workflows.Report{State: workflows.StateSucceeded, StartedAt: t0, EndedAt: at("1m"), Objectives: obj}
			tc.edit(r)
			o := objectives(r)
			if o[0].Verdict != tc.rto || o[1].Verdict != tc.rpo {
				t.Errorf("RTO %q, RPO %q; want %q, %q", o[0].Verdict, o[1].Verdict, tc.rto, tc.rpo)
			}
		})
	}
}

// hostile is the drill with recorded strings that try to break out of a
// Markdown table, inject HTML or SVG, or drive a terminal.
func hostile() *workflows.Report {
	rep := drill()
	rep.Steps[1].Summary = "a | b\n| c | d | e | f | g | h |\r\nend\\|"
	rep.Steps[4].Error = `</svg></td></tr></table><script>alert(1)</script><img src=x onerror=alert(2)>`
	rep.Steps[4].State = workflows.StepFailed
	rep.Steps[5].Summary = "\x1b[2J\x1b[31mred\u202eevil\xff [click](javascript:alert(3)) **bold** `code`"
	rep.Reason = "<b>bold</b>\n# heading"
	rep.Steady.Differences = append(rep.Steady.Differences, workflows.StateDiff{Key: "k|ey\n| x |", Was: "<svg onload=alert(4)>", Now: "</svg>"})
	rep.Steady.NotCompared = append(rep.Steady.NotCompared, "x\n- injected item")
	rep.Compensations[0].Error = "]]></title><script>alert(5)</script>"
	rep.Events[0].Reason = "| | |\n|---|"
	return rep
}

// escaped matches a backslash escape and what it escapes.
var escaped = regexp.MustCompile(`\\.`)

// cells splits a Markdown table line on its unescaped pipes.
func cells(line string) []string {
	var out []string
	var cur strings.Builder
	for i := 0; i < len(line); i++ {
		switch line[i] {
		case '\\':
			cur.WriteByte(line[i])
			if i+1 < len(line) {
				i++
				cur.WriteByte(line[i])
			}
		case '|':
			out = append(out, cur.String())
			cur.Reset()
		default:
			cur.WriteByte(line[i])
		}
	}
	return append(out, cur.String())
}

func TestHostileMarkdown(t *testing.T) {
	var b bytes.Buffer
	if err := Markdown(&b, hostile()); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	var benign bytes.Buffer
	if err := Markdown(&benign, drill()); err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Count(out, "\n"), strings.Count(benign.String(), "\n"); got != want+2 {
		// +2: one more steady-state difference and one more fact not
		// compared, each one line.
		t.Errorf("hostile report has %d lines, the benign one %d: a recorded newline started a line", got, want)
	}
	width := 0
	for n, line := range strings.Split(out, "\n") {
		if !strings.HasPrefix(line, "|") {
			width = 0
			if strings.HasPrefix(line, "#") && !strings.HasPrefix(line, "# drctl") && !strings.HasPrefix(line, "## ") && !strings.HasPrefix(line, "### ") {
				t.Errorf("line %d is a heading the report did not write: %q", n+1, line)
			}
			if strings.HasPrefix(line, "- ") && strings.Contains(line, "injected item") && !strings.HasPrefix(line, "- x<br>") {
				t.Errorf("line %d: a recorded newline started a list item: %q", n+1, line)
			}
			continue
		}
		c := cells(line)
		if width == 0 {
			width = len(c)
			continue
		}
		if len(c) != width {
			t.Errorf("line %d has %d cells, its table's header %d: %q", n+1, len(c), width, line)
		}
	}
	// What is left once escapes and the report's own markup are gone
	// must hold no markup at all.
	bare := escaped.ReplaceAllString(out, "")
	bare = strings.ReplaceAll(bare, "<br>", "")
	bare = regexp.MustCompile(`(?m)^\*\*Verdict: [A-Z]+\*\*`).ReplaceAllString(bare, "")
	for _, bad := range []string{"<", ">", "](javascript", "\x1b", "\u202e", "\xff", "*", "`"} {
		if strings.Contains(bare, bad) {
			t.Errorf("Markdown contains %q unescaped", bad)
		}
	}
	for _, shown := range []string{`\\x1b\[2J`, `\\u202e`, `\\xff`, `\<script\>alert(1)\</script\>`} {
		if !strings.Contains(out, shown) {
			t.Errorf("Markdown does not show %q as text", shown)
		}
	}
}

func TestHostileHTML(t *testing.T) {
	rep := hostile()
	var b bytes.Buffer
	if err := HTML(&b, rep); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"\x1b", "\u202e", "\xff"} {
		if strings.Contains(b.String(), bad) {
			t.Errorf("HTML contains %q", bad)
		}
	}
	doc, err := html.Parse(&b)
	if err != nil {
		t.Fatal(err)
	}
	checkPage(t, doc, rep, "FAILED")
	text := chromium.Text(doc)
	for _, shown := range []string{"<script>alert(1)</script>", "<svg onload=alert(4)>", `\x1b[2J`, "]]></title><script>alert(5)</script>"} {
		if !strings.Contains(text, shown) {
			t.Errorf("page text does not show %q as recorded", shown)
		}
	}
}

// TestHTMLSelfContained: the page fetches nothing and runs nothing.
func TestHTMLSelfContained(t *testing.T) {
	var b bytes.Buffer
	if err := HTML(&b, drill()); err != nil {
		t.Fatal(err)
	}
	page := b.String()
	for _, bad := range []string{"<script", "http:", "https:", "//", "src=", "href=", "url(", "@import", "<link", "<img", "<iframe", "<object"} {
		if strings.Contains(page, bad) {
			t.Errorf("page contains %q", bad)
		}
	}
	if !strings.Contains(page, `content="default-src 'none'; style-src 'unsafe-inline'"`) {
		t.Error("page has no Content-Security-Policy forbidding what is not inline CSS")
	}
	doc, err := html.Parse(&b)
	if err != nil {
		t.Fatal(err)
	}
	checkPage(t, doc, drill(), "FAILED")
}

// checkPage checks a parsed report page (as written, or as Chromium's DOM):
// the verdict, each step in the steps table, one timeline bar per step and
// compensation inside the run's SVG, the failback run's section with its
// own timeline, and no script or image anywhere.
func checkPage(t *testing.T, doc *html.Node, rep *workflows.Report, verdict string) {
	t.Helper()
	runs := chromium.FindAll(doc, func(n *html.Node) bool { return n.Data == "section" && hasClass(n, "run") })
	if len(runs) != 2 {
		t.Fatalf("page has %d run sections, want the drill and its failback", len(runs))
	}
	for _, n := range chromium.FindAll(doc, func(n *html.Node) bool {
		return n.Type == html.ElementNode && (n.Data == "script" || n.Data == "img" || n.Data == "iframe")
	}) {
		t.Errorf("page has a <%s> element", n.Data)
	}
	for i, r := range []*workflows.Report{rep, rep.Failback} {
		sec := runs[i]
		own := func(n *html.Node) bool { return enclosingRun(n) == sec }
		v := chromium.FindAll(sec, func(n *html.Node) bool { return hasClass(n, "verdict") && own(n) })
		want := verdict
		if i == 1 {
			want = strings.ToUpper(r.State)
		}
		if len(v) != 1 || strings.TrimSpace(chromium.Text(v[0])) != want {
			t.Errorf("run %s: verdict elements %d, text %q; want one saying %q", r.WorkflowID, len(v), textsOf(v), want)
		}
		tables := chromium.FindAll(sec, func(n *html.Node) bool { return n.Data == "table" && hasClass(n, "steps") && own(n) })
		if len(tables) != 1 {
			t.Fatalf("run %s: %d steps tables", r.WorkflowID, len(tables))
		}
		cellsText := chromium.Text(tables[0])
		for _, s := range r.Steps {
			if !strings.Contains(cellsText, s.ID) {
				t.Errorf("run %s: steps table does not show step %s", r.WorkflowID, s.ID)
			}
		}
		svgs := chromium.FindAll(sec, func(n *html.Node) bool { return n.Data == "svg" && own(n) })
		if len(svgs) != 1 {
			t.Fatalf("run %s: %d timelines, want 1", r.WorkflowID, len(svgs))
		}
		bars := chromium.FindAll(svgs[0], func(n *html.Node) bool { return n.Data == "rect" && hasClass(n, "bar") })
		if want := len(r.Steps) + len(r.Compensations); len(bars) != want {
			t.Errorf("run %s: timeline has %d bars, want %d (one per step and compensation)", r.WorkflowID, len(bars), want)
		}
		for j, s := range r.Steps {
			if j < len(bars) && chromium.Attr(bars[j], "data-step") != s.ID {
				t.Errorf("run %s: bar %d is for %q, want %q", r.WorkflowID, j, chromium.Attr(bars[j], "data-step"), s.ID)
			}
		}
		// Bars of a stray element outside the SVG would mean the SVG was
		// closed early.
		for _, n := range chromium.FindAll(sec, func(n *html.Node) bool { return n.Data == "rect" && own(n) }) {
			if n.Parent != svgs[0] {
				t.Errorf("run %s: a bar outside the timeline", r.WorkflowID)
			}
		}
	}
}

func enclosingRun(n *html.Node) *html.Node {
	for p := n.Parent; p != nil; p = p.Parent {
		if p.Data == "section" && hasClass(p, "run") {
			return p
		}
	}
	return nil
}

var spaces = regexp.MustCompile(`\s+`)

func hasClass(n *html.Node, class string) bool {
	for _, c := range spaces.Split(chromium.Attr(n, "class"), -1) {
		if c == class {
			return true
		}
	}
	return false
}

func textsOf(ns []*html.Node) []string {
	var out []string
	for _, n := range ns {
		out = append(out, chromium.Text(n))
	}
	return out
}
