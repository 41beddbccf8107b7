package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/drctl/drctl/tests/internal/benchkit"
)

// table writes the results.
func (b *bench) table(out io.Writer) {
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	defer tw.Flush()
	fmt.Fprintln(tw, "side\trounds\tp50 ms\tmin ms\tmax ms\tp50 ratio\tfence p50\tcatch-up p50\tpromote+verify p50\trest p50\t")
	script := b.samples[sideScript]
	base := benchkit.Percentile(benchkit.Sorted(script, func(s sample) time.Duration { return s.wall }), 50)
	row := func(name string, ss []sample, val func(sample) time.Duration, phases bool) {
		v := benchkit.Sorted(ss, val)
		p50 := benchkit.Percentile(v, 50)
		cols := []string{"-", "-", "-", "-"}
		if phases {
			for i := range 3 {
				cols[i] = p50ms(ss, func(s sample) time.Duration { return s.phases[i] })
			}
			cols[3] = p50ms(ss, sample.rest)
		}
		ratio := "-"
		if base > 0 {
			ratio = fmt.Sprintf("%.2fx", float64(p50)/float64(base))
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%s\t\n", name, len(v), benchkit.MS(p50), benchkit.MS(v[0]), benchkit.MS(v[len(v)-1]), ratio, strings.Join(cols, "\t"))
	}
	row("drctl (wall)", b.samples[sideDrctl], func(s sample) time.Duration { return s.wall }, true)
	row("drctl (report RTO)", b.samples[sideDrctl], func(s sample) time.Duration { return s.rto }, false)
	b.execRow(tw, base)
	row("script (wall)", script, func(s sample) time.Duration { return s.wall }, true)
}

// execRow is the time drctl spent inside its activities, without Temporal.
func (b *bench) execRow(tw io.Writer, base time.Duration) {
	ss := b.samples[sideDrctl]
	v := benchkit.Sorted(ss, sample.execSum)
	p50 := benchkit.Percentile(v, 50)
	ratio := "-"
	if base > 0 {
		ratio = fmt.Sprintf("%.2fx", float64(p50)/float64(base))
	}
	var cols []string
	for i := range 3 {
		cols = append(cols, p50ms(ss, func(s sample) time.Duration { return s.exec[i] }))
	}
	fmt.Fprintf(tw, "drctl (in activities)\t%d\t%s\t%s\t%s\t%s\t%s\t-\t\n", len(v), benchkit.MS(p50), benchkit.MS(v[0]), benchkit.MS(v[len(v)-1]), ratio, strings.Join(cols, "\t"))
}

// p50ms is the median of f over ss, in milliseconds.
func p50ms(ss []sample, f func(sample) time.Duration) string {
	return benchkit.MS(benchkit.Percentile(benchkit.Sorted(ss, f), 50))
}
