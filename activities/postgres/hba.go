package postgres

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// fenceMarker starts the first line of a fenced pg_hba.conf.
const fenceMarker = "# drctl fence:"

// backupSuffix names the copy of pg_hba.conf a fence keeps for unfence.
const backupSuffix = ".drctl-unfenced"

type hbaFile struct {
	path string
	text string
}

func isFenced(hba string) bool { return strings.HasPrefix(hba, fenceMarker) }

func (n *node) readHBA(ctx context.Context) (hbaFile, error) {
	var f hbaFile
	err := n.conn.QueryRow(ctx, `SELECT current_setting('hba_file'), pg_read_file(current_setting('hba_file'))`).Scan(&f.path, &f.text)
	if err != nil {
		return f, n.queryErr("read pg_hba.conf", err)
	}
	return f, nil
}

// readFileIfExists reads a server-side file; ok is false when it is missing.
func (n *node) readFileIfExists(ctx context.Context, path string) (text string, ok bool, err error) {
	var t *string
	if err := n.conn.QueryRow(ctx, `SELECT pg_read_file($1, 0, 16777216, true)`, path).Scan(&t); err != nil {
		return "", false, n.queryErr("read "+path, err)
	}
	if t == nil {
		return "", false, nil
	}
	return *t, true, nil
}

// writeFile replaces a server-side file with text, using COPY so it works
// on a primary and on a hot standby alike. CSV with control characters as
// delimiter and quote writes each line exactly as given.
func (n *node) writeFile(ctx context.Context, path, text string) error {
	if strings.ContainsAny(text, "\x01\x02\r") {
		return fmt.Errorf("write %s on %s: the text holds control characters", path, n)
	}
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	var stmt string
	err := n.conn.QueryRow(ctx, `SELECT format(
		'COPY (SELECT line FROM unnest(%L::text[]) WITH ORDINALITY AS t(line, n) ORDER BY n) TO %L WITH (FORMAT csv, DELIMITER E''\x01'', QUOTE E''\x02'')',
		$1::text[], $2::text)`, lines, path).Scan(&stmt)
	if err != nil {
		return n.queryErr("prepare write of "+path, err)
	}
	if _, err := n.conn.Exec(ctx, stmt); err != nil {
		return n.queryErr("write "+path, err)
	}
	return nil
}

// reload makes the server re-read its configuration and waits until it has:
// the postmaster reloads before it signals backends, so once this session's
// pg_conf_load_time moves, new connections see the new pg_hba.conf. A file
// with errors is refused first, since the server would keep the old one.
func (n *node) reload(ctx context.Context, poll time.Duration) error {
	var problems []string
	rows, err := n.conn.Query(ctx, `SELECT line_number, error FROM pg_hba_file_rules WHERE error IS NOT NULL ORDER BY line_number`)
	if err != nil {
		return n.queryErr("check pg_hba.conf", err)
	}
	for rows.Next() {
		var line int
		var msg string
		if err := rows.Scan(&line, &msg); err != nil {
			return n.queryErr("check pg_hba.conf", err)
		}
		problems = append(problems, fmt.Sprintf("line %d: %s", line, msg))
	}
	if err := rows.Err(); err != nil {
		return n.queryErr("check pg_hba.conf", err)
	}
	if len(problems) > 0 {
		return fmt.Errorf("pg_hba.conf on %s has errors, the server would ignore it: %s", n, strings.Join(problems, "; "))
	}
	var before time.Time
	if err := n.conn.QueryRow(ctx, `SELECT pg_conf_load_time()`).Scan(&before); err != nil {
		return n.queryErr("read config load time", err)
	}
	if _, err := n.conn.Exec(ctx, `SELECT pg_reload_conf()`); err != nil {
		return n.queryErr("reload configuration", err)
	}
	for {
		var now time.Time
		if err := n.conn.QueryRow(ctx, `SELECT pg_conf_load_time()`).Scan(&now); err != nil {
			return n.queryErr("read config load time", err)
		}
		if now.After(before) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("reload on %s: %w", n, ctx.Err())
		case <-time.After(poll):
		}
	}
}

// fencedHBA rewrites pg_hba.conf so that only admin may connect (with the
// methods the file gave it) and replication keeps working; every other
// connection is rejected. Each non-replication rule is narrowed to admin,
// then reject rules close the file.
func fencedHBA(original, admin, why string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s only %s and replication may connect (%s). postgres.unfence restores the original from pg_hba.conf%s.\n", fenceMarker, admin, why, backupSuffix)
	for _, line := range strings.Split(original, "\n") {
		trimmed := strings.TrimSpace(line)
		if trimmed == "" || strings.HasPrefix(trimmed, "#") {
			continue
		}
		f := strings.Fields(trimmed)
		if len(f) < 4 || strings.HasPrefix(f[0], "include") {
			continue
		}
		if hasToken(f[1], "replication") {
			b.WriteString(strings.Join(f, " ") + "\n")
			continue
		}
		f[2] = quoteHBA(admin)
		b.WriteString(strings.Join(f, " ") + "\n")
	}
	b.WriteString("local all all reject\nhost all all 0.0.0.0/0 reject\nhost all all ::/0 reject\n")
	return b.String()
}

func hasToken(field, tok string) bool {
	for _, t := range strings.Split(field, ",") {
		if strings.Trim(t, `"`) == tok {
			return true
		}
	}
	return false
}

func quoteHBA(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// terminateClients ends every client session except the admin role's and
// waits until none is left.
func (n *node) terminateClients(ctx context.Context, poll time.Duration) (int, error) {
	terminated := 0
	for {
		var left, killed int
		err := n.conn.QueryRow(ctx, `
WITH victims AS (
  SELECT pid FROM pg_stat_activity
   WHERE backend_type = 'client backend' AND pid <> pg_backend_pid() AND usename IS DISTINCT FROM current_user)
SELECT count(*), count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM victims`).Scan(&left, &killed)
		if err != nil {
			return terminated, n.queryErr("terminate client sessions", err)
		}
		terminated += killed
		if left == 0 {
			return terminated, nil
		}
		select {
		case <-ctx.Done():
			return terminated, fmt.Errorf("%d client session(s) still on %s: %w", left, n, ctx.Err())
		case <-time.After(poll):
		}
	}
}
