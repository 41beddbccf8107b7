package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/drctl/drctl/activities"
	"github.com/drctl/drctl/internal/config"
	"github.com/drctl/drctl/internal/devserver"
	"github.com/drctl/drctl/internal/operator"
	"github.com/drctl/drctl/internal/pglab"
	"github.com/drctl/drctl/internal/tcluster"
	"github.com/drctl/drctl/worker"
)

// benchEnv is a server, a dev server or a tcluster.Cluster, and one
// in-process worker serving it, like benchkit.Env, with the bench's own
// actions registered beside the shipped ones (the activity-step workload
// needs one that is not local).
type benchEnv struct {
	server  *devserver.Server // set for a dev server
	cluster *tcluster.Cluster // set for a cluster
	client  client.Client     // the server's, shared by the worker and the operators
	worker  *worker.Running
	cfg     config.Config
	ctx     context.Context
}

// startEnv starts a dev server configured by so and a worker on taskQueue
// serving the shipped actions and the bench's. On failure nothing is left
// running.
func startEnv(ctx context.Context, so devserver.Options, taskQueue string) (*benchEnv, error) {
	srv, err := devserver.Start(ctx, so)
	if err != nil {
		return nil, err
	}
	e := &benchEnv{server: srv, client: srv.Client(), cfg: config.Defaults(), ctx: ctx}
	e.cfg.Temporal.Address = srv.Address
	return e, e.startWorker(taskQueue)
}

// startClusterEnv starts a tcluster.Cluster (PostgreSQL, four service
// processes, mutual TLS; tuned like the dev server) and a worker on
// taskQueue, as startEnv does. The worker and the operators use the
// cluster's own client; the worker's configuration names the cluster's
// address, namespace and TLS files as drctl.yaml would. start bounds the
// cluster's start only. On failure nothing is left running.
func startClusterEnv(ctx context.Context, start time.Duration, taskQueue string) (*benchEnv, error) {
	sctx, cancel := context.WithTimeout(ctx, start)
	cl, err := tcluster.Start(sctx, tcluster.Options{})
	cancel()
	if err != nil {
		return nil, err
	}
	e := &benchEnv{cluster: cl, client: cl.Client(), cfg: config.Defaults(), ctx: ctx}
	e.cfg.Temporal.Address, e.cfg.Temporal.Namespace, e.cfg.Temporal.TLS = cl.Address, cl.Namespace, cl.TLS
	return e, e.startWorker(taskQueue)
}

// startWorker starts the worker on e.client; on failure it stops the
// server too.
func (e *benchEnv) startWorker(taskQueue string) error {
	e.cfg.Temporal.TaskQueue = taskQueue
	e.cfg.Identity = "bench-worker"
	var err error
	e.worker, err = worker.Start(e.ctx, e.cfg, worker.Options{Client: e.client, Actions: []activities.Action{noop{}}})
	if err != nil {
		return errors.Join(err, e.close())
	}
	return nil
}

// operator acts as identity on the worker's task queue.
func (e *benchEnv) operator(identity string) *operator.Operator {
	return &operator.Operator{Client: e.client, Namespace: e.cfg.Temporal.Namespace, TaskQueue: e.cfg.Temporal.TaskQueue, Identity: identity}
}

// serverPIDs are the processes whose CPU time is the server's: the dev
// server's, or the cluster's four services and both PostgreSQL
// postmasters (sampleCPU adds the processes under each).
func (e *benchEnv) serverPIDs() ([]int, error) {
	if e.cluster == nil {
		_, port, err := net.SplitHostPort(e.server.Address)
		if err != nil {
			return nil, err
		}
		pid, err := serverPID(port)
		return []int{pid}, err
	}
	var pids []int
	for _, s := range tcluster.Services {
		pid := e.cluster.PID(s)
		if pid == 0 {
			return nil, fmt.Errorf("cluster at %s: %s is not running", e.cluster.Address, s)
		}
		pids = append(pids, pid)
	}
	for _, n := range []*pglab.Node{e.cluster.Postgres.Primary, e.cluster.Postgres.Standby} {
		pid := n.PID()
		if pid == 0 {
			return nil, fmt.Errorf("cluster at %s: PostgreSQL %s is not running", e.cluster.Address, n.Name)
		}
		pids = append(pids, pid)
	}
	return pids, nil
}

// close stops the worker, then the server. Once the context has ended
// (Ctrl-C) a server that fails to stop is not an error: it had the signal
// too.
func (e *benchEnv) close() error {
	var err error
	if e.worker != nil {
		err = e.worker.Stop()
	}
	var serr error
	what := ""
	if e.cluster != nil {
		serr, what = e.cluster.Stop(), "cluster at "+e.cluster.Address
	} else {
		serr, what = e.server.Stop(), "dev server at "+e.server.Address
	}
	if serr != nil && e.ctx.Err() == nil {
		err = errors.Join(err, fmt.Errorf("stop %s: %w", what, serr))
	}
	return err
}
