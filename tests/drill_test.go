package tests

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/drctl/drctl/activities"
	"github.com/drctl/drctl/internal/config"
	"github.com/drctl/drctl/internal/devserver"
	"github.com/drctl/drctl/internal/lab"
	"github.com/drctl/drctl/internal/operator"
	"github.com/drctl/drctl/internal/testwait"
	"github.com/drctl/drctl/runbooks"
	"github.com/drctl/drctl/worker"
	"github.com/drctl/drctl/workflows"
)

// labWithWorker starts a dev server, the lab and a worker holding the
// lab's secrets, all stopped when t ends.
func labWithWorker(t *testing.T) (context.Context, *devserver.Server, config.Config, *lab.Lab) {
	t.Helper()
	needLab(t)
	ctx := testwait.Context(t)
	srv := startServer(t, devserver.Options{})
	c := testConfig(t, srv)
	l, err := lab.Start(ctx, lab.Options{Dir: labStateDir(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	for k, v := range l.Secrets() {
		t.Setenv(k, v)
	}
	startWorker(t, srv, c)
	return ctx, srv, c, l
}

// TestDrillOnTheLab drills drill-app-west.yaml on the lab (BIND, HAProxy,
// both sites' apps): the drill moves the app's name and traffic to west,
// proves west serves, puts both back, and the steady-state check finds
// everything as it was. Then the same drill with the traffic step's
// compensation removed: it must fail, naming the load balancer's servers
// (was / now), and the lab must indeed still send traffic to west.
func TestDrillOnTheLab(t *testing.T) {
	ctx, srv, c, l := labWithWorker(t)
	rb, err := runbooks.Load("../runbooks/drill-app-west.yaml", worker.Catalog())
	if err != nil {
		t.Fatal(err)
	}
	if ps := runbooks.ValidateDrill(rb, worker.Catalog()); len(ps) > 0 {
		t.Fatalf("drill-app-west cannot be drilled: %v", ps)
	}
	op := operatorAs(srv, c, "oncall-sre")
	drill := func(rb *runbooks.Runbook, chaos ...activities.Fault) *workflows.Report {
		t.Helper()
		params := map[string]string{}
		for k, v := range l.Params() {
			if _, ok := rb.Param(k); ok {
				params[k] = v
			}
		}
		if _, err := op.StartWith(ctx, rb, operator.StartOptions{Params: params, Mode: workflows.ModeDrill, Reason: "test drill", Chaos: chaos}); err != nil {
			t.Fatal(err)
		}
		rep, err := op.Wait(ctx, rb.Lock)
		if err != nil {
			t.Fatal(err)
		}
		return rep
	}
	servers := func() string {
		out, err := l.LB.Command(ctx, "show servers state "+lab.AppBackend)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}

	rep := drill(rb)
	if rep.State != workflows.StateSucceeded || rep.Steady == nil || len(rep.Steady.Differences) != 0 {
		t.Fatalf("drill: %s (%s), steady %+v", rep.State, rep.Error, rep.Steady)
	}
	for _, key := range []string{"lb app/east1", "lb app/west1"} {
		if rep.Steady.Before[key] == "" || rep.Steady.Before[key] != rep.Steady.After[key] {
			t.Errorf("%s: before %q, after %q", key, rep.Steady.Before[key], rep.Steady.After[key])
		}
	}
	dnsCompared := false
	for k := range rep.Steady.Before {
		dnsCompared = dnsCompared || strings.HasPrefix(k, "dns ") && strings.HasSuffix(k, " A")
	}
	if !dnsCompared {
		t.Errorf("the app's DNS record was not compared: %v", rep.Steady.Before)
	}
	if v, _ := rep.Step("verify"); v.State != workflows.StepSucceeded {
		t.Errorf("verify: %s %s", v.State, v.Error)
	}
	rrs, err := l.DNS.Query(ctx, lab.AppName, "A")
	if err != nil || len(rrs) != 1 || !strings.HasSuffix(rrs[0].String(), "\t"+lab.EastAppAddr) {
		t.Errorf("after the drill %s A: %v (%v), want %s", lab.AppName, rrs, err, lab.EastAppAddr)
	}
	t.Logf("drill: RTO %s, %d facts compared; traffic:\n%s", rep.RTO, len(rep.Steady.Before), servers())

	// Chaos on the real providers: two failing attempts of the traffic
	// shift are absorbed by its retries; a permanent fault in the check
	// fails the drill, the way back still runs, and everything is back.
	rep = drill(rb, activities.Fault{Step: "traffic-to-west", Fail: 2})
	if shift, _ := rep.Step("traffic-to-west"); rep.State != workflows.StateSucceeded || shift.Attempts != 3 || len(rep.Steady.Differences) != 0 {
		t.Fatalf("drill with fail:2 on the shift: %s (%s), shift attempts %d, steady %+v", rep.State, rep.Error, shift.Attempts, rep.Steady)
	}
	rep = drill(rb, activities.Fault{Step: "verify", Permanent: true})
	if rep.State != workflows.StateFailed || rep.Steady == nil || rep.Steady.After == nil || len(rep.Steady.Differences) != 0 || len(rep.Compensations) != 2 {
		t.Fatalf("drill with a permanent fault in verify: %s (%s), compensations %d, steady %+v", rep.State, rep.Error, len(rep.Compensations), rep.Steady)
	}
	t.Logf("permanent fault: %s; way back: %d compensations, everything back", rep.Error, len(rep.Compensations))

	// Without a way back for the traffic step, the drill must say so.
	broken := *rb
	broken.Steps = slices.Clone(rb.Steps)
	for i := range broken.Steps {
		if broken.Steps[i].ID == "traffic-to-west" {
			broken.Steps[i].Compensate = nil
		}
	}
	begin := time.Now()
	rep = drill(&broken)
	if rep.State != workflows.StateFailed || rep.Steady == nil {
		t.Fatalf("drill with no way back for traffic: %s, steady %+v", rep.State, rep.Steady)
	}
	var keys []string
	for _, d := range rep.Steady.Differences {
		keys = append(keys, d.Key+": "+d.Was+" -> "+d.Now)
	}
	// The app's health answer names the site that serves: west now.
	want := []string{
		l.Params()["health_url"] + ` health: unhealthy: 200, site is not "west" -> healthy`,
		"lb app/east1: ready -> maint", "lb app/west1: maint -> ready",
	}
	if !slices.Equal(keys, want) {
		t.Errorf("differences %q, want %q", keys, want)
	}
	// Asked independently of drctl: the load balancer still sends the
	// app's requests to west, as the failed drill says.
	resp, err := http.Get(l.Params()["health_url"])
	if err != nil {
		t.Fatal(err)
	}
	var health lab.HealthAnswer
	err = json.NewDecoder(resp.Body).Decode(&health)
	resp.Body.Close()
	if err != nil || health.Site != lab.West {
		t.Errorf("after the failed drill the app answers from %q (%v), want west", health.Site, err)
	}
	if !strings.Contains(rep.Error, "not everything is as it was before the drill") {
		t.Errorf("error %q", rep.Error)
	}
	t.Logf("failed drill after %s: %s", time.Since(begin).Round(time.Millisecond), rep.Error)
}

// TestDrillSiteFailoverWithFailback drills the whole site failover on the
// lab: the forward path (fence east, promote west, DNS and traffic to
// west, verified), then failback.yaml as the way back (a child run with its
// own gate), then the steady-state check: every database's role, fencing
// and upstream, both DNS records and TTLs, the load balancer's servers and
// the health answer are as they were before the drill.
func TestDrillSiteFailoverWithFailback(t *testing.T) {
	ctx, srv, c, l := labWithWorker(t)
	cat := worker.Catalog()
	rb, err := runbooks.Load("../runbooks/site-failover.yaml", cat)
	if err != nil {
		t.Fatal(err)
	}
	fb, err := runbooks.Load("../runbooks/"+rb.Drill.Failback, cat)
	if err != nil {
		t.Fatal(err)
	}
	declared := func(rb *runbooks.Runbook) map[string]string {
		params := map[string]string{}
		for k, v := range l.Params() {
			if _, ok := rb.Param(k); ok {
				params[k] = v
			}
		}
		return params
	}
	starter, second := operatorAs(srv, c, "oncall-sre"), operatorAs(srv, c, "oncall-dba")
	if _, err := starter.StartWith(ctx, rb, operator.StartOptions{
		Params: declared(rb), Mode: workflows.ModeDrill, Reason: "test: drill the site failover",
		Failback: &workflows.Failback{Runbook: *fb, Params: declared(fb)},
	}); err != nil {
		t.Fatal(err)
	}
	// Approve every gate of the drill and of its failback as they open.
	parent := workflows.WorkflowID(rb.Lock)
	approved := map[string]bool{}
	testwait.For(t, "the drill to end", func() bool {
		for _, id := range []string{parent, parent + workflows.FailbackSuffix} {
			st, err := starter.Status(ctx, id)
			if err != nil {
				continue
			}
			for _, g := range st.Waiting {
				if !approved[id+"/"+g] {
					if _, err := second.Decide(ctx, id, g, true, "drill"); err == nil {
						approved[id+"/"+g] = true
					}
				}
			}
		}
		st, err := starter.Status(ctx, parent)
		return err == nil && st.Closed
	})
	rep, err := starter.Wait(ctx, parent)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("approved %v", approved)
	if rep.Steady != nil {
		for _, d := range rep.Steady.Differences {
			t.Logf("not back: %s: was %q, now %q", d.Key, d.Was, d.Now)
		}
		t.Logf("compared %d facts; not compared: %v", len(rep.Steady.Before), rep.Steady.NotCompared)
	}
	if rep.State != workflows.StateSucceeded || rep.Steady == nil || len(rep.Steady.Differences) != 0 {
		t.Fatalf("drill %s: %s", rep.State, rep.Error)
	}
	if rep.Failback == nil || rep.Failback.State != workflows.StateSucceeded {
		t.Fatalf("failback report %+v", rep.Failback)
	}
	for _, key := range []string{"db-east role", "db-west role", "db-west upstream", "lb app/east1"} {
		if rep.Steady.Before[key] == "" {
			t.Errorf("%s was not compared: %v", key, rep.Steady.Before)
		}
	}
	if standby, err := l.Node(lab.East).InRecovery(ctx); err != nil || standby {
		t.Errorf("east after the drill: in recovery %v (%v), want the primary", standby, err)
	}
	if standby, err := l.Node(lab.West).InRecovery(ctx); err != nil || !standby {
		t.Errorf("west after the drill: in recovery %v (%v), want a standby", standby, err)
	}
	t.Logf("drill: RTO %s, failback RTO %s", rep.RTO, rep.Failback.RTO)
}
