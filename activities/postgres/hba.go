package postgres

import (
	"context"
	"fmt"
	"strings"
	"time"
	"unicode"
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
// delimiter, quote and NULL marker writes each line exactly as given (an
// empty line is not quoted because it is not the NULL marker); the file is
// read back and compared, so a write that did not land byte for byte is an
// error, never a silently altered file.
func (n *node) writeFile(ctx context.Context, path, text string) error {
	if strings.ContainsAny(text, "\x01\x02\x03\r") {
		return fmt.Errorf("write %s on %s: the text holds control characters", path, n)
	}
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	for _, l := range lines {
		if l == `\.` {
			return fmt.Errorf("write %s on %s: a line is the COPY end marker (backslash, dot)", path, n)
		}
	}
	var stmt string
	err := n.conn.QueryRow(ctx, `SELECT format(
		'COPY (SELECT line FROM unnest(%L::text[]) WITH ORDINALITY AS t(line, n) ORDER BY n) TO %L WITH (FORMAT csv, DELIMITER E''\x01'', QUOTE E''\x02'', NULL E''\x03'')',
		$1::text[], $2::text)`, lines, path).Scan(&stmt)
	if err != nil {
		return n.queryErr("prepare write of "+path, err)
	}
	if _, err := n.conn.Exec(ctx, stmt); err != nil {
		return n.queryErr("write "+path, err)
	}
	want := strings.Join(lines, "\n") + "\n"
	got, ok, err := n.readFileIfExists(ctx, path)
	if err != nil {
		return err
	}
	if !ok || got != want {
		return fmt.Errorf("write %s on %s: the file read back differs from what was written", path, n)
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

// fencedHBA rewrites pg_hba.conf so that only admin may connect, with the
// rules that already applied to it, and replication keeps working; every
// other connection is rejected. Rules are read in order (first match wins):
//
//   - a replication rule (database field exactly the keyword replication) is
//     kept as it is: replication connections cannot write data;
//   - a rule whose database list mixes replication with databases is split:
//     its replication part is kept, the rest treated as below;
//   - a rule that applies to admin (user "all" or admin itself) is kept,
//     narrowed to admin — so admin keeps exactly the methods it had, and no
//     other user's method (trust for an application subnet, say) is ever
//     granted to it;
//   - every other rule (other users, +groups, @files) is dropped;
//
// then reject rules close the file.
func fencedHBA(original, admin, why string) string {
	var b strings.Builder
	// The header is one comment line: nothing in it (a step ID from a
	// workflow input, a user name from a DSN) may end it and start a rule.
	fmt.Fprintf(&b, "%s only %s and replication may connect (%s). postgres.unfence restores the original from pg_hba.conf%s.\n", fenceMarker, oneLine(admin), oneLine(why), backupSuffix)
	for _, line := range strings.Split(original, "\n") {
		f := hbaFields(line)
		if len(f) < 4 || strings.HasPrefix(f[0], "include") {
			continue
		}
		dbs := hbaItems(f[1])
		var rest []string
		repl := false
		for _, d := range dbs {
			if d.text == "replication" && !d.quoted {
				repl = true
			} else {
				rest = append(rest, d.raw)
			}
		}
		if repl {
			r := append([]string(nil), f...)
			r[1] = "replication"
			b.WriteString(strings.Join(r, " ") + "\n")
		}
		if len(rest) == 0 || !appliesTo(f[2], admin) {
			continue
		}
		r := append([]string(nil), f...)
		r[1] = strings.Join(rest, ",")
		r[2] = quoteHBA(admin)
		b.WriteString(strings.Join(r, " ") + "\n")
	}
	b.WriteString("local all all reject\nhost all all 0.0.0.0/0 reject\nhost all all ::/0 reject\n")
	return b.String()
}

// appliesTo reports whether a user field names the role: "all" or the role
// itself. Groups (+name) and files (@name) are not resolved, so a rule that
// reaches admin only through them is dropped — the fence verifies afterwards
// that admin can still connect, and undoes itself if not.
func appliesTo(userField, role string) bool {
	for _, u := range hbaItems(userField) {
		if (u.text == "all" && !u.quoted) || u.text == role {
			return true
		}
	}
	return false
}

// hbaFields splits a pg_hba.conf line into fields, keeping quoted fields
// whole and dropping a trailing comment.
func hbaFields(line string) []string {
	var (
		fields []string
		cur    strings.Builder
		quoted bool
	)
	flush := func() {
		if cur.Len() > 0 {
			fields = append(fields, cur.String())
			cur.Reset()
		}
	}
	for _, r := range line {
		switch {
		case r == '"':
			quoted = !quoted
			cur.WriteRune(r)
		case r == '#' && !quoted:
			flush()
			return fields
		case (r == ' ' || r == '\t') && !quoted:
			flush()
		default:
			cur.WriteRune(r)
		}
	}
	flush()
	return fields
}

type hbaItem struct {
	raw, text string
	quoted    bool
}

// hbaItems splits a comma-separated field into its items, unquoting them.
func hbaItems(field string) []hbaItem {
	var (
		items  []hbaItem
		cur    strings.Builder
		quoted bool
	)
	flush := func() {
		raw := cur.String()
		cur.Reset()
		if raw == "" {
			return
		}
		it := hbaItem{raw: raw, text: raw}
		if strings.HasPrefix(raw, `"`) && strings.HasSuffix(raw, `"`) && len(raw) >= 2 {
			it.quoted, it.text = true, strings.ReplaceAll(raw[1:len(raw)-1], `""`, `"`)
		}
		items = append(items, it)
	}
	for _, r := range field {
		switch {
		case r == '"':
			quoted = !quoted
			cur.WriteRune(r)
		case r == ',' && !quoted:
			flush()
		default:
			cur.WriteRune(r)
		}
	}
	flush()
	return items
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

// oneLine replaces every control character (a newline above all) with '?',
// so s stays inside the comment line it is written into.
func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return '?'
		}
		return r
	}, s)
}
