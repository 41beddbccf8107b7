// Package report renders a run's workflows.Report for people: Markdown for
// a terminal, a ticket or a review, a self-contained HTML page (with an
// inline SVG timeline) for a post-incident or drill write-up, and JSON for
// machines.
//
// Invariants:
//   - Both human formats show the same facts, decided once in one view
//     (view.go): the verdict, the objectives as met, missed, not measured
//     or unknown (an unknown RPO is never "met"), the steps, approvals,
//     compensations, faults injected, the drill's before/after comparison
//     and a drill's failback run.
//   - Every string in a report may come from a runbook, a provider or
//     another client and is treated as hostile: control characters and
//     bidirectional overrides are shown as Go escapes, Markdown escapes
//     whatever could end a table cell or start markup, and HTML goes through
//     html/template only.
//   - The HTML page fetches nothing and runs nothing: inline CSS, inline
//     SVG, no script, no URL, and a Content-Security-Policy that forbids
//     both should anything slip through.
//   - Rendering is deterministic: times come from the report (UTC, with
//     the date), never the clock, and maps are shown in sorted key order.
package report
