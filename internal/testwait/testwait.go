// Package testwait is the one rule for tests that wait on real components
// (servers, processes, workflows): wait for a condition, never for a time,
// and give up only after a bound meant for a 2-core machine running other
// work beside the tests, then say what was waited for and for how long.
//
// A condition on a healthy system holds in milliseconds to seconds; the
// bound matters only when something is broken, so it costs nothing to make
// it generous. Speed targets live in benchmarks, never in these bounds.
package testwait

import (
	"context"
	"testing"
	"time"
)

// Bound is how long a test waits for any one thing (a server to start, a
// standby to stream, a run to finish) or runs a whole real-component test.
// Measured: the slowest such wait on an idle machine is ~20 s (a dev
// server's first start); under `stress-ng --cpu 2` it is 2–4x that.
const Bound = 3 * time.Minute

// Context is a context bounded by Bound, cancelled when t ends.
func Context(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), Bound)
	t.Cleanup(cancel)
	return ctx
}

// For polls cond every 20 ms until it holds, and fails t after Bound.
func For(t testing.TB, what string, cond func() bool) {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > Bound {
			t.Fatalf("waited %s for %s; it never held", time.Since(start).Round(time.Millisecond), what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
