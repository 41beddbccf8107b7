//go:build linux

package haproxylab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/drctl/drctl/internal/ports"
	"github.com/drctl/drctl/internal/proclog"
)

// DefaultBinary is where Debian's haproxy package installs HAProxy.
const DefaultBinary = "/usr/sbin/haproxy"

// Server names in every backend.
const (
	EastServer = "east1"
	WestServer = "west1"
)

// ErrNotInstalled is returned (wrapped) by Start when no haproxy binary is
// found; tests skip on it.
var ErrNotInstalled = errors.New("haproxy not installed")

// Options configures a Lab. The zero value is a lab with one backend "app",
// east1 ready and west1 in maintenance, no health checks.
type Options struct {
	// Binary is the haproxy executable. Empty: haproxy on PATH, else
	// DefaultBinary.
	Binary string
	// Backends are the backends' names; requests go to the first unless
	// they carry an X-Backend header naming another. Empty: ["app"].
	Backends []string
	// BothReady starts west1 ready too. Default: west1 in maintenance.
	BothReady bool
	// HealthChecks checks every server with GET / every 100ms (rise 1,
	// fall 1), so a server's operational state follows its site.
	HealthChecks bool
	// Log receives HAProxy's output. Nil: haproxy.log in the lab directory.
	Log io.Writer
	// Servers, when set, are the host:port of east1 and west1: servers the
	// caller runs (the demo lab's apps). The lab then starts no sites of
	// its own and East and West stay nil. Default: two small sites.
	Servers [2]string
}

// Lab is a running HAProxy in front of the east and west sites.
type Lab struct {
	// Dir holds the configuration, the runtime API socket and the log.
	Dir        string
	East, West *Site
	Backends   []string

	frontend string // host:port
	socket   string
	client   *http.Client

	proc    *os.Process
	exited  chan struct{}
	waitErr error
	tail    *proclog.Tail
	logFile *os.File

	stopOnce sync.Once
	stopErr  error
}

// Start starts both sites and HAProxy, and returns once the runtime API
// answers and the frontend accepts connections. ctx bounds the start; on
// failure everything started is stopped and removed.
func Start(ctx context.Context, o Options) (*Lab, error) {
	bin, err := binary(o.Binary)
	if err != nil {
		return nil, err
	}
	if len(o.Backends) == 0 {
		o.Backends = []string{"app"}
	}
	dir, err := os.MkdirTemp("", "haproxylab-")
	if err != nil {
		return nil, fmt.Errorf("haproxylab: create dir: %w", err)
	}
	l := &Lab{Dir: dir, Backends: o.Backends, socket: filepath.Join(dir, "admin.sock"), tail: &proclog.Tail{}}
	l.client = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}, Timeout: time.Minute}
	if err := l.start(ctx, bin, o); err != nil {
		_ = l.Stop()
		return nil, err
	}
	return l, nil
}

func binary(name string) (string, error) {
	if name != "" {
		if _, err := os.Stat(name); err != nil {
			return "", fmt.Errorf("haproxylab: %w: %v", ErrNotInstalled, err)
		}
		return name, nil
	}
	if p, err := exec.LookPath("haproxy"); err == nil {
		return p, nil
	}
	if _, err := os.Stat(DefaultBinary); err != nil {
		return "", fmt.Errorf("haproxylab: %w: no haproxy on PATH nor at %s (apt-get install haproxy)", ErrNotInstalled, DefaultBinary)
	}
	return DefaultBinary, nil
}

func (l *Lab) start(ctx context.Context, bin string, o Options) error {
	var err error
	if o.Servers[0] == "" || o.Servers[1] == "" {
		if l.East, err = startSite("east"); err != nil {
			return err
		}
		if l.West, err = startSite("west"); err != nil {
			return err
		}
		o.Servers = [2]string{l.East.Addr(), l.West.Addr()}
	}
	out := o.Log
	if out == nil {
		if l.logFile, err = os.Create(filepath.Join(l.Dir, "haproxy.log")); err != nil {
			return fmt.Errorf("haproxylab: %w", err)
		}
		out = l.logFile
	}
	const attempts = 5
	for attempt := 1; ; attempt++ {
		port, err := ports.Free()
		if err != nil {
			return fmt.Errorf("haproxylab: pick a port: %w", err)
		}
		l.frontend = fmt.Sprintf("127.0.0.1:%d", port)
		cfg := filepath.Join(l.Dir, "haproxy.cfg")
		if err := os.WriteFile(cfg, []byte(l.config(o)), 0o600); err != nil {
			return fmt.Errorf("haproxylab: write config: %w", err)
		}
		err = l.run(ctx, bin, cfg, out)
		if err == nil {
			return nil
		}
		if !errors.Is(err, errPortInUse) || attempt == attempts {
			return err
		}
	}
}

var errPortInUse = errors.New("frontend port already in use")

// config renders haproxy.cfg for the current frontend port.
func (l *Lab) config(o Options) string {
	var b strings.Builder
	fmt.Fprintf(&b, `global
    stats socket %s mode 600 level admin
    stats timeout 1m
    maxconn 1000

defaults
    mode http
    timeout connect 2s
    timeout client 1m
    timeout server 1m
    timeout queue 5s

frontend site
    bind %s
    use_backend %%[req.hdr(x-backend)] if { req.hdr(x-backend) -m found }
    default_backend %s
`, l.socket, l.frontend, l.Backends[0])
	west := " disabled"
	if o.BothReady {
		west = ""
	}
	for _, be := range l.Backends {
		fmt.Fprintf(&b, "\nbackend %s\n    balance roundrobin\n", be)
		if o.HealthChecks {
			b.WriteString("    option httpchk GET /\n    default-server check inter 100ms fall 1 rise 1\n")
		}
		fmt.Fprintf(&b, "    server %s %s\n    server %s %s%s\n", EastServer, o.Servers[0], WestServer, o.Servers[1], west)
	}
	return b.String()
}

// run starts haproxy and waits until it serves.
func (l *Lab) run(ctx context.Context, bin, cfg string, out io.Writer) error {
	l.tail.Reset()
	cmd := exec.Command(bin, "-db", "-f", cfg)
	cmd.Dir = l.Dir
	cmd.Stdout = io.MultiWriter(out, l.tail)
	cmd.Stderr = cmd.Stdout
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	// The parent-death signal fires when the forking OS thread exits; pin
	// the fork to a thread the runtime keeps.
	goruntime.LockOSThread()
	err := cmd.Start()
	goruntime.UnlockOSThread()
	if err != nil {
		return fmt.Errorf("haproxylab: start %s: %w", bin, err)
	}
	l.proc, l.exited = cmd.Process, make(chan struct{})
	go func(exited chan struct{}) {
		l.waitErr = cmd.Wait()
		close(exited)
	}(l.exited)

	for {
		select {
		case <-l.exited:
			log := l.tail.String()
			if strings.Contains(log, "cannot bind socket") || strings.Contains(log, "Address already in use") {
				return errPortInUse
			}
			return fmt.Errorf("haproxylab: haproxy exited during start (%v):\n%s", l.waitErr, strings.TrimSpace(log))
		default:
		}
		if l.ready(ctx) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("haproxylab: haproxy did not serve on %s and %s before the start ended: %w\n%s", l.frontend, l.socket, ctx.Err(), strings.TrimSpace(l.tail.String()))
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// ready: the runtime API answers and the frontend accepts connections.
func (l *Lab) ready(ctx context.Context) bool {
	info, err := l.Command(ctx, "show info")
	if err != nil || !strings.Contains(info, "Name: HAProxy") {
		return false
	}
	c, err := net.DialTimeout("tcp", l.frontend, time.Second)
	if err != nil {
		return false
	}
	_ = c.Close()
	return true
}

// FrontendURL is the base URL of HAProxy's frontend.
func (l *Lab) FrontendURL() string { return "http://" + l.frontend }

// Socket is the path of the runtime API socket (level admin).
func (l *Lab) Socket() string { return l.socket }

// PID is HAProxy's process ID.
func (l *Lab) PID() int { return l.proc.Pid }

// Command sends one runtime API command and returns the answer without its
// trailing blank line.
func (l *Lab) Command(ctx context.Context, command string) (string, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", l.socket)
	if err != nil {
		return "", err
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	}
	if _, err := io.WriteString(c, command+"\n"); err != nil {
		return "", err
	}
	b, err := io.ReadAll(c)
	return strings.TrimRight(string(b), "\n"), err
}

// Get sends GET path through the frontend to backend ("" for the default)
// and returns the name of the site that answered.
func (l *Lab) Get(ctx context.Context, backend, path string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, l.FrontendURL()+path, nil)
	if err != nil {
		return "", err
	}
	if backend != "" {
		req.Header.Set("X-Backend", backend)
	}
	resp, err := l.client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s via %s: %s: %s", path, l.frontend, resp.Status, bytes.TrimSpace(body))
	}
	site := resp.Header.Get(SiteHeader)
	if site != string(body) {
		return "", fmt.Errorf("GET %s via %s: header says %q, body %q", path, l.frontend, site, body)
	}
	return site, nil
}

// Stop ends HAProxy (SIGTERM, then SIGKILL after 5s) and waits until it is
// reaped, closes both sites and removes Dir. Later calls return the first
// call's result.
func (l *Lab) Stop() error {
	l.stopOnce.Do(func() {
		var errs []error
		if l.proc != nil {
			if err := l.proc.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
				errs = append(errs, fmt.Errorf("haproxylab: stop haproxy (pid %d): %w", l.proc.Pid, err))
			}
			select {
			case <-l.exited:
			case <-time.After(5 * time.Second):
				_ = l.proc.Kill()
				<-l.exited
			}
		}
		l.client.CloseIdleConnections()
		for _, s := range []*Site{l.East, l.West} {
			if s != nil {
				if err := s.close(); err != nil {
					errs = append(errs, err)
				}
			}
		}
		if l.logFile != nil {
			_ = l.logFile.Close()
		}
		if err := os.RemoveAll(l.Dir); err != nil {
			errs = append(errs, fmt.Errorf("haproxylab: remove %s: %w", l.Dir, err))
		}
		l.stopErr = errors.Join(errs...)
	})
	return l.stopErr
}
