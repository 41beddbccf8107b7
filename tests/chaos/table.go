package main

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/drctl/drctl/tests/internal/benchkit"
)

// printResults prints the table, each violation and the summary, and
// returns the exit code: 1 if an invariant was violated or a kill point
// not reached.
func printResults(w io.Writer, results []*result) int {
	var base []time.Duration
	for _, r := range results {
		if r.point == nil && r.rto > 0 {
			base = append(base, r.rto)
		}
	}
	baseline := benchkit.Median(base)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "KILL POINT\tIN FLIGHT AT THE KILL\tCOMPLETED\tVIOLATIONS\tRTO\tEXTRA\tCLOSED AFTER\tRETRIED STEPS\tWRITES ACKED/LOST")
	var (
		kills, completed, violations int
		extras                       []time.Duration
	)
	for _, r := range results {
		extra := "-"
		if r.point != nil {
			kills++
			if r.rto > 0 && baseline > 0 {
				r.extraTime = r.rto - baseline
				extras = append(extras, r.extraTime)
				extra = fmtSigned(r.extraTime)
			}
		}
		if r.completed() {
			completed++
		}
		violations += len(r.problems)
		yes := "no"
		if r.completed() {
			yes = "yes"
		}
		retried := strings.Join(r.retried, ", ")
		if retried == "" {
			retried = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\t%d/%d\n", pointName(r.point), r.inFlight, yes, len(r.problems), fmtDur(r.rto), extra, fmtDur(r.open), retried, r.acked, r.lost)
	}
	tw.Flush()
	for _, r := range results {
		for _, p := range r.problems {
			fmt.Fprintf(w, "VIOLATION %s: %s\n", pointName(r.point), p)
		}
		if len(r.problems) > 0 {
			for _, st := range r.steps {
				fmt.Fprintf(w, "    %-18s %-10s attempts %d changed %-5t %s\n", st.ID, st.State, st.Attempts, st.Changed, st.Summary)
			}
		}
	}
	fmt.Fprintln(w)
	sort.Slice(extras, func(i, j int) bool { return extras[i] < extras[j] })
	extraText := "no baseline to compare with"
	if len(extras) > 0 {
		extraText = fmt.Sprintf("median %s, max %s (baseline RTO %s)", fmtDur(benchkit.Median(extras)), fmtDur(extras[len(extras)-1]), fmtDur(baseline))
	}
	fmt.Fprintf(w, "summary: runs %d, kills %d, completed %d of %d, invariant violations %d; extra time per kill: %s\n",
		len(results), kills, completed, len(results), violations, extraText)
	fmt.Fprintln(w, "IN FLIGHT: what the server had pending just after the SIGKILL (started = held by the dead worker). EXTRA: RTO minus the\n"+
		"baseline's. CLOSED AFTER: from the run's start until it closed and released its lock. RETRIED STEPS: steps run more than once,\n"+
		"and whether the attempt that finished changed anything.")
	if violations > 0 || completed < len(results) {
		return 1
	}
	return 0
}

func fmtDur(d time.Duration) string {
	if d == 0 {
		return "-"
	}
	return d.Round(10 * time.Millisecond).String()
}

func fmtSigned(d time.Duration) string {
	if d >= 0 {
		return "+" + d.Round(10*time.Millisecond).String()
	}
	return d.Round(10 * time.Millisecond).String()
}
