package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/drctl/drctl/internal/operator"
	"github.com/drctl/drctl/internal/sitewatch"
	"github.com/drctl/drctl/internal/visible"
	drworker "github.com/drctl/drctl/worker"
	"github.com/drctl/drctl/workflows"
)

// watchSitesCmd runs a site watcher until interrupted.
func (a *app) watchSitesCmd() *cobra.Command {
	var from string
	cmd := &cobra.Command{
		Use:   "watch-sites",
		Short: "Probe every configured site from here and report to the sites' watches, which declare a loss by quorum",
		Long: `Probe every site under sites: (TCP connect, PostgreSQL liveness, HTTP health)
every watch.interval and send this watcher's view of each to the site's watch
workflow. Run one in each site and one at a witness: a site is declared lost
only when watch.quorum places see every probe fail for watch.lost_after; the
watch then proposes the site's on_loss runbook (it stops at its gates). Each
change of view is printed as a line; Ctrl-C stops the watcher.`,
		Example: `  drctl watch-sites --config /etc/drctl/drctl.yaml --from witness`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := a.config()
			if err != nil {
				return err
			}
			cl, err := a.dial(cmd.Context())
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			w, err := sitewatch.New(cfg, cl, sitewatch.Options{
				From:     from,
				Catalog:  drworker.Catalog(),
				OnChange: func(v workflows.SiteView) { fmt.Fprintln(out, viewLine(v)) },
				Logf:     func(format string, args ...any) { fmt.Fprintf(cmd.ErrOrStderr(), format+"\n", args...) },
			})
			if err != nil {
				return err
			}
			place := from
			if place == "" {
				place = cfg.Watch.From
			}
			fmt.Fprintf(out, "watching %s from %s every %s (Ctrl-C stops)\n", strings.Join(w.Sites(), ", "), place, cfg.Watch.Interval)
			return w.Run(cmd.Context())
		},
	}
	cmd.Flags().StringVar(&from, "from", "", "where this watcher stands: a site or witness place (overrides watch.from)")
	return cmd
}

// onLossLine says what a loss of the site proposes.
func onLossLine(st workflows.SiteWatchState) string {
	if st.Runbook == "" {
		return "on loss: nothing proposed (no on_loss runbook)"
	}
	line := "on loss: proposes " + visible.String(st.Runbook)
	if st.AutoApproveAfter > 0 {
		return line + fmt.Sprintf(", auto_approve_after %s (its opted-in gates open if nobody decides)", st.AutoApproveAfter)
	}
	return line + " (people decide at its gates)"
}

// viewLine is one change of a watcher's view.
func viewLine(v workflows.SiteView) string {
	verdict := "up"
	if v.Down {
		verdict = "DOWN"
	}
	line := fmt.Sprintf("%s  %s  %s", v.At.Format(time.RFC3339), visible.String(v.Site), verdict)
	var failed []string
	for _, p := range v.Probes {
		if !p.OK {
			failed = append(failed, visible.String(p.Probe+": "+p.Error))
		}
	}
	if len(failed) > 0 {
		line += fmt.Sprintf("  (%d/%d probes failed: %s)", len(failed), len(v.Probes), strings.Join(failed, "; "))
	}
	return line
}

// sitesCmd shows each site watch's state.
func (a *app) sitesCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "sites [SITE]",
		Short: "Show each watched site: up, lost or back, each place's vote, the last incident and what it proposed",
		Example: `  drctl sites
  drctl sites east -o json`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			asJSON, err := a.jsonOutput()
			if err != nil {
				return err
			}
			cl, err := a.dial(cmd.Context())
			if err != nil {
				return err
			}
			sites, err := sitewatch.List(cmd.Context(), cl, optionalArg(args))
			if err != nil {
				return err
			}
			if asJSON {
				return operator.JSON(cmd.OutOrStdout(), sites)
			}
			if len(sites) == 0 {
				fmt.Fprintln(cmd.OutOrStdout(), "no site watch is running; start watchers with drctl watch-sites")
				return nil
			}
			printSites(cmd.OutOrStdout(), sites, time.Now())
			return nil
		},
	}
	cmd.AddCommand(a.sitesResetCmd())
	return cmd
}

// sitesResetCmd ends a site's watch so the next view restarts it with the
// reporting watcher's configuration.
func (a *app) sitesResetCmd() *cobra.Command {
	var (
		reason string
		force  bool
	)
	cmd := &cobra.Command{
		Use:   "reset SITE",
		Short: "End a site's watch so the next watcher's view starts it again with that watcher's configuration",
		Long: `A site's watch runs with the configuration of the watcher that started it
(quorum, lost_after, places, on_loss); later changes reach it only when it
starts again. Reset terminates the watch, recording who and why; the next view
any watcher sends starts it with that watcher's configuration, so change every
watcher's configuration first. A lost site is refused unless --force: the new
watch would forget the incident and may declare the loss again.`,
		Example: `  drctl sites reset east --reason "quorum 3 with the new witness"`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.config()
			if err != nil {
				return err
			}
			cl, err := a.dial(cmd.Context())
			if err != nil {
				return err
			}
			st, err := sitewatch.Reset(cmd.Context(), cl, args[0], reason, c.Identity, force)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: ended (was %s); the next watcher's view starts it with that watcher's configuration\n", st.WorkflowID, st.State)
			return nil
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why the watch is reset (recorded in its history; required)")
	cmd.Flags().BoolVar(&force, "force", false, "reset even while the site is lost (the incident's state is forgotten)")
	return cmd
}

// printSites writes each site: its state, each place's vote, and its last
// incident.
func printSites(w io.Writer, sites []sitewatch.Status, now time.Time) {
	for i, s := range sites {
		if i > 0 {
			fmt.Fprintln(w)
		}
		head := fmt.Sprintf("%s: %s since %s (quorum %d, incidents %d)", visible.String(s.Site), strings.ToUpper(s.State), s.Since.Local().Format(time.RFC3339), s.Quorum, s.Incidents)
		if s.LosingSince != nil {
			head += fmt.Sprintf("; a quorum sees it down since %s", s.LosingSince.Local().Format(time.RFC3339))
		}
		if s.FromMemo {
			head += " [from its memo: no worker answered]"
		}
		fmt.Fprintln(w, head)
		fmt.Fprintf(w, "  places %s; %s\n", visible.String(strings.Join(s.Places, ", ")), onLossLine(s.SiteWatchState))
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "  PLACE\tWATCHER\tVOTE\tSINCE\tHEARD\tFAILING PROBES")
		for _, v := range s.Votes {
			vote := "up"
			if v.View.Down {
				vote = "down"
			}
			if !v.Fresh {
				vote += " (stale)"
			}
			var failing []string
			for _, p := range v.View.Probes {
				if !p.OK {
					failing = append(failing, p.Probe+": "+p.Error)
				}
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s ago\t%s\n", visible.String(v.View.From), visible.String(v.View.Watcher), vote,
				v.View.Since.Local().Format(time.RFC3339), now.Sub(v.Heard).Round(time.Second), visible.String(strings.Join(failing, "; ")))
		}
		tw.Flush()
		for _, v := range s.Votes {
			if v.Rival != "" {
				fmt.Fprintf(w, "  place %s claimed by %s and %s: one of them stands elsewhere or was copied; give each watcher its own place\n", visible.String(v.View.From), visible.String(v.Rival), visible.String(v.View.Watcher))
			}
			if v.OtherConfig {
				fmt.Fprintf(w, "  %s runs a different configuration than the watch; `drctl sites reset %s` applies it\n", visible.String(v.View.Watcher), visible.String(s.Site))
			}
		}
		if ig := s.Ignored; ig != nil {
			fmt.Fprintf(w, "  ignored %d views from places not in watch.places (latest: from %q by %s)\n", ig.Views, visible.String(ig.From), visible.String(ig.Watcher))
		}
		if n := len(s.Recent); n > 0 {
			inc := s.Recent[n-1]
			line := fmt.Sprintf("  last incident %s declared %s: ", inc.ID, inc.DeclaredAt.Local().Format(time.RFC3339))
			if inc.RunID != "" {
				line += fmt.Sprintf("proposed %s (lock %s; drctl status %s)", inc.WorkflowID, inc.Lock, inc.Lock)
			} else {
				line += "not proposed: " + visible.String(inc.NotProposed)
			}
			if inc.BackAt != nil {
				line += fmt.Sprintf("; back %s (failback is manual)", inc.BackAt.Local().Format(time.RFC3339))
			}
			fmt.Fprintln(w, line)
		}
	}
}
