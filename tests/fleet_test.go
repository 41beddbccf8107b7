package tests

import (
	"slices"
	"strings"
	"testing"

	"github.com/drctl/drctl/internal/lab"
	"github.com/drctl/drctl/internal/testwait"
	"github.com/drctl/drctl/runbooks"
	"github.com/drctl/drctl/worker"
	"github.com/drctl/drctl/workflows"
)

// TestFleetFailoverOnTheLab runs the shipped fleet-failover.yaml on the
// lab: the site's database, DNS and traffic once (site-failover.yaml as a
// child run, whose gate a second person approves), then twenty services,
// five at a time, each a child run under its own lock checking the app
// serves from west. The parent's report has a row per service; west is
// primary.
func TestFleetFailoverOnTheLab(t *testing.T) {
	ctx, srv, c, l := labWithWorker(t)
	rb, err := runbooks.Load("../runbooks/fleet-failover.yaml", worker.Catalog())
	if err != nil {
		t.Fatal(err)
	}
	starter, second := operatorAs(srv, c, "oncall-sre"), operatorAs(srv, c, "oncall-dba")
	if _, err := starter.Start(ctx, rb, labParams(l, rb), workflows.ModeFailover, "fleet failover on the lab"); err != nil {
		t.Fatal(err)
	}
	testwait.For(t, "the site's child run to ask for the promotion's approval", func() bool {
		st, err := starter.Status(ctx, "app-site")
		return err == nil && slices.Contains(st.Waiting, "approve-promotion")
	})
	if _, err := second.Decide(ctx, "app-site", "approve-promotion", true, "east is gone"); err != nil {
		t.Fatal(err)
	}
	rep, err := starter.Wait(ctx, "fleet")
	if err != nil {
		t.Fatal(err)
	}
	if rep.State != workflows.StateSucceeded {
		t.Fatalf("fleet run %s: %s", rep.State, rep.Error)
	}
	site, _ := rep.Step("site")
	services, _ := rep.Step("services")
	if len(site.Children) != 1 || site.Children[0].WorkflowID != workflows.WorkflowID("app-site") || site.Children[0].State != workflows.StateSucceeded {
		t.Fatalf("site step's child %+v", site.Children)
	}
	if len(services.Children) != 20 || !strings.HasPrefix(services.Summary, "20 children: 20 succeeded; slowest ") {
		t.Fatalf("services: %d children, summary %q", len(services.Children), services.Summary)
	}
	payments, err := starter.Status(ctx, "service-payments")
	if err != nil || payments.State != workflows.StateSucceeded {
		t.Fatalf("service-payments: %+v, %v; want its own succeeded run", payments, err)
	}
	if inRecovery, err := l.Node(lab.West).InRecovery(ctx); err != nil || inRecovery {
		t.Fatalf("west in recovery %t (%v); want primary", inRecovery, err)
	}
	t.Logf("fleet: %s; site RTO %dms; run RTO %s", services.Summary, *site.Children[0].RTOMs, rep.RTO)
}
