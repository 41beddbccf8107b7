package runbooks_test

import (
	"strings"
	"testing"
	"time"

	"github.com/drctl/drctl/runbooks"
)

func TestParsePeriodAndReadinessObjective(t *testing.T) {
	for in, want := range map[string]time.Duration{"30d": 30 * 24 * time.Hour, "1d": 24 * time.Hour, "12h": 12 * time.Hour, "366d": 366 * 24 * time.Hour} {
		if got, err := runbooks.ParsePeriod(in); err != nil || got.D() != want {
			t.Errorf("%s: %v %v", in, got, err)
		}
	}
	for _, bad := range []string{"367d", "30m", "-1d", "1w", "", "1e9d", "30 d"} {
		if _, err := runbooks.ParsePeriod(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	o, err := runbooks.ParseReadinessObjective("99.5% over 30d")
	if err != nil || o.Target != 99.5 || o.Window.D() != 30*24*time.Hour || o.Budget() != 3*time.Hour+36*time.Minute || o.String() != "99.5% over 30d" {
		t.Errorf("99.5%% over 30d: %+v (budget %s) %v", o, o.Budget(), err)
	}
	for bad, why := range map[string]string{
		"100% over 30d": "below 100%", "0% over 30d": "above 0%", "99.5%": "write a percentage and a window",
		"99.5% over 400d": "outside 1h..366d", "abc": "not a readiness objective",
	} {
		if _, err := runbooks.ParseReadinessObjective(bad); err == nil || !strings.Contains(err.Error(), why) {
			t.Errorf("%q: %v, want %q", bad, err, why)
		}
	}
}
