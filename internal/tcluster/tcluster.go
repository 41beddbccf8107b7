//go:build linux

package tcluster

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/drctl/drctl/internal/config"
	"github.com/drctl/drctl/internal/pglab"
	"github.com/drctl/drctl/workflows"
)

// Binary names in the bin directory, as `make cluster` builds them.
const (
	ServerBinary  = "temporal-server"
	SQLToolBinary = "temporal-sql-tool"
)

// InstallHint says how to build the binaries this package runs.
const InstallHint = "build them with `make cluster` (go install go.temporal.io/server/cmd/server@v1.29.1 and go.temporal.io/server/cmd/tools/sql@v1.29.1 into bin/ as temporal-server and temporal-sql-tool), or set DRCTL_TEMPORAL_SERVER_BIN"

// ErrNotInstalled is returned (wrapped) by Start when the server binaries,
// or PostgreSQL 15, are missing; tests skip on it unless DRCTL_CI is set.
var ErrNotInstalled = errors.New("not installed (the Temporal server, its SQL tool or PostgreSQL 15)")

// Service is one of the server's four services, each its own process.
type Service string

// The services, in the order Start starts them.
const (
	History  Service = "history"
	Matching Service = "matching"
	Frontend Service = "frontend"
	Worker   Service = "worker"
)

// Services lists every service in start order.
var Services = []Service{History, Matching, Frontend, Worker}

// Options configures a cluster. The zero value is a tuned cluster with four
// shards and the "default" namespace.
type Options struct {
	// Server is the temporal-server executable; the SQL tool is
	// temporal-sql-tool beside it. Empty: FindServer().
	Server string
	// Dir holds the configuration, certificates and logs. Empty: a new
	// directory under os.TempDir(), removed by Stop.
	Dir string
	// Namespace is registered at start, with drctl's search attributes.
	// Empty: "default".
	Namespace string
	// Shards is persistence.numHistoryShards. Zero: 4.
	Shards int
	// LogLevel of the services (debug, info, warn, error). Empty: info.
	LogLevel string
	// Untuned leaves out devserver.TunedArgs (the dev server's own
	// defaults stay), for before/after figures.
	Untuned bool
	// Log receives PostgreSQL's output; nil: a file in the pglab directory.
	// The services always write to their own files (LogFile).
	Log io.Writer
}

// Cluster is a running cluster. The exported fields are set by Start and
// never changed.
type Cluster struct {
	// Address is the frontend's host:port; it speaks mutual TLS only.
	Address   string
	Namespace string
	// TLS is what a drctl client needs to reach the frontend
	// (temporal.tls in drctl.yaml): the CA, a client certificate and key
	// signed by it, and the name in the frontend's certificate.
	TLS config.TLS
	// Dir holds the configuration, certificates and one log per service.
	Dir string
	// Postgres holds both of the server's databases (temporal and
	// temporal_visibility) on its Primary.
	Postgres *pglab.Pair

	server    string
	env       []string // the services' environment
	ports     map[Service]servicePorts
	removeDir bool
	client    client.Client

	mu    sync.Mutex
	procs map[Service]*process

	stopOnce sync.Once
	stopErr  error
}

// process is one running (or exited) service process.
type process struct {
	cmd     *exec.Cmd
	exited  chan struct{}
	waitErr error
}

func (p *process) running() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// FindServer locates temporal-server: $DRCTL_TEMPORAL_SERVER_BIN, else
// beside the running executable, else bin/temporal-server in this
// directory or any parent, else on PATH. temporal-sql-tool must be beside
// it.
func FindServer() (string, error) {
	if p := os.Getenv("DRCTL_TEMPORAL_SERVER_BIN"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("%w: DRCTL_TEMPORAL_SERVER_BIN=%s: %v", ErrNotInstalled, p, err)
		}
		return p, nil
	}
	isFile := func(p string) bool { st, err := os.Stat(p); return err == nil && !st.IsDir() }
	if exe, err := os.Executable(); err == nil {
		if p := filepath.Join(filepath.Dir(exe), ServerBinary); isFile(p) {
			return p, nil
		}
	}
	if dir, err := os.Getwd(); err == nil {
		for {
			if p := filepath.Join(dir, "bin", ServerBinary); isFile(p) {
				return p, nil
			}
			parent := filepath.Dir(dir)
			if parent == dir {
				break
			}
			dir = parent
		}
	}
	if p, err := exec.LookPath(ServerBinary); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("%w: %s was not found; %s", ErrNotInstalled, ServerBinary, InstallHint)
}

// Start starts PostgreSQL, applies the schemas, starts the four services
// and returns once the namespace and drctl's search attributes are
// registered and a workflow can be started. ctx bounds the whole start; on
// failure everything started is stopped.
func Start(ctx context.Context, o Options) (*Cluster, error) {
	server := o.Server
	if server == "" {
		var err error
		if server, err = FindServer(); err != nil {
			return nil, err
		}
	}
	sqlTool := filepath.Join(filepath.Dir(server), SQLToolBinary)
	if _, err := os.Stat(sqlTool); err != nil {
		return nil, fmt.Errorf("%w: %v; %s", ErrNotInstalled, err, InstallHint)
	}
	if o.Namespace == "" {
		o.Namespace = "default"
	}
	if o.Shards == 0 {
		o.Shards = 4
	}
	if o.LogLevel == "" {
		o.LogLevel = "info"
	}
	c := &Cluster{Namespace: o.Namespace, Dir: o.Dir, server: server, procs: map[Service]*process{}}
	if c.Dir == "" {
		dir, err := os.MkdirTemp("", "tcluster-")
		if err != nil {
			return nil, fmt.Errorf("tcluster: %w", err)
		}
		c.Dir, c.removeDir = dir, true
	}
	if err := c.start(ctx, o, sqlTool); err != nil {
		if serr := c.Stop(); serr != nil {
			err = errors.Join(err, serr)
		}
		return nil, err
	}
	return c, nil
}

func (c *Cluster) start(ctx context.Context, o Options, sqlTool string) error {
	certs, err := writeCerts(c.Dir)
	if err != nil {
		return fmt.Errorf("tcluster: certificates: %w", err)
	}
	c.TLS = config.TLS{Enabled: true, CAFile: certs.CA, CertFile: certs.ClientCert, KeyFile: certs.ClientKey, ServerName: ServerName}

	pg, err := pglab.NewPair(ctx, pglab.Options{Log: o.Log})
	if err != nil {
		if errors.Is(err, pglab.ErrNotInstalled) {
			return fmt.Errorf("tcluster: %w: %w", ErrNotInstalled, err)
		}
		return fmt.Errorf("tcluster: %w", err)
	}
	c.Postgres = pg
	pgAddr := net.JoinHostPort(pg.Primary.Host, strconv.Itoa(pg.Primary.Port))
	c.env = append(os.Environ(), passwordEnv+"="+pg.AdminPassword)
	if err := c.applySchemas(ctx, sqlTool, pg); err != nil {
		return err
	}

	dynamic := filepath.Join(c.Dir, "dynamicconfig.yaml")
	dc, err := dynamicConfig(o.Untuned)
	if err == nil {
		err = os.WriteFile(dynamic, dc, 0o644)
	}
	if err != nil {
		return fmt.Errorf("tcluster: dynamic config: %w", err)
	}
	if err := os.MkdirAll(filepath.Join(c.Dir, "config"), 0o755); err != nil {
		return fmt.Errorf("tcluster: %w", err)
	}
	sc := serverConfig{LogLevel: o.LogLevel, Shards: o.Shards, PGAddress: pgAddr, PGUser: pglab.AdminUser, Certs: certs, Dynamic: dynamic}

	// A port the OS picked may be taken by another process before the
	// service binds it: pick them all again and restart.
	for attempt := 1; ; attempt++ {
		err = c.startServices(ctx, sc)
		if err == nil {
			break
		}
		if !errors.Is(err, errPortInUse) || attempt == 3 {
			return err
		}
		c.stopServices()
	}
	return c.register(ctx)
}

// applySchemas creates both databases and brings their schemas to the
// version this server build ships, with the server's own SQL tool and the
// schemas embedded in it (the same files as the module's
// schema/postgresql/v12/temporal and .../visibility).
func (c *Cluster) applySchemas(ctx context.Context, sqlTool string, pg *pglab.Pair) error {
	env := append(os.Environ(),
		"SQL_PLUGIN=postgres12",
		"SQL_HOST="+pg.Primary.Host,
		"SQL_PORT="+strconv.Itoa(pg.Primary.Port),
		"SQL_USER="+pglab.AdminUser,
		"SQL_PASSWORD="+pg.AdminPassword,
	)
	for _, db := range []struct{ name, schema string }{
		{"temporal", "postgresql/v12/temporal"},
		{"temporal_visibility", "postgresql/v12/visibility"},
	} {
		for _, args := range [][]string{
			{"create-database"},
			{"setup-schema", "-v", "0.0"},
			{"update-schema", "--schema-name", db.schema},
		} {
			cmd := exec.CommandContext(ctx, sqlTool, append([]string{"--db", db.name}, args...)...)
			cmd.Env = env
			if out, err := cmd.CombinedOutput(); err != nil {
				return fmt.Errorf("tcluster: %s %s on %s: %w\n%s", SQLToolBinary, args[0], db.name, err, lastLines(string(out), 12))
			}
		}
	}
	return nil
}

var errPortInUse = errors.New("port in use")

// startServices picks ports, writes the configuration and starts every
// service, returning once each listens on its gRPC port.
func (c *Cluster) startServices(ctx context.Context, sc serverConfig) error {
	c.ports = map[Service]servicePorts{}
	sc.Ports = map[string]servicePorts{}
	for _, s := range Services {
		grpc, err := listenPort()
		if err != nil {
			return fmt.Errorf("tcluster: pick a port: %w", err)
		}
		member, err := listenPort()
		if err != nil {
			return fmt.Errorf("tcluster: pick a port: %w", err)
		}
		c.ports[s] = servicePorts{GRPC: grpc, Membership: member}
		sc.Ports[string(s)] = c.ports[s]
	}
	c.Address = net.JoinHostPort("127.0.0.1", strconv.Itoa(c.ports[Frontend].GRPC))
	text, err := sc.render()
	if err == nil {
		err = os.WriteFile(filepath.Join(c.Dir, "config", "cluster.yaml"), text, 0o644)
	}
	if err != nil {
		return fmt.Errorf("tcluster: write config: %w", err)
	}
	// The first process on a new database writes the cluster's metadata;
	// processes starting beside it would race to write it too, and the
	// losers exit ("failed to initialize current cluster metadata").
	first, rest := Services[0], Services[1:]
	if err := c.startService(first); err != nil {
		return err
	}
	if err := c.waitListening(ctx, first); err != nil {
		return err
	}
	for _, s := range rest {
		if err := c.startService(s); err != nil {
			return err
		}
	}
	for _, s := range rest {
		if err := c.waitListening(ctx, s); err != nil {
			return err
		}
	}
	return nil
}

// listenPort returns a TCP port free on 127.0.0.1 below the OS's
// ephemeral range (32768 and up on Linux), for two reasons. The server
// records each member's membership port in PostgreSQL as a SMALLINT
// (cluster_membership.rpc_port): a port above 32767 stops the service at
// start ("value out of range for type smallint"). And a service keeps its
// ports across Kill and Restart: a port in the ephemeral range could be
// given to some outgoing connection while the service is down, one below
// it only to a process that binds it by number. The OS cannot be asked
// for a port in a range, so random ones are tried until one binds; the
// start is retried if another process takes it before the service does.
func listenPort() (int, error) {
	const low, high = 10000, 32767
	for range 100 {
		port := low + mrand.IntN(high-low+1)
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err == nil {
			l.Close()
			return port, nil
		}
	}
	return 0, fmt.Errorf("no free port between %d and %d", low, high)
}

// startService starts one service's process, appending to its log.
func (c *Cluster) startService(s Service) error {
	log, err := os.OpenFile(c.LogFile(s), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("tcluster: %s log: %w", s, err)
	}
	cmd := exec.Command(c.server,
		"--root", c.Dir, "--config", "config", "--env", "cluster", "--allow-no-auth",
		"start", "--service", string(s))
	cmd.Dir = c.Dir
	cmd.Env = c.env
	cmd.Stdout, cmd.Stderr = log, log
	// The service dies with this process. The parent-death signal fires
	// when the forking OS thread exits; pin the fork to a thread the
	// runtime keeps.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	runtime.LockOSThread()
	err = cmd.Start()
	runtime.UnlockOSThread()
	if err != nil {
		log.Close()
		return fmt.Errorf("tcluster: start %s: %w", s, err)
	}
	p := &process{cmd: cmd, exited: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		log.Close()
		close(p.exited)
	}()
	c.mu.Lock()
	c.procs[s] = p
	c.mu.Unlock()
	return nil
}

// waitListening waits until service s accepts connections on its gRPC
// port (the worker service serves no gRPC: its membership port), or fails
// when its process exits first.
func (c *Cluster) waitListening(ctx context.Context, s Service) error {
	p := c.proc(s)
	port := c.ports[s].GRPC
	if s == Worker {
		port = c.ports[s].Membership
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		if conn, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			conn.Close()
			if p.running() {
				return nil
			}
		}
		select {
		case <-p.exited:
			tail := c.logTail(s)
			err := fmt.Errorf("tcluster: %s exited during start: %v\n--- end of %s ---\n%s", s, p.waitErr, c.LogFile(s), tail)
			if strings.Contains(tail, "address already in use") {
				err = fmt.Errorf("%w: %w", errPortInUse, err)
			}
			return err
		case <-ctx.Done():
			return fmt.Errorf("tcluster: %s is not listening on %s: %w\n--- end of %s ---\n%s", s, addr, ctx.Err(), c.LogFile(s), c.logTail(s))
		case <-tick.C:
		}
	}
}

// register dials the frontend, registers the namespace and drctl's search
// attributes, and waits until a workflow can be started in it. Each call
// is retried until ctx ends: right after the start, the frontend may not
// yet see a history or matching host in its membership ring.
func (c *Cluster) register(ctx context.Context) error {
	tc, err := clientTLS(c.TLS)
	if err != nil {
		return fmt.Errorf("tcluster: %w", err)
	}
	opts := client.Options{
		HostPort: c.Address, Namespace: c.Namespace, Logger: quiet{},
		ConnectionOptions: client.ConnectionOptions{TLS: tc},
	}
	err = retry(ctx, "dial the frontend", func() error {
		cl, err := client.DialContext(ctx, opts)
		if err == nil {
			c.client = cl
		}
		return err
	})
	if err != nil {
		return c.startErr(err)
	}
	err = retry(ctx, "register namespace "+c.Namespace, func() error {
		_, err := c.client.WorkflowService().RegisterNamespace(ctx, &workflowservice.RegisterNamespaceRequest{
			Namespace:                        c.Namespace,
			WorkflowExecutionRetentionPeriod: durationpb.New(24 * time.Hour),
		})
		var exists *serviceerror.NamespaceAlreadyExists
		if errors.As(err, &exists) {
			return nil
		}
		return err
	})
	if err != nil {
		return c.startErr(err)
	}
	attrs := map[string]enumspb.IndexedValueType{}
	for _, a := range workflows.SearchAttributes {
		t, err := enumspb.IndexedValueTypeFromString(a.Type)
		if err != nil {
			return fmt.Errorf("tcluster: search attribute %s: %w", a.Name, err)
		}
		attrs[a.Name] = t
	}
	err = retry(ctx, "add drctl's search attributes", func() error {
		_, err := c.client.OperatorService().AddSearchAttributes(ctx, &operatorservice.AddSearchAttributesRequest{
			Namespace: c.Namespace, SearchAttributes: attrs,
		})
		var exists *serviceerror.AlreadyExists
		if errors.As(err, &exists) {
			return nil
		}
		return err
	})
	if err != nil {
		return c.startErr(err)
	}
	// The proof that history and matching serve the namespace: a workflow
	// (carrying drctl's search attributes) starts, and is terminated.
	err = retry(ctx, "start a probe workflow", func() error {
		run, err := c.client.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
			ID: "tcluster-probe", TaskQueue: "tcluster-probe",
			WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_TERMINATE_EXISTING,
			TypedSearchAttributes:    workflows.StartSearchAttributes("tcluster-probe", "tcluster-probe", "plan"),
		}, "tcluster-probe")
		if err != nil {
			return err
		}
		return c.client.TerminateWorkflow(ctx, run.GetID(), run.GetRunID(), "tcluster start probe")
	})
	if err != nil {
		return c.startErr(err)
	}
	return nil
}

// startErr adds every service's log tail to a start failure.
func (c *Cluster) startErr(err error) error {
	var b strings.Builder
	fmt.Fprintf(&b, "tcluster: %v", err)
	for _, s := range Services {
		fmt.Fprintf(&b, "\n--- end of %s ---\n%s", c.LogFile(s), c.logTail(s))
	}
	return errors.New(b.String())
}

// retry calls f every 100 ms until it succeeds or ctx ends.
func retry(ctx context.Context, what string, f func() error) error {
	for {
		err := f()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: %w (last error: %v)", what, ctx.Err(), err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func clientTLS(t config.TLS) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
	if err != nil {
		return nil, err
	}
	pem, err := os.ReadFile(t.CAFile)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s holds no certificate", t.CAFile)
	}
	return &tls.Config{ServerName: t.ServerName, RootCAs: pool, Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
}

// Client returns a client of the cluster's namespace, connected over
// mutual TLS. It is closed by Stop.
func (c *Cluster) Client() client.Client { return c.client }

// Env is the environment that points the drctl binary (and the tests'
// worker processes) at the cluster: DRCTL_TEMPORAL_ADDRESS, _NAMESPACE and
// _TLS_*, the variables for temporal.address, temporal.namespace and
// temporal.tls.
func (c *Cluster) Env() []string {
	return []string{
		"DRCTL_TEMPORAL_ADDRESS=" + c.Address,
		"DRCTL_TEMPORAL_NAMESPACE=" + c.Namespace,
		"DRCTL_TEMPORAL_TLS_ENABLED=true",
		"DRCTL_TEMPORAL_TLS_CA_FILE=" + c.TLS.CAFile,
		"DRCTL_TEMPORAL_TLS_CERT_FILE=" + c.TLS.CertFile,
		"DRCTL_TEMPORAL_TLS_KEY_FILE=" + c.TLS.KeyFile,
		"DRCTL_TEMPORAL_TLS_SERVER_NAME=" + c.TLS.ServerName,
	}
}

// LogFile is the file service s writes its output to.
func (c *Cluster) LogFile(s Service) string { return filepath.Join(c.Dir, string(s)+".log") }

// PID is the process ID of service s, or 0 when it is not running.
func (c *Cluster) PID(s Service) int {
	if p := c.proc(s); p != nil && p.running() {
		return p.cmd.Process.Pid
	}
	return 0
}

func (c *Cluster) proc(s Service) *process {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.procs[s]
}

// Kill kills service s's process with SIGKILL and returns once it is gone.
// It does nothing if the service is not running.
func (c *Cluster) Kill(s Service) error {
	p := c.proc(s)
	if p == nil || !p.running() {
		return nil
	}
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("tcluster: kill %s (pid %d): %w", s, p.cmd.Process.Pid, err)
	}
	<-p.exited
	return nil
}

// Restart starts service s again on its own ports, stopping it first if it
// runs, and returns once it listens. The rest of the cluster finds it
// through the membership ring; how soon it serves again is for the caller
// to observe.
func (c *Cluster) Restart(ctx context.Context, s Service) error {
	if p := c.proc(s); p == nil {
		return fmt.Errorf("tcluster: no service %q", s)
	}
	if err := c.stop(s); err != nil {
		return err
	}
	if err := c.startService(s); err != nil {
		return err
	}
	return c.waitListening(ctx, s)
}

// stopGrace is how long a service has to shut down after SIGTERM.
const stopGrace = 15 * time.Second

// stop shuts service s down (SIGTERM; SIGKILL after stopGrace) and returns
// once its process is gone.
func (c *Cluster) stop(s Service) error {
	p := c.proc(s)
	if p == nil || !p.running() {
		return nil
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
		return nil
	case <-time.After(stopGrace):
		return c.Kill(s)
	}
}

// stopServices stops every service, one at a time: the system worker
// first (stopped after the frontend, its pollers wait for it until the
// grace period ends), then the frontend, so no new work arrives while
// matching and history shut down.
func (c *Cluster) stopServices() error {
	var errs []error
	for _, s := range []Service{Worker, Frontend, Matching, History} {
		if err := c.stop(s); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Stop stops every service and PostgreSQL, and removes the cluster's
// directory when Start created it. It is safe to call more than once.
func (c *Cluster) Stop() error {
	c.stopOnce.Do(func() {
		if c.client != nil {
			c.client.Close()
		}
		errs := []error{c.stopServices()}
		if c.Postgres != nil {
			errs = append(errs, c.Postgres.Close())
		}
		if c.removeDir {
			errs = append(errs, os.RemoveAll(c.Dir))
		}
		c.stopErr = errors.Join(errs...)
	})
	return c.stopErr
}

// logTail is the end of service s's log, for error messages.
func (c *Cluster) logTail(s Service) string {
	f, err := os.Open(c.LogFile(s))
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	defer f.Close()
	const max = 8 << 10
	if st, err := f.Stat(); err == nil && st.Size() > max {
		_, _ = f.Seek(st.Size()-max, io.SeekStart)
	}
	b, _ := io.ReadAll(f)
	return lastLines(string(b), 20)
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

type quiet struct{}

func (quiet) Debug(string, ...any) {}
func (quiet) Info(string, ...any)  {}
func (quiet) Warn(string, ...any)  {}
func (quiet) Error(string, ...any) {}
