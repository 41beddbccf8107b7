package slackapp

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/drctl/drctl/activities"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"

	drslack "github.com/drctl/drctl/activities/slack"
	"github.com/drctl/drctl/internal/config"
	"github.com/drctl/drctl/internal/operator"
	"github.com/drctl/drctl/workflows"
)

// Decider sends a decision to a run as an Update whose ID makes it
// idempotent, and returns the workflow validator's answer.
type Decider interface {
	DecideAs(ctx context.Context, run, runID string, d workflows.Decision, updateID string) (workflows.DecisionResult, error)
}

var _ Decider = (*operator.Operator)(nil)

// Path is where Run serves the interactivity endpoint in http mode.
const Path = "/slack/interactivity"

// Options tune an App. Zero values take the documented defaults.
type Options struct {
	// DecideTimeout bounds the work after a click is acknowledged: the
	// Update and the replies to Slack. Default 30s.
	DecideTimeout time.Duration
	// Logger gets one line per click and any Slack or Temporal error; it
	// never gets a secret. Default slog.Default().
	Logger *slog.Logger
	// MaxBody bounds an interactivity request's body. Default 1 MiB.
	MaxBody int64
}

// App receives approval clicks, over HTTP (it is the http.Handler of the
// interactivity endpoint) or Socket Mode, and turns them into decisions.
type App struct {
	cfg      config.Slack
	decider  Decider
	api      *slack.Client
	apiURL   string
	secret   string // signing secret (http mode)
	appToken string // app-level token (socket mode)
	opts     Options
	log      *slog.Logger
	groups   *groupCache
	groupIDs []string
	replays  *replayGuard

	base   context.Context // parent of the asynchronous work after an ack
	cancel context.CancelFunc
	wg     sync.WaitGroup // background work (group refresh)
	clicks sync.WaitGroup // clicks acknowledged and not yet answered
	bg     sync.Once
}

// New returns an App for cfg that sends decisions through d. It reads the
// bot token, and the signing secret (mode http) or the app-level token
// (mode socket), from their references now.
func New(cfg config.Slack, d Decider, opts Options) (*App, error) {
	if !cfg.Enabled() {
		return nil, errors.New("slack is not configured: set slack.bot_token")
	}
	bot, err := cfg.BotToken.Read()
	if err != nil {
		return nil, fmt.Errorf("slack.bot_token: %w", err)
	}
	a := &App{cfg: cfg, decider: d, opts: opts, replays: newReplayGuard()}
	switch cfg.Mode {
	case "", "http":
		if a.secret, err = cfg.SigningSecret.Read(); err != nil {
			return nil, fmt.Errorf("slack.signing_secret (needed for mode http): %w", err)
		}
	case "socket":
		if a.appToken, err = cfg.AppToken.Read(); err != nil {
			return nil, fmt.Errorf("slack.app_token (needed for mode socket): %w", err)
		}
	default:
		return nil, fmt.Errorf("slack.mode is %q; use http or socket", cfg.Mode)
	}
	if a.opts.DecideTimeout == 0 {
		a.opts.DecideTimeout = 30 * time.Second
	}
	if a.opts.MaxBody == 0 {
		a.opts.MaxBody = 1 << 20
	}
	a.log = a.opts.Logger
	if a.log == nil {
		a.log = slog.Default()
	}
	a.api = drslack.NewClient(bot, cfg.APIURL, 10*time.Second)
	a.apiURL = cfg.APIURL
	ttl := cfg.GroupTTL
	if ttl <= 0 {
		ttl = time.Minute
	}
	a.groups = newGroupCache(func(ctx context.Context, g string) ([]string, error) {
		return a.api.GetUserGroupMembersContext(ctx, g)
	}, ttl)
	for id := range cfg.Groups {
		a.groupIDs = append(a.groupIDs, id)
	}
	slices.Sort(a.groupIDs)
	a.base, a.cancel = context.WithCancel(context.Background())
	return a, nil
}

// Run receives clicks the configured way until ctx ends: mode http serves
// Path on cfg.Listen, mode socket holds a Socket Mode connection. It keeps
// the group cache fresh meanwhile, and waits for clicks in flight.
func (a *App) Run(ctx context.Context) error {
	defer a.Close()
	a.StartGroupRefresh()
	if a.cfg.Mode == "socket" {
		return a.RunSocket(ctx)
	}
	mux := http.NewServeMux()
	mux.Handle(Path, a)
	listen := a.cfg.Listen
	if listen == "" {
		listen = "127.0.0.1:8089"
	}
	srv := &http.Server{Addr: listen, Handler: mux, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	select {
	case err := <-errc:
		return fmt.Errorf("slack interactivity endpoint on %s: %w", listen, err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return srv.Shutdown(sctx)
}

// StartGroupRefresh refreshes the configured user groups in the background
// (every quarter of the TTL, any entry past half of it) until Close.
func (a *App) StartGroupRefresh() {
	a.bg.Do(func() {
		a.wg.Go(func() { a.groups.run(a.base, a.groupIDs) })
	})
}

// Wait blocks until every acknowledged click has been answered.
func (a *App) Wait() { a.clicks.Wait() }

// Close lets clicks in flight finish — Slack was told they were received,
// so the clicker is owed an answer — for up to DecideTimeout, then cancels
// what is left and stops the background refresh.
func (a *App) Close() {
	done := make(chan struct{})
	go func() { a.clicks.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(a.opts.DecideTimeout):
	}
	a.cancel()
	a.clicks.Wait()
	a.wg.Wait()
}

// ServeHTTP is the interactivity endpoint. The body is verified with the
// signing secret before anything reads it; requests older than five
// minutes and replays of a request already seen are refused; the click is
// acknowledged at once and decided afterwards.
func (a *App) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "POST only", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, a.opts.MaxBody))
	if err != nil {
		http.Error(w, "request body too large", http.StatusRequestEntityTooLarge)
		return
	}
	// NewSecretsVerifier refuses a timestamp more than five minutes from now
	// (slack.ErrExpiredTimestamp) before any signature is computed.
	v, err := slack.NewSecretsVerifier(r.Header, a.secret)
	if err == nil {
		_, _ = v.Write(body)
		err = v.Ensure()
	}
	if err != nil {
		a.log.Warn("slack: refused an unverified interactivity request", "remote", r.RemoteAddr, "err", err)
		http.Error(w, "request not verified", http.StatusUnauthorized)
		return
	}
	mac, ok := signatureMAC(r.Header)
	if !ok { // the verifier accepted it, so this does not happen
		http.Error(w, "request not verified", http.StatusUnauthorized)
		return
	}
	if !a.replays.first(mac) {
		a.log.Warn("slack: refused a replayed interactivity request", "remote", r.RemoteAddr)
		http.Error(w, "request already seen", http.StatusConflict)
		return
	}
	cb, err := parsePayload(body)
	if err != nil {
		http.Error(w, "malformed payload: "+err.Error(), http.StatusBadRequest)
		return
	}
	if cb.Type != slack.InteractionTypeBlockActions {
		w.WriteHeader(http.StatusOK) // not ours to handle
		return
	}
	if _, _, err := click(cb); err != nil {
		http.Error(w, "malformed payload: "+err.Error(), http.StatusBadRequest)
		return
	}
	w.WriteHeader(http.StatusOK)
	a.dispatch(cb)
}

func parsePayload(body []byte) (slack.InteractionCallback, error) {
	var cb slack.InteractionCallback
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return cb, errors.New("not a form")
	}
	payload := form.Get("payload")
	if payload == "" {
		return cb, errors.New("no payload field")
	}
	if err := cb.UnmarshalJSON([]byte(payload)); err != nil {
		return cb, errors.New("payload is not an interaction")
	}
	return cb, nil
}

// click finds drctl's button in a block_actions callback.
func click(cb slack.InteractionCallback) (approve bool, v drslack.ButtonValue, err error) {
	for _, act := range cb.ActionCallback.BlockActions {
		if act == nil || (act.ActionID != drslack.ActionApprove && act.ActionID != drslack.ActionReject) {
			continue
		}
		v, err := drslack.ParseButtonValue(act.Value)
		if err != nil {
			return false, v, err
		}
		if cb.User.ID == "" {
			return false, v, errors.New("no user")
		}
		return act.ActionID == drslack.ActionApprove, v, nil
	}
	return false, drslack.ButtonValue{}, errors.New("no drctl approval action")
}

// dispatch decides a click asynchronously, after it was acknowledged.
func (a *App) dispatch(cb slack.InteractionCallback) {
	a.clicks.Go(func() {
		ctx, cancel := context.WithTimeout(a.base, a.opts.DecideTimeout)
		defer cancel()
		a.handle(ctx, cb)
	})
}

// handle is the one path a click takes, whichever way it arrived: map the
// clicker to an identity and groups, send the decision, tell the clicker
// the outcome, and on success replace the buttons with it.
func (a *App) handle(ctx context.Context, cb slack.InteractionCallback) {
	approve, v, err := click(cb)
	if err != nil {
		return
	}
	log := a.log.With("run", v.Run, "step", v.Step, "slack_user", cb.User.ID, "approve", approve)
	identity, ok := a.cfg.Users[cb.User.ID]
	if !ok {
		log.Warn("slack: click by an unmapped user")
		a.reply(ctx, cb, fmt.Sprintf(":no_entry: Not recorded: your Slack user %s is not mapped to a drctl identity (slack.users in drctl's configuration).", cb.User.ID))
		return
	}
	groups, groupErrs := a.groupsOf(ctx, cb.User.ID)
	d := workflows.Decision{Step: v.Step, Approve: approve, By: identity, Via: "slack", Groups: groups}
	if !approve {
		d.Reason = "rejected in Slack"
	}
	res, err := a.decider.DecideAs(ctx, v.Run, v.RunID, d, UpdateID(cb, v, approve))
	if err != nil {
		msg := fmt.Sprintf(":no_entry: Not recorded: %v", err)
		if len(groupErrs) > 0 {
			msg += fmt.Sprintf(" (Slack user groups could not be read: %v)", errors.Join(groupErrs...))
		}
		log.Info("slack: decision refused", "by", identity, "err", err)
		a.reply(ctx, cb, msg)
		return
	}
	log.Info("slack: decision recorded", "by", identity)
	outcome := drslack.Outcome{Decision: activities.DecisionRejected, By: res.By, Via: "slack", Reason: d.Reason, At: res.At}
	verb := "rejected"
	if res.Approved {
		outcome.Decision, outcome.Reason, verb = activities.DecisionApproved, "", "approved"
	}
	a.reply(ctx, cb, fmt.Sprintf(":white_check_mark: Recorded: %s %s step %s of run %s at %s.", res.By, verb, res.Step, v.Run, res.At.UTC().Format("15:04:05Z")))
	a.editOriginal(ctx, cb, outcome, log)
}

// UpdateID is the Update ID of a click: the same click delivered twice (a
// double click) is one decision.
func UpdateID(cb slack.InteractionCallback, v drslack.ButtonValue, approve bool) string {
	verb := "reject"
	if approve {
		verb = "approve"
	}
	ts := cb.Container.MessageTs
	if ts == "" {
		ts = cb.Message.Timestamp
	}
	return strings.Join([]string{"slack", channelOf(cb), ts, v.Run, v.Step, cb.User.ID, verb}, "/")
}

func channelOf(cb slack.InteractionCallback) string {
	if cb.Container.ChannelID != "" {
		return cb.Container.ChannelID
	}
	return cb.Channel.ID
}

// groupsOf returns the approver group names whose Slack user group holds
// user. A group that cannot be read is left out, never assumed.
func (a *App) groupsOf(ctx context.Context, user string) ([]string, []error) {
	var (
		names []string
		errs  []error
	)
	for _, id := range a.groupIDs {
		ok, err := a.groups.IsMember(ctx, id, user)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if ok {
			names = append(names, a.cfg.Groups[id])
		}
	}
	slices.Sort(names)
	return slices.Compact(names), errs
}

// reply tells the clicker alone: through the response URL when the click
// has one, else chat.postEphemeral.
func (a *App) reply(ctx context.Context, cb slack.InteractionCallback, text string) {
	var err error
	if cb.ResponseURL != "" && a.slackURL(cb.ResponseURL) {
		_, _, _, err = a.api.SendMessageContext(ctx, "",
			slack.MsgOptionResponseURL(cb.ResponseURL, slack.ResponseTypeEphemeral),
			slack.MsgOptionText(text, false))
	} else {
		_, err = a.api.PostEphemeralContext(ctx, channelOf(cb), cb.User.ID, slack.MsgOptionText(text, false))
	}
	if err != nil {
		a.log.Warn("slack: could not answer the clicker", "slack_user", cb.User.ID, "err", err)
	}
}

// slackURL reports whether a response URL belongs to the Slack drctl talks
// to: https://hooks.slack.com/... with Slack's own API, or the configured
// API's host (slack.api_url: tests, a proxy). A payload cannot send the
// reply anywhere else, even signed; the reply then goes through the API.
func (a *App) slackURL(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil {
		return false
	}
	if a.apiURL == "" {
		return u.Scheme == "https" && u.Host == "hooks.slack.com"
	}
	api, err := url.Parse(a.apiURL)
	return err == nil && u.Scheme == api.Scheme && u.Host == api.Host
}

// editOriginal replaces the approval message's buttons with the outcome.
func (a *App) editOriginal(ctx context.Context, cb slack.InteractionCallback, o drslack.Outcome, log *slog.Logger) {
	ch, ts := channelOf(cb), cb.Container.MessageTs
	if ts == "" {
		ts = cb.Message.Timestamp
	}
	if ch == "" || ts == "" || len(cb.Message.Blocks.BlockSet) == 0 {
		return
	}
	blocks := drslack.DecidedBlocks(cb.Message.Blocks.BlockSet, o)
	if _, _, _, err := a.api.UpdateMessageContext(ctx, ch, ts,
		slack.MsgOptionText(o.Text(), false), slack.MsgOptionBlocks(blocks...)); err != nil {
		log.Warn("slack: could not edit the approval message", "err", err)
	}
}

// RunSocket holds a Socket Mode connection until ctx ends, acknowledging
// each envelope at once and deciding clicks afterwards.
func (a *App) RunSocket(ctx context.Context) error {
	if a.appToken == "" {
		return errors.New("socket mode needs slack.app_token")
	}
	api := drslack.NewClient("", a.apiURL, 30*time.Second)
	slack.OptionAppLevelToken(a.appToken)(api)
	smc := socketmode.New(api, socketmode.OptionLog(slog.NewLogLogger(a.log.Handler(), slog.LevelDebug)))
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- smc.RunContext(ctx) }()
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-errc:
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("slack socket mode: %w", err)
		case evt := <-smc.Events:
			if err := a.socketEvent(ctx, smc, evt); err != nil {
				return err
			}
		}
	}
}

func (a *App) socketEvent(ctx context.Context, smc *socketmode.Client, evt socketmode.Event) error {
	switch evt.Type {
	case socketmode.EventTypeInvalidAuth:
		return errors.New("slack socket mode: the app-level token was refused (check slack.app_token)")
	case socketmode.EventTypeConnectionError, socketmode.EventTypeIncomingError, socketmode.EventTypeErrorBadMessage, socketmode.EventTypeErrorWriteFailed:
		a.log.Warn("slack socket mode", "event", string(evt.Type), "err", evt.Data)
	}
	if evt.Request == nil || evt.Request.EnvelopeID == "" {
		return nil
	}
	if err := smc.AckCtx(ctx, evt.Request.EnvelopeID, nil); err != nil {
		a.log.Warn("slack socket mode: ack failed", "err", err)
	}
	cb, ok := evt.Data.(slack.InteractionCallback)
	if !ok || evt.Type != socketmode.EventTypeInteractive || cb.Type != slack.InteractionTypeBlockActions {
		return nil
	}
	if _, _, err := click(cb); err != nil {
		a.log.Warn("slack socket mode: malformed click", "err", err)
		return nil
	}
	a.dispatch(cb)
	return nil
}

// signatureMAC returns the MAC a request's X-Slack-Signature carries,
// decoded: the header's spelling (upper- or lower-case hex) is not part of
// it. Only a verified request's MAC means anything; it is parsed as
// slack.NewSecretsVerifier parses it, so ok is true for every request that
// passed verification.
func signatureMAC(h http.Header) (mac string, ok bool) {
	sig, ok := strings.CutPrefix(h.Get("X-Slack-Signature"), "v0=")
	if !ok {
		return "", false
	}
	b, err := hex.DecodeString(sig)
	if err != nil || len(b) != sha256.Size {
		return "", false
	}
	return string(b), true
}

// replayGuard remembers the MACs of verified requests for as long as their
// timestamp can pass the verifier (five minutes either side of now), so a
// captured request cannot be sent again. It keys on the decoded MAC, never
// on the header's text: hex is case-insensitive, so one signature has many
// spellings, while a different MAC needs the signing secret (the MAC covers
// the timestamp and body as sent).
type replayGuard struct {
	mu   sync.Mutex
	seen map[string]time.Time
	keep time.Duration
	now  func() time.Time
}

func newReplayGuard() *replayGuard {
	return &replayGuard{seen: map[string]time.Time{}, keep: 11 * time.Minute, now: time.Now}
}

// first reports whether mac is new, and remembers it.
func (g *replayGuard) first(mac string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.now()
	for s, at := range g.seen {
		if now.Sub(at) > g.keep {
			delete(g.seen, s)
		}
	}
	if _, dup := g.seen[mac]; dup {
		return false
	}
	g.seen[mac] = now
	return true
}
