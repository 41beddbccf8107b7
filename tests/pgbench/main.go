// Command pgbench times a planned PostgreSQL switchover done by drctl
// against the same operations done directly with psql in a bash script, on
// the same pair of servers, in one run, and prints both and their ratio.
//
// It starts a pglab pair (a real PostgreSQL 15 primary "pg1" and streaming
// standby "pg2" on loopback), a tuned Temporal dev server (bin/temporal) and
// an in-process drctl worker, then runs switchovers:
//
//   - drctl: a runbook with targets a (pg1) and b (pg2) and the steps fence
//     (postgres.fence OLD) -> catch-up (postgres.wait_caught_up OLD -> NEW)
//     -> promote (postgres.promote NEW, which verifies writes itself). The
//     wall time runs from operator Start until Wait returns the report; the
//     report's RTO is shown too.
//   - script: switchover.sh (embedded here, run with bash as a temporary
//     file) does the same with one /usr/lib/postgresql/15/bin/psql process
//     per query: it rewrites OLD's pg_hba.conf directly, reloads, terminates
//     client backends and waits until none is left, waits until NEW replayed
//     everything OLD flushed, runs pg_promote(wait => false) and polls
//     pg_is_in_recovery(), and INSERTs on NEW. The wall time is the whole
//     bash process.
//
// Every round does two switchovers, pg1 -> pg2 and back, one per side; the
// side that goes first alternates, so each side does both directions. After
// every switchover the old primary is rejoined with pglab's Rewind (pg_rewind
// copies the new primary's unfenced pg_hba.conf over the fenced one and
// removes the fence's backup) and both nodes are checked to be unfenced.
// With -load, the app role inserts a row every -load-every on the old
// primary from just before the switchover until the fence cuts it off, the
// same for both sides; every insert it saw committed must be on the new
// primary afterwards, or the run fails. -warmup rounds run first and are not
// reported. The admin DSNs are handed to the in-process worker as secrets
// under the variable names the runbook's targets name; they are never
// printed.
//
// Run it from anywhere in the module, as root or as the PostgreSQL OS user:
//
//	go run ./tests/pgbench
//	go run ./tests/pgbench -rounds 10 -v
//
// The table shows, per side, p50/min/max of the wall time and the ratio of
// the p50 to the script's, with a per-phase p50 breakdown (drctl: each
// step's StartedAt..EndedAt in the report; script: its marks; "rest" is
// what no phase covers: workflow start and end, or bash start and exit).
// "drctl (report RTO)" is the report's RTO; "drctl (in activities)" sums the
// time the three activities ran on the worker (from the run's history), so
// the difference to the wall time is Temporal's share.
//
// Only a header line naming the machine and the table go to stdout; -v adds
// one line per switchover on stderr, and -script-trace FILE keeps the
// script's timestamped bash xtrace. Server logs go to files in the pair's
// temporary directory, which is removed on exit (also after Ctrl-C).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"syscall"
	"time"

	"github.com/drctl/drctl/internal/devserver"
	"github.com/drctl/drctl/internal/pglab"
	"github.com/drctl/drctl/tests/internal/benchkit"
	"github.com/drctl/drctl/worker"
)

const (
	envA = "DRCTL_PGBENCH_A_DSN" // target a: pg1
	envB = "DRCTL_PGBENCH_B_DSN" // target b: pg2
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "pgbench:", err)
		os.Exit(1)
	}
}

type options struct {
	rounds    int
	warmup    int
	load      bool
	loadEvery time.Duration
	poll      time.Duration
	settle    time.Duration
	timeout   time.Duration
	verbose   bool
	trace     string
}

func parseFlags() (options, error) {
	var o options
	flag.IntVar(&o.rounds, "rounds", 5, "measured rounds; each does one switchover per side")
	flag.IntVar(&o.warmup, "warmup", 1, "unreported rounds before the measured ones")
	flag.BoolVar(&o.load, "load", true, "keep a light write load from the app role on the old primary during each switchover")
	flag.DurationVar(&o.loadEvery, "load-every", 5*time.Millisecond, "interval between the load's inserts")
	flag.DurationVar(&o.poll, "poll", 10*time.Millisecond, "the script's poll interval (drctl's provider polls every 10ms)")
	flag.DurationVar(&o.settle, "settle", 500*time.Millisecond, "pause before every switchover, after the pair is restored")
	flag.DurationVar(&o.timeout, "timeout", 2*time.Minute, "limit for one switchover and for one restore")
	flag.BoolVar(&o.verbose, "v", false, "one line per switchover on stderr")
	flag.StringVar(&o.trace, "script-trace", "", "append the script's bash xtrace, each command with its start time, to this file")
	flag.Parse()
	switch {
	case flag.NArg() > 0:
		return o, fmt.Errorf("unexpected arguments %q; every setting is a flag (see -h)", flag.Args())
	case o.rounds < 1:
		return o, fmt.Errorf("-rounds: %d is less than 1", o.rounds)
	case o.warmup < 0:
		return o, fmt.Errorf("-warmup: %d is negative", o.warmup)
	case o.loadEvery <= 0:
		return o, fmt.Errorf("-load-every: %s is not positive", o.loadEvery)
	case o.poll <= 0:
		return o, fmt.Errorf("-poll: %s is not positive", o.poll)
	case o.settle < 0:
		return o, fmt.Errorf("-settle: %s is negative", o.settle)
	}
	return o, nil
}

func run() (err error) {
	o, err := parseFlags()
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// After Ctrl-C, report the interruption rather than whatever it broke.
	defer func() {
		if err != nil && ctx.Err() != nil {
			err = fmt.Errorf("interrupted (%v)", err)
		}
	}()

	if _, err := os.Stat(psqlBin); err != nil {
		return fmt.Errorf("psql: %w (install postgresql-client-15)", err)
	}
	bin, err := devserver.FindBinary()
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "drctl-pgbench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	scriptPath := filepath.Join(tmp, "switchover.sh")
	if err := os.WriteFile(scriptPath, switchoverScript, 0o700); err != nil {
		return err
	}

	pair, err := pglab.NewPair(ctx, pglab.Options{})
	if err != nil {
		return fmt.Errorf("start PostgreSQL pair: %w", err)
	}
	defer func() {
		if cerr := pair.Close(); cerr != nil {
			err = errors.Join(err, cerr)
		}
	}()

	env, err := benchkit.Start(ctx, benchkit.Options{
		Server:    devserver.Options{Binary: bin},
		TaskQueue: "drctl-pgbench",
		Identity:  "pgbench-worker",
		Secrets: worker.Secrets{
			envA: pair.Primary.DSN(pglab.AdminUser, pair.AdminPassword, "postgres"),
			envB: pair.Standby.DSN(pglab.AdminUser, pair.AdminPassword, "postgres"),
		},
	})
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, env.Close()) }()

	b := &bench{
		o:          o,
		pair:       pair,
		op:         env.Operator("pgbench"),
		scriptPath: scriptPath,
		target:     map[*pglab.Node]string{pair.Primary: "a", pair.Standby: "b"},
		primary:    pair.Primary,
		standby:    pair.Standby,
		samples:    map[string][]sample{},
	}
	if err := b.setUp(ctx); err != nil {
		return err
	}
	fmt.Println(header(ctx, bin, o))

	for i := range o.warmup + o.rounds {
		order := []string{sideDrctl, sideScript}
		if i%2 == 1 {
			slices.Reverse(order)
		}
		for _, side := range order {
			s, err := b.switchover(ctx, side)
			if err != nil {
				return fmt.Errorf("round %d, %s: %w", i+1, side, err)
			}
			s.warmup = i < o.warmup
			if b.o.verbose {
				fmt.Fprintf(os.Stderr, "round %d %s\n", i+1, s)
			}
			if !s.warmup {
				b.samples[side] = append(b.samples[side], s)
			}
		}
	}
	b.table(os.Stdout)
	if b.fixed > 0 {
		fmt.Fprintf(os.Stderr, "pgbench: %d time(s) a node's pg_hba.conf was still fenced after the rejoin and was restored by hand\n", b.fixed)
	}
	if b.leftovers > 0 {
		fmt.Fprintf(os.Stderr, "pgbench: %d time(s) a fence's pg_hba.conf%s was left after the rejoin and was removed\n", b.leftovers, hbaBackupSuffix)
	}
	return nil
}

// header is the one line naming the machine and the set-up.
func header(ctx context.Context, bin string, o options) string {
	load := "no write load"
	if o.load {
		load = fmt.Sprintf("write load 1 insert/%s", o.loadEvery)
	}
	return fmt.Sprintf("# planned switchover pg1<->pg2, drctl vs psql script: %d CPUs (%s), %s/%s, %s, %s (tuned), %s, script poll %s, %d warm-up round(s)",
		runtime.NumCPU(), benchkit.CPUModel(), runtime.GOOS, runtime.GOARCH,
		benchkit.FirstLine(ctx, pglab.DefaultBinDir+"/postgres", "--version"), benchkit.FirstLine(ctx, bin, "--version"), load, o.poll, o.warmup)
}
