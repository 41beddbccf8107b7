package benchkit

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/drctl/drctl/internal/config"
	"github.com/drctl/drctl/internal/devserver"
	"github.com/drctl/drctl/internal/operator"
	"github.com/drctl/drctl/runbooks"
	"github.com/drctl/drctl/worker"
	"github.com/drctl/drctl/workflows"
)

// Options configures Start.
type Options struct {
	// Server configures the dev server (tuned, from FindBinary, by default).
	Server devserver.Options
	// TaskQueue is the in-process worker's task queue; empty: no worker
	// (the caller runs its own, as processes).
	TaskQueue string
	// Identity is the worker's; default "<TaskQueue>-worker".
	Identity string
	// Secrets are handed to the worker (worker.Options.Secrets).
	Secrets worker.Secrets
}

// Env is a running dev server and, with a TaskQueue, a worker serving it.
type Env struct {
	Server *devserver.Server
	// Config is the worker's configuration (Temporal address, task queue,
	// identity); without a worker, the address only.
	Config config.Config
	worker *worker.Running
	ctx    context.Context
}

// Start starts a dev server and, with o.TaskQueue, a worker on it (Serve
// with the shipped actions and o.Secrets). On failure nothing is left
// running.
func Start(ctx context.Context, o Options) (*Env, error) {
	srv, err := devserver.Start(ctx, o.Server)
	if err != nil {
		return nil, err
	}
	e := &Env{Server: srv, Config: config.Defaults(), ctx: ctx}
	e.Config.Temporal.Address = srv.Address
	if o.TaskQueue == "" {
		return e, nil
	}
	e.Config.Temporal.TaskQueue = o.TaskQueue
	e.Config.Identity = o.Identity
	if e.Config.Identity == "" {
		e.Config.Identity = o.TaskQueue + "-worker"
	}
	if e.worker, err = worker.Start(ctx, e.Config, worker.Options{Client: srv.Client(), Secrets: o.Secrets}); err != nil {
		return nil, errors.Join(err, e.Close())
	}
	return e, nil
}

// Operator acts as identity on the worker's task queue.
func (e *Env) Operator(identity string) *operator.Operator {
	return &operator.Operator{Client: e.Server.Client(), TaskQueue: e.Config.Temporal.TaskQueue, Identity: identity}
}

// Close stops the worker, then the server. Once Start's context has ended
// (Ctrl-C) a server that fails to stop is not an error: it has had the
// signal too and may be gone.
func (e *Env) Close() error {
	var err error
	if e.worker != nil {
		err = e.worker.Stop()
	}
	if serr := e.Server.Stop(); serr != nil && e.ctx.Err() == nil {
		err = errors.Join(err, fmt.Errorf("stop dev server at %s: %w", e.Server.Address, serr))
	}
	return err
}

// Run is one run of a runbook, from its start until its report.
type Run struct {
	operator.Started
	Report *workflows.Report
	// Wall is the time from starting the run to having its report.
	Wall time.Duration
}

// RunToEnd starts rb (mode failover, no params) as op and waits for its
// report; a run that does not succeed is an error.
func RunToEnd(ctx context.Context, op *operator.Operator, rb *runbooks.Runbook, reason string) (Run, error) {
	t0 := time.Now()
	st, err := op.Start(ctx, rb, nil, workflows.ModeFailover, reason)
	if err != nil {
		return Run{}, err
	}
	rep, err := op.Wait(ctx, st.WorkflowID)
	r := Run{Started: st, Report: rep, Wall: time.Since(t0)}
	if err != nil {
		return r, err
	}
	if rep.State != workflows.StateSucceeded {
		return r, fmt.Errorf("run %s ended %s: %s", st.WorkflowID, rep.State, rep.Error)
	}
	return r, nil
}
