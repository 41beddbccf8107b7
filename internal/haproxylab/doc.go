// Package haproxylab runs a real HAProxy in front of two small HTTP sites,
// "east" and "west", for the traffic provider's tests and the local demo
// lab. Each site answers every request with its name as the body and in an
// X-Site header, so a client can tell where HAProxy sent it; a request to
// /hold stays open until the site releases it, standing for a long-running
// session to drain.
//
// Invariants:
//   - Everything listens on 127.0.0.1 on ports the OS picked; nothing uses a
//     fixed port. A clash on HAProxy's frontend port (picked by listening on
//     :0 and closing) is retried on a fresh port.
//   - Each lab has its own temporary directory holding the configuration,
//     the runtime API socket (stats socket ... level admin) and haproxy.log.
//   - Every backend (default just "app") has server east1 (the east site)
//     and west1 (the west site). east1 starts ready and west1 starts in
//     maintenance ("disabled" in the configuration): east is active, west
//     the standby, as before a failover. Options.BothReady starts both ready.
//   - HAProxy runs in the foreground (-db), tracked by PID, and dies with
//     the process that started it (parent-death signal). Stop ends it by
//     PID, waits until it is reaped, closes both sites and removes the
//     directory; it is safe to call more than once.
package haproxylab
