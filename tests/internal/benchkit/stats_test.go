package benchkit

import (
	"testing"
	"time"
)

func TestPercentileAndMedian(t *testing.T) {
	ms := func(ns ...int) []time.Duration {
		out := make([]time.Duration, len(ns))
		for i, n := range ns {
			out[i] = time.Duration(n) * time.Millisecond
		}
		return out
	}
	d := ms(1, 2, 3, 4, 5, 6, 7, 8, 9, 10)
	for _, tc := range []struct {
		p    int
		want time.Duration
	}{{50, 5 * time.Millisecond}, {95, 10 * time.Millisecond}, {0, time.Millisecond}, {100, 10 * time.Millisecond}} {
		if got := Percentile(d, tc.p); got != tc.want {
			t.Errorf("Percentile(1..10ms, %d) = %s, want %s", tc.p, got, tc.want)
		}
	}
	if got := Percentile(nil, 50); got != 0 {
		t.Errorf("Percentile(nil) = %s, want 0", got)
	}
	if got := Median(ms(4, 1, 3, 2)); got != 2500*time.Microsecond {
		t.Errorf("Median(4,1,3,2 ms) = %s, want 2.5ms", got)
	}
	if got := Median(ms(3, 1, 2)); got != 2*time.Millisecond {
		t.Errorf("Median(3,1,2 ms) = %s, want 2ms", got)
	}
	if got := MS(1234567 * time.Nanosecond); got != "1.2" {
		t.Errorf("MS(1.234567ms) = %q", got)
	}
}
