//go:build linux

package lab

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/drctl/drctl/internal/pglab"
)

// These read, from outside any run, what a failover did to a site's
// database: the chaos suite (tests/chaos) compares them with what the run
// reports.

// Fenced reports whether site's database is fenced: postgres.fence keeps the
// original pg_hba.conf beside the fenced one until postgres.unfence.
func (l *Lab) Fenced(site string) bool {
	_, err := os.Stat(filepath.Join(l.Node(site).DataDir, "pg_hba.conf.drctl-unfenced"))
	return err == nil
}

// Timeline is the timeline site's database writes WAL on: 1 until its first
// promotion, one more for each.
func (l *Lab) Timeline(ctx context.Context, site string) (int, error) {
	var tl int
	// A standby has no insert position: its last checkpoint's timeline.
	err := l.Node(site).QueryRow(ctx, `SELECT CASE WHEN pg_is_in_recovery() THEN (SELECT timeline_id FROM pg_control_checkpoint())
	  ELSE ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int END`).Scan(&tl)
	if err != nil {
		return 0, fmt.Errorf("lab: timeline of %s: %w", site, err)
	}
	return tl, nil
}

// Promotions counts the rows of drctl.promotions on site's database: one per
// promotion postgres.promote carried out there (0 when it never ran there).
func (l *Lab) Promotions(ctx context.Context, site string) (int, error) {
	conn, err := l.Node(site).Connect(ctx)
	if err != nil {
		return 0, fmt.Errorf("lab: promotions on %s: %w", site, err)
	}
	defer conn.Close(context.Background())
	var exists bool
	if err := conn.QueryRow(ctx, `SELECT to_regclass('drctl.promotions') IS NOT NULL`).Scan(&exists); err != nil {
		return 0, fmt.Errorf("lab: promotions on %s: %w", site, err)
	}
	if !exists {
		return 0, nil
	}
	var n int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM drctl.promotions`).Scan(&n); err != nil {
		return 0, fmt.Errorf("lab: promotions on %s: %w", site, err)
	}
	return n, nil
}

// AppWritable reports whether the app's role can connect to site's database
// and finds it a writable primary. A standby or a fenced primary is not; an
// error means the answer is unknown.
func (l *Lab) AppWritable(ctx context.Context, site string) (bool, error) {
	conn, err := pgx.Connect(ctx, l.Node(site).DSN(pglab.AppUser, l.Pair.AppPassword, pglab.AppDB))
	if err != nil {
		// A fence refuses the app's role in pg_hba.conf: only the server's
		// refusal counts as an answer.
		var pe *pgconn.PgError
		if errors.As(err, &pe) {
			return false, nil
		}
		return false, fmt.Errorf("lab: connect to %s as %s: %w", site, pglab.AppUser, err)
	}
	defer conn.Close(context.Background())
	var standby bool
	if err := conn.QueryRow(ctx, `SELECT pg_is_in_recovery()`).Scan(&standby); err != nil {
		return false, fmt.Errorf("lab: %s: %w", site, err)
	}
	return !standby, nil
}
