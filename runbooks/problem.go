package runbooks

import (
	"fmt"
	"sort"
	"strings"
)

// srcPos is a position in a runbook file. Line and Col are 1-based; zero means
// unknown (for example in a Runbook built in code rather than parsed).
type srcPos struct {
	Line int
	Col  int
}

// Problem is one thing wrong with a runbook, located as precisely as the
// parser allows, with what to write instead.
type Problem struct {
	File    string
	Line    int
	Col     int
	Step    string // id of the step concerned, if any
	Message string
	Hint    string // what to write instead; optional
}

// String formats p as `file:line:col: step "ID": message (hint)`, leaving
// out the parts that are unknown or empty.
func (p Problem) String() string {
	var b strings.Builder
	loc := p.File
	if p.Line > 0 {
		loc += fmt.Sprintf(":%d", p.Line)
		if p.Col > 0 {
			loc += fmt.Sprintf(":%d", p.Col)
		}
	}
	loc = strings.TrimPrefix(loc, ":")
	if loc != "" {
		b.WriteString(loc)
		b.WriteString(": ")
	}
	if p.Step != "" {
		fmt.Fprintf(&b, "step %q: ", p.Step)
	}
	b.WriteString(p.Message)
	if p.Hint != "" {
		fmt.Fprintf(&b, " (%s)", p.Hint)
	}
	return b.String()
}

// Problems is every problem found in a runbook. It implements error so that
// Parse and Load can return it; callers get it back with errors.As.
type Problems []Problem

// Error lists the problems one per line, in file order.
func (ps Problems) Error() string {
	sorted := append(Problems(nil), ps...)
	sorted.Sort()
	lines := make([]string, len(sorted))
	for i, p := range sorted {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// Sort orders the problems by file, line and column, keeping the order in
// which they were found for problems at the same place.
func (ps Problems) Sort() {
	sort.SliceStable(ps, func(i, j int) bool {
		a, b := ps[i], ps[j]
		if a.File != b.File {
			return a.File < b.File
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Col < b.Col
	})
}

// err returns ps as an error, or a true nil when there are none (a nil
// Problems stored in an error interface would not compare equal to nil).
func (ps Problems) err() error {
	if len(ps) == 0 {
		return nil
	}
	ps.Sort()
	return ps
}
