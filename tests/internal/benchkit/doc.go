// Package benchkit is what the measuring commands under tests/ (bench,
// pgbench, chaos) share: a Temporal dev server with an in-process drctl
// worker, a run of a runbook to its end, nearest-rank percentiles and
// medians, and the facts about the machine their headers name.
package benchkit
