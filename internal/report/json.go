package report

import (
	"encoding/json"
	"io"

	"github.com/drctl/drctl/workflows"
)

// JSON writes rep as the indented JSON document `drctl status -o json`
// prints: the report as the workflow recorded it, for machines.
func JSON(w io.Writer, rep *workflows.Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(rep)
}
