package worker

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"go.temporal.io/sdk/client"
	sdkworker "go.temporal.io/sdk/worker"

	"github.com/drctl/drctl/activities"
	"github.com/drctl/drctl/activities/dns"
	"github.com/drctl/drctl/activities/postgres"
	"github.com/drctl/drctl/internal/config"
	"github.com/drctl/drctl/runbooks"
)

// Options adjusts Serve. The zero value serves as `drctl worker` does: it
// dials cfg.Temporal, registers the shipped actions and reads targets'
// credentials from this process's environment or the files they name.
type Options struct {
	// Client is the connection to serve on. Nil: Serve dials cfg.Temporal
	// (with Dial and the Dial options) and closes the connection when it
	// returns.
	Client client.Client
	// Dial adjusts the connection Serve makes when Client is nil.
	Dial DialOptions
	// Secrets hands the worker credentials in its process; nil: none, every
	// credential is read from the environment or a file.
	Secrets Secrets
	// Configure adjusts the providers configured from cfg before the
	// actions are registered (a test holds postgres.promote open after
	// pg_promote). Nil: none.
	Configure func(*Providers)
	// Actions are registered beside the shipped ones (a test's own
	// actions). A name taken twice is an error.
	Actions []activities.Action
	// Ready is called once the worker polls its task queue. Nil: nothing.
	Ready func(Serving)
	// Beside runs alongside the worker on its connection until ctx ends
	// (`drctl worker`'s Slack click receiver). Serve waits for it to return
	// before it closes the connection, so what it accepted before the end
	// still gets its answer. Nil: nothing.
	Beside func(ctx context.Context, s Serving)
}

// Serving is what a ready worker serves with.
type Serving struct {
	Client   client.Client
	Registry *activities.Registry
	// MetricsAddr is the host:port the worker serves /metrics on (the port
	// picked when telemetry.metrics_listen asked for port 0); empty when
	// it serves none.
	MetricsAddr string
}

// Serve builds the registry from cfg and o, connects, registers the
// workflows and actions on cfg's task queue and runs until ctx ends; then
// it stops the worker gracefully and returns nil (ctx.Err() when ctx hit
// a deadline).
//
// When o.Dial.Telemetry has a Prometheus scrape handler, Serve serves it
// at /metrics on cfg.Telemetry.MetricsListen from before it dials until
// the worker has stopped; an address it cannot listen on stops it first.
func Serve(ctx context.Context, cfg config.Config, o Options) error {
	reg, err := o.registry(cfg)
	if err != nil {
		return err
	}
	metricsAddr, stopMetrics, err := serveMetrics(cfg.Telemetry.MetricsListen, o.Dial.Telemetry.MetricsHTTP)
	if err != nil {
		return err
	}
	defer stopMetrics()
	c := o.Client
	if c == nil {
		if c, err = Dial(ctx, cfg, o.Dial); err != nil {
			return err
		}
		defer c.Close()
	}
	if err := CheckSearchAttributes(ctx, c, cfg.Temporal.Namespace); err != nil {
		return err
	}
	w := New(c, cfg, reg)
	if err := w.Start(); err != nil {
		return fmt.Errorf("start worker on task queue %q: %w", cfg.Temporal.TaskQueue, err)
	}
	s := Serving{Client: c, Registry: reg, MetricsAddr: metricsAddr}
	if o.Ready != nil {
		o.Ready(s)
	}
	beside := make(chan struct{})
	if o.Beside != nil {
		go func() {
			defer close(beside)
			o.Beside(ctx, s)
		}()
	} else {
		close(beside)
	}
	<-ctx.Done()
	w.Stop()
	<-beside
	if errors.Is(ctx.Err(), context.Canceled) {
		return nil
	}
	return ctx.Err()
}

// serveMetrics serves h at /metrics on addr until stop is called, and
// returns the address it listens on. A nil h serves nothing.
func serveMetrics(addr string, h http.Handler) (listening string, stop func(), err error) {
	if h == nil {
		return "", func() {}, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", nil, fmt.Errorf("serve metrics on telemetry.metrics_listen %s: %w (pick a free host:port, or port 0 for any)", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", h)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ln) // ends with http.ErrServerClosed when stopped
	}()
	return ln.Addr().String(), func() {
		// A scrape under way may finish; a stuck one does not hold the
		// worker's exit.
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if srv.Shutdown(ctx) != nil {
			_ = srv.Close()
		}
		<-done
	}, nil
}

// registry is every shipped action on the providers configured from cfg,
// with o's secrets, adjustments and extra actions.
func (o Options) registry(cfg config.Config) (*activities.Registry, error) {
	p, err := DefaultProviders(cfg)
	if err != nil {
		return nil, err
	}
	if o.Secrets != nil {
		p.Postgres.Secrets = o.Secrets
		p.DNS.Secrets = o.Secrets
	}
	if o.Configure != nil {
		o.Configure(&p)
	}
	reg, err := NewRegistry(p)
	if err != nil {
		return nil, err
	}
	if err := reg.Add(o.Actions...); err != nil {
		return nil, err
	}
	return reg, nil
}

// Running is a worker Start runs in the background.
type Running struct {
	Serving
	stop context.CancelFunc
	done chan struct{}
	err  error
}

// Start runs Serve in the background and returns once the worker polls
// its task queue, or with Serve's error if it failed first. Stop ends it.
func Start(ctx context.Context, cfg config.Config, o Options) (*Running, error) {
	ctx, cancel := context.WithCancel(ctx)
	r := &Running{stop: cancel, done: make(chan struct{})}
	ready := make(chan Serving, 1)
	readyFn := o.Ready
	o.Ready = func(s Serving) {
		if readyFn != nil {
			readyFn(s)
		}
		ready <- s
	}
	go func() {
		defer close(r.done)
		r.err = Serve(ctx, cfg, o)
	}()
	select {
	case r.Serving = <-ready:
		return r, nil
	case <-r.done:
		cancel()
		return nil, r.err
	}
}

// Stop stops the worker gracefully, waits until it has, and returns Serve's
// error.
func (r *Running) Stop() error {
	r.stop()
	<-r.done
	return r.err
}

// Secrets are credentials handed to a worker in its process rather than
// through its environment, by the name of the environment variable a
// runbook target's credentials name (credentials: {env: NAME}). They serve
// the postgres and dns targets; a target whose variable is not among them
// is read as usual, from the environment or the file its credentials name
// (http.call's auth token always is). Never log them.
type Secrets map[string]string

var (
	_ postgres.Secrets = Secrets(nil)
	_ dns.Secrets      = Secrets(nil)
)

// DSN implements postgres.Secrets.
func (s Secrets) DSN(t runbooks.Target) (string, error) {
	if v, ok := s.lookup(t); ok {
		return v, nil
	}
	return postgres.CredentialSecrets{}.DSN(t)
}

// Secret implements dns.Secrets.
func (s Secrets) Secret(t runbooks.Target) (string, error) {
	if v, ok := s.lookup(t); ok {
		return v, nil
	}
	return dns.CredentialSecrets{}.Secret(t)
}

func (s Secrets) lookup(t runbooks.Target) (string, bool) {
	if t.Credentials == nil || t.Credentials.Env == "" {
		return "", false
	}
	v := strings.TrimSpace(s[t.Credentials.Env])
	return v, v != ""
}

// Replay replays a recorded run history (JSON, as `drctl history export`
// writes it) against this build's workflows; an error says why it no
// longer replays.
func Replay(file string) error {
	r := sdkworker.NewWorkflowReplayer()
	RegisterWorkflows(r)
	return r.ReplayWorkflowHistoryFromJSONFile(QuietLogger(), file)
}
