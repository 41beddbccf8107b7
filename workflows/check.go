package workflows

import (
	"errors"
	"fmt"
	"strings"

	"go.temporal.io/sdk/workflow"

	"github.com/drctl/drctl/activities"
	"github.com/drctl/drctl/runbooks"
)

// CheckInput is the one check of a run's input: mode, the bounds of every
// number, parameters, chaos faults (drills only, on action steps that
// are not waits), who starts it and why. The operator calls it before it
// starts a run, so a mistake is reported at once and no lock is taken; the
// workflow calls it again as its first act, because its input may come
// from any Temporal client.
func CheckInput(in RunInput) error {
	return checkInput(in, versionLatest)
}

// checkInput is CheckInput as interpreter version v knew it, so a run
// recorded by an older build replays with the checks it had.
func checkInput(in RunInput, v workflow.Version) error {
	rb := &in.Runbook
	mode := in.Mode
	if mode == "" {
		mode = ModeFailover
	}
	if mode != ModeFailover && mode != ModeDrill {
		return fmt.Errorf("mode %q is not one of %s, %s", mode, ModeFailover, ModeDrill)
	}
	if err := runbooks.CheckBounds(rb); err != nil {
		return err
	}
	if _, err := runbooks.ParamValues(rb, in.Params); err != nil {
		return err
	}
	// A drill's failback child is part of the drill.
	drill := mode == ModeDrill || (v >= versionScheduled && in.FailbackOf != "")
	if drill {
		for _, s := range rb.Steps {
			if s.Child != nil {
				return fmt.Errorf("step %s runs a runbook as children, and a drill cannot yet: drill each child runbook on its own", s.ID)
			}
		}
	}
	if err := checkForEach(rb, in.Params); err != nil {
		return err
	}
	if len(in.Chaos) > 0 && !drill {
		return fmt.Errorf("chaos is injected in drills only; run with --mode %s", ModeDrill)
	}
	if err := checkFaults(rb, in.Chaos); err != nil {
		return err
	}
	if v >= versionNotifyOrdered {
		if err := errors.Join(CheckIdentity(in.StartedBy), CheckReason(in.Reason)); err != nil {
			return err
		}
	}
	if v >= versionScheduled && in.AutoApprove != "" {
		if !drill {
			return fmt.Errorf("automatic approval is for scheduled drills only; this run's mode is %s", mode)
		}
		if err := CheckIdentity(in.AutoApprove); err != nil {
			return fmt.Errorf("automatic approver: %w", err)
		}
		if len(in.Signers) > 0 {
			return errors.New("this drill takes signed decisions only (approvals.allowed_signers), and an automatic approval cannot sign; approve its gates by hand")
		}
	}
	if fb := in.Failback; fb != nil {
		if mode != ModeDrill {
			return fmt.Errorf("a failback runbook is for drills; run with --mode %s", ModeDrill)
		}
		if err := runbooks.CheckBounds(&fb.Runbook); err != nil {
			return fmt.Errorf("failback %s: %w", fb.Runbook.Name, err)
		}
		if _, err := runbooks.ParamValues(&fb.Runbook, fb.Params); err != nil {
			return fmt.Errorf("failback %s: %w", fb.Runbook.Name, err)
		}
		if err := checkFaults(&fb.Runbook, fb.Chaos); err != nil {
			return fmt.Errorf("failback %s: %w", fb.Runbook.Name, err)
		}
	}
	return nil
}

// checkFaults accepts faults for action steps of rb that are not waits.
func checkFaults(rb *runbooks.Runbook, faults []activities.Fault) error {
	for _, f := range faults {
		s, ok := rb.Step(f.Step)
		if !ok || s.Action == "" || s.Action == activities.ActionWait {
			return fmt.Errorf("chaos: %q is not an action step of runbook %s (waits and approvals take no faults)", f.Step, rb.Name)
		}
	}
	return nil
}

// checkLineage holds a run's claims about where it comes from to what
// Temporal says (from versionScheduled on): a run that says it is a
// drill's failback must be that drill's child under the failback ID, and
// automatic approval is taken only by a drill started by a drill
// schedule's firing, or by the failback of such a drill.
func checkLineage(ctx workflow.Context, in RunInput) error {
	info := workflow.GetInfo(ctx)
	parent := ""
	if p := info.ParentWorkflowExecution; p != nil {
		parent = p.ID
	}
	if in.FailbackOf != "" && (parent != in.FailbackOf || info.WorkflowExecution.ID != in.FailbackOf+FailbackSuffix) {
		return fmt.Errorf("failback_of %q: this run is not that drill's failback", in.FailbackOf)
	}
	if in.AutoApprove != "" && in.FailbackOf == "" && !strings.HasPrefix(parent, WorkflowIDPrefix+SchedulePrefix) {
		return errors.New("automatic approval comes only from a drill schedule (drctl drill schedule --auto-approve)")
	}
	if (in.Detection != nil || in.AutoApproveAfter > 0) && !strings.HasPrefix(parent, SiteWatchPrefix) {
		return errors.New("a detection and auto_approve_after come only from a site watch (drctl watch-sites)")
	}
	if a := in.AutoApproveAfter; a != 0 && (a.D() < MinAutoApproveAfter || a > runbooks.MaxDuration) {
		return fmt.Errorf("auto_approve_after %s is outside %s..%s", a, MinAutoApproveAfter, runbooks.MaxDuration)
	}
	return nil
}

// checkForEach resolves, before anything acts, each fan-out step's
// for_each that depends on parameters only, and refuses items no child
// lock can end with, duplicates and empty lists: found later, they would
// stop a fleet half way.
func checkForEach(rb *runbooks.Runbook, given map[string]string) error {
	params, err := runbooks.ParamValues(rb, given)
	if err != nil {
		return err
	}
	sc := runbooks.Scope{Params: params}
	for _, s := range rb.Steps {
		if s.Child == nil || s.ForEach == nil || usesOutputs(s.ForEach) {
			continue // none, or known only when the step runs (checked then)
		}
		items, err := forEachItems(s.ForEach, sc)
		switch {
		case err != nil:
			return fmt.Errorf("step %s: for_each: %w", s.ID, err)
		case len(items) == 0:
			return fmt.Errorf("step %s: for_each has no item", s.ID)
		}
	}
	return nil
}

// usesOutputs reports whether v refers to an earlier step's outputs.
func usesOutputs(v any) bool {
	uses := false
	runbooks.WalkStrings(map[string]any{"v": v}, func(_, str string) {
		refs, _ := runbooks.ParseRefs(str)
		for _, r := range refs {
			uses = uses || r.Kind == "steps"
		}
	})
	return uses
}
