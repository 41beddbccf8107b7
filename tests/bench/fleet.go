package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/drctl/drctl/internal/devserver"
	"github.com/drctl/drctl/internal/operator"
	"github.com/drctl/drctl/runbooks"
	"github.com/drctl/drctl/tests/internal/benchkit"
	"github.com/drctl/drctl/workflows"
)

// The fleet tables (-fleet 10,100,500): what a site failover of many
// services costs on one tuned server and one in-process worker. The server
// (-fleet-db) is the dev server in memory or on SQLite, or a
// production-shaped cluster (internal/tcluster: PostgreSQL 15 primary and
// streaming standby, frontend, history, matching and worker as four
// processes, mutual TLS, the same tuning). Every
// service runs serviceRunbook (note, wait 10ms, note x3: five steps, a
// lock of its own).
//
//   - Concurrent runs: N runs started through internal/operator,
//     -fleet-starters at a time, each awaited as soon as it started. "all
//     started" and "all complete" count from the first start; a run's
//     duration is its report's start to end (the workflow's own clock);
//     steps/s is 5N over "all complete".
//   - One parent: fleetRunbook, whose one step runs serviceRunbook for each
//     of N services, -fleet-parallel at a time; "complete" is its start to
//     its report, the child durations are the RTOs its report lists.
//
// Both runbooks are written into a temporary directory and loaded with
// runbooks.Load, so the child is loaded relative to the parent as a user's
// would be. Every row gets a fresh server and worker, one unreported
// warm-up run and a second's pause. The CPU columns are /proc readings
// over the row (cpu.go): the server (the dev server process; for the
// cluster its four service processes and both PostgreSQL servers, every
// process under each postmaster included), this process (the worker and
// the bench's own start and wait calls), everything else on the machine,
// and iowait.

const (
	fleetStepsPerRun = 5
	serviceFile      = "service.yaml"
	fleetFile        = "fleet.yaml"
)

// serviceRunbook is one service's failover as issue 15 measured it.
const serviceRunbook = `apiVersion: drctl/v1
name: bench-service
description: One service's part of a fleet failover, as the fleet bench sees it.
lock: bench-service
params:
  service: {description: the service, required: true}
steps:
  - id: announce
    action: note
    with: {message: "${{ params.service }}: failing over"}
  - id: settle
    needs: [announce]
    action: wait
    with: {duration: 10ms}
  - id: moved
    needs: [settle]
    action: note
    with: {message: "${{ params.service }}: moved"}
  - id: checked
    needs: [moved]
    action: note
    with: {message: "${{ params.service }}: serves"}
  - id: recorded
    needs: [checked]
    action: note
    with: {message: "${{ params.service }}: done"}
`

// fleetRunbook is the whole fleet as one run (%d: max_parallel).
const fleetRunbook = `apiVersion: drctl/v1
name: bench-fleet
description: Every service of the fleet, as child runs.
lock: bench-fleet
params:
  services: {description: "the services, comma-separated", required: true}
steps:
  - id: services
    runbook: ` + serviceFile + `
    for_each: "${{ params.services }}"
    as: service
    max_parallel: %d
`

// fleetOptions are the fleet bench's flags.
type fleetOptions struct {
	sizes    []int
	parallel int      // the parent's max_parallel
	starters int      // concurrent runs started at a time
	dbs      []string // "memory", "sqlite", "cluster"
}

func (o fleetOptions) parseDBs(list string) ([]string, error) {
	var out []string
	for _, d := range strings.Split(list, ",") {
		switch d = strings.TrimSpace(d); d {
		case "":
		case "memory", "sqlite", "cluster":
			out = append(out, d)
		default:
			return nil, fmt.Errorf("-fleet-db: unknown server %q; use memory, sqlite and/or cluster", d)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("-fleet-db: name at least one of memory, sqlite, cluster")
	}
	return out, nil
}

func (o fleetOptions) check() error {
	if o.parallel < 1 || o.parallel > runbooks.MaxParallel {
		return fmt.Errorf("-fleet-parallel: %d is outside 1..%d", o.parallel, runbooks.MaxParallel)
	}
	if o.starters < 1 {
		return fmt.Errorf("-fleet-starters: %d is less than 1", o.starters)
	}
	return nil
}

// fleetBench runs the fleet tables' rows.
type fleetBench struct {
	bin      string
	dir      string // the runbooks and SQLite files
	o        fleetOptions
	timeout  time.Duration
	service  *runbooks.Runbook
	fleet    *runbooks.Runbook
	progress io.Writer
}

func benchFleet(ctx context.Context, out io.Writer, bin string, o options) error {
	dir, err := os.MkdirTemp("", "drctl-bench-fleet-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	f := &fleetBench{bin: bin, dir: dir, o: o.fleet, timeout: o.timeout, progress: os.Stderr}
	if err := f.load(); err != nil {
		return err
	}

	fmt.Fprintf(out, "\n# fleet, concurrent runs: N runs of a 5-step service runbook (note, wait 10ms, note x3; a lock each), started through internal/operator %d at a time; %s; one in-process worker\n",
		f.o.starters, f.servers())
	fmt.Fprintf(out, "# CPU s (share of one core over the row's wall time): server = %s, worker = this process (worker + the bench's start/wait calls), rest = every other process on the machine\n", f.serverCPU())
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "db\tN\tall started s\tall complete s\tsteps/s\trun p50 s\trun p95 s\tserver CPU s\tworker CPU s\trest CPU s\tiowait s\t")
	var shape runShape
	for _, db := range f.o.dbs {
		for _, n := range f.o.sizes {
			if shape, err = f.concurrentRow(ctx, tw, db, n); err != nil {
				return fmt.Errorf("fleet of %d concurrent runs (%s): %w", n, db, err)
			}
		}
	}
	tw.Flush()
	others := "none"
	if len(shape.otherTypes) > 0 {
		others = strings.Join(shape.otherTypes, ", ")
	}
	fmt.Fprintf(out, "# a service run's history: %d events, %d workflow tasks, %d note activities, %d local activities, %d other activities (%s)\n",
		shape.events, shape.workflowTasks, shape.activities, shape.local, shape.other, others)
	fmt.Fprintf(out, "#   by type: %s\n", shape.eventCounts())

	fmt.Fprintf(out, "\n# fleet, one parent: a runbook whose one step runs the service runbook for each of N services (for_each), max_parallel %d; child RTOs from the parent's report\n", f.o.parallel)
	tw = tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "db\tN\tcomplete s\tchild steps/s\tchild RTO p50 s\tchild RTO p95 s\tserver CPU s\tworker CPU s\trest CPU s\tiowait s\tparent events\t")
	var (
		summaries []string
		last      string
	)
	for _, db := range f.o.dbs {
		for _, n := range f.o.sizes {
			summary, shape, err := f.parentRow(ctx, tw, db, n)
			if err != nil {
				return fmt.Errorf("fleet of %d as one parent (%s): %w", n, db, err)
			}
			summaries = append(summaries, fmt.Sprintf("# %s N=%d: %s", db, n, summary))
			last = fmt.Sprintf("# the parent's history (%s N=%d) by type: %s", db, n, shape.eventCounts())
		}
	}
	tw.Flush()
	fmt.Fprintln(out, "# the parent's summary line (its fan-out step's):")
	for _, s := range summaries {
		fmt.Fprintln(out, s)
	}
	fmt.Fprintln(out, last)
	return nil
}

// servers names the servers of the rows, for the header.
func (f *fleetBench) servers() string {
	var dev []string
	cluster := false
	for _, db := range f.o.dbs {
		if db == "cluster" {
			cluster = true
		} else {
			dev = append(dev, db)
		}
	}
	var s []string
	if len(dev) > 0 {
		s = append(s, fmt.Sprintf("tuned dev server (%s)", strings.Join(dev, ", ")))
	}
	if cluster {
		s = append(s, "cluster = tuned Temporal server from its module, 4 service processes (frontend, history, matching, worker), mutual TLS, PostgreSQL 15 primary + streaming standby")
	}
	return strings.Join(s, "; ")
}

// serverCPU says what the server CPU column counts, for the header.
func (f *fleetBench) serverCPU() string {
	var s []string
	if slices.ContainsFunc(f.o.dbs, func(db string) bool { return db != "cluster" }) {
		s = append(s, "the dev server process")
	}
	if slices.Contains(f.o.dbs, "cluster") {
		s = append(s, "the cluster's 4 service processes + both PostgreSQL servers (each postmaster and every process under it, backends that exited during the row included)")
	}
	return strings.Join(s, "; ")
}

// load writes both runbooks and loads them as a user's would be.
func (f *fleetBench) load() error {
	if err := os.WriteFile(filepath.Join(f.dir, serviceFile), []byte(serviceRunbook), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(f.dir, fleetFile), fmt.Appendf(nil, fleetRunbook, f.o.parallel), 0o644); err != nil {
		return err
	}
	var err error
	if f.service, err = runbooks.Load(filepath.Join(f.dir, serviceFile), catalog()); err != nil {
		return err
	}
	f.fleet, err = runbooks.Load(filepath.Join(f.dir, fleetFile), catalog())
	return err
}

// fleetEnv is a fresh server and worker for one row, the server's PIDs
// (sampleCPU's roots) and an operator, warmed up by one run of the service
// runbook.
type fleetEnv struct {
	*benchEnv
	op   *operator.Operator
	pids []int
}

// clusterStart bounds the start of a cluster (PostgreSQL pair, schemas,
// four services, namespace).
const clusterStart = 5 * time.Minute

func (f *fleetBench) start(ctx context.Context, db, row string) (*fleetEnv, error) {
	var (
		env *benchEnv
		err error
	)
	if db == "cluster" {
		env, err = startClusterEnv(ctx, clusterStart, "drctl-bench-fleet")
	} else {
		so := devserver.Options{Binary: f.bin}
		if db == "sqlite" {
			so.DBFile = filepath.Join(f.dir, row+".db")
		}
		env, err = startEnv(ctx, so, "drctl-bench-fleet")
	}
	if err != nil {
		return nil, err
	}
	e := &fleetEnv{benchEnv: env, op: env.operator("bench")}
	e.pids, err = env.serverPIDs()
	if err == nil {
		err = f.warmUp(ctx, e.op)
	}
	if err == nil {
		err = pause(ctx, settle)
	}
	if err != nil {
		return nil, errors.Join(err, env.close())
	}
	return e, nil
}

// warmUp runs the service runbook once, to its end.
func (f *fleetBench) warmUp(ctx context.Context, op *operator.Operator) error {
	rb := *f.service
	rb.Lock = "bench-warmup"
	st, err := op.Start(ctx, &rb, map[string]string{"service": "warmup"}, workflows.ModeFailover, "warm-up")
	if err != nil {
		return fmt.Errorf("warm-up run: %w", err)
	}
	rep, err := op.Wait(ctx, st.WorkflowID)
	if err != nil {
		return fmt.Errorf("warm-up run: %w", err)
	}
	if rep.State != workflows.StateSucceeded {
		return fmt.Errorf("warm-up run %s ended %s: %s", st.WorkflowID, rep.State, rep.Error)
	}
	return nil
}

func pause(ctx context.Context, d time.Duration) error {
	select {
	case <-time.After(d):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// service is the i-th service's name.
func service(i int) string { return fmt.Sprintf("svc%03d", i+1) }

// concurrentRow starts n runs, -fleet-starters at a time, waits for every
// one, and writes the row.
func (f *fleetBench) concurrentRow(ctx context.Context, out io.Writer, db string, n int) (_ runShape, err error) {
	e, err := f.start(ctx, db, fmt.Sprintf("concurrent-%d", n))
	if err != nil {
		return runShape{}, err
	}
	defer func() { err = errors.Join(err, e.close()) }()
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()

	var (
		mu       sync.Mutex
		firstErr error
		runs     = make([]time.Duration, 0, n)
		lastDone time.Time
	)
	fail := func(err error) {
		mu.Lock()
		defer mu.Unlock()
		if firstErr == nil {
			firstErr = err
			cancel()
		}
	}
	started := make(chan operator.Started, n)
	var waiters sync.WaitGroup
	for range f.o.starters {
		waiters.Go(func() {
			for st := range started {
				rep, err := e.op.Wait(ctx, st.WorkflowID)
				done := time.Now()
				switch {
				case err != nil:
					fail(err)
					continue
				case rep.State != workflows.StateSucceeded || rep.EndedAt == nil:
					fail(fmt.Errorf("run %s ended %s: %s", st.WorkflowID, rep.State, rep.Error))
					continue
				}
				mu.Lock()
				runs = append(runs, rep.EndedAt.Sub(rep.StartedAt))
				lastDone = later(lastDone, done)
				mu.Unlock()
			}
		})
	}

	cpu0, err := sampleCPU(e.pids)
	if err != nil {
		return runShape{}, err
	}
	t0 := time.Now()
	next := make(chan int)
	var starters sync.WaitGroup
	for range f.o.starters {
		starters.Go(func() {
			for i := range next {
				rb := *f.service
				rb.Lock = "bench-service-" + service(i)
				st, err := e.op.Start(ctx, &rb, map[string]string{"service": service(i)}, workflows.ModeFailover, "bench fleet")
				if err != nil {
					fail(fmt.Errorf("start %s: %w", rb.Lock, err))
					continue
				}
				started <- st
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	starters.Wait()
	allStarted := time.Since(t0)
	close(started)
	fmt.Fprintf(f.progress, "bench: fleet %s N=%d: all started in %s\n", db, n, allStarted.Round(time.Millisecond))
	waiters.Wait()
	cpu1, err := sampleCPU(e.pids)
	if err != nil {
		return runShape{}, err
	}
	if firstErr != nil {
		return runShape{}, firstErr
	}
	allDone := lastDone.Sub(t0)
	use := cpu0.to(cpu1)
	shape, err := readShape(ctx, e.op.Client, workflows.WorkflowID("bench-service-"+service(0)), "", "note")
	if err != nil {
		return runShape{}, err
	}
	slices.Sort(runs)
	fmt.Fprintf(out, "%s\t%d\t%.2f\t%.2f\t%.0f\t%.2f\t%.2f\t%s\t%s\t%s\t%.1f\t\n",
		db, n, allStarted.Seconds(), allDone.Seconds(), float64(fleetStepsPerRun*n)/allDone.Seconds(),
		benchkit.Percentile(runs, 50).Seconds(), benchkit.Percentile(runs, 95).Seconds(),
		use.cell(use.server), use.cell(use.self), use.cell(use.rest), use.iowait.Seconds())
	fmt.Fprintf(f.progress, "bench: fleet %s N=%d: all complete in %s\n", db, n, allDone.Round(time.Millisecond))
	return shape, nil
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// parentRow runs the fleet as one parent run over n services, writes the
// row and returns the parent's summary line.
func (f *fleetBench) parentRow(ctx context.Context, out io.Writer, db string, n int) (summary string, shape runShape, err error) {
	e, err := f.start(ctx, db, fmt.Sprintf("parent-%d", n))
	if err != nil {
		return "", runShape{}, err
	}
	defer func() { err = errors.Join(err, e.close()) }()
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()

	items := make([]string, n)
	for i := range items {
		items[i] = service(i)
	}
	cpu0, err := sampleCPU(e.pids)
	if err != nil {
		return "", runShape{}, err
	}
	t0 := time.Now()
	st, err := e.op.Start(ctx, f.fleet, map[string]string{"services": strings.Join(items, ",")}, workflows.ModeFailover, "bench fleet")
	if err != nil {
		return "", runShape{}, err
	}
	rep, err := e.op.Wait(ctx, st.WorkflowID)
	wall := time.Since(t0)
	if err != nil {
		return "", runShape{}, err
	}
	cpu1, err := sampleCPU(e.pids)
	if err != nil {
		return "", runShape{}, err
	}
	step, ok := rep.Step("services")
	if !ok {
		return "", runShape{}, fmt.Errorf("run %s: no step services in the report", st.WorkflowID)
	}
	if rep.State != workflows.StateSucceeded {
		return "", runShape{}, fmt.Errorf("run %s ended %s: %s (%s)", st.WorkflowID, rep.State, rep.Error, step.Summary)
	}
	var rtos []time.Duration
	for _, c := range step.Children {
		if c.RTOMs != nil {
			rtos = append(rtos, time.Duration(*c.RTOMs)*time.Millisecond)
		}
	}
	slices.Sort(rtos)
	shape, err = readShape(ctx, e.op.Client, st.WorkflowID, st.RunID, "")
	if err != nil {
		return "", runShape{}, err
	}
	use := cpu0.to(cpu1)
	fmt.Fprintf(out, "%s\t%d\t%.2f\t%.0f\t%.2f\t%.2f\t%s\t%s\t%s\t%.1f\t%d\t\n",
		db, n, wall.Seconds(), float64(fleetStepsPerRun*n)/wall.Seconds(),
		benchkit.Percentile(rtos, 50).Seconds(), benchkit.Percentile(rtos, 95).Seconds(),
		use.cell(use.server), use.cell(use.self), use.cell(use.rest), use.iowait.Seconds(), shape.events)
	fmt.Fprintf(f.progress, "bench: fleet %s N=%d as one parent: complete in %s\n", db, n, wall.Round(time.Millisecond))
	return step.Summary, shape, nil
}
