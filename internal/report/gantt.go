package report

import (
	"fmt"
	"time"

	"github.com/drctl/drctl/internal/visible"
	"github.com/drctl/drctl/workflows"
)

// gantt is a run's timeline as SVG geometry (whole pixels): one row per
// step, then one per compensation, each with a bar from the step's start
// to its end on an axis from the run's start to its end. A step that never
// started has a row and no bar.
type gantt struct {
	Width, Height  int
	AxisX0, AxisX1 int
	AxisY0, AxisY1 int
	Ticks          []tick
	Rows           []row
}

type tick struct {
	X     int
	Label string
}

type row struct {
	Label  string // the step id, shortened to fit the label column
	TextY  int
	Bar    bool
	Step   string // the full step id
	X, Y   int
	W, H   int
	Class  string
	Title  string // the bar's tooltip: what, state, when, how long
	NoteX  int
	NoteOn string // why there is no bar
}

const (
	labelWidth = 210
	chartWidth = 660
	padRight   = 50
	axisTop    = 30
	rowHeight  = 22
	barHeight  = 14
	maxTicks   = 8
	labelRunes = 28
)

func newGantt(rep *workflows.Report) gantt {
	start := rep.StartedAt
	end := start
	if rep.EndedAt != nil {
		end = *rep.EndedAt
	} else {
		for _, s := range append(append([]workflows.StepReport(nil), rep.Steps...), rep.Compensations...) {
			for _, t := range []*time.Time{s.StartedAt, s.EndedAt} {
				if t != nil && t.After(end) {
					end = *t
				}
			}
		}
	}
	span := end.Sub(start)
	if span <= 0 {
		span = time.Second
	}
	x := func(t time.Time) int {
		f := float64(t.Sub(start)) / float64(span)
		f = min(max(f, 0), 1)
		return labelWidth + int(f*chartWidth+0.5)
	}
	n := len(rep.Steps) + len(rep.Compensations)
	g := gantt{
		Width:  labelWidth + chartWidth + padRight,
		Height: axisTop + n*rowHeight + 10,
		AxisX0: labelWidth, AxisX1: labelWidth + chartWidth,
		AxisY0: axisTop - 6, AxisY1: axisTop + n*rowHeight,
	}
	step := tickStep(span)
	for off := time.Duration(0); off <= span; off += step {
		g.Ticks = append(g.Ticks, tick{X: x(start.Add(off)), Label: "+" + duration(off)})
	}
	add := func(s workflows.StepReport, undo bool) {
		i := len(g.Rows)
		label := s.ID
		if undo {
			label = "undo " + label
		}
		r := row{
			Label: shorten(visible.String(label), labelRunes),
			TextY: axisTop + i*rowHeight + rowHeight/2 + 4,
			Step:  visible.String(s.ID),
			Y:     axisTop + i*rowHeight + (rowHeight-barHeight)/2,
			H:     barHeight,
		}
		if s.StartedAt == nil {
			r.NoteX, r.NoteOn = labelWidth+4, "not started ("+visible.String(s.State)+")"
			g.Rows = append(g.Rows, r)
			return
		}
		stop := end
		if s.EndedAt != nil {
			stop = *s.EndedAt
		}
		r.Bar = true
		r.X = x(*s.StartedAt)
		r.W = max(x(stop)-r.X, 2) // an instant step stays visible
		r.Class = "bar s-" + stateClass(s.State)
		if undo {
			r.Class += " undo"
		}
		if s.Kind == workflows.KindApproval {
			r.Class += " gate"
		}
		what := s.Action
		if s.Kind == workflows.KindApproval {
			what = "approval gate"
		}
		title := fmt.Sprintf("%s (%s): %s, from +%s", label, what, s.State, duration(s.StartedAt.Sub(start)))
		if s.EndedAt != nil {
			title += ", took " + duration(s.EndedAt.Sub(*s.StartedAt))
		}
		if s.Attempts > 1 {
			title += fmt.Sprintf(", %d attempts", s.Attempts)
		}
		r.Title = visible.String(title)
		g.Rows = append(g.Rows, r)
	}
	for _, s := range rep.Steps {
		add(s, false)
	}
	for _, s := range rep.Compensations {
		add(s, true)
	}
	return g
}

// tickSteps are the round intervals the time axis is marked in.
var tickSteps = []time.Duration{
	time.Millisecond, 2 * time.Millisecond, 5 * time.Millisecond, 10 * time.Millisecond,
	20 * time.Millisecond, 50 * time.Millisecond, 100 * time.Millisecond, 200 * time.Millisecond,
	500 * time.Millisecond, time.Second, 2 * time.Second, 5 * time.Second, 10 * time.Second,
	15 * time.Second, 30 * time.Second, time.Minute, 2 * time.Minute, 5 * time.Minute,
	10 * time.Minute, 15 * time.Minute, 30 * time.Minute, time.Hour, 2 * time.Hour,
	6 * time.Hour, 12 * time.Hour, 24 * time.Hour,
}

// tickStep is the smallest round interval that marks span with at most
// maxTicks intervals.
func tickStep(span time.Duration) time.Duration {
	for _, s := range tickSteps {
		if span/s <= maxTicks {
			return s
		}
	}
	return (span/maxTicks/(24*time.Hour) + 1) * 24 * time.Hour
}

// stateClass names the CSS class of a step state; a state this build does
// not know is "other", so no recorded text becomes a class name.
func stateClass(state string) string {
	switch state {
	case workflows.StepPending, workflows.StepRunning, workflows.StepWaiting, workflows.StepSucceeded,
		workflows.StepFailed, workflows.StepSkipped, workflows.StepCancelled:
		return state
	}
	return "other"
}

func shorten(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
