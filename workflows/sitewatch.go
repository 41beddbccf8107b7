package workflows

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

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
//   - Only the places listed in the input (watch.places) vote; a view from
//     any other place is ignored and counted. A place is a watcher's claim,
//     not a proof: two watchers claiming one place within StaleAfter are
//     recorded as its rival claimants, and anyone who can signal the
//     namespace can claim any place (protect the namespace).
//   - Every view is bounded as it arrives (CapView), so no watcher can
//     grow the state, the memo or the continue-as-new input past limits.
//   - A vote is a place's latest view (watchers in one place count once),
//     counted while it is fresh: heard within StaleAfter; a vote not heard
//     for dropAfter × StaleAfter is dropped.
//   - The site is losing while at least Quorum places vote down; if that
//     holds, without a break seen at any signal or timer, for LostAfter,
//     the loss is declared: incident N, and the on_loss runbook is started
//     as a child under its lock (a proposal: it stops at its gates). A
//     lock already held is recorded with its holder, never queued, never
//     retried within the incident.
//   - While lost it stays lost; when Quorum places vote up, the site is
//     back: recorded and announced, with failback left to people. A later
//     loss is a new incident.
//   - State is carried across continue-as-new (every MaxSignals signals,
//     or sooner when Temporal suggests it), after taking every signal
//     already delivered. Notifications are fire-and-forget: one still in
//     flight postpones the continue-as-new to a later turn until twice
//     MaxSignals or Temporal's suggestion, when it is abandoned.
//   - The input is read once, at the first start: a watcher's later
//     configuration reaches the watch only when it is reset (drctl sites
//     reset). Each vote records whether its watcher's configuration (the
//     view's Digest) differs from the watch's.
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
	// dropAfter × StaleAfter unheard drops a vote.
	dropAfter = 10

	// MaxPlaces bounds watch.places.
	MaxPlaces = 16
	// Bounds of a view as a site watch keeps it (CapView): probes, the
	// bytes of a probe's URL or error, and of a name (site, place,
	// watcher, digest).
	MaxViewProbes = 32
	MaxViewText   = 512
	MaxViewName   = 64

	// MinAutoApproveAfter is the shortest auto_approve_after: a gate opens
	// by itself only after people had a real chance to answer.
	MinAutoApproveAfter = time.Minute
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
	// Places are where the watchers that vote stand (watch.places): at
	// least Quorum, each a site name.
	Places []string `json:"places"`
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
	// Signers, when any, make the run take signed CLI decisions only
	// (approvals.allowed_signers, read by the watcher as drctl run does).
	Signers []Signer `json:"signers,omitempty"`
}

// SiteWatchDigest is the digest of what a site watch decides and proposes
// by: its input but for the site, the test override and the state. A
// watcher sends the digest of the input it would start the watch with in
// each view, so the watch can show who runs a different configuration.
func SiteWatchDigest(in SiteWatchInput) string {
	in.Site, in.MaxSignals, in.State = "", 0, nil
	// encoding/json writes struct fields in order and map keys sorted:
	// the same input gives the same bytes, in the watcher and in replay.
	//workflowcheck:ignore
	b, err := json.Marshal(in)
	if err != nil {
		return "unencodable: " + err.Error()
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:12])
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
	// Places, Config (SiteWatchDigest of the input), Runbook (on_loss's
	// name) and AutoApproveAfter are the input's, shown as the watch
	// runs them.
	Places           []string          `json:"places,omitempty"`
	Config           string            `json:"config,omitempty"`
	Runbook          string            `json:"runbook,omitempty"`
	AutoApproveAfter runbooks.Duration `json:"auto_approve_after,omitempty"`
	// Votes are the latest view of each place, by place, oldest first.
	Votes []Vote `json:"votes,omitempty"`
	// Ignored counts the views from places not in Places.
	Ignored *Ignored `json:"ignored,omitempty"`
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
	// OtherConfig: the view's Digest is not the watch's; its watcher would
	// start the watch with another configuration.
	OtherConfig bool `json:"other_config,omitempty"`
	// Rival is another watcher that claimed this place within StaleAfter
	// of the latest view, last heard at RivalHeard.
	Rival      string     `json:"rival,omitempty"`
	RivalHeard *time.Time `json:"rival_heard,omitempty"`
}

// Ignored counts the views a watch took no vote from (a place not in its
// Places, or another site's view), and names the latest.
type Ignored struct {
	Views   int       `json:"views"`
	From    string    `json:"from"`
	Watcher string    `json:"watcher"`
	Heard   time.Time `json:"heard"`
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
	if in.OnLoss != nil {
		if a := in.OnLoss.AutoApproveAfter; a != 0 && (a.D() < MinAutoApproveAfter || a > runbooks.MaxDuration) {
			errs = append(errs, fmt.Errorf("auto_approve_after %s: use 0 (people decide) or %s..%s", a, MinAutoApproveAfter, runbooks.MaxDuration))
		}
	}
	if len(in.Places) < in.Quorum || len(in.Places) > MaxPlaces {
		errs = append(errs, fmt.Errorf("places: %d listed; list %d..%d places, at least the quorum", len(in.Places), max(in.Quorum, 2), MaxPlaces))
	}
	for i, p := range in.Places {
		if err := runbooks.CheckSite(p); err != nil || len(p) > MaxViewName {
			errs = append(errs, fmt.Errorf("places: %q is not a site name (a-z, 0-9, '.', '_', '-')", p))
		} else if slices.Contains(in.Places[:i], p) {
			errs = append(errs, fmt.Errorf("places: %s is listed twice", p))
		}
	}
	if err := checkState(in.State, in.Site); err != nil {
		errs = append(errs, fmt.Errorf("carried state: %w", err))
	}
	return errors.Join(errs...)
}

// checkState checks a state carried in the input: any client that can
// start the watch can write one, so nothing in it is taken on trust.
func checkState(st *SiteWatchState, site string) error {
	if st == nil {
		return nil
	}
	var errs []error
	switch st.State {
	case SiteUp, SiteBack:
	case SiteLost:
		if len(st.Recent) == 0 {
			errs = append(errs, errors.New("lost with no incident recorded"))
		}
	default:
		errs = append(errs, fmt.Errorf("state %q is not one of %s, %s, %s", st.State, SiteUp, SiteLost, SiteBack))
	}
	if st.Site != site {
		errs = append(errs, fmt.Errorf("site %q is not %q", st.Site, site))
	}
	if len(st.Votes) > MaxPlaces || len(st.Recent) > maxIncidents || st.Incidents < len(st.Recent) {
		errs = append(errs, fmt.Errorf("%d votes, %d of %d incidents: at most %d votes and %d incidents", len(st.Votes), len(st.Recent), st.Incidents, MaxPlaces, maxIncidents))
	}
	for _, v := range st.Votes {
		if !viewCapped(v.View) {
			errs = append(errs, fmt.Errorf("vote of %.64q is larger than a view may be", v.View.From))
		}
	}
	for _, inc := range st.Recent {
		if len(inc.Evidence) > MaxPlaces || slices.ContainsFunc(inc.Evidence, func(v SiteView) bool { return !viewCapped(v) }) {
			errs = append(errs, fmt.Errorf("incident %.64q: evidence larger than %d capped views", inc.ID, MaxPlaces))
		}
	}
	return errors.Join(errs...)
}

// CapView bounds a view: at most MaxViewProbes probes (the rest counted in
// MoreProbes), probe URLs and errors at most MaxViewText bytes, names and
// the digest at most MaxViewName; a cut text ends with "…". The watch caps
// every view it takes, and a watcher every view it sends.
func CapView(v SiteView) SiteView {
	v.Site, v.Watcher, v.From, v.Digest = clip(v.Site, MaxViewName), clip(v.Watcher, MaxViewName), clip(v.From, MaxViewName), clip(v.Digest, MaxViewName)
	v.MoreProbes = max(v.MoreProbes, 0)
	if n := len(v.Probes); n > MaxViewProbes {
		v.MoreProbes += n - MaxViewProbes
		v.Probes = v.Probes[:MaxViewProbes]
	}
	v.Probes = slices.Clone(v.Probes)
	for i := range v.Probes {
		v.Probes[i].Probe, v.Probes[i].Error = clip(v.Probes[i].Probe, MaxViewText), clip(v.Probes[i].Error, MaxViewText)
	}
	return v
}

// viewCapped reports whether CapView would leave v as it is.
func viewCapped(v SiteView) bool {
	if len(v.Probes) > MaxViewProbes || v.MoreProbes < 0 {
		return false
	}
	c := CapView(v)
	return c.Site == v.Site && c.Watcher == v.Watcher && c.From == v.From && c.Digest == v.Digest &&
		slices.Equal(c.Probes, v.Probes)
}

// clip cuts s to at most n bytes, on a rune boundary, marked with "…".
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	const mark = "…"
	cut := n - len(mark)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + mark
}

// siteWatch is a running watch: its input and state.
type siteWatch struct {
	in SiteWatchInput
	st *SiteWatchState
	// memo is the last memo written, to write only changes.
	memo    string
	pending int    // notifications in flight
	digest  string // SiteWatchDigest(in)
}

// SiteWatch is the site watch workflow.
func SiteWatch(ctx workflow.Context, in SiteWatchInput) (*SiteWatchState, error) {
	if err := CheckSiteWatch(in); err != nil {
		return nil, temporal.NewNonRetryableApplicationError("site watch: "+err.Error(), ErrRunFailed, nil)
	}
	w := &siteWatch{in: in, st: in.State, digest: SiteWatchDigest(in)}
	if w.st == nil {
		w.st = &SiteWatchState{Site: in.Site, State: SiteUp, Since: workflow.Now(ctx)}
	}
	w.st.Quorum, w.st.Places, w.st.Config, w.st.Signals = in.Quorum, in.Places, w.digest, 0
	w.st.Runbook, w.st.AutoApproveAfter = "", 0
	if o := in.OnLoss; o != nil {
		w.st.Runbook, w.st.AutoApproveAfter = o.Runbook.Name, o.AutoApproveAfter
	}
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
		suggested := workflow.GetInfo(ctx).GetContinueAsNewSuggested()
		if w.st.Signals < limit && !suggested {
			continue
		}
		// Take what already arrived, so no signal is left behind, then
		// start over with the state. A notification in flight would be
		// abandoned: wait for a later turn, unless the history must end.
		for {
			var v SiteView
			if !ch.ReceiveAsync(&v) {
				break
			}
			w.take(v, workflow.Now(ctx))
		}
		w.evaluate(ctx)
		if w.pending > 0 && !suggested && w.st.Signals < 2*limit {
			continue
		}
		next := in
		next.State = w.st
		return nil, workflow.NewContinueAsNewError(ctx, SiteWatchWorkflow, next)
	}
}

// take records a view, capped, as its place's vote; a view from a place
// not in Places (or of another site) is only counted. A different watcher
// claiming the place of a fresh vote is recorded as its rival.
func (w *siteWatch) take(v SiteView, now time.Time) {
	w.st.Signals++
	v = CapView(v)
	if v.Site != w.in.Site || !slices.Contains(w.in.Places, v.From) {
		n := 1
		if w.st.Ignored != nil {
			n += w.st.Ignored.Views
		}
		w.st.Ignored = &Ignored{Views: n, From: v.From, Watcher: v.Watcher, Heard: now}
		return
	}
	vote := Vote{View: v, Heard: now, OtherConfig: v.Digest != w.digest}
	if i := slices.IndexFunc(w.st.Votes, func(x Vote) bool { return x.View.From == v.From }); i >= 0 {
		old := w.st.Votes[i]
		switch {
		case old.View.Watcher == v.Watcher:
			vote.Rival, vote.RivalHeard = old.Rival, old.RivalHeard
		case !now.After(old.Heard.Add(w.in.StaleAfter.D())):
			vote.Rival, vote.RivalHeard = old.View.Watcher, &old.Heard
		}
		w.st.Votes = slices.Delete(w.st.Votes, i, i+1)
	}
	w.st.Votes = append(w.st.Votes, vote)
}

// votes are the state's votes with Fresh as of now, ordered by place; a
// rival not heard within StaleAfter is no longer shown.
func (w *siteWatch) votes(now time.Time) []Vote {
	out := slices.Clone(w.st.Votes)
	stale := w.in.StaleAfter.D()
	for i := range out {
		out[i].Fresh = !now.After(out[i].Heard.Add(stale))
		if r := out[i].RivalHeard; r != nil && now.After(r.Add(stale)) {
			out[i].Rival, out[i].RivalHeard = "", nil
		}
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
	w.st.Votes = slices.DeleteFunc(w.st.Votes, func(v Vote) bool {
		return now.Sub(v.Heard) > dropAfter*w.in.StaleAfter.D()
	})
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
		Reason: reason, AutoApproveAfter: o.AutoApproveAfter, Signers: o.Signers,
		Detection: &Detection{Site: w.in.Site, At: inc.DeclaredAt, Incident: inc.ID, Quorum: w.in.Quorum, Evidence: inc.Evidence},
	}
	inc.WorkflowID, inc.Lock = WorkflowID(rb.Lock), rb.Lock
	// The run holds the lock on its own: this watch continuing as new, or
	// being stopped, never touches it.
	cctx := workflow.WithChildOptions(ctx, runChildOptions(ctx, in, inc.DeclaredAt,
		fmt.Sprintf("%s (failover proposed by site watch, incident %s)", rb.Name, inc.ID)))
	var exec workflow.Execution
	err := workflow.ExecuteChildWorkflow(cctx, RunbookWorkflow, in).GetChildWorkflowExecution().Get(ctx, &exec)
	switch {
	case err == nil:
		inc.RunID = exec.RunID
	case temporal.IsWorkflowExecutionAlreadyStartedError(err):
		inc.NotProposed = lockHeld(ctx, rb.Lock)
	default:
		inc.NotProposed = "the run could not start: " + ErrorText(err)
	}
}

// back records the site's return and says that failback is for people.
func (w *siteWatch) back(ctx workflow.Context, now time.Time) {
	w.st.State, w.st.Since = SiteBack, now
	_, up := w.count(now)
	// Lost follows a declaration, which recorded an incident; a carried
	// state is checked to have one, and this stays safe without.
	incident := "none recorded"
	if n := len(w.st.Recent) - 1; n >= 0 {
		w.st.Recent[n].BackAt = &now
		incident = w.st.Recent[n].ID
	}
	text := fmt.Sprintf("site %s is reachable again: %d places see it up (quorum %d; incident %s). Failback is NOT automatic", w.in.Site, up, w.in.Quorum, incident)
	text += ": " + w.failbackHint()
	var evidence []SiteView
	for _, v := range w.votes(now) {
		if v.Fresh {
			evidence = append(evidence, v.View)
		}
	}
	w.notify(ctx, SiteBack, now, text, evidenceLines(evidence), incident)
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
// incident, never retried. Nothing waits for it; one still in flight when
// the watch must continue as new is abandoned (see SiteWatch).
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
	if ig := st.Ignored; ig != nil {
		// The latest ignored view's origin, not the count: views from
		// elsewhere must not write a memo each.
		b.WriteString(fmt.Sprintf("|ignored %s %s", ig.From, ig.Watcher))
	}
	for _, v := range st.Votes {
		b.WriteString(fmt.Sprintf("|%s %s %t %t %s %t %s", v.View.From, v.View.Watcher, v.View.Down, v.Fresh, at(&v.View.Since), v.OtherConfig, v.Rival))
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
