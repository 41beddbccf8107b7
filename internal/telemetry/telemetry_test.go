package telemetry_test

import (
	"context"
	"strings"
	"testing"

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
}
