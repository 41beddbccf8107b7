package benchkit

import (
	"slices"
	"strconv"
	"time"
)

// Percentile is the nearest-rank p-th percentile of sorted d (0 when d is
// empty).
func Percentile(sorted []time.Duration, p int) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := (p*len(sorted)+99)/100 - 1
	return sorted[max(i, 0)]
}

// Median is the median of d, the mean of the middle two when their number
// is even (0 when d is empty). d need not be sorted.
func Median(d []time.Duration) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Sorted(slices.Values(d))
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// Sorted is f of every element of xs, sorted.
func Sorted[T any](xs []T, f func(T) time.Duration) []time.Duration {
	out := make([]time.Duration, 0, len(xs))
	for _, x := range xs {
		out = append(out, f(x))
	}
	slices.Sort(out)
	return out
}

// MS is d in milliseconds with one decimal.
func MS(d time.Duration) string {
	return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 1, 64)
}
