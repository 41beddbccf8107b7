package report

import (
	"fmt"
	"io"
	"strings"

	"github.com/drctl/drctl/workflows"
)

// Markdown writes rep as a GitHub-flavoured Markdown document. Every value
// is escaped by md, so a recorded string can neither end a table cell nor
// start a link, emphasis or raw HTML.
func Markdown(w io.Writer, rep *workflows.Report) error {
	m := &mdWriter{w: w}
	m.run(newRun(rep, false), 1)
	return m.err
}

// mdWriter writes Markdown and keeps the first write error.
type mdWriter struct {
	w   io.Writer
	err error
}

func (m *mdWriter) printf(format string, args ...any) {
	if m.err == nil {
		_, m.err = fmt.Fprintf(m.w, format, args...)
	}
}

// table writes a table; header names are trusted, every cell is escaped.
func (m *mdWriter) table(header []string, rows [][]string) {
	m.printf("| %s |\n|%s\n", strings.Join(header, " | "), strings.Repeat(" --- |", len(header)))
	for _, r := range rows {
		cells := make([]string, len(r))
		for i, c := range r {
			cells[i] = md(c)
		}
		m.printf("| %s |\n", strings.Join(cells, " | "))
	}
	m.printf("\n")
}

// run writes v with its title at heading level h and its sections at h+1.
func (m *mdWriter) run(v *run, h int) {
	title, sec := strings.Repeat("#", h), strings.Repeat("#", h+1)
	if v.Nested {
		m.printf("%s Failback run: %s\n\n", title, md(v.Runbook))
	} else {
		m.printf("%s drctl run report: %s\n\n", title, md(v.Runbook))
	}
	m.printf("**Verdict: %s**", md(v.Verdict))
	if v.Error != "" {
		m.printf(" — %s", md(v.Error))
	}
	m.printf("\n\n")
	for _, f := range [][2]string{
		{"Runbook", v.Runbook}, {"Lock", v.Lock}, {"Mode", v.Mode},
		{"Started by", v.StartedBy}, {"Reason", v.Reason},
		{"Started", v.Started}, {"Ended", v.Ended}, {"Wall time", v.Wall},
		{"Workflow", v.WorkflowID}, {"Run ID", v.RunID},
	} {
		if f[1] != "" {
			m.printf("- %s: %s\n", f[0], md(f[1]))
		}
	}
	m.printf("\n")

	m.printf("%s Objectives\n\n", sec)
	var rows [][]string
	for _, o := range v.Objectives {
		rows = append(rows, []string{o.Name, o.Target, o.Measured, o.Verdict})
	}
	m.table([]string{"Objective", "Target", "Measured", "Verdict"}, rows)

	m.printf("%s Steps\n\n", sec)
	m.printf("Start is the time since the run started.\n\n")
	rows = nil
	for _, s := range v.Steps {
		rows = append(rows, []string{s.ID, s.Kind, s.Action, s.State, s.Attempts, s.Start, s.Took, s.Result})
	}
	m.table([]string{"Step", "Kind", "Action", "State", "Attempts", "Start", "Took", "Result"}, rows)

	if len(v.Approvals) > 0 {
		m.printf("%s Approvals\n\n", sec)
		rows = nil
		for _, a := range v.Approvals {
			rows = append(rows, []string{a.Gate, a.Decision, a.Needed, a.ApprovedBy, a.DecidedBy, a.Signed, a.At, a.Reason})
		}
		m.table([]string{"Gate", "Decision", "Needs", "Approved by", "Decided by", "Signature", "At", "Reason"}, rows)
	}

	if len(v.Compensations) > 0 {
		m.printf("%s Compensations (the way back)\n\n", sec)
		rows = nil
		for _, s := range v.Compensations {
			rows = append(rows, []string{s.ID, s.Action, s.State, s.Attempts, s.Start, s.Took, s.Result})
		}
		m.table([]string{"Undoes", "Action", "State", "Attempts", "Start", "Took", "Result"}, rows)
	}

	if len(v.Chaos) > 0 {
		m.printf("%s Faults injected\n\n", sec)
		rows = nil
		for _, f := range v.Chaos {
			rows = append(rows, []string{f.Step, f.Fault, f.Outcome})
		}
		m.table([]string{"Step", "Fault", "Outcome"}, rows)
	}

	if sc := v.Steady; sc != nil {
		m.printf("%s Before and after the drill\n\n", sec)
		m.printf("%s.\n\n", md(sc.Summary))
		if len(sc.Facts) > 0 {
			rows = nil
			for _, f := range sc.Facts {
				rows = append(rows, []string{f.Key, f.Was, f.Now, f.Result})
			}
			m.table([]string{"Fact", "Was", "Now", "Result"}, rows)
		}
		if len(sc.NotCompared) > 0 {
			m.printf("Not compared:\n\n")
			for _, n := range sc.NotCompared {
				m.printf("- %s\n", md(n))
			}
			m.printf("\n")
		}
	}

	if len(v.Events) > 0 {
		m.printf("%s Audit trail\n\n", sec)
		rows = nil
		for _, e := range v.Events {
			rows = append(rows, []string{e.At, e.Kind, e.Step, e.By, e.Reason})
		}
		m.table([]string{"At", "Event", "Step", "By", "Reason"}, rows)
	}

	if v.Failback != nil {
		m.run(v.Failback, h+1)
	}
}

// md escapes s for any inline Markdown position, a table cell included:
// a backslash before each character that could end the cell (|), escape
// the next one (\) or start markup (* _ ` [ ] < > & ~ !), and <br> for a
// line break, so a cell stays one cell and shows the text as recorded.
// An underscore inside a word starts nothing and is left alone.
func md(s string) string {
	var b strings.Builder
	rs := []rune(s)
	for i, r := range rs {
		switch r {
		case '\r':
			if i+1 < len(rs) && rs[i+1] == '\n' {
				continue
			}
			b.WriteString("<br>")
		case '\n':
			b.WriteString("<br>")
		case '_':
			if i > 0 && i+1 < len(rs) && isWord(rs[i-1]) && isWord(rs[i+1]) {
				b.WriteRune(r)
			} else {
				b.WriteString(`\_`)
			}
		case '\\', '|', '*', '`', '[', ']', '<', '>', '&', '~', '!':
			b.WriteByte('\\')
			b.WriteRune(r)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

func isWord(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9'
}
