package statuspage

import (
	"cmp"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/drctl/drctl/internal/operator"
	"github.com/drctl/drctl/internal/visible"
	"github.com/drctl/drctl/runbooks"
	"github.com/drctl/drctl/workflows"
)

// data is what the Source returned for one request.
type data struct {
	Readiness []operator.ReadinessStatus
	SLOs      []operator.SLO
	Drills    []operator.Drill // newest first per runbook
	Runs      []operator.Summary
}

// view is the page's facts as text, decided here once: the template only
// lays them out. Every string has been through visible.String.
type view struct {
	Generated string
	Refresh   int // seconds; 0: no refresh
	Errors    []string

	Ready, Runbooks int // runbooks ready, runbooks with readiness
	Readiness       []readinessRow
	SLOs            []sloRow
	Drills          []drillRow
	Runs            []runRow
	Gates           []gateRow
}

type readinessRow struct {
	Runbook  string
	Ready    bool
	Since    string
	Checks   string // "3/4 passing"
	Last     string
	Stale    string // why the verdict may be old; empty when fresh
	Failing  []checkRow
	AlertErr string
}

type checkRow struct{ Name, Reason string }

type sloRow struct {
	Runbook, Window                 string
	Availability, Objective, Budget string
	ObjectiveMissed                 bool
	LastDrill, DrillEvery           string
	DrillMissed                     bool
	Runs, Drills                    string
}

type drillRow struct {
	Runbook, Started, Outcome, RTO, RPO, Met, StartedBy, Note string
	Failed                                                    bool
}

type runRow struct {
	Lock, Runbook, Mode, State, Started, StartedBy, Steps, Running, Waiting string
}

type gateRow struct {
	Lock, Step, Runbook, Approve string
}

// newView turns what was read into the page's facts at now.
func newView(d data, errs []string, now time.Time, refresh time.Duration) *view {
	v := &view{Generated: stamp(now), Runbooks: len(d.Readiness)}
	if refresh > 0 {
		v.Refresh = int(refresh / time.Second)
	}
	for _, e := range errs {
		v.Errors = append(v.Errors, visible.String(e))
	}
	for _, r := range d.Readiness {
		if r.Ready {
			v.Ready++
		}
		v.Readiness = append(v.Readiness, newReadinessRow(r, now))
	}
	for _, s := range d.SLOs {
		v.SLOs = append(v.SLOs, newSLORow(s))
	}
	for _, dr := range d.Drills {
		v.Drills = append(v.Drills, newDrillRow(dr, now))
	}
	runs := slices.Clone(d.Runs)
	slices.SortStableFunc(runs, func(a, b operator.Summary) int { return b.Status.StartedAt.Compare(a.Status.StartedAt) })
	for _, r := range runs {
		if r.Closed {
			continue
		}
		lock := cmp.Or(r.Status.Lock, strings.TrimPrefix(r.WorkflowID, workflows.WorkflowIDPrefix))
		v.Runs = append(v.Runs, runRow{
			Lock: visible.String(lock), Runbook: visible.String(r.Status.Runbook), Mode: visible.String(r.Status.Mode),
			State: visible.String(cmp.Or(r.Status.State, workflows.StateRunning)), Started: since(r.Status.StartedAt, now),
			StartedBy: visible.String(r.Status.StartedBy), Steps: fmt.Sprintf("%d/%d", r.Status.Done, r.Status.Total),
			Running: visible.String(strings.Join(r.Status.Running, ", ")), Waiting: visible.String(strings.Join(r.Status.Waiting, ", ")),
		})
		for _, step := range r.Status.Waiting {
			v.Gates = append(v.Gates, gateRow{
				Lock: visible.String(lock), Step: visible.String(step), Runbook: visible.String(r.Status.Runbook),
				Approve: "drctl approve " + shellWord(lock) + " " + shellWord(step) + ` --reason "..."`,
			})
		}
	}
	return v
}

func newReadinessRow(r operator.ReadinessStatus, now time.Time) readinessRow {
	row := readinessRow{
		Runbook: visible.String(r.Runbook), Ready: r.Ready, Since: since(r.Since, now),
		Checks: fmt.Sprintf("%d/%d passing", r.Checks-len(r.Failing), r.Checks),
		Last:   ago(now.Sub(r.Last)), AlertErr: visible.String(r.AlertErr),
	}
	// A record nobody evaluates keeps its last verdict: say so once
	// three evaluations were missed (the schedule paused, no worker).
	if every := r.Every.D(); every > 0 && now.Sub(r.Last) > 3*every {
		row.Stale = fmt.Sprintf("stale: evaluated every %s, last %s ago", every, ago(now.Sub(r.Last)))
	}
	if r.InProgress != "" {
		row.Stale = "not judged while " + visible.String(r.InProgress) + " holds the lock"
	}
	for _, c := range r.Failing {
		row.Failing = append(row.Failing, checkRow{Name: visible.String(c.Name), Reason: visible.String(strings.TrimSpace(c.Reason))})
	}
	return row
}

func newSLORow(s operator.SLO) sloRow {
	row := sloRow{
		Runbook: visible.String(s.Runbook), Window: runbooks.FormatPeriod(s.Window),
		Availability: "-", Objective: "none", Budget: "-", LastDrill: "never", DrillEvery: "none",
		Runs: share(s.Runs), Drills: share(s.Drills),
	}
	if r := s.Readiness; r != nil {
		row.Availability = fmt.Sprintf("%.3f%% of %s", r.Availability, ago(r.Covered.D()))
		if r.Objective != "" {
			row.Objective = visible.String(r.Objective) + verdict(r.Met)
			row.ObjectiveMissed = r.Met != nil && !*r.Met
			row.Budget = fmt.Sprintf("%s of %s", ago(r.BudgetLeft.D()), ago(r.Budget.D()))
		}
	}
	if s.Drill.Since != nil {
		row.LastDrill = ago(s.Drill.Since.D()) + " ago"
	}
	if s.Drill.Every > 0 {
		row.DrillEvery = runbooks.FormatPeriod(s.Drill.Every) + verdict(s.Drill.Met)
		row.DrillMissed = s.Drill.Met != nil && !*s.Drill.Met
	}
	return row
}

func newDrillRow(d operator.Drill, now time.Time) drillRow {
	row := drillRow{
		Runbook: visible.String(d.Runbook), Started: since(d.StartedAt, now), Outcome: visible.String(d.Outcome),
		RTO: millis(d.RTOMs), RPO: millis(d.RPOMs), Met: "-", StartedBy: visible.String(d.StartedBy), Note: visible.String(d.Note),
		Failed: d.Outcome == workflows.StateFailed || d.Outcome == workflows.StateAborted,
	}
	if d.Met != nil {
		row.Met = map[bool]string{true: "met", false: "MISSED"}[*d.Met]
	}
	return row
}

// runbookNames are the runbooks the page knows of, sorted.
func runbookNames(rs []operator.ReadinessStatus, ss []operator.SLO) []string {
	names := map[string]bool{}
	for _, r := range rs {
		names[r.Runbook] = true
	}
	for _, s := range ss {
		names[s.Runbook] = true
	}
	delete(names, "")
	return slices.Sorted(maps.Keys(names))
}

// stamp is a time as the page shows it: UTC, with the date.
func stamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04:05 UTC")
}

// since is when t was and how long ago, on two lines.
func since(t time.Time, now time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return stamp(t) + "\n(" + ago(now.Sub(t)) + " ago)"
}

// ago is a duration to the second, in days and hours beyond two days.
func ago(d time.Duration) string {
	d = d.Round(time.Second)
	if d >= 48*time.Hour {
		return fmt.Sprintf("%dd%dh", d/(24*time.Hour), d%(24*time.Hour)/time.Hour)
	}
	return d.String()
}

func millis(ms *int64) string {
	if ms == nil {
		return "-"
	}
	d := time.Duration(*ms) * time.Millisecond
	if d >= time.Minute {
		return d.Round(time.Second).String()
	}
	return d.Round(time.Millisecond).String()
}

func verdict(met *bool) string {
	switch {
	case met == nil:
		return ""
	case *met:
		return " (met)"
	}
	return " (MISSED)"
}

func share(s operator.Share) string {
	if s.Total == 0 {
		return "-"
	}
	return strconv.Itoa(s.Met) + "/" + strconv.Itoa(s.Total)
}

// plainWord is what a shell takes as one word without quoting.
var plainWord = regexp.MustCompile(`^[A-Za-z0-9._@:/+=-]+$`)

// shellWord makes s one word for a POSIX shell, so that a command copied
// from the page runs as shown whatever a lock or step is called. Runbook
// validation allows only plain words; this guards against a memo written
// by something else.
func shellWord(s string) string {
	s = visible.String(s)
	if plainWord.MatchString(s) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
