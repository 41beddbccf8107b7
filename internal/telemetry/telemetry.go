// Package telemetry wires OpenTelemetry into the Temporal client: a tracing
// interceptor (spans for workflow starts, updates, signals, activities) and
// a metrics handler for the SDK's metrics and drctl's own (which workflow
// code emits through the same handler). Both are off unless configured;
// when off, nothing is exported. No global provider or registry is ever
// touched: "prometheus" metrics live on a registry of their own, served by
// the handler Setup returns.
package telemetry

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetricgrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/exporters/stdout/stdoutmetric"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.temporal.io/sdk/client"
	temporalotel "go.temporal.io/sdk/contrib/opentelemetry"
	"go.temporal.io/sdk/interceptor"

	"github.com/drctl/drctl/internal/config"
)

// Wiring is what the Temporal client needs from telemetry.
type Wiring struct {
	Interceptors []interceptor.ClientInterceptor
	Metrics      client.MetricsHandler // nil when metrics are off
	// MetricsHTTP answers a Prometheus scrape (text format) with every
	// metric of Metrics, plus the Go runtime's and the process's, when
	// metrics are "prometheus"; nil otherwise. worker.Serve serves it at
	// /metrics on telemetry.metrics_listen while the worker runs.
	MetricsHTTP http.Handler
	// Shutdown flushes and stops exporters; call it once on exit.
	Shutdown func(context.Context) error
}

// Setup builds the configured exporters.
func Setup(ctx context.Context, c config.Telemetry) (Wiring, error) {
	w := Wiring{Shutdown: func(context.Context) error { return nil }}
	var shutdowns []func(context.Context) error

	switch c.Traces {
	case "", "none":
	case "stdout", "otlp":
		var exp sdktrace.SpanExporter
		var err error
		if c.Traces == "stdout" {
			exp, err = stdouttrace.New(stdouttrace.WithWriter(os.Stderr))
		} else {
			opts := []otlptracegrpc.Option{}
			if c.OTLPEndpoint != "" {
				opts = append(opts, otlptracegrpc.WithEndpoint(c.OTLPEndpoint))
			}
			if c.Insecure {
				opts = append(opts, otlptracegrpc.WithInsecure())
			}
			exp, err = otlptracegrpc.New(ctx, opts...)
		}
		if err != nil {
			return w, fmt.Errorf("telemetry traces (%s): %w", c.Traces, err)
		}
		tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp))
		shutdowns = append(shutdowns, tp.Shutdown)
		ti, err := temporalotel.NewTracingInterceptor(temporalotel.TracerOptions{Tracer: tp.Tracer("drctl")})
		if err != nil {
			return w, fmt.Errorf("telemetry tracing interceptor: %w", err)
		}
		w.Interceptors = append(w.Interceptors, ti)
	default:
		return w, fmt.Errorf("telemetry.traces is %q; use none, stdout or otlp", c.Traces)
	}

	switch c.Metrics {
	case "", "none":
	case "stdout", "otlp", "prometheus":
		reader, scrape, err := metricReader(ctx, c)
		if err != nil {
			return w, fmt.Errorf("telemetry metrics (%s): %w", c.Metrics, err)
		}
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader), sdkmetric.WithView(secondsHistograms))
		shutdowns = append(shutdowns, mp.Shutdown)
		w.Metrics = temporalotel.NewMetricsHandler(temporalotel.MetricsHandlerOptions{
			Meter:   mp.Meter("drctl"),
			OnError: func(error) {}, // a metrics failure must never take a failover down
			// Counters only count up (runs started, requests made): export
			// them as monotonic sums, so Prometheus sees counters
			// (drctl_runs_started_total) that rate() and increase() read.
			UseMonotonicCounters: true,
		})
		w.MetricsHTTP = scrape
	default:
		return w, fmt.Errorf("telemetry.metrics is %q; use none, stdout, otlp or prometheus", c.Metrics)
	}

	w.Shutdown = func(ctx context.Context) error {
		var errs []error
		for _, s := range shutdowns {
			errs = append(errs, s(ctx))
		}
		return errors.Join(errs...)
	}
	return w, nil
}

// secondsBuckets are the histogram bucket bounds, in seconds, of every
// duration drctl exports (drctl_step_duration_seconds and the SDK's
// latencies): from a 5 ms in-process step to an hour-long wait. The OTel
// default bounds (0, 5, 10, ... 10000) suit milliseconds, not seconds.
var secondsBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600}

// secondsHistograms gives every histogram measured in seconds (the
// Temporal handler's timers all are) secondsBuckets.
var secondsHistograms = sdkmetric.NewView(
	sdkmetric.Instrument{Kind: sdkmetric.InstrumentKindHistogram, Unit: "s"},
	sdkmetric.Stream{Aggregation: sdkmetric.AggregationExplicitBucketHistogram{Boundaries: secondsBuckets}},
)

// metricReader builds the reader of the configured metrics exporter and,
// for "prometheus", the handler a scrape reads it through.
func metricReader(ctx context.Context, c config.Telemetry) (sdkmetric.Reader, http.Handler, error) {
	switch c.Metrics {
	case "prometheus":
		// A registry of this Setup's own: two workers in one process (tests)
		// never collide, and nothing registers on the global default.
		reg := prometheus.NewRegistry()
		if err := reg.Register(collectors.NewGoCollector()); err != nil {
			return nil, nil, err
		}
		if err := reg.Register(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})); err != nil {
			return nil, nil, err
		}
		exp, err := otelprom.New(otelprom.WithRegisterer(reg), otelprom.WithoutScopeInfo())
		if err != nil {
			return nil, nil, err
		}
		// A metric that fails to collect is left out of the answer, not
		// allowed to fail the whole scrape.
		return exp, promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError}), nil
	case "stdout":
		exp, err := stdoutmetric.New(stdoutmetric.WithWriter(os.Stderr))
		if err != nil {
			return nil, nil, err
		}
		return sdkmetric.NewPeriodicReader(exp, sdkmetric.WithInterval(30*time.Second)), nil, nil
	default: // otlp
		opts := []otlpmetricgrpc.Option{}
		if c.OTLPEndpoint != "" {
			opts = append(opts, otlpmetricgrpc.WithEndpoint(c.OTLPEndpoint))
		}
		if c.Insecure {
			opts = append(opts, otlpmetricgrpc.WithInsecure())
		}
		exp, err := otlpmetricgrpc.New(ctx, opts...)
		if err != nil {
			return nil, nil, err
		}
		return sdkmetric.NewPeriodicReader(exp, sdkmetric.WithInterval(30*time.Second)), nil, nil
	}
}
