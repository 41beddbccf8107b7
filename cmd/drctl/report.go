package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	runreport "github.com/drctl/drctl/internal/report"
)

func (a *app) reportCmd() *cobra.Command {
	var file string
	cmd := &cobra.Command{
		Use:   "report RUN",
		Short: "Write a run's report for people: Markdown, one self-contained HTML page, or JSON",
		Long: `Write the report of a run (RUN is the lock, the workflow ID or a run ID): the verdict,
who started it and why, RTO and RPO against the runbook's objectives, every
step with its attempts and result, approvals and who gave them, compensations,
faults injected, a drill's before/after comparison and its failback run.

-o md (the default) is Markdown; -o html is one HTML page with an SVG
timeline of the steps, no script and nothing fetched, to attach to a ticket
or a post-incident review; -o json is the report as recorded. A running run's
report needs a worker to answer; a closed run's comes from its result.`,
		Example: `  drctl report app-site                          # Markdown on the terminal
  drctl report app-site -o html -f drill.html    # the page to attach to the review
  drctl report drctl-app-site -o json | jq .rto`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			format, err := a.reportFormat()
			if err != nil {
				return err
			}
			op, err := a.operator(cmd.Context())
			if err != nil {
				return err
			}
			rep, err := op.Report(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			// Rendered whole first: a failure leaves neither half a
			// report on stdout nor a truncated file.
			var b bytes.Buffer
			if err := runreport.Write(&b, format, rep); err != nil {
				return err
			}
			if file == "" {
				_, err := cmd.OutOrStdout().Write(b.Bytes())
				return err
			}
			if err := writeFileAtomic(file, b.Bytes()); err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "wrote %s\n", file)
			return nil
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", "write the report to `FILE` (mode 0644, replaced atomically) instead of stdout")
	return cmd
}

// reportFormat is the report's format from -o: md unless html or json is
// asked for ("table", the global default, means md here).
func (a *app) reportFormat() (string, error) {
	switch a.output {
	case "", "table", "md":
		return "md", nil
	case "html", "json":
		return a.output, nil
	}
	return "", fmt.Errorf("--output %q: a report is md (the default), html or json", a.output)
}

// writeFileAtomic writes data to path through a temporary file in the same
// directory renamed over path, so a reader sees the old file or the whole
// new one, never a part.
func writeFileAtomic(path string, data []byte) (err error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
			err = fmt.Errorf("write %s: %w", path, err)
		}
	}()
	if _, err = f.Write(data); err != nil {
		return err
	}
	if err = f.Chmod(0o644); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}
