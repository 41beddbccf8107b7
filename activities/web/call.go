package web

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"golang.org/x/net/http/httpguts"

	"github.com/drctl/drctl/activities"
	"github.com/drctl/drctl/runbooks"
)

// CallName is the webhook action's name in runbooks.
const CallName = "http.call"

// IdempotencyHeader carries the step's idempotency key on every http.call:
// the same on every retry of one step in one run, different otherwise.
const IdempotencyHeader = "Idempotency-Key"

// TargetKind is the kind of a runbook target that holds a bearer token for
// http.call.
const TargetKind = "http"

type callInput struct {
	URL          string            `json:"url"`
	Method       string            `json:"method"`
	JSON         any               `json:"json"`
	Body         string            `json:"body"`
	Headers      map[string]string `json:"headers"`
	ExpectStatus int               `json:"expect_status"`
	Timeout      runbooks.Duration `json:"timeout"`
	Auth         string            `json:"auth"`
	// See Input.
	BreakerFailures int               `json:"breaker_failures"`
	BreakerOpenFor  runbooks.Duration `json:"breaker_open_for"`

	compensating bool
}

// Call is the http.call action. A call cannot be observed without making
// it, so Observe only says what would be sent; Apply sends it once per
// attempt with the step's idempotency key, so a receiver that honours the
// header acts once however often the step is retried.
type Call struct {
	Client   *http.Client
	Breakers *Breakers
}

var _ activities.Action = (*Call)(nil)

// Spec implements activities.Action.
func (c *Call) Spec() runbooks.ActionSpec {
	return runbooks.ActionSpec{
		Name: CallName,
		Undo: runbooks.UndoByCompensation,
		Doc: "Call a webhook or admin endpoint with an Idempotency-Key header derived from the run and step, " +
			"so a retried step is recognisable by the receiver. Succeeds on expect_status (default: any 2xx). " +
			"Outputs keep the first 4 KiB of the answer's body (body_truncated says when there was more), with credentials redacted.",
		Inputs: []runbooks.InputSpec{
			{Name: "url", Type: runbooks.TypeString, Required: true, Doc: "http(s) URL"},
			{Name: "method", Type: runbooks.TypeString, Doc: "HTTP method (default POST)"},
			{Name: "json", Type: runbooks.TypeAny, Doc: "a value sent as the JSON body"},
			{Name: "body", Type: runbooks.TypeString, Doc: "a text body (instead of json)"},
			{Name: "headers", Type: runbooks.TypeMap, Doc: "extra headers (no secrets: use auth)"},
			{Name: "expect_status", Type: runbooks.TypeInt, Doc: "the status that counts as success (default: any 2xx)"},
			{Name: "timeout", Type: runbooks.TypeDuration, Doc: "request timeout (default 10s)"},
			{Name: "auth", Type: runbooks.TypeTarget, Kinds: []string{TargetKind}, Doc: "a target of kind http whose credentials hold a bearer token"},
			breakerFailuresInput, breakerOpenForInput,
		},
		Outputs: []string{"status", "body", "body_truncated"},
		Groups:  []runbooks.InputGroup{{Inputs: []string{"json", "body"}, Rule: runbooks.AtMostOne}},
	}
}

func (c *Call) input(req activities.Request) (callInput, error) {
	var in callInput
	if err := activities.Decode(c.Spec(), req.With, &in); err != nil {
		return in, err
	}
	if err := checkURL(in.URL); err != nil {
		return in, err
	}
	in.compensating = req.Compensating
	if err := (BreakerSettings{Failures: in.BreakerFailures, OpenFor: in.BreakerOpenFor}).check(); err != nil {
		return in, activities.Permanent(err)
	}
	if in.Method == "" {
		in.Method = http.MethodPost
	}
	in.Method = strings.ToUpper(in.Method)
	if in.JSON != nil && in.Body != "" {
		return in, activities.Permanentf("http.call takes json or body, not both")
	}
	if in.Timeout == 0 {
		in.Timeout = runbooks.Duration(10 * time.Second)
	}
	if !httpguts.ValidHeaderFieldName(in.Method) {
		return in, activities.Permanentf("http.call: method %q is not an HTTP token; write GET, POST, PUT, PATCH or DELETE", in.Method)
	}
	names := make([]string, 0, len(in.Headers))
	for k := range in.Headers {
		names = append(names, k)
	}
	slices.Sort(names) // the same input gets the same message
	for _, k := range names {
		if err := checkHeader(k, in.Headers[k]); err != nil {
			return in, err
		}
	}
	return in, nil
}

// clientHeaders are framing and connection headers: Go's HTTP client
// writes them itself and ignores (or is confused by) a caller's.
var clientHeaders = []string{"Host", "Content-Length", "Transfer-Encoding", "Trailer", "TE", "Connection", "Keep-Alive", "Proxy-Connection", "Upgrade"}

// checkHeader holds a header a runbook sets to HTTP's rules (RFC 9110: a
// name is a token, a value one line with no control character but tab) and
// to drctl's: credentials come from auth, framing from the client. A
// refusal quotes what it refuses, so no raw CR or LF reaches a message.
func checkHeader(name, value string) error {
	switch {
	case !httpguts.ValidHeaderFieldName(name):
		return activities.Permanentf("http.call: header name %q is not an HTTP token (letters, digits and !#$%%&'*+-.^_`|~ only)", name)
	case !httpguts.ValidHeaderFieldValue(value):
		return activities.Permanentf("http.call: header %s: value %q has a control character (CR, LF, NUL, ...); a header value is one line of text", name, value)
	case strings.EqualFold(name, "Authorization"), strings.EqualFold(name, "Proxy-Authorization"), strings.EqualFold(name, IdempotencyHeader):
		return activities.Permanentf("header %s is set by drctl: use auth (a target whose credentials hold the token) for Authorization", name)
	case slices.ContainsFunc(clientHeaders, func(h string) bool { return strings.EqualFold(h, name) }):
		return activities.Permanentf("http.call: header %s is set by the HTTP client, not by a runbook; remove it", name)
	}
	return nil
}

// Observe implements activities.Action: it sends nothing.
func (c *Call) Observe(_ context.Context, req activities.Request) (activities.Observation, error) {
	in, err := c.input(req)
	if err != nil {
		return activities.Observation{}, err
	}
	return activities.Observation{
		Current: "not observable without calling it",
		Changes: []string{fmt.Sprintf("%s %s with %s: %s", in.Method, in.URL, IdempotencyHeader, req.IdempotencyKey())},
	}, nil
}

// Apply implements activities.Action.
func (c *Call) Apply(ctx context.Context, req activities.Request) (activities.Result, error) {
	in, err := c.input(req)
	if err != nil {
		return activities.Result{}, err
	}
	var body io.Reader
	contentType := ""
	switch {
	case in.JSON != nil:
		b, err := json.Marshal(in.JSON)
		if err != nil {
			return activities.Result{}, activities.Permanentf("http.call json: %v", err)
		}
		body, contentType = bytes.NewReader(b), "application/json"
	case in.Body != "":
		body, contentType = strings.NewReader(in.Body), "text/plain; charset=utf-8"
	}
	token := ""
	if in.Auth != "" {
		if token, err = bearerToken(req, in.Auth); err != nil {
			return activities.Result{}, err
		}
	}
	// Everything secret this call sends; none of it may come back through
	// what the step keeps or reports.
	secrets := []string{token}
	if token != "" {
		secrets = append(secrets, "Bearer "+token)
	}
	for k, v := range in.Headers {
		// A runbook should hold no secret, but a header named like one is
		// treated as one; a value too short to be a secret would only
		// garble the body.
		if sensitiveName.MatchString(k) && len(v) >= 4 {
			secrets = append(secrets, v)
		}
	}
	redact := newRedactor(secrets...)
	u, _ := url.Parse(in.URL)
	var (
		text      string
		truncated bool
	)
	status, err := breakersOr(c.Breakers).do(u, BreakerSettings{Failures: in.BreakerFailures, OpenFor: in.BreakerOpenFor}, in.compensating, func() (int, error) {
		rctx, cancel := context.WithTimeout(ctx, in.Timeout.D())
		defer cancel()
		r, err := http.NewRequestWithContext(rctx, in.Method, in.URL, body)
		if err != nil {
			return 0, err
		}
		for k, v := range in.Headers {
			r.Header.Set(k, v)
		}
		if contentType != "" {
			r.Header.Set("Content-Type", contentType)
		}
		r.Header.Set(IdempotencyHeader, req.IdempotencyKey())
		if token != "" {
			r.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := clientOr(c.Client).Do(r)
		if err != nil {
			return 0, err
		}
		defer resp.Body.Close()
		text, truncated, err = redact.readBody(resp.Body)
		return resp.StatusCode, err
	})
	if err != nil {
		return activities.Result{}, fmt.Errorf("%s %s: %s", in.Method, in.URL, redact.String(err.Error()))
	}
	ok := status >= 200 && status < 300
	if in.ExpectStatus != 0 {
		ok = status == in.ExpectStatus
	}
	if !ok {
		err := fmt.Errorf("%s %s: status %d: %s", in.Method, in.URL, status, text)
		if status >= 400 && status < 500 && status != http.StatusTooManyRequests && status != http.StatusRequestTimeout && status != http.StatusConflict {
			return activities.Result{}, activities.Permanent(err)
		}
		return activities.Result{}, err
	}
	return activities.Result{
		Changed: true,
		Summary: fmt.Sprintf("%s %s: %d", in.Method, in.URL, status),
		Outputs: map[string]any{"status": status, "body": text, "body_truncated": truncated},
	}, nil
}

func bearerToken(req activities.Request, target string) (string, error) {
	t, ok := req.Target(target)
	if !ok {
		return "", activities.Permanentf("auth: no target %q in the runbook", target)
	}
	if t.Kind != TargetKind {
		return "", activities.Permanentf("auth: target %s is a %s, not an %s target", target, t.Kind, TargetKind)
	}
	return activities.Credential(t, "a bearer token")
}
