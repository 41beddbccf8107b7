//go:build linux

package pglab

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/drctl/drctl/internal/testwait"

	"github.com/jackc/pgx/v5"

	"github.com/drctl/drctl/internal/proclog"
)

// newPair starts a pair for one test and closes it when the test ends.
func newPair(t *testing.T, ctx context.Context) *Pair {
	t.Helper()
	start := time.Now()
	p, err := NewPair(ctx, Options{})
	if errors.Is(err, ErrNotInstalled) && os.Getenv("DRCTL_CI") == "" {
		t.Skip("PostgreSQL 15 is needed (apt-get install postgresql-15); CI sets DRCTL_CI=1 and fails instead: ", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("NewPair (initdb, start, base backup, start, streaming): %v", time.Since(start).Round(time.Millisecond))
	t.Cleanup(func() {
		if t.Failed() {
			for _, n := range []*Node{p.Primary, p.Standby} {
				if b, err := os.ReadFile(filepath.Join(n.Dir, "server.log")); err == nil {
					t.Logf("%s's server.log:\n%s", n.Name, proclog.LastLines(string(b), 40))
				}
			}
		}
		if err := p.Close(); err != nil {
			t.Error(err)
		}
	})
	return p
}

// alive reports whether pid runs and is a postgres process. Zombies count as
// gone: an orphan is reaped whenever init gets to it (lazily on some hosts).
// The name check guards against PID reuse.
func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// pid (comm) state ...
	s := string(b)
	open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 0 || end < open || len(s) < end+3 {
		return false
	}
	return s[open+1:end] == "postgres" && s[end+2] != 'Z'
}

// waitRow polls n until table t holds a row with id, or ctx ends.
func waitRow(ctx context.Context, n *Node, id int) error {
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		var found bool
		err := n.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM t WHERE id = $1)", id).Scan(&found)
		if err == nil && found {
			return nil
		}
		select {
		case <-ctx.Done():
			return errors.Join(ctx.Err(), err)
		case <-tick.C:
		}
	}
}

func hasRow(t *testing.T, ctx context.Context, n *Node, id int) bool {
	t.Helper()
	var found bool
	if err := n.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM t WHERE id = $1)", id).Scan(&found); err != nil {
		t.Fatal(err)
	}
	return found
}

func TestNewPairReplicates(t *testing.T) {
	ctx := testwait.Context(t)
	p := newPair(t, ctx)

	for n, want := range map[*Node]bool{p.Primary: false, p.Standby: true} {
		got, err := n.InRecovery(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("%s: in recovery = %v, want %v", n, got, want)
		}
	}

	// The app role owns its database and can write to it.
	conn, err := pgx.Connect(ctx, p.Primary.DSN(AppUser, p.AppPassword, AppDB))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE TABLE app_t (v text); INSERT INTO app_t VALUES ('x')"); err != nil {
		t.Fatal(err)
	}

	if err := p.Primary.Exec(ctx, "CREATE TABLE t (id int PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := p.Primary.Exec(ctx, "INSERT INTO t VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	if err := waitRow(ctx, p.Standby, 1); err != nil {
		t.Fatalf("row never reached the standby: %v", err)
	}
	t.Logf("write visible on the standby after %v", time.Since(start).Round(time.Millisecond))

	// The standby refuses writes.
	if err := p.Standby.Exec(ctx, "INSERT INTO t VALUES (2)"); err == nil {
		t.Error("write on the standby succeeded")
	}
	// A restart keeps the port; if another process holds it, Start says so.
	if err := p.Standby.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p.Standby.Port))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Standby.Start(ctx); !errors.Is(err, errPortInUse) {
		t.Errorf("start on a taken port: %v, want errPortInUse", err)
	}
	l.Close()
	if err := p.Standby.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := p.WaitStreaming(ctx, p.Standby, p.Primary); err != nil {
		t.Fatal(err)
	}

	// Errors name node and port but never a password.
	for _, err := range []error{
		p.Standby.Exec(ctx, "INSERT INTO t VALUES (2)"),
		p.Primary.Exec(ctx, "SELECT no_such_function()"),
	} {
		msg := err.Error()
		if !strings.Contains(msg, strconv.Itoa(p.Standby.Port)) && !strings.Contains(msg, strconv.Itoa(p.Primary.Port)) {
			t.Errorf("error does not name the port: %v", err)
		}
		for _, pw := range []string{p.AdminPassword, p.AppPassword, p.ReplPassword} {
			if strings.Contains(msg, pw) {
				t.Errorf("error leaks a password: %v", err)
			}
		}
	}
}

// TestFailoverAndRewind crashes the primary with writes the standby never
// received, promotes the standby, writes on it, and rejoins the old primary
// with pg_rewind: the new write arrives, the lost one is gone.
func TestFailoverAndRewind(t *testing.T) {
	ctx := testwait.Context(t)
	p := newPair(t, ctx)
	oldPri, newPri := p.Primary, p.Standby

	if err := oldPri.Exec(ctx, "CREATE TABLE t (id int PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}
	if err := oldPri.Exec(ctx, "INSERT INTO t VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	if err := waitRow(ctx, newPri, 1); err != nil {
		t.Fatal(err)
	}

	// Diverge: a write only the old primary has, then a crash.
	if err := newPri.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if err := oldPri.Exec(ctx, "INSERT INTO t VALUES (2)"); err != nil {
		t.Fatal(err)
	}
	oldPID := oldPri.PID()
	start := time.Now()
	if err := oldPri.Kill(); err != nil {
		t.Fatal(err)
	}
	t.Logf("Kill: %v", time.Since(start).Round(time.Millisecond))
	if oldPri.Running() || oldPri.PID() != 0 {
		t.Fatal("old primary still running after Kill")
	}
	if alive(oldPID) {
		t.Fatalf("postmaster %d still exists after Kill", oldPID)
	}
	if pids := processesIn(oldPri.DataDir); len(pids) > 0 {
		t.Fatalf("server processes %v left after Kill", pids)
	}

	if err := newPri.Start(ctx); err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	if err := newPri.Exec(ctx, "SELECT pg_promote(true)"); err != nil {
		t.Fatal(err)
	}
	t.Logf("pg_promote(true): %v", time.Since(start).Round(time.Millisecond))
	if rec, err := newPri.InRecovery(ctx); err != nil || rec {
		t.Fatalf("new primary in recovery = %v, %v", rec, err)
	}
	if err := newPri.Exec(ctx, "INSERT INTO t VALUES (3)"); err != nil {
		t.Fatal(err)
	}

	start = time.Now()
	if err := p.Rewind(ctx, oldPri, newPri); err != nil {
		t.Fatal(err)
	}
	t.Logf("Rewind of the killed primary (pg_rewind with crash recovery, start, streaming): %v", time.Since(start).Round(time.Millisecond))

	if rec, err := oldPri.InRecovery(ctx); err != nil || !rec {
		t.Fatalf("rewound node in recovery = %v, %v", rec, err)
	}
	if err := waitRow(ctx, oldPri, 3); err != nil {
		t.Fatalf("new primary's write never reached the rewound node: %v", err)
	}
	if hasRow(t, ctx, oldPri, 2) {
		t.Error("the write lost in the crash survived pg_rewind")
	}
	if !hasRow(t, ctx, oldPri, 1) {
		t.Error("the replicated write is missing after pg_rewind")
	}

	// And back: a planned switchover (clean stop, no crash recovery).
	if err := oldPri.Stop(ctx); err != nil { // keep it stopped while newPri moves on
		t.Fatal(err)
	}
	if err := newPri.Exec(ctx, "INSERT INTO t VALUES (4)"); err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	if err := p.Rewind(ctx, oldPri, newPri); err != nil {
		t.Fatal(err)
	}
	t.Logf("Rewind of a cleanly stopped standby: %v", time.Since(start).Round(time.Millisecond))
	if err := waitRow(ctx, oldPri, 4); err != nil {
		t.Fatal(err)
	}
}

func TestCloseStopsEverythingAndRemovesDirs(t *testing.T) {
	ctx := testwait.Context(t)
	var log strings.Builder // Close returns only after the last write
	p, err := NewPair(ctx, Options{Log: &log})
	if errors.Is(err, ErrNotInstalled) && os.Getenv("DRCTL_CI") == "" {
		t.Skip("PostgreSQL 15 is needed (apt-get install postgresql-15); CI sets DRCTL_CI=1 and fails instead: ", err)
	}
	if err != nil {
		t.Fatal(err)
	}

	var pids []int
	for _, n := range []*Node{p.Primary, p.Standby} {
		if n.PID() == 0 {
			t.Fatalf("%s not running", n)
		}
		ps := processesIn(n.DataDir)
		if len(ps) < 2 {
			t.Fatalf("%s: want the postmaster and its children, found %v", n, ps)
		}
		pids = append(pids, ps...)
	}
	start := time.Now()
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	t.Logf("Close: %v", time.Since(start).Round(time.Millisecond))
	for _, pid := range pids {
		if alive(pid) {
			t.Errorf("server process %d still running after Close", pid)
		}
	}
	if _, err := os.Stat(p.Dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s not removed: %v", p.Dir, err)
	}
	if p.Primary.Running() || p.Standby.Running() {
		t.Error("Running() after Close")
	}
	if err := p.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}

	out := log.String()
	for _, want := range []string{"pg1: ", "pg2: ", "pg1: The files belonging to this database system", "database system is shut down"} {
		if !strings.Contains(out, want) {
			t.Errorf("shared log lacks %q", want)
		}
	}
	for line := range strings.Lines(out) {
		if !strings.HasPrefix(line, "pg1: ") && !strings.HasPrefix(line, "pg2: ") {
			t.Errorf("log line without node prefix: %q", line)
			break
		}
	}
	for _, pw := range []string{p.AdminPassword, p.AppPassword, p.ReplPassword} {
		if strings.Contains(out, pw) {
			t.Error("the log contains a password")
		}
	}
}

// TestServersDieWithTheirParent kills a test process that holds a pair
// without closing it: the servers must not outlive it (parent-death signal).
func TestServersDieWithTheirParent(t *testing.T) {
	if os.Getenv("PGLAB_HOLD_PAIR") == "1" {
		holdPair()
		return
	}
	if _, err := os.Stat(filepath.Join(DefaultBinDir, "postgres")); err != nil {
		t.Skip(err)
	}
	ctx := testwait.Context(t)
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestServersDieWithTheirParent$")
	cmd.Env = append(os.Environ(), "PGLAB_HOLD_PAIR=1")
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	var dir string
	var pids []int
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if d, ok := strings.CutPrefix(sc.Text(), "dir "); ok {
			dir = d
			continue
		}
		if ps, ok := strings.CutPrefix(sc.Text(), "pids "); ok {
			for _, f := range strings.Fields(ps) {
				pid, _ := strconv.Atoi(f)
				pids = append(pids, pid)
			}
			break
		}
	}
	if dir == "" || len(pids) == 0 {
		t.Fatal("helper did not report its pair")
	}
	defer os.RemoveAll(dir) // Close never ran in the helper
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for _, pid := range pids {
		for alive(pid) {
			select {
			case <-ctx.Done():
				t.Fatalf("server process %d outlived its parent", pid)
			case <-tick.C:
			}
		}
	}
	t.Logf("%d server processes gone %v after the parent was killed", len(pids), time.Since(start).Round(time.Millisecond))
}

// holdPair runs in the helper process: start a pair, report it, wait to be killed.
func holdPair() {
	ctx, cancel := context.WithTimeout(context.Background(), testwait.Bound)
	defer cancel()
	p, err := NewPair(ctx, Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	var pids []string
	for _, n := range []*Node{p.Primary, p.Standby} {
		for _, pid := range processesIn(n.DataDir) {
			pids = append(pids, strconv.Itoa(pid))
		}
	}
	fmt.Printf("dir %s\npids %s\n", p.Dir, strings.Join(pids, " "))
	<-ctx.Done()
	_ = p.Close()
}

func TestSCRAMVerifierFormat(t *testing.T) {
	v, err := scramVerifier("secret")
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(v, "$")
	if len(parts) != 3 || parts[0] != "SCRAM-SHA-256" || !strings.HasPrefix(parts[1], "4096:") || strings.Count(parts[2], ":") != 1 {
		t.Errorf("verifier %q has the wrong shape", v)
	}
	if strings.Contains(v, "secret") {
		t.Error("verifier contains the password")
	}
}

func TestQuoting(t *testing.T) {
	for in, want := range map[string]string{
		"plain": "plain",
		"":      "''",
		"a b":   `'a b'`,
		`it's`:  `'it\'s'`,
		`a\b`:   `'a\\b'`,
	} {
		if got := quoteConnValue(in); got != want {
			t.Errorf("quoteConnValue(%q) = %s, want %s", in, got, want)
		}
	}
	if got := quoteConf(`x='a\b'`); got != `'x=''a\\b'''` {
		t.Errorf("quoteConf = %s", got)
	}
}

// With Options.Addresses each node listens on an address of its own and
// both share one port, so a DNS name can move between them; replication,
// failover and rewind work as on 127.0.0.1.
func TestAddressesShareOnePort(t *testing.T) {
	ctx := testwait.Context(t)
	p, err := NewPair(ctx, Options{Addresses: [2]string{"127.0.0.11", "127.0.0.12"}})
	if errors.Is(err, ErrNotInstalled) && os.Getenv("DRCTL_CI") == "" {
		t.Skip("PostgreSQL 15 is needed (apt-get install postgresql-15); CI sets DRCTL_CI=1 and fails instead: ", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := p.Close(); err != nil {
			t.Error(err)
		}
	}()
	if p.Primary.Port != p.Standby.Port || p.Primary.Host != "127.0.0.11" || p.Standby.Host != "127.0.0.12" {
		t.Fatalf("nodes on %s and %s, want 127.0.0.11 and 127.0.0.12 on one port", p.Primary, p.Standby)
	}
	if !strings.Contains(p.Standby.StartOptions(), "listen_addresses=127.0.0.12") {
		t.Errorf("StartOptions %q lacks the node's address", p.Standby.StartOptions())
	}
	for _, n := range []*Node{p.Primary, p.Standby} {
		var addr string
		if err := n.QueryRow(ctx, "SELECT host(inet_server_addr())").Scan(&addr); err != nil {
			t.Fatal(err)
		}
		if addr != n.Host {
			t.Errorf("%s: connected to %s, want %s", n.Name, addr, n.Host)
		}
	}
	if err := p.Primary.Exec(ctx, "CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	if err := waitRow(ctx, p.Standby, 1); err != nil {
		t.Fatal(err)
	}
	if err := p.Standby.Exec(ctx, "SELECT pg_promote()"); err != nil {
		t.Fatal(err)
	}
	if err := p.Rewind(ctx, p.Primary, p.Standby); err != nil {
		t.Fatal(err)
	}
}
