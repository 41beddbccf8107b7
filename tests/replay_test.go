package tests

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/drctl/drctl/internal/testwait"
	"github.com/drctl/drctl/runbooks"

	sdklog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/drctl/drctl/activities/slack/slacklab"
	"github.com/drctl/drctl/internal/config"
	"github.com/drctl/drctl/internal/devserver"
	"github.com/drctl/drctl/internal/operator"
	drworker "github.com/drctl/drctl/worker"
	"github.com/drctl/drctl/workflows"
)

// Replay tests: tests/histories/*.json are histories of real runs recorded
// on a dev server. Replaying them against the current workflow code proves
// that runs started by an older build still resume on this one. A change to
// the interpreter that alters its command sequence must be guarded with
// workflow.GetVersion, or these tests fail.
//
// Files named *-vN.json were recorded by interpreter version N (see the
// version constants in workflows/runbook.go: v0 the original, v1
// compensate-attempted, v2 notifications, v3 quiet notifier, v4
// notifications in order, v5 drills compare the state before and after);
// the unsuffixed ones by the current version (v6: outcomes in search
// attributes, automatic approval in scheduled drills; scheduled-firing.json
// is the workflow a drill schedule starts) — v7: actions placed by site,
// the credential fallback, a site watch's proposal (proposed.json, its
// gate opened by auto_approve_after; site-watch.json is the watch). Keep
// the old ones: they are the runs an upgrade must not strand. Before a new
// version, rename the current files to *-vN.json, then re-record.
//
// Re-record (after a deliberate, versioned change, or to add a scenario):
//
//	make histories    # DRCTL_RECORD_HISTORIES=1 go test -run TestRecordHistories ./tests/

const historiesDir = "histories"

func historyFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(historiesDir, "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatalf("no histories in tests/%s; record them with `make histories`", historiesDir)
	}
	return files
}

func TestReplayRecordedHistories(t *testing.T) {
	for _, f := range historyFiles(t) {
		t.Run(filepath.Base(f), func(t *testing.T) {
			if err := drworker.Replay(f); err != nil {
				t.Fatalf("history no longer replays: %v", err)
			}
		})
	}
}

// TestReplayCatchesANonDeterministicChange replays the recorded histories
// against an interpreter (and a schedule firing) changed without a version
// guard (each sleeps before running): the replayer must refuse every one.
func TestReplayCatchesANonDeterministicChange(t *testing.T) {
	changed := func(ctx workflow.Context, in workflows.RunInput) (*workflows.Report, error) {
		if err := workflow.Sleep(ctx, time.Second); err != nil {
			return nil, err
		}
		return workflows.Run(ctx, in)
	}
	changedFiring := func(ctx workflow.Context, in workflows.ScheduledDrillInput) (*workflows.ScheduledDrillResult, error) {
		if err := workflow.Sleep(ctx, time.Second); err != nil {
			return nil, err
		}
		return workflows.ScheduledDrill(ctx, in)
	}
	changedWatch := func(ctx workflow.Context, in workflows.SiteWatchInput) (*workflows.SiteWatchState, error) {
		if err := workflow.Sleep(ctx, time.Second); err != nil {
			return nil, err
		}
		return workflows.SiteWatch(ctx, in)
	}
	for _, f := range historyFiles(t) {
		r := worker.NewWorkflowReplayer()
		r.RegisterWorkflowWithOptions(changed, workflow.RegisterOptions{Name: workflows.RunbookWorkflow})
		r.RegisterWorkflowWithOptions(changedFiring, workflow.RegisterOptions{Name: workflows.ScheduledDrillWorkflow})
		r.RegisterWorkflowWithOptions(changedWatch, workflow.RegisterOptions{Name: workflows.SiteWatchWorkflow})
		// The replayer logs the expected panic with a long stack; keep it out of the test output.
		err := r.ReplayWorkflowHistoryFromJSONFile(sdklog.NewStructuredLogger(slog.New(slog.NewTextHandler(io.Discard, nil))), f)
		if err == nil || !strings.Contains(err.Error(), "TMPRL1100") {
			t.Fatalf("%s: changed workflow replayed with err = %v; want a [TMPRL1100] nondeterminism error", f, err)
		}
	}
}

// TestRecordHistories records the replay corpus. It runs only when
// DRCTL_RECORD_HISTORIES=1 (make histories), because it rewrites files in
// the source tree.
func TestRecordHistories(t *testing.T) {
	if os.Getenv("DRCTL_RECORD_HISTORIES") != "1" {
		t.Skip("rewrites tests/histories; run `make histories` to re-record")
	}
	srv := startServer(t, devserver.Options{})
	c := testConfig(t, srv)
	// A Slack workspace, so the histories hold the run's notifications
	// (root message, gate, decision, end) as the sender posts them.
	ws := slacklab.Start(t)
	t.Setenv("DRCTL_TEST_SLACK_BOT", slacklab.Token)
	c.Slack.Channel, c.Slack.APIURL = "C0DR", ws.APIURL()
	c.Slack.BotToken = config.SecretRef{Env: "DRCTL_TEST_SLACK_BOT"}
	startWorker(t, srv, c)
	health := healthServer(t)
	ctx := context.Background()

	record := func(name, lock, mode string, drive func()) {
		t.Helper()
		rb := loadRunbook(t, nil, writeRunbook(t, fmt.Sprintf(gatedRunbook, lock)))
		alice := operatorAs(srv, c, "alice")
		if _, err := alice.Start(ctx, rb, map[string]string{"url": health.URL}, mode, "recorded for replay tests"); err != nil {
			t.Fatal(err)
		}
		testwait.For(t, "the gate", func() bool {
			st, err := alice.Status(ctx, lock)
			return err == nil && slices.Contains(st.Waiting, "go-ahead")
		})
		drive()
		if _, err := alice.Wait(ctx, lock); err != nil {
			t.Fatal(err)
		}
		f, err := os.Create(filepath.Join(historiesDir, name+".json"))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if err := alice.ExportHistory(ctx, lock, f); err != nil {
			t.Fatal(err)
		}
	}
	bob, carol := operatorAs(srv, c, "bob"), operatorAs(srv, c, "carol")
	record("approved", "rec-approved", workflows.ModeFailover, func() {
		if _, err := operatorAs(srv, c, "alice").Decide(ctx, "rec-approved", "go-ahead", true, ""); err == nil {
			t.Fatal("self-approval was accepted")
		}
		if _, err := carol.Control(ctx, "rec-approved", workflows.OpPause, "look first"); err != nil {
			t.Fatal(err)
		}
		if _, err := bob.Decide(ctx, "rec-approved", "go-ahead", true, "checked"); err != nil {
			t.Fatal(err)
		}
		if _, err := carol.Control(ctx, "rec-approved", workflows.OpResume, ""); err != nil {
			t.Fatal(err)
		}
	})
	record("aborted", "rec-aborted", workflows.ModeFailover, func() {
		if _, err := carol.Control(ctx, "rec-aborted", workflows.OpAbort, "recorded abort"); err != nil {
			t.Fatal(err)
		}
	})
	record("drilled", "rec-drilled", workflows.ModeDrill, func() {
		if _, err := bob.Decide(ctx, "rec-drilled", "go-ahead", true, "drill"); err != nil {
			t.Fatal(err)
		}
	})
	// A scheduled drill: the schedule's firing (the wrapper workflow) and
	// the drill it started, whose gate its automatic approver decided.
	schedRB := loadRunbook(t, nil, writeRunbook(t, strings.Replace(fmt.Sprintf(gatedRunbook, "rec-scheduled"), "name: e2e", "name: rec-scheduled", 1)))
	alice := operatorAs(srv, c, "alice")
	if _, err := alice.ScheduleDrill(ctx, schedRB, operator.ScheduleOptions{Every: 168 * time.Hour, Params: map[string]string{"url": health.URL}, AutoApprove: "drill-bot"}); err != nil {
		t.Fatal(err)
	}
	if err := alice.ControlSchedule(ctx, "rec-scheduled", "trigger", ""); err != nil {
		t.Fatal(err)
	}
	var fired string
	testwait.For(t, "the scheduled drill to end", func() bool {
		ds, err := alice.Drills(ctx, "rec-scheduled", 1)
		ss, lerr := alice.DrillSchedules(ctx)
		if err != nil || lerr != nil || len(ds) != 1 || ds[0].EndedAt == nil || len(ss) != 1 || len(ss[0].Recent) != 1 {
			return false
		}
		fired = ss[0].Recent[0].WorkflowID
		return true
	})
	for name, id := range map[string]string{"scheduled": "rec-scheduled", "scheduled-firing": fired} {
		if _, err := alice.Wait(ctx, id); err != nil && name == "scheduled" {
			t.Fatal(err)
		}
		f, err := os.Create(filepath.Join(historiesDir, name+".json"))
		if err != nil {
			t.Fatal(err)
		}
		if err := alice.ExportHistory(ctx, id, f); err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	record("rejected", "rec-rejected", workflows.ModeFailover, func() {
		if _, err := bob.Decide(ctx, "rec-rejected", "go-ahead", false, "not today"); err != nil {
			t.Fatal(err)
		}
	})

	// A fleet: a runbook that runs another once per item, two at a time.
	dir := t.TempDir()
	for name, text := range map[string]string{
		"child.yaml": "apiVersion: drctl/v1\nname: rec-child\nlock: rec-child\nparams: {svc: {required: true}}\nsteps:\n  - {id: move, action: note, with: {message: \"${{ params.svc }}\"}}\n",
		"fleet.yaml": "apiVersion: drctl/v1\nname: rec-fleet\nlock: rec-fleet\nsteps:\n  - {id: first, action: note, with: {message: first}}\n  - {id: services, needs: [first], runbook: child.yaml, for_each: [a, b, c], as: svc, max_parallel: 2}\n",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	fleet, err := runbooks.Load(filepath.Join(dir, "fleet.yaml"), drworker.Catalog())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := alice.Start(ctx, fleet, nil, workflows.ModeFailover, "recorded for replay tests"); err != nil {
		t.Fatal(err)
	}
	if rep, err := alice.Wait(ctx, "rec-fleet"); err != nil || rep.State != workflows.StateSucceeded {
		t.Fatalf("fleet: %v %v", rep, err)
	}
	f, err := os.Create(filepath.Join(historiesDir, "fleet.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := alice.ExportHistory(ctx, "rec-fleet", f); err != nil {
		t.Fatal(err)
	}
	f.Close()

	// A site loss: three watchers see east's listener go, the site watch
	// declares it and proposes its on_loss runbook, whose gate opens by
	// itself after auto_approve_after (the shortest, 1m); east comes back (a listener on the
	// same port), and the watch says so.
	east := startEast(t)
	wc := siteWatchConfig(t, srv, east, "rec-proposed")
	site := wc.Sites["east"]
	site.OnLoss.Runbook = writeRunbook(t, strings.Replace(fmt.Sprintf(siteLossRunbook, "rec-proposed"), "approvers: [alice]", "approvers: [alice]\n      auto_approve: true", 1))
	site.OnLoss.AutoApproveAfter = time.Minute
	wc.Sites["east"] = site
	startWatchers(t, srv, wc, nil, "east", "west", "witness")
	testwait.For(t, "east up in three places", func() bool {
		st, ok := siteWatchOf(t, srv, "east")
		return ok && len(st.Votes) == 3
	})
	addr := east.l.Addr().String()
	east.cut()
	testwait.For(t, "east lost and a run proposed", func() bool {
		st, ok := siteWatchOf(t, srv, "east")
		return ok && len(st.Recent) == 1 && st.Recent[0].RunID != ""
	})
	if _, err := alice.Wait(ctx, "rec-proposed"); err != nil {
		t.Fatal(err)
	}
	back, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer back.Close()
	go func() {
		for {
			c, err := back.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	testwait.For(t, "east back", func() bool {
		st, ok := siteWatchOf(t, srv, "east")
		return ok && st.State != workflows.SiteLost && len(st.Recent) == 1 && st.Recent[0].BackAt != nil
	})
	for name, id := range map[string]string{"proposed": workflows.WorkflowID("rec-proposed"), "site-watch": workflows.SiteWatchID("east")} {
		f, err := os.Create(filepath.Join(historiesDir, name+".json"))
		if err != nil {
			t.Fatal(err)
		}
		if err := alice.ExportHistory(ctx, id, f); err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
}
