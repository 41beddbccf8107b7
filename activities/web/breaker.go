package web

import (
	"errors"
	"fmt"
	"net/url"
	"sync"
	"time"

	"github.com/sony/gobreaker/v2"
)

// Breakers holds one circuit breaker per endpoint (scheme://host:port).
// After Threshold consecutive failures a breaker opens and requests to that
// endpoint fail at once, without being sent, for OpenFor; then one request
// is let through to probe it.
type Breakers struct {
	Threshold uint32        // default 5
	OpenFor   time.Duration // default 5s

	mu sync.Mutex
	m  map[string]*gobreaker.CircuitBreaker[int]
}

// errServer marks a 5xx answer as a failure for the breaker.
var errServer = errors.New("server error")

// ErrOpen is returned (wrapped) for a request the breaker did not send.
var ErrOpen = errors.New("circuit open")

func (b *Breakers) get(u *url.URL) *gobreaker.CircuitBreaker[int] {
	key := u.Scheme + "://" + u.Host
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.m == nil {
		b.m = map[string]*gobreaker.CircuitBreaker[int]{}
	}
	if cb, ok := b.m[key]; ok {
		return cb
	}
	threshold, openFor := b.Threshold, b.OpenFor
	if threshold == 0 {
		threshold = 5
	}
	if openFor == 0 {
		openFor = 5 * time.Second
	}
	cb := gobreaker.NewCircuitBreaker[int](gobreaker.Settings{
		Name:        key,
		MaxRequests: 1,
		Timeout:     openFor,
		ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= threshold },
	})
	b.m[key] = cb
	return cb
}

// do runs send through the endpoint's breaker. send returns the HTTP
// status; a transport error or a 5xx counts as a failure.
func (b *Breakers) do(u *url.URL, send func() (int, error)) (int, error) {
	cb := b.get(u)
	status, err := cb.Execute(func() (int, error) {
		s, err := send()
		if err == nil && s >= 500 {
			return s, errServer
		}
		return s, err
	})
	switch {
	case errors.Is(err, gobreaker.ErrOpenState), errors.Is(err, gobreaker.ErrTooManyRequests):
		c := cb.Counts()
		return 0, fmt.Errorf("%w for %s after %d consecutive failures; not asking it again for a while", ErrOpen, cb.Name(), c.ConsecutiveFailures)
	case errors.Is(err, errServer):
		return status, nil
	}
	return status, err
}

// shared is the worker-wide set of breakers the actions use by default.
var shared = &Breakers{}
