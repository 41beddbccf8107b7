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
// runbook against this build's actions. site-failover cannot be drilled
// (promote has no way back, and its traffic shift has no compensation);
// the answer names each step, so the refusal says what to change.
func TestShippedRunbooksDrillability(t *testing.T) {
	cat := worker.Catalog()
	for file, want := range map[string][]string{
		"site-failover.yaml": {"promote-west", "traffic-to-west"},
	} {
		rb, err := runbooks.Load(file, cat)
		if err != nil {
			t.Fatal(err)
		}
		var steps []string
		for _, p := range runbooks.ValidateDrill(rb, cat) {
			steps = append(steps, p.Step)
			t.Logf("%s", p)
		}
		if !slices.Equal(steps, want) {
			t.Errorf("%s: drill problems at %v, want %v", file, steps, want)
		}
	}
}
