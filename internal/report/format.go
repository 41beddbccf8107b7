package report

import (
	"fmt"
	"io"

	"github.com/drctl/drctl/workflows"
)

// Formats a report is written in, the default first.
var Formats = []string{"md", "html", "json"}

// Write writes rep in format: md, html or json.
func Write(w io.Writer, format string, rep *workflows.Report) error {
	switch format {
	case "md":
		return Markdown(w, rep)
	case "html":
		return HTML(w, rep)
	case "json":
		return JSON(w, rep)
	}
	return fmt.Errorf("report format %q: use md, html or json", format)
}
