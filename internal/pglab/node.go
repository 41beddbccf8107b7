//go:build linux

package pglab

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"golang.org/x/sys/unix"

	"github.com/drctl/drctl/internal/ports"
	"github.com/drctl/drctl/internal/proclog"
)

// Node is one PostgreSQL server of a Pair.
type Node struct {
	// Name is "pg1" or "pg2"; it is also the node's application_name
	// (pg_stat_replication) when it runs as a standby.
	Name string
	// Dir is the node's own directory: the data directory, the unix socket
	// and, without Options.Log, server.log.
	Dir string
	// DataDir is the cluster's data directory (PGDATA), inside Dir.
	DataDir string
	// Port is the TCP port on Host. It is picked at the first Start
	// and kept for the node's life, so standbys can rely on it.
	Port int
	// Host is the loopback address the server listens on: 127.0.0.1
	// unless Options.Addresses names another.
	Host string

	env           *env
	adminPassword string
	out           io.Writer // server and tool output (file or prefixed Options.Log)
	logFile       *os.File  // set when out is the node's own server.log

	mu  sync.Mutex
	srv *server // the postmaster of the last Start; nil before
}

// server is one run of a postmaster.
type server struct {
	proc    *os.Process
	exited  chan struct{} // closed once the postmaster is reaped
	waitErr error         // valid after exited is closed
	logDone <-chan struct{}
	tail    *proclog.Tail
}

func (s *server) running() bool {
	select {
	case <-s.exited:
		return false
	default:
		return true
	}
}

// errPortInUse marks a start that failed because another process holds the
// port; Start then retries on a fresh port if the port is not yet fixed.
var errPortInUse = errors.New("port already in use")

func (p *Pair) newNode(name, host string, log io.Writer) (*Node, error) {
	if host == "" {
		host = loopback
	}
	n := &Node{
		Name:          name,
		Host:          host,
		Dir:           filepath.Join(p.Dir, name),
		env:           p.env,
		adminPassword: p.AdminPassword,
	}
	n.DataDir = filepath.Join(n.Dir, "data")
	if err := os.Mkdir(n.Dir, 0o700); err != nil {
		return nil, n.errorf("create node dir", err)
	}
	if err := n.env.chown(n.Dir); err != nil {
		_ = os.Remove(n.Dir)
		return nil, n.errorf("create node dir", err)
	}
	if log != nil {
		n.out = &proclog.PrefixWriter{Mu: &p.env.logMu, W: log, Prefix: name + ": "}
		return n, nil
	}
	f, err := os.OpenFile(filepath.Join(n.Dir, "server.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		_ = os.Remove(n.Dir)
		return nil, n.errorf("open server.log", err)
	}
	n.out, n.logFile = f, f
	return n, nil
}

// config is appended to postgresql.conf by initdb; pg_basebackup and
// pg_rewind copy it to the other node. Settings that differ per node (port,
// socket directory, cluster_name) are passed on the command line instead.
const config = `
# pglab
listen_addresses = '127.0.0.1'
wal_level = replica
max_wal_senders = 10
wal_keep_size = '256MB'          # pg_rewind and a restarted standby find their WAL
hot_standby = on
wal_log_hints = on               # pg_rewind needs it (or data checksums)
wal_retrieve_retry_interval = '100ms'  # standbys reconnect quickly after a failover
shared_buffers = '32MB'
fsync = off                      # survives process crashes (Kill), not OS crashes
`

// loopback is where servers listen unless Options.Addresses says otherwise.
const loopback = "127.0.0.1"

// hba allows password (SCRAM) logins only: on the node's private socket and
// from network (127.0.0.1/32, or all of 127.0.0.0/8 when the nodes listen
// on addresses of their own), where only ReplUser may replicate.
func hba(network string) string {
	return `# pglab
local   all          all             scram-sha-256
host    all          all ` + network + ` scram-sha-256
host    replication  ` + ReplUser + ` ` + network + ` scram-sha-256
`
}

func (n *Node) initdb(ctx context.Context) error {
	const op = "initdb"
	pwfile := filepath.Join(n.Dir, "pwfile")
	if err := n.writeFile(pwfile, []byte(n.adminPassword+"\n")); err != nil {
		return n.errorf(op, err)
	}
	err := n.runTool(ctx, op, nil, "initdb",
		"--pgdata="+n.DataDir, "--username="+AdminUser, "--pwfile="+pwfile,
		"--auth=scram-sha-256", "--encoding=UTF8", "--locale=C", "--no-sync", "--no-instructions")
	if rmErr := os.Remove(pwfile); err == nil && rmErr != nil {
		err = n.errorf(op, rmErr)
	}
	if err != nil {
		return err
	}
	f, err := os.OpenFile(filepath.Join(n.DataDir, "postgresql.conf"), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return n.errorf(op, err)
	}
	_, err = f.WriteString(config)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = n.writeFile(filepath.Join(n.DataDir, "pg_hba.conf"), []byte(hba(n.env.hbaNetwork)))
	}
	if err != nil {
		return n.errorf(op, err)
	}
	return nil
}

// Start starts the server and returns once it accepts connections (as a
// primary, or as a hot standby that reached consistency). It does nothing if
// the server runs. At the first start the port is picked by the OS, and
// picked again if another process takes it before the server binds it.
// ctx bounds the wait; on failure the server is killed.
func (n *Node) Start(ctx context.Context) error {
	if n.Running() {
		return nil
	}
	fixed := n.Port != 0
	for attempt := 1; ; attempt++ {
		if !fixed {
			port, err := ports.Free(n.Host)
			if err != nil {
				return n.errorf("start", err)
			}
			n.Port = port
		}
		err := n.startOnce(ctx)
		if err == nil {
			return nil
		}
		if fixed || !errors.Is(err, errPortInUse) || attempt == 5 {
			if !fixed {
				n.Port = 0
			}
			return err
		}
	}
}

func (n *Node) startOnce(ctx context.Context) error {
	const op = "start"
	sockDir := n.Dir
	if strings.ContainsAny(sockDir, " ,") {
		sockDir = `"` + sockDir + `"`
	}
	cmd := exec.Command(filepath.Join(n.env.binDir, "postgres"),
		"-D", n.DataDir,
		"-c", "listen_addresses="+n.Host,
		"-c", "port="+strconv.Itoa(n.Port),
		"-c", "unix_socket_directories="+sockDir,
		"-c", "cluster_name="+n.Name)
	w, logDone, tail, err := n.logPipe()
	if err != nil {
		return n.errorf(op, err)
	}
	cmd.Stdout, cmd.Stderr = w, w
	// SIGQUIT (immediate shutdown) if this process dies without stopping it.
	err = n.startCmd(cmd, syscall.SIGQUIT)
	w.Close()
	if err != nil {
		<-logDone
		return n.errorf(op, err)
	}
	s := &server{proc: cmd.Process, exited: make(chan struct{}), logDone: logDone, tail: tail}
	go func() {
		s.waitErr = cmd.Wait()
		close(s.exited)
	}()
	n.mu.Lock()
	n.srv = s
	n.mu.Unlock()

	pidFile := filepath.Join(n.DataDir, "postmaster.pid")
	want := strconv.Itoa(s.proc.Pid)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		// postmaster.pid: line 1 is the PID (a killed server leaves a stale
		// file), line 8 the status, "ready" or "standby" once connections
		// are accepted. This is what pg_ctl -w polls.
		if b, err := os.ReadFile(pidFile); err == nil {
			lines := strings.Split(string(b), "\n")
			if len(lines) >= 8 && lines[0] == want {
				if st := strings.TrimSpace(lines[7]); st == "ready" || st == "standby" {
					return nil
				}
			}
		}
		select {
		case <-s.exited:
			waitLog(logDone)
			err := fmt.Errorf("postgres exited: %v%s", s.waitErr, n.logTail())
			if strings.Contains(tail.String(), "Address already in use") {
				err = fmt.Errorf("%w: %w", errPortInUse, err)
			}
			return n.errorf(op, err)
		case <-ctx.Done():
			err := fmt.Errorf("not ready: %w%s", ctx.Err(), n.logTail())
			if kerr := n.Kill(); kerr != nil {
				err = errors.Join(err, kerr)
			}
			return n.errorf(op, err)
		case <-tick.C:
		}
	}
}

// Stop shuts the server down (fast shutdown: SIGINT) and returns once the
// postmaster and its children are gone. It does nothing if the server is
// not running. ctx bounds the wait; on failure the caller may Kill.
func (n *Node) Stop(ctx context.Context) error {
	const op = "stop"
	s := n.server()
	if s != nil && s.running() {
		if err := s.proc.Signal(syscall.SIGINT); err != nil && !errors.Is(err, os.ErrProcessDone) {
			return n.errorf(op, err)
		}
		select {
		case <-s.exited:
		case <-ctx.Done():
			return n.errorf(op, ctx.Err())
		}
	}
	if s != nil {
		waitLog(s.logDone)
	}
	// A postmaster that exits normally has waited for all its children.
	if pids := processesIn(n.DataDir); len(pids) > 0 {
		return n.errorf(op, fmt.Errorf("server processes %v still running after the postmaster exited", pids))
	}
	return nil
}

// Kill simulates a crash of the node's machine: it SIGKILLs the postmaster,
// then every process still working in the data directory (the backends and
// auxiliary processes it left behind), and returns once all are gone. The
// data directory then needs crash recovery, which Start and Rewind (through
// pg_rewind) do. It does nothing if no server process runs.
func (n *Node) Kill() error {
	const op = "kill"
	deadline := time.Now().Add(10 * time.Second)
	s := n.server()
	if s != nil && s.running() {
		if err := s.proc.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
			return n.errorf(op, err)
		}
		select {
		case <-s.exited:
		case <-time.After(time.Until(deadline)):
			return n.errorf(op, fmt.Errorf("postmaster %d not gone after SIGKILL", s.proc.Pid))
		}
	}
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for {
		pids := processesIn(n.DataDir)
		if len(pids) == 0 {
			break
		}
		if time.Now().After(deadline) {
			return n.errorf(op, fmt.Errorf("server processes %v not gone after SIGKILL", pids))
		}
		for _, pid := range pids {
			killIn(pid, n.DataDir)
		}
		<-tick.C
	}
	if s != nil {
		waitLog(s.logDone)
	}
	return nil
}

// Running reports whether the postmaster started by the last Start runs.
func (n *Node) Running() bool {
	s := n.server()
	return s != nil && s.running()
}

// PID is the postmaster's process ID, or 0 when it is not running.
func (n *Node) PID() int {
	if s := n.server(); s != nil && s.running() {
		return s.proc.Pid
	}
	return 0
}

func (n *Node) server() *server {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.srv
}

// DSN is a keyword/value connection string for Host (sslmode=disable).
// It contains the password: for tests and the lab only; never log it.
func (n *Node) DSN(user, password, db string) string {
	return conninfo(n.Host, n.Port, user, password, db)
}

// Connect opens a connection to database "postgres" as AdminUser.
func (n *Node) Connect(ctx context.Context) (*pgx.Conn, error) {
	return pgx.Connect(ctx, n.DSN(AdminUser, n.adminPassword, "postgres"))
}

// Exec runs sql as AdminUser in database "postgres" on a new connection.
func (n *Node) Exec(ctx context.Context, sql string, args ...any) error {
	conn, err := n.Connect(ctx)
	if err != nil {
		return n.errorf("exec", err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, sql, args...); err != nil {
		return n.errorf("exec", err)
	}
	return nil
}

// QueryRow runs a one-row query as AdminUser in database "postgres" on a new
// connection, which Scan closes.
func (n *Node) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	conn, err := n.Connect(ctx)
	if err != nil {
		return errRow{n.errorf("query", err)}
	}
	return &closingRow{n: n, conn: conn, row: conn.QueryRow(ctx, sql, args...)}
}

// InRecovery reports pg_is_in_recovery(): true on a standby.
func (n *Node) InRecovery(ctx context.Context) (bool, error) {
	var b bool
	err := n.QueryRow(ctx, "SELECT pg_is_in_recovery()").Scan(&b)
	return b, err
}

// String names the node without secrets.
func (n *Node) String() string {
	return fmt.Sprintf("%s (%s:%d)", n.Name, n.Host, n.Port)
}

type closingRow struct {
	n    *Node
	conn *pgx.Conn
	row  pgx.Row
}

func (r *closingRow) Scan(dest ...any) error {
	defer r.conn.Close(context.Background())
	if err := r.row.Scan(dest...); err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		return r.n.errorf("query", err)
	}
	return nil
}

type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }

// errorf names the operation, node and port: "pglab: start pg1 (port 5433): ...".
func (n *Node) errorf(op string, err error) error {
	return fmt.Errorf("pglab: %s %s (port %d): %w", op, n.Name, n.Port, err)
}

// logTail is the end of the current server run's output, for errors.
func (n *Node) logTail() string {
	s := n.server()
	if s == nil {
		return ""
	}
	if t := s.tail.LastLines(12); t != "" {
		return "\n--- end of " + n.Name + "'s server log ---\n" + t
	}
	return ""
}

// runTool runs a server-side program (initdb, pg_basebackup, pg_rewind) as
// the server's OS user, its output going to the node's log. Passwords go in
// extraEnv, never in args.
func (n *Node) runTool(ctx context.Context, op string, extraEnv []string, tool string, args ...string) error {
	cmd := exec.CommandContext(ctx, filepath.Join(n.env.binDir, tool), args...)
	cmd.Env = append(cmd.Env, extraEnv...)
	w, logDone, tail, err := n.logPipe()
	if err != nil {
		return n.errorf(op, err)
	}
	cmd.Stdout, cmd.Stderr = w, w
	cmd.WaitDelay = 5 * time.Second
	err = n.startCmd(cmd, syscall.SIGKILL)
	w.Close()
	if err == nil {
		err = cmd.Wait()
	}
	waitLog(logDone)
	if err != nil {
		out := ""
		if t := tail.LastLines(12); t != "" {
			out = "\n--- end of " + tool + "'s output ---\n" + t
		}
		return n.errorf(op, fmt.Errorf("%s: %w%s", tool, err, out))
	}
	return nil
}

// startCmd starts cmd in the node's directory as the server's OS user with a
// clean environment; deathSig is sent to it if this process dies first.
func (n *Node) startCmd(cmd *exec.Cmd, deathSig syscall.Signal) error {
	env := []string{"HOME=" + n.Dir, "LC_ALL=C"}
	for _, kv := range os.Environ() {
		// The caller's libpq and locale settings must not steer the tools.
		if strings.HasPrefix(kv, "PG") || strings.HasPrefix(kv, "HOME=") ||
			strings.HasPrefix(kv, "LC_") || strings.HasPrefix(kv, "LANG=") {
			continue
		}
		env = append(env, kv)
	}
	cmd.Env = append(env, cmd.Env...)
	cmd.Dir = n.Dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: n.env.cred, Pdeathsig: deathSig}
	// The parent-death signal fires when the forking OS thread exits; pin
	// the fork to a thread the runtime keeps.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	return cmd.Start()
}

// logPipe returns the write end of a pipe whose lines are copied to the
// node's output and to a tail buffer until every writer has closed it.
func (n *Node) logPipe() (*os.File, <-chan struct{}, *proclog.Tail, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, nil, nil, err
	}
	tail := &proclog.Tail{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer r.Close()
		br := bufio.NewReader(r)
		for {
			line, err := br.ReadBytes('\n')
			if len(line) > 0 {
				tail.Write(line)
				_, _ = n.out.Write(line)
			}
			if err != nil {
				return
			}
		}
	}()
	return w, done, tail, nil
}

// waitLog waits (briefly) until a log pipe is drained.
func waitLog(done <-chan struct{}) {
	select {
	case <-done:
	case <-time.After(5 * time.Second):
	}
}

func (n *Node) closeLog() {
	if n.logFile != nil {
		_ = n.logFile.Close()
	}
}

// writeFile writes a file (mode 0600) owned by the server's OS user.
func (n *Node) writeFile(path string, data []byte) error {
	tmp := path + ".pglab-tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	if err := n.env.chown(tmp); err != nil {
		_ = os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, path)
}

// processesIn lists the processes whose working directory is dir. Every
// PostgreSQL server process works in its data directory, and keeps doing so
// after its postmaster died and it was re-parented.
func processesIn(dir string) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if cwd, err := os.Readlink("/proc/" + e.Name() + "/cwd"); err == nil && cwd == dir {
			pids = append(pids, pid)
		}
	}
	return pids
}

// killIn SIGKILLs pid if it still works in dir. The pidfd makes the check
// and the signal refer to the same process even if pid is reused meanwhile.
func killIn(pid int, dir string) {
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return
	}
	defer unix.Close(fd)
	if cwd, err := os.Readlink("/proc/" + strconv.Itoa(pid) + "/cwd"); err != nil || cwd != dir {
		return
	}
	_ = unix.PidfdSendSignal(fd, unix.SIGKILL, nil, 0)
}

// StartOptions are the server options this node is started with, in the
// form `pg_ctl -o` takes, for starting its data directory by other means
// (postgres.rejoin does).
func (n *Node) StartOptions() string {
	return fmt.Sprintf("-c listen_addresses=%s -c port=%d -c unix_socket_directories='%s' -c cluster_name=%s", n.Host, n.Port, n.Dir, n.Name)
}
