// Package statuspage serves drctl's status page: one read-only HTML page
// that shows, for every runbook, whether it would work now (readiness),
// its SLOs, its last drills, the runs in progress and the approval gates
// waiting, each with the command that approves it. Every value is read
// from Temporal on each request; the package keeps no state of its own.
//
// Invariants:
//   - Read-only: the handler answers GET and HEAD on "/" only, and its
//     Source can only read. Nothing on the page acts; a gate shows the CLI
//     command that decides it, to be run by someone allowed to.
//   - Nothing runs and nothing is fetched: no script, no external asset,
//     inline CSS only, and a Content-Security-Policy that forbids scripts,
//     frames and any fetch should anything slip through. It refreshes with
//     <meta http-equiv="refresh">.
//   - Every string may come from a runbook, a provider error or another
//     client: it is made visible (control characters and bidirectional
//     overrides as Go escapes) and then escaped by html/template.
//   - A failed read is shown, never hidden: the page still renders what
//     could be read, with an error banner, and answers 503.
//   - Loopback by default: CheckListen refuses another address unless the
//     operator says the page may be public.
package statuspage
