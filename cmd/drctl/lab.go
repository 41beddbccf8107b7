package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/drctl/drctl/internal/lab"
	"github.com/drctl/drctl/internal/operator"
)

// defaultLabDir is where `drctl lab` keeps a lab's state unless --state says
// otherwise.
const defaultLabDir = ".drctl/lab"

func (a *app) labCmd() *cobra.Command {
	var stateDir string
	cmd := &cobra.Command{
		Use:   "lab",
		Short: "A local two-site lab (PostgreSQL primary+standby, BIND 9, HAProxy, an app per site) for the shipped runbooks",
		Long: "lab runs, on loopback, site east (primary) and site west (DR): a PostgreSQL 15 primary in east\n" +
			"streaming to a standby in west, a BIND 9 zone with the names app.<zone> and db.<zone>, HAProxy\n" +
			"in front of each site's app, and the apps, which write to the database found through db.<zone>.\n" +
			"`lab up` keeps it running in the background and writes, into --state, the parameters\n" +
			"(params.yaml), the worker's secrets (lab.env, mode 0600) and a drctl config (drctl.yaml)\n" +
			"that the shipped runbooks need.",
	}
	cmd.PersistentFlags().StringVar(&stateDir, "state", defaultLabDir, "the lab's state directory")
	abs := func() (string, error) { return filepath.Abs(stateDir) }

	up := &cobra.Command{
		Use:   "up",
		Short: "Start the lab in the background (installs what is missing) and write its files",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			dir, err := abs()
			if err != nil {
				return err
			}
			exe, err := os.Executable()
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			res, err := lab.Up(cmd.Context(), dir, lab.UpOptions{Supervisor: []string{exe, "lab", "serve", "--state", dir}, Out: out})
			if err != nil {
				return err
			}
			if res.AlreadyRunning {
				fmt.Fprintf(out, "a lab already runs in %s (supervisor pid %d); drctl lab status checks it\n", dir, res.State.SupervisorPID)
				return nil
			}
			fmt.Fprintf(out, "lab up in %s (supervisor pid %d, state in %s)\n", res.Took.Round(time.Millisecond), res.State.SupervisorPID, dir)
			printLabSummary(out, dir, res.State)
			return nil
		},
	}
	down := &cobra.Command{
		Use:   "down",
		Short: "Stop every process of the lab, wait until its ports are free, and remove its state",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			dir, err := abs()
			if err != nil {
				return err
			}
			start := time.Now()
			if err := lab.Down(cmd.Context(), dir); err != nil {
				if errors.Is(err, lab.ErrNoLab) {
					fmt.Fprintf(cmd.OutOrStdout(), "no lab in %s; nothing to stop\n", dir)
					return nil
				}
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "lab stopped in %s: every process gone, every port free; %s removed\n", time.Since(start).Round(time.Millisecond), dir)
			return nil
		},
	}
	status := &cobra.Command{
		Use:   "status",
		Short: "Check every component of the lab: databases' roles, where DNS and HAProxy point, the apps",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			dir, err := abs()
			if err != nil {
				return err
			}
			asJSON, err := a.jsonOutput()
			if err != nil {
				return err
			}
			_, checks, err := lab.Status(cmd.Context(), dir)
			if err != nil {
				return err
			}
			failed := 0
			if asJSON {
				for _, c := range checks {
					if !c.OK {
						failed++
					}
				}
				if err := operator.JSON(cmd.OutOrStdout(), map[string]any{"checks": checks, "failed": failed}); err != nil {
					return err
				}
			} else {
				failed = printChecks(cmd.OutOrStdout(), checks)
			}
			if failed > 0 {
				return fmt.Errorf("%d of %d lab checks failed", failed, len(checks))
			}
			return nil
		},
	}
	serve := &cobra.Command{
		Use:    "serve",
		Short:  "Run the lab in the foreground until SIGTERM (what `lab up` starts in the background)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			dir, err := abs()
			if err != nil {
				return err
			}
			return lab.Serve(cmd.Context(), dir, cmd.ErrOrStderr())
		},
	}
	var forTests bool
	deps := &cobra.Command{
		Use:   "deps",
		Short: "Install the system packages the lab needs (--tests: also those drctl's tests use): apt-get as root, else print the command",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if forTests {
				return lab.InstallForTests(cmd.Context(), cmd.OutOrStdout())
			}
			return lab.Install(cmd.Context(), cmd.OutOrStdout())
		},
	}
	deps.Flags().BoolVar(&forTests, "tests", false, "also the packages drctl's tests use (make deps)")
	cmd.AddCommand(up, down, status, serve, deps)
	return cmd
}

func printLabSummary(out io.Writer, dir string, st lab.State) {
	rel := func(name string) string {
		p := filepath.Join(dir, name)
		if wd, err := os.Getwd(); err == nil {
			if r, err := filepath.Rel(wd, p); err == nil && !strings.HasPrefix(r, "..") {
				return r
			}
		}
		return p
	}
	tw := tabwriter.NewWriter(out, 2, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "  zone\t%s on %s (app.%s, db.%s)\n", st.Zone, st.DNS.Addr, st.Zone, st.Zone)
	for _, n := range st.Postgres {
		role := "primary"
		if n.Site == lab.West {
			role = "standby"
		}
		fmt.Fprintf(tw, "  postgres %s\t%s (%s)\n", n.Site, n.Addr, role)
	}
	for _, a := range st.Apps {
		fmt.Fprintf(tw, "  app %s\t%s\n", a.Site, a.Addr)
	}
	fmt.Fprintf(tw, "  haproxy\thttp://%s (runtime API %s)\n", st.HAProxy.Frontend, st.HAProxy.Socket)
	tw.Flush()
	fmt.Fprintf(out, "files: %s (runbook parameters), %s (worker secrets, 0600), %s (drctl config)\n", rel(lab.ParamsFile), rel(lab.EnvFile), rel(lab.ConfigFile))
	fmt.Fprintf(out, "fail it over by hand:\n")
	fmt.Fprintf(out, "  (set -a; . %s; drctl dev) &        # dev server + a worker holding the lab's secrets\n", rel(lab.EnvFile))
	fmt.Fprintf(out, "  drctl run runbooks/site-failover.yaml --params %s --as oncall-sre --reason drill\n", rel(lab.ParamsFile))
	fmt.Fprintf(out, "  drctl approve app-site approve-promotion --as oncall-dba --reason ok\n")
	fmt.Fprintf(out, "  drctl lab status; drctl lab down\n")
}

// printChecks prints lab checks and returns how many failed.
func printChecks(out io.Writer, checks []lab.Check) int {
	failed := 0
	tw := tabwriter.NewWriter(out, 2, 4, 2, ' ', 0)
	for _, c := range checks {
		mark := "ok"
		if !c.OK {
			mark = "FAIL"
			failed++
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", c.Component, mark, c.Detail)
	}
	tw.Flush()
	return failed
}
