#!/bin/bash
# Planned PostgreSQL switchover OLD -> NEW done directly with psql, the
# baseline that `go run ./tests/pgbench` times against drctl. It does what
# drctl's postgres.fence, postgres.wait_caught_up and postgres.promote do,
# the same way, with one psql process per query:
#
#   fence    rewrite OLD's pg_hba.conf (keeping the original beside it) so
#            only the admin role and replication may connect, reload once the
#            new file parses, wait until the reload took effect, terminate
#            every other client backend and wait until none is left;
#   catch-up loop until NEW's pg_last_wal_replay_lsn() >= OLD's
#            pg_current_wal_flush_lsn();
#   promote  pg_promote(wait => false), then poll pg_is_in_recovery();
#   verify   an INSERT on the new primary.
#
# It runs on the database host as root (or as the servers' OS user) and
# writes pg_hba.conf directly. Every wait polls every $POLL seconds. The
# password comes in PGPASSWORD, never on a command line. On stdout it prints
# "phase EPOCHREALTIME" marks for the benchmark's breakdown.
set -euo pipefail
PS4='+ ${EPOCHREALTIME} ' # for bash -x (bash takes no PS4 from the environment as root)

: "${PSQL:?}" "${ADMIN:?}" "${OLD_PORT:?}" "${NEW_PORT:?}" "${POLL:?}"
# Checked without expanding it, so that an xtrace never shows the password.
[ "${PGPASSWORD:+set}" = set ] || { echo "switchover: PGPASSWORD is not set" >&2; exit 1; }

q() { # q PORT SQL: one query as the admin role, unaligned, tuples only
	"$PSQL" -X -q -A -t -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$1" -U "$ADMIN" -d postgres -c "$2"
}
mark() { echo "$1 $EPOCHREALTIME"; }
die() { echo "switchover: $*" >&2; exit 1; }

mark start

# --- fence OLD ---
IFS='|' read -r hba t0 < <(q "$OLD_PORT" "SELECT current_setting('hba_file'), pg_conf_load_time()")
if ! head -n 1 "$hba" | grep -q '^# pgbench fence:'; then
	cp -p "$hba" "$hba.drctl-unfenced"
	{
		echo "# pgbench fence: only $ADMIN and replication may connect; the original is pg_hba.conf.drctl-unfenced"
		# Keep replication rules, narrow every other rule to the admin role.
		awk -v admin="\"$ADMIN\"" '
			/^[[:space:]]*(#|$)/ || NF < 4 || $1 ~ /^include/ { next }
			$2 ~ /(^|,)"?replication"?(,|$)/ { print; next }
			{ $3 = admin; print }' "$hba.drctl-unfenced"
		printf 'local all all reject\nhost all all 0.0.0.0/0 reject\nhost all all ::/0 reject\n'
	} >"$hba.new"
	chown --reference="$hba" "$hba.new"
	chmod --reference="$hba" "$hba.new"
	mv -f "$hba.new" "$hba"
fi
# Reload only a file the server accepts: it would keep the old one otherwise.
reloaded=$(q "$OLD_PORT" "SELECT CASE WHEN (SELECT count(*) FROM pg_hba_file_rules WHERE error IS NOT NULL) = 0 THEN pg_reload_conf() ELSE false END")
[ "$reloaded" = t ] || die "the fenced pg_hba.conf has errors; not reloaded"
until [ "$(q "$OLD_PORT" "SELECT pg_conf_load_time() > '$t0'::timestamptz")" = t ]; do sleep "$POLL"; done
while :; do
	left=$(q "$OLD_PORT" "
WITH victims AS (
  SELECT pid FROM pg_stat_activity
   WHERE backend_type = 'client backend' AND pid <> pg_backend_pid() AND usename IS DISTINCT FROM current_user)
SELECT count(*), count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM victims")
	[ "${left%%|*}" = 0 ] && break
	sleep "$POLL"
done
mark fenced

# --- wait until NEW has replayed everything OLD flushed ---
while :; do
	flushed=$(q "$OLD_PORT" "SELECT pg_current_wal_flush_lsn()")
	[ "$(q "$NEW_PORT" "SELECT pg_last_wal_replay_lsn() >= '$flushed'::pg_lsn")" = t ] && break
	sleep "$POLL"
done
mark caught_up

# --- promote NEW ---
[ "$(q "$NEW_PORT" "SELECT pg_promote(wait => false)")" = t ] || die "pg_promote refused"
until [ "$(q "$NEW_PORT" "SELECT pg_is_in_recovery()")" = f ]; do sleep "$POLL"; done
mark promoted

# --- verify: the new primary accepts writes ---
q "$NEW_PORT" "INSERT INTO pgbench.verify (side) VALUES ('script')"
mark verified
