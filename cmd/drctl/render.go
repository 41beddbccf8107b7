package main

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/drctl/drctl/internal/operator"
	"github.com/drctl/drctl/runbooks"
	"github.com/drctl/drctl/workflows"
)

func printPlan(w io.Writer, rb *runbooks.Runbook, res *workflows.PlanResult) {
	fmt.Fprintf(w, "runbook %s (lock %s)", rb.Name, rb.Lock)
	if rb.Objectives.HasRTO() || rb.Objectives.HasRPO() {
		fmt.Fprintf(w, "; objectives RTO %s, RPO %s", rb.Objectives.RTO, rb.Objectives.RPO)
	}
	fmt.Fprintln(w)
	planned := map[string]workflows.PlannedStep{}
	for _, p := range res.Steps {
		planned[p.ID] = p
	}
	line := func(s runbooks.Step) {
		what := s.Action
		switch {
		case s.Approval != nil:
			what = "approval"
		case s.Runbook != "":
			what = "runbook"
		}
		p := planned[s.ID]
		where := ""
		if s.Action != "" && s.Approval == nil {
			where = "any"
			if p.Site != "" {
				where = "@" + p.Site
			}
		}
		fmt.Fprintf(w, "    %-20s %-18s %-8s", s.ID, what, where)
		switch {
		case p.Observation != nil:
			fmt.Fprintf(w, " now: %s", p.Observation.Current)
			if len(p.Observation.Changes) == 0 {
				fmt.Fprint(w, "; nothing to change")
			} else {
				fmt.Fprintf(w, "; would: %s", strings.Join(p.Observation.Changes, "; "))
			}
		case p.Note != "":
			fmt.Fprintf(w, " %s", p.Note)
		}
		if len(s.Needs) > 0 {
			fmt.Fprintf(w, "  (after %s)", strings.Join(s.Needs, ", "))
		}
		fmt.Fprintln(w)
	}
	if len(rb.Preflight) > 0 {
		fmt.Fprintln(w, "  preflight (in parallel):")
		for _, s := range rb.Preflight {
			line(s)
		}
	}
	for i, stage := range res.Stages {
		fmt.Fprintf(w, "  stage %d:\n", i+1)
		for _, id := range stage {
			s, _ := rb.Step(id)
			line(s)
		}
	}
}

// follower prints step transitions as a run progresses.
type follower struct {
	out  io.Writer
	seen map[string]string
}

func (f *follower) update(rep *workflows.Report) {
	if f.seen == nil {
		f.seen = map[string]string{}
	}
	for _, s := range rep.Steps {
		if f.seen[s.ID] == s.State || s.State == workflows.StepPending {
			continue
		}
		f.seen[s.ID] = s.State
		f.line(clock(rep, s), s.ID, s.State, describe(rep, s))
	}
	for i, c := range rep.Compensations {
		key := fmt.Sprintf("compensate#%d", i)
		if f.seen[key] == c.State {
			continue
		}
		f.seen[key] = c.State
		f.line(clock(rep, c), "undo "+c.ID, c.State, describe(rep, c))
	}
}

// retries prints each attempt in flight that follows a failed one, once
// per attempt: a retrying step is not silent until it ends.
func (f *follower) retries(rep *workflows.Report, inFlight []operator.Attempt) {
	if f.seen == nil {
		f.seen = map[string]string{}
	}
	for _, a := range inFlight {
		key, n := "attempt#"+a.Step, fmt.Sprint(a.Attempt)
		if a.Compensation {
			key = "undo-attempt#" + a.Step
		}
		if !a.Retrying() || f.seen[key] == n {
			continue
		}
		f.seen[key] = n
		id := a.Step
		if a.Compensation {
			id = "undo " + id
		}
		f.line(fmt.Sprintf("+%7s", time.Since(rep.StartedAt).Round(time.Millisecond)), id, "retrying", "retrying "+attemptText(a))
	}
}

// line is one line of the follow: when, what, and its description, whose
// first word (the state) is painted.
func (f *follower) line(at, id, state, description string) {
	fmt.Fprintf(f.out, "  %s  %-22s ", at, id)
	paint(f.out, state)
	fmt.Fprintln(f.out, strings.TrimPrefix(description, state))
}

// attemptText says which attempt a step is at, when the next is due and
// why the last failed.
func attemptText(a operator.Attempt) string {
	var b strings.Builder
	fmt.Fprintf(&b, "attempt %d", a.Attempt)
	if a.MaxAttempts > 0 {
		fmt.Fprintf(&b, " of %d", a.MaxAttempts)
	}
	switch {
	case a.NextAttemptAt != nil:
		in := time.Duration(*a.NextAttemptInMs) * time.Millisecond
		fmt.Fprintf(&b, " due in %s (%s)", in.Round(time.Second), a.NextAttemptAt.Format("15:04:05Z"))
	case a.State == "started":
		b.WriteString(" running")
	}
	if a.LastError != "" {
		fmt.Fprintf(&b, "; last error: %s", a.LastError)
	}
	if a.LastWorker != "" {
		fmt.Fprintf(&b, " (on %s)", a.LastWorker)
	}
	return b.String()
}

func clock(rep *workflows.Report, s workflows.StepReport) string {
	t := s.StartedAt
	if s.EndedAt != nil {
		t = s.EndedAt
	}
	if t == nil {
		return "        "
	}
	return fmt.Sprintf("+%7s", t.Sub(rep.StartedAt).Round(time.Millisecond))
}

func describe(rep *workflows.Report, s workflows.StepReport) string {
	var b strings.Builder
	b.WriteString(s.State)
	if s.Action != "" {
		fmt.Fprintf(&b, " [%s]", s.Action)
	}
	if s.StartedAt != nil && s.EndedAt != nil {
		fmt.Fprintf(&b, " in %s", s.EndedAt.Sub(*s.StartedAt).Round(time.Millisecond))
	}
	if s.Attempts > 1 {
		fmt.Fprintf(&b, " after %d attempts", s.Attempts)
	}
	if s.State == workflows.StepSucceeded && s.Kind != workflows.KindApproval && s.Action != "wait" {
		if s.Changed {
			b.WriteString(", changed")
		} else {
			b.WriteString(", no change")
		}
	}
	if s.State == workflows.StepWaiting && s.Approval != nil {
		fmt.Fprintf(&b, " for approval by %s: drctl approve %s %s", strings.Join(s.Approval.Approvers, " or "), rep.Lock, s.ID)
		if s.Approval.Message != "" {
			fmt.Fprintf(&b, " (%s)", s.Approval.Message)
		}
	}
	if s.Summary != "" && s.State != workflows.StepWaiting {
		fmt.Fprintf(&b, ": %s", s.Summary)
	}
	if s.Error != "" {
		fmt.Fprintf(&b, ": %s", s.Error)
	}
	return b.String()
}

// printReport prints a run's report; inFlight (from the same look at the
// run) adds, for each retrying step, its attempt, next try and last error.
func printReport(w io.Writer, rep *workflows.Report, inFlight []operator.Attempt) {
	fmt.Fprintf(w, "\nrun %s  runbook %s  mode %s  started by %s at %s\n", rep.WorkflowID, rep.Runbook, rep.Mode, rep.StartedBy, rep.StartedAt.UTC().Format(time.RFC3339))
	state := rep.State
	if rep.Paused && state == workflows.StateRunning {
		state = workflows.StatePaused
	}
	fmt.Fprint(w, "state: ")
	paint(w, state)
	if rep.Error != "" {
		fmt.Fprintf(w, " (%s)", rep.Error)
	}
	fmt.Fprintln(w)
	rows := [][]cell{{plainCell("  STEP"), plainCell("KIND"), plainCell("ACTION"), plainCell("STATE"), plainCell("ATTEMPTS"), plainCell("TOOK"), plainCell("RESULT")}}
	row := func(s workflows.StepReport, compensation bool) {
		took := ""
		switch {
		case s.StartedAt != nil && s.EndedAt != nil:
			took = s.EndedAt.Sub(*s.StartedAt).Round(time.Millisecond).String()
		case s.StartedAt != nil && rep.EndedAt == nil:
			took = time.Since(*s.StartedAt).Round(time.Second).String() + " so far"
		}
		result := s.Summary
		if s.Error != "" {
			result = s.Error
		}
		if s.Approval != nil && s.Approval.Decision != "" {
			result = s.Approval.Decision
			if s.Approval.By != "" {
				result += " by " + s.Approval.By
			}
			if s.Approval.Reason != "" {
				result += ": " + s.Approval.Reason
			}
		}
		if a, ok := attemptOf(inFlight, s.ID, compensation); ok && a.Retrying() && s.State == workflows.StepRunning && result == "" {
			result = "retrying: " + a.LastError
		}
		attempts := ""
		if s.Attempts > 0 {
			attempts = fmt.Sprint(s.Attempts)
		}
		rows = append(rows, []cell{plainCell("  " + s.ID), plainCell(s.Kind), plainCell(s.Action), stateCell(s.State), plainCell(attempts), plainCell(took), plainCell(truncate(result, 70))})
	}
	for _, s := range rep.Steps {
		row(s, false)
	}
	for _, s := range rep.Compensations {
		row(s, true)
	}
	printTable(w, rows)
	printInFlight(w, inFlight)
	if rep.RTO != nil {
		fmt.Fprintf(w, "RTO: %s", rep.RTO.D().Round(time.Millisecond))
		if rep.Objectives.HasRTO() {
			verdict := "met"
			if *rep.RTO > rep.Objectives.RTO {
				verdict = "MISSED"
			}
			fmt.Fprintf(w, " (objective %s: %s)", rep.Objectives.RTO, verdict)
		}
		fmt.Fprintln(w)
	}
	if rep.RPO != nil {
		fmt.Fprintf(w, "RPO: %s", rep.RPO)
		if rep.Objectives.HasRPO() {
			verdict := "met"
			if *rep.RPO > rep.Objectives.RPO {
				verdict = "MISSED"
			}
			fmt.Fprintf(w, " (objective %s: %s)", rep.Objectives.RPO, verdict)
		}
		fmt.Fprintln(w)
	}
	if rep.RPOUnknown {
		fmt.Fprintln(w, "RPO: unknown for a step that could not measure its data loss (see the step outputs)")
	}
	if len(rep.Chaos) > 0 {
		fmt.Fprintln(w, "chaos injected (drill):")
		for _, f := range rep.Chaos {
			outcome := "not reached"
			if s, ok := rep.Step(f.Step); ok && s.State != workflows.StepPending && s.State != workflows.StepSkipped {
				outcome = s.State
				if s.Attempts > 0 {
					outcome += fmt.Sprintf(" after %d attempt(s)", s.Attempts)
				}
			}
			fmt.Fprintf(w, "  %s -> %s\n", f, outcome)
		}
	}
	printWaiting(w, rep)
	if fb := rep.Failback; fb != nil {
		fmt.Fprintf(w, "drill failback: run %s of %s %s", fb.WorkflowID, fb.Runbook, fb.State)
		if fb.RTO != nil {
			fmt.Fprintf(w, " in %s", fb.RTO.D().Round(time.Millisecond))
		}
		if fb.Error != "" {
			fmt.Fprintf(w, " (%s)", fb.Error)
		}
		fmt.Fprintln(w)
	}
	if sc := rep.Steady; sc != nil {
		switch {
		case sc.After == nil:
			fmt.Fprintf(w, "steady state: %d fact(s) recorded before the drill; compared after the way back\n", len(sc.Before))
		case len(sc.Differences) == 0:
			fmt.Fprintf(w, "steady state: all %d fact(s) back as before the drill\n", len(sc.Before))
		default:
			fmt.Fprintf(w, "steady state: %d of %d fact(s) NOT back as before the drill:\n", len(sc.Differences), len(sc.Before))
			for _, d := range sc.Differences {
				fmt.Fprintf(w, "  %s: was %q, now %q\n", d.Key, d.Was, d.Now)
			}
		}
		for _, n := range sc.NotCompared {
			fmt.Fprintf(w, "  not compared: %s\n", n)
		}
	}
	if len(rep.Events) > 0 {
		fmt.Fprintln(w, "audit:")
		for _, e := range rep.Events {
			fmt.Fprintf(w, "  %s (%s ago)  %-10s", e.At.UTC().Format("2006-01-02 15:04:05.000Z"), time.Since(e.At).Round(time.Second), e.Kind)
			if e.Step != "" {
				fmt.Fprintf(w, " step %s", e.Step)
			}
			if e.By != "" {
				fmt.Fprintf(w, " by %s", e.By)
			}
			if e.Reason != "" {
				fmt.Fprintf(w, ": %s", e.Reason)
			}
			fmt.Fprintln(w)
		}
	}
}

// attemptOf finds the attempt in flight of a step (or of its
// compensation).
func attemptOf(inFlight []operator.Attempt, step string, compensation bool) (operator.Attempt, bool) {
	for _, a := range inFlight {
		if a.Step == step && a.Compensation == compensation {
			return a, true
		}
	}
	return operator.Attempt{}, false
}

// printInFlight says, for each step retrying, which attempt it is at, when
// the next is due and the whole last error.
func printInFlight(w io.Writer, inFlight []operator.Attempt) {
	for _, a := range inFlight {
		if !a.Retrying() {
			continue
		}
		paint(w, "retrying")
		what := "step " + a.Step
		if a.Compensation {
			what = "compensation of " + a.Step
		}
		fmt.Fprintf(w, ": %s, %s\n", what, attemptText(a))
	}
}

func printStatus(w io.Writer, st operator.RunStatus) {
	fmt.Fprintf(w, "run %s  runbook %s  mode %s  started by %s at %s\n", st.WorkflowID, st.Runbook, st.Mode, st.StartedBy, st.StartedAt.UTC().Format(time.RFC3339))
	fmt.Fprint(w, "state: ")
	paint(w, st.State)
	fmt.Fprintf(w, "; %d/%d steps done\n", st.Done, st.Total)
	if len(st.Running) > 0 {
		paint(w, workflows.StepRunning)
		fmt.Fprintf(w, ": %s\n", strings.Join(st.Running, ", "))
	}
	printInFlight(w, st.InFlight)
	if len(st.Waiting) > 0 {
		paint(w, "awaiting approval")
		fmt.Fprintf(w, ": %s\n", strings.Join(st.Waiting, ", "))
	}
}

func printList(w io.Writer, runs []operator.Summary) {
	if len(runs) == 0 {
		fmt.Fprintln(w, "no runs")
		return
	}
	sort.SliceStable(runs, func(i, j int) bool { return runs[i].Status.StartedAt.After(runs[j].Status.StartedAt) })
	rows := [][]cell{{plainCell("LOCK"), plainCell("RUNBOOK"), plainCell("MODE"), plainCell("STATE"), plainCell("STARTED"), plainCell("BY"), plainCell("RUN ID")}}
	for _, r := range runs {
		state := r.Status.State
		if r.Closed && (state == "" || state == workflows.StateRunning) {
			state = r.CloseState
		}
		rows = append(rows, []cell{plainCell(r.Status.Lock), plainCell(r.Status.Runbook), plainCell(r.Status.Mode), stateCell(state),
			plainCell(r.Status.StartedAt.UTC().Format(time.RFC3339)), plainCell(r.Status.StartedBy), plainCell(r.RunID)})
	}
	printTable(w, rows)
}

func truncate(s string, n int) string {
	s = strings.ReplaceAll(s, "\n", " ")
	if len(s) <= n {
		return s
	}
	return s[:n-1] + "…"
}

// printWaiting says, for each gate awaiting a decision, since when, who may
// decide, what is still needed and the command that decides it.
func printWaiting(w io.Writer, rep *workflows.Report) {
	lock := strings.TrimPrefix(rep.WorkflowID, workflows.WorkflowIDPrefix)
	for _, s := range rep.Steps {
		a := s.Approval
		if a == nil || s.State != workflows.StepWaiting {
			continue
		}
		paint(w, "waiting for approval")
		fmt.Fprintf(w, ": %s", s.ID)
		if s.StartedAt != nil {
			fmt.Fprintf(w, " (for %s)", time.Since(*s.StartedAt).Round(time.Second))
		}
		if a.Message != "" {
			fmt.Fprintf(w, ": %s", a.Message)
		}
		fmt.Fprintln(w)
		who := strings.Join(a.Approvers, ", ")
		if a.TwoPerson || a.MinApprovals > 1 {
			who += "; not " + rep.StartedBy + ", who started the run"
		}
		fmt.Fprintf(w, "  approvers: %s\n", who)
		if a.MinApprovals > 1 {
			fmt.Fprintf(w, "  approvals: %d of %d", len(a.ApprovedBy), a.MinApprovals)
			if len(a.ApprovedBy) > 0 {
				fmt.Fprintf(w, " (%s)", strings.Join(a.ApprovedBy, ", "))
			}
			fmt.Fprintln(w)
		}
		fmt.Fprintf(w, "  decide: drctl approve %s %s --reason ...   or   drctl reject %s %s --reason ...\n", lock, s.ID, lock, s.ID)
	}
}
