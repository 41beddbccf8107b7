//go:build linux

package pglab

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/drctl/drctl/internal/ports"
)

// DefaultBinDir holds the PostgreSQL 15 server binaries on Debian and Ubuntu.
const DefaultBinDir = "/usr/lib/postgresql/15/bin"

// Role names created by NewPair.
const (
	AdminUser = "drctl_admin"      // superuser; owns the cluster
	AppUser   = "app"              // ordinary login role
	AppDB     = "app"              // database owned by AppUser
	ReplUser  = "drctl_replicator" // REPLICATION LOGIN, used by standbys
)

// ErrNotInstalled is returned (wrapped) by NewPair when the PostgreSQL
// binaries or the OS user to run them are missing; tests skip on it.
var ErrNotInstalled = errors.New("PostgreSQL 15 server binaries not installed")

// Options configures a Pair.
type Options struct {
	// Dir is the base directory; it and its parents must be traversable by
	// the OS user running the servers (t.TempDir() is not, when run as
	// root). Empty: a new directory under os.TempDir(), removed by Close.
	// Otherwise Close removes only the node directories it created in it.
	Dir string
	// BinDir holds initdb, postgres, pg_basebackup and pg_rewind.
	// Empty: DefaultBinDir.
	BinDir string
	// OSUser runs the servers and tools when the caller is root.
	// Empty: "postgres". Ignored when the caller is not root.
	OSUser string
	// Log receives server and tool output, each line prefixed with the
	// node name. Nil: each node writes to server.log in its own directory.
	// It is never written to after Close returns.
	Log io.Writer
	// Addresses, when set, are the loopback addresses pg1 and pg2 listen
	// on (e.g. 127.0.0.11 and 127.0.0.12), both on one port, so a client
	// that finds the primary by a DNS name reaches either node with the
	// same host:port once the name moves; pg_hba.conf then admits all of
	// 127.0.0.0/8. Empty: both nodes on 127.0.0.1, each on its own port.
	Addresses [2]string
}

// Pair is a primary with one streaming standby. The exported fields are set
// by NewPair and never changed.
type Pair struct {
	// Primary and Standby are the initial roles (nodes "pg1" and "pg2").
	Primary, Standby *Node
	// Dir is the base directory holding one directory per node.
	Dir string

	AdminPassword string // for AdminUser, a superuser
	AppPassword   string // for AppUser, owner of database AppDB
	ReplPassword  string // for ReplUser, used in primary_conninfo

	env       *env
	removeDir bool // Dir was created by NewPair
	closeOnce sync.Once
	closeErr  error
}

// env is what every node and tool run of a pair shares.
type env struct {
	binDir string
	cred   *syscall.Credential // nil: run as the caller
	logMu  sync.Mutex          // serialises writes to a shared Options.Log
	// hbaNetwork is the network pg_hba.conf admits password logins from.
	hbaNetwork string
}

// NewPair creates and starts a primary and a standby streaming from it, and
// returns once pg_stat_replication on the primary shows the standby as
// 'streaming'. ctx bounds the whole set-up; on failure everything started
// is stopped and removed.
func NewPair(ctx context.Context, o Options) (*Pair, error) {
	e := &env{binDir: o.BinDir, hbaNetwork: loopback + "/32"}
	if (o.Addresses[0] == "") != (o.Addresses[1] == "") {
		return nil, errors.New("pglab: Options.Addresses names both nodes' addresses or neither")
	}
	if o.Addresses[0] != "" {
		e.hbaNetwork = "127.0.0.0/8"
	}
	if e.binDir == "" {
		e.binDir = DefaultBinDir
	}
	for _, tool := range []string{"initdb", "postgres", "pg_basebackup", "pg_rewind"} {
		if _, err := os.Stat(filepath.Join(e.binDir, tool)); err != nil {
			return nil, fmt.Errorf("pglab: %w: %v", ErrNotInstalled, err)
		}
	}
	if os.Geteuid() == 0 {
		name := o.OSUser
		if name == "" {
			name = "postgres"
		}
		cred, err := Credential(name)
		if err != nil {
			return nil, fmt.Errorf("pglab: %w: OS user %q: %v", ErrNotInstalled, name, err)
		}
		e.cred = cred
	}

	p := &Pair{env: e, Dir: o.Dir}
	if p.Dir == "" {
		dir, err := os.MkdirTemp("", "pglab-")
		if err != nil {
			return nil, fmt.Errorf("pglab: create base dir: %w", err)
		}
		p.Dir, p.removeDir = dir, true
		if err := e.chown(dir); err != nil {
			_ = os.RemoveAll(dir)
			return nil, fmt.Errorf("pglab: chown base dir: %w", err)
		}
	}
	// Resolve symlinks once: Kill finds a node's processes by comparing
	// their working directory with DataDir.
	dir, err := filepath.EvalSymlinks(p.Dir)
	if err == nil {
		dir, err = filepath.Abs(dir)
	}
	if err != nil {
		p.cleanupDirs()
		return nil, fmt.Errorf("pglab: base dir %s: %w", p.Dir, err)
	}
	p.Dir = dir

	for _, pw := range []*string{&p.AdminPassword, &p.AppPassword, &p.ReplPassword} {
		if *pw, err = randomPassword(); err != nil {
			p.cleanupDirs()
			return nil, fmt.Errorf("pglab: generate password: %w", err)
		}
	}
	if p.Primary, err = p.newNode("pg1", o.Addresses[0], o.Log); err == nil {
		p.Standby, err = p.newNode("pg2", o.Addresses[1], o.Log)
	}
	if err == nil && o.Addresses[0] != "" {
		// One port on both addresses, fixed before the first start.
		var port int
		if port, err = ports.Free(o.Addresses[0], o.Addresses[1]); err == nil {
			p.Primary.Port, p.Standby.Port = port, port
		} else {
			err = fmt.Errorf("pglab: pick a port: %w", err)
		}
	}
	if err == nil {
		err = p.setUp(ctx)
	}
	if err != nil {
		_ = p.Close()
		return nil, err
	}
	return p, nil
}

func (p *Pair) setUp(ctx context.Context) error {
	pri, sby := p.Primary, p.Standby
	if err := pri.initdb(ctx); err != nil {
		return err
	}
	if err := pri.Start(ctx); err != nil {
		return err
	}
	if err := p.createRoles(ctx); err != nil {
		return err
	}
	err := sby.runTool(ctx, "base backup", []string{"PGPASSWORD=" + p.ReplPassword}, "pg_basebackup",
		"--pgdata="+sby.DataDir,
		"--dbname="+conninfo(pri.Host, pri.Port, ReplUser, "", ""),
		"--checkpoint=fast", "--wal-method=stream", "--no-sync", "--no-password")
	if err != nil {
		return err
	}
	if err := p.followPrimary(sby, pri); err != nil {
		return err
	}
	if err := sby.Start(ctx); err != nil {
		return err
	}
	return p.WaitStreaming(ctx, sby, pri)
}

// createRoles creates the app and replication roles from SCRAM verifiers, so
// that no password is ever part of a statement the server might log.
func (p *Pair) createRoles(ctx context.Context) error {
	conn, err := p.Primary.Connect(ctx)
	if err != nil {
		return p.Primary.errorf("create roles", err)
	}
	defer conn.Close(context.Background())
	appVerifier, err := scramVerifier(p.AppPassword)
	if err != nil {
		return p.Primary.errorf("create roles", err)
	}
	replVerifier, err := scramVerifier(p.ReplPassword)
	if err != nil {
		return p.Primary.errorf("create roles", err)
	}
	for _, stmt := range []string{
		"CREATE ROLE " + AppUser + " LOGIN PASSWORD " + quoteLiteral(appVerifier),
		"CREATE ROLE " + ReplUser + " REPLICATION LOGIN PASSWORD " + quoteLiteral(replVerifier),
		"CREATE DATABASE " + AppDB + " OWNER " + AppUser,
	} {
		if _, err := conn.Exec(ctx, stmt); err != nil {
			// The statement holds verifiers only; name it by its first words.
			return p.Primary.errorf("create roles", fmt.Errorf("%s: %w", strings.Join(strings.Fields(stmt)[:3], " "), err))
		}
	}
	return nil
}

// Close stops both nodes (fast shutdown; SIGKILL if that fails) and removes
// the directories NewPair created. It is safe to call more than once.
func (p *Pair) Close() error {
	p.closeOnce.Do(func() {
		var errs []error
		for _, n := range []*Node{p.Standby, p.Primary} {
			if n == nil {
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			if err := n.Stop(ctx); err != nil {
				if err := n.Kill(); err != nil {
					errs = append(errs, err)
				}
			}
			cancel()
			n.closeLog()
		}
		if len(errs) == 0 {
			if err := p.cleanupDirs(); err != nil {
				errs = append(errs, err)
			}
		}
		p.closeErr = errors.Join(errs...)
	})
	return p.closeErr
}

func (p *Pair) cleanupDirs() error {
	if p.removeDir {
		if err := os.RemoveAll(p.Dir); err != nil {
			return fmt.Errorf("pglab: remove %s: %w", p.Dir, err)
		}
		return nil
	}
	for _, n := range []*Node{p.Primary, p.Standby} {
		if n == nil {
			continue
		}
		if err := os.RemoveAll(n.Dir); err != nil {
			return fmt.Errorf("pglab: remove %s: %w", n.Dir, err)
		}
	}
	return nil
}

// Rewind rejoins oldPrimary as a standby of newPrimary (already promoted):
// it stops oldPrimary if it still runs, runs pg_rewind against newPrimary
// (pg_rewind itself runs crash recovery first when the node was killed),
// points it at newPrimary, starts it and waits until it streams. Writes the
// old primary made after the point of divergence are discarded.
func (p *Pair) Rewind(ctx context.Context, oldPrimary, newPrimary *Node) error {
	if oldPrimary == newPrimary {
		return oldPrimary.errorf("rewind", errors.New("a node cannot follow itself"))
	}
	if oldPrimary.Running() {
		if err := oldPrimary.Stop(ctx); err != nil {
			if err := oldPrimary.Kill(); err != nil {
				return err
			}
		}
	}
	// pg_rewind reads the source's timeline from its control file, which a
	// just-promoted server updates only at the end of its first (spread,
	// seconds-long) checkpoint; until then pg_rewind reports "no rewind
	// required" and the node cannot follow. CHECKPOINT finishes it now.
	var inRecovery bool
	if err := newPrimary.QueryRow(ctx, "SELECT pg_is_in_recovery()").Scan(&inRecovery); err != nil {
		return oldPrimary.errorf("rewind", err)
	}
	if inRecovery {
		return oldPrimary.errorf("rewind", fmt.Errorf("source %s is in recovery; promote it first", newPrimary))
	}
	if err := newPrimary.Exec(ctx, "CHECKPOINT"); err != nil {
		return oldPrimary.errorf("rewind", err)
	}
	// pg_rewind copies newPrimary's configuration files over oldPrimary's;
	// the port and socket come from the command line and primary_conninfo
	// is rewritten below, so nothing of oldPrimary's own is lost.
	err := oldPrimary.runTool(ctx, "rewind", []string{"PGPASSWORD=" + p.AdminPassword}, "pg_rewind",
		"--target-pgdata="+oldPrimary.DataDir,
		"--source-server="+conninfo(newPrimary.Host, newPrimary.Port, AdminUser, "", "postgres"),
		"--no-sync")
	if err != nil {
		return err
	}
	if err := p.followPrimary(oldPrimary, newPrimary); err != nil {
		return err
	}
	if err := oldPrimary.Start(ctx); err != nil {
		return err
	}
	return p.WaitStreaming(ctx, oldPrimary, newPrimary)
}

// followPrimary makes the stopped node n a standby of primary: it writes
// standby.signal and replaces primary_conninfo in postgresql.auto.conf.
func (p *Pair) followPrimary(n, primary *Node) error {
	const op = "configure standby"
	if err := n.writeFile(filepath.Join(n.DataDir, "standby.signal"), nil); err != nil {
		return n.errorf(op, err)
	}
	autoConf := filepath.Join(n.DataDir, "postgresql.auto.conf")
	old, err := os.ReadFile(autoConf)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return n.errorf(op, err)
	}
	var b strings.Builder
	for line := range strings.Lines(string(old)) {
		key := strings.TrimSpace(line)
		if strings.HasPrefix(key, "primary_conninfo") || strings.HasPrefix(key, "primary_slot_name") {
			continue
		}
		b.WriteString(line)
		if !strings.HasSuffix(line, "\n") {
			b.WriteString("\n")
		}
	}
	ci := conninfo(primary.Host, primary.Port, ReplUser, p.ReplPassword, "") + " application_name=" + n.Name
	fmt.Fprintf(&b, "primary_conninfo = %s\n", quoteConf(ci))
	if err := n.writeFile(autoConf, []byte(b.String())); err != nil {
		return n.errorf(op, err)
	}
	return nil
}

// WaitStreaming polls until standby streams from primary: pg_stat_replication
// on the primary shows it (by application_name) in state 'streaming', and
// its WAL receiver is on the primary's current timeline. The second check
// matters after a failover: a standby that cannot follow the new timeline
// connects, streams the old one for a moment and disconnects, over and over.
// primary must be a primary (not in recovery). It fails early when either
// server stops running.
func (p *Pair) WaitStreaming(ctx context.Context, standby, primary *Node) error {
	op := fmt.Sprintf("wait for %s (port %d) to stream from", standby.Name, standby.Port)
	last := "no connection to the primary"
	var pconn, sconn *pgx.Conn
	defer func() {
		for _, c := range []*pgx.Conn{pconn, sconn} {
			if c != nil {
				c.Close(context.Background())
			}
		}
	}()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		if !standby.Running() {
			return primary.errorf(op, fmt.Errorf("%s is not running%s", standby.Name, standby.logTail()))
		}
		if !primary.Running() {
			return primary.errorf(op, errors.New("the primary is not running"))
		}
		done, err := streaming(ctx, &pconn, &sconn, standby, primary)
		if done {
			return nil
		}
		last = err.Error()
		select {
		case <-ctx.Done():
			return primary.errorf(op, fmt.Errorf("%w (last: %s)%s", ctx.Err(), last, standby.logTail()))
		case <-tick.C:
		}
	}
}

// streaming checks WaitStreaming's condition once, (re)opening the
// connections as needed; the error says what is still missing.
func streaming(ctx context.Context, pconn, sconn **pgx.Conn, standby, primary *Node) (bool, error) {
	reset := func(c **pgx.Conn) {
		(*c).Close(context.Background())
		*c = nil
	}
	for _, c := range []struct {
		conn **pgx.Conn
		node *Node
	}{{pconn, primary}, {sconn, standby}} {
		if *c.conn == nil {
			conn, err := c.node.Connect(ctx)
			if err != nil {
				return false, fmt.Errorf("connect to %s: %w", c.node.Name, err)
			}
			*c.conn = conn
		}
	}
	var state, walfile string
	err := (*pconn).QueryRow(ctx, `SELECT coalesce(max(state), ''), pg_walfile_name(pg_current_wal_lsn())
		FROM pg_stat_replication WHERE application_name = $1`, standby.Name).Scan(&state, &walfile)
	if err != nil {
		reset(pconn)
		return false, fmt.Errorf("query %s: %w", primary.Name, err)
	}
	switch state {
	case "streaming":
	case "":
		return false, fmt.Errorf("no walsender for %s", standby.Name)
	default:
		return false, fmt.Errorf("walsender state %s", state)
	}
	// A WAL file name starts with the timeline ID in 8 hex digits.
	tli, err := strconv.ParseUint(walfile[:min(8, len(walfile))], 16, 32)
	if err != nil {
		return false, fmt.Errorf("timeline of WAL file %q: %w", walfile, err)
	}
	var status string
	var receivedTLI int64
	err = (*sconn).QueryRow(ctx, `SELECT coalesce(max(status), ''), coalesce(max(received_tli), 0)
		FROM pg_stat_wal_receiver`).Scan(&status, &receivedTLI)
	if err != nil {
		reset(sconn)
		return false, fmt.Errorf("query %s: %w", standby.Name, err)
	}
	if status != "streaming" || uint64(receivedTLI) != tli {
		return false, fmt.Errorf("WAL receiver %q on timeline %d, primary on %d", status, receivedTLI, tli)
	}
	return true, nil
}

// String names the pair without its passwords.
func (p *Pair) String() string {
	return fmt.Sprintf("pglab pair %s, %s in %s", p.Primary, p.Standby, p.Dir)
}

// Credential is the OS user name's credential, for starting a process as
// that user (PostgreSQL refuses root).
func Credential(name string) (*syscall.Credential, error) {
	u, err := user.Lookup(name)
	if err != nil {
		return nil, err
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, err
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return nil, err
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}}, nil
}

// chown gives path to the OS user running the servers (no-op when that is
// the caller).
func (e *env) chown(path string) error {
	if e.cred == nil {
		return nil
	}
	return os.Chown(path, int(e.cred.Uid), int(e.cred.Gid))
}

func randomPassword() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}

// conninfo builds a libpq keyword/value string for host:port; empty
// password and db are left out.
func conninfo(host string, port int, user, password, db string) string {
	s := fmt.Sprintf("host=%s port=%d user=%s", host, port, quoteConnValue(user))
	if password != "" {
		s += " password=" + quoteConnValue(password)
	}
	if db != "" {
		s += " dbname=" + quoteConnValue(db)
	}
	return s + " sslmode=disable"
}

func quoteConnValue(v string) string {
	if v != "" && !strings.ContainsAny(v, ` '\`) {
		return v
	}
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(v) + "'"
}

// quoteLiteral quotes s as an SQL string literal
// (standard_conforming_strings is on).
func quoteLiteral(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}

// quoteConf quotes s as a postgresql.conf string value, where backslash
// escapes are processed.
func quoteConf(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `''`).Replace(s) + "'"
}
