package tests

import (
	"context"
	"fmt"
	"strings"
	"testing"

	enumspb "go.temporal.io/api/enums/v1"

	"github.com/drctl/drctl/activities"
	"github.com/drctl/drctl/internal/config"
	"github.com/drctl/drctl/internal/devserver"
	"github.com/drctl/drctl/internal/pglab"
	"github.com/drctl/drctl/internal/testwait"
	"github.com/drctl/drctl/runbooks"
	"github.com/drctl/drctl/worker"
	"github.com/drctl/drctl/workflows"
)

// siteProbe is a test action that needs its target's site (ReachSite) and
// changes nothing: the result names the worker it ran on.
type siteProbe struct{}

var _ activities.Action = siteProbe{}

func (siteProbe) Spec() runbooks.ActionSpec {
	return runbooks.ActionSpec{Name: "test.site-local", Doc: "Run on the target's site.", Reach: runbooks.ReachSite, Undo: runbooks.UndoNotNeeded,
		Inputs: []runbooks.InputSpec{{Name: "target", Type: runbooks.TypeTarget, Kinds: []string{"postgres"}, Required: true, Doc: "the target"}}}
}

func (siteProbe) Observe(context.Context, activities.Request) (activities.Observation, error) {
	return activities.Observation{Current: "here"}, nil
}

func (siteProbe) Apply(ctx context.Context, _ activities.Request) (activities.Result, error) {
	return activities.Result{Summary: "ran on " + activities.WorkerOf(ctx)}, nil
}

// startSiteWorker runs an in-process worker of site with the given secrets
// until stop or the end of the test.
func startSiteWorker(t *testing.T, srv *devserver.Server, c config.Config, identity, site string, secrets worker.Secrets) (stop func()) {
	t.Helper()
	c.Identity, c.Worker.Sites = identity, []string{site}
	r, err := worker.Start(testwait.Context(t), c, worker.Options{Client: srv.Client(), Secrets: secrets, Actions: []activities.Action{siteProbe{}}})
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	stop = func() {
		if !stopped {
			stopped = true
			if err := r.Stop(); err != nil {
				t.Errorf("stop %s: %v", identity, err)
			}
		}
	}
	t.Cleanup(stop)
	return stop
}

const sitesRunbook = `apiVersion: drctl/v1
name: sites
lock: %s
targets:
  db-east: {kind: postgres, site: east, credentials: {env: DRCTL_TEST_SITES_DSN}}
  db-west: {kind: postgres, site: west, credentials: {env: DRCTL_TEST_SITES_DSN}}
steps:
%s`

// TestActionsRunWhereTheirSiteIsAndWhereTheSecretIs: two workers, east's
// without the database's secret and west's with it, both polling the
// shared queue. Steps that need a site's local reach run only on that
// site's worker; a status read (network reach) that east's worker picks up
// is offered to west's, so no step fails for a secret one worker lacks.
// With east's worker stopped, a step that needs east waits in east's queue
// until its deadline and fails saying so; it never runs in west.
func TestActionsRunWhereTheirSiteIsAndWhereTheSecretIs(t *testing.T) {
	pair := newPair(t)
	dsn := pair.Primary.DSN(pglab.AdminUser, pair.AdminPassword, "postgres")
	srv := startServer(t, devserver.Options{})
	c := testConfig(t, srv)
	stopEast := startSiteWorker(t, srv, c, "worker-east", "east", nil)
	startSiteWorker(t, srv, c, "worker-west", "west", worker.Secrets{"DRCTL_TEST_SITES_DSN": dsn})
	op := operatorAs(srv, c, "alice")
	ctx := testwait.Context(t)

	var steps strings.Builder
	for i := 1; i <= 4; i++ {
		fmt.Fprintf(&steps, "  - {id: status-%d, action: postgres.status, with: {target: db-east}}\n", i)
		fmt.Fprintf(&steps, "  - {id: east-%d, action: test.site-local, with: {target: db-east}}\n", i)
		fmt.Fprintf(&steps, "  - {id: west-%d, action: test.site-local, with: {target: db-west}}\n", i)
	}
	// The worker that takes each status read is the server's pick: run
	// until east's worker took (and passed on) at least one.
	offered := 0
	for try := 1; offered == 0; try++ {
		if try > 5 {
			t.Fatal("in 5 runs of 4 status reads, east's worker never took one; the fallback was not exercised")
		}
		lock := fmt.Sprintf("sites-%d", try)
		rb := loadSitesRunbook(t, fmt.Sprintf(sitesRunbook, lock, steps.String()))
		if _, err := op.Start(ctx, rb, nil, workflows.ModeFailover, ""); err != nil {
			t.Fatal(err)
		}
		rep, err := op.Wait(ctx, lock)
		if err != nil {
			t.Fatal(err)
		}
		if rep.State != workflows.StateSucceeded {
			t.Fatalf("run %s: %s", rep.State, rep.Error)
		}
		for _, st := range rep.Steps {
			want := map[string]string{"status": "worker-west", "east": "worker-east", "west": "worker-west"}[strings.Split(st.ID, "-")[0]]
			if st.Worker != want || st.State != workflows.StepSucceeded {
				t.Errorf("%s %s on %q (%s); want succeeded on %s", st.ID, st.State, st.Worker, st.Error, want)
			}
		}
		offered = countScheduled(t, srv, lock, workflows.WorkersActivity)
		t.Logf("run %d: east's worker passed on %d status read(s)", try, offered)
	}

	stopEast()
	// plan says where each step runs, and refuses what no live worker can
	// serve: east's local steps with east's worker gone.
	plan := writeRunbook(t, fmt.Sprintf(sitesRunbook, "sites-plan",
		"  - {id: rejoin-east, action: postgres.rejoin, with: {target: db-east, source: db-west, data_dir: /var/lib/postgresql/15/main}}\n"+
			"  - {id: status-any, action: postgres.status, with: {target: db-east}}\n"))
	out, code := drctl(t, c, "plan", plan)
	for _, want := range []string{
		"rejoin-east          postgres.rejoin    @east",
		"status-any           postgres.status    any      now: ",
		"no worker of site east is polling task queue " + workflows.SiteQueue(c.Temporal.TaskQueue, "east") + ", and rejoin-east must run there",
	} {
		if code == 0 || !strings.Contains(out, want) {
			t.Errorf("plan with east's worker gone: exit %d, output lacks %q:\n%s", code, want, out)
		}
	}
	rb := loadSitesRunbook(t, fmt.Sprintf(sitesRunbook, "sites-east-down",
		"  - {id: east-local, action: test.site-local, with: {target: db-east}, deadline: 3s}\n"+
			"  - {id: status-from-west, action: postgres.status, with: {target: db-east}}\n"))
	if _, err := op.Start(ctx, rb, nil, workflows.ModeFailover, ""); err != nil {
		t.Fatal(err)
	}
	rep, err := op.Wait(ctx, "sites-east-down")
	if err != nil {
		t.Fatal(err)
	}
	local, _ := rep.Step("east-local")
	if local.State != workflows.StepFailed || !strings.Contains(local.Error, "no worker of site east took the step within its deadline (task queue "+workflows.SiteQueue(c.Temporal.TaskQueue, "east")+")") {
		t.Errorf("east-local %s on %q: %q; want failed, saying no worker of east took it", local.State, local.Worker, local.Error)
	}
	if st, _ := rep.Step("status-from-west"); st.State != workflows.StepSucceeded || st.Worker != "worker-west" {
		t.Errorf("status-from-west %s on %q (%s); want it done by west's worker", st.State, st.Worker, st.Error)
	}
}

// loadSitesRunbook loads a runbook against the shipped actions and
// test.site-local, as the workers have them.
func loadSitesRunbook(t *testing.T, text string) *runbooks.Runbook {
	t.Helper()
	reg, err := worker.Actions(config.Defaults())
	if err == nil {
		err = reg.Add(siteProbe{})
	}
	if err != nil {
		t.Fatal(err)
	}
	rb, err := runbooks.Load(writeRunbook(t, text), reg)
	if err != nil {
		t.Fatal(err)
	}
	return rb
}

// countScheduled counts the activities of type name the lock's run
// scheduled.
func countScheduled(t *testing.T, srv *devserver.Server, lock, name string) int {
	t.Helper()
	n := 0
	it := srv.Client().GetWorkflowHistory(testwait.Context(t), workflows.WorkflowID(lock), "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			t.Fatal(err)
		}
		if a := ev.GetActivityTaskScheduledEventAttributes(); a != nil && a.GetActivityType().GetName() == name {
			n++
		}
	}
	return n
}
