// Package telemetry wires OpenTelemetry into the Temporal client: a tracing
// interceptor (spans for workflow starts, updates, signals, activities) and
// a metrics handler for the SDK's metrics. Both are off unless configured;
// when off, nothing is exported and no global provider is touched.
package telemetry

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetricgrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
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
	case "stdout", "otlp":
		var exp sdkmetric.Exporter
		var err error
		if c.Metrics == "stdout" {
			exp, err = stdoutmetric.New(stdoutmetric.WithWriter(os.Stderr))
		} else {
			opts := []otlpmetricgrpc.Option{}
			if c.OTLPEndpoint != "" {
				opts = append(opts, otlpmetricgrpc.WithEndpoint(c.OTLPEndpoint))
			}
			if c.Insecure {
				opts = append(opts, otlpmetricgrpc.WithInsecure())
			}
			exp, err = otlpmetricgrpc.New(ctx, opts...)
		}
		if err != nil {
			return w, fmt.Errorf("telemetry metrics (%s): %w", c.Metrics, err)
		}
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewPeriodicReader(exp, sdkmetric.WithInterval(30*time.Second))))
		shutdowns = append(shutdowns, mp.Shutdown)
		w.Metrics = temporalotel.NewMetricsHandler(temporalotel.MetricsHandlerOptions{
			Meter:   mp.Meter("drctl"),
			OnError: func(error) {}, // a metrics failure must never take a failover down
		})
	default:
		return w, fmt.Errorf("telemetry.metrics is %q; use none, stdout or otlp", c.Metrics)
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
