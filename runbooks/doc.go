// Package runbooks is the runbook language of drctl: the typed model of a DR
// runbook, its YAML parser, the validator that reports every problem with
// file:line:col before anything runs, and the planner that orders the steps
// into stages.
//
// Invariants: a *Runbook returned by Load has passed Validate against the
// action catalog, so every action, input, needs edge and reference in it is
// known and the step graph is acyclic; a Runbook is plain data that survives
// a JSON round trip unchanged, because it is the workflow's input and a run
// replays against exactly that text. A runbook names where secrets live,
// never the secrets themselves.
package runbooks
