package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/client"

	"github.com/drctl/drctl/internal/devserver"
	"github.com/drctl/drctl/internal/lab"
	"github.com/drctl/drctl/runbooks"
	"github.com/drctl/drctl/tests/internal/benchkit"
	"github.com/drctl/drctl/worker"
	"github.com/drctl/drctl/workflows"
)

// The readiness table: what one readiness evaluation of site-failover.yaml
// on the lab costs. It starts the lab (PostgreSQL pair, BIND, HAProxy, both
// apps), a tuned dev server and an in-process worker holding the lab's
// secrets, then starts the readiness workflow (workflows.ReadinessWorkflow,
// with the input a readiness schedule gives it) -readiness times in a row,
// each after the previous one's evaluation reached the runbook's record.
//
//   - wall: from starting the workflow to having its result (the client's
//     view); "in workflow": its WorkflowExecutionStarted..Completed events.
//   - worker CPU: user+system time of this process (getrusage RUSAGE_SELF)
//     from the start until the record's memo holds the evaluation, so the
//     record's workflow task is included. The worker runs in this process;
//     so do the bench's own three calls per evaluation (start, result,
//     record history long-poll), which makes it an upper bound. The dev
//     server and the lab's servers are other processes, not counted.
//   - Temporal actions: the evaluation's workflow start, its activities
//     (every attempt) and the signals it sent into the record (counted in
//     the record's history). A scheduled evaluation adds the schedule's own
//     action.
const readinessWarmup = 3

type readinessSample struct {
	wall, inWorkflow, cpu time.Duration
	activities, signals   int
	events                int
}

// benchReadiness prints the readiness table, or says on stderr why it is
// skipped (the lab's servers are not installed).
func benchReadiness(ctx context.Context, out, stderr io.Writer, bin string, n int) (err error) {
	if missing := lab.Missing(); len(missing) > 0 {
		fmt.Fprintf(stderr, "bench: readiness table skipped: the lab needs %s (%s)\n", strings.Join(missing, ", "), lab.InstallCommand(missing))
		return nil
	}
	root, err := lab.ModuleRoot()
	if err != nil {
		return err
	}
	cat := worker.Catalog()
	rb, err := runbooks.Load(filepath.Join(root, "runbooks", "site-failover.yaml"), cat)
	if err != nil {
		return err
	}
	l, err := lab.Start(ctx, lab.Options{})
	if err != nil {
		return fmt.Errorf("readiness: %w", err)
	}
	defer func() { err = errors.Join(err, l.Close()) }()
	env, err := benchkit.Start(ctx, benchkit.Options{
		Server: devserver.Options{Binary: bin}, TaskQueue: "drctl-bench-readiness", Identity: "bench-worker",
		Secrets: worker.Secrets(l.Secrets()),
	})
	if err != nil {
		return fmt.Errorf("readiness: %w", err)
	}
	defer func() { err = errors.Join(err, env.Close()) }()

	params := map[string]string{}
	for k, v := range l.Params() {
		if _, ok := rb.Param(k); ok {
			params[k] = v
		}
	}
	b := &readinessBencher{
		c: env.Server.Client(), taskQueue: env.Config.Temporal.TaskQueue,
		in: workflows.ReadinessInput{Runbook: *rb, Params: params, StartedBy: "bench", Acting: runbooks.ActingSteps(rb, cat), Every: runbooks.Duration(5 * time.Minute)},
	}
	var samples []readinessSample
	for i := range readinessWarmup + n {
		s, ev, err := b.once(ctx, i+1)
		if err != nil {
			return fmt.Errorf("readiness evaluation %d: %w", i+1, err)
		}
		if !ev.Ready {
			return fmt.Errorf("readiness evaluation %d: the lab is not ready: %+v", i+1, ev.Failing())
		}
		if i >= readinessWarmup {
			samples = append(samples, s)
		}
	}
	printReadiness(out, rb.Name, samples)
	return nil
}

type readinessBencher struct {
	c         client.Client
	taskQueue string
	in        workflows.ReadinessInput
	// record iterates the record's history with long polls, from its
	// start; takes counts the evaluations it took so far, signals the
	// signals it received.
	record         client.HistoryEventIterator
	takes, signals int
}

// once runs the i-th evaluation and waits until the record took it.
func (b *readinessBencher) once(ctx context.Context, i int) (readinessSample, workflows.Evaluation, error) {
	var s readinessSample
	var ev workflows.Evaluation
	id := fmt.Sprintf("%s%s-bench-%d-%d", workflows.WorkflowIDPrefix, workflows.ReadinessScheduleID(b.in.Runbook.Name), time.Now().UnixNano(), i)
	cpu0 := cpuTime()
	t0 := time.Now()
	run, err := b.c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID: id, TaskQueue: b.taskQueue, WorkflowTaskTimeout: 3 * time.Second,
	}, workflows.ReadinessWorkflow, b.in)
	if err != nil {
		return s, ev, err
	}
	if err := run.Get(ctx, &ev); err != nil {
		return s, ev, err
	}
	s.wall = time.Since(t0)
	signals0 := b.signals
	if err := b.waitTaken(ctx, i); err != nil {
		return s, ev, err
	}
	s.cpu = cpuTime() - cpu0
	s.signals = b.signals - signals0
	err = b.count(ctx, run, &s)
	return s, ev, err
}

// waitTaken follows the record's history until it upserted its memo for
// the i-th time (once per evaluation taken).
func (b *readinessBencher) waitTaken(ctx context.Context, i int) error {
	if b.record == nil {
		b.record = b.c.GetWorkflowHistory(ctx, workflows.ReadinessRecordID(b.in.Runbook.Name), "", true, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	}
	for b.takes < i {
		if !b.record.HasNext() {
			return fmt.Errorf("the readiness record ended after %d evaluations", b.takes)
		}
		e, err := b.record.Next()
		if err != nil {
			return fmt.Errorf("readiness record history: %w", err)
		}
		switch e.GetEventType() {
		case enumspb.EVENT_TYPE_WORKFLOW_PROPERTIES_MODIFIED:
			b.takes++
		case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
			b.signals++
		case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW:
			return errors.New("the readiness record continued as new; run fewer evaluations")
		}
	}
	return nil
}

// count reads the evaluation's history: its time in the workflow and the
// activity attempts it started.
func (b *readinessBencher) count(ctx context.Context, run client.WorkflowRun, s *readinessSample) error {
	it := b.c.GetWorkflowHistory(ctx, run.GetID(), run.GetRunID(), false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	var started, ended time.Time
	for it.HasNext() {
		e, err := it.Next()
		if err != nil {
			return err
		}
		s.events++
		switch e.GetEventType() {
		case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
			started = eventTime(e)
		case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED:
			ended = eventTime(e)
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_STARTED:
			s.activities += int(e.GetActivityTaskStartedEventAttributes().GetAttempt())
		}
	}
	if started.IsZero() || ended.IsZero() {
		return fmt.Errorf("evaluation %s: no start or completion in its history", run.GetID())
	}
	s.inWorkflow = ended.Sub(started)
	return nil
}

func eventTime(e *historypb.HistoryEvent) time.Time { return e.GetEventTime().AsTime() }

// cpuTime is this process's user+system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func printReadiness(out io.Writer, runbook string, ss []readinessSample) {
	if len(ss) == 0 {
		return
	}
	field := func(f func(readinessSample) time.Duration) []time.Duration { return benchkit.Sorted(ss, f) }
	wall, inWF, cpu := field(func(s readinessSample) time.Duration { return s.wall }),
		field(func(s readinessSample) time.Duration { return s.inWorkflow }), field(func(s readinessSample) time.Duration { return s.cpu })
	var cpuSum time.Duration
	for _, d := range cpu {
		cpuSum += d
	}
	mean := func(f func(readinessSample) int) float64 {
		n := 0
		for _, s := range ss {
			n += f(s)
		}
		return float64(n) / float64(len(ss))
	}
	acts, sigs := mean(func(s readinessSample) int { return s.activities }), mean(func(s readinessSample) int { return s.signals })
	fmt.Fprintf(out, "\n# readiness evaluation of %s on the lab (tuned dev server, in-process worker; worker CPU = getrusage(RUSAGE_SELF) of this process, incl. the record's workflow task)\n", runbook)
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "evaluations\twall p50 ms\twall p95 ms\tin workflow p50 ms\tworker CPU p50 ms\tworker CPU p95 ms\tworker CPU mean ms\tactivities\tsignals\tactions\thistory events\t")
	fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%.1f\t%.1f\t%.1f\t%d\t\n", len(ss),
		benchkit.MS(benchkit.Percentile(wall, 50)), benchkit.MS(benchkit.Percentile(wall, 95)), benchkit.MS(benchkit.Percentile(inWF, 50)),
		benchkit.MS(benchkit.Percentile(cpu, 50)), benchkit.MS(benchkit.Percentile(cpu, 95)), benchkit.MS(cpuSum/time.Duration(len(ss))),
		acts, sigs, 1+acts+sigs, slices.MaxFunc(ss, func(a, b readinessSample) int { return a.events - b.events }).events)
	tw.Flush()
	fmt.Fprintln(out, "# actions = 1 workflow start + activity attempts + signals to the record (a schedule's firing adds its own); history events: the largest evaluation's")
}
