package telemetry_test

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/drctl/drctl/internal/config"
	"github.com/drctl/drctl/internal/telemetry"
)

func TestSetup(t *testing.T) {
	ctx := context.Background()
	off, err := telemetry.Setup(ctx, config.Telemetry{})
	if err != nil || len(off.Interceptors) != 0 || off.Metrics != nil {
		t.Fatalf("default: %+v %v; want nothing wired", off, err)
	}
	on, err := telemetry.Setup(ctx, config.Telemetry{Traces: "stdout", Metrics: "stdout"})
	if err != nil || len(on.Interceptors) != 1 || on.Metrics == nil {
		t.Fatalf("stdout: %+v %v; want the tracing interceptor and a metrics handler", on, err)
	}
	if err := on.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if _, err := telemetry.Setup(ctx, config.Telemetry{Traces: "jaeger"}); err == nil || !strings.Contains(err.Error(), `"jaeger"; use none, stdout or otlp`) {
		t.Fatalf("bad exporter: %v", err)
	}
	if _, err := telemetry.Setup(ctx, config.Telemetry{Metrics: "statsd"}); err == nil || !strings.Contains(err.Error(), `"statsd"; use none, stdout, otlp or prometheus`) {
		t.Fatalf("bad metrics exporter: %v", err)
	}
}

// TestPrometheus: "prometheus" metrics are served by the handler Setup
// returns, from a registry of that Setup's own (two in one process do not
// collide): counters as Prometheus counters, timers as histograms in
// seconds with buckets in seconds, the Go runtime's metrics beside them.
func TestPrometheus(t *testing.T) {
	ctx := context.Background()
	var scrapes []string
	for range 2 {
		w, err := telemetry.Setup(ctx, config.Telemetry{Metrics: "prometheus"})
		if err != nil || w.Metrics == nil || w.MetricsHTTP == nil {
			t.Fatalf("prometheus: %+v %v; want a metrics handler and a scrape handler", w, err)
		}
		h := w.Metrics.WithTags(map[string]string{"runbook": "site-failover"})
		h.Counter("drctl_test_runs_total").Inc(1)
		h.Timer("drctl_test_duration_seconds").Record(300 * time.Millisecond)
		h.Gauge("drctl_test_rto_seconds").Update(1.5)
		rec := httptest.NewRecorder()
		w.MetricsHTTP.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
		if rec.Code != 200 {
			t.Fatalf("scrape: %d %s", rec.Code, rec.Body)
		}
		scrapes = append(scrapes, rec.Body.String())
		if err := w.Shutdown(ctx); err != nil {
			t.Fatalf("shutdown: %v", err)
		}
	}
	for i, body := range scrapes {
		for _, want := range []string{
			"# TYPE drctl_test_runs_total counter\n",
			`drctl_test_runs_total{runbook="site-failover"} 1` + "\n",
			"# TYPE drctl_test_duration_seconds histogram\n",
			`drctl_test_duration_seconds_bucket{runbook="site-failover",le="0.25"} 0` + "\n",
			`drctl_test_duration_seconds_bucket{runbook="site-failover",le="0.5"} 1` + "\n",
			`drctl_test_duration_seconds_count{runbook="site-failover"} 1` + "\n",
			`drctl_test_rto_seconds{runbook="site-failover"} 1.5` + "\n",
			"go_goroutines ",
		} {
			if !strings.Contains(body, want) {
				t.Errorf("scrape %d lacks %q:\n%s", i+1, want, body)
			}
		}
		if strings.Contains(body, "_seconds_seconds") || strings.Contains(body, "otel_scope_name") {
			t.Errorf("scrape %d has a doubled unit or scope labels:\n%s", i+1, body)
		}
	}
}
