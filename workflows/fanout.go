package workflows

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/drctl/drctl/runbooks"
)

// A fan-out step runs another runbook as child runs: once, or once per
// item of its for_each, at most max_parallel at a time, each a run of its
// own (its own lock, the child runbook's lock then "-" and the item; its
// own report and audit). Invariants:
//   - A child starts only while the run is not stopping; with on_failure:
//     abort (the default) the first child that does not succeed stops new
//     ones from starting (the wave), and the step fails once the started
//     ones end. With continue every child runs and the step records the
//     failures without stopping the run.
//   - Aborting the parent cancels its running children; each then runs its
//     own compensations (a child treats cancellation as an abort), and the
//     step waits for them to end before the parent compensates. A parent
//     terminated (abort --force) leaves them running under their locks.
//   - A child whose lock is held does not start; it counts as failed,
//     naming the holder's workflow ID.
//   - The report keeps one row per child (item, workflow ID, state, RTO,
//     error) and a summary line; the memo shows the progress in steps of
//     about 2% so 500 children do not mean 500 memo writes.

// ChildRun is one child run of a fan-out step.
type ChildRun struct {
	Item       string `json:"item,omitempty"`
	WorkflowID string `json:"workflow_id"`
	RunID      string `json:"run_id,omitempty"`
	State      string `json:"state"`
	RTOMs      *int64 `json:"rto_ms,omitempty"`
	Error      string `json:"error,omitempty"`
}

// FanOutProgress is a running fan-out step's progress, in the memo.
type FanOutProgress struct {
	Step    string `json:"step"`
	Total   int    `json:"total"`
	Done    int    `json:"done"`
	Failed  int    `json:"failed"`
	Running int    `json:"running"`
}

func (p FanOutProgress) String() string {
	s := fmt.Sprintf("%s: %d/%d children done", p.Step, p.Done, p.Total)
	if p.Failed > 0 {
		s += fmt.Sprintf(", %d failed", p.Failed)
	}
	return s + fmt.Sprintf(", %d running", p.Running)
}

// forEachItems resolves a fan-out step's for_each: nil runs one child
// (item ""); a list, or an expression whose value is a list or
// comma-separated text, one child per item.
func forEachItems(v any, sc runbooks.Scope) ([]string, error) {
	if v == nil {
		return []string{""}, nil
	}
	r, err := runbooks.Resolve(v, sc)
	if err != nil {
		return nil, err
	}
	var items []string
	switch x := r.(type) {
	case string:
		for _, it := range strings.Split(x, ",") {
			if it = strings.TrimSpace(it); it != "" {
				items = append(items, it)
			}
		}
	case []any:
		for _, it := range x {
			s, ok := it.(string)
			if !ok {
				return nil, fmt.Errorf("item %v is not text", it)
			}
			items = append(items, s)
		}
	default:
		return nil, fmt.Errorf("%v is neither a list nor comma-separated text", r)
	}
	if len(items) > runbooks.MaxForEach {
		return nil, fmt.Errorf("%d items; the most is %d", len(items), runbooks.MaxForEach)
	}
	seen := map[string]bool{}
	for _, it := range items {
		if err := runbooks.CheckForEachItem(it); err != nil {
			return nil, err
		}
		if seen[it] {
			return nil, fmt.Errorf("item %q is listed twice", it)
		}
		seen[it] = true
	}
	return items, nil
}

// fanOut runs a fan-out step's children.
func (r *runner) fanOut(ctx workflow.Context, s runbooks.Step) {
	st := r.step(s.ID)
	sc := r.scope()
	items, err := forEachItems(s.ForEach, sc)
	if err == nil && len(items) == 0 {
		err = errors.New("no item")
	}
	if err != nil {
		r.fail(s, 0, fmt.Errorf("for_each: %w", err))
		return
	}
	with, err := runbooks.ResolveMap(s.With, sc)
	if err != nil {
		r.fail(s, 0, fmt.Errorf("resolve parameters: %w", err))
		return
	}
	params := map[string]string{}
	for _, p := range s.Child.Params {
		// A child parameter the step does not give takes the parent's of
		// the same name, when the parent has one.
		if v, ok := r.params[p.Name]; ok && p.Name != s.As {
			params[p.Name] = v
		}
	}
	for _, k := range workflow.DeterministicKeys(with) {
		params[k] = fmt.Sprint(with[k])
	}
	limit := s.MaxParallel
	if limit <= 0 {
		limit = runbooks.DefaultMaxParallel
	}
	abortWave := r.onFailure(s.ID) == runbooks.OnFailureAbort
	children := make([]ChildRun, len(items))
	prog := FanOutProgress{Step: s.ID, Total: len(items)}
	r.fanouts[s.ID] = &prog
	defer delete(r.fanouts, s.ID)
	step := max(1, len(items)/50)
	shown := -1
	show := func() {
		if prog.Done/step != shown || prog.Done == prog.Total {
			shown = prog.Done / step
			st.Summary = prog.String()
			r.publish()
		}
	}
	started := 0
	for i, item := range items {
		// A paused run starts no child; a stopping one, or a failed
		// wave, none at all.
		if err := workflow.Await(ctx, func() bool {
			return (prog.Running < limit && !r.paused) || r.stopping() || (abortWave && prog.Failed > 0)
		}); err != nil {
			break
		}
		if r.stopping() || (abortWave && prog.Failed > 0) {
			break
		}
		child := *s.Child
		p := copyParams(params)
		if s.ForEach != nil {
			child.Lock += "-" + item
			p[s.As] = item
		}
		id := WorkflowID(child.Lock)
		children[i] = ChildRun{Item: item, WorkflowID: id, State: StateRunning}
		// The parent's signers bind the children's decisions too.
		in := RunInput{Runbook: child, Params: p, Mode: r.rep.Mode, StartedBy: r.rep.StartedBy, Signers: r.in.Signers,
			Reason: fmt.Sprintf("step %s of %s (%s)", s.ID, r.rep.WorkflowID, r.rep.Runbook)}
		// An aborted parent cancels its children (the step's context is
		// cancelled), which compensate; the step waits for that before the
		// parent compensates. A parent ended without that (terminated)
		// leaves its children running (abandoned), each under its own
		// lock, to be steered by it.
		opts := runChildOptions(ctx, in, r.now(), fmt.Sprintf("%s %s (step %s of %s)", child.Name, item, s.ID, r.rep.WorkflowID))
		opts.WaitForCancellation = true
		cctx := workflow.WithChildOptions(ctx, opts)
		f := workflow.ExecuteChildWorkflow(cctx, RunbookWorkflow, in)
		prog.Running++
		started++
		workflow.Go(ctx, func(ctx workflow.Context) {
			c := &children[i]
			defer func() {
				prog.Running--
				prog.Done++
				if c.State != StateSucceeded {
					prog.Failed++
				}
				show()
			}()
			var exec workflow.Execution
			if err := f.GetChildWorkflowExecution().Get(ctx, &exec); err != nil {
				c.State, c.Error = StateFailed, ErrorText(err)
				if temporal.IsWorkflowExecutionAlreadyStartedError(err) {
					c.Error = fmt.Sprintf("lock %q is held by another run (%s)", child.Lock, id)
				}
				return
			}
			c.RunID = exec.RunID
			rep, err := childReport(ctx, f)
			switch {
			case rep != nil:
				c.State, c.RTOMs, c.Error = rep.State, rep.RTOMs, rep.Error
			case temporal.IsCanceledError(err):
				c.State, c.Error = StateAborted, "cancelled with the parent"
			default:
				c.State, c.Error = StateFailed, ErrorText(err)
			}
		})
	}
	// Children end on their own, or compensate when cancelled: wait for
	// all of them on a context the parent's abort does not cancel.
	dctx, _ := workflow.NewDisconnectedContext(ctx)
	_ = workflow.Await(dctx, func() bool { return prog.Running == 0 })
	for i := started; i < len(children); i++ {
		children[i] = ChildRun{Item: items[i], State: StepSkipped}
	}
	st.Children = children
	st.Summary = fanOutSummary(children)
	if ctx.Err() != nil {
		st.State = StepCancelled
		return
	}
	var bad []string
	for _, c := range children {
		if c.State != StateSucceeded && c.State != StepSkipped {
			bad = append(bad, strings.TrimSpace(c.Item+" "+c.State+": "+c.Error))
		}
	}
	outputs := map[string]any{"children": len(children), "succeeded": started - prog.Failed}
	switch {
	case len(bad) > 0:
		more := ""
		if len(bad) > 3 {
			more = fmt.Sprintf(" and %d more", len(bad)-3)
		}
		r.fail(s, 0, fmt.Errorf("%d of %d children did not succeed: %s%s", len(bad), len(children), strings.Join(bad[:min(3, len(bad))], "; "), more))
		st.Children, st.Summary = children, fanOutSummary(children)
		r.outputs[s.ID] = outputs // after fail, which clears them for on_failure: continue
		return
	case started < len(children):
		// The run stopped (another step failed, an abort) before every
		// child started: not done.
		st.State = StepCancelled
		r.outputs[s.ID] = outputs
		return
	}
	r.outputs[s.ID] = outputs
	st.State = StepSucceeded
	r.completed = append(r.completed, s.ID)
}

// fanOutSummary says how a fan-out's children ended, in one line.
func fanOutSummary(children []ChildRun) string {
	count := map[string]int{}
	var slowest *ChildRun
	for i, c := range children {
		count[c.State]++
		if c.RTOMs != nil && (slowest == nil || *c.RTOMs > *slowest.RTOMs) {
			slowest = &children[i]
		}
	}
	var parts []string
	for _, state := range []string{StateSucceeded, StateFailed, StateAborted, StepSkipped} {
		if n := count[state]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, state))
		}
	}
	s := fmt.Sprintf("%d children: %s", len(children), strings.Join(parts, ", "))
	if slowest != nil {
		name := slowest.Item
		if name == "" {
			name = slowest.WorkflowID
		}
		s += fmt.Sprintf("; slowest %s (RTO %s)", name, (time.Duration(*slowest.RTOMs) * time.Millisecond).String())
	}
	return s
}

func copyParams(m map[string]string) map[string]string {
	out := make(map[string]string, len(m)+1)
	for _, k := range workflow.DeterministicKeys(m) {
		out[k] = m[k]
	}
	return out
}
