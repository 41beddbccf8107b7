package tests

import (
	"context"
	"encoding/json"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	temporalotel "go.temporal.io/sdk/contrib/opentelemetry"
	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/testsuite"
	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/drctl/drctl/activities"
	"github.com/drctl/drctl/internal/config"
	"github.com/drctl/drctl/internal/devserver"
	"github.com/drctl/drctl/internal/telemetry"
	"github.com/drctl/drctl/internal/testwait"
	"github.com/drctl/drctl/worker"
	"github.com/drctl/drctl/workflows"
)

const metricsRunbook = `apiVersion: drctl/v1
name: metrics-e2e
lock: metrics-e2e
objectives: {rto: 5m, rpo: 30s}
steps:
  - id: announce
    action: note
    with: {message: "failing over"}
  - id: go-ahead
    needs: [announce]
    approval:
      approvers: [bob]
  - id: switch
    needs: [go-ahead]
    action: note
    with: {message: "switched"}
  - id: done
    needs: [switch]
    action: note
    with: {message: "done"}
`

// TestMetricsScrapedDuringARun: a worker configured with
// telemetry.metrics: prometheus on a picked loopback port serves /metrics;
// scraped while the run waits at its gate and again once it has ended, it
// shows the run started, the gate waiting, then the run finished, one step
// duration per action step, the RTO beside its objective, and the SDK's own
// temporal_* metrics with buckets in seconds.
func TestMetricsScrapedDuringARun(t *testing.T) {
	ctx := testwait.Context(t)
	srv := startServer(t, devserver.Options{})
	c := testConfig(t, srv)
	url := startMetricsWorker(t, c, nil)

	rb := loadRunbook(t, nil, writeRunbook(t, metricsRunbook))
	if _, err := operatorAs(srv, c, "alice").Start(ctx, rb, nil, workflows.ModeFailover, "metrics test"); err != nil {
		t.Fatal(err)
	}
	run := map[string]string{"runbook": "metrics-e2e"}
	var during map[string]*dto.MetricFamily
	testwait.For(t, "the gate to show as waiting on /metrics", func() bool {
		during = scrape(t, url)
		v, ok := value(during, "drctl_approvals_waiting", run)
		return ok && v == 1
	})
	if v, _ := value(during, "drctl_runs_started_total", map[string]string{"runbook": "metrics-e2e", "mode": "failover"}); v != 1 {
		t.Errorf("during the run: drctl_runs_started_total = %v, want 1", v)
	}
	if _, ok := value(during, "drctl_runs_finished_total", run); ok {
		t.Errorf("during the run: a finished run is counted")
	}
	if n := histogramCount(during, "drctl_step_duration_seconds", run); n != 1 {
		t.Errorf("during the run: %d step durations, want 1 (announce)", n)
	}

	if _, err := operatorAs(srv, c, "bob").Decide(ctx, "metrics-e2e", "go-ahead", true, "looks good"); err != nil {
		t.Fatal(err)
	}
	rep, err := operatorAs(srv, c, "test").Wait(ctx, "metrics-e2e")
	if err != nil || rep.State != workflows.StateSucceeded || rep.RTO == nil {
		t.Fatalf("run: %+v, %v; want it succeeded with an RTO", rep, err)
	}
	var after map[string]*dto.MetricFamily
	// drctl counts the run as it ends; the SDK counts the workflow once
	// its last task completed, a moment later.
	testwait.For(t, "the finished run and workflow on /metrics", func() bool {
		after = scrape(t, url)
		_, ok := value(after, "drctl_runs_finished_total", run)
		_, sdk := after["temporal_workflow_completed_total"]
		return ok && sdk
	})
	for _, tc := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"drctl_runs_started_total", map[string]string{"runbook": "metrics-e2e", "mode": "failover"}, 1},
		{"drctl_runs_finished_total", map[string]string{"runbook": "metrics-e2e", "mode": "failover", "outcome": "succeeded"}, 1},
		{"drctl_objective_rto_seconds", run, 300},
		{"drctl_objective_rpo_seconds", run, 30},
		{"drctl_approvals_waiting", run, 0},
	} {
		if v, ok := value(after, tc.name, tc.labels); !ok || v != tc.want {
			t.Errorf("after the run: %s%v = %v (present %t), want %v", tc.name, tc.labels, v, ok, tc.want)
		}
	}
	if v, ok := value(after, "drctl_run_rto_seconds", map[string]string{"runbook": "metrics-e2e", "mode": "failover"}); !ok || v <= 0 || v != rep.RTO.D().Seconds() {
		t.Errorf("drctl_run_rto_seconds = %v (present %t); want the report's RTO %s", v, ok, rep.RTO)
	}
	if n := histogramCount(after, "drctl_step_duration_seconds", map[string]string{"runbook": "metrics-e2e", "action": "note", "outcome": "succeeded"}); n != 3 {
		t.Errorf("%d step durations of succeeded note steps, want 3 (the gate is not an action step)", n)
	}
	if n := histogramCount(after, "drctl_step_duration_seconds", run); n != 3 {
		t.Errorf("%d step durations in all, want 3", n)
	}
	if fam, ok := after["temporal_workflow_completed_total"]; !ok || fam.GetType() != dto.MetricType_COUNTER {
		t.Errorf("the SDK's temporal_workflow_completed_total is missing or not a counter: %v", fam)
	}
	if b := bucketBounds(after, "temporal_activity_execution_latency_seconds"); len(b) == 0 || b[0] != 0.005 {
		t.Errorf("temporal_activity_execution_latency_seconds buckets %v; want the seconds buckets from 0.005", b)
	}
	body := scrapeText(t, url)
	for _, line := range strings.Split(body, "\n") {
		if strings.HasPrefix(line, "drctl_") && !strings.Contains(line, "_bucket{") {
			t.Logf("scraped: %s", line)
		}
	}
}

// startMetricsWorker starts a worker configured with telemetry.metrics:
// prometheus on a picked loopback port, holding secrets (nil: none), and
// returns its /metrics URL. It is stopped when t ends.
func startMetricsWorker(t *testing.T, c config.Config, secrets worker.Secrets) string {
	t.Helper()
	ctx := testwait.Context(t)
	c.Telemetry.Metrics, c.Telemetry.MetricsListen = "prometheus", "127.0.0.1:0"
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	tel, err := telemetry.Setup(ctx, c.Telemetry)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tel.Shutdown(context.Background()) })
	w, err := worker.Start(ctx, c, worker.Options{Dial: worker.DialOptions{Telemetry: tel}, Secrets: secrets})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := w.Stop(); err != nil {
			t.Errorf("stop worker: %v", err)
		}
	})
	if _, port, _ := net.SplitHostPort(w.MetricsAddr); port == "" || port == "0" {
		t.Fatalf("Serving.MetricsAddr = %q; want the picked host:port", w.MetricsAddr)
	}
	return "http://" + w.MetricsAddr + "/metrics"
}

// TestMetricsListenTakenIsAStartupError: a metrics address the worker
// cannot listen on stops Serve before it dials, with an error naming the
// setting.
func TestMetricsListenTakenIsAStartupError(t *testing.T) {
	ctx := testwait.Context(t)
	held, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	c := config.Defaults()
	c.Temporal.Address = "127.0.0.1:1" // never dialled
	c.Telemetry.Metrics, c.Telemetry.MetricsListen = "prometheus", held.Addr().String()
	tel, err := telemetry.Setup(ctx, c.Telemetry)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tel.Shutdown(ctx) }()
	err = worker.Serve(ctx, c, worker.Options{Dial: worker.DialOptions{Telemetry: tel}})
	want := "serve metrics on telemetry.metrics_listen " + held.Addr().String()
	if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "address already in use") {
		t.Fatalf("Serve: %v; want an error starting %q that says the address is in use", err, want)
	}
}

// TestMetricsReadinessChecksRecover: a check reported failing is 1; once a
// later verdict no longer lists it, it is 0 again rather than stuck at 1.
func TestMetricsReadinessChecksRecover(t *testing.T) {
	tel, err := telemetry.Setup(context.Background(), config.Telemetry{Metrics: "prometheus"})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tel.Shutdown(context.Background()) }()
	var suite testsuite.WorkflowTestSuite
	suite.SetMetricsHandler(tel.Metrics)
	verdicts := func(ctx workflow.Context) error {
		workflows.MetricReadiness(ctx, "readiness-e2e", false, []string{"standby-streaming", "dns-ttl"})
		workflows.MetricReadiness(ctx, "readiness-e2e", false, []string{"dns-ttl"})
		workflows.MetricReplicationLag(ctx, "readiness-e2e", "db", 0.25)
		return nil
	}
	env := suite.NewTestWorkflowEnvironment()
	env.ExecuteWorkflow(verdicts)
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	got := parse(t, serve(t, tel.MetricsHTTP))
	check := func(name string, labels map[string]string, want float64) {
		t.Helper()
		if v, ok := value(got, name, labels); !ok || v != want {
			t.Errorf("%s%v = %v (present %t), want %v", name, labels, v, ok, want)
		}
	}
	rb := map[string]string{"runbook": "readiness-e2e"}
	check("drctl_readiness", rb, 0)
	check("drctl_readiness_check_failing", map[string]string{"runbook": "readiness-e2e", "check": "standby-streaming"}, 0)
	check("drctl_readiness_check_failing", map[string]string{"runbook": "readiness-e2e", "check": "dns-ttl"}, 1)
	check("drctl_replication_lag_seconds", map[string]string{"runbook": "readiness-e2e", "target": "db"}, 0.25)

	env = suite.NewTestWorkflowEnvironment()
	env.ExecuteWorkflow(func(ctx workflow.Context) error {
		workflows.MetricReadiness(ctx, "readiness-e2e", true, nil)
		return nil
	})
	got = parse(t, serve(t, tel.MetricsHTTP))
	check("drctl_readiness", rb, 1)
	check("drctl_readiness_check_failing", map[string]string{"runbook": "readiness-e2e", "check": "dns-ttl"}, 0)
}

// TestTracesStepSpan: the span the tracing interceptor opens for a step's
// activity carries the runbook, step and action.
func TestTracesStepSpan(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	defer func() { _ = tp.Shutdown(context.Background()) }()
	tracing, err := temporalotel.NewTracingInterceptor(temporalotel.TracerOptions{Tracer: tp.Tracer("drctl")})
	if err != nil {
		t.Fatal(err)
	}
	reg, err := worker.Actions(config.Defaults())
	if err != nil {
		t.Fatal(err)
	}
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestActivityEnvironment()
	env.SetWorkerOptions(sdkworker.Options{Interceptors: []interceptor.WorkerInterceptor{tracing}})
	reg.RegisterActivities(env)
	req := activities.Request{
		Run:  activities.Run{WorkflowID: "drctl-site", RunID: "r1", Lock: "site", Mode: workflows.ModeDrill, Runbook: "site-failover"},
		Step: "announce", Action: "note", With: map[string]any{"message": "hello"},
	}
	if _, err := env.ExecuteActivity("note", req); err != nil {
		t.Fatal(err)
	}
	var attrs map[string]string
	for _, span := range rec.Ended() {
		if span.Name() == "RunActivity:note" {
			attrs = map[string]string{}
			for _, kv := range span.Attributes() {
				attrs[string(kv.Key)] = kv.Value.String()
			}
		}
	}
	want := map[string]string{"drctl.runbook": "site-failover", "drctl.step": "announce", "drctl.action": "note", "drctl.mode": "drill", "drctl.lock": "site", "drctl.compensating": "false"}
	for k, v := range want {
		if attrs[k] != v {
			t.Errorf("span RunActivity:note: %s = %q, want %q (attributes %v)", k, attrs[k], v, attrs)
		}
	}
}

// TestMetricsDashboardUsesDrctlMetrics: every metric the shipped Grafana
// dashboard queries is one drctl exports, and every one drctl exports has
// a panel.
func TestMetricsDashboardUsesDrctlMetrics(t *testing.T) {
	b, err := os.ReadFile("../deploy/grafana/drctl.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash any
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("deploy/grafana/drctl.json: %v", err)
	}
	var exprs []string
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for _, k := range slices.Sorted(maps.Keys(v)) {
				if s, ok := v[k].(string); ok && k == "expr" {
					exprs = append(exprs, s)
				}
				walk(v[k])
			}
		case []any:
			for _, e := range v {
				walk(e)
			}
		}
	}
	walk(dash)
	if len(exprs) == 0 {
		t.Fatal("the dashboard has no queries")
	}
	defined := workflows.MetricNames()
	used := map[string]bool{}
	name := regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*`)
	metric := regexp.MustCompile(`^drctl_[a-z_]+$`)
	for _, e := range exprs {
		if strings.Contains(e, "temporal_") || strings.Contains(e, "go_") || strings.Contains(e, "process_") {
			t.Errorf("query %q uses a metric that is not drctl's own", e)
		}
		for _, n := range name.FindAllString(e, -1) {
			if !metric.MatchString(n) {
				continue
			}
			base := n
			for _, suffix := range []string{"_bucket", "_count", "_sum"} {
				if b, ok := strings.CutSuffix(n, suffix); ok && slices.Contains(defined, b) {
					base = b
				}
			}
			if !slices.Contains(defined, base) {
				t.Errorf("query %q uses %s, which drctl does not export (it exports %s)", e, n, strings.Join(defined, ", "))
			}
			used[base] = true
		}
	}
	for _, d := range defined {
		if !used[d] {
			t.Errorf("no panel shows %s", d)
		}
	}
}

func scrapeText(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("scrape %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape %s: %s %v\n%s", url, resp.Status, err, b)
	}
	return string(b)
}

func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	return parse(t, scrapeText(t, url))
}

func serve(t *testing.T, h http.Handler) string {
	t.Helper()
	srv := &http.Server{Handler: h}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	return scrapeText(t, "http://"+ln.Addr().String()+"/metrics")
}

func parse(t *testing.T, text string) map[string]*dto.MetricFamily {
	t.Helper()
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		t.Fatalf("parse /metrics: %v\n%s", err, text)
	}
	return fams
}

// matches reports whether m carries every label of want.
func matches(m *dto.Metric, want map[string]string) bool {
	n := 0
	for _, l := range m.GetLabel() {
		if v, ok := want[l.GetName()]; ok {
			if v != l.GetValue() {
				return false
			}
			n++
		}
	}
	return n == len(want)
}

// value sums the counter or gauge series of name that carry labels.
func value(fams map[string]*dto.MetricFamily, name string, labels map[string]string) (float64, bool) {
	fam, ok := fams[name]
	if !ok {
		return 0, false
	}
	sum, found := 0.0, false
	for _, m := range fam.GetMetric() {
		if !matches(m, labels) {
			continue
		}
		found = true
		switch {
		case m.Counter != nil:
			sum += m.GetCounter().GetValue()
		case m.Gauge != nil:
			sum += m.GetGauge().GetValue()
		}
	}
	return sum, found
}

// histogramCount sums the observation counts of name's series that carry
// labels.
func histogramCount(fams map[string]*dto.MetricFamily, name string, labels map[string]string) uint64 {
	var n uint64
	for _, m := range fams[name].GetMetric() {
		if matches(m, labels) {
			n += m.GetHistogram().GetSampleCount()
		}
	}
	return n
}

// bucketBounds are the upper bounds of the first series of histogram name.
func bucketBounds(fams map[string]*dto.MetricFamily, name string) []float64 {
	ms := fams[name].GetMetric()
	if len(ms) == 0 {
		return nil
	}
	var b []float64
	for _, bk := range ms[0].GetHistogram().GetBucket() {
		b = append(b, bk.GetUpperBound())
	}
	return b
}
