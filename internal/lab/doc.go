// Package lab runs drctl's two-site demo environment on loopback: site east
// (primary) and site west (DR), with a PostgreSQL 15 primary in east and a
// streaming standby in west, a BIND 9 zone holding the service's names,
// HAProxy in front of each site's app server, and a small app per site that
// reads and writes the database it finds through the zone's DNS name. The
// shipped runbooks fail it over for real (`drctl demo`, `drctl lab up`).
//
// Besides the lab itself it holds what the CLI's lab commands do, so that
// the CLI only parses flags and prints: Up starts a lab under a detached
// supervisor (which calls Serve), Down stops it, Status checks it, Demo is
// `drctl demo`; and Requirements, the one list of the system packages the
// lab and drctl's tests need, which Install and InstallForTests (`drctl lab
// deps`, make deps) install.
//
// Invariants:
//   - Everything listens on loopback on ports picked by the OS. Each site has
//     addresses of its own (EastDBAddr, WestAppAddr, ...) and both sites use
//     one port per service, so moving a DNS name moves clients to the other
//     site with the same host:port, as in a real two-site network.
//   - Every process a Lab starts dies with the process that started it (the
//     harnesses set parent-death signals); `drctl lab up` therefore runs a
//     detached supervisor (`drctl lab serve`) that owns them.
//   - Secrets (DSNs, the TSIG key) are only in Secrets(), in files of mode
//     0600 the lab writes, in the environment of a worker process that
//     needs them and in an in-process worker's worker.Secrets (the demo);
//     never in State, params, output or this process's environment.
package lab
