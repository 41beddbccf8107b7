//go:build linux

package lab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/drctl/drctl/internal/dnslab"
	"github.com/drctl/drctl/internal/haproxylab"
	"github.com/drctl/drctl/internal/pglab"
	"github.com/drctl/drctl/internal/ports"
)

// Site names.
const (
	East = "east"
	West = "west"
)

// Sites are the lab's sites. The lab is one machine, so a worker serving
// it runs in all of them (worker.sites).
var Sites = []string{East, West}

// Each site's addresses. Both databases listen on one port, both apps on
// another, so the DNS names below move clients between sites.
const (
	EastDBAddr  = "127.0.0.11"
	WestDBAddr  = "127.0.0.12"
	EastAppAddr = "127.0.0.21"
	WestAppAddr = "127.0.0.22"
)

// Names in the lab's zone, relative to it, and the load balancer's backend.
const (
	AppName    = "app" // the service: A record of the serving site's app
	DBName     = "db"  // the primary database: A record of its site's address
	AppBackend = "app"
)

// Environment variables the shipped runbooks' targets read their secrets
// from, on the worker.
const (
	EnvDBEast     = "DRCTL_DB_EAST_DSN"
	EnvDBWest     = "DRCTL_DB_WEST_DSN"
	EnvReplEast   = "DRCTL_DB_EAST_REPL_DSN"
	EnvReplWest   = "DRCTL_DB_WEST_REPL_DSN"
	EnvTSIGSecret = "DRCTL_DNS_TSIG_SECRET"
)

// ErrNotInstalled is returned (wrapped) by Start when PostgreSQL 15, BIND 9
// or HAProxy is missing; Missing and Install say what to do.
var ErrNotInstalled = errors.New("a lab component is not installed")

// Options configures a Lab.
type Options struct {
	// Dir holds the databases and the log. It and its parents must be
	// traversable by the postgres OS user when run as root. Empty: a new
	// directory under os.TempDir(), removed by Close.
	Dir string
	// Log receives every component's output. Nil: lab.log in Dir.
	Log io.Writer
}

// Lab is a running two-site environment. Its fields are set by Start.
type Lab struct {
	Dir  string
	Zone string // fully qualified

	Pair *pglab.Pair // Primary is east's node, Standby west's
	DNS  *dnslab.Server
	LB   *haproxylab.Lab
	Apps map[string]*App // by site

	removeDir bool
	logFile   *os.File
}

// Start starts the databases, the DNS zone, both apps and HAProxy, creates
// the app's schema and returns once every part answers. ctx bounds the
// start; on failure everything started is stopped.
func Start(ctx context.Context, o Options) (_ *Lab, err error) {
	l := &Lab{Dir: o.Dir, Apps: map[string]*App{}}
	if l.Dir == "" {
		if l.Dir, err = os.MkdirTemp("", "drctl-lab-"); err != nil {
			return nil, fmt.Errorf("lab: %w", err)
		}
		l.removeDir = true
	} else if err := os.MkdirAll(l.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("lab: %w", err)
	}
	// The postgres OS user must traverse it to reach the data directories.
	if err := os.Chmod(l.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("lab: %w", err)
	}
	defer func() {
		if err != nil {
			if cerr := l.Close(); cerr != nil {
				err = errors.Join(err, cerr)
			}
		}
	}()
	log := o.Log
	if log == nil {
		if l.logFile, err = os.OpenFile(filepath.Join(l.Dir, LogFile), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600); err != nil {
			return nil, fmt.Errorf("lab: %w", err)
		}
		log = l.logFile
	}

	pgDir := filepath.Join(l.Dir, "pg")
	if err := os.MkdirAll(pgDir, 0o755); err != nil {
		return nil, fmt.Errorf("lab: %w", err)
	}
	if l.Pair, err = pglab.NewPair(ctx, pglab.Options{Dir: pgDir, Log: log, Addresses: [2]string{EastDBAddr, WestDBAddr}}); err != nil {
		return nil, notInstalled(err, pglab.ErrNotInstalled)
	}
	if err := l.createSchema(ctx); err != nil {
		return nil, err
	}
	if l.DNS, err = dnslab.Start(ctx, dnslab.Options{Log: log, Records: []string{
		AppName + " 30 IN A " + EastAppAddr,
		DBName + " 30 IN A " + EastDBAddr,
	}}); err != nil {
		return nil, notInstalled(err, dnslab.ErrNotInstalled)
	}
	l.Zone = l.DNS.Zone

	port, err := ports.Free(EastAppAddr, WestAppAddr)
	if err != nil {
		return nil, fmt.Errorf("lab: app port: %w", err)
	}
	for _, s := range []struct{ site, addr string }{{East, EastAppAddr}, {West, WestAppAddr}} {
		app, err := startApp(AppConfig{
			Site: s.site, Listen: net.JoinHostPort(s.addr, strconv.Itoa(port)),
			DBHost: DBName + "." + l.Zone, DBPort: l.Pair.Primary.Port,
			User: pglab.AppUser, Password: l.Pair.AppPassword, Database: pglab.AppDB,
			Resolver: l.DNS.Addr(), Sites: map[string]string{EastDBAddr: East, WestDBAddr: West},
		})
		if err != nil {
			return nil, err
		}
		l.Apps[s.site] = app
	}
	if l.LB, err = haproxylab.Start(ctx, haproxylab.Options{
		Backends: []string{AppBackend}, Log: log,
		Servers: [2]string{l.Apps[East].Addr(), l.Apps[West].Addr()},
	}); err != nil {
		return nil, notInstalled(err, haproxylab.ErrNotInstalled)
	}
	return l, nil
}

func notInstalled(err, sentinel error) error {
	if errors.Is(err, sentinel) {
		return fmt.Errorf("%w: %w (drctl lab up installs it, or: %s)", ErrNotInstalled, err, InstallCommand(Missing()))
	}
	return err
}

// Schema is the app's: every acknowledged write is a row of writes; probe
// holds one row per site, rewritten by each health check.
const Schema = `CREATE TABLE writes (id bigserial PRIMARY KEY, site text NOT NULL, at timestamptz NOT NULL DEFAULT now());
CREATE TABLE probe (site text PRIMARY KEY, at timestamptz NOT NULL)`

func (l *Lab) createSchema(ctx context.Context) error {
	conn, err := pgx.Connect(ctx, l.Pair.Primary.DSN(pglab.AppUser, l.Pair.AppPassword, pglab.AppDB))
	if err != nil {
		return fmt.Errorf("lab: create schema: %w", err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, Schema); err != nil {
		return fmt.Errorf("lab: create schema: %w", err)
	}
	return nil
}

// Node is the database node of site (East or West).
func (l *Lab) Node(site string) *pglab.Node {
	if site == East {
		return l.Pair.Primary
	}
	return l.Pair.Standby
}

// FrontendURL is HAProxy's frontend: where users (and the load generator)
// reach the app.
func (l *Lab) FrontendURL() string { return l.LB.FrontendURL() }

// Params are the values the shipped runbooks need (`--params`); a runbook
// takes those it declares. No secrets.
func (l *Lab) Params() map[string]string {
	east, west := l.Node(East), l.Node(West)
	return map[string]string{
		"dns_server": l.DNS.Addr(), "dns_zone": l.Zone, "dns_key": l.DNS.KeyName,
		"lb_socket": l.LB.Socket(), "app_backend": AppBackend,
		"east_server": haproxylab.EastServer, "west_server": haproxylab.WestServer,
		"app_name": AppName, "db_name": DBName,
		"east_address": EastAppAddr, "west_address": WestAppAddr,
		"east_db_address": EastDBAddr, "west_db_address": WestDBAddr,
		"health_url":    l.FrontendURL() + "/healthz",
		"health_field":  "db_site",
		"east_data_dir": east.DataDir, "east_start_options": east.StartOptions(),
		"west_data_dir": west.DataDir, "west_start_options": west.StartOptions(),
	}
}

// Secrets are the environment variables a worker needs to run the shipped
// runbooks against the lab: admin and replication DSNs and the TSIG key.
// Never print them.
func (l *Lab) Secrets() map[string]string {
	east, west := l.Node(East), l.Node(West)
	p := l.Pair
	return map[string]string{
		EnvDBEast:     east.DSN(pglab.AdminUser, p.AdminPassword, "postgres"),
		EnvDBWest:     west.DSN(pglab.AdminUser, p.AdminPassword, "postgres"),
		EnvReplEast:   east.DSN(pglab.ReplUser, p.ReplPassword, ""),
		EnvReplWest:   west.DSN(pglab.ReplUser, p.ReplPassword, ""),
		EnvTSIGSecret: l.DNS.Secret,
	}
}

// AppDSN is an admin DSN for the app's database on site's node, for
// counting rows. It carries a password.
func (l *Lab) AppDSN(site string) string {
	return l.Node(site).DSN(pglab.AdminUser, l.Pair.AdminPassword, pglab.AppDB)
}

// Close stops every process the lab started (database servers that a
// runbook restarted by pg_ctl included) and removes what it created.
func (l *Lab) Close() error {
	var errs []error
	for _, site := range []string{East, West} {
		if a := l.Apps[site]; a != nil {
			if err := a.Close(); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if l.LB != nil {
		if err := l.LB.Stop(); err != nil {
			errs = append(errs, err)
		}
	}
	if l.DNS != nil {
		if err := l.DNS.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	if l.Pair != nil {
		for _, n := range []*pglab.Node{l.Pair.Standby, l.Pair.Primary} {
			if err := stopForeign(n); err != nil {
				errs = append(errs, err)
			}
		}
		if err := l.Pair.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	if l.logFile != nil {
		_ = l.logFile.Close()
	}
	if len(errs) == 0 {
		if l.removeDir {
			if err := os.RemoveAll(l.Dir); err != nil {
				errs = append(errs, err)
			}
		} else if err := os.RemoveAll(filepath.Join(l.Dir, "pg")); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// PostmasterPID is the PID of the server running in n's data directory
// however it was started (pglab, or pg_ctl during postgres.rejoin), or 0.
func PostmasterPID(dataDir string) int {
	b, err := os.ReadFile(filepath.Join(dataDir, "postmaster.pid"))
	if err != nil {
		return 0
	}
	first, _, _ := strings.Cut(string(b), "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(first))
	if err != nil || pid <= 0 {
		return 0
	}
	if cwd, err := os.Readlink("/proc/" + strconv.Itoa(pid) + "/cwd"); err != nil || cwd != dataDir {
		return 0
	}
	return pid
}

// stopForeign shuts down (fast: SIGINT) a server in n's data directory that
// pglab did not start — postgres.rejoin starts rejoined nodes with pg_ctl —
// and waits until it is gone. pglab's Close then finds nothing left.
func stopForeign(n *pglab.Node) error {
	if n.Running() {
		return nil
	}
	pid := PostmasterPID(n.DataDir)
	if pid == 0 {
		return nil
	}
	_ = syscall.Kill(pid, syscall.SIGINT)
	deadline := time.Now().Add(30 * time.Second)
	for Alive(pid) {
		if time.Now().After(deadline) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			return fmt.Errorf("lab: stop %s: postmaster %d did not exit within 30s; killed", n.Name, pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return nil
}

// Alive reports whether pid runs. Zombies count as gone: an orphan is
// reaped whenever init gets to it.
func Alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(b)
	end := strings.LastIndexByte(s, ')')
	return end > 0 && len(s) > end+2 && s[end+2] != 'Z'
}
