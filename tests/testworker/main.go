// Command testworker is a drctl worker for the crash tests, not shipped. It
// adds one action, marker.write, which appends a key to a file exactly once
// (observe, act, verify) and then holds the step open while heartbeating;
// and with DRCTL_TEST_HOLD_AFTER_PROMOTE=DIR its postgres.promote stops
// right after pg_promote and writes DIR/promoted. The tests kill the
// process at those points.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"go.temporal.io/sdk/activity"

	"github.com/drctl/drctl/activities"
	"github.com/drctl/drctl/internal/config"
	"github.com/drctl/drctl/runbooks"
	"github.com/drctl/drctl/worker"
)

// Marker is the marker.write action.
type Marker struct{}

var _ activities.Action = Marker{}

type markerInput struct {
	File    string `json:"file"`
	Release string `json:"release"`
}

// Spec implements activities.Action.
func (Marker) Spec() runbooks.ActionSpec {
	return runbooks.ActionSpec{
		Name: "marker.write",
		Doc:  "Append the step's idempotency key to file once, then hold the step open until the file `release` exists.",
		Inputs: []runbooks.InputSpec{
			{Name: "file", Type: runbooks.TypeString, Required: true},
			{Name: "release", Type: runbooks.TypeString, Required: true},
		},
		Outputs: []string{"pid"},
	}
}

func present(file, key string) (bool, error) {
	f, err := os.Open(file)
	if os.IsNotExist(err) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), key+" ") {
			return true, nil
		}
	}
	return false, sc.Err()
}

// Observe implements activities.Action.
func (m Marker) Observe(_ context.Context, req activities.Request) (activities.Observation, error) {
	var in markerInput
	if err := activities.Decode(m.Spec(), req.With, &in); err != nil {
		return activities.Observation{}, err
	}
	ok, err := present(in.File, req.IdempotencyKey())
	if err != nil {
		return activities.Observation{}, err
	}
	if ok {
		return activities.Observation{Current: "marker written"}, nil
	}
	return activities.Observation{Current: "no marker", Changes: []string{"write marker"}}, nil
}

// Apply implements activities.Action.
func (m Marker) Apply(ctx context.Context, req activities.Request) (activities.Result, error) {
	var in markerInput
	if err := activities.Decode(m.Spec(), req.With, &in); err != nil {
		return activities.Result{}, err
	}
	key := req.IdempotencyKey()
	done, err := present(in.File, key)
	if err != nil {
		return activities.Result{}, err
	}
	changed := false
	if !done {
		f, err := os.OpenFile(in.File, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return activities.Result{}, err
		}
		_, err = fmt.Fprintf(f, "%s pid=%d attempt=%d\n", key, os.Getpid(), activity.GetInfo(ctx).Attempt)
		if err == nil {
			err = f.Sync()
		}
		f.Close()
		if err != nil {
			return activities.Result{}, err
		}
		if ok, err := present(in.File, key); err != nil || !ok {
			return activities.Result{}, fmt.Errorf("marker not found after writing it: %v", err)
		}
		changed = true
	}
	for {
		if _, err := os.Stat(in.Release); err == nil {
			break
		}
		activity.RecordHeartbeat(ctx)
		select {
		case <-ctx.Done():
			return activities.Result{}, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return activities.Result{Changed: changed, Summary: fmt.Sprintf("marker present (written now: %t)", changed), Outputs: map[string]any{"pid": os.Getpid()}}, nil
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func run() error {
	address := flag.String("address", "", "Temporal address")
	queue := flag.String("task-queue", "drctl", "task queue")
	identity := flag.String("identity", "testworker", "worker identity")
	sites := flag.String("site", "", "the worker's sites, comma-separated")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg := config.Defaults()
	cfg.Temporal.Address, cfg.Temporal.TaskQueue, cfg.Identity = *address, *queue, *identity
	// TLS as the drctl binary reads it from its environment: the tests
	// against the PostgreSQL-backed cluster (internal/tcluster) set these.
	if os.Getenv("DRCTL_TEMPORAL_TLS_ENABLED") == "true" {
		cfg.Temporal.TLS = config.TLS{
			Enabled:    true,
			CAFile:     os.Getenv("DRCTL_TEMPORAL_TLS_CA_FILE"),
			CertFile:   os.Getenv("DRCTL_TEMPORAL_TLS_CERT_FILE"),
			KeyFile:    os.Getenv("DRCTL_TEMPORAL_TLS_KEY_FILE"),
			ServerName: os.Getenv("DRCTL_TEMPORAL_TLS_SERVER_NAME"),
		}
	}
	if *sites != "" {
		cfg.Worker.Sites = strings.Split(*sites, ",")
	}
	o := worker.Options{
		Actions: []activities.Action{Marker{}},
		// The tests wait for this line: the worker polls from here on.
		Ready: func(worker.Serving) { fmt.Println("ready") },
	}
	if dir := os.Getenv("DRCTL_TEST_HOLD_AFTER_PROMOTE"); dir != "" {
		// Stop dead right after pg_promote, before the promotion is verified
		// and recorded: the test kills this process here.
		o.Configure = func(p *worker.Providers) {
			p.Postgres.AfterPromote = func(ctx context.Context) {
				_ = os.WriteFile(dir+"/promoted", []byte(fmt.Sprint(os.Getpid())), 0o644)
				<-ctx.Done()
			}
		}
	}
	return worker.Serve(ctx, cfg, o)
}
