package operator

import (
	"strings"
	"testing"
	"time"
)

// TestDrillSpecBounds: a drill schedule fires at most hourly, whichever way
// it is written.
func TestDrillSpecBounds(t *testing.T) {
	for _, ok := range []string{"0 3 * * MON", "15 */2 * * *", "@daily", "@weekly", "59 23 L * *"} {
		if _, _, err := drillSpec(0, ok); err != nil {
			t.Errorf("--cron %q refused: %v", ok, err)
		}
	}
	for _, bad := range []string{"* * * * *", "*/5 * * * *", "0,30 * * * *", "0-59 * * * *", "@hourly", "@every 1m", "0 3 * *", "0 3 * * MON; rm", "60 * * * *"} {
		if _, _, err := drillSpec(0, bad); err == nil {
			t.Errorf("--cron %q accepted", bad)
		}
	}
	for d, ok := range map[time.Duration]bool{time.Hour: true, 168 * time.Hour: true, time.Minute: false, 367 * 24 * time.Hour: false} {
		if _, _, err := drillSpec(d, ""); (err == nil) != ok {
			t.Errorf("--every %s: %v", d, err)
		}
	}
	if _, _, err := drillSpec(time.Hour, "0 3 * * MON"); err == nil || !strings.Contains(err.Error(), "not both") {
		t.Errorf("both: %v", err)
	}
}
