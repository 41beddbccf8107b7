package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/drctl/drctl/internal/operator"
	"github.com/drctl/drctl/internal/pglab"
	"github.com/drctl/drctl/tests/internal/benchkit"
)

const (
	sideDrctl  = "drctl"
	sideScript = "script"
)

type bench struct {
	o          options
	pair       *pglab.Pair
	op         *operator.Operator
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
		s.side, s.from, s.to, benchkit.MS(s.wall), benchkit.MS(s.phases[0]), benchkit.MS(s.phases[1]), benchkit.MS(s.phases[2]), benchkit.MS(s.rest()))
	if s.side == sideDrctl {
		str += fmt.Sprintf(", RTO %s ms, in activities %s ms (%s, %s, %s)", benchkit.MS(s.rto), benchkit.MS(s.execSum()), benchkit.MS(s.exec[0]), benchkit.MS(s.exec[1]), benchkit.MS(s.exec[2]))
	}
	str += fmt.Sprintf(", %d load writes kept, rejoin %s ms", s.writes, benchkit.MS(s.restore))
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
