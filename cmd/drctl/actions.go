package main

import (
	"fmt"
	"runtime/debug"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/drctl/drctl/internal/operator"
	"github.com/drctl/drctl/runbooks"
	drworker "github.com/drctl/drctl/worker"
	"github.com/drctl/drctl/workflows"
)

// actionsCmd lists the actions this build runs: what each does, its inputs
// (required ones marked *, target inputs with the kinds they take), its
// outputs, and whether a drill can put it back.
func (a *app) actionsCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "actions [NAME...]",
		Short: "List the actions runbooks can use: inputs, outputs, and whether a drill can undo each",
		Example: "  drctl actions\n" +
			"  drctl actions postgres.promote dns.set\n" +
			"  drctl actions -o json",
		RunE: func(cmd *cobra.Command, args []string) error {
			asJSON, err := a.jsonOutput()
			if err != nil {
				return err
			}
			cat := drworker.Catalog()
			names := args
			if len(names) == 0 {
				names = cat.Names()
			}
			var specs []runbooks.ActionSpec
			for _, n := range names {
				s, ok := cat.Lookup(n)
				if !ok {
					return fmt.Errorf("no action %q; drctl actions lists them all", n)
				}
				if s.Undo == "" {
					s.Undo = runbooks.UndoByCompensation
				}
				specs = append(specs, s)
			}
			out := cmd.OutOrStdout()
			if asJSON {
				return operator.JSON(out, map[string]any{"actions": specs})
			}
			for i, s := range specs {
				if i > 0 {
					fmt.Fprintln(out)
				}
				fmt.Fprintf(out, "%s — %s\n", s.Name, s.Doc)
				tw := tabwriter.NewWriter(out, 2, 4, 2, ' ', 0)
				for _, in := range s.Inputs {
					name := in.Name
					if in.Required {
						name += "*"
					}
					typ := string(in.Type)
					if len(in.Kinds) > 0 {
						typ += " (" + strings.Join(in.Kinds, ", ") + ")"
					}
					fmt.Fprintf(tw, "  %s\t%s\t%s\n", name, typ, in.Doc)
				}
				tw.Flush()
				if len(s.Outputs) > 0 {
					fmt.Fprintf(out, "  outputs: %s\n", strings.Join(s.Outputs, ", "))
				}
				fmt.Fprintf(out, "  in a drill: %s\n", undoText(s.Undo))
				switch {
				case s.Local:
					fmt.Fprintln(out, "  runs: in the worker running the run (no I/O; a local activity)")
				case s.Reach == runbooks.ReachSite:
					fmt.Fprintln(out, "  runs: on a worker of its target's site (needs the site's local reach)")
				default:
					fmt.Fprintln(out, "  runs: on any worker that holds its target's credentials")
				}
			}
			return nil
		},
	}
}

func undoText(u runbooks.Undo) string {
	switch u {
	case runbooks.UndoNotNeeded:
		return "reads only; nothing to put back"
	case runbooks.UndoImpossible:
		return "no compensation can undo it; a drill comes back by a failback runbook (drill.failback)"
	}
	return "its compensate: step puts it back"
}

// versionCmd prints the build: module version, VCS revision and Go.
func (a *app) versionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print drctl's version, the commit it was built from, the Go version and the runbook interpreter's version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			v := map[string]string{"version": "(devel)", "interpreter": fmt.Sprintf("v%d", workflows.InterpreterVersion)}
			if bi, ok := debug.ReadBuildInfo(); ok {
				v["go"] = bi.GoVersion
				if bi.Main.Version != "" {
					v["version"] = bi.Main.Version
				}
				for _, s := range bi.Settings {
					switch s.Key {
					case "vcs.revision", "vcs.time", "vcs.modified":
						v[strings.TrimPrefix(s.Key, "vcs.")] = s.Value
					}
				}
			}
			if asJSON, err := a.jsonOutput(); err != nil {
				return err
			} else if asJSON {
				return operator.JSON(cmd.OutOrStdout(), v)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "drctl %s", v["version"])
			if r := v["revision"]; r != "" {
				fmt.Fprintf(cmd.OutOrStdout(), " (commit %s", r)
				if v["modified"] == "true" {
					fmt.Fprint(cmd.OutOrStdout(), ", modified")
				}
				fmt.Fprint(cmd.OutOrStdout(), ")")
			}
			fmt.Fprintf(cmd.OutOrStdout(), " %s, runbook interpreter %s\n", v["go"], v["interpreter"])
			return nil
		},
	}
}
