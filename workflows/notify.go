package workflows

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/drctl/drctl/activities"
	"github.com/drctl/drctl/runbooks"
)

// Notifications (from versionNotify on): the run tells people what it does
// — run started, a gate waiting (with what the steps behind it would
// change), the decision, a step failing, the run finished with its RTO and
// RPO. Each is an activity with a short retry budget whose failure is
// ignored: Slack being down or slow never holds a step, a gate or a
// decision (the CLI path keeps working).
//
// Order (from versionNotifyOrdered on): notifications reach the channel in
// the order the run produced them. One sender coroutine takes them from a
// FIFO queue and sends one at a time; a gate's entry runs the Observes of
// the steps it guards in its turn. Before that version each notification
// was its own coroutine, and a slow Slack could post "run finished" above
// the decision that led to it; that path stays for runs recorded then.

// notifyOptions bound every notification: four quick attempts (about 4 s
// of backoff when Slack refuses outright) within a minute. A rate limit's
// Retry-After is honoured inside the attempt or as the next retry delay.
var notifyOptions = workflow.ActivityOptions{
	StartToCloseTimeout: 30 * time.Second,
	// The notifier heartbeats, so an attempt handed to a worker that died
	// (a site that lost power) is retried elsewhere within seconds.
	HeartbeatTimeout:       3 * time.Second,
	ScheduleToCloseTimeout: time.Minute,
	RetryPolicy:            &temporal.RetryPolicy{InitialInterval: 500 * time.Millisecond, BackoffCoefficient: 2, MaximumInterval: 10 * time.Second, MaximumAttempts: 4},
}

// notifier is the runner's notification state.
type notifier struct {
	on         bool
	pending    int
	thread     *activities.MessageRef
	threadDone bool
	gates      map[string]*activities.MessageRef // approval message per gate
	gateDone   map[string]bool
	sent       int
	// queue and sending: the ordered path (versionNotifyOrdered).
	queue   []outgoing
	sending bool
}

// outgoing is one queued notification. prepare, when set, completes n in
// the sender's turn (a gate's Observes); after receives the posted
// message, or an empty ref when nothing was posted.
type outgoing struct {
	n       activities.Notification
	prepare func(ctx workflow.Context, n *activities.Notification)
	after   func(activities.MessageRef)
}

// notify sends n in the background: queued behind the run's earlier
// notifications (versionNotifyOrdered on), or before that in a coroutine
// of its own that waits for the thread's root message (or its failure).
func (r *runner) notify(n activities.Notification, after func(activities.MessageRef)) {
	if !r.note.on {
		if after != nil {
			after(activities.MessageRef{})
		}
		return
	}
	r.fill(&n)
	if r.version >= versionNotifyOrdered {
		r.enqueue(outgoing{n: n, after: after})
		return
	}
	r.note.pending++
	ctx, _ := workflow.NewDisconnectedContext(r.ctx)
	workflow.Go(ctx, func(ctx workflow.Context) {
		defer func() { r.note.pending-- }()
		if n.Kind != activities.KindRunStarted {
			_ = workflow.Await(ctx, func() bool { return r.note.threadDone })
			n.Thread = r.note.thread
		}
		if n.Kind == activities.KindApprovalDecided {
			_ = workflow.Await(ctx, func() bool { return r.note.gateDone[n.Step] })
			n.Ref = r.note.gates[n.Step]
		}
		if !r.note.on {
			return // turned off while this one waited for the thread
		}
		var ref activities.MessageRef
		err := workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, notifyOptions), activities.NotifyActivity, n).Get(ctx, &ref)
		if n.Kind == activities.KindRunStarted && err == nil && ref.TS == "" && r.version >= versionNotifyQuiet {
			// The notifier is not configured on this deployment.
			r.note.on = false
		}
		if after != nil {
			if err != nil || ref.TS == "" {
				after(activities.MessageRef{})
			} else {
				after(ref)
			}
		}
	})
}

func (r *runner) notifyRunStarted() {
	r.notify(activities.Notification{Kind: activities.KindRunStarted}, func(ref activities.MessageRef) {
		if ref.TS != "" {
			r.note.thread = &ref
		}
		r.note.threadDone = true
	})
}

// notifyGate asks for a decision. What the gate guards is the Observe of
// the action steps that need it, run first (read-only, on a worker).
func (r *runner) notifyGate(s runbooks.Step, message string) {
	if !r.note.on {
		return
	}
	if r.version >= versionNotifyOrdered {
		n := activities.Notification{
			Kind: activities.KindApprovalRequested, Step: s.ID, StepMessage: message,
			Approvers: s.Approval.Approvers,
		}
		r.fill(&n)
		r.enqueue(outgoing{
			n: n,
			prepare: func(ctx workflow.Context, n *activities.Notification) {
				n.Changes = r.guardedChanges(ctx, s.ID)
			},
			after: func(ref activities.MessageRef) {
				if ref.TS != "" {
					r.note.gates[s.ID] = &ref
				}
			},
		})
		return
	}
	r.note.gates[s.ID], r.note.gateDone[s.ID] = nil, false
	ctx, _ := workflow.NewDisconnectedContext(r.ctx)
	workflow.Go(ctx, func(ctx workflow.Context) {
		if r.version >= versionNotifyQuiet {
			// Learn first whether anyone listens: no Observes for nobody.
			_ = workflow.Await(ctx, func() bool { return r.note.threadDone })
			if !r.note.on {
				r.note.gateDone[s.ID] = true
				return
			}
		}
		changes := r.guardedChanges(ctx, s.ID)
		r.notify(activities.Notification{
			Kind: activities.KindApprovalRequested, Step: s.ID, StepMessage: message,
			Approvers: s.Approval.Approvers, Changes: changes,
		}, func(ref activities.MessageRef) {
			if ref.TS != "" {
				r.note.gates[s.ID] = &ref
			}
			r.note.gateDone[s.ID] = true
		})
	})
}

// fill stamps n with the run's identity, its idempotency key and the time
// it was produced.
func (r *runner) fill(n *activities.Notification) {
	r.note.sent++
	n.Key = fmt.Sprintf("%s/%s/%s/%s/%d", r.rep.WorkflowID, r.rep.RunID, n.Kind, n.Step, r.note.sent)
	n.Channel = r.rb.Notify.SlackChannel
	n.WorkflowID, n.RunID, n.Runbook, n.Lock, n.Mode = r.rep.WorkflowID, r.rep.RunID, r.rep.Runbook, r.rep.Lock, r.rep.Mode
	n.StartedBy, n.StartedAt, n.Reason, n.Objectives = r.rep.StartedBy, r.rep.StartedAt, r.rep.Reason, r.rep.Objectives
	n.Elapsed = runbooks.Duration(r.now().Sub(r.rep.StartedAt))
}

// enqueue adds o to the ordered queue and starts the sender on first use.
func (r *runner) enqueue(o outgoing) {
	r.note.queue = append(r.note.queue, o)
	r.note.pending++
	if r.note.sending {
		return
	}
	r.note.sending = true
	ctx, _ := workflow.NewDisconnectedContext(r.ctx)
	workflow.Go(ctx, r.sendInOrder)
}

// sendInOrder is the one sender: it posts queued notifications one at a
// time, in the order they were produced. Every message after the first is
// threaded under the run's root message; a decision edits its gate's
// message. A notifier that posts nothing for run_started is off: what is
// queued, and what comes later, is dropped.
func (r *runner) sendInOrder(ctx workflow.Context) {
	actx := workflow.WithActivityOptions(ctx, notifyOptions)
	for {
		if err := workflow.Await(ctx, func() bool { return len(r.note.queue) > 0 }); err != nil {
			return
		}
		o := r.note.queue[0]
		r.note.queue = r.note.queue[1:]
		var ref activities.MessageRef
		if r.note.on {
			n := o.n
			if o.prepare != nil {
				o.prepare(ctx, &n)
			}
			if n.Kind != activities.KindRunStarted {
				n.Thread = r.note.thread
			}
			if n.Kind == activities.KindApprovalDecided {
				n.Ref = r.note.gates[n.Step]
			}
			err := workflow.ExecuteActivity(actx, activities.NotifyActivity, n).Get(ctx, &ref)
			switch {
			case err != nil:
				ref = activities.MessageRef{}
			case n.Kind == activities.KindRunStarted && ref.TS == "":
				r.note.on = false // not configured on this deployment
			}
		}
		if o.after != nil {
			o.after(ref)
		}
		r.note.pending--
	}
}

// guardedChanges observes the action steps that directly need gate, in
// runbook order, with inputs that can be resolved now.
func (r *runner) guardedChanges(ctx workflow.Context, gate string) []string {
	octx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 20 * time.Second,
		RetryPolicy:         &temporal.RetryPolicy{MaximumAttempts: 2},
	})
	var out []string
	for _, s := range r.rb.Steps {
		if s.Action == "" || s.Action == activities.ActionWait || !slices.Contains(s.Needs, gate) {
			continue
		}
		with, err := runbooks.ResolveMap(s.With, r.scope())
		if err != nil {
			out = append(out, fmt.Sprintf("%s (%s): inputs known only at run time", s.ID, s.Action))
			continue
		}
		var obs activities.Observation
		if err := workflow.ExecuteActivity(octx, s.Action+activities.ObserveSuffix, r.request(s.ID, s.Action, with, false)).Get(ctx, &obs); err != nil {
			out = append(out, fmt.Sprintf("%s (%s): could not observe: %s", s.ID, s.Action, ErrorText(err)))
			continue
		}
		line := fmt.Sprintf("%s (%s): now %s", s.ID, s.Action, obs.Current)
		if len(obs.Changes) > 0 {
			line += "; would " + strings.Join(obs.Changes, "; ")
		} else {
			line += "; nothing to change"
		}
		out = append(out, line)
	}
	return out
}

func (r *runner) notifyDecision(id string) {
	st := r.step(id)
	a := st.Approval
	if a == nil {
		return
	}
	if a.Decision == "" {
		if r.version < versionNotifyQuiet || st.State != StepCancelled {
			return
		}
		// The run stopped while the gate waited: say so on its message, so
		// nobody clicks a gate that can no longer open.
		r.notify(activities.Notification{Kind: activities.KindApprovalDecided, Step: id, Decision: activities.DecisionCancelled}, nil)
		return
	}
	n := activities.Notification{Kind: activities.KindApprovalDecided, Step: id, Decision: a.Decision, DecidedBy: a.By, Via: a.Via, DecisionReason: a.Reason}
	if a.At != nil {
		n.DecidedAt = *a.At
	}
	r.notify(n, nil)
}

func (r *runner) notifyStepFailed(id string) {
	st := r.step(id)
	r.notify(activities.Notification{Kind: activities.KindStepFailed, Step: id, Attempt: st.Attempts, Error: st.Error}, nil)
}

func (r *runner) notifyFinished() {
	r.notify(activities.Notification{Kind: activities.KindRunFinished, State: r.rep.State, Error: r.rep.Error, RTO: r.rep.RTO, RPO: r.rep.RPO}, nil)
}

// flushNotifications gives pending notifications (the last is usually
// run_finished) a bounded time to land before the run closes.
func (r *runner) flushNotifications() {
	if !r.note.on || r.note.pending == 0 {
		return
	}
	ctx, _ := workflow.NewDisconnectedContext(r.ctx)
	wait := notifyOptions.ScheduleToCloseTimeout
	if r.version >= versionNotifyQuiet {
		// The lock is held until the run closes; a slow Slack must not
		// hold it. What is still pending is abandoned.
		wait = 5 * time.Second
	}
	_, _ = workflow.AwaitWithTimeout(ctx, wait, func() bool { return r.note.pending == 0 })
}
