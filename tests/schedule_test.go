package tests

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/drctl/drctl/internal/devserver"
	"github.com/drctl/drctl/internal/operator"
	"github.com/drctl/drctl/internal/testwait"
	"github.com/drctl/drctl/workflows"
)

// TestScheduledDrill drives a drill schedule with the drctl binary on a
// dev server (a real Temporal Schedule): created with --every and an
// automatic approver, fired with `drill trigger`; the drill runs under the
// runbook's lock, its gate is approved automatically and recorded as such,
// and `drctl drills` lists it with outcome, RTO and objectives from
// Temporal visibility. While another run holds the lock, a firing is
// recorded as skipped, naming the holder. Pause shows in `drill list`;
// delete removes the schedule.
func TestScheduledDrill(t *testing.T) {
	srv := startServer(t, devserver.Options{})
	c := testConfig(t, srv)
	startWorker(t, srv, c)
	health := healthServer(t)
	ctx := testwait.Context(t)
	path := writeRunbook(t, fmt.Sprintf(gatedRunbook, "sched"))
	alice := operatorAs(srv, c, "alice")

	mustCLI := func(args ...string) string {
		t.Helper()
		out, code := drctl(t, c, append([]string{"--as", "alice"}, args...)...)
		if code != 0 {
			t.Fatalf("drctl %s: exit %d\n%s", strings.Join(args, " "), code, out)
		}
		return out
	}
	// drill-bot, whom the gate names in drill_approvers, approves
	// automatically; a bot the runbook does not name is refused.
	if out, code := drctl(t, c, "drill", "schedule", path, "--every", "168h", "--set", "url="+health.URL, "--auto-approve", "bob"); code == 0 || !strings.Contains(out, "no gate of e2e names bob in drill_approvers") {
		t.Errorf("an automatic approver the runbook does not name was accepted (exit %d):\n%s", code, out)
	}
	out := mustCLI("drill", "schedule", path, "--every", "168h", "--set", "url="+health.URL, "--auto-approve", "drill-bot")
	if !strings.Contains(out, "drill schedule drill-e2e") {
		t.Errorf("schedule output:\n%s", out)
	}
	if out, code := drctl(t, c, "drill", "schedule", path, "--every", "1m", "--set", "url="+health.URL); code == 0 || !strings.Contains(out, "between every 1h0m0s") {
		t.Errorf("a drill every minute was accepted (exit %d):\n%s", code, out)
	}
	mustCLI("drill", "trigger", "e2e")

	var drills []operator.Drill
	testwait.For(t, "the triggered drill to be listed as ended", func() bool {
		var err error
		drills, err = alice.Drills(ctx, "e2e", 10)
		return err == nil && len(drills) == 1 && drills[0].EndedAt != nil && drills[0].Outcome != ""
	})
	d := drills[0]
	if d.Outcome != workflows.StateSucceeded || d.Schedule != "drill-e2e" || d.RTOMs == nil || d.Met == nil || !*d.Met || d.WorkflowID != workflows.WorkflowID("sched") {
		t.Fatalf("listed drill %+v", d)
	}
	rep, err := alice.Report(ctx, "sched")
	if err != nil {
		t.Fatal(err)
	}
	gate, _ := rep.Step("go-ahead")
	if rep.Mode != workflows.ModeDrill || rep.StartedBy != "alice" || gate.Approval == nil || gate.Approval.By != "drill-bot" || gate.Approval.Via != workflows.ViaSchedule {
		t.Fatalf("drill %s by %s; gate %+v", rep.Mode, rep.StartedBy, gate.Approval)
	}
	t.Logf("scheduled drill: RTO %dms; gate: %s", *d.RTOMs, gate.Summary)

	// The lock is held by a failover carol started (waiting at its gate):
	// a firing does not queue or fail, it records why it skipped.
	carol := operatorAs(srv, c, "carol")
	rb := loadRunbook(t, nil, path)
	if _, err := carol.Start(ctx, rb, map[string]string{"url": health.URL}, workflows.ModeFailover, "holding the lock"); err != nil {
		t.Fatal(err)
	}
	testwait.For(t, "carol's run at its gate", func() bool {
		st, err := carol.Status(ctx, "sched")
		return err == nil && slices.Contains(st.Waiting, "go-ahead")
	})
	mustCLI("drill", "trigger", "drill-e2e")
	testwait.For(t, "the second firing to be listed", func() bool {
		drills, err = alice.Drills(ctx, "e2e", 10)
		return err == nil && len(drills) == 2 && drills[0].Outcome == workflows.StateSkipped
	})
	if n := drills[0].Note; !strings.Contains(n, `lock "sched" is held by run drctl-sched`) || !strings.Contains(n, "started by carol") {
		t.Errorf("skipped drill's note %q does not name the holder", n)
	}
	if _, err := carol.Control(ctx, "sched", workflows.OpAbort, "test done"); err != nil {
		t.Fatal(err)
	}

	// What an operator reads.
	out = mustCLI("drills", "e2e")
	for _, want := range []string{"succeeded", "skipped: lock \"sched\" is held by run drctl-sched", "schedule drill-e2e", "met", "e2e: RTO over 1 passing drill(s)"} {
		if !strings.Contains(out, want) {
			t.Errorf("drctl drills lacks %q:\n%s", want, out)
		}
	}
	var listed []operator.Drill
	if err := json.Unmarshal([]byte(mustCLI("drills", "-o", "json")), &listed); err != nil || len(listed) != 2 {
		t.Errorf("drills -o json: %v, %d drills", err, len(listed))
	}
	mustCLI("drill", "pause", "e2e", "--reason", "change freeze")
	// Schedules are listed from visibility, which follows a moment later.
	var ss []operator.DrillSchedule
	testwait.For(t, "drill list to show the schedule paused", func() bool {
		ss = nil
		return json.Unmarshal([]byte(mustCLI("drill", "list", "-o", "json")), &ss) == nil && len(ss) == 1 && ss[0].Paused
	})
	if s := ss[0]; s.Spec != "every 168h0m0s" || s.AutoApprove != "drill-bot" || s.CreatedBy != "alice" || len(s.Recent) != 2 {
		t.Errorf("drill list: %+v", s)
	}
	t.Logf("drill list:\n%s", mustCLI("drill", "list"))
	// Writing the schedule again replaces all of it: timing, approver.
	mustCLI("drill", "schedule", path, "--cron", "0 3 * * MON", "--set", "url="+health.URL)
	testwait.For(t, "drill list to show the replaced schedule", func() bool {
		ss = nil
		return json.Unmarshal([]byte(mustCLI("drill", "list", "-o", "json")), &ss) == nil && len(ss) == 1 && ss[0].Spec == "cron 0 3 * * MON"
	})
	if s := ss[0]; s.AutoApprove != "" || s.Paused {
		t.Errorf("replaced schedule: %+v", s)
	}
	mustCLI("drill", "delete", "e2e")
	if out, code := drctl(t, c, "drill", "trigger", "e2e"); code == 0 || !strings.Contains(out, "no drill schedule drill-e2e") {
		t.Errorf("trigger after delete (exit %d):\n%s", code, out)
	}
}
