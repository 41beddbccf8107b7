package worker

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"
	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/drctl/drctl/activities"
	"github.com/drctl/drctl/activities/dns"
	"github.com/drctl/drctl/activities/note"
	"github.com/drctl/drctl/activities/postgres"
	"github.com/drctl/drctl/activities/slack"
	"github.com/drctl/drctl/activities/traffic"
	"github.com/drctl/drctl/activities/web"
	"github.com/drctl/drctl/activities/webhook"
	"github.com/drctl/drctl/internal/config"
	"github.com/drctl/drctl/internal/telemetry"
	"github.com/drctl/drctl/runbooks"
	"github.com/drctl/drctl/workflows"
)

// Providers are the configured providers the actions use.
type Providers struct {
	Postgres *postgres.Provider
	Traffic  *traffic.Provider
	DNS      *dns.Provider
	// Notifier posts run progress and approval requests (Slack); when Slack
	// is not configured it does nothing, but it is always registered, since
	// the interpreter always calls it.
	Notifier *slack.Notifier
	// Webhook posts readiness changes; with no URL it does nothing, and is
	// registered all the same (the readiness record always calls it).
	Webhook *webhook.Poster
}

// DefaultProviders configures the providers from cfg. It fails when a
// configured secret (the Slack bot token) cannot be read.
func DefaultProviders(cfg config.Config) (Providers, error) {
	n, err := slack.New(cfg.Slack, slack.Options{})
	if err != nil {
		return Providers{}, err
	}
	hook := &webhook.Poster{URL: cfg.Readiness.WebhookURL}
	if hook.URL != "" {
		secret, err := cfg.Readiness.WebhookSecret.Read()
		if err != nil {
			return Providers{}, fmt.Errorf("readiness.webhook_secret: %w", err)
		}
		hook.Secret = []byte(secret)
	}
	return Providers{Postgres: &postgres.Provider{}, Traffic: &traffic.Provider{}, DNS: &dns.Provider{}, Notifier: n, Webhook: hook}, nil
}

// Catalog returns every action this build ships, for checking runbooks
// (validate, schema, plan, run): it reads no configuration and no secret,
// so loading a runbook never depends on the worker's credentials.
func Catalog() runbooks.Catalog {
	reg, err := NewRegistry(Providers{Postgres: &postgres.Provider{}, Traffic: &traffic.Provider{}, DNS: &dns.Provider{}})
	if err != nil {
		panic(err) // the shipped actions have distinct names; a duplicate is a build defect
	}
	return reg
}

// Actions returns the registry of every action this build ships, configured
// from cfg.
func Actions(cfg config.Config) (*activities.Registry, error) {
	p, err := DefaultProviders(cfg)
	if err != nil {
		return nil, err
	}
	return NewRegistry(p)
}

// NewRegistry registers every action this build ships on the given providers.
func NewRegistry(p Providers) (*activities.Registry, error) {
	reg := activities.NewRegistry()
	pg := p.Postgres
	if err := reg.Add(
		&web.Check{}, &web.Call{}, note.Note{},
		postgres.Status{Provider: pg}, postgres.Fence{Provider: pg}, postgres.Unfence{Provider: pg},
		postgres.WaitCaughtUp{Provider: pg}, postgres.Promote{Provider: pg}, postgres.Rejoin{Provider: pg},
	); err != nil {
		return nil, err
	}
	if err := reg.Add(traffic.Actions(p.Traffic)...); err != nil {
		return nil, err
	}
	if err := reg.Add(dns.Actions(p.DNS)...); err != nil {
		return nil, err
	}
	notifier := p.Notifier
	if notifier == nil {
		notifier = &slack.Notifier{}
	}
	activities.AddInternal(reg, activities.NotifyActivity, notifier.Notify)
	activities.AddInternal(reg, activities.WebhookActivity, p.Webhook.Deliver)
	return reg, nil
}

// DialOptions adjusts a client dial.
type DialOptions struct {
	// Logger for the SDK; nil logs warnings and errors to stderr.
	Logger sdklog.Logger
	// Telemetry wiring; zero means none.
	Telemetry telemetry.Wiring
}

// Dial connects to Temporal as configured. The error says where it tried
// and what to do when nothing answers.
func Dial(ctx context.Context, cfg config.Config, o DialOptions) (client.Client, error) {
	opts := client.Options{
		HostPort:     cfg.Temporal.Address,
		Namespace:    cfg.Temporal.Namespace,
		Identity:     cfg.Identity,
		Logger:       o.Logger,
		Interceptors: o.Telemetry.Interceptors,
	}
	if opts.Logger == nil {
		opts.Logger = QuietLogger()
	}
	if o.Telemetry.Metrics != nil {
		opts.MetricsHandler = o.Telemetry.Metrics
	}
	if cfg.Temporal.TLS.Enabled || cfg.Temporal.TLS.CertFile != "" || cfg.Temporal.APIKey.IsSet() {
		tc, err := tlsConfig(cfg.Temporal.TLS)
		if err != nil {
			return nil, err
		}
		opts.ConnectionOptions.TLS = tc
	}
	if cfg.Temporal.APIKey.IsSet() {
		key, err := cfg.Temporal.APIKey.Read()
		if err != nil {
			return nil, fmt.Errorf("temporal.api_key: %w", err)
		}
		opts.Credentials = client.NewAPIKeyStaticCredentials(key)
	}
	c, err := client.DialContext(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("cannot reach Temporal at %s (namespace %q): %w\n%s",
			cfg.Temporal.Address, cfg.Temporal.Namespace, err, dialHint(err, opts.ConnectionOptions.TLS != nil))
	}
	// A wrong namespace would otherwise surface later, as each command's
	// own "not found".
	if _, err := c.WorkflowService().DescribeNamespace(ctx, &workflowservice.DescribeNamespaceRequest{Namespace: cfg.Temporal.Namespace}); err != nil {
		var nf *serviceerror.NamespaceNotFound
		if errors.As(err, &nf) {
			c.Close()
			return nil, fmt.Errorf("the Temporal server at %s has no namespace %q: set --namespace, DRCTL_TEMPORAL_NAMESPACE or temporal.namespace (`temporal operator namespace list` lists them)", cfg.Temporal.Address, cfg.Temporal.Namespace)
		}
	}
	return c, nil
}

// dialHint says what to do about a failed dial: TLS on one side only is
// the usual mistake beside a wrong address.
func dialHint(err error, tls bool) string {
	text := err.Error()
	switch {
	case tls && (strings.Contains(text, "first record does not look like a TLS handshake") || strings.Contains(text, "tls:")):
		return "drctl speaks TLS (temporal.tls or temporal.api_key is set) but the server at that address does not: a local dev server takes plain connections, so unset temporal.tls there"
	case !tls && (strings.Contains(text, "connection reset") || strings.Contains(text, "EOF") || strings.Contains(text, "http2")):
		return "the server may expect TLS: set temporal.tls.enabled (with temporal.tls.ca_file for a private CA), or temporal.api_key for Temporal Cloud"
	case strings.Contains(text, "x509") || strings.Contains(text, "certificate"):
		return "the server's certificate was not trusted: set temporal.tls.ca_file to the CA that signed it, or temporal.tls.server_name to the name in it"
	}
	return "start a local one with `drctl dev`, or point drctl at yours with --address, DRCTL_TEMPORAL_ADDRESS or temporal.address in drctl.yaml"
}

func tlsConfig(t config.TLS) (*tls.Config, error) {
	tc := &tls.Config{ServerName: t.ServerName, MinVersion: tls.VersionTLS12}
	if t.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("temporal.tls client certificate: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("temporal.tls.ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("temporal.tls.ca_file %s holds no PEM certificate", t.CAFile)
		}
		tc.RootCAs = pool
	}
	return tc, nil
}

// QuietLogger logs the SDK's warnings and errors to stderr, nothing else.
func QuietLogger() sdklog.Logger {
	return sdklog.NewStructuredLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
}

// Workers is what one drctl worker process polls: the shared task queue
// (workflows and the actions that may run anywhere), the queue of each
// site it runs in (worker.sites), and beside each of those its own (the
// credential fallback's offers; see workflows/placement.go). They start
// and stop together.
type Workers struct {
	all []sdkworker.Worker
}

// New returns the workers of cfg's task queue, cfg.Worker.Sites' queues and
// cfg.Identity's own queue, with the interpreter workflows on the shared
// queue and every action of reg on each.
func New(c client.Client, cfg config.Config, reg *activities.Registry) *Workers {
	opts := sdkworker.Options{
		Identity:                     cfg.Identity,
		WorkerStopTimeout:            cfg.Worker.StopTimeout,
		StickyScheduleToStartTimeout: cfg.Worker.StickyTimeout,
		// Failures say which worker they happened on (FailureDetail).
		BackgroundActivityContext: activities.WithWorker(context.Background(), cfg.Identity),
	}
	shared := cfg.Temporal.TaskQueue
	w := sdkworker.New(c, shared, opts)
	Register(w, reg)
	registerClientActivities(w, c, shared)
	ws := &Workers{all: []sdkworker.Worker{w}}
	queues := []string{workflows.WorkerQueue(shared, cfg.Identity)}
	for _, site := range cfg.Worker.Sites {
		q := workflows.SiteQueue(shared, site)
		queues = append(queues, q, workflows.WorkerQueue(q, cfg.Identity))
	}
	for _, q := range queues {
		o := opts
		o.DisableWorkflowWorker = true
		aw := sdkworker.New(c, q, o)
		reg.RegisterActivities(aw)
		ws.all = append(ws.all, aw)
	}
	return ws
}

// Start starts every worker; when one fails, those started are stopped.
func (ws *Workers) Start() error {
	for i, w := range ws.all {
		if err := w.Start(); err != nil {
			for _, started := range ws.all[:i] {
				started.Stop()
			}
			return err
		}
	}
	return nil
}

// Stop stops every worker, the shared queue's last, so a run's workflow
// task is not left without the actions it is waiting for.
func (ws *Workers) Stop() {
	for i := len(ws.all) - 1; i >= 0; i-- {
		ws.all[i].Stop()
	}
}

// Register registers the workflows and actions on any worker-like registry
// (a worker, a replayer, a test environment).
func Register(w interface {
	sdkworker.WorkflowRegistry
	sdkworker.ActivityRegistry
}, reg *activities.Registry) {
	RegisterWorkflows(w)
	reg.RegisterActivities(w)
}

// RegisterWorkflows registers the interpreter workflows under their names.
func RegisterWorkflows(w sdkworker.WorkflowRegistry) {
	w.RegisterWorkflowWithOptions(workflows.Run, workflow.RegisterOptions{Name: workflows.RunbookWorkflow})
	w.RegisterWorkflowWithOptions(workflows.Plan, workflow.RegisterOptions{Name: workflows.PlanWorkflow})
	w.RegisterWorkflowWithOptions(workflows.ScheduledDrill, workflow.RegisterOptions{Name: workflows.ScheduledDrillWorkflow})
	w.RegisterWorkflowWithOptions(workflows.Readiness, workflow.RegisterOptions{Name: workflows.ReadinessWorkflow})
	w.RegisterWorkflowWithOptions(workflows.ReadinessRecord, workflow.RegisterOptions{Name: workflows.ReadinessRecordWorkflow})
	w.RegisterWorkflowWithOptions(workflows.SiteWatch, workflow.RegisterOptions{Name: workflows.SiteWatchWorkflow})
}
