// Command bench measures the per-step overhead of the runbook interpreter
// (workflows.RunbookWorkflow) on a local Temporal dev server: how long the
// workflow takes to move from one finished step to the next when the steps
// themselves do nothing: the `note` action (a local activity when the
// catalog marks it local) and the bench's own no-op action, which is an
// ordinary activity (-kinds; noop.go). Each row says how its steps ran, as
// read from the run's history.
//
// For each server configuration (-configs: "tuned", the dynamic
// configuration devserver.TunedArgs, and "default", the dev server's own
// defaults) it starts a dev server from bin/temporal and an in-process
// worker, then runs:
//
//   - sequential runbooks of -sizes steps of each -kinds, each needing the previous one;
//     the latency of step i is EndedAt[i]-EndedAt[i-1] (the first step:
//     EndedAt[0]-StartedAt of the run), reported as p50 and p95;
//   - a parallel runbook (-parallel wide, 0 skips it): one root step, that
//     many steps needing the root, and a join step needing all of them;
//     "fan-out+in" is the time from the root's end to the join's start.
//
// "total" is the wall time from starting a run to having its report, and
// steps/s and "mean ms/step" are derived from it. With -repeat N every
// workload runs N times: latencies are pooled and totals averaged. Each
// server first runs a short unreported warm-up, and every run starts after a
// one-second pause so that one run's backlog does not bleed into the next.
//
// Then (-readiness N, 0 skips it) the readiness table: N readiness
// evaluations of site-failover.yaml on the lab (see readiness.go); it is
// skipped, with a note on stderr, when the lab's servers are not installed.
//
// Run it from anywhere in the module:
//
//	go run ./tests/bench
//	go run ./tests/bench -configs tuned -sizes 300 -parallel 0 -repeat 3
//	go run ./tests/bench -sizes '' -parallel 0 -readiness 50
//
// Then (-sites-cuts N, -sites-partitions M; both 0 by default) the sites
// tables (see sites.go): N power cuts of a site in a network namespace,
// each timed from the cut to the proposed failover run, and M partitions
// of one watcher at a time, counting the proposals they cause (goal 0).
// They need root. Given on their own, they run alone; name -sizes,
// -parallel or -readiness as well to run those too:
//
//	sudo go run ./tests/bench -sites-cuts 10 -sites-partitions 100
//
// Then (-fleet 10,100,500) the fleet tables (see fleet.go): that many
// concurrent 5-step service runs started through internal/operator, then
// the same fleet as one parent runbook fanning out with for_each and
// -fleet-parallel, each with the CPU time of the server, this process and
// the rest of the machine. -fleet-db picks the servers: the tuned dev
// server in memory or on SQLite, or a production-shaped cluster
// (internal/tcluster: PostgreSQL primary and standby, four service
// processes, mutual TLS; bin/temporal-server from `make cluster`), whose
// server CPU is its services' and PostgreSQL's. Given on its own, -fleet
// also runs the sequential 300-step rows on the tuned dev server:
//
//	go run ./tests/bench -fleet 10,100,500 -fleet-parallel 100 -fleet-db memory,sqlite,cluster
//
// Only the tables (and one-line headers naming the machine, the temporal
// binary and the settings) go to stdout; progress and errors go to stderr.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/drctl/drctl/internal/devserver"
	"github.com/drctl/drctl/internal/operator"
	"github.com/drctl/drctl/runbooks"
	"github.com/drctl/drctl/tests/internal/benchkit"
	"github.com/drctl/drctl/workflows"
)

// Server configurations by name.
var serverConfigs = map[string]devserver.Options{
	"tuned":   {},
	"default": {Untuned: true},
}

const (
	warmupSteps = 5
	settle      = time.Second // pause before every run
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == siteHelperArg {
		os.Exit(siteHelper(os.Args[2:]))
	}
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

type options struct {
	configs   []string
	sizes     []int
	kinds     []string // step actions of the sequential runbooks
	parallel  int
	repeat    int
	timeout   time.Duration
	readiness int
	sites     sitesOptions
	fleet     fleetOptions
}

// stepKinds are the actions a sequential runbook can be made of: note
// (a local activity once the catalog marks it local) and the bench's
// own action, an ordinary activity.
var stepKinds = map[string]string{"note": "note", "activity": noopAction}

func parseFlags() (options, error) {
	var (
		o       options
		configs = flag.String("configs", "tuned,default", "server configurations to measure, comma-separated: tuned, default")
		sizes   = flag.String("sizes", "10,100,300", "step counts of the sequential runbooks, comma-separated")
		kinds   = flag.String("kinds", "note,activity", "steps of the sequential runbooks, comma-separated: note, activity (the bench's no-op action, not local)")
		fleet   = flag.String("fleet", "", "fleet sizes: that many concurrent 5-step runs, then one parent fanning out to as many, comma-separated (empty skips them)")
	)
	flag.IntVar(&o.parallel, "parallel", 50, "width of the parallel runbook (0 skips it)")
	flag.IntVar(&o.repeat, "repeat", 1, "runs of every workload")
	flag.DurationVar(&o.timeout, "timeout", 10*time.Minute, "limit for one run")
	flag.IntVar(&o.readiness, "readiness", 20, "readiness evaluations of site-failover on the lab (0 skips them)")
	flag.IntVar(&o.sites.cuts, "sites-cuts", 0, "power cuts of a site in a network namespace, timed to the proposed run (root; 0 skips them)")
	flag.IntVar(&o.sites.partitions, "sites-partitions", 0, "partitions of one site watcher at a time, counting false proposals (root; 0 skips them)")
	flag.DurationVar(&o.sites.interval, "sites-interval", 200*time.Millisecond, "the site watchers' watch.interval")
	flag.DurationVar(&o.sites.lostAfter, "sites-lost-after", time.Second, "the site watch's lost_after")
	flag.IntVar(&o.fleet.parallel, "fleet-parallel", 100, "max_parallel of the fleet's parent runbook")
	flag.IntVar(&o.fleet.starters, "fleet-starters", 16, "runs of the fleet started at a time (through internal/operator)")
	fleetDBs := flag.String("fleet-db", "memory", "servers of the fleet tables, comma-separated: memory, sqlite (the dev server in memory or on a file in a temporary directory, as drctl dev), cluster (internal/tcluster: PostgreSQL, four service processes, mutual TLS)")
	flag.Parse()
	if flag.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q; every setting is a flag (see -h)", flag.Args())
	}
	if o.sites.cuts < 0 || o.sites.partitions < 0 {
		return o, errors.New("-sites-cuts and -sites-partitions count; use 0 to skip them")
	}
	if o.sites.cuts > 0 || o.sites.partitions > 0 {
		// The sites tables on their own, unless the others are named too.
		set := map[string]bool{}
		flag.Visit(func(f *flag.Flag) { set[f.Name] = true })
		if !set["sizes"] {
			*sizes = ""
		}
		if !set["parallel"] {
			o.parallel = 0
		}
		if !set["readiness"] {
			o.readiness = 0
		}
		if err := o.sites.check(); err != nil {
			return o, err
		}
	}
	if *fleet != "" {
		// The fleet tables with the per-step rows on the tuned server,
		// unless the others are named too.
		set := map[string]bool{}
		flag.Visit(func(f *flag.Flag) { set[f.Name] = true })
		if !set["sizes"] {
			*sizes = "300"
		}
		if !set["configs"] {
			*configs = "tuned"
		}
		if !set["parallel"] {
			o.parallel = 0
		}
		if !set["readiness"] {
			o.readiness = 0
		}
		var err error
		if o.fleet.sizes, err = positives("-fleet", *fleet, "fleet size"); err != nil {
			return o, err
		}
		if o.fleet.dbs, err = o.fleet.parseDBs(*fleetDBs); err != nil {
			return o, err
		}
		if err := o.fleet.check(); err != nil {
			return o, err
		}
	}
	for _, c := range strings.Split(*configs, ",") {
		c = strings.TrimSpace(c)
		if c == "" {
			continue
		}
		if _, ok := serverConfigs[c]; !ok {
			return o, fmt.Errorf("-configs: unknown server configuration %q; use tuned and/or default", c)
		}
		o.configs = append(o.configs, c)
	}
	if len(o.configs) == 0 {
		return o, errors.New("-configs: name at least one of tuned, default")
	}
	var err error
	if o.sizes, err = positives("-sizes", *sizes, "step count"); err != nil {
		return o, err
	}
	for _, k := range strings.Split(*kinds, ",") {
		k = strings.TrimSpace(k)
		if k == "" {
			continue
		}
		if _, ok := stepKinds[k]; !ok {
			return o, fmt.Errorf("-kinds: unknown step kind %q; use note and/or activity", k)
		}
		o.kinds = append(o.kinds, k)
	}
	if len(o.sizes) > 0 && len(o.kinds) == 0 {
		return o, errors.New("-kinds: name at least one of note, activity (or give -sizes '')")
	}
	if o.parallel < 0 {
		return o, fmt.Errorf("-parallel: %d is negative; use 0 to skip the parallel runbook", o.parallel)
	}
	if o.repeat < 1 {
		return o, fmt.Errorf("-repeat: %d is less than 1", o.repeat)
	}
	if o.readiness < 0 {
		return o, fmt.Errorf("-readiness: %d is negative; use 0 to skip the readiness table", o.readiness)
	}
	if len(o.sizes) == 0 && o.parallel == 0 && o.readiness == 0 && o.sites.cuts == 0 && o.sites.partitions == 0 && len(o.fleet.sizes) == 0 {
		return o, errors.New("nothing to run: -sizes and -fleet are empty, -parallel, -readiness, -sites-cuts and -sites-partitions are 0")
	}
	return o, nil
}

// positives parses a comma-separated list of positive numbers.
func positives(flagName, list, what string) ([]int, error) {
	var out []int
	for _, s := range strings.Split(list, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			return nil, fmt.Errorf("%s: %q is not a positive %s", flagName, s, what)
		}
		out = append(out, n)
	}
	return out, nil
}

func run() error {
	o, err := parseFlags()
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	bin, err := devserver.FindBinary()
	if err != nil {
		return err
	}
	what := "step overhead"
	switch {
	case len(o.fleet.sizes) > 0:
		what = "fleet and step overhead"
	case len(o.sizes) == 0 && o.parallel == 0 && o.readiness == 0:
		what = "site-loss detection"
	}
	fmt.Printf("# drctl %s: %d CPUs (%s), %s/%s, %s, %s (%s)\n",
		what, runtime.NumCPU(), benchkit.CPUModel(), runtime.GOOS, runtime.GOARCH, runtime.Version(), bin, benchkit.FirstLine(ctx, bin, "--version"))
	fmt.Printf("# load average at start %s; absolute times on this kind of machine vary 2-4x from day to day: compare rows of one run, not runs of different days\n", loadAverage())

	if len(o.sizes) > 0 || o.parallel > 0 {
		fmt.Println("# per-step overhead: sequential runbooks of one kind of step, each needing the previous; \"runs as\" is read from the run's history")
		tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "config\tworkload\tstep\truns as\tsteps\tp50 ms/step\tp95 ms/step\tmean ms/step\ttotal\tsteps/s\tfan-out+in\tevents/step\t")
		defer tw.Flush()
		for _, name := range o.configs {
			if err := benchConfig(ctx, tw, name, bin, o); err != nil {
				return fmt.Errorf("config %s: %w", name, err)
			}
		}
		tw.Flush()
	}
	if o.readiness > 0 {
		if err := benchReadiness(ctx, os.Stdout, os.Stderr, bin, o.readiness); err != nil {
			return err
		}
	}
	if o.sites.cuts > 0 || o.sites.partitions > 0 {
		if err := benchSites(ctx, os.Stdout, os.Stderr, bin, o.sites); err != nil {
			return err
		}
	}
	if len(o.fleet.sizes) > 0 {
		return benchFleet(ctx, os.Stdout, bin, o)
	}
	return nil
}

// loadAverage is the 1, 5 and 15 minute load averages, or "unknown".
func loadAverage() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(data))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// benchConfig starts a dev server and a worker, runs every workload on
// them, writes the rows, and stops both whatever happens.
func benchConfig(ctx context.Context, out io.Writer, name, bin string, o options) (err error) {
	so := serverConfigs[name]
	so.Binary = bin
	env, err := startEnv(ctx, so, "drctl-bench-"+name)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, env.close()) }()

	b := &bencher{
		op:      env.operator("bench"),
		config:  name,
		timeout: o.timeout,
	}
	for _, kind := range o.kinds {
		if _, err := b.once(ctx, "warmup-"+kind, sequential(warmupSteps, stepKinds[kind])); err != nil {
			return fmt.Errorf("warm-up run (%s): %w", kind, err)
		}
	}
	for _, n := range o.sizes {
		for _, kind := range o.kinds {
			action := stepKinds[kind]
			res := result{action: action}
			for i := range o.repeat {
				r, err := b.once(ctx, fmt.Sprintf("seq%d-%s-r%d", n, kind, i+1), sequential(n, action))
				if err != nil {
					return fmt.Errorf("sequential %d %s steps, run %d: %w", n, kind, i+1, err)
				}
				lat, err := seqLatencies(r.rep)
				if err != nil {
					return fmt.Errorf("sequential %d %s steps, run %d: %w", n, kind, i+1, err)
				}
				res.lat = append(res.lat, lat...)
				res.total += r.wall
				res.shape = r.shape
			}
			res.total /= time.Duration(o.repeat)
			b.row(out, fmt.Sprintf("sequential %d", n), n, res)
		}
	}
	if o.parallel > 0 {
		res := result{action: "note"}
		for i := range o.repeat {
			r, err := b.once(ctx, fmt.Sprintf("par%d-r%d", o.parallel, i+1), parallel(o.parallel))
			if err != nil {
				return fmt.Errorf("parallel %d wide, run %d: %w", o.parallel, i+1, err)
			}
			fan, err := fanTime(r.rep)
			if err != nil {
				return fmt.Errorf("parallel %d wide, run %d: %w", o.parallel, i+1, err)
			}
			res.fan += fan
			res.total += r.wall
			res.shape = r.shape
		}
		res.total /= time.Duration(o.repeat)
		res.fan /= time.Duration(o.repeat)
		res.isPar = true
		b.row(out, fmt.Sprintf("parallel %d", o.parallel), o.parallel+2, res)
	}
	return nil
}

type bencher struct {
	op      *operator.Operator
	config  string
	timeout time.Duration
	seq     int
}

type runResult struct {
	rep   *workflows.Report
	wall  time.Duration
	shape runShape
}

// result is what one table row shows.
type result struct {
	action string          // the steps' action
	lat    []time.Duration // sequential: per-step latencies, pooled over repeats
	total  time.Duration   // mean wall time of a run
	fan    time.Duration   // parallel: mean root end -> join start
	isPar  bool
	shape  runShape // of the last run
}

// once runs rb to completion under a fresh lock and returns its report,
// wall time and what its history says about its steps.
func (b *bencher) once(ctx context.Context, label string, rb runbooks.Runbook) (runResult, error) {
	b.seq++
	rb.Name = "bench-" + label
	rb.Lock = fmt.Sprintf("bench-%s-%s-%d-%d", b.config, label, time.Now().UnixNano(), b.seq)
	cat := catalog()
	if probs := runbooks.Validate(&rb, cat); len(probs) > 0 {
		return runResult{}, fmt.Errorf("generated runbook is invalid:\n%w", probs)
	}
	// As runbooks.Load does: the steps learn their action's reach and
	// locality from the catalog.
	runbooks.Place(&rb, cat)
	select {
	case <-time.After(settle):
	case <-ctx.Done():
		return runResult{}, ctx.Err()
	}
	ctx, cancel := context.WithTimeout(ctx, b.timeout)
	defer cancel()
	r, err := benchkit.RunToEnd(ctx, b.op, &rb, "bench")
	if err != nil {
		switch {
		case errors.Is(ctx.Err(), context.DeadlineExceeded):
			err = fmt.Errorf("%w (not finished within -timeout %s)", err, b.timeout)
		case ctx.Err() != nil:
			err = fmt.Errorf("%w (interrupted after %s)", err, r.Wall.Round(time.Millisecond))
		}
		return runResult{}, err
	}
	shape, err := readShape(ctx, b.op.Client, r.WorkflowID, r.RunID, rb.Steps[0].Action)
	if err != nil {
		return runResult{}, err
	}
	return runResult{rep: r.Report, wall: r.Wall, shape: shape}, nil
}

func (b *bencher) row(out io.Writer, workload string, steps int, r result) {
	p50, p95, fan := "-", "-", "-"
	if r.isPar {
		fan = benchkit.MS(r.fan)
	} else {
		slices.Sort(r.lat)
		p50, p95 = benchkit.MS(benchkit.Percentile(r.lat, 50)), benchkit.MS(benchkit.Percentile(r.lat, 95))
	}
	mean := r.total / time.Duration(steps)
	rate := float64(steps) / r.total.Seconds()
	fmt.Fprintf(out, "%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\t%.0f\t%s\t%s\t\n",
		b.config, workload, r.action, r.shape.runsAs(), steps, p50, p95, benchkit.MS(mean), r.total.Round(time.Millisecond), rate, fan, per(r.shape.events, steps))
}

// sequential is a runbook of n steps of action (note or the bench's
// no-op), each needing the one before.
func sequential(n int, action string) runbooks.Runbook {
	rb := runbooks.Runbook{APIVersion: runbooks.APIVersion}
	for i := range n {
		s := noteStep(fmt.Sprintf("s%03d", i+1))
		if action != s.Action {
			s.Action, s.With = action, nil
		}
		if i > 0 {
			s.Needs = []string{rb.Steps[i-1].ID}
		}
		rb.Steps = append(rb.Steps, s)
	}
	return rb
}

// parallel is a runbook of a root step, width steps needing it, and a join
// step needing all of those.
func parallel(width int) runbooks.Runbook {
	rb := runbooks.Runbook{APIVersion: runbooks.APIVersion}
	rb.Steps = append(rb.Steps, noteStep("root"))
	join := noteStep("join")
	for i := range width {
		s := noteStep(fmt.Sprintf("p%03d", i+1))
		s.Needs = []string{"root"}
		rb.Steps = append(rb.Steps, s)
		join.Needs = append(join.Needs, s.ID)
	}
	rb.Steps = append(rb.Steps, join)
	return rb
}

func noteStep(id string) runbooks.Step {
	return runbooks.Step{ID: id, Action: "note", With: map[string]any{"message": "bench step " + id}}
}

// seqLatencies returns, for each step of a sequential run, the time from
// the previous step's end (the run's start for the first) to its end.
func seqLatencies(rep *workflows.Report) ([]time.Duration, error) {
	out := make([]time.Duration, 0, len(rep.Steps))
	prev := rep.StartedAt
	for _, s := range rep.Steps {
		if s.EndedAt == nil {
			return nil, fmt.Errorf("run %s: step %s has no end time in the report", rep.WorkflowID, s.ID)
		}
		out = append(out, s.EndedAt.Sub(prev))
		prev = *s.EndedAt
	}
	return out, nil
}

// fanTime is the time from the root step's end to the join step's start.
func fanTime(rep *workflows.Report) (time.Duration, error) {
	root, ok1 := rep.Step("root")
	join, ok2 := rep.Step("join")
	if !ok1 || !ok2 || root.EndedAt == nil || join.StartedAt == nil {
		return 0, fmt.Errorf("run %s: the report lacks the root end or the join start", rep.WorkflowID)
	}
	return join.StartedAt.Sub(*root.EndedAt), nil
}
