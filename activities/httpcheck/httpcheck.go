// Package httpcheck implements the http.check action: a health gate that
// passes once a URL has answered with the expected status a number of times
// in a row. It only reads, so Observe and Apply differ only in that Apply
// keeps asking until the gate passes or its deadline ends.
package httpcheck

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/drctl/drctl/activities"
	"github.com/drctl/drctl/runbooks"
)

// Name is the action's name in runbooks.
const Name = "http.check"

// Input is the action's input; zero fields take the documented defaults.
type Input struct {
	URL          string            `json:"url"`
	ExpectStatus int               `json:"expect_status"` // default 200
	Successes    int               `json:"successes"`     // consecutive; default 1
	Interval     runbooks.Duration `json:"interval"`      // between tries; default 1s
	Timeout      runbooks.Duration `json:"timeout"`       // per try; default 5s
	Deadline     runbooks.Duration `json:"deadline"`      // for the whole gate; default 1m
}

func (in *Input) defaults() error {
	u, err := url.Parse(in.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return activities.Permanentf("url %q is not an http(s) URL; write e.g. https://app.example.com/healthz", in.URL)
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

// Check is the http.check action.
type Check struct {
	Client *http.Client // nil: a client with no redirects followed
}

var _ activities.Action = (*Check)(nil)

// Spec implements activities.Action.
func (c *Check) Spec() runbooks.ActionSpec {
	return runbooks.ActionSpec{
		Name: Name,
		Doc:  "Pass once URL answers with expect_status `successes` times in a row, asking every `interval`, failing after `deadline`.",
		Inputs: []runbooks.InputSpec{
			{Name: "url", Type: runbooks.TypeString, Required: true, Doc: "http(s) URL to GET"},
			{Name: "expect_status", Type: runbooks.TypeInt, Doc: "status that counts as healthy (default 200)"},
			{Name: "successes", Type: runbooks.TypeInt, Doc: "consecutive healthy answers needed (default 1)"},
			{Name: "interval", Type: runbooks.TypeDuration, Doc: "pause between tries (default 1s)"},
			{Name: "timeout", Type: runbooks.TypeDuration, Doc: "timeout of one try (default 5s)"},
			{Name: "deadline", Type: runbooks.TypeDuration, Doc: "give up after this long (default 1m)"},
		},
		Outputs: []string{"status", "tries"},
	}
}

func (c *Check) client() *http.Client {
	if c.Client != nil {
		return c.Client
	}
	return &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func (c *Check) input(req activities.Request) (Input, error) {
	var in Input
	if err := activities.Decode(c.Spec(), req.With, &in); err != nil {
		return in, err
	}
	return in, in.defaults()
}

// Observe asks once and reports whether the gate would pass now.
func (c *Check) Observe(ctx context.Context, req activities.Request) (activities.Observation, error) {
	in, err := c.input(req)
	if err != nil {
		return activities.Observation{}, err
	}
	status, err := c.try(ctx, in)
	if err != nil {
		return activities.Observation{Current: fmt.Sprintf("GET %s: %v", in.URL, err)}, nil
	}
	return activities.Observation{Current: fmt.Sprintf("GET %s: %d (want %d)", in.URL, status, in.ExpectStatus)}, nil
}

// Apply asks until the URL has answered as expected Successes times in a row.
func (c *Check) Apply(ctx context.Context, req activities.Request) (activities.Result, error) {
	in, err := c.input(req)
	if err != nil {
		return activities.Result{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, in.Deadline.D())
	defer cancel()
	var (
		streak, tries int
		last          string
	)
	for {
		tries++
		status, err := c.try(ctx, in)
		switch {
		case err != nil && ctx.Err() != nil && last != "":
			// The gate's deadline cut this try short; keep the last real answer.
			streak = 0
		case err != nil:
			streak, last = 0, err.Error()
		case status != in.ExpectStatus:
			streak, last = 0, fmt.Sprintf("status %d", status)
		default:
			streak++
			if streak >= in.Successes {
				return activities.Result{
					Summary: fmt.Sprintf("%s answered %d, %d time(s) in a row", in.URL, status, streak),
					Outputs: map[string]any{"status": status, "tries": tries},
				}, nil
			}
		}
		activities.Heartbeat(ctx, tries)
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return activities.Result{}, fmt.Errorf("check %s: not healthy within %s (%d tries, last: %s)", in.URL, in.Deadline, tries, last)
			}
			return activities.Result{}, ctx.Err()
		case <-time.After(in.Interval.D()):
		}
	}
}

func (c *Check) try(ctx context.Context, in Input) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, in.Timeout.D())
	defer cancel()
	r, err := http.NewRequestWithContext(ctx, http.MethodGet, in.URL, nil)
	if err != nil {
		return 0, activities.Permanent(err)
	}
	resp, err := c.client().Do(r)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, nil
}
