// Package tcluster starts a production-shaped Temporal cluster for drctl's
// tests and benchmarks, as internal/devserver starts the dev server: the
// Temporal server built from its Go module (bin/temporal-server, `make
// cluster`), PostgreSQL 15 persistence (internal/pglab) with the schema
// applied by the server's own SQL tool, four history shards, and the
// frontend, history, matching and worker services as four processes that
// find each other through the membership table. drctl talks to the
// frontend over mutual TLS, as it would to a self-hosted cluster.
//
// Invariants:
//   - Everything listens on 127.0.0.1, on ports picked free at random per
//     cluster below the OS's ephemeral range (never fixed; see listenPort:
//     PostgreSQL stores membership ports as SMALLINT, and no outgoing
//     connection can take a port there while its service is down). A
//     service keeps its ports across Kill and Restart.
//   - Each cluster has its own directory (configuration, CA, certificates,
//     one log file per service) and its own PostgreSQL pair; Stop removes
//     both unless the caller supplied the directory.
//   - Every process is tracked by PID: Kill, Restart and Stop act on that
//     PID only, and a process dies with the process that started it.
//   - The database password reaches the servers through their environment,
//     never a file or an argument.
//   - When Start returns, the namespace exists, drctl's search attributes are
//     registered in it and a workflow can be started: a test may start a run
//     at once.
package tcluster
