package tests

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/net/html"

	"github.com/drctl/drctl/internal/chromium"
	"github.com/drctl/drctl/internal/config"
	"github.com/drctl/drctl/internal/lab"
	"github.com/drctl/drctl/internal/operator"
	"github.com/drctl/drctl/internal/testwait"
	"github.com/drctl/drctl/workflows"
)

// TestStatusPageOnTheLab registers site-failover's readiness on the lab,
// serves the status page with `drctl serve` (the built binary, on
// 127.0.0.1:0), stops west's standby and opens the page in headless
// Chromium: the DOM the browser built must show site-failover NOT READY
// with the standby-streaming check failing ("standby not streaming"), and
// its SLO row. DRCTL_STATUSPAGE_SCREENSHOT=FILE also saves a screenshot
// of that page (the README's docs/statuspage.png).
func TestStatusPageOnTheLab(t *testing.T) {
	chromium.Find(t) // before the lab: without Chromium there is nothing to check
	ctx, srv, c, l := labWithWorker(t)
	op := operatorAs(srv, c, "oncall-sre")
	rb := addSiteFailoverReadiness(t, ctx, op, l)
	st := statusPageEvaluateUntil(t, ctx, op, rb.Name, "ready", func(r operator.ReadinessStatus) bool { return r.Ready })
	t.Logf("healthy lab: ready after %d evaluations, %d checks", st.Evaluations, st.Checks)

	url, stop := statusPageServe(t, c)

	if err := l.Node(lab.West).Stop(ctx); err != nil {
		t.Fatal(err)
	}
	st = statusPageEvaluateUntil(t, ctx, op, rb.Name, "not ready", func(r operator.ReadinessStatus) bool { return !r.Ready })
	var ev workflows.Evaluation
	if err := op.Client.GetWorkflow(ctx, st.LastRun, "").Get(ctx, &ev); err != nil {
		t.Fatalf("evaluation %s: %v", st.LastRun, err)
	}
	for _, c := range ev.Checks {
		t.Logf("west's standby stopped: evaluation %d: %s ok=%v: %s", st.Evaluations, c.Name, c.OK, c.Reason)
	}

	doc, dom := statusPageDOM(t, url)
	row := func(table string) string {
		t.Helper()
		for _, tbl := range chromium.FindAll(doc, func(n *html.Node) bool { return n.Data == "table" && chromium.Attr(n, "class") == table }) {
			for _, tr := range chromium.FindAll(tbl, func(n *html.Node) bool { return n.Data == "tr" && chromium.Attr(n, "data-runbook") == rb.Name }) {
				return strings.Join(strings.Fields(chromium.Text(tr)), " ")
			}
		}
		t.Fatalf("Chromium's DOM has no %s row for %s (%d bytes):\n%.3000s", table, rb.Name, len(dom), dom)
		return ""
	}
	readiness, slo := row("readiness"), row("slo")
	if !strings.Contains(readiness, "NOT READY") || !strings.Contains(readiness, "standby-streaming:db-west: standby not streaming") {
		t.Errorf("readiness row %q; want NOT READY with standby-streaming:db-west: standby not streaming", readiness)
	}
	if !strings.HasPrefix(slo, rb.Name+" 30d ") || !strings.Contains(slo, "% of ") {
		t.Errorf("SLO row %q; want site-failover's window (30d) and its readiness availability", slo)
	}
	if s := chromium.FindAll(doc, func(n *html.Node) bool { return n.Data == "script" }); len(s) > 0 {
		t.Errorf("the page has %d script elements", len(s))
	}
	if e := chromium.FindAll(doc, func(n *html.Node) bool { return chromium.Attr(n, "class") == "error" }); len(e) > 0 {
		t.Errorf("the page shows an error banner: %s", chromium.Text(e[0]))
	}
	t.Logf("Chromium shows: readiness %q; SLO %q", readiness, slo)

	// A run waiting at a gate: in progress, and its gate with the command
	// that approves it.
	gated := loadRunbook(t, nil, writeRunbook(t, statusPageGatedRunbook))
	if _, err := op.Start(ctx, gated, nil, workflows.ModeFailover, "release 2.4"); err != nil {
		t.Fatal(err)
	}
	testwait.For(t, "the run to wait at its gate", func() bool {
		st, err := op.Status(ctx, gated.Lock)
		return err == nil && len(st.Waiting) == 1
	})
	doc, dom = statusPageDOM(t, url)
	approve := `drctl approve app-release go-ahead --reason "..."`
	gate := chromium.FindAll(doc, func(n *html.Node) bool {
		return n.Data == "tr" && chromium.Attr(n, "data-lock") == gated.Lock && chromium.Attr(n, "data-step") == "go-ahead"
	})
	if len(gate) != 1 || !strings.Contains(chromium.Text(gate[0]), approve) {
		t.Errorf("the page shows no gate go-ahead of %s with %q:\n%.3000s", gated.Lock, approve, dom)
	}
	run := chromium.FindAll(doc, func(n *html.Node) bool {
		return n.Data == "tr" && chromium.Attr(n, "data-lock") == gated.Lock && chromium.Attr(n, "data-step") == ""
	})
	if len(run) != 1 || !strings.Contains(strings.Join(strings.Fields(chromium.Text(run[0])), " "), "oncall-sre 1/3 go-ahead") {
		t.Errorf("the page shows no run of %s in progress, started by oncall-sre, 1/3 steps done, waiting at go-ahead:\n%.3000s", gated.Lock, dom)
	} else {
		t.Logf("Chromium shows: run %q; gate %q", strings.Join(strings.Fields(chromium.Text(run[0])), " "), strings.Join(strings.Fields(chromium.Text(gate[0])), " "))
	}

	if out := os.Getenv("DRCTL_STATUSPAGE_SCREENSHOT"); out != "" {
		abs, err := filepath.Abs(out)
		if err != nil {
			t.Fatal(err)
		}
		chromium.Screenshot(t, t.TempDir(), url, abs, 1000, 1250)
		t.Logf("screenshot: %s", abs)
	}
	stop()
}

// statusPageGatedRunbook waits at an approval gate and touches nothing.
const statusPageGatedRunbook = `apiVersion: drctl/v1
name: app-release
lock: app-release
objectives: {rto: 10m}
steps:
  - id: announce
    action: note
    with: {message: "release by ${{ run.started_by }}"}
  - id: go-ahead
    needs: [announce]
    approval:
      message: Ship the release?
      approvers: [oncall-dba, release-manager]
  - id: done
    needs: [go-ahead]
    action: note
    with: {message: shipped}
`

// statusPageDOM opens url in headless Chromium and returns the document
// the browser built (--dump-dom), parsed, and as text.
func statusPageDOM(t *testing.T, url string) (*html.Node, string) {
	t.Helper()
	dom := chromium.DumpDOM(t, t.TempDir(), url)
	doc, err := html.Parse(strings.NewReader(dom))
	if err != nil {
		t.Fatal(err)
	}
	return doc, dom
}

// TestStatusPageRefusesAPublicAddress: without --public, drctl serve will
// not listen beyond loopback, and says why before it dials Temporal.
func TestStatusPageRefusesAPublicAddress(t *testing.T) {
	c := config.Defaults()
	c.Temporal.Address = "127.0.0.1:1" // never dialled
	for _, listen := range []string{"0.0.0.0:0", ":0"} {
		out, code := drctl(t, c, "serve", "--listen", listen)
		if code != 1 || !strings.Contains(out, "--public") || !strings.Contains(out, "identities") || strings.Contains(out, "cannot reach Temporal") {
			t.Errorf("drctl serve --listen %s: exit %d:\n%s", listen, code, out)
		}
	}
}

// statusPageEvaluateUntil triggers evaluations of runbook's readiness (as
// `drctl readiness check` does) until its record satisfies want. A new
// evaluation is triggered only once the record took the last one and the
// schedule runs none, so no trigger is lost to the overlap policy; it
// returns once the record satisfies want and no evaluation runs, so every
// later evaluation starts after what the caller does next.
func statusPageEvaluateUntil(t *testing.T, ctx context.Context, op *operator.Operator, runbook, what string, want func(operator.ReadinessStatus) bool) operator.ReadinessStatus {
	t.Helper()
	h := op.Client.ScheduleClient().GetHandle(ctx, workflows.ReadinessScheduleID(runbook))
	var st operator.ReadinessStatus
	triggeredAt := -1 // evaluations the record held at the last trigger
	testwait.For(t, fmt.Sprintf("the readiness record of %s to say %s", runbook, what), func() bool {
		d, err := h.Describe(ctx)
		if err != nil {
			return false
		}
		rs, err := op.Readiness(ctx, runbook)
		if err != nil || len(rs) > 1 {
			t.Fatalf("readiness of %s: %v (%d records)", runbook, err, len(rs))
		}
		if len(rs) == 1 {
			st = rs[0]
		}
		if st.Evaluations <= triggeredAt || len(d.Info.RunningWorkflows) > 0 {
			return false // an evaluation has yet to arrive; a trigger now would be skipped
		}
		if len(rs) == 1 && want(st) {
			return true // and no evaluation runs: the next one starts after the caller's next move
		}
		if err := op.ControlReadiness(ctx, runbook, "trigger"); err != nil {
			t.Fatal(err)
		}
		triggeredAt = st.Evaluations
		return false
	})
	return st
}

// statusPageServe runs `drctl serve --listen 127.0.0.1:0` against c's
// Temporal and returns the URL it prints and a stop that sends SIGINT and
// requires a clean exit (0). The process is killed at cleanup if stop was
// not called.
func statusPageServe(t *testing.T, c config.Config) (string, func()) {
	t.Helper()
	var out syncBuffer
	cmd := exec.Command(filepath.Join(binDir, "drctl"), "serve", "--listen", "127.0.0.1:0", "--as", "status-page@test")
	cmd.Env = append(os.Environ(), "DRCTL_TEMPORAL_ADDRESS="+c.Temporal.Address, "DRCTL_TEMPORAL_TASK_QUEUE="+c.Temporal.TaskQueue)
	cmd.Dir = t.TempDir()
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			_ = cmd.Process.Kill()
			<-exited
		}
	})
	urlRE := regexp.MustCompile(`status page: (http://127\.0\.0\.1:[0-9]+/) `)
	var url string
	testwait.For(t, "drctl serve to print its URL", func() bool {
		select {
		case err := <-exited:
			stopped = true
			t.Fatalf("drctl serve exited: %v\n%s", err, out.String())
		default:
		}
		if m := urlRE.FindStringSubmatch(out.String()); m != nil {
			url = m[1]
		}
		return url != ""
	})
	stop := func() {
		t.Helper()
		if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
			t.Fatal(err)
		}
		var err error
		testwait.For(t, "drctl serve to stop on SIGINT", func() bool {
			select {
			case err = <-exited:
				stopped = true
				return true
			default:
				return false
			}
		})
		if err != nil {
			t.Errorf("drctl serve after SIGINT: %v\n%s", err, out.String())
		}
	}
	return url, stop
}
