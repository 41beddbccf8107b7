// Package traffic is drctl's HAProxy provider: it moves traffic between
// sites by changing server states over HAProxy's runtime API (the stats
// socket, which must be declared with `level admin`), waits for sessions to
// drain, and reports server states.
//
// Invariants:
//
//   - Every action reads the servers' state first and sends no command when
//     the desired state already holds; Apply then verifies by reading it back.
//   - traffic.shift keeps the service available: it makes every `to` server
//     ready (and weighted) in every backend and waits until HAProxy reports
//     it operationally up before it takes any `from` server out. When a `to`
//     server does not come up, the `from` servers are left serving.
//   - An unknown backend or server is a permanent error naming it and the
//     ones that exist; it is found before any command is sent. A socket that
//     is missing or refuses connections is retryable (HAProxy may be
//     restarting); a command answer other than the expected one is an error
//     naming the command.
//
// States come from `show servers state` (format version 1), whose two state
// columns mean different things: srv_admin_state is the bit field of what an
// operator or the configuration asked for (forced maintenance 0x01,
// inherited maintenance 0x02, configured "disabled" 0x04, forced drain 0x08,
// inherited drain 0x10, maintenance for a failed address resolution 0x20),
// and srv_op_state is what HAProxy does with the server (0 stopped, 1
// starting, 2 running, 3 stopping), which health checks change on their own.
// A server is "ready" when no maintenance or drain bit is set (0x04 alone is
// only a record that the configuration said "disabled"), and "up" when its
// operational state is starting or running and, if it is health checked, a
// check has passed since its last change (srv_check_state, srv_check_result):
// HAProxy reports a server leaving maintenance as running before its first
// check has run. Weights are srv_uweight, the
// weight the runtime API sets. Session counts are scur (and qcur, the queue)
// from `show stat`.
package traffic
