package operator_test

import (
	"testing"
	"time"

	"github.com/drctl/drctl/internal/operator"
	"github.com/drctl/drctl/runbooks"
	"github.com/drctl/drctl/workflows"
)

func TestAvailability(t *testing.T) {
	t0 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	changes := []workflows.ReadinessChange{{At: t0, Ready: true}, {At: t0.Add(10 * time.Hour), Ready: false}, {At: t0.Add(11 * time.Hour), Ready: true}}
	for _, tc := range []struct {
		name            string
		from, to        time.Time
		covered, notRdy time.Duration
	}{
		{"all", t0.Add(-time.Hour), t0.Add(24 * time.Hour), 24 * time.Hour, time.Hour},
		{"window starts while not ready", t0.Add(10*time.Hour + 30*time.Minute), t0.Add(12 * time.Hour), 90 * time.Minute, 30 * time.Minute},
		{"before anything was evaluated", t0.Add(-2 * time.Hour), t0.Add(-time.Hour), 0, 0},
	} {
		c, n := operator.Availability(changes, tc.from, tc.to)
		if c != tc.covered || n != tc.notRdy {
			t.Errorf("%s: covered %s, not ready %s; want %s, %s", tc.name, c, n, tc.covered, tc.notRdy)
		}
	}
}

func TestComputeSLO(t *testing.T) {
	now := time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)
	obj, err := runbooks.ParseReadinessObjective("99.5% over 30d")
	if err != nil {
		t.Fatal(err)
	}
	rec := &workflows.ReadinessState{Runbook: "rb", Ready: true,
		Objectives: runbooks.Objectives{Readiness: &obj, DrillEvery: runbooks.Duration(7 * 24 * time.Hour)},
		Changes: []workflows.ReadinessChange{
			{At: now.Add(-40 * 24 * time.Hour), Ready: true}, {At: now.Add(-2 * time.Hour), Ready: false}, {At: now.Add(-time.Hour), Ready: true},
		}}
	yes, no := true, false
	end := func(d time.Duration) *time.Time { t := now.Add(-d); return &t }
	runs := []operator.Drill{
		{Mode: workflows.ModeDrill, Outcome: workflows.StateSucceeded, EndedAt: end(3 * 24 * time.Hour), Met: &yes},
		{Mode: workflows.ModeDrill, Outcome: workflows.StateFailed, EndedAt: end(4 * 24 * time.Hour), Met: &no},
		{Mode: workflows.ModeDrill, Outcome: workflows.StateSkipped, EndedAt: end(5 * 24 * time.Hour)},
		{Mode: workflows.ModeFailover, Outcome: workflows.StateSucceeded, EndedAt: end(6 * 24 * time.Hour), Met: &yes},
		{Mode: workflows.ModeDrill, Outcome: workflows.StateSucceeded, EndedAt: end(31 * 24 * time.Hour), Met: &yes}, // outside the window
	}
	s := operator.ComputeSLO("rb", rec, runs, now)
	r := s.Readiness
	if r == nil || r.Covered.D() != 30*24*time.Hour || r.NotReady.D() != time.Hour || r.Budget.D() != 3*time.Hour+36*time.Minute ||
		r.BudgetLeft.D() != 2*time.Hour+36*time.Minute || r.Met == nil || !*r.Met {
		t.Fatalf("readiness %+v", r)
	}
	if want := 100 * (1 - 1.0/720); r.Availability < want-1e-9 || r.Availability > want+1e-9 {
		t.Errorf("availability %v, want %v", r.Availability, want)
	}
	if s.Drills != (operator.Share{Total: 2, Met: 1}) || s.Runs != (operator.Share{Total: 1, Met: 1}) {
		t.Errorf("drills %+v, runs %+v", s.Drills, s.Runs)
	}
	if s.Drill.Since == nil || s.Drill.Since.D() != 3*24*time.Hour || s.Drill.Met == nil || !*s.Drill.Met {
		t.Errorf("drill %+v", s.Drill)
	}
	// A quarterly drill_every with the last pass 40 days ago (outside the
	// 30-day window) is met, not "never".
	rec.Objectives.DrillEvery = runbooks.Duration(90 * 24 * time.Hour)
	old := operator.ComputeSLO("rb", rec, []operator.Drill{{Mode: workflows.ModeDrill, Outcome: workflows.StateSucceeded, EndedAt: end(40 * 24 * time.Hour), Met: &yes}}, now)
	if old.Drill.Since == nil || old.Drill.Since.D() != 40*24*time.Hour || old.Drill.Met == nil || !*old.Drill.Met || old.Drills.Total != 0 {
		t.Errorf("a pass 40 days ago against drill_every 90d: %+v, drills %+v", old.Drill, old.Drills)
	}
	rec.Objectives.DrillEvery = runbooks.Duration(7 * 24 * time.Hour)
	// Ten days later with no drill: drill_every (7d) is missed.
	if late := operator.ComputeSLO("rb", rec, runs, now.Add(5*24*time.Hour)); late.Drill.Met == nil || *late.Drill.Met {
		t.Errorf("drill 8 days ago met a 7d objective: %+v", late.Drill)
	}
}
