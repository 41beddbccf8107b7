package main

import (
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/drctl/drctl/internal/lab"
	"github.com/drctl/drctl/workflows"
)

func (a *app) demoCmd() *cobra.Command {
	var (
		dir      string
		yes      bool
		failback bool
		keep     bool
	)
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Fail a two-site lab over for real (site-failover.yaml) under write load, with a report; then fail back",
		Long: "demo starts a Temporal dev server (bin/temporal, free ports, state in memory, web UI), a worker\n" +
			"and the two-site lab (see drctl lab), keeps writing through the app while it runs\n" +
			"runbooks/site-failover.yaml for real — fence east, approval, promote west, DNS, traffic,\n" +
			"verify — and prints live progress and a report: RTO, RPO, step timings, and the writes\n" +
			"the app acknowledged against the rows present on west. The approval is asked on the\n" +
			"terminal as a second person (--yes approves). Then it offers runbooks/failback.yaml\n" +
			"(--failback runs it without asking). Everything it started is stopped at the end.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.config()
			if err != nil {
				return err
			}
			failoverRB, err := a.load(filepath.Join(dir, "site-failover.yaml"))
			if err != nil {
				return err
			}
			failbackRB, err := a.load(filepath.Join(dir, "failback.yaml"))
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			return lab.Demo(cmd.Context(), lab.DemoOptions{
				Config: c, Failover: failoverRB, Failback: failbackRB,
				Yes: yes, RunFailback: failback, Keep: keep,
				In: cmd.InOrStdin(), Out: out,
				Follow: func() func(*workflows.Report) { return (&follower{out: out}).update },
				Report: func(rep *workflows.Report) { printReport(out, rep, nil) },
			})
		},
	}
	cmd.Flags().StringVar(&dir, "runbooks", "runbooks", "directory of the shipped runbooks (site-failover.yaml, failback.yaml)")
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "approve every gate without asking (as the second person)")
	cmd.Flags().BoolVar(&failback, "failback", false, "run runbooks/failback.yaml after the failover without asking")
	cmd.Flags().BoolVar(&keep, "keep", false, "keep the dev server, its UI, the worker and the lab running after the runs, until Ctrl-C")
	return cmd
}
