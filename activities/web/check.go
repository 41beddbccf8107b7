package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/drctl/drctl/activities"
	"github.com/drctl/drctl/runbooks"
)

// Name is the health gate's name in runbooks.
const Name = "http.check"

// Input is http.check's input; zero fields take the documented defaults.
type Input struct {
	URL          string            `json:"url"`
	URLs         []string          `json:"urls"`
	ExpectStatus int               `json:"expect_status"` // default 200
	BodyContains string            `json:"body_contains"`
	JSONField    string            `json:"json_field"` // dot path into a JSON body, e.g. "checks.db.status"
	JSONValue    string            `json:"json_value"` // its expected value, as text
	Successes    int               `json:"successes"`  // consecutive; default 1
	Interval     runbooks.Duration `json:"interval"`   // between tries; default 1s
	Timeout      runbooks.Duration `json:"timeout"`    // per request; default 5s
	Deadline     runbooks.Duration `json:"deadline"`   // for the whole gate; default 1m
	// BreakerFailures and BreakerOpenFor tune the endpoint's circuit
	// breaker for this step (default 5 failures, open 5s).
	BreakerFailures int               `json:"breaker_failures"`
	BreakerOpenFor  runbooks.Duration `json:"breaker_open_for"`

	compensating bool // the request is a compensation's: no breaker
}

func (in *Input) breaker() BreakerSettings {
	return BreakerSettings{Failures: in.BreakerFailures, OpenFor: in.BreakerOpenFor}
}

func (in *Input) defaults() error {
	if in.URL != "" {
		in.URLs = append([]string{in.URL}, in.URLs...)
	}
	if len(in.URLs) == 0 {
		return activities.Permanentf("http.check needs url or urls; write url: https://app.example.com/healthz")
	}
	for _, raw := range in.URLs {
		if err := checkURL(raw); err != nil {
			return err
		}
	}
	if err := in.breaker().check(); err != nil {
		return activities.Permanent(err)
	}
	if (in.JSONField == "") != (in.JSONValue == "") {
		return activities.Permanentf("json_field and json_value go together: name the field and the value it must have")
	}
	if in.ExpectStatus == 0 {
		in.ExpectStatus = http.StatusOK
	}
	if in.Successes <= 0 {
		in.Successes = 1
	}
	if in.Interval == 0 {
		in.Interval = runbooks.Duration(time.Second)
	}
	if in.Timeout == 0 {
		in.Timeout = runbooks.Duration(5 * time.Second)
	}
	if in.Deadline == 0 {
		in.Deadline = runbooks.Duration(time.Minute)
	}
	return nil
}

func checkURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return activities.Permanentf("url %q is not an http(s) URL; write e.g. https://app.example.com/healthz", raw)
	}
	if u.User != nil {
		return activities.Permanentf("url %s carries credentials; a runbook must not hold secrets", u.Redacted())
	}
	return nil
}

// Check is the http.check action.
type Check struct {
	Client   *http.Client // nil: a client that follows no redirects
	Breakers *Breakers    // nil: the worker-wide breakers
}

var _ activities.Action = (*Check)(nil)

// Spec implements activities.Action.
func (c *Check) Spec() runbooks.ActionSpec {
	return runbooks.ActionSpec{
		Name: Name,
		Undo: runbooks.UndoNotNeeded,
		Doc: "Pass once every URL answers as expected (status, body substring, JSON field) `successes` times in a row, " +
			"asking every `interval`, failing after `deadline`. An endpoint that keeps failing is not asked for a while (circuit breaker per endpoint; compensations bypass it).",
		Inputs: []runbooks.InputSpec{
			{Name: "url", Type: runbooks.TypeString, Doc: "http(s) URL to GET"},
			{Name: "urls", Type: runbooks.TypeList, Doc: "several URLs; all must pass on the same try"},
			{Name: "expect_status", Type: runbooks.TypeInt, Doc: "status that counts as healthy (default 200)"},
			{Name: "body_contains", Type: runbooks.TypeString, Doc: "text the body must contain"},
			{Name: "json_field", Type: runbooks.TypeString, Doc: "dot path of a field in a JSON body, e.g. status or checks.db"},
			{Name: "json_value", Type: runbooks.TypeString, Doc: "the value json_field must have, as text"},
			{Name: "successes", Type: runbooks.TypeInt, Doc: "consecutive healthy tries needed (default 1)"},
			{Name: "interval", Type: runbooks.TypeDuration, Doc: "pause between tries (default 1s)"},
			{Name: "timeout", Type: runbooks.TypeDuration, Doc: "timeout of one request (default 5s)"},
			{Name: "deadline", Type: runbooks.TypeDuration, Doc: "give up after this long (default 1m, and always before the step's timeout)"},
			breakerFailuresInput, breakerOpenForInput,
		},
		Outputs: []string{"status", "tries"},
		Groups: []runbooks.InputGroup{
			{Inputs: []string{"url", "urls"}, Rule: runbooks.AtLeastOne},
			{Inputs: []string{"json_field", "json_value"}, Rule: runbooks.AllOrNone},
		},
	}
}

// noRedirects is the client both actions use by default: a redirect is an
// answer to judge, not to follow.
var noRedirects = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

func clientOr(c *http.Client) *http.Client {
	if c != nil {
		return c
	}
	return noRedirects
}

func breakersOr(b *Breakers) *Breakers {
	if b != nil {
		return b
	}
	return shared
}

func (c *Check) input(req activities.Request) (Input, error) {
	var in Input
	if err := activities.Decode(c.Spec(), req.With, &in); err != nil {
		return in, err
	}
	in.compensating = req.Compensating
	return in, in.defaults()
}

// Observe asks each URL once and reports whether the gate would pass now.
// Its State is each URL's health as that one try saw it.
func (c *Check) Observe(ctx context.Context, req activities.Request) (activities.Observation, error) {
	in, err := c.input(req)
	if err != nil {
		return activities.Observation{}, err
	}
	_, answers := c.try(ctx, in)
	o := activities.Observation{State: map[string]string{}}
	texts := make([]string, len(answers))
	for i, a := range answers {
		texts[i] = a.text
		o.State[in.URLs[i]+" health"] = a.health
	}
	o.Current = strings.Join(texts, "; ")
	return o, nil
}

// Apply asks until every URL has answered as expected Successes times in a
// row. A failing gate is retryable: the endpoint may come back.
func (c *Check) Apply(ctx context.Context, req activities.Request) (activities.Result, error) {
	in, err := c.input(req)
	if err != nil {
		return activities.Result{}, err
	}
	limit := in.Deadline.D()
	if end, ok := ctx.Deadline(); ok {
		// The step's timeout ends this attempt first: give up a moment
		// before it, so the error says what the endpoint last answered
		// instead of a bare "timed out".
		left := time.Until(end)
		if left -= min(time.Second, left/10); left < limit {
			limit = max(left, 0)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	var (
		streak, tries, status int
		last                  string
		held                  bool // the latest tries were refused by the breaker
	)
	for {
		tries++
		ok, answers := c.try(ctx, in)
		switch {
		case ok:
			streak++
			status = in.ExpectStatus
			if streak >= in.Successes {
				return activities.Result{
					Summary: fmt.Sprintf("%s healthy %d time(s) in a row", strings.Join(in.URLs, ", "), streak),
					Outputs: map[string]any{"status": status, "tries": tries},
				}, nil
			}
		case ctx.Err() != nil && last != "":
			// The gate's deadline cut this try short; keep the last real answer.
			streak = 0
		case openOnly(answers) && last != "":
			// The breaker sent nothing: the last real answer says more.
			streak, held = 0, true
		default:
			streak, last, held = 0, joinTexts(answers), false
		}
		activities.Heartbeat(ctx, tries)
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				if held {
					last += "; then its circuit breaker stopped asking"
				}
				return activities.Result{}, fmt.Errorf("check %s: not healthy within %s (%d tries, last: %s)", strings.Join(in.URLs, ", "), limit.Round(time.Millisecond), tries, last)
			}
			return activities.Result{}, ctx.Err()
		case <-time.After(in.Interval.D()):
		}
	}
}

// answer is what one URL said to one try.
type answer struct {
	ok bool
	// text is for people: "GET https://app/healthz: 503 (want 200)".
	text string
	// health is the fact a drill compares before and after (see
	// activities.Observation.State): "healthy", or "unhealthy: " and the
	// status with what was wrong with it ("unhealthy: 503"), or "unhealthy:
	// no answer" when none came (or the breaker sent none). It holds nothing
	// that differs between two tries of an unchanged endpoint: no error
	// text (ports, timings) and no value read from the body.
	health string
	// open: the circuit breaker refused to send the request.
	open bool
}

// openOnly reports whether every failing answer is a breaker's refusal.
func openOnly(answers []answer) bool {
	n := 0
	for _, a := range answers {
		if !a.ok && !a.open {
			return false
		}
		if a.open {
			n++
		}
	}
	return n > 0
}

func joinTexts(answers []answer) string {
	texts := make([]string, len(answers))
	for i, a := range answers {
		texts[i] = a.text
	}
	return strings.Join(texts, "; ")
}

// try asks every URL once, in order; ok when all answered as expected.
func (c *Check) try(ctx context.Context, in Input) (bool, []answer) {
	ok := true
	answers := make([]answer, 0, len(in.URLs))
	for _, raw := range in.URLs {
		a := c.tryOne(ctx, in, raw)
		ok = ok && a.ok
		answers = append(answers, a)
	}
	return ok, answers
}

func (c *Check) tryOne(ctx context.Context, in Input, raw string) answer {
	u, _ := url.Parse(raw)
	var body []byte
	status, err := breakersOr(c.Breakers).do(u, in.breaker(), in.compensating, func() (int, error) {
		rctx, cancel := context.WithTimeout(ctx, in.Timeout.D())
		defer cancel()
		r, err := http.NewRequestWithContext(rctx, http.MethodGet, raw, nil)
		if err != nil {
			return 0, err
		}
		resp, err := clientOr(c.Client).Do(r)
		if err != nil {
			return 0, err
		}
		defer resp.Body.Close()
		body, err = io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		return resp.StatusCode, err
	})
	bad := func(health, format string, args ...any) answer {
		return answer{text: fmt.Sprintf(format, args...), health: "unhealthy: " + health}
	}
	switch {
	case errors.Is(err, ErrOpen):
		a := bad("no answer", "GET %s: %v", raw, err)
		a.open = true
		return a
	case err != nil:
		return bad("no answer", "GET %s: %v", raw, err)
	case status != in.ExpectStatus:
		return bad(strconv.Itoa(status), "GET %s: %d (want %d)", raw, status, in.ExpectStatus)
	case in.BodyContains != "" && !strings.Contains(string(body), in.BodyContains):
		return bad(fmt.Sprintf("%d, body lacks %q", status, in.BodyContains), "GET %s: %d, body lacks %q", raw, status, in.BodyContains)
	case in.JSONField != "":
		got, err := jsonField(body, in.JSONField)
		if err != nil {
			return bad(fmt.Sprintf("%d, %v", status, err), "GET %s: %d, %v", raw, status, err)
		}
		if got != in.JSONValue {
			// got comes from the endpoint: bounded, it cannot fill the
			// history through the gate's error.
			return bad(fmt.Sprintf("%d, %s is not %q", status, in.JSONField, in.JSONValue),
				"GET %s: %d, %s is %s (want %q)", raw, status, in.JSONField, bounded(got, 200), in.JSONValue)
		}
	}
	return answer{ok: true, text: fmt.Sprintf("GET %s: %d", raw, status), health: "healthy"}
}

// jsonField returns the text of the field at a dot path in a JSON body.
func jsonField(body []byte, path string) (string, error) {
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		return "", fmt.Errorf("body is not JSON")
	}
	for _, part := range strings.Split(path, ".") {
		m, ok := v.(map[string]any)
		if !ok {
			return "", fmt.Errorf("no field %s in the body", path)
		}
		if v, ok = m[part]; !ok {
			return "", fmt.Errorf("no field %s in the body", path)
		}
	}
	switch t := v.(type) {
	case string:
		return t, nil
	case nil:
		return "null", nil
	default:
		b, _ := json.Marshal(t)
		return string(b), nil
	}
}
