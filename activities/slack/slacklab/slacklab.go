// Package slacklab is a fake Slack workspace for tests: slack-go's
// slacktest server with chat.postMessage, chat.update, chat.postEphemeral,
// conversations.history/replies, usergroups.users.list and response URLs
// replaced by handlers that keep what was posted, answer with unique
// message timestamps and metadata, count calls, and can answer 429.
package slacklab

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/slacktest"
)

// Token is the bot token the workspace accepts.
const Token = "xoxb-slacklab-secret-token"

// Message is a posted message as the workspace keeps it.
type Message struct {
	Channel   string
	TS        string
	ThreadTS  string
	Text      string
	Blocks    slack.Blocks
	Metadata  slack.SlackMetadata
	Broadcast bool
	Edits     int
}

// Ephemeral is a message shown to one user only (chat.postEphemeral or a
// response_url post).
type Ephemeral struct {
	Channel, User, Text string
	ResponseURL         string // set when posted to a response URL
}

// Workspace is a running fake Slack.
type Workspace struct {
	srv *slacktest.Server

	mu         sync.Mutex
	seq        int
	base       int64
	messages   []*Message
	ephemerals []Ephemeral
	groups     map[string][]string
	calls      map[string]int
	limited    map[string][]int // method -> Retry-After seconds of coming 429s
	down       bool
}

// Start starts a workspace that stops when t ends.
func Start(t testing.TB) *Workspace {
	w := &Workspace{groups: map[string][]string{}, calls: map[string]int{}, limited: map[string][]int{}, base: time.Now().Unix()}
	w.srv = slacktest.NewTestServer(func(c slacktest.Customize) {
		c.Handle("/chat.postMessage", w.api("chat.postMessage", w.postMessage))
		c.Handle("/chat.update", w.api("chat.update", w.update))
		c.Handle("/chat.postEphemeral", w.api("chat.postEphemeral", w.postEphemeral))
		c.Handle("/conversations.history", w.api("conversations.history", w.history))
		c.Handle("/conversations.replies", w.api("conversations.replies", w.replies))
		c.Handle("/usergroups.users.list", w.api("usergroups.users.list", w.groupMembers))
		c.Handle("/response/", w.responseURL)
	})
	w.srv.Start()
	t.Cleanup(w.srv.Stop)
	go func() { // the websocket reader blocks until what clients send is taken
		for range w.srv.SeenFeed {
		}
	}()
	return w
}

// SendSocket sends a Socket Mode envelope (JSON) to the connected client.
func (w *Workspace) SendSocket(envelope string) { w.srv.SendToWebsocket(envelope) }

// SocketReceived returns what Socket Mode clients sent (their acks).
func (w *Workspace) SocketReceived() []string { return w.srv.GetSeenInboundMessages() }

// APIURL is the base URL to configure as slack.api_url.
func (w *Workspace) APIURL() string { return w.srv.GetAPIURL() }

// ResponseURL is a response_url for an interaction payload.
func (w *Workspace) ResponseURL(id string) string { return w.srv.GetAPIURL() + "response/" + id }

// SetGroup sets a user group's members.
func (w *Workspace) SetGroup(id string, members ...string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.groups[id] = members
}

// RateLimitNext answers the next call of method with 429 and Retry-After.
func (w *Workspace) RateLimitNext(method string, retryAfterSeconds int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.limited[method] = append(w.limited[method], retryAfterSeconds)
}

// SetDown makes every API call fail with 503 until SetDown(false).
func (w *Workspace) SetDown(down bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.down = down
}

// Calls returns how often method was called (including refused calls).
func (w *Workspace) Calls(method string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.calls[method]
}

// Messages returns copies of the posted messages, oldest first.
func (w *Workspace) Messages() []Message {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]Message, len(w.messages))
	for i, m := range w.messages {
		out[i] = *m
	}
	return out
}

// Ephemerals returns the ephemeral messages, oldest first.
func (w *Workspace) Ephemerals() []Ephemeral {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.ephemerals)
}

// Post adds a message as if a user posted it (for a clicked message).
func (w *Workspace) Post(channel, text string, blocks ...slack.Block) Message {
	w.mu.Lock()
	defer w.mu.Unlock()
	m := &Message{Channel: channel, TS: w.nextTS(), Text: text, Blocks: slack.Blocks{BlockSet: blocks}}
	w.messages = append(w.messages, m)
	return *m
}

func (w *Workspace) nextTS() string {
	w.seq++
	return fmt.Sprintf("%d.%06d", w.base, w.seq)
}

type handler func(form url.Values) (any, string)

// api wraps a method: counts it, checks the token, answers 429 or 503 when
// told to, and writes the JSON answer (or {"ok":false,"error":code}).
func (w *Workspace) api(method string, h handler) http.HandlerFunc {
	return func(rw http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		form, _ := url.ParseQuery(string(body))
		if strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
			form = url.Values{}
		}
		w.mu.Lock()
		w.calls[method]++
		down := w.down
		var retryAfter int
		limited := len(w.limited[method]) > 0
		if limited {
			retryAfter, w.limited[method] = w.limited[method][0], w.limited[method][1:]
		}
		w.mu.Unlock()
		switch {
		case down:
			http.Error(rw, "service unavailable", http.StatusServiceUnavailable)
			return
		case limited:
			rw.Header().Set("Retry-After", strconv.Itoa(retryAfter))
			http.Error(rw, "rate limited", http.StatusTooManyRequests)
			return
		}
		token := form.Get("token")
		if auth := r.Header.Get("Authorization"); auth != "" {
			token = strings.TrimPrefix(auth, "Bearer ")
		}
		rw.Header().Set("Content-Type", "application/json")
		if token != Token {
			_ = json.NewEncoder(rw).Encode(map[string]any{"ok": false, "error": "invalid_auth"})
			return
		}
		w.mu.Lock()
		resp, code := h(form)
		w.mu.Unlock()
		if code != "" {
			_ = json.NewEncoder(rw).Encode(map[string]any{"ok": false, "error": code})
			return
		}
		_ = json.NewEncoder(rw).Encode(resp)
	}
}

func decodeMessage(form url.Values, m *Message) string {
	m.Text = form.Get("text")
	if b := form.Get("blocks"); b != "" {
		if err := json.Unmarshal([]byte(b), &m.Blocks); err != nil {
			return "invalid_blocks"
		}
	}
	if md := form.Get("metadata"); md != "" {
		if err := json.Unmarshal([]byte(md), &m.Metadata); err != nil {
			return "invalid_metadata_format"
		}
	}
	return ""
}

func (w *Workspace) postMessage(form url.Values) (any, string) {
	ch := form.Get("channel")
	if ch == "" || strings.HasPrefix(ch, "#") {
		return nil, "channel_not_found"
	}
	m := &Message{Channel: ch, TS: w.nextTS(), ThreadTS: form.Get("thread_ts"), Broadcast: form.Get("reply_broadcast") == "true"}
	if code := decodeMessage(form, m); code != "" {
		return nil, code
	}
	w.messages = append(w.messages, m)
	return map[string]any{"ok": true, "channel": ch, "ts": m.TS}, ""
}

func (w *Workspace) find(channel, ts string) *Message {
	for _, m := range w.messages {
		if m.Channel == channel && m.TS == ts {
			return m
		}
	}
	return nil
}

func (w *Workspace) update(form url.Values) (any, string) {
	m := w.find(form.Get("channel"), form.Get("ts"))
	if m == nil {
		return nil, "message_not_found"
	}
	if code := decodeMessage(form, m); code != "" {
		return nil, code
	}
	m.Edits++
	return map[string]any{"ok": true, "channel": m.Channel, "ts": m.TS, "text": m.Text}, ""
}

func (w *Workspace) postEphemeral(form url.Values) (any, string) {
	w.ephemerals = append(w.ephemerals, Ephemeral{Channel: form.Get("channel"), User: form.Get("user"), Text: form.Get("text")})
	return map[string]any{"ok": true, "message_ts": w.nextTS()}, ""
}

// wire is a message as conversations.* answer it.
type wire struct {
	Type     string               `json:"type"`
	TS       string               `json:"ts"`
	ThreadTS string               `json:"thread_ts,omitempty"`
	Text     string               `json:"text"`
	Metadata *slack.SlackMetadata `json:"metadata,omitempty"`
}

func toWire(m *Message, withMetadata bool) wire {
	out := wire{Type: "message", TS: m.TS, ThreadTS: m.ThreadTS, Text: m.Text}
	if withMetadata && m.Metadata.EventType != "" {
		md := m.Metadata
		out.Metadata = &md
	}
	return out
}

func (w *Workspace) history(form url.Values) (any, string) {
	ch := form.Get("channel")
	oldest, _ := strconv.ParseFloat(form.Get("oldest"), 64)
	var out []wire
	for i := len(w.messages) - 1; i >= 0; i-- { // newest first
		m := w.messages[i]
		ts, _ := strconv.ParseFloat(m.TS, 64)
		if m.Channel != ch || (m.ThreadTS != "" && !m.Broadcast) || ts < oldest {
			continue
		}
		out = append(out, toWire(m, form.Get("include_all_metadata") == "1"))
	}
	return map[string]any{"ok": true, "messages": out, "has_more": false}, ""
}

func (w *Workspace) replies(form url.Values) (any, string) {
	ch, root := form.Get("channel"), form.Get("ts")
	if w.find(ch, root) == nil {
		return nil, "thread_not_found"
	}
	var out []wire
	for _, m := range w.messages {
		if m.Channel == ch && (m.TS == root || m.ThreadTS == root) {
			out = append(out, toWire(m, form.Get("include_all_metadata") == "1"))
		}
	}
	return map[string]any{"ok": true, "messages": out, "has_more": false}, ""
}

func (w *Workspace) groupMembers(form url.Values) (any, string) {
	members, ok := w.groups[form.Get("usergroup")]
	if !ok {
		return nil, "no_such_subteam"
	}
	return map[string]any{"ok": true, "users": slices.Clone(members)}, ""
}

func (w *Workspace) responseURL(rw http.ResponseWriter, r *http.Request) {
	var msg slack.Msg
	if err := json.NewDecoder(r.Body).Decode(&msg); err != nil {
		http.Error(rw, err.Error(), http.StatusBadRequest)
		return
	}
	w.mu.Lock()
	w.calls["response_url"]++
	if msg.ResponseType == "ephemeral" {
		w.ephemerals = append(w.ephemerals, Ephemeral{Text: msg.Text, ResponseURL: r.URL.String()})
	}
	w.mu.Unlock()
	rw.Header().Set("Content-Type", "application/json")
	_, _ = rw.Write([]byte(`{"ok":true}`))
}
