package workflows

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/drctl/drctl/activities"
	"github.com/drctl/drctl/runbooks"
)

// Site watch: one long-lived workflow per site (fixed ID SiteWatchID), fed
// by the views of watchers standing in several places (internal/sitewatch).
// It is the only place a loss is decided, so the decision is made once per
// incident however many watchers see it at the same instant: Temporal's
// one-execution-per-ID is the leader election.
//
// Rules:
//   - A vote is a place's latest view (watchers in one place count once),
//     counted while it is fresh: heard within StaleAfter.
//   - The site is losing while at least Quorum places vote down; if that
//     holds, without a break seen at any signal or timer, for LostAfter,
//     the loss is declared: incident N, and the on_loss runbook is started
//     as a child under its lock (a proposal: it stops at its gates). A
//     lock already held is recorded with its holder, never queued, never
//     retried within the incident.
//   - While lost it stays lost; when Quorum places vote up, the site is
//     back: recorded and announced, with failback left to people. A later
//     loss is a new incident.
//   - State is carried across continue-as-new (every MaxSignals signals).
const (
	SiteWatchWorkflow = "drctl.SiteWatch"
	// SiteWatchPrefix prefixes a site watch's workflow ID; only a run whose
	// parent's ID has it was proposed by a site watch.
	SiteWatchPrefix = "drctl-site-"
	SignalSiteView  = "site-view"  // SiteView
	QuerySiteWatch  = "site-watch" // returns SiteWatchState

	// Site states.
	SiteUp   = "up"
	SiteLost = "lost"
	// SiteBack is up again after a declared loss; detection goes on as
	// when up, and the failback waits for people.
	SiteBack = "back"

	// DefaultMaxSignals is how many signals a site watch takes before it
	// continues as new.
	DefaultMaxSignals = 1000
	// maxIncidents bounds the incidents kept in the state and memo.
	maxIncidents = 20
)

// SiteWatchID is the workflow ID of a site's watch.
func SiteWatchID(site string) string { return SiteWatchPrefix + site }

// SiteWatchStarter is who a site watch's proposed run says started it
// (an identity: CheckIdentity allows no ':').
func SiteWatchStarter(site string) string { return "site-watch@" + site }

// SiteWatchInput starts (or continues) a site's watch.
type SiteWatchInput struct {
	Site   string `json:"site"`
	Quorum int    `json:"quorum"`
	// LostAfter is how long the quorum must hold; StaleAfter is how old a
	// view may be and still count (3 × the watchers' report_every).
	LostAfter  runbooks.Duration `json:"lost_after"`
	StaleAfter runbooks.Duration `json:"stale_after"`
	// OnLoss is the run to propose; nil proposes nothing.
	OnLoss *OnLoss `json:"on_loss,omitempty"`
	// MaxSignals overrides DefaultMaxSignals (tests).
	MaxSignals int `json:"max_signals,omitempty"`
	// State is carried over by continue-as-new; nil at the first start.
	State *SiteWatchState `json:"state,omitempty"`
}

// OnLoss is the run a site's loss proposes.
type OnLoss struct {
	// Runbook as the watcher loaded and checked it.
	Runbook          runbooks.Runbook  `json:"runbook"`
	Params           map[string]string `json:"params,omitempty"`
	Reason           string            `json:"reason,omitempty"`
	AutoApproveAfter runbooks.Duration `json:"auto_approve_after,omitempty"`
}

// SiteWatchState is a site watch's state: its query answer and its memo
// (MemoKey), readable with no worker up.
type SiteWatchState struct {
	Site  string `json:"site"`
	State string `json:"state"` // SiteUp, SiteLost, SiteBack
	// Since is when State last changed.
	Since time.Time `json:"since,omitzero"`
	// LosingSince is when the quorum of down votes began, while it holds
	// and the loss is not yet declared.
	LosingSince *time.Time `json:"losing_since,omitempty"`
	Quorum      int        `json:"quorum"`
	// Votes are the latest view of each place, by place, oldest first.
	Votes []Vote `json:"votes,omitempty"`
	// Incidents counts every incident; Recent keeps the latest ones.
	Incidents int        `json:"incidents"`
	Recent    []Incident `json:"recent,omitempty"`
	Signals   int        `json:"signals"` // taken by this run
}

// Vote is a place's latest view and when the watch heard it.
type Vote struct {
	View  SiteView  `json:"view"`
	Heard time.Time `json:"heard"`
	// Fresh: heard within StaleAfter at the last evaluation.
	Fresh bool `json:"fresh"`
}

// Incident is one declared loss.
type Incident struct {
	ID         string    `json:"id"` // "east#3"
	DeclaredAt time.Time `json:"declared_at"`
	// Evidence is every fresh view at declaration, by place.
	Evidence []SiteView `json:"evidence"`
	// WorkflowID and RunID name the proposed run; NotProposed says why
	// there is none (no on_loss, lock held by ..., start failed).
	WorkflowID  string     `json:"workflow_id,omitempty"`
	RunID       string     `json:"run_id,omitempty"`
	Lock        string     `json:"lock,omitempty"`
	NotProposed string     `json:"not_proposed,omitempty"`
	BackAt      *time.Time `json:"back_at,omitempty"`
	// NotifyError is an announcement's failure, when one failed.
	NotifyError string `json:"notify_error,omitempty"`
}

// CheckSiteWatch checks a site watch's input.
func CheckSiteWatch(in SiteWatchInput) error {
	var errs []error
	if err := runbooks.CheckName(in.Site); err != nil {
		errs = append(errs, fmt.Errorf("site: %w", err))
	}
	if in.Quorum < 2 {
		errs = append(errs, fmt.Errorf("quorum %d: at least 2 places must agree", in.Quorum))
	}
	if in.LostAfter <= 0 || in.LostAfter > runbooks.MaxDuration || in.StaleAfter <= 0 || in.StaleAfter > runbooks.MaxDuration {
		errs = append(errs, fmt.Errorf("lost_after %s and stale_after %s must be within 0s..%s, above 0", in.LostAfter, in.StaleAfter, runbooks.MaxDuration))
	}
	if in.OnLoss != nil && (in.OnLoss.AutoApproveAfter < 0 || in.OnLoss.AutoApproveAfter > runbooks.MaxDuration) {
		errs = append(errs, fmt.Errorf("auto_approve_after %s is outside 0s..%s", in.OnLoss.AutoApproveAfter, runbooks.MaxDuration))
	}
	return errors.Join(errs...)
}

// siteWatch is a running watch: its input and state.
type siteWatch struct {
	in SiteWatchInput
	st *SiteWatchState
	// memo is the last memo written, to write only changes.
	memo    string
	pending int // notifications in flight
}

// SiteWatch is the site watch workflow.
func SiteWatch(ctx workflow.Context, in SiteWatchInput) (*SiteWatchState, error) {
	if err := CheckSiteWatch(in); err != nil {
		return nil, temporal.NewNonRetryableApplicationError("site watch: "+err.Error(), ErrRunFailed, nil)
	}
	w := &siteWatch{in: in, st: in.State}
	if w.st == nil {
		w.st = &SiteWatchState{Site: in.Site, State: SiteUp, Since: workflow.Now(ctx)}
	}
	w.st.Quorum, w.st.Signals = in.Quorum, 0
	if err := workflow.SetQueryHandler(ctx, QuerySiteWatch, func() (SiteWatchState, error) {
		st := *w.st
		st.Votes = w.votes(workflow.Now(ctx))
		return st, nil
	}); err != nil {
		return nil, err
	}
	limit := in.MaxSignals
	if limit <= 0 {
		limit = DefaultMaxSignals
	}
	ch := workflow.GetSignalChannel(ctx, SignalSiteView)
	var (
		timer    workflow.Future
		cancel   workflow.CancelFunc
		deadline time.Time
	)
	w.evaluate(ctx)
	for {
		// One timer, at the next moment the verdict can change without a
		// signal: the loss's deadline, or a down vote going stale.
		if next := w.nextWake(workflow.Now(ctx)); !next.Equal(deadline) {
			if cancel != nil {
				cancel()
			}
			timer, cancel, deadline = nil, nil, next
			if !next.IsZero() {
				tctx, c := workflow.WithCancel(ctx)
				timer, cancel = workflow.NewTimer(tctx, max(next.Sub(workflow.Now(ctx)), time.Millisecond)), c
			}
		}
		s := workflow.NewSelector(ctx)
		s.AddReceive(ch, func(c workflow.ReceiveChannel, more bool) {
			var v SiteView
			c.Receive(ctx, &v)
			w.take(v, workflow.Now(ctx))
		})
		if timer != nil {
			s.AddFuture(timer, func(workflow.Future) { timer, cancel, deadline = nil, nil, time.Time{} })
		}
		s.AddReceive(ctx.Done(), func(workflow.ReceiveChannel, bool) {})
		s.Select(ctx)
		if ctx.Err() != nil {
			return w.st, ctx.Err() // cancelled: the watch ends as it stands
		}
		w.evaluate(ctx)
		if w.st.Signals < limit {
			continue
		}
		// Take what already arrived, then start over with the state.
		for {
			var v SiteView
			if !ch.ReceiveAsync(&v) {
				break
			}
			w.take(v, workflow.Now(ctx))
			w.evaluate(ctx)
		}
		_, _ = workflow.AwaitWithTimeout(ctx, time.Minute, func() bool { return w.pending == 0 })
		next := in
		next.State = w.st
		return nil, workflow.NewContinueAsNewError(ctx, SiteWatchWorkflow, next)
	}
}

// take records a view as its place's vote.
func (w *siteWatch) take(v SiteView, now time.Time) {
	w.st.Signals++
	if v.Site != w.in.Site || v.From == "" {
		return // not this site's, or from nowhere: no vote
	}
	i := slices.IndexFunc(w.st.Votes, func(x Vote) bool { return x.View.From == v.From })
	if i >= 0 {
		w.st.Votes = slices.Delete(w.st.Votes, i, i+1)
	}
	w.st.Votes = append(w.st.Votes, Vote{View: v, Heard: now})
}

// votes are the state's votes with Fresh as of now, ordered by place.
func (w *siteWatch) votes(now time.Time) []Vote {
	out := slices.Clone(w.st.Votes)
	for i := range out {
		out[i].Fresh = !now.After(out[i].Heard.Add(w.in.StaleAfter.D()))
	}
	slices.SortFunc(out, func(a, b Vote) int { return strings.Compare(a.View.From, b.View.From) })
	return out
}

// count returns how many places vote down and up among fresh votes.
func (w *siteWatch) count(now time.Time) (down, up int) {
	for _, v := range w.votes(now) {
		switch {
		case !v.Fresh:
		case v.View.Down:
			down++
		default:
			up++
		}
	}
	return down, up
}

// nextWake is when a verdict may change with no signal: while losing, the
// declaration's deadline or the first down vote to go stale; else never.
func (w *siteWatch) nextWake(now time.Time) time.Time {
	if w.st.LosingSince == nil {
		return time.Time{}
	}
	next := w.st.LosingSince.Add(w.in.LostAfter.D())
	for _, v := range w.votes(now) {
		if v.Fresh && v.View.Down {
			if stale := v.Heard.Add(w.in.StaleAfter.D() + time.Millisecond); stale.Before(next) {
				next = stale
			}
		}
	}
	return next
}

// evaluate applies the rules at the current time and writes the memo if
// what it shows changed.
func (w *siteWatch) evaluate(ctx workflow.Context) {
	now := workflow.Now(ctx)
	down, up := w.count(now)
	switch w.st.State {
	case SiteLost:
		if up >= w.in.Quorum {
			w.back(ctx, now)
		}
	default: // up, back
		switch {
		case down < w.in.Quorum:
			w.st.LosingSince = nil
		case w.st.LosingSince == nil:
			w.st.LosingSince = &now
		case !now.Before(w.st.LosingSince.Add(w.in.LostAfter.D())):
			w.declare(ctx, now)
		}
	}
	w.writeMemo(ctx)
}

// declare declares a loss: a new incident, its evidence, and the proposal.
func (w *siteWatch) declare(ctx workflow.Context, now time.Time) {
	w.st.Incidents++
	inc := Incident{ID: fmt.Sprintf("%s#%d", w.in.Site, w.st.Incidents), DeclaredAt: now}
	for _, v := range w.votes(now) {
		if v.Fresh {
			inc.Evidence = append(inc.Evidence, v.View)
		}
	}
	w.st.State, w.st.Since, w.st.LosingSince = SiteLost, now, nil
	w.propose(ctx, &inc)
	w.st.Recent = append(w.st.Recent, inc)
	if len(w.st.Recent) > maxIncidents {
		w.st.Recent = w.st.Recent[len(w.st.Recent)-maxIncidents:]
	}
	down, _ := w.count(now)
	text := fmt.Sprintf("site %s is LOST (incident %s): %d places agree it is unreachable (quorum %d)", w.in.Site, inc.ID, down, w.in.Quorum)
	switch {
	case inc.RunID != "":
		text += fmt.Sprintf("; proposed run %s of %s waits at its gates (drctl status %s)", inc.WorkflowID, w.in.OnLoss.Runbook.Name, inc.Lock)
	default:
		text += "; nothing proposed: " + inc.NotProposed
	}
	w.notify(ctx, SiteLost, now, text, evidenceLines(inc.Evidence), inc.ID)
}

// propose starts the on_loss run as an abandoned child under its lock and
// waits only for it to start; the lock held is recorded with its holder.
func (w *siteWatch) propose(ctx workflow.Context, inc *Incident) {
	o := w.in.OnLoss
	if o == nil {
		inc.NotProposed = "no on_loss runbook configured for the site"
		return
	}
	rb := &o.Runbook
	reason := o.Reason
	if reason == "" {
		reason = fmt.Sprintf("site %s lost", w.in.Site)
	}
	in := RunInput{
		Runbook: *rb, Params: o.Params, Mode: ModeFailover, StartedBy: SiteWatchStarter(w.in.Site),
		Reason: reason, AutoApproveAfter: o.AutoApproveAfter,
		Detection: &Detection{Site: w.in.Site, At: inc.DeclaredAt, Incident: inc.ID, Quorum: w.in.Quorum, Evidence: inc.Evidence},
	}
	inc.WorkflowID, inc.Lock = WorkflowID(rb.Lock), rb.Lock
	cctx := workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{
		WorkflowID:          inc.WorkflowID,
		WorkflowTaskTimeout: 3 * time.Second,
		// The run holds the lock on its own: this watch continuing as
		// new, or being stopped, never touches it.
		ParentClosePolicy:     enumspb.PARENT_CLOSE_POLICY_ABANDON,
		WorkflowIDReusePolicy: enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		TypedSearchAttributes: temporal.NewSearchAttributes(startAttributes(rb.Name, rb.Lock, ModeFailover)...),
		Memo: map[string]any{MemoKey: Status{
			Runbook: rb.Name, Lock: rb.Lock, Mode: ModeFailover, StartedBy: in.StartedBy,
			StartedAt: inc.DeclaredAt, Reason: reason, State: StateRunning,
			Total: len(rb.Steps) + len(rb.Preflight),
		}},
		StaticSummary: fmt.Sprintf("%s (failover proposed by site watch, incident %s)", rb.Name, inc.ID),
	})
	var exec workflow.Execution
	err := workflow.ExecuteChildWorkflow(cctx, RunbookWorkflow, in).GetChildWorkflowExecution().Get(ctx, &exec)
	switch {
	case err == nil:
		inc.RunID = exec.RunID
	case temporal.IsWorkflowExecutionAlreadyStartedError(err):
		actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
			StartToCloseTimeout: 30 * time.Second,
			RetryPolicy:         &temporal.RetryPolicy{MaximumAttempts: 3},
		})
		var holder string
		if err := workflow.ExecuteActivity(actx, LockHolderActivity, rb.Lock).Get(ctx, &holder); err != nil {
			holder = fmt.Sprintf("a run that could not be described (%s)", ErrorText(err))
		}
		inc.NotProposed = fmt.Sprintf("lock %q is held by %s", rb.Lock, holder)
	default:
		inc.NotProposed = "the run could not start: " + ErrorText(err)
	}
}

// back records the site's return and says that failback is for people.
func (w *siteWatch) back(ctx workflow.Context, now time.Time) {
	w.st.State, w.st.Since = SiteBack, now
	_, up := w.count(now)
	// Lost always follows a declaration, which recorded an incident.
	n := len(w.st.Recent) - 1
	w.st.Recent[n].BackAt = &now
	text := fmt.Sprintf("site %s is reachable again: %d places see it up (quorum %d; incident %s). Failback is NOT automatic", w.in.Site, up, w.in.Quorum, w.st.Recent[n].ID)
	text += ": " + w.failbackHint()
	var evidence []SiteView
	for _, v := range w.votes(now) {
		if v.Fresh {
			evidence = append(evidence, v.View)
		}
	}
	w.notify(ctx, SiteBack, now, text, evidenceLines(evidence), w.st.Recent[n].ID)
}

// failbackHint suggests the failback: the on_loss runbook's drill
// failback when it names one, else a generic next step.
func (w *siteWatch) failbackHint() string {
	if o := w.in.OnLoss; o != nil && o.Runbook.Drill.Failback != "" {
		return fmt.Sprintf("when the site is healthy, plan and run the failback: drctl plan %s, then drctl run %s --reason \"%s is back\"", o.Runbook.Drill.Failback, o.Runbook.Drill.Failback, w.in.Site)
	}
	return fmt.Sprintf("when the site is healthy, plan and run your failback runbook: drctl plan FILE, then drctl run FILE --reason \"%s is back\"", w.in.Site)
}

// evidenceLines are views for people: one line per place.
func evidenceLines(views []SiteView) []string {
	var out []string
	for _, v := range views {
		verdict := "up"
		if v.Down {
			verdict = "down"
		}
		line := fmt.Sprintf("%s (%s): %s since %s", v.From, v.Watcher, verdict, v.Since.UTC().Format(time.RFC3339))
		for _, p := range v.Probes {
			if !p.OK {
				line += fmt.Sprintf("; %s: %s", p.Probe, p.Error)
			}
		}
		out = append(out, line)
	}
	return out
}

// notify announces a change of incident in the background; a failure of
// the notifier (beyond its short retry budget) is recorded in the
// incident, never retried.
func (w *siteWatch) notify(ctx workflow.Context, state string, at time.Time, text string, lines []string, incident string) {
	kind := activities.KindSiteLost
	if state == SiteBack {
		kind = activities.KindSiteBack
	}
	id := SiteWatchID(w.in.Site)
	n := activities.Notification{
		Kind: kind, Key: fmt.Sprintf("%s/%d/%s", id, w.st.Incidents, state), WorkflowID: id,
		State: state, StartedAt: at, Reason: text, Failing: lines,
	}
	if o := w.in.OnLoss; o != nil {
		n.Runbook, n.Lock, n.Channel = o.Runbook.Name, o.Runbook.Lock, o.Runbook.Notify.SlackChannel
	}
	w.pending++
	workflow.Go(ctx, func(ctx workflow.Context) {
		defer func() { w.pending-- }()
		err := workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, notifyOptions), activities.NotifyActivity, n).Get(ctx, nil)
		if err == nil {
			return
		}
		for i := range w.st.Recent {
			if w.st.Recent[i].ID == incident {
				w.st.Recent[i].NotifyError = state + ": " + ErrorText(err)
			}
		}
	})
}

// writeMemo upserts the state as the memo when what it shows changed
// (every signal would otherwise add an event): the state, the incidents,
// and each place's verdict, freshness and probes' outcomes. Report times
// move on every signal and are left out of the comparison.
func (w *siteWatch) writeMemo(ctx workflow.Context) {
	st := *w.st
	st.Votes = w.votes(workflow.Now(ctx))
	at := func(t *time.Time) string {
		if t == nil {
			return "-"
		}
		return t.UTC().Format(time.RFC3339Nano)
	}
	var b strings.Builder
	b.WriteString(fmt.Sprintf("%s|%s|%s|%d", st.State, at(&st.Since), at(st.LosingSince), st.Incidents))
	for _, inc := range st.Recent {
		b.WriteString(fmt.Sprintf("|%s %s %s %s %s", inc.ID, inc.RunID, inc.NotProposed, at(inc.BackAt), inc.NotifyError))
	}
	for _, v := range st.Votes {
		b.WriteString(fmt.Sprintf("|%s %s %t %t %s", v.View.From, v.View.Watcher, v.View.Down, v.Fresh, at(&v.View.Since)))
		for _, p := range v.View.Probes {
			b.WriteString(fmt.Sprintf(" %s=%t:%s", p.Probe, p.OK, p.Error))
		}
	}
	if b.String() == w.memo {
		return
	}
	w.memo = b.String()
	// The evidence stays out of the memo (the query and the proposed
	// run's Detection carry it), so the memo stays small.
	st.Recent = slices.Clone(st.Recent)
	for i := range st.Recent {
		st.Recent[i].Evidence = nil
	}
	_ = workflow.UpsertMemo(ctx, map[string]any{MemoKey: st})
}
