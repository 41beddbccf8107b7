package report

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/drctl/drctl/activities"
	"github.com/drctl/drctl/internal/visible"
	"github.com/drctl/drctl/runbooks"
	"github.com/drctl/drctl/workflows"
)

// run is what the Markdown and HTML renderers show of one report. Every
// string in it is visible text (see internal/visible) and every verdict is
// decided here, so that the two formats cannot disagree.
type run struct {
	Nested bool // a drill's failback run, shown inside its drill

	WorkflowID, RunID string
	Runbook, Lock     string
	Mode              string
	StartedBy, Reason string
	Verdict           string // the run's state, upper case: SUCCEEDED, FAILED, ...
	VerdictClass      string // ok, bad or live
	Error             string
	Started, Ended    string
	Wall              string

	Objectives    []objective
	Steps         []step
	Compensations []step
	Approvals     []approval
	Chaos         []fault
	Steady        *steady
	Events        []event
	Gantt         gantt
	Failback      *run
}

type objective struct {
	Name, Target, Measured, Verdict string
	Class                           string // ok, bad or none
}

type step struct {
	ID, Kind, Action, State string
	Attempts                string
	Start, Took             string // Start: offset from the run's start
	Result                  string
	Failed                  bool
}

type approval struct {
	Gate, Decision, Needed, ApprovedBy, DecidedBy, Signed, At, Reason string
}

type fault struct{ Step, Fault, Outcome string }

type steady struct {
	Summary     string
	Back        bool
	Facts       []fact // the differences first, then the facts that are back
	NotCompared []string
}

type fact struct {
	Key, Was, Now, Result string
	Different             bool
}

type event struct{ At, Kind, Step, By, Reason string }

// Time and duration layouts: times in UTC with the date, to the second.
const timeLayout = "2006-01-02 15:04:05 UTC"

func newRun(rep *workflows.Report, nested bool) *run {
	v := &run{
		Nested:     nested,
		WorkflowID: visible.String(rep.WorkflowID), RunID: visible.String(rep.RunID),
		Runbook: visible.String(rep.Runbook), Lock: visible.String(rep.Lock), Mode: visible.String(rep.Mode),
		StartedBy: visible.String(rep.StartedBy), Reason: visible.String(rep.Reason),
		Error:   visible.String(rep.Error),
		Started: stamp(&rep.StartedAt),
	}
	state := rep.State
	if rep.Paused && state == workflows.StateRunning {
		state = workflows.StatePaused
	}
	v.Verdict = strings.ToUpper(visible.String(state))
	switch state {
	case workflows.StateSucceeded:
		v.VerdictClass = "ok"
	case workflows.StateFailed, workflows.StateAborted:
		v.VerdictClass = "bad"
	default:
		v.VerdictClass = "live"
	}
	if rep.EndedAt != nil {
		v.Ended = stamp(rep.EndedAt)
		v.Wall = duration(rep.EndedAt.Sub(rep.StartedAt))
	} else {
		v.Ended, v.Wall = "not yet", "still running"
	}
	v.Objectives = objectives(rep)
	for _, s := range rep.Steps {
		v.Steps = append(v.Steps, newStep(rep, s))
		if s.Approval != nil {
			v.Approvals = append(v.Approvals, newApproval(s))
		}
	}
	for _, s := range rep.Compensations {
		v.Compensations = append(v.Compensations, newStep(rep, s))
	}
	for _, f := range rep.Chaos {
		v.Chaos = append(v.Chaos, newFault(rep, f))
	}
	if rep.Steady != nil {
		v.Steady = newSteady(rep.Steady)
	}
	for _, e := range rep.Events {
		v.Events = append(v.Events, event{At: stamp(&e.At), Kind: visible.String(e.Kind), Step: visible.String(e.Step), By: visible.String(e.By), Reason: visible.String(e.Reason)})
	}
	v.Gantt = newGantt(rep)
	if rep.Failback != nil {
		v.Failback = newRun(rep.Failback, true)
	}
	return v
}

// objectives measures RTO and RPO against the runbook's objectives. RTO is
// set only when the run's forward path succeeded; an unknown RPO (a step
// that could not measure its data loss) is "unknown", never "met".
func objectives(rep *workflows.Report) []objective {
	o := rep.Objectives
	rto := objective{Name: "RTO", Target: "none set", Measured: "not measured", Verdict: "not measured", Class: "none"}
	if o.HasRTO() {
		rto.Target = o.RTO.String()
	}
	switch {
	case rep.RTO != nil:
		rto.Measured = duration(rep.RTO.D())
		rto.Verdict, rto.Class = against(*rep.RTO, o.RTO, o.HasRTO())
	case rep.EndedAt == nil:
		rto.Measured = "not measured: still running"
	default:
		rto.Measured = "not measured: the run did not succeed"
	}
	rpo := objective{Name: "RPO", Target: "none set", Measured: "not measured", Verdict: "not measured", Class: "none"}
	if o.HasRPO() {
		rpo.Target = o.RPO.String()
	}
	switch {
	case rep.RPOUnknown:
		rpo.Measured = "unknown: a step could not measure its data loss"
		if rep.RPO != nil {
			rpo.Measured += "; the largest measured was " + rep.RPO.String()
		}
		rpo.Verdict, rpo.Class = "unknown", "bad"
	case rep.RPO != nil:
		rpo.Measured = rep.RPO.String()
		rpo.Verdict, rpo.Class = against(*rep.RPO, o.RPO, o.HasRPO())
	}
	return []objective{rto, rpo}
}

func against(measured, target runbooks.Duration, set bool) (verdict, class string) {
	switch {
	case !set:
		return "no objective", "none"
	case measured <= target:
		return "met", "ok"
	default:
		return "missed", "bad"
	}
}

func newStep(rep *workflows.Report, s workflows.StepReport) step {
	v := step{
		ID: visible.String(s.ID), Kind: visible.String(s.Kind), Action: visible.String(s.Action), State: visible.String(s.State),
		Failed: s.State == workflows.StepFailed,
	}
	if s.Attempts > 0 {
		v.Attempts = strconv.Itoa(int(s.Attempts))
	}
	if s.StartedAt != nil {
		v.Start = "+" + duration(s.StartedAt.Sub(rep.StartedAt))
		if s.EndedAt != nil {
			v.Took = duration(s.EndedAt.Sub(*s.StartedAt))
		}
	}
	result := s.Summary
	if a := s.Approval; a != nil && a.Decision != "" {
		result = a.Decision
		if by := approvers(a); by != "" {
			result += " by " + by
		}
		if a.Reason != "" {
			result += ": " + a.Reason
		}
	}
	if s.Error != "" {
		result = s.Error
	}
	if s.State == workflows.StepSucceeded && s.Kind != workflows.KindApproval && s.Action != "wait" {
		if s.Changed {
			result = join("changed", result)
		} else {
			result = join("no change", result)
		}
	}
	v.Result = visible.String(result)
	return v
}

func join(a, b string) string {
	if b == "" {
		return a
	}
	return a + ": " + b
}

// approvers is who approved a gate: every approval counted toward
// min_approvals, else the decider.
func approvers(a *workflows.ApprovalState) string {
	if len(a.ApprovedBy) > 0 {
		return strings.Join(a.ApprovedBy, ", ")
	}
	if a.Decision == "approved" {
		return a.By
	}
	return ""
}

func newApproval(s workflows.StepReport) approval {
	a := s.Approval
	v := approval{Gate: visible.String(s.ID), Decision: visible.String(a.Decision)}
	if v.Decision == "" {
		v.Decision = visible.String(s.State) // waiting, skipped, ...
	}
	n := max(a.MinApprovals, 1)
	v.Needed = fmt.Sprintf("%d of %s", n, strings.Join(a.Approvers, ", "))
	if a.TwoPerson {
		v.Needed += "; two-person rule"
	}
	v.Needed = visible.String(v.Needed)
	v.ApprovedBy = visible.String(approvers(a))
	if a.By != "" {
		v.DecidedBy = a.By
		if a.Via != "" {
			v.DecidedBy += " via " + a.Via
		}
		v.DecidedBy = visible.String(v.DecidedBy)
	}
	if a.Decision != "" {
		v.Signed = "not signed"
		if a.Signed {
			v.Signed = "signed"
		}
	}
	v.At = stamp(a.At)
	v.Reason = visible.String(a.Reason)
	return v
}

func newFault(rep *workflows.Report, f activities.Fault) fault {
	what := strings.TrimPrefix(f.String(), f.Step+": ")
	outcome := "not reached"
	if s, ok := rep.Step(f.Step); ok && s.State != workflows.StepPending && s.State != workflows.StepSkipped {
		outcome = s.State
		if s.Attempts > 0 {
			outcome += fmt.Sprintf(" after %d attempt(s)", s.Attempts)
		}
	}
	return fault{Step: visible.String(f.Step), Fault: visible.String(what), Outcome: visible.String(outcome)}
}

// newSteady lists every compared fact, the differences first (in the
// order the workflow found them), then the facts that are back, by key.
func newSteady(sc *workflows.SteadyCheck) *steady {
	v := &steady{Back: sc.After != nil && len(sc.Differences) == 0}
	switch {
	case sc.After == nil:
		v.Summary = fmt.Sprintf("%d fact(s) recorded before the drill; not compared yet", len(sc.Before))
	case len(sc.Differences) == 0:
		v.Summary = fmt.Sprintf("all %d fact(s) back as before the drill", len(sc.Before))
	default:
		v.Summary = fmt.Sprintf("%d of %d fact(s) NOT back as before the drill", len(sc.Differences), len(sc.Before))
	}
	differs := map[string]bool{}
	for _, d := range sc.Differences {
		differs[d.Key] = true
		v.Facts = append(v.Facts, fact{Key: visible.String(d.Key), Was: shown(d.Was), Now: shown(d.Now), Result: "DIFFERENT", Different: true})
	}
	keys := make([]string, 0, len(sc.Before)+len(sc.After))
	for k := range sc.Before {
		keys = append(keys, k)
	}
	for k := range sc.After {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range slices.Compact(keys) {
		if differs[k] {
			continue
		}
		f := fact{Key: visible.String(k), Was: shown(sc.Before[k]), Now: shown(sc.After[k]), Result: "same"}
		if sc.After == nil {
			f.Now, f.Result = "", "not compared yet"
		}
		v.Facts = append(v.Facts, f)
	}
	for _, n := range sc.NotCompared {
		v.NotCompared = append(v.NotCompared, visible.String(n))
	}
	return v
}

// shown is a fact's value; "" means the fact is absent on that side.
func shown(s string) string {
	if s == "" {
		return "(absent)"
	}
	return visible.String(s)
}

func stamp(t *time.Time) string {
	if t == nil || t.IsZero() {
		return ""
	}
	return t.UTC().Format(timeLayout)
}

// duration rounds d for reading: to the second from a minute up, else to
// the millisecond.
func duration(d time.Duration) string {
	if d >= time.Minute || d <= -time.Minute {
		return d.Round(time.Second).String()
	}
	return d.Round(time.Millisecond).String()
}
