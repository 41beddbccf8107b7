package main

import (
	"io"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/drctl/drctl/internal/operator"
	"github.com/drctl/drctl/runbooks"
	"github.com/drctl/drctl/workflows"
)

// TestReportShowsWaitingGatesAndTheDrillVerdict: a waiting gate says who
// may decide, what is still needed and the command; a drill says what is
// not back as it was, was / now, and how its failback ended.
func TestReportShowsWaitingGatesAndTheDrillVerdict(t *testing.T) {
	started := time.Now().Add(-90 * time.Second)
	rep := &workflows.Report{
		WorkflowID: "drctl-app-site", Runbook: "site-failover", Mode: workflows.ModeDrill, StartedBy: "oncall-sre",
		State: workflows.StateRunning,
		Steps: []workflows.StepReport{{
			ID: "go-ahead", Kind: workflows.KindApproval, State: workflows.StepWaiting, StartedAt: &started,
			Approval: &workflows.ApprovalState{Message: "Promote west?", Approvers: []string{"oncall-dba", "group:dr"}, TwoPerson: true, MinApprovals: 2, ApprovedBy: []string{"oncall-dba"}},
		}},
		Failback: &workflows.Report{WorkflowID: "drctl-app-site-failback", Runbook: "failback", State: workflows.StateSucceeded},
		Steady: &workflows.SteadyCheck{
			Before:      map[string]string{"lb app/west1": "maint", "db-east role": "primary"},
			After:       map[string]string{"lb app/west1": "drain", "db-east role": "primary"},
			Differences: []workflows.StateDiff{{Key: "lb app/west1", Was: "maint", Now: "drain"}},
		},
	}
	var b strings.Builder
	printReport(&b, rep, nil)
	out := b.String()
	for _, want := range []string{
		"waiting for approval: go-ahead (for 1m", // 1m30s, or a little more on a slow machine
		"): Promote west?",
		"approvers: oncall-dba, group:dr; not oncall-sre, who started the run",
		"approvals: 1 of 2 (oncall-dba)",
		"decide: drctl approve app-site go-ahead --reason ...",
		"drill failback: run drctl-app-site-failback of failback succeeded",
		"steady state: 1 of 2 fact(s) NOT back as before the drill:",
		`lb app/west1: was "maint", now "drain"`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
}

// TestRunAsksFirst: a run shows what it will do and starts only on yes; with
// no terminal to ask on it refuses and says --yes.
func TestRunAsksFirst(t *testing.T) {
	rb := &runbooks.Runbook{Name: "rb", Lock: "l", Steps: []runbooks.Step{
		{ID: "fence", Action: "postgres.fence"}, {ID: "go", Approval: &runbooks.Approval{Approvers: []string{"bob"}}}, {ID: "promote", Action: "postgres.promote"},
	}}
	for answer, want := range map[string]error{"y\n": nil, "yes\n": nil, "\n": errNotConfirmed, "n\n": errNotConfirmed, "": errNotConfirmed, "sure\n": errNotConfirmed} {
		var out strings.Builder
		if err := confirmRun(strings.NewReader(answer), &out, true, rb, workflows.ModeFailover, nil); err != want {
			t.Errorf("answer %q: %v, want %v", answer, err, want)
		}
		for _, line := range []string{"failover run of rb (lock l) will:", "act      fence (postgres.fence)", "approve  go (by bob)", "and stay failed over.", "Proceed? [y/N] "} {
			if !strings.Contains(out.String(), line) {
				t.Errorf("prompt lacks %q:\n%s", line, out.String())
			}
		}
	}
	if err := confirmRun(strings.NewReader("y\n"), io.Discard, false, rb, workflows.ModeFailover, nil); err == nil || !strings.Contains(err.Error(), "pass --yes") {
		t.Errorf("no terminal: %v", err)
	}
}

// TestReportTimesSayDateAndAge: the audit trail shows the date and how long
// ago; a step still running shows how long it has run so far.
func TestReportTimesSayDateAndAge(t *testing.T) {
	started := time.Now().Add(-90 * time.Second)
	at := time.Now().Add(-2 * time.Minute)
	rep := &workflows.Report{Runbook: "rb", Lock: "l", Mode: workflows.ModeFailover, State: workflows.StateRunning, StartedAt: started,
		Steps:  []workflows.StepReport{{ID: "promote", Kind: workflows.KindStep, Action: "postgres.promote", State: workflows.StepRunning, StartedAt: &started}},
		Events: []workflows.Event{{At: at, Kind: workflows.EventApproved, Step: "go", By: "bob"}}}
	var out strings.Builder
	printReport(&out, rep, nil)
	// Ages are measured at print time: a busy machine may add a second.
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`1m3\ds so far`), regexp.MustCompile(regexp.QuoteMeta(at.UTC().Format("2006-01-02 15:04:05"))),
		regexp.MustCompile(`\(2m\d+s ago\)  approved`),
	} {
		if !want.MatchString(out.String()) {
			t.Errorf("report lacks %s:\n%s", want, out.String())
		}
	}
}

// TestRetryingStepIsShown: a step between attempts is printed by the
// follow once per attempt, and by the summary kept without a worker, with
// its attempt, next try and last error.
func TestRetryingStepIsShown(t *testing.T) {
	started := time.Now().Add(-5 * time.Second)
	next := time.Now().Add(41 * time.Second).UTC()
	ms := int64(41000)
	rep := &workflows.Report{State: workflows.StateRunning, StartedAt: started,
		Steps: []workflows.StepReport{{ID: "promote", Kind: workflows.KindStep, Action: "postgres.promote", State: workflows.StepRunning, StartedAt: &started, Attempts: 2}}}
	attempt := operator.Attempt{Step: "promote", Attempt: 2, MaxAttempts: 5, State: "scheduled", LastError: "connection refused", LastWorker: "w1@east",
		NextAttemptAt: &next, NextAttemptIn: "41s", NextAttemptInMs: &ms}
	want := "retrying: step promote, attempt 2 of 5 due in 41s (" + next.Format("15:04:05Z") + "); last error: connection refused (on w1@east)"

	var out strings.Builder
	f := &follower{out: &out}
	f.update(rep)
	f.retries(rep, []operator.Attempt{attempt})
	f.retries(rep, []operator.Attempt{attempt})
	if strings.Count(out.String(), "retrying attempt 2 of 5") != 1 || !strings.Contains(out.String(), "promote                retrying attempt 2 of 5 due in 41s") {
		t.Errorf("follow:\n%s", out.String())
	}
	attempt.Attempt = 3
	f.retries(rep, []operator.Attempt{attempt})
	if !strings.Contains(out.String(), "retrying attempt 3 of 5") {
		t.Errorf("follow does not print the next attempt:\n%s", out.String())
	}

	out.Reset()
	attempt.Attempt = 2
	printStatus(&out, operator.RunStatus{Status: workflows.Status{State: workflows.StateRunning, Running: []string{"promote"}, Total: 1}, InFlight: []operator.Attempt{attempt}})
	if !strings.Contains(out.String(), want) {
		t.Errorf("summary:\n%s\nwant %q", out.String(), want)
	}
}
