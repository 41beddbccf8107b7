package runbooks

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Service-level objectives beyond RTO and RPO: how often the runbook must
// be drilled (drill_every) and what share of the time its readiness
// evaluation must find it ready (readiness: "99.5% over 30d"). Periods are
// written in days or as Go durations, between MinPeriod and MaxPeriod.
const (
	MinPeriod = Duration(time.Hour)
	MaxPeriod = Duration(366 * 24 * time.Hour)
)

// ReadinessObjective is "Target% of the time ready, over Window".
type ReadinessObjective struct {
	Target float64  `json:"target"` // percent, (0, 100)
	Window Duration `json:"window"`
}

func (o ReadinessObjective) String() string {
	return strconv.FormatFloat(o.Target, 'f', -1, 64) + "% over " + FormatPeriod(o.Window)
}

// Budget is the time the runbook may be not ready within the window.
func (o ReadinessObjective) Budget() time.Duration {
	return time.Duration(float64(o.Window) * (100 - o.Target) / 100)
}

var (
	periodDaysRE = regexp.MustCompile(`^([0-9]{1,3})d$`)
	readinessRE  = regexp.MustCompile(`^([0-9]{1,3}(?:\.[0-9]{1,4})?)% over (\S+)$`)
)

// ParsePeriod reads "30d", "7d", "12h" or "720h" (MinPeriod..MaxPeriod).
func ParsePeriod(s string) (Duration, error) {
	var d time.Duration
	if m := periodDaysRE.FindStringSubmatch(s); m != nil {
		n, _ := strconv.Atoi(m[1])
		d = time.Duration(n) * 24 * time.Hour
	} else {
		v, err := time.ParseDuration(s)
		if err != nil {
			return 0, fmt.Errorf("%q is not a period; write days like 30d, or hours like 12h", s)
		}
		d = v
	}
	if Duration(d) < MinPeriod || Duration(d) > MaxPeriod {
		return 0, fmt.Errorf("%q is outside 1h..366d", s)
	}
	return Duration(d), nil
}

// FormatPeriod writes a whole number of days as "30d", anything else as a
// Go duration.
func FormatPeriod(d Duration) string {
	if day := Duration(24 * time.Hour); d > 0 && d%day == 0 {
		return strconv.FormatInt(int64(d/day), 10) + "d"
	}
	return d.String()
}

// ParseReadinessObjective reads "99.5% over 30d".
func ParseReadinessObjective(s string) (ReadinessObjective, error) {
	m := readinessRE.FindStringSubmatch(strings.TrimSpace(s))
	if m == nil {
		return ReadinessObjective{}, fmt.Errorf("%q is not a readiness objective; write a percentage and a window like \"99.5%% over 30d\"", s)
	}
	t, _ := strconv.ParseFloat(m[1], 64)
	if t <= 0 || t >= 100 {
		return ReadinessObjective{}, fmt.Errorf("readiness target %s%% must be above 0%% and below 100%% (100%% leaves no error budget)", m[1])
	}
	w, err := ParsePeriod(m[2])
	if err != nil {
		return ReadinessObjective{}, fmt.Errorf("readiness window: %w", err)
	}
	return ReadinessObjective{Target: t, Window: w}, nil
}
