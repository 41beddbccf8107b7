package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/drctl/drctl/internal/operator"
	"github.com/drctl/drctl/runbooks"
	drworker "github.com/drctl/drctl/worker"
	"github.com/drctl/drctl/workflows"
)

// readinessCmd shows readiness and manages its schedules.
func (a *app) readinessCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "readiness [RUNBOOK]",
		Short: "Show whether each registered runbook would work now, with the failing checks and since when",
		Long: `Show the readiness of every runbook registered with drctl readiness add (or
of one): ready or not, since when, and each failing check with its reason.
Readiness is evaluated on a Temporal Schedule by a read-only workflow: the
preflight checks and every acting step's Observe, judged against named
checks (standby streaming within the RPO, DNS TTLs within the RTO, each
acting step finding something to change, credentials on a worker).`,
		Example: `  drctl readiness add runbooks/site-failover.yaml --every 5m --params prod.yaml
  drctl readiness
  drctl readiness site-failover -o json`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			asJSON, err := a.jsonOutput()
			if err != nil {
				return err
			}
			op, err := a.operator(cmd.Context())
			if err != nil {
				return err
			}
			runbook := optionalArg(args)
			rs, err := op.Readiness(cmd.Context(), runbook)
			if err != nil {
				return err
			}
			if asJSON {
				return operator.JSON(cmd.OutOrStdout(), rs)
			}
			printReadiness(cmd.OutOrStdout(), rs, time.Now())
			if runbook != "" && len(rs) == 0 {
				return fmt.Errorf("no readiness recorded for %s; register it with drctl readiness add FILE", runbook)
			}
			return nil
		},
	}
	cmd.AddCommand(a.readinessAddCmd())
	for _, op := range []struct{ use, op, short string }{
		{"check", "trigger", "Evaluate a runbook's readiness now"},
		{"pause", "pause", "Pause a runbook's readiness evaluations"},
		{"resume", "resume", "Resume a runbook's readiness evaluations"},
		{"remove", "delete", "Stop evaluating a runbook's readiness (its record, the SLO's history, stays)"},
	} {
		cmd.AddCommand(&cobra.Command{
			Use:   op.use + " RUNBOOK",
			Short: op.short,
			Args:  cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				o, err := a.operator(cmd.Context())
				if err != nil {
					return err
				}
				if err := o.ControlReadiness(cmd.Context(), args[0], op.op); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s: %s\n", workflows.ReadinessScheduleID(args[0]), map[string]string{
					"trigger": "evaluating now (see drctl readiness " + args[0] + ")", "pause": "paused", "resume": "resumed", "delete": "removed",
				}[op.op])
				return nil
			},
		})
	}
	return cmd
}

func (a *app) readinessAddCmd() *cobra.Command {
	var (
		sets       []string
		paramsFile string
		every      time.Duration
		alertAfter int
	)
	cmd := &cobra.Command{
		Use:     "add FILE",
		Short:   "Evaluate a runbook's readiness on a schedule (creates or replaces it)",
		Example: `  drctl readiness add runbooks/site-failover.yaml --every 5m --params prod.yaml`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			asJSON, err := a.jsonOutput()
			if err != nil {
				return err
			}
			cat := drworker.Catalog()
			rb, err := runbooks.Load(args[0], cat)
			if err != nil {
				return err
			}
			params, err := runParams(rb, paramsFile, sets)
			if err != nil {
				return err
			}
			op, err := a.operator(cmd.Context())
			if err != nil {
				return err
			}
			id, err := op.AddReadiness(cmd.Context(), rb, operator.ReadinessOptions{Every: every, Params: params, Acting: runbooks.ActingSteps(rb, cat), AlertAfter: alertAfter})
			if err != nil {
				return err
			}
			if asJSON {
				return operator.JSON(cmd.OutOrStdout(), map[string]string{"schedule": id, "runbook": rb.Name})
			}
			if every == 0 {
				every = operator.DefaultReadinessEvery
			}
			fmt.Fprintf(cmd.OutOrStdout(), "readiness schedule %s: %s evaluated every %s (first evaluation now)\nsee it with: drctl readiness %s\n", id, rb.Name, every, rb.Name)
			if msg := op.NoWorker(cmd.Context()); msg != "" {
				fmt.Fprintf(cmd.ErrOrStderr(), "warning: %s\n", msg)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.DurationVar(&every, "every", 0, "evaluate at this interval (1m to 24h; default 5m)")
	f.StringArrayVar(&sets, "set", nil, "parameter NAME=VALUE (repeatable)")
	f.StringVar(&paramsFile, "params", "", paramsFlagDoc)
	f.IntVar(&alertAfter, "alert-after", 0, "evaluations in a row a change must hold before Slack and the webhook are told (default 2)")
	return cmd
}

func printReadiness(w io.Writer, rs []operator.ReadinessStatus, now time.Time) {
	if len(rs) == 0 {
		fmt.Fprintln(w, "no readiness recorded; register a runbook with drctl readiness add FILE")
		return
	}
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "RUNBOOK\tSTATE\tSINCE\tCHECKS\tLAST EVALUATED\tEVERY")
	for _, r := range rs {
		state := "ready"
		if !r.Ready {
			state = "NOT READY"
		}
		if r.InProgress != "" {
			state += ", run in progress"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s (%s ago)\t%d/%d passing\t%s ago\t%s\n", r.Runbook, state, r.Since.UTC().Format(time.DateTime),
			now.Sub(r.Since).Round(time.Second), r.Checks-len(r.Failing), r.Checks, now.Sub(r.Last).Round(time.Second), r.Every)
	}
	tw.Flush()
	for _, r := range rs {
		if r.InProgress != "" {
			fmt.Fprintf(w, "  %s  not evaluated while %s holds the lock; the state is the last one judged\n", r.Runbook, r.InProgress)
		}
		for _, c := range r.Failing {
			fmt.Fprintf(w, "  %s  %s: %s\n", r.Runbook, c.Name, strings.TrimSpace(c.Reason))
		}
		if r.AlertErr != "" {
			fmt.Fprintf(w, "  %s  last alert not delivered: %s\n", r.Runbook, r.AlertErr)
		}
	}
}

// sloCmd shows service levels.
func (a *app) sloCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "slo [RUNBOOK]",
		Short: "Show each runbook's SLOs: readiness over the window, time since the last passing drill, RTO/RPO met, error budget",
		Example: `  drctl slo
  drctl slo site-failover -o json`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return show(a, cmd, func(ctx context.Context, op *operator.Operator) ([]operator.SLO, error) {
				return op.SLOs(ctx, optionalArg(args))
			}, printSLOs)
		},
	}
}

func printSLOs(w io.Writer, ss []operator.SLO) {
	if len(ss) == 0 {
		fmt.Fprintln(w, "no runbook has readiness or runs recorded yet")
		return
	}
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "RUNBOOK\tWINDOW\tREADINESS\tOBJECTIVE\tBUDGET LEFT\tLAST PASSING DRILL\tDRILL EVERY\tRUNS MET\tDRILLS MET")
	for _, s := range ss {
		avail, objective, budget := "-", "-", "-"
		if r := s.Readiness; r != nil {
			avail = fmt.Sprintf("%.3f%% of %s", r.Availability, r.Covered.D().Round(time.Minute))
			if r.Objective != "" {
				objective = r.Objective + " " + verdictWord(r.Met)
				budget = fmt.Sprintf("%s of %s", r.BudgetLeft.D().Round(time.Second), r.Budget.D().Round(time.Second))
			}
		}
		drill, every := "never", "-"
		if s.Drill.Since != nil {
			drill = s.Drill.Since.D().Round(time.Minute).String() + " ago"
		}
		if s.Drill.Every > 0 {
			every = runbooks.FormatPeriod(s.Drill.Every) + " " + verdictWord(s.Drill.Met)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.Runbook, runbooks.FormatPeriod(s.Window), avail, objective, budget, drill, every, share(s.Runs), share(s.Drills))
	}
	tw.Flush()
}

func verdictWord(met *bool) string {
	switch {
	case met == nil:
		return ""
	case *met:
		return "(met)"
	}
	return "(MISSED)"
}

func share(s operator.Share) string {
	if s.Total == 0 {
		return "-"
	}
	return fmt.Sprintf("%d/%d", s.Met, s.Total)
}
