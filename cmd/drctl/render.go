package main

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
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
		if s.Approval != nil {
			what = "approval"
		}
		fmt.Fprintf(w, "    %-20s %-18s", s.ID, what)
		p := planned[s.ID]
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
		fmt.Fprintf(f.out, "  %s  %-22s %s\n", clock(rep, s), s.ID, describe(rep, s))
	}
	for i, c := range rep.Compensations {
		key := fmt.Sprintf("compensate#%d", i)
		if f.seen[key] == c.State {
			continue
		}
		f.seen[key] = c.State
		fmt.Fprintf(f.out, "  %s  %-22s %s\n", clock(rep, c), "undo "+c.ID, describe(rep, c))
	}
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

func printReport(w io.Writer, rep *workflows.Report) {
	fmt.Fprintf(w, "\nrun %s  runbook %s  mode %s  started by %s at %s\n", rep.WorkflowID, rep.Runbook, rep.Mode, rep.StartedBy, rep.StartedAt.UTC().Format(time.RFC3339))
	state := rep.State
	if rep.Paused && state == workflows.StateRunning {
		state = workflows.StatePaused
	}
	fmt.Fprintf(w, "state: %s", state)
	if rep.Error != "" {
		fmt.Fprintf(w, " (%s)", rep.Error)
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  STEP\tKIND\tACTION\tSTATE\tATTEMPTS\tTOOK\tRESULT")
	row := func(s workflows.StepReport) {
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
		attempts := ""
		if s.Attempts > 0 {
			attempts = fmt.Sprint(s.Attempts)
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.ID, s.Kind, s.Action, s.State, attempts, took, truncate(result, 70))
	}
	for _, s := range rep.Steps {
		row(s)
	}
	for _, s := range rep.Compensations {
		row(s)
	}
	tw.Flush()
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

func printStatus(w io.Writer, st operator.RunStatus) {
	fmt.Fprintf(w, "run %s  runbook %s  mode %s  started by %s at %s\n", st.WorkflowID, st.Runbook, st.Mode, st.StartedBy, st.StartedAt.UTC().Format(time.RFC3339))
	fmt.Fprintf(w, "state: %s; %d/%d steps done\n", st.State, st.Done, st.Total)
	if len(st.Running) > 0 {
		fmt.Fprintf(w, "running: %s\n", strings.Join(st.Running, ", "))
	}
	if len(st.Waiting) > 0 {
		fmt.Fprintf(w, "awaiting approval: %s\n", strings.Join(st.Waiting, ", "))
	}
}

func printList(w io.Writer, runs []operator.Summary) {
	if len(runs) == 0 {
		fmt.Fprintln(w, "no runs")
		return
	}
	sort.SliceStable(runs, func(i, j int) bool { return runs[i].Status.StartedAt.After(runs[j].Status.StartedAt) })
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "LOCK\tRUNBOOK\tMODE\tSTATE\tSTARTED\tBY\tRUN ID")
	for _, r := range runs {
		state := r.Status.State
		if r.Closed && (state == "" || state == workflows.StateRunning) {
			state = r.CloseState
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Status.Lock, r.Status.Runbook, r.Status.Mode, state,
			r.Status.StartedAt.UTC().Format(time.RFC3339), r.Status.StartedBy, r.RunID)
	}
	tw.Flush()
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
		fmt.Fprintf(w, "waiting for approval: %s", s.ID)
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
