package operator

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/drctl/drctl/runbooks"
	"github.com/drctl/drctl/workflows"
)

// SLO is a runbook's service levels over its window (its readiness
// objective's window, else 30 days), from Temporal visibility (runs and
// drills) and the runbook's readiness record: nothing of drctl's own.
type SLO struct {
	Runbook   string            `json:"runbook"`
	Window    runbooks.Duration `json:"window"`
	Readiness *ReadinessSLO     `json:"readiness,omitempty"`
	Drill     DrillSLO          `json:"drill"`
	// Runs and Drills that ended in the window, and how many met every
	// objective they state (workflows.ObjectivesMet).
	Runs   Share `json:"runs"`
	Drills Share `json:"drills"`
}

// ReadinessSLO is the share of time the runbook was ready.
type ReadinessSLO struct {
	Objective string `json:"objective,omitempty"` // "99.5% over 30d"; empty: none stated
	// Availability is the percent of Covered that the runbook was ready.
	Availability float64           `json:"availability"`
	Covered      runbooks.Duration `json:"covered"` // evaluated time within the window
	NotReady     runbooks.Duration `json:"not_ready"`
	// Budget is the not-ready time the objective allows over the window;
	// BudgetLeft what remains of it (negative: overspent).
	Budget     runbooks.Duration `json:"budget,omitempty"`
	BudgetLeft runbooks.Duration `json:"budget_left,omitempty"`
	Met        *bool             `json:"met,omitempty"`
	Ready      bool              `json:"ready"`
}

// DrillSLO is the time since the last passing drill against drill_every.
type DrillSLO struct {
	Every    runbooks.Duration  `json:"every,omitempty"` // 0: no objective
	LastPass *time.Time         `json:"last_pass,omitempty"`
	Since    *runbooks.Duration `json:"since,omitempty"`
	Met      *bool              `json:"met,omitempty"`
}

// Share counts runs that met their objectives.
type Share struct {
	Total int `json:"total"`
	Met   int `json:"met"`
}

// Availability sums ready and not-ready time in [from, to] from the changes
// of a readiness record (oldest first; before the first change nothing is
// known and nothing is counted).
func Availability(changes []workflows.ReadinessChange, from, to time.Time) (covered, notReady time.Duration) {
	for i, c := range changes {
		start := c.At
		end := to
		if i+1 < len(changes) {
			end = changes[i+1].At
		}
		start, end = maxTime(start, from), minTime(end, to)
		if !end.After(start) {
			continue
		}
		covered += end.Sub(start)
		if !c.Ready {
			notReady += end.Sub(start)
		}
	}
	return covered, notReady
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// ComputeSLO is the SLO of one runbook at now, from its readiness record
// (nil when it has none) and its runs (newest first; drills included).
func ComputeSLO(runbook string, rec *workflows.ReadinessState, runs []Drill, now time.Time) SLO {
	window := 30 * 24 * time.Hour
	var obj runbooks.Objectives
	if rec != nil {
		obj = rec.Objectives
		if o := obj.Readiness; o != nil {
			window = o.Window.D()
		}
	}
	s := SLO{Runbook: runbook, Window: runbooks.Duration(window), Drill: DrillSLO{Every: obj.DrillEvery}}
	from := now.Add(-window)
	if rec != nil {
		covered, notReady := Availability(rec.Changes, from, now)
		r := &ReadinessSLO{Covered: runbooks.Duration(covered), NotReady: runbooks.Duration(notReady), Ready: rec.Ready}
		if covered > 0 {
			r.Availability = 100 * float64(covered-notReady) / float64(covered)
		}
		if o := obj.Readiness; o != nil {
			r.Objective = o.String()
			r.Budget = runbooks.Duration(o.Budget())
			r.BudgetLeft = r.Budget - r.NotReady
			met := r.BudgetLeft >= 0
			r.Met = &met
		}
		s.Readiness = r
	}
	for _, d := range runs {
		if d.EndedAt == nil || d.Outcome == workflows.StateSkipped {
			continue
		}
		// The last passing drill counts wherever it lies: drill_every may
		// be longer than the window.
		if d.Mode == workflows.ModeDrill && d.Outcome == workflows.StateSucceeded && (s.Drill.LastPass == nil || d.EndedAt.After(*s.Drill.LastPass)) {
			t := *d.EndedAt
			s.Drill.LastPass = &t
		}
		if d.EndedAt.Before(from) {
			continue
		}
		met := d.Met != nil && *d.Met
		share := &s.Runs
		if d.Mode == workflows.ModeDrill {
			share = &s.Drills
		}
		share.Total++
		if met {
			share.Met++
		}
	}
	if s.Drill.LastPass != nil {
		since := runbooks.Duration(now.Sub(*s.Drill.LastPass))
		s.Drill.Since = &since
	}
	if s.Drill.Every > 0 {
		met := s.Drill.Since != nil && *s.Drill.Since <= s.Drill.Every
		s.Drill.Met = &met
	}
	return s
}

// SLOs computes the SLO of runbook, or of every runbook with a readiness
// record or a recorded run.
func (o *Operator) SLOs(ctx context.Context, runbook string) ([]SLO, error) {
	recs, err := o.Readiness(ctx, runbook)
	if err != nil {
		return nil, err
	}
	query := fmt.Sprintf("(%[1]s = '%[2]s' OR %[1]s = '%[3]s')", workflows.SearchMode.GetName(), workflows.ModeFailover, workflows.ModeDrill)
	if runbook != "" {
		query += fmt.Sprintf(" AND %s = '%s'", workflows.SearchRunbook.GetName(), runbook) // checked by Readiness
	}
	runs, err := o.visible(ctx, query, 5000)
	if err != nil {
		return nil, err
	}
	byRunbook := map[string][]Drill{}
	for _, d := range runs {
		byRunbook[d.Runbook] = append(byRunbook[d.Runbook], d)
	}
	records := map[string]*workflows.ReadinessState{}
	for i := range recs {
		records[recs[i].Runbook] = &recs[i].ReadinessState
		if _, ok := byRunbook[recs[i].Runbook]; !ok {
			byRunbook[recs[i].Runbook] = nil
		}
	}
	now := time.Now()
	var out []SLO
	for _, rb := range slices.Sorted(maps.Keys(byRunbook)) {
		if rb == "" {
			continue
		}
		out = append(out, ComputeSLO(rb, records[rb], byRunbook[rb], now))
	}
	return out, nil
}
