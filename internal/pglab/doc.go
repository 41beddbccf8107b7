// Package pglab runs a real PostgreSQL 15 primary and a streaming standby on
// loopback, for the PostgreSQL provider's tests and the local demo lab. It
// creates both clusters (initdb, pg_basebackup), starts, stops, kills and
// rejoins them (pg_rewind), and offers a few admin-connection helpers. It is
// Linux-only (it uses /proc, pidfds and the parent-death signal).
//
// Invariants:
//   - Every server listens on 127.0.0.1 only (or on its own loopback address
//     from Options.Addresses, both nodes then sharing one port), on a port
//     picked by the OS, and keeps that port for its whole life; its unix
//     socket lives in its own directory. Each pair has its own directory tree.
//   - Server-side programs run as the postgres OS user when the caller is
//     root (the server refuses root), otherwise as the caller.
//   - Every process is tracked by PID: Stop and Kill return only once the
//     postmaster and all of its children are gone, so the data directory is
//     safe to hand to pg_rewind, and nothing writes to Options.Log afterwards.
//   - Passwords are random per pair and never appear in SQL text, argv, errors
//     or logs: roles are created from SCRAM verifiers computed here, and tools
//     get passwords through their environment. The DSNs carry passwords and
//     are meant for tests and the lab only.
//   - A Pair never reassigns Primary and Standby: they name the initial roles.
//     After a failover, ask the servers (Node.InRecovery) which is which.
package pglab
