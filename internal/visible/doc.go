// Package visible is the one rule for showing recorded text to people, on
// a terminal (cmd/drctl's termSafe), in a run report (internal/report) or
// on the status page (internal/statuspage): control characters other than
// newline and tab, bidirectional overrides and invalid UTF-8 become Go
// escapes (\x1b, \u202e, \xff). What is shown is then what was recorded: it
// can neither move a cursor, erase a line or redraw a terminal, nor reorder
// what a reader sees. Escaping for a format (HTML, Markdown) is the
// caller's.
package visible
