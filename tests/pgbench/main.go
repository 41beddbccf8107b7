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
// reported. The admin DSNs reach the worker through the environment
// variables the runbook's targets name; they are never printed.
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
	"bufio"
	"bytes"
	"context"
	_ "embed"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5"
	enumspb "go.temporal.io/api/enums/v1"

	"github.com/drctl/drctl/activities"
	"github.com/drctl/drctl/internal/config"
	"github.com/drctl/drctl/internal/devserver"
	"github.com/drctl/drctl/internal/operator"
	"github.com/drctl/drctl/internal/pglab"
	"github.com/drctl/drctl/runbooks"
	"github.com/drctl/drctl/worker"
	"github.com/drctl/drctl/workflows"
)

//go:embed switchover.sh
var switchoverScript []byte

const (
	envA = "DRCTL_PGBENCH_A_DSN" // target a: pg1
	envB = "DRCTL_PGBENCH_B_DSN" // target b: pg2

	// psqlBin is the real psql; Debian's /usr/bin/psql is a Perl wrapper
	// that costs ~20 ms more per process.
	psqlBin = pglab.DefaultBinDir + "/psql"

	hbaBackupSuffix = ".drctl-unfenced" // where both fences keep the original
)

// fenceMarkers start the first line of a pg_hba.conf fenced by drctl or by
// switchover.sh.
var fenceMarkers = []string{"# drctl fence:", "# pgbench fence:"}

const (
	sideDrctl  = "drctl"
	sideScript = "script"
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

	srv, err := devserver.Start(ctx, devserver.Options{Binary: bin})
	if err != nil {
		return err
	}
	defer func() {
		if serr := srv.Stop(); serr != nil && ctx.Err() == nil {
			err = errors.Join(err, fmt.Errorf("stop dev server at %s: %w", srv.Address, serr))
		}
	}()

	for name, n := range map[string]*pglab.Node{envA: pair.Primary, envB: pair.Standby} {
		if err := os.Setenv(name, n.DSN(pglab.AdminUser, pair.AdminPassword, "postgres")); err != nil {
			return err
		}
		defer os.Unsetenv(name)
	}
	cfg := config.Defaults()
	cfg.Temporal.Address = srv.Address
	cfg.Temporal.TaskQueue = "drctl-pgbench"
	cfg.Identity = "pgbench-worker"
	reg, err := worker.Actions(cfg)
	if err != nil {
		return fmt.Errorf("build action registry: %w", err)
	}
	w := worker.New(srv.Client(), cfg, reg)
	if err := w.Start(); err != nil {
		return fmt.Errorf("start worker on task queue %q: %w", cfg.Temporal.TaskQueue, err)
	}
	defer w.Stop()

	b := &bench{
		o:          o,
		pair:       pair,
		op:         operator.Operator{Client: srv.Client(), TaskQueue: cfg.Temporal.TaskQueue, Identity: "pgbench"},
		reg:        reg,
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
		runtime.NumCPU(), cpuModel(), runtime.GOOS, runtime.GOARCH,
		firstLine(ctx, pglab.DefaultBinDir+"/postgres", "--version"), firstLine(ctx, bin, "--version"), load, o.poll, o.warmup)
}

func cpuModel() string {
	data, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "model unknown"
	}
	for line := range strings.Lines(string(data)) {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "model unknown"
}

// firstLine is the first line a program prints, or "NAME version unknown".
func firstLine(ctx context.Context, bin string, args ...string) string {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, args...).Output()
	if err != nil {
		return filepath.Base(bin) + " version unknown"
	}
	line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	return line
}

type bench struct {
	o          options
	pair       *pglab.Pair
	op         operator.Operator
	reg        *activities.Registry
	scriptPath string
	target     map[*pglab.Node]string // runbook target name per node
	primary    *pglab.Node
	standby    *pglab.Node
	seq        int
	samples    map[string][]sample
	fixed      int // pg_hba.conf files restored after a rejoin
	leftovers  int // fence backups removed after a rejoin
}

// sample is one timed switchover.
type sample struct {
	side    string
	from    string
	to      string
	wall    time.Duration
	rto     time.Duration    // drctl: the report's RTO
	phases  [3]time.Duration // fence, catch-up, promote (with verify)
	exec    [3]time.Duration // drctl: the same, inside the activities only
	writes  int              // load inserts committed on the old primary
	restore time.Duration
	warmup  bool
}

func (s sample) rest() time.Duration { return s.wall - s.phases[0] - s.phases[1] - s.phases[2] }

func (s sample) execSum() time.Duration { return s.exec[0] + s.exec[1] + s.exec[2] }

func (s sample) String() string {
	str := fmt.Sprintf("%-6s %s->%s: wall %s ms (fence %s, catch-up %s, promote %s, rest %s)",
		s.side, s.from, s.to, ms(s.wall), ms(s.phases[0]), ms(s.phases[1]), ms(s.phases[2]), ms(s.rest()))
	if s.side == sideDrctl {
		str += fmt.Sprintf(", RTO %s ms, in activities %s ms (%s, %s, %s)", ms(s.rto), ms(s.execSum()), ms(s.exec[0]), ms(s.exec[1]), ms(s.exec[2]))
	}
	str += fmt.Sprintf(", %d load writes kept, rejoin %s ms", s.writes, ms(s.restore))
	if s.warmup {
		str += " [warm-up]"
	}
	return str
}

// setUp creates what the script's verify and the write load write to.
func (b *bench) setUp(ctx context.Context) error {
	if err := b.primary.Exec(ctx, `CREATE SCHEMA pgbench; CREATE TABLE pgbench.verify (id bigserial PRIMARY KEY, side text NOT NULL, at timestamptz NOT NULL DEFAULT now())`); err != nil {
		return fmt.Errorf("set up: %w", err)
	}
	conn, err := pgx.Connect(ctx, b.primary.DSN(pglab.AppUser, b.pair.AppPassword, pglab.AppDB))
	if err != nil {
		return fmt.Errorf("set up load table: %w", err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, `CREATE TABLE load (id bigserial PRIMARY KEY, at timestamptz NOT NULL DEFAULT now())`); err != nil {
		return fmt.Errorf("set up load table: %w", err)
	}
	return nil
}

// switchover moves the primary to the standby with the given side, checks
// that no committed write was lost, and rejoins the old primary as a
// standby.
func (b *bench) switchover(ctx context.Context, side string) (sample, error) {
	old, nw := b.primary, b.standby
	s := sample{side: side, from: old.Name, to: nw.Name}
	if err := checkRoles(ctx, old, nw); err != nil {
		return s, err
	}
	select {
	case <-time.After(b.o.settle):
	case <-ctx.Done():
		return s, ctx.Err()
	}
	var ld *loader
	if b.o.load {
		var err error
		if ld, err = startLoad(ctx, old, b.pair.AppPassword, b.o.loadEvery); err != nil {
			return s, err
		}
		// Let it commit a few rows first, so the fence has a client to end.
		select {
		case <-time.After(20 * b.o.loadEvery):
		case <-ctx.Done():
		}
	}
	var err error
	switch side {
	case sideDrctl:
		err = b.drctl(ctx, old, nw, &s)
	case sideScript:
		err = b.script(ctx, old, nw, &s)
	}
	if ld != nil {
		ids := ld.stop()
		s.writes = len(ids)
		if err == nil && !ld.cutOff {
			err = fmt.Errorf("the app role's session on %s survived the fence", old.Name)
		}
		if err == nil {
			err = checkDurable(ctx, nw, b.pair.AdminPassword, ids)
		}
	}
	if err != nil {
		return s, err
	}
	if hba, err := os.ReadFile(filepath.Join(old.DataDir, "pg_hba.conf")); err != nil {
		return s, err
	} else if !fenced(hba) {
		return s, fmt.Errorf("%s's pg_hba.conf is not fenced after the switchover", old.Name)
	}
	b.primary, b.standby = nw, old

	rctx, cancel := context.WithTimeout(ctx, b.o.timeout)
	defer cancel()
	t0 := time.Now()
	if err := b.pair.Rewind(rctx, old, nw); err != nil {
		return s, fmt.Errorf("rejoin %s as a standby of %s: %w", old.Name, nw.Name, err)
	}
	for _, n := range []*pglab.Node{old, nw} {
		fixed, leftover, err := unfence(rctx, n)
		if err != nil {
			return s, err
		}
		if fixed {
			b.fixed++
		}
		if leftover {
			b.leftovers++
		}
	}
	s.restore = time.Since(t0)
	return s, nil
}

// checkRoles fails unless primary is a primary and standby a standby.
func checkRoles(ctx context.Context, primary, standby *pglab.Node) error {
	for _, c := range []struct {
		n    *pglab.Node
		want bool
	}{{primary, false}, {standby, true}} {
		in, err := c.n.InRecovery(ctx)
		if err != nil {
			return err
		}
		if in != c.want {
			return fmt.Errorf("%s: pg_is_in_recovery() is %t, want %t", c.n.Name, in, c.want)
		}
	}
	return nil
}

// runbook is the drctl side's runbook for a switchover from old to nw.
func (b *bench) runbook(old, nw *pglab.Node) (*runbooks.Runbook, error) {
	b.seq++
	from, to := b.target[old], b.target[nw]
	src := fmt.Sprintf(`apiVersion: drctl/v1
name: pgbench-switchover
description: Planned switchover %[2]s -> %[3]s, timed by tests/pgbench.
lock: pgbench-%[1]d-%[6]d
targets:
  a: {kind: postgres, credentials: {env: %[4]s}}
  b: {kind: postgres, credentials: {env: %[5]s}}
steps:
  - id: fence
    action: postgres.fence
    with: {target: %[2]s}
  - id: catch-up
    needs: [fence]
    action: postgres.wait_caught_up
    with: {primary: %[2]s, standby: %[3]s}
    deadline: 1m
  - id: promote
    needs: [catch-up]
    action: postgres.promote
    with: {target: %[3]s, old_primary: %[2]s}
`, b.seq, from, to, envA, envB, time.Now().UnixNano())
	rb, err := runbooks.Parse("pgbench-switchover.yaml", []byte(src))
	if err != nil {
		return nil, fmt.Errorf("generated runbook: %w", err)
	}
	if probs := runbooks.Validate(rb, b.reg); len(probs) > 0 {
		return nil, fmt.Errorf("generated runbook is invalid:\n%w", probs)
	}
	return rb, nil
}

// drctl runs the switchover as a drctl run and fills in s.
func (b *bench) drctl(ctx context.Context, old, nw *pglab.Node, s *sample) error {
	rb, err := b.runbook(old, nw)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, b.o.timeout)
	defer cancel()
	t0 := time.Now()
	st, err := b.op.Start(ctx, rb, nil, workflows.ModeFailover, "pgbench")
	if err != nil {
		return err
	}
	rep, err := b.op.Wait(ctx, st.WorkflowID)
	s.wall = time.Since(t0)
	if err != nil {
		return err
	}
	if rep.State != workflows.StateSucceeded {
		return fmt.Errorf("run %s ended %s: %s", st.WorkflowID, rep.State, rep.Error)
	}
	if rep.RTO != nil {
		s.rto = rep.RTO.D()
	}
	exec, err := b.activityTimes(ctx, st.WorkflowID, st.RunID)
	if err != nil {
		return err
	}
	for i, id := range []string{"fence", "catch-up", "promote"} {
		sr, ok := rep.Step(id)
		if !ok || sr.StartedAt == nil || sr.EndedAt == nil {
			return fmt.Errorf("run %s: the report lacks step %s's times", st.WorkflowID, id)
		}
		s.phases[i] = sr.EndedAt.Sub(*sr.StartedAt)
		s.exec[i] = exec[id]
	}
	return nil
}

// activityTimes reads from a run's history how long each activity ran on
// the worker (ActivityTaskStarted to ActivityTaskCompleted, last attempt),
// by activity ID, which is the step ID.
func (b *bench) activityTimes(ctx context.Context, workflowID, runID string) (map[string]time.Duration, error) {
	it := b.op.Client.GetWorkflowHistory(ctx, workflowID, runID, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	ids := map[int64]string{}
	started := map[int64]time.Time{}
	out := map[string]time.Duration{}
	for it.HasNext() {
		e, err := it.Next()
		if err != nil {
			return nil, fmt.Errorf("history of %s: %w", workflowID, err)
		}
		switch e.GetEventType() {
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
			ids[e.GetEventId()] = e.GetActivityTaskScheduledEventAttributes().GetActivityId()
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_STARTED:
			started[e.GetActivityTaskStartedEventAttributes().GetScheduledEventId()] = e.GetEventTime().AsTime()
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
			id := e.GetActivityTaskCompletedEventAttributes().GetScheduledEventId()
			out[ids[id]] = e.GetEventTime().AsTime().Sub(started[id])
		}
	}
	return out, nil
}

// script runs switchover.sh and fills in s.
func (b *bench) script(ctx context.Context, old, nw *pglab.Node, s *sample) error {
	ctx, cancel := context.WithTimeout(ctx, b.o.timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", b.scriptPath)
	if b.o.trace != "" {
		f, err := os.OpenFile(b.o.trace, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
		if err != nil {
			return err
		}
		defer f.Close()
		fmt.Fprintf(f, "### %s -> %s\n", old.Name, nw.Name)
		cmd.Args = []string{"bash", "-x", b.scriptPath}
		cmd.ExtraFiles = []*os.File{f} // fd 3
		cmd.Env = append(cmd.Env, "BASH_XTRACEFD=3")
	}
	cmd.Env = append(cmd.Env,
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"LC_ALL=C",
		"PSQL="+psqlBin,
		"ADMIN="+pglab.AdminUser,
		"OLD_PORT="+strconv.Itoa(old.Port),
		"NEW_PORT="+strconv.Itoa(nw.Port),
		"POLL="+strconv.FormatFloat(b.o.poll.Seconds(), 'f', -1, 64),
		"PGPASSWORD="+b.pair.AdminPassword,
		"PGSSLMODE=disable", // as drctl's DSN
		"PGCONNECT_TIMEOUT=5",
		"PGAPPNAME=pgbench-script",
	)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	// Its own process group, so that a cancel ends its psql processes too
	// (and a Ctrl-C reaches it only through ctx).
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 2 * time.Second
	t0 := time.Now()
	err := cmd.Run()
	s.wall = time.Since(t0)
	if err != nil {
		return fmt.Errorf("switchover.sh: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	marks, err := parseMarks(&stdout)
	if err != nil {
		return err
	}
	steps := []string{"start", "fenced", "caught_up", "verified"}
	for i := range 3 {
		a, ok1 := marks[steps[i]]
		z, ok2 := marks[steps[i+1]]
		if !ok1 || !ok2 {
			return fmt.Errorf("switchover.sh printed no %s or %s mark", steps[i], steps[i+1])
		}
		s.phases[i] = z - a
	}
	return nil
}

// parseMarks reads "phase EPOCHREALTIME" lines.
func parseMarks(r io.Reader) (map[string]time.Duration, error) {
	marks := map[string]time.Duration{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		name, at, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		sec, frac, _ := strings.Cut(at, ".")
		frac = (frac + "000000")[:6]
		s, err1 := strconv.ParseInt(sec, 10, 64)
		us, err2 := strconv.ParseInt(frac, 10, 64)
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("switchover.sh: bad mark %q", sc.Text())
		}
		marks[name] = time.Duration(s)*time.Second + time.Duration(us)*time.Microsecond
	}
	return marks, sc.Err()
}

// loader inserts rows as the app role on one connection until stopped or
// cut off, and remembers the IDs of the inserts that committed.
type loader struct {
	cancel context.CancelFunc
	done   chan struct{}
	ids    []int64
	cutOff bool // an insert failed before stop: the fence ended the session
}

func startLoad(ctx context.Context, n *pglab.Node, password string, every time.Duration) (*loader, error) {
	conn, err := pgx.Connect(ctx, n.DSN(pglab.AppUser, password, pglab.AppDB))
	if err != nil {
		return nil, fmt.Errorf("load: connect to %s as %s: %w", n.Name, pglab.AppUser, err)
	}
	ctx, cancel := context.WithCancel(ctx)
	l := &loader{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(l.done)
		defer conn.Close(context.Background())
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			var id int64
			// An error ends the load: the fence terminated the session, and a
			// reconnect would be refused.
			if err := conn.QueryRow(ctx, `INSERT INTO load DEFAULT VALUES RETURNING id`).Scan(&id); err != nil {
				l.cutOff = ctx.Err() == nil
				return
			}
			l.ids = append(l.ids, id)
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	return l, nil
}

// stop ends the load and returns the IDs of the committed inserts.
func (l *loader) stop() []int64 {
	l.cancel()
	<-l.done
	return l.ids
}

// checkDurable fails unless every id is in the load table on n.
func checkDurable(ctx context.Context, n *pglab.Node, adminPassword string, ids []int64) error {
	conn, err := pgx.Connect(ctx, n.DSN(pglab.AdminUser, adminPassword, pglab.AppDB))
	if err != nil {
		return fmt.Errorf("durability check on %s: %w", n.Name, err)
	}
	defer conn.Close(context.Background())
	var found int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM load WHERE id = ANY($1)`, ids).Scan(&found); err != nil {
		return fmt.Errorf("durability check on %s: %w", n.Name, err)
	}
	if found != len(ids) {
		return fmt.Errorf("LOST WRITES: %d of %d inserts committed on the old primary are missing on %s", len(ids)-found, len(ids), n.Name)
	}
	return nil
}

// unfence makes sure n's pg_hba.conf is not fenced and no fence backup is
// left, and reports whether it had to restore the file and whether it
// removed a backup. After a rejoin neither should be needed: pg_rewind has
// copied the new primary's (unfenced) pg_hba.conf over the old primary's and
// removed the backup, which only the old primary had.
func unfence(ctx context.Context, n *pglab.Node) (restored, leftover bool, err error) {
	path := filepath.Join(n.DataDir, "pg_hba.conf")
	backup := path + hbaBackupSuffix
	text, err := os.ReadFile(path)
	if err != nil {
		return false, false, err
	}
	if fenced(text) {
		orig, err := os.ReadFile(backup)
		if err != nil || fenced(orig) {
			return false, false, fmt.Errorf("%s: pg_hba.conf is fenced and %s is missing or fenced itself", n.Name, backup)
		}
		st, err := os.Stat(path)
		if err != nil {
			return false, false, err
		}
		tmp := path + ".pgbench"
		if err := os.WriteFile(tmp, orig, st.Mode().Perm()); err != nil {
			return false, false, err
		}
		if sys, ok := st.Sys().(*syscall.Stat_t); ok {
			if err := os.Chown(tmp, int(sys.Uid), int(sys.Gid)); err != nil {
				return false, false, err
			}
		}
		if err := os.Rename(tmp, path); err != nil {
			return false, false, err
		}
		if n.Running() {
			if err := n.Exec(ctx, `SELECT pg_reload_conf()`); err != nil {
				return false, false, err
			}
		}
		restored = true
	}
	switch err := os.Remove(backup); {
	case err == nil:
		leftover = true
	case !errors.Is(err, os.ErrNotExist):
		return restored, false, err
	}
	return restored, leftover, nil
}

func fenced(hba []byte) bool {
	for _, m := range fenceMarkers {
		if bytes.HasPrefix(hba, []byte(m)) {
			return true
		}
	}
	return false
}

// table writes the results.
func (b *bench) table(out io.Writer) {
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	defer tw.Flush()
	fmt.Fprintln(tw, "side\trounds\tp50 ms\tmin ms\tmax ms\tp50 ratio\tfence p50\tcatch-up p50\tpromote+verify p50\trest p50\t")
	script := b.samples[sideScript]
	base := percentile(collect(script, func(s sample) time.Duration { return s.wall }), 50)
	row := func(name string, ss []sample, val func(sample) time.Duration, phases bool) {
		v := collect(ss, val)
		p50 := percentile(v, 50)
		cols := []string{"-", "-", "-", "-"}
		if phases {
			for i := range 3 {
				cols[i] = ms(percentile(collect(ss, func(s sample) time.Duration { return s.phases[i] }), 50))
			}
			cols[3] = ms(percentile(collect(ss, sample.rest), 50))
		}
		ratio := "-"
		if base > 0 {
			ratio = fmt.Sprintf("%.2fx", float64(p50)/float64(base))
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%s\t\n", name, len(v), ms(p50), ms(v[0]), ms(v[len(v)-1]), ratio, strings.Join(cols, "\t"))
	}
	row("drctl (wall)", b.samples[sideDrctl], func(s sample) time.Duration { return s.wall }, true)
	row("drctl (report RTO)", b.samples[sideDrctl], func(s sample) time.Duration { return s.rto }, false)
	b.execRow(tw, base)
	row("script (wall)", script, func(s sample) time.Duration { return s.wall }, true)
}

// execRow is the time drctl spent inside its activities, without Temporal.
func (b *bench) execRow(tw io.Writer, base time.Duration) {
	ss := b.samples[sideDrctl]
	v := collect(ss, sample.execSum)
	p50 := percentile(v, 50)
	ratio := "-"
	if base > 0 {
		ratio = fmt.Sprintf("%.2fx", float64(p50)/float64(base))
	}
	var cols []string
	for i := range 3 {
		cols = append(cols, ms(percentile(collect(ss, func(s sample) time.Duration { return s.exec[i] }), 50)))
	}
	fmt.Fprintf(tw, "drctl (in activities)\t%d\t%s\t%s\t%s\t%s\t%s\t-\t\n", len(v), ms(p50), ms(v[0]), ms(v[len(v)-1]), ratio, strings.Join(cols, "\t"))
}

// collect returns f of every sample, sorted.
func collect(ss []sample, f func(sample) time.Duration) []time.Duration {
	out := make([]time.Duration, 0, len(ss))
	for _, s := range ss {
		out = append(out, f(s))
	}
	slices.Sort(out)
	return out
}

// percentile is the nearest-rank p-th percentile of sorted d.
func percentile(d []time.Duration, p int) time.Duration {
	if len(d) == 0 {
		return 0
	}
	i := (p*len(d)+99)/100 - 1
	return d[max(i, 0)]
}

func ms(d time.Duration) string {
	return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 1, 64)
}
