package web

import (
	"errors"
	"fmt"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sony/gobreaker/v2"

	"github.com/drctl/drctl/runbooks"
)

// Breakers holds one circuit breaker per endpoint (scheme://host:port) and
// settings. After Threshold consecutive failures (a transport error or a
// 5xx) a breaker opens and requests to that endpoint fail at once, without
// being sent, for OpenFor; then one request is let through to probe it.
//
// Compensations never go through a breaker: the way back must be tried
// even when the way forward has just made the endpoint fail, and it is
// not counted either, so it cannot open the breaker for the steps.
type Breakers struct {
	Threshold uint32        // default 5
	OpenFor   time.Duration // default 5s

	mu sync.Mutex
	m  map[string]*breaker
}

// breaker is one endpoint's breaker and how it last tripped.
type breaker struct {
	cb      *gobreaker.CircuitBreaker[int]
	tripped atomic.Uint32 // consecutive failures when it last opened
	openFor time.Duration
}

// BreakerSettings are a step's own breaker settings (its breaker_failures
// and breaker_open_for inputs); zero values take the Breakers' defaults.
type BreakerSettings struct {
	Failures int
	OpenFor  runbooks.Duration
}

// Bounds of a step's breaker settings.
const (
	maxBreakerFailures = 100
	maxBreakerOpenFor  = runbooks.Duration(10 * time.Minute)
)

func (s BreakerSettings) check() error {
	if s.Failures < 0 || s.Failures > maxBreakerFailures {
		return fmt.Errorf("breaker_failures %d is outside 1..%d", s.Failures, maxBreakerFailures)
	}
	if s.OpenFor < 0 || s.OpenFor > maxBreakerOpenFor {
		return fmt.Errorf("breaker_open_for %s is outside 0s..%s", s.OpenFor, maxBreakerOpenFor)
	}
	return nil
}

// The inputs that tune a step's breaker, shared by http.check and http.call.
var (
	breakerFailuresInput = runbooks.InputSpec{Name: "breaker_failures", Type: runbooks.TypeInt, Doc: "consecutive failures (transport errors, 5xx) that open the endpoint's circuit breaker (default 5, at most 100)"}
	breakerOpenForInput  = runbooks.InputSpec{Name: "breaker_open_for", Type: runbooks.TypeDuration, Doc: "how long an open breaker sends nothing before it probes again (default 5s, at most 10m)"}
)

// errServer marks a 5xx answer as a failure for the breaker.
var errServer = errors.New("server error")

// ErrOpen is returned (wrapped) for a request the breaker did not send.
var ErrOpen = errors.New("circuit open")

func (b *Breakers) get(u *url.URL, s BreakerSettings) *breaker {
	threshold, openFor := b.Threshold, b.OpenFor
	if s.Failures > 0 {
		threshold = uint32(s.Failures)
	}
	if s.OpenFor > 0 {
		openFor = s.OpenFor.D()
	}
	if threshold == 0 {
		threshold = 5
	}
	if openFor == 0 {
		openFor = 5 * time.Second
	}
	endpoint := u.Scheme + "://" + u.Host
	key := fmt.Sprintf("%s %d %s", endpoint, threshold, openFor)
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.m == nil {
		b.m = map[string]*breaker{}
	}
	if br, ok := b.m[key]; ok {
		return br
	}
	br := &breaker{openFor: openFor}
	br.cb = gobreaker.NewCircuitBreaker[int](gobreaker.Settings{
		Name:        endpoint,
		MaxRequests: 1,
		Timeout:     openFor,
		ReadyToTrip: func(c gobreaker.Counts) bool {
			if c.ConsecutiveFailures >= threshold {
				br.tripped.Store(c.ConsecutiveFailures)
				return true
			}
			return false
		},
	})
	b.m[key] = br
	return br
}

// do runs send through the endpoint's breaker (a compensation's request
// goes straight out). send returns the HTTP status; a transport error or
// a 5xx counts as a failure.
func (b *Breakers) do(u *url.URL, s BreakerSettings, compensating bool, send func() (int, error)) (int, error) {
	if compensating {
		return send()
	}
	br := b.get(u, s)
	status, err := br.cb.Execute(func() (int, error) {
		s, err := send()
		if err == nil && s >= 500 {
			return s, errServer
		}
		return s, err
	})
	switch {
	case errors.Is(err, gobreaker.ErrOpenState), errors.Is(err, gobreaker.ErrTooManyRequests):
		return 0, fmt.Errorf("%w for %s after %d consecutive failures; not asking it again for up to %s", ErrOpen, br.cb.Name(), br.tripped.Load(), br.openFor)
	case errors.Is(err, errServer):
		return status, nil
	}
	return status, err
}

// shared is the worker-wide set of breakers the actions use by default.
var shared = &Breakers{}
