package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/drctl/drctl/activities"
	"github.com/drctl/drctl/internal/config"
	"github.com/drctl/drctl/internal/devserver"
	"github.com/drctl/drctl/internal/operator"
	"github.com/drctl/drctl/worker"
)

// benchEnv is a dev server and one in-process worker serving it, like
// benchkit.Env, with the bench's own actions registered beside the shipped
// ones (the activity-step workload needs one that is not local).
type benchEnv struct {
	server *devserver.Server
	worker *worker.Running
	cfg    config.Config
	ctx    context.Context
}

// startEnv starts a dev server configured by so and a worker on taskQueue
// serving the shipped actions and the bench's. On failure nothing is left
// running.
func startEnv(ctx context.Context, so devserver.Options, taskQueue string) (*benchEnv, error) {
	srv, err := devserver.Start(ctx, so)
	if err != nil {
		return nil, err
	}
	e := &benchEnv{server: srv, cfg: config.Defaults(), ctx: ctx}
	e.cfg.Temporal.Address = srv.Address
	e.cfg.Temporal.TaskQueue = taskQueue
	e.cfg.Identity = "bench-worker"
	e.worker, err = worker.Start(ctx, e.cfg, worker.Options{Client: srv.Client(), Actions: []activities.Action{noop{}}})
	if err != nil {
		return nil, errors.Join(err, e.close())
	}
	return e, nil
}

// operator acts as identity on the worker's task queue.
func (e *benchEnv) operator(identity string) *operator.Operator {
	return &operator.Operator{Client: e.server.Client(), TaskQueue: e.cfg.Temporal.TaskQueue, Identity: identity}
}

// close stops the worker, then the server. Once the context has ended
// (Ctrl-C) a server that fails to stop is not an error: it had the signal
// too.
func (e *benchEnv) close() error {
	var err error
	if e.worker != nil {
		err = e.worker.Stop()
	}
	if serr := e.server.Stop(); serr != nil && e.ctx.Err() == nil {
		err = errors.Join(err, fmt.Errorf("stop dev server at %s: %w", e.server.Address, serr))
	}
	return err
}
