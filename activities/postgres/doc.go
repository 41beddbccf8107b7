// Package postgres is drctl's PostgreSQL failover provider: status, fence,
// unfence, wait for a standby to catch up, promote, and rejoin an old
// primary as a standby.
//
// It is the most careful code in drctl, because this is where a failover
// loses data or causes split brain. Invariants:
//
//   - Every action observes before it acts and returns "already done" when
//     the desired state holds, so a retry after a worker crash never acts
//     twice (a second promote of a node that is already primary records the
//     promotion and returns).
//   - A fence is something clients cannot undo: pg_hba.conf is rewritten so
//     only the admin role and replication may connect, the server reloads,
//     every other client backend is terminated, and the action waits until
//     none is left. A read-only default alone is not a fence (a client can
//     SET default_transaction_read_only = off). The file is node-local, so a
//     fence never replicates to the standby.
//   - Promote refuses, non-retryably, while the old primary is a writable,
//     unfenced primary — unless the runbook declares it dead, and even then
//     it refuses if the "dead" node answers as a writable primary. It refuses
//     when the measured lag exceeds max_lag unless data loss is accepted and
//     an approver is named.
//   - Credentials come from the worker's environment or files named by the
//     runbook's targets, never from workflow inputs; no error or log line
//     holds a password.
//
// The admin role must be a superuser (pg_read_file, COPY TO a server file,
// pg_reload_conf, pg_promote, pg_terminate_backend) and distinct from the
// application's roles: the fence lets it in and keeps everyone else out.
package postgres
