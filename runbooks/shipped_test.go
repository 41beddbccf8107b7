package runbooks_test

import (
	"slices"
	"testing"

	"github.com/drctl/drctl/runbooks"
	"github.com/drctl/drctl/worker"
)

// TestShippedActionSpecsAreConsistent holds every action this build ships
// to what the validator relies on (runbooks.CheckSpec): group rules name
// declared inputs, and every target input declares the kinds it takes, so
// that a target of a kind some action takes is never refused as unknown.
func TestShippedActionSpecsAreConsistent(t *testing.T) {
	if err := runbooks.CheckCatalog(worker.Catalog()); err != nil {
		t.Fatal(err)
	}
}

// TestShippedRunbooksDrillability: what --mode drill says of each shipped
// runbook against this build's actions. site-failover comes back by its
// failback runbook; without drill.failback it could not be drilled
// (promote has no way back, its traffic shift no compensation), and the
// refusal names each step, so it says what to change.
func TestShippedRunbooksDrillability(t *testing.T) {
	cat := worker.Catalog()
	for file, want := range map[string][]string{
		"site-failover.yaml":      nil,
		"planned-switchover.yaml": nil,
		"drill-app-west.yaml":     nil,
		"demo.yaml":               nil,
		"failback.yaml":           {"rejoin-east", "promote-east", "db-dns-to-east", "dns-to-east", "traffic-to-east", "rejoin-west", "west-standby"},
	} {
		rb, err := runbooks.Load(file, cat)
		if err != nil {
			t.Fatal(err)
		}
		if got := drillSteps(rb, cat); !slices.Equal(got, want) {
			t.Errorf("%s: drill problems at %v, want %v", file, got, want)
		}
	}
	rb, err := runbooks.Load("site-failover.yaml", cat)
	if err != nil {
		t.Fatal(err)
	}
	rb.Drill.Failback = ""
	if got, want := drillSteps(rb, cat), []string{"promote-west", "traffic-to-west"}; !slices.Equal(got, want) {
		t.Errorf("site-failover without a failback: drill problems at %v, want %v", got, want)
	}
}

func drillSteps(rb *runbooks.Runbook, cat runbooks.Catalog) []string {
	var steps []string
	for _, p := range runbooks.ValidateDrill(rb, cat) {
		steps = append(steps, p.Step)
	}
	return steps
}
