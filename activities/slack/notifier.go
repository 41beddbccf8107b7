package slack

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/drctl/drctl/activities"

	slackgo "github.com/slack-go/slack"
	"go.temporal.io/sdk/activity"
	sdkworker "go.temporal.io/sdk/worker"

	"github.com/drctl/drctl/internal/config"
)

// Options tune a Notifier. Zero values take the documented defaults.
type Options struct {
	// MaxInlineWait is the longest Retry-After the activity sleeps through
	// itself; a longer one ends the attempt with a retryable error whose
	// next retry delay is Retry-After. Default 10s.
	MaxInlineWait time.Duration
	// HTTPTimeout bounds each Slack API call. Default 10s.
	HTTPTimeout time.Duration
}

// Notifier posts a run's messages to Slack. The zero Notifier (Slack not
// configured) does nothing, so the workflow can always call it.
type Notifier struct {
	api     *slackgo.Client
	channel string
	token   string // only to scrub it from errors
	opts    Options
}

// New returns a Notifier for cfg. The bot token is read from its reference
// now; a Slack section without a bot token gives the do-nothing Notifier.
func New(cfg config.Slack, opts Options) (*Notifier, error) {
	if !cfg.Enabled() {
		return &Notifier{}, nil
	}
	token, err := cfg.BotToken.Read()
	if err != nil {
		return nil, fmt.Errorf("slack.bot_token: %w", err)
	}
	if opts.MaxInlineWait == 0 {
		opts.MaxInlineWait = 10 * time.Second
	}
	if opts.HTTPTimeout == 0 {
		opts.HTTPTimeout = 10 * time.Second
	}
	return &Notifier{
		api:     NewClient(token, cfg.APIURL, opts.HTTPTimeout),
		channel: cfg.Channel,
		token:   token,
		opts:    opts,
	}, nil
}

// NewClient returns a slack-go client for token, talking to apiURL when set
// (tests point it at slacktest). slack-go's own retries stay off: callers
// handle rate limits themselves so they can respect their deadlines.
func NewClient(token, apiURL string, timeout time.Duration) *slackgo.Client {
	opts := []slackgo.Option{slackgo.OptionHTTPClient(&http.Client{Timeout: timeout})}
	if apiURL != "" {
		if !strings.HasSuffix(apiURL, "/") {
			apiURL += "/"
		}
		opts = append(opts, slackgo.OptionAPIURL(apiURL))
	}
	return slackgo.New(token, opts...)
}

// Enabled reports whether the Notifier talks to Slack.
func (n *Notifier) Enabled() bool { return n != nil && n.api != nil }

// Register registers Notify as the activities.NotifyActivity activity.
func (n *Notifier) Register(w sdkworker.ActivityRegistry) {
	w.RegisterActivityWithOptions(n.Notify, activity.RegisterOptions{Name: activities.NotifyActivity})
}

// Notify posts (or, for approval_decided, edits) the message note asks for
// and returns the message it posted or edited.
//
// A retried attempt first looks for a message carrying note.Key in its
// metadata and returns that instead of posting again; the first attempt
// skips the look-up, since nothing can have been posted before it.
func (n *Notifier) Notify(ctx context.Context, note activities.Notification) (activities.MessageRef, error) {
	if !n.Enabled() {
		return activities.MessageRef{}, nil
	}
	ctx, stop := activities.KeepAlive(ctx) // a dead worker's attempt is noticed in seconds
	defer stop()
	if note.Key == "" {
		return activities.MessageRef{}, activities.Permanentf("notify: the notification has no idempotency key")
	}
	channel := note.Channel
	if channel == "" {
		channel = n.channel
	}
	if note.Thread != nil && note.Thread.Channel != "" {
		channel = note.Thread.Channel
	}
	if channel == "" {
		return activities.MessageRef{}, activities.Permanentf("notify: no Slack channel; set slack.channel or the runbook's channel")
	}
	thread := ""
	if note.Thread != nil {
		thread = note.Thread.TS
	}
	switch note.Kind {
	case activities.KindRunStarted:
		return n.post(ctx, note, channel, "", progressText(note), nil, false)
	case activities.KindApprovalRequested:
		return n.post(ctx, note, channel, "", approvalText(note), ApprovalBlocks(note), false)
	case activities.KindApprovalDecided:
		var ref activities.MessageRef
		if note.Ref != nil && note.Ref.TS != "" {
			ref = *note.Ref
			blocks := DecidedBlocks(approvalBody(note), decidedOutcome(note))
			err := n.call(ctx, "chat.update", ref.Channel, func(ctx context.Context) error {
				_, _, _, err := n.api.UpdateMessageContext(ctx, ref.Channel, ref.TS,
					slackgo.MsgOptionText(progressText(note), false), slackgo.MsgOptionBlocks(blocks...))
				return err
			})
			if err != nil {
				return activities.MessageRef{}, err
			}
		}
		posted, err := n.post(ctx, note, channel, thread, progressText(note), nil, false)
		if ref.TS == "" {
			ref = posted
		}
		return ref, err
	case activities.KindStepFailed:
		return n.post(ctx, note, channel, thread, progressText(note), nil, false)
	case activities.KindRunFinished:
		return n.post(ctx, note, channel, thread, progressText(note), nil, thread != "")
	case activities.KindReadinessChanged:
		return n.post(ctx, note, channel, thread, progressText(note), nil, thread != "")
	case activities.KindSiteLost, activities.KindSiteBack:
		return n.post(ctx, note, channel, "", progressText(note), nil, false)
	}
	return activities.MessageRef{}, activities.Permanentf("notify: unknown kind %q", note.Kind)
}

// post posts once per note.Key: a retried attempt returns the message an
// earlier attempt posted.
func (n *Notifier) post(ctx context.Context, note activities.Notification, channel, thread, text string, blocks []slackgo.Block, broadcast bool) (activities.MessageRef, error) {
	if retried(ctx) {
		ref, found, err := n.find(ctx, note, channel, thread)
		if err != nil {
			return activities.MessageRef{}, err
		}
		if found {
			return ref, nil
		}
	}
	opts := []slackgo.MsgOption{
		slackgo.MsgOptionText(text, false),
		slackgo.MsgOptionMetadata(slackgo.SlackMetadata{EventType: MetadataEventType, EventPayload: map[string]any{"key": note.Key}}),
	}
	if len(blocks) > 0 {
		opts = append(opts, slackgo.MsgOptionBlocks(blocks...))
	}
	if thread != "" {
		opts = append(opts, slackgo.MsgOptionTS(thread))
		if broadcast {
			opts = append(opts, slackgo.MsgOptionBroadcast())
		}
	}
	var ref activities.MessageRef
	err := n.call(ctx, "chat.postMessage", channel, func(ctx context.Context) error {
		ch, ts, err := n.api.PostMessageContext(ctx, channel, opts...)
		ref = activities.MessageRef{Channel: ch, TS: ts}
		return err
	})
	return ref, err
}

// retried reports whether an earlier attempt may already have posted.
// Outside an activity (direct calls, tests) it must assume so.
func retried(ctx context.Context) bool {
	return !activity.IsActivity(ctx) || activity.GetInfo(ctx).Attempt > 1
}

// maxLookupPages bounds the look-up for an earlier post.
const maxLookupPages = 5

// find looks for a message carrying note.Key: among the thread's replies,
// or in the channel's history since the run started. A #name channel
// cannot be read back, so posts to one are not deduplicated.
func (n *Notifier) find(ctx context.Context, note activities.Notification, channel, thread string) (activities.MessageRef, bool, error) {
	if strings.HasPrefix(channel, "#") {
		return activities.MessageRef{}, false, nil
	}
	cursor := ""
	for range maxLookupPages {
		var (
			msgs []slackgo.Message
			next string
		)
		var err error
		if thread != "" {
			err = n.call(ctx, "conversations.replies", channel, func(ctx context.Context) error {
				var err error
				msgs, _, next, err = n.api.GetConversationRepliesContext(ctx, &slackgo.GetConversationRepliesParameters{
					ChannelID: channel, Timestamp: thread, Cursor: cursor, Limit: 200, IncludeAllMetadata: true,
				})
				return err
			})
		} else {
			err = n.call(ctx, "conversations.history", channel, func(ctx context.Context) error {
				p := &slackgo.GetConversationHistoryParameters{ChannelID: channel, Cursor: cursor, Limit: 200, IncludeAllMetadata: true}
				if !note.StartedAt.IsZero() {
					p.Oldest = slackTS(note.StartedAt.Add(-time.Minute))
				}
				resp, err := n.api.GetConversationHistoryContext(ctx, p)
				if resp != nil {
					msgs, next = resp.Messages, resp.ResponseMetaData.NextCursor
				}
				return err
			})
		}
		if err != nil {
			return activities.MessageRef{}, false, err
		}
		for _, m := range msgs {
			if m.Metadata.EventType == MetadataEventType && m.Metadata.EventPayload["key"] == note.Key {
				ch := m.Channel
				if ch == "" {
					ch = channel
				}
				return activities.MessageRef{Channel: ch, TS: m.Timestamp}, true, nil
			}
		}
		if next == "" {
			break
		}
		cursor = next
	}
	return activities.MessageRef{}, false, nil
}

func slackTS(t time.Time) string {
	return strconv.FormatInt(t.Unix(), 10) + ".000000"
}

// maxInlineRateLimits bounds how often one call sleeps through a 429.
const maxInlineRateLimits = 3

// call runs one Slack API call, sleeping through short rate limits, and
// turns its error into the activity's: retryable with Slack's Retry-After
// as the next delay, non-retryable when retrying cannot help, and never
// containing the token.
func (n *Notifier) call(ctx context.Context, method, channel string, fn func(context.Context) error) error {
	for i := 0; ; i++ {
		err := fn(ctx)
		if err == nil {
			return nil
		}
		var rl *slackgo.RateLimitedError
		if !errors.As(err, &rl) {
			return n.activityError(method, channel, err)
		}
		wait := rl.RetryAfter
		if wait <= 0 {
			wait = time.Second
		}
		if i >= maxInlineRateLimits || wait > n.opts.MaxInlineWait || !fits(ctx, wait) {
			return RateLimited(method, wait)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return n.activityError(method, channel, ctx.Err())
		case <-t.C:
		}
	}
}

// fits reports whether ctx leaves time to wait d and then make the call.
func fits(ctx context.Context, d time.Duration) bool {
	dl, ok := ctx.Deadline()
	return !ok || time.Until(dl) > d+2*time.Second
}

// RateLimited is the retryable error for a 429: the next attempt comes
// after Slack's Retry-After, not after the policy's backoff.
func RateLimited(method string, retryAfter time.Duration) error {
	return activities.RetryAfter(fmt.Errorf("slack %s: rate limited, retry after %s", method, retryAfter), retryAfter)
}

// permanentCodes are Slack error codes that no retry can fix.
var permanentCodes = map[string]bool{
	"invalid_auth": true, "not_authed": true, "account_inactive": true, "token_revoked": true,
	"token_expired": true, "no_permission": true, "missing_scope": true, "not_allowed_token_type": true,
	"channel_not_found": true, "not_in_channel": true, "is_archived": true, "invalid_blocks": true,
	"invalid_metadata_format": true, "invalid_metadata_schema": true, "msg_too_long": true,
	"message_not_found": true, "cant_update_message": true, "edit_window_closed": true,
	"no_text": true, "invalid_arguments": true, "ekm_access_denied": true,
}

func (n *Notifier) activityError(method, channel string, err error) error {
	msg := scrub(fmt.Sprintf("slack %s %s: %v", method, channel, err), n.token)
	var se slackgo.SlackErrorResponse
	if errors.As(err, &se) && permanentCodes[se.Err] {
		return activities.Permanent(errors.New(msg + hint(se.Err)))
	}
	return errors.New(msg)
}

// scrub removes the secret from text, should a library ever echo it.
func scrub(text, secret string) string {
	if secret == "" {
		return text
	}
	return strings.ReplaceAll(text, secret, "[redacted]")
}

func hint(code string) string {
	switch code {
	case "invalid_auth", "not_authed", "token_revoked", "token_expired", "account_inactive":
		return " (check slack.bot_token)"
	case "not_in_channel":
		return " (invite the drctl app to the channel)"
	case "missing_scope":
		return " (the app needs chat:write, channels:history, groups:history and usergroups:read)"
	case "channel_not_found":
		return " (check slack.channel or the runbook's channel; use a channel ID)"
	}
	return ""
}
