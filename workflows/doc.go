// Package workflows holds the runbook interpreter: a deterministic Temporal
// workflow that runs a runbook's preflight checks and step DAG, waits at
// approval gates, obeys pause/resume/abort, compensates completed steps in
// reverse completion order when a run fails or is aborted, and returns a run
// report with per-step timings and the RTO/RPO achieved.
//
// Invariants: workflow code does no I/O and reads no wall clock; every loop
// over steps follows the runbook's order, never a map's. Operators' messages
// (approve, reject, pause, resume, abort) arrive as Updates, validated before
// they are accepted, or as Signals (stored while no worker runs) that go
// through the same checks; every accepted or refused message is recorded in
// the report with who and why.
package workflows
