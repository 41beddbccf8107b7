package sitewatch

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/drctl/drctl/internal/config"
	"github.com/drctl/drctl/internal/operator"
	"github.com/drctl/drctl/runbooks"
	"github.com/drctl/drctl/workflows"
)

// Options are what a Watcher takes besides the configuration.
type Options struct {
	// Identity names the watcher in its views. Default: config identity.
	Identity string
	// From is where the watcher stands. Default: config watch.from.
	From string
	// Dial opens every probe's connection. Default: a net.Dialer.
	Dial DialFunc
	// Catalog checks the on_loss runbooks (worker.Catalog()); required
	// when a site has on_loss.
	Catalog runbooks.Catalog
	// OnChange is told each view that changed (the CLI prints it).
	OnChange func(workflows.SiteView)
	// Logf reports a failed send; default: nothing.
	Logf func(format string, args ...any)
}

// Watcher probes every site from one place and sends its views to the
// sites' watch workflows.
type Watcher struct {
	client    client.Client
	taskQueue string
	watch     config.Watch
	o         Options
	sites     []site // by name
}

// site is a watched site: its probes, its watch's input and that input's
// digest, and this watcher's last view of it.
type site struct {
	name   string
	probes []string
	input  workflows.SiteWatchInput
	digest string
	view   *workflows.SiteView // nil before the first round
	sent   time.Time           // when the view was last sent; zero: send next round
}

// New makes a watcher from cfg. It checks what a proposal will need now,
// not at the loss: each on_loss runbook loads and validates against
// o.Catalog, its run input (parameters, reason) passes
// workflows.CheckInput, its auto_approve_after has a gate to open that
// would not time out first, and approvals.allowed_signers, when set, is
// read as drctl run reads it, so the proposed run takes signed CLI
// decisions only.
func New(cfg config.Config, c client.Client, o Options) (*Watcher, error) {
	if o.Identity == "" {
		o.Identity = cfg.Identity
	}
	if o.From == "" {
		o.From = cfg.Watch.From
	}
	cfg.Watch.From = o.From
	if err := errors.Join(cfg.Validate(), cfg.CheckWatch()); err != nil {
		return nil, err
	}
	if o.Dial == nil {
		o.Dial = (&net.Dialer{}).DialContext
	}
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
	var signers []workflows.Signer
	if path := cfg.Approvals.AllowedSigners; path != "" {
		var err error
		if signers, err = operator.LoadAllowedSigners(path); err != nil {
			return nil, err
		}
	}
	w := &Watcher{client: c, taskQueue: cfg.Temporal.TaskQueue, watch: cfg.Watch, o: o}
	for _, name := range slices.Sorted(maps.Keys(cfg.Sites)) {
		s := cfg.Sites[name]
		in := workflows.SiteWatchInput{
			Site: name, Quorum: cfg.Watch.Quorum,
			LostAfter:  runbooks.Duration(cfg.Watch.LostAfter),
			StaleAfter: runbooks.Duration(3 * cfg.Watch.ReportEvery),
			// Sorted: the order of the list is no part of the digest.
			Places: slices.Sorted(slices.Values(cfg.Watch.Places)),
		}
		if s.OnLoss.Runbook != "" {
			on, err := onLoss(name, s.OnLoss, o.Catalog, signers)
			if err != nil {
				return nil, err
			}
			in.OnLoss = on
		}
		if err := workflows.CheckSiteWatch(in); err != nil {
			return nil, fmt.Errorf("site %s: %w", name, err)
		}
		w.sites = append(w.sites, site{name: name, probes: s.Probes, input: in, digest: workflows.SiteWatchDigest(in)})
	}
	return w, nil
}

// onLoss loads a site's on_loss runbook and checks the run it would start.
func onLoss(name string, c config.OnLoss, cat runbooks.Catalog, signers []workflows.Signer) (*workflows.OnLoss, error) {
	if cat == nil {
		return nil, fmt.Errorf("sites.%s.on_loss: no action catalog to check %s against", name, c.Runbook)
	}
	rb, err := runbooks.Load(c.Runbook, cat)
	if err != nil {
		return nil, fmt.Errorf("sites.%s.on_loss.runbook: %w", name, err)
	}
	if err := checkAutoApprove(rb, c.AutoApproveAfter); err != nil {
		return nil, fmt.Errorf("sites.%s.on_loss.auto_approve_after: %w", name, err)
	}
	on := &workflows.OnLoss{Runbook: *rb, Params: c.Params, Reason: c.Reason, AutoApproveAfter: runbooks.Duration(c.AutoApproveAfter), Signers: signers}
	in := workflows.RunInput{
		Runbook: *rb, Params: c.Params, Mode: workflows.ModeFailover, StartedBy: workflows.SiteWatchStarter(name),
		Reason: c.Reason, AutoApproveAfter: on.AutoApproveAfter, Signers: signers,
	}
	if err := workflows.CheckInput(in); err != nil {
		err = fmt.Errorf("sites.%s.on_loss: %s would not start: %w", name, c.Runbook, err)
		for _, p := range rb.Params {
			if _, set := c.Params[p.Name]; !set && p.Name != strings.ToLower(p.Name) {
				err = fmt.Errorf("%w (param %s has upper-case letters; names under on_loss.params reach drctl lower-cased, so declare it in lower case)", err, p.Name)
			}
		}
		return nil, err
	}
	return on, nil
}

// checkAutoApprove holds auto_approve_after to the runbook: at least
// MinAutoApproveAfter, some gate opting in (approval.auto_approve: true,
// the reviewed runbook's say), and shorter than each such gate's own
// timeout, which would otherwise end the gate first.
func checkAutoApprove(rb *runbooks.Runbook, after time.Duration) error {
	if after == 0 {
		return nil
	}
	if after < workflows.MinAutoApproveAfter {
		return fmt.Errorf("%s is below %s: people need a real chance to answer", after, workflows.MinAutoApproveAfter)
	}
	opted := 0
	for _, s := range slices.Concat(rb.Preflight, rb.Steps) {
		a := s.Approval
		if a == nil || !a.AutoApprove {
			continue
		}
		opted++
		if a.Timeout > 0 && after >= a.Timeout.D() {
			return fmt.Errorf("%s is not shorter than gate %s's timeout (%s): the gate would time out first; shorten auto_approve_after or lengthen the gate's timeout", after, s.ID, a.Timeout)
		}
	}
	if opted == 0 {
		return fmt.Errorf("no approval gate of runbook %s opts in; add approval.auto_approve: true to the gates that may open with nobody there, or remove auto_approve_after", rb.Name)
	}
	return nil
}

// Run probes every watch.interval until ctx ends, then returns nil.
func (w *Watcher) Run(ctx context.Context) error {
	t := time.NewTicker(w.watch.Interval)
	defer t.Stop()
	for {
		w.Round(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Round probes every probe of every site at once, each bounded by
// watch.timeout, updates the views and sends those due.
func (w *Watcher) Round(ctx context.Context) {
	results := make([][]workflows.ProbeResult, len(w.sites))
	var wg sync.WaitGroup
	for i, s := range w.sites {
		results[i] = make([]workflows.ProbeResult, len(s.probes))
		for j, p := range s.probes {
			wg.Go(func() { results[i][j] = w.probe(ctx, p) })
		}
	}
	wg.Wait()
	if ctx.Err() != nil {
		return // cancelled mid-round: the results say nothing of the sites
	}
	now := time.Now()
	for i := range w.sites {
		s := &w.sites[i]
		if w.update(s, results[i], now) && w.o.OnChange != nil {
			w.o.OnChange(*s.view)
		}
		if s.sent.IsZero() || now.Sub(s.sent) >= w.watch.ReportEvery {
			w.send(ctx, s, now)
		}
	}
}

// probe runs one probe within watch.timeout.
func (w *Watcher) probe(ctx context.Context, p string) workflows.ProbeResult {
	pctx, cancel := context.WithTimeout(ctx, w.watch.Timeout)
	defer cancel()
	start := time.Now()
	err := Probe(pctx, w.o.Dial, p)
	r := workflows.ProbeResult{Probe: p, OK: err == nil, TookMs: time.Since(start).Milliseconds()}
	if err != nil {
		r.Error = err.Error()
	}
	return r
}

// update makes s's view from a round's results and reports whether it
// changed: Down flipped, or a probe's outcome did. A change is sent at
// once.
func (w *Watcher) update(s *site, results []workflows.ProbeResult, now time.Time) bool {
	down := !slices.ContainsFunc(results, func(r workflows.ProbeResult) bool { return r.OK })
	v := workflows.SiteView{Site: s.name, Watcher: w.o.Identity, From: w.o.From, Down: down, Since: now, At: now, Probes: results, Digest: s.digest}
	changed := s.view == nil || s.view.Down != down || !slices.EqualFunc(s.view.Probes, results, func(a, b workflows.ProbeResult) bool { return a.OK == b.OK })
	if s.view != nil && s.view.Down == down {
		v.Since = s.view.Since
	}
	s.view = &v
	if changed {
		s.sent = time.Time{}
	}
	return changed
}

// sendTimeout bounds one send, so an unreachable Temporal delays the next
// round by at most this.
const sendTimeout = 5 * time.Second

// send signals s's view to its watch, starting the watch if none runs,
// bounded as the watch would bound it (workflows.CapView). A failure is
// logged and the view is sent again next round.
func (w *Watcher) send(ctx context.Context, s *site, now time.Time) {
	sctx, cancel := context.WithTimeout(ctx, max(w.watch.Interval, sendTimeout))
	defer cancel()
	id := workflows.SiteWatchID(s.name)
	_, err := w.client.SignalWithStartWorkflow(sctx, id, workflows.SignalSiteView, workflows.CapView(*s.view), client.StartWorkflowOptions{
		ID:            id,
		TaskQueue:     w.taskQueue,
		StaticSummary: "site watch of " + s.name,
	}, workflows.SiteWatchWorkflow, s.input)
	if err != nil {
		if ctx.Err() == nil {
			w.o.Logf("send view of site %s to %s: %v (retried next round)", s.name, id, err)
		}
		return
	}
	s.sent = now
}

// Sites names the watched sites, in order.
func (w *Watcher) Sites() []string {
	var out []string
	for _, s := range w.sites {
		out = append(out, s.name)
	}
	return out
}
