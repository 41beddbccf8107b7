package report

import (
	"embed"
	"html/template"
	"io"

	"github.com/drctl/drctl/workflows"
)

//go:embed report.html.tmpl
var templates embed.FS

// page is the HTML report: html/template escapes every value for the
// context it lands in (text, attribute, SVG).
var page = template.Must(template.New("report.html.tmpl").Funcs(template.FuncMap{
	"states": func() []string { return legend },
}).ParseFS(templates, "report.html.tmpl"))

// legend is the step states the timeline's colours stand for.
var legend = []string{
	workflows.StepSucceeded, workflows.StepFailed, workflows.StepRunning, workflows.StepWaiting,
	workflows.StepCancelled, workflows.StepSkipped,
}

// HTML writes rep as one self-contained HTML page: inline CSS, an inline
// SVG timeline of the steps, no script and nothing fetched.
func HTML(w io.Writer, rep *workflows.Report) error {
	return page.Execute(w, newRun(rep, false))
}
