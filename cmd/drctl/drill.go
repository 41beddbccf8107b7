package main

import (
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/drctl/drctl/internal/operator"
	"github.com/drctl/drctl/workflows"
)

// drillCmd groups the drill schedule commands.
func (a *app) drillCmd() *cobra.Command {
	d := &cobra.Command{Use: "drill", Short: "Schedule drills on Temporal Schedules (list, pause, resume, trigger, delete)"}
	d.AddCommand(a.drillScheduleCmd(), a.drillListCmd())
	for _, op := range []struct{ name, short string }{
		{"pause", "Pause a drill schedule (no drill starts until resumed)"},
		{"resume", "Resume a paused drill schedule"},
		{"trigger", "Start a scheduled drill now (skipped when one is still running)"},
		{"delete", "Delete a drill schedule (a drill in progress goes on)"},
	} {
		d.AddCommand(a.drillControlCmd(op.name, op.short))
	}
	return d
}

func (a *app) drillScheduleCmd() *cobra.Command {
	var (
		sets                                   []string
		chaos                                  []string
		paramsFile, failback, reason, cron, by string
		every                                  time.Duration
	)
	cmd := &cobra.Command{
		Use:   "schedule FILE (--every DURATION | --cron EXPR)",
		Short: "Drill a runbook on a schedule (creates or replaces the runbook's drill schedule)",
		Example: `  drctl drill schedule runbooks/site-failover.yaml --every 168h --params prod.yaml
  drctl drill schedule runbooks/drill-app-west.yaml --cron "0 3 * * MON" --auto-approve drill-bot`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			asJSON, err := a.jsonOutput()
			if err != nil {
				return err
			}
			rb, params, fb, faults, err := a.prepare(args[0], workflows.ModeDrill, failback, paramsFile, sets, chaos)
			if err != nil {
				return err
			}
			c, _ := a.config()
			so := operator.ScheduleOptions{Every: every, Cron: cron, Params: params, Failback: fb, Chaos: faults, Reason: reason, AutoApprove: by}
			if c.Approvals.AllowedSigners != "" {
				if so.Signers, err = operator.LoadAllowedSigners(c.Approvals.AllowedSigners); err != nil {
					return err
				}
			}
			op, err := a.operator(cmd.Context())
			if err != nil {
				return err
			}
			id, err := op.ScheduleDrill(cmd.Context(), rb, so)
			if err != nil {
				return err
			}
			if asJSON {
				return operator.JSON(cmd.OutOrStdout(), map[string]string{"schedule": id, "runbook": rb.Name})
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "drill schedule %s: %s drills %s\n", id, rb.Name, specText(every, cron))
			if by != "" {
				fmt.Fprintf(out, "gates are approved automatically as %s where the gate allows it (recorded as such)\n", by)
			} else {
				fmt.Fprintln(out, "gates wait for an approver and notify like any run")
			}
			fmt.Fprintf(out, "try it now: drctl drill trigger %s; past drills: drctl drills %s\n", rb.Name, rb.Name)
			if msg := op.NoWorker(cmd.Context()); msg != "" {
				fmt.Fprintf(cmd.ErrOrStderr(), "warning: %s\n", msg)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.DurationVar(&every, "every", 0, "drill at this interval (1h to 366 days), e.g. 168h")
	f.StringVar(&cron, "cron", "", `drill at these times (five cron fields, UTC), e.g. "0 3 * * MON"`)
	f.StringArrayVar(&sets, "set", nil, "parameter NAME=VALUE (repeatable)")
	f.StringVar(&paramsFile, "params", "", paramsFlagDoc)
	f.StringVar(&failback, "failback", "", "the runbook that brings everything back (default: the runbook's drill.failback)")
	f.StringVar(&reason, "reason", "", "why the drills run (recorded in each)")
	f.StringArrayVar(&chaos, "chaos", nil, "inject a fault in every drill, as for drctl run --chaos")
	f.StringVar(&by, "auto-approve", "", "approve the drills' gates automatically as this identity (each gate must allow it; two-person gates need someone else)")
	return cmd
}

func specText(every time.Duration, cron string) string {
	if cron != "" {
		return "at cron " + cron + " (UTC)"
	}
	return "every " + every.String()
}

func (a *app) drillListCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List drill schedules",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return show(a, cmd, func(ctx context.Context, op *operator.Operator) ([]operator.DrillSchedule, error) {
				return op.DrillSchedules(ctx)
			}, printSchedules)
		},
	}
}

func printSchedules(w io.Writer, ss []operator.DrillSchedule) {
	if len(ss) == 0 {
		fmt.Fprintln(w, "no drill schedules; create one with drctl drill schedule FILE --every 168h")
		return
	}
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SCHEDULE\tRUNBOOK\tWHEN\tSTATE\tNEXT\tLAST FIRED\tAUTO-APPROVE\tCREATED BY")
	for _, s := range ss {
		state, next, last := "active", "-", "-"
		if s.Paused {
			state, next = "paused", "-"
		} else if s.Next != nil {
			next = s.Next.UTC().Format(time.DateTime)
		}
		if n := len(s.Recent); n > 0 {
			last = s.Recent[n-1].At.UTC().Format(time.DateTime)
		}
		auto := s.AutoApprove
		if auto == "" {
			auto = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.ID, s.Runbook, s.Spec, state, next, last, auto, s.CreatedBy)
	}
	tw.Flush()
}

func (a *app) drillControlCmd(op, short string) *cobra.Command {
	var reason string
	cmd := &cobra.Command{
		Use:   op + " RUNBOOK",
		Short: short + " (RUNBOOK is the runbook's name or the schedule ID)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o, err := a.operator(cmd.Context())
			if err != nil {
				return err
			}
			if err := o.ControlSchedule(cmd.Context(), args[0], op, reason); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: %s\n", operator.ScheduleID(args[0]), map[string]string{
				"pause": "paused", "resume": "resumed", "trigger": "triggered (see drctl drills)", "delete": "deleted",
			}[op])
			return nil
		},
	}
	if op == "pause" || op == "resume" {
		cmd.Flags().StringVar(&reason, "reason", "", "why (kept in the schedule's note)")
	}
	return cmd
}

// drillsCmd lists past drills from Temporal visibility.
func (a *app) drillsCmd() *cobra.Command {
	var limit int
	cmd := &cobra.Command{
		Use:   "drills [RUNBOOK]",
		Short: "List past drills with outcome and RTO trend (from Temporal visibility)",
		Example: `  drctl drills
  drctl drills site-failover -o json`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return show(a, cmd, func(ctx context.Context, op *operator.Operator) ([]operator.Drill, error) {
				return op.Drills(ctx, optionalArg(args), limit)
			}, printDrills)
		},
	}
	cmd.Flags().IntVar(&limit, "limit", 20, "how many drills")
	return cmd
}

// printDrills prints drills newest first, each passing drill's RTO with
// its change against the previous passing drill of the same runbook, and
// per runbook the RTO's range over the passing drills shown.
func printDrills(w io.Writer, ds []operator.Drill) {
	if len(ds) == 0 {
		fmt.Fprintln(w, "no drills recorded; run one with drctl run FILE --mode drill, or schedule one with drctl drill schedule")
		return
	}
	rows := [][]cell{{plainCell("STARTED"), plainCell("RUNBOOK"), plainCell("OUTCOME"), plainCell("RTO"), plainCell("TREND"), plainCell("RPO"), plainCell("OBJECTIVES"), plainCell("BY"), plainCell("RUN")}}
	for i, d := range ds {
		rto, trend, rpo, met := "-", "", "-", "-"
		if d.RTOMs != nil {
			rto = ms(*d.RTOMs)
			// The previous passing drill of the runbook is further down.
			for _, p := range ds[i+1:] {
				if p.Runbook == d.Runbook && p.RTOMs != nil {
					trend = fmt.Sprintf("%+.0f%%", 100*float64(*d.RTOMs-*p.RTOMs)/float64(max(*p.RTOMs, 1)))
					break
				}
			}
		}
		if d.RPOMs != nil {
			rpo = ms(*d.RPOMs)
		}
		if d.Met != nil {
			met = map[bool]string{true: "met", false: "NOT met"}[*d.Met]
		}
		by := d.StartedBy
		if d.Schedule != "" {
			by = "schedule " + d.Schedule
		}
		outcome := stateCell(d.Outcome)
		if d.Note != "" {
			outcome.text += ": " + d.Note
		}
		rows = append(rows, []cell{plainCell(d.StartedAt.UTC().Format(time.DateTime)), plainCell(d.Runbook), outcome, plainCell(rto), plainCell(trend), plainCell(rpo), plainCell(met), plainCell(by), plainCell(d.WorkflowID)})
	}
	printTable(w, rows)
	byRunbook := map[string][]int64{}
	for _, d := range ds {
		if d.RTOMs != nil {
			byRunbook[d.Runbook] = append(byRunbook[d.Runbook], *d.RTOMs)
		}
	}
	for _, rb := range slices.Sorted(maps.Keys(byRunbook)) {
		v := slices.Clone(byRunbook[rb])
		slices.Sort(v)
		fmt.Fprintf(w, "%s: RTO over %d passing drill(s): min %s, median %s, max %s; latest %s\n", rb, len(v), ms(v[0]), ms(v[len(v)/2]), ms(v[len(v)-1]), ms(byRunbook[rb][0]))
	}
}

func ms(v int64) string { return (time.Duration(v) * time.Millisecond).String() }
