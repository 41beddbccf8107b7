package web

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

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
		Doc: "Call a webhook or admin endpoint with an Idempotency-Key header derived from the run and step, " +
			"so a retried step is recognisable by the receiver. Succeeds on expect_status (default: any 2xx).",
		Inputs: []runbooks.InputSpec{
			{Name: "url", Type: runbooks.TypeString, Required: true, Doc: "http(s) URL"},
			{Name: "method", Type: runbooks.TypeString, Doc: "HTTP method (default POST)"},
			{Name: "json", Type: runbooks.TypeAny, Doc: "a value sent as the JSON body"},
			{Name: "body", Type: runbooks.TypeString, Doc: "a text body (instead of json)"},
			{Name: "headers", Type: runbooks.TypeMap, Doc: "extra headers (no secrets: use auth)"},
			{Name: "expect_status", Type: runbooks.TypeInt, Doc: "the status that counts as success (default: any 2xx)"},
			{Name: "timeout", Type: runbooks.TypeDuration, Doc: "request timeout (default 10s)"},
			{Name: "auth", Type: runbooks.TypeTarget, Doc: "a target of kind http whose credentials hold a bearer token"},
		},
		Outputs: []string{"status", "body"},
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
	for k := range in.Headers {
		if strings.EqualFold(k, "Authorization") || strings.EqualFold(k, IdempotencyHeader) {
			return in, activities.Permanentf("header %s is set by drctl: use auth (a target whose credentials hold the token) for Authorization", k)
		}
	}
	return in, nil
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
	u, _ := url.Parse(in.URL)
	var respBody []byte
	status, err := breakersOr(c.Breakers).do(u, func() (int, error) {
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
		respBody, err = io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		return resp.StatusCode, err
	})
	if err != nil {
		return activities.Result{}, fmt.Errorf("%s %s: %v", in.Method, in.URL, redactToken(err, token))
	}
	ok := status >= 200 && status < 300
	if in.ExpectStatus != 0 {
		ok = status == in.ExpectStatus
	}
	text := strings.TrimSpace(string(respBody))
	if len(text) > 2048 {
		text = text[:2048]
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
		Outputs: map[string]any{"status": status, "body": text},
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

func redactToken(err error, token string) string {
	s := err.Error()
	if token != "" {
		s = strings.ReplaceAll(s, token, "******")
	}
	return s
}
