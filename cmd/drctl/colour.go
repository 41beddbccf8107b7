package main

import (
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/drctl/drctl/internal/visible"
	"github.com/drctl/drctl/workflows"
)

// colour is an SGR foreground colour for a state word; none leaves it as
// it is.
type colour string

// The colours of states: done green, failed red, waiting for someone
// yellow, in progress cyan.
const (
	none   colour = ""
	green  colour = "\x1b[32m"
	red    colour = "\x1b[31m"
	yellow colour = "\x1b[33m"
	cyan   colour = "\x1b[36m"
	reset         = "\x1b[0m"
)

// colourOf is the colour of a run's, step's or drill's state word.
func colourOf(state string) colour {
	switch state {
	case workflows.StateSucceeded, "completed":
		return green
	case workflows.StateFailed, workflows.StateAborted, "rejected", "terminated", "timed_out":
		return red
	case workflows.StepWaiting, "awaiting approval", "waiting for approval", workflows.StatePaused,
		workflows.StateAborting, workflows.StateCompensating, "retrying", "skipped":
		return yellow
	case workflows.StateRunning:
		return cyan
	}
	return none
}

// Colour modes of --color.
const (
	colourAuto   = "auto"
	colourAlways = "always"
	colourNever  = "never"
)

// colourOn decides whether stdout gets colour. --color always and never
// say so (a flag overrides NO_COLOR, as no-color.org asks); auto colours
// only a terminal, and not when NO_COLOR is set to anything or TERM is
// dumb. JSON is never coloured.
func colourOn(mode string, asJSON, terminal bool, getenv func(string) string) (bool, error) {
	switch mode {
	case colourAlways:
		return !asJSON, nil
	case colourNever:
		return false, nil
	case colourAuto, "":
		return !asJSON && terminal && getenv("NO_COLOR") == "" && getenv("TERM") != "dumb", nil
	}
	return false, fmt.Errorf("--color %q: use auto, always or never", mode)
}

// painter is a writer that can show a word in colour: termSafe, when
// colour is on. Colour is never in the bytes drctl prints (termSafe would
// escape it, as it escapes whatever a runbook or provider sends); only
// this call makes it.
type painter interface {
	Paint(text string, c colour)
}

// paint writes a state word, in its colour where w shows colour.
func paint(w io.Writer, state string) {
	paintAs(w, state, colourOf(state))
}

// paintAs writes text in colour c where w shows colour.
func paintAs(w io.Writer, text string, c colour) {
	if p, ok := w.(painter); ok && c != none {
		p.Paint(text, c)
		return
	}
	io.WriteString(w, text)
}

// cell is one cell of a table: its text and the colour it is shown in.
type cell struct {
	text   string
	colour colour
}

// plainCell is a cell shown as it is; stateCell one coloured by its state
// word.
func plainCell(s string) cell { return cell{text: s} }
func stateCell(s string) cell { return cell{text: s, colour: colourOf(s)} }

// printTable lays rows out in columns as drctl's tables always were (two
// spaces after the widest cell of a column, the last column unpadded),
// measuring a cell by what the terminal shows of it (its text as termSafe
// prints it) and padding it before it is painted, so colour never moves a
// column.
func printTable(w io.Writer, rows [][]cell) {
	var widths []int
	for _, r := range rows {
		for i, c := range r[:max(len(r)-1, 0)] {
			if i == len(widths) {
				widths = append(widths, 0)
			}
			widths[i] = max(widths[i], shownWidth(c.text))
		}
	}
	for _, r := range rows {
		for i, c := range r {
			paintAs(w, c.text, c.colour)
			if i < len(r)-1 {
				io.WriteString(w, strings.Repeat(" ", widths[i]-shownWidth(c.text)+2))
			}
		}
		io.WriteString(w, "\n")
	}
}

// shownWidth is how many characters the terminal shows of s, once hidden
// runes are written as their escapes.
func shownWidth(s string) int { return utf8.RuneCountInString(visible.String(s)) }
