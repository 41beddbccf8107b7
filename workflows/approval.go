package workflows

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/drctl/drctl/activities"
	"github.com/drctl/drctl/internal/sshsig"
	"golang.org/x/crypto/ssh"

	"go.temporal.io/sdk/workflow"

	"github.com/drctl/drctl/runbooks"
)

// registerHandlers installs the progress query, the decide and control
// Updates (with validators) and their Signal twins. A Signal is stored by the
// server even when no worker runs; it is checked by the same rules when a
// worker picks it up, and a refused one is recorded as a "refused" event.
func (r *runner) registerHandlers(ctx workflow.Context) error {
	if err := workflow.SetQueryHandler(ctx, QueryProgress, func() (*Report, error) {
		return r.rep, nil
	}); err != nil {
		return err
	}
	if err := workflow.SetUpdateHandlerWithOptions(ctx, UpdateDecide,
		func(ctx workflow.Context, d Decision) (DecisionResult, error) {
			if err := r.checkDecision(d); err != nil {
				return DecisionResult{}, err
			}
			return r.applyDecision(d), nil
		},
		workflow.UpdateHandlerOptions{Validator: func(ctx workflow.Context, d Decision) error { return r.checkDecision(d) }},
	); err != nil {
		return err
	}
	if err := workflow.SetUpdateHandlerWithOptions(ctx, UpdateControl,
		func(ctx workflow.Context, c Control) (ControlResult, error) {
			if err := r.checkControl(c); err != nil {
				return ControlResult{}, err
			}
			return r.applyControl(c), nil
		},
		workflow.UpdateHandlerOptions{Validator: func(ctx workflow.Context, c Control) error { return r.checkControl(c) }},
	); err != nil {
		return err
	}
	decisions := workflow.GetSignalChannel(ctx, SignalDecide)
	controls := workflow.GetSignalChannel(ctx, SignalControl)
	workflow.Go(ctx, func(ctx workflow.Context) {
		for {
			sel := workflow.NewSelector(ctx)
			sel.AddReceive(decisions, func(ch workflow.ReceiveChannel, _ bool) {
				var d Decision
				ch.Receive(ctx, &d)
				if r.gateNotReached(d.Step) {
					// Sent while no worker could answer, before the run
					// reached the gate: keep it for when the gate opens.
					r.queued[d.Step] = append(r.queued[d.Step], d)
					r.event(EventQueued, d.Step, d.By, "decision received before the gate opened; it is checked when the gate opens")
					return
				}
				if err := r.checkDecision(d); err != nil {
					r.event(EventRefused, d.Step, d.By, err.Error())
					r.publish()
					return
				}
				r.applyDecision(d)
			})
			sel.AddReceive(controls, func(ch workflow.ReceiveChannel, _ bool) {
				var c Control
				ch.Receive(ctx, &c)
				if err := r.checkControl(c); err != nil {
					r.event(EventRefused, "", c.By, err.Error())
					r.publish()
					return
				}
				r.applyControl(c)
			})
			sel.Select(ctx)
			if ctx.Err() != nil {
				return
			}
		}
	})
	return nil
}

// checkDecision is the single authority on whether a decision is accepted.
func (r *runner) checkDecision(d Decision) error {
	if strings.TrimSpace(d.By) == "" {
		return fmt.Errorf("a decision must say who decides; set your identity (--as NAME or DRCTL_IDENTITY)")
	}
	if r.version >= versionNotifyOrdered {
		if err := errors.Join(CheckIdentity(d.By), CheckReason(d.Reason)); err != nil {
			return err
		}
	}
	if d.Via == ViaSchedule && !d.auto {
		return fmt.Errorf("only the run itself decides as its schedule's automatic approver")
	}
	i, ok := r.index[d.Step]
	if !ok {
		return fmt.Errorf("run %s has no step %q%s", r.rep.WorkflowID, d.Step, r.waitingHint())
	}
	st := &r.rep.Steps[i]
	if st.Approval == nil {
		return fmt.Errorf("step %q is an action, not an approval gate%s", d.Step, r.waitingHint())
	}
	if st.Approval.Decision != "" {
		return fmt.Errorf("step %q was already %s by %s at %s", d.Step, st.Approval.Decision, st.Approval.By, st.Approval.At.UTC().Format("15:04:05Z"))
	}
	if _, pending := r.decisions[d.Step]; pending {
		return fmt.Errorf("step %q already has a decision being applied", d.Step)
	}
	if st.State != StepWaiting {
		return fmt.Errorf("step %q is not awaiting approval (it is %s)%s", d.Step, st.State, r.waitingHint())
	}
	if !approverAllowed(st.Approval.Approvers, d) && !(d.auto && r.drillApprover(d.Step, d.By)) {
		return fmt.Errorf("%s may not decide step %q; allowed approvers: %s", d.By, d.Step, strings.Join(st.Approval.Approvers, ", "))
	}
	if d.Approve && st.Approval.TwoPerson && d.By == r.rep.StartedBy {
		return fmt.Errorf("two-person rule: %s started this run and may not approve its gates; ask another approver (%s)", d.By, strings.Join(st.Approval.Approvers, ", "))
	}
	if r.version >= versionNotifyOrdered {
		if min := st.Approval.MinApprovals; d.Approve && min > 1 {
			if d.By == r.rep.StartedBy {
				return fmt.Errorf("%s started this run and does not count toward the %d approvals step %q needs", d.By, min, d.Step)
			}
			if slices.Contains(st.Approval.ApprovedBy, d.By) {
				return fmt.Errorf("%s already approved step %q; it needs %d more from %s", d.By, d.Step, min-len(st.Approval.ApprovedBy), strings.Join(st.Approval.Approvers, ", "))
			}
		}
		if err := r.checkSignature(d); err != nil {
			return err
		}
	}
	return nil
}

// checkSignature: when the run has signers, a decision that did not come
// through Slack (authenticated there by Slack's request signature and the
// user mapping) must carry an SSHSIG signature of SignedText by one of
// its decider's keys. Verification is pure, so replay gives the same
// verdict.
func (r *runner) checkSignature(d Decision) error {
	if len(r.in.Signers) == 0 || d.Via == ViaSlack {
		return nil
	}
	if d.Signature == "" {
		return fmt.Errorf("this run takes signed decisions only: sign with your SSH key (drctl approve --sign-key FILE, or a key in ssh-agent)")
	}
	var keys []ssh.PublicKey
	for _, s := range r.in.Signers {
		if s.Identity != d.By {
			continue
		}
		// workflowcheck sees reflect's panic path (runtime.Frames) inside
		// x/crypto/ssh's parsers; parsing and verifying are pure.
		//workflowcheck:ignore
		if k, err := sshsig.ParseKey(s.Key); err == nil {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return fmt.Errorf("%s has no signing key in this run's allowed signers", d.By)
	}
	//workflowcheck:ignore
	if _, err := sshsig.Verify(d.Signature, SignatureNamespace, SignedText(r.rep.WorkflowID, r.rep.RunID, d), keys); err != nil {
		return fmt.Errorf("%s's decision is not validly signed: %v", d.By, err)
	}
	return nil
}

func (r *runner) waitingHint() string {
	var w []string
	for _, st := range r.rep.Steps {
		if st.State == StepWaiting {
			w = append(w, st.ID)
		}
	}
	if len(w) == 0 {
		return "; no step is awaiting approval"
	}
	return "; awaiting approval: " + strings.Join(w, ", ")
}

func approverAllowed(approvers []string, d Decision) bool {
	for _, a := range approvers {
		if a == runbooks.AnyApprover || a == d.By {
			return true
		}
		if g, ok := strings.CutPrefix(a, runbooks.GroupPrefix); ok {
			for _, dg := range d.Groups {
				if dg == g {
					return true
				}
			}
		}
	}
	return false
}

func (r *runner) applyDecision(d Decision) DecisionResult {
	kind := EventRejected
	if d.Approve {
		kind = EventApproved
	}
	r.event(kind, d.Step, d.By, d.Reason)
	res := DecisionResult{Step: d.Step, Approved: d.Approve, By: d.By, At: r.now()}
	if a := r.step(d.Step).Approval; d.Approve && a.MinApprovals > 1 {
		// One of several approvals: the gate opens with the last needed.
		a.ApprovedBy = append(a.ApprovedBy, d.By)
		if res.Needed = a.MinApprovals - len(a.ApprovedBy); res.Needed > 0 {
			r.publish()
			return res
		}
	}
	r.decisions[d.Step] = d
	return res
}

// gateNotReached reports whether id is an approval gate the run has not
// reached yet.
func (r *runner) gateNotReached(id string) bool {
	i, ok := r.index[id]
	return ok && r.rep.Steps[i].Approval != nil && r.rep.Steps[i].State == StepPending
}

// awaitApproval blocks the gate until a decision or its timeout.
func (r *runner) awaitApproval(ctx workflow.Context, s runbooks.Step) {
	st := r.step(s.ID)
	if msg, err := runbooks.Resolve(s.Approval.Message, r.scope()); err == nil {
		st.Approval.Message = fmt.Sprint(msg)
	}
	st.State = StepWaiting
	// Decisions signalled before the gate opened are checked now, in the
	// order they arrived; the first one the rules accept decides.
	for _, d := range r.queued[s.ID] {
		if _, done := r.decisions[s.ID]; done {
			break
		}
		if err := r.checkDecision(d); err != nil {
			r.event(EventRefused, d.Step, d.By, err.Error())
			continue
		}
		r.applyDecision(d)
	}
	delete(r.queued, s.ID)
	if r.version >= versionScheduled && r.in.AutoApprove != "" {
		r.autoApprove(s.ID)
	}
	r.publish()
	r.notifyGate(s, st.Approval.Message)
	decided := func() bool { _, ok := r.decisions[s.ID]; return ok }
	var err error
	ok := true
	limit := s.Approval.Timeout.D()
	if after := r.in.AutoApproveAfter.D(); r.version >= versionSites && after > 0 && s.Approval.AutoApprove && (limit == 0 || after < limit) {
		// A site watch's proposal whose site says auto_approve_after, at a
		// gate the runbook lets open so: the gate's own timeout, when
		// shorter, keeps its meaning.
		start := r.now()
		ok, err = r.awaitSilence(ctx, s.ID, after, decided)
		if limit > 0 {
			limit -= r.now().Sub(start)
			if limit <= 0 && err == nil && !ok {
				limit = time.Millisecond // the gate's own timeout has passed
			}
		}
	} else if after > 0 && r.version >= versionSites {
		r.event(EventRefused, s.ID, r.in.StartedBy, fmt.Sprintf("auto_approve_after: gate %q does not say auto_approve: true (or its own timeout is shorter); it waits for a person", s.ID))
	}
	switch {
	case err != nil:
	case limit > 0:
		ok, err = workflow.AwaitWithTimeout(ctx, limit, decided)
	default:
		err = workflow.Await(ctx, decided)
	}
	st = r.step(s.ID)
	now := r.now()
	defer r.notifyDecision(s.ID)
	switch {
	case err != nil:
		st.State = StepCancelled
	case !ok:
		st.Approval.Decision, st.Approval.At = activities.DecisionTimedOut, &now
		r.event(EventTimedOut, s.ID, "", "no decision within "+s.Approval.Timeout.String())
		if s.Approval.OnTimeout == runbooks.OnFailureContinue {
			st.State, st.Summary = StepSucceeded, "no decision within "+s.Approval.Timeout.String()+"; continued (on_timeout: continue)"
			r.outputs[s.ID] = map[string]any{runbooks.GateOutputDecision: activities.DecisionTimedOut}
			return
		}
		r.fail(s, 0, fmt.Errorf("no decision within %s (on_timeout: abort)", s.Approval.Timeout))
	default:
		d := r.decisions[s.ID]
		st.Approval.By, st.Approval.Via, st.Approval.Reason, st.Approval.At = d.By, d.Via, d.Reason, &now
		st.Approval.Signed = d.Signature != ""
		r.outputs[s.ID] = map[string]any{runbooks.GateOutputDecidedBy: d.By, runbooks.GateOutputDecision: activities.DecisionApproved}
		if d.Approve {
			st.Approval.Decision, st.State = activities.DecisionApproved, StepSucceeded
			st.Summary = "approved by " + d.By
			if len(st.Approval.ApprovedBy) > 1 {
				st.Summary = "approved by " + strings.Join(st.Approval.ApprovedBy, ", ")
			}
			switch {
			case d.auto && d.Via == ViaAutoApproveAfter:
				st.Summary += " (automatically: " + d.Reason + ")"
			case d.auto:
				st.Summary += " (automatically: the drill's schedule names this approver)"
			}
			return
		}
		st.Approval.Decision = activities.DecisionRejected
		// A rejection always stops the run, whatever on_failure says.
		st.State, st.Error = StepFailed, fmt.Sprintf("rejected by %s: %s", d.By, d.Reason)
		if r.failed == "" {
			r.failed = s.ID
		}
	}
}

func (r *runner) checkControl(c Control) error {
	if strings.TrimSpace(c.By) == "" {
		return fmt.Errorf("%s must say who asks; set your identity (--as NAME or DRCTL_IDENTITY)", c.Op)
	}
	if r.version >= versionNotifyOrdered {
		if err := errors.Join(CheckIdentity(c.By), CheckReason(c.Reason)); err != nil {
			return err
		}
	}
	switch c.Op {
	case OpPause:
		if r.paused {
			return fmt.Errorf("run is already paused")
		}
	case OpResume:
		if !r.paused {
			return fmt.Errorf("run is not paused")
		}
	case OpAbort:
		if r.aborting != nil {
			return fmt.Errorf("run is already being aborted (by %s)", r.aborting.By)
		}
	default:
		return fmt.Errorf("unknown control operation %q; use %s, %s or %s", c.Op, OpPause, OpResume, OpAbort)
	}
	switch {
	case r.rep.State != StateRunning:
		return fmt.Errorf("run is %s; it no longer takes %s", r.rep.State, c.Op)
	case c.Op != OpAbort && r.stopping():
		// After a failure nothing new starts; an abort may still cancel
		// the actions that are running, pause and resume mean nothing.
		return fmt.Errorf("run is %s; it no longer takes %s", r.stateWord(), c.Op)
	}
	return nil
}

func (r *runner) stateWord() string {
	if r.rep.State == StateRunning && r.stopping() {
		return "stopping"
	}
	return r.rep.State
}

func (r *runner) applyControl(c Control) ControlResult {
	switch c.Op {
	case OpPause:
		r.paused = true
		r.event(EventPaused, "", c.By, c.Reason)
	case OpResume:
		r.paused = false
		r.event(EventResumed, "", c.By, c.Reason)
	case OpAbort:
		r.aborting = &c
		r.paused = false
		r.event(EventAbort, "", c.By, c.Reason)
	}
	r.publish()
	state := StateRunning
	if r.paused {
		state = StatePaused
	}
	if r.aborting != nil {
		state = StateAborting
	}
	return ControlResult{State: state}
}

// autoApprove decides gate id for the run's automatic approver when the
// rules a person's decision meets accept it; otherwise the refusal is
// recorded and the gate waits for people like any other.
func (r *runner) autoApprove(id string) {
	if _, done := r.decisions[id]; done {
		return
	}
	d := Decision{Step: id, Approve: true, By: r.in.AutoApprove, Via: ViaSchedule, Reason: "automatic approval named by the drill's schedule", auto: true}
	if !r.drillApprover(id, d.By) {
		r.event(EventRefused, id, d.By, fmt.Sprintf("automatic approval: gate %q does not name %s in drill_approvers; it waits for a person", id, d.By))
		return
	}
	if err := r.checkDecision(d); err != nil {
		r.event(EventRefused, id, d.By, "automatic approval: "+err.Error())
		return
	}
	r.applyDecision(d)
}

// awaitSilence waits until gate id is decided or nobody has decided it for
// after, and then approves it (approveAfterSilence). A pause stops the
// clock: after a resume it starts again from zero, so an operator who
// paused to look is not overtaken. ok reports a decision.
func (r *runner) awaitSilence(ctx workflow.Context, id string, after time.Duration, decided func() bool) (bool, error) {
	for {
		ok, err := workflow.AwaitWithTimeout(ctx, after, func() bool { return decided() || r.paused })
		switch {
		case err != nil || decided():
			return decided(), err
		case r.paused:
			if err := workflow.Await(ctx, func() bool { return decided() || !r.paused }); err != nil {
				return false, err
			}
			continue
		case !ok && r.approveAfterSilence(id):
			return true, nil
		}
		return false, nil
	}
}

// approveAfterSilence opens gate id because nobody decided within the
// run's AutoApproveAfter (a site watch's proposal, at a gate that says
// auto_approve). It is the site's configured policy, not a person: the
// approvers, two-person rule and min_approvals are not asked, and the
// record says so. A gate where someone already approved (of several
// needed) is left to people: somebody did decide. It reports whether it
// approved.
func (r *runner) approveAfterSilence(id string) bool {
	if _, done := r.decisions[id]; done {
		return false
	}
	if a := r.step(id).Approval; a != nil && len(a.ApprovedBy) > 0 {
		r.event(EventRefused, id, r.in.StartedBy, fmt.Sprintf("auto_approve_after: %s already approved; the gate waits for the other approvals", strings.Join(a.ApprovedBy, ", ")))
		return false
	}
	site := ""
	if r.in.Detection != nil {
		site = r.in.Detection.Site
	}
	d := Decision{Step: id, Approve: true, By: r.in.StartedBy, Via: ViaAutoApproveAfter, auto: true,
		Reason: fmt.Sprintf("nobody decided within %s (auto_approve_after of site %s)", r.in.AutoApproveAfter, site)}
	r.event(EventApproved, id, d.By, d.Reason)
	r.decisions[id] = d
	return true
}

// drillApprover reports whether gate id names who in its drill_approvers.
func (r *runner) drillApprover(id, who string) bool {
	s, ok := r.rb.Step(id)
	return ok && s.Approval != nil && slices.Contains(s.Approval.DrillApprovers, who)
}
