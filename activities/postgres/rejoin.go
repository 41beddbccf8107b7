package postgres

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/drctl/drctl/activities"
	"github.com/drctl/drctl/runbooks"
)

// Rejoin is postgres.rejoin: turn an old primary into a streaming standby
// of the new primary (pg_rewind, standby.signal, primary_conninfo, start),
// for failback. It works on the old primary's data directory, so the step
// must run on a worker on that host (see the README: routing steps).
type Rejoin struct{ *Provider }

var _ activities.Action = Rejoin{}

type rejoinInput struct {
	Target       string `json:"target"`
	Source       string `json:"source"`
	DataDir      string `json:"data_dir"`
	BinDir       string `json:"bin_dir"`
	OSUser       string `json:"os_user"`
	StartOptions string `json:"start_options"`
	Replication  string `json:"replication"`
}

// ReplicationKind is the kind of a target whose credentials hold the DSN of
// a REPLICATION role, which a rejoined standby streams with.
const ReplicationKind = "postgres-replication"

// Spec implements activities.Action.
func (Rejoin) Spec() runbooks.ActionSpec {
	return runbooks.ActionSpec{
		Name:  "postgres.rejoin",
		Undo:  runbooks.UndoImpossible,
		Reach: runbooks.ReachSite, // pg_rewind and pg_ctl on the data directory
		Doc: "Make an old primary a streaming standby of the new primary: stop it, pg_rewind it from the source, " +
			"write standby.signal and primary_conninfo, start it, verify it streams. Runs on the old primary's host.",
		Inputs: []runbooks.InputSpec{
			{Name: "target", Type: runbooks.TypeTarget, Kinds: []string{TargetKind}, Required: true, Doc: "the old primary"},
			{Name: "source", Type: runbooks.TypeTarget, Kinds: []string{TargetKind}, Required: true, Doc: "the new primary it will follow"},
			{Name: "data_dir", Type: runbooks.TypeString, Required: true, Doc: "the old primary's data directory on this host"},
			{Name: "bin_dir", Type: runbooks.TypeString, Doc: "PostgreSQL binaries (default /usr/lib/postgresql/15/bin)"},
			{Name: "os_user", Type: runbooks.TypeString, Doc: "the server's OS user (default postgres)"},
			{Name: "start_options", Type: runbooks.TypeString, Doc: "options for the server (pg_ctl -o), e.g. \"-c port=5433\""},
			{Name: "replication", Type: runbooks.TypeTarget, Kinds: []string{ReplicationKind, TargetKind}, Doc: "target (kind postgres-replication) whose credentials the standby streams with: a REPLICATION role's DSN to the new primary; default: source"},
		},
		Outputs: []string{"timeline"},
	}
}

func (in *rejoinInput) defaults() error {
	if in.BinDir == "" {
		in.BinDir = "/usr/lib/postgresql/15/bin"
	}
	if in.OSUser == "" {
		in.OSUser = "postgres"
	}
	if !filepath.IsAbs(in.DataDir) {
		return activities.Permanentf("data_dir %q must be an absolute path on the worker's host", in.DataDir)
	}
	if st, err := os.Stat(filepath.Join(in.DataDir, "PG_VERSION")); err != nil || st.IsDir() {
		return activities.Permanentf("data_dir %s is not a PostgreSQL data directory on worker %s; run this step on the old primary's host", in.DataDir, activities.WorkerHost())
	}
	return nil
}

// streamingFrom reports whether the node is a standby whose WAL receiver
// streams the source's current timeline from the source's address. A
// receiver that is "streaming" an older timeline is a standby that cannot
// follow (it diverged); it is not rejoined.
func (n *node) streamingFrom(ctx context.Context, src *node, srcTimeline int) (bool, error) {
	var (
		status, host string
		port, tli    int32
	)
	err := n.conn.QueryRow(ctx, `SELECT status, coalesce(sender_host, ''), coalesce(sender_port, 0), coalesce(received_tli, 0) FROM pg_stat_wal_receiver`).Scan(&status, &host, &port, &tli)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, n.queryErr("read WAL receiver", err)
	}
	return status == "streaming" && int(tli) == srcTimeline && net.JoinHostPort(host, strconv.Itoa(int(port))) == src.addr, nil
}

// Observe implements activities.Action.
func (a Rejoin) Observe(ctx context.Context, req activities.Request) (activities.Observation, error) {
	var in rejoinInput
	if err := activities.Decode(a.Spec(), req.With, &in); err != nil {
		return activities.Observation{}, err
	}
	src, err := a.connect(ctx, req, in.Source)
	if err != nil {
		return activities.Observation{}, err
	}
	defer src.Close()
	ss, err := src.status(ctx)
	if err != nil {
		return activities.Observation{}, err
	}
	state := map[string]string{}
	a.addFacts(state, req, in.Source, &ss)
	t, err := a.connect(ctx, req, in.Target)
	if err != nil {
		a.addFacts(state, req, in.Target, nil)
		return activities.Observation{Current: in.Target + " is not reachable", Changes: []string{"pg_rewind " + in.Target + " from " + in.Source + ", start it as a standby"}, State: state}, nil
	}
	defer t.Close()
	st, err := t.status(ctx)
	if err != nil {
		return activities.Observation{}, err
	}
	a.addFacts(state, req, in.Target, &st)
	ok, err := t.streamingFrom(ctx, src, ss.Timeline)
	if err != nil {
		return activities.Observation{}, err
	}
	if ok {
		return activities.Observation{Current: in.Target + " streams from " + in.Source, State: state}, nil
	}
	return activities.Observation{Current: in.Target + ": " + st.summary(), Changes: []string{"stop " + in.Target + ", pg_rewind it from " + in.Source + ", start it as a standby"}, State: state}, nil
}

// Apply implements activities.Action.
func (a Rejoin) Apply(ctx context.Context, req activities.Request) (activities.Result, error) {
	var in rejoinInput
	if err := activities.Decode(a.Spec(), req.With, &in); err != nil {
		return activities.Result{}, err
	}
	if err := in.defaults(); err != nil {
		return activities.Result{}, err
	}
	src, err := a.connect(ctx, req, in.Source)
	if err != nil {
		return activities.Result{}, err
	}
	defer src.Close()
	ss, err := src.status(ctx)
	if err != nil {
		return activities.Result{}, err
	}
	if ss.Role != RolePrimary {
		return activities.Result{}, fmt.Errorf("rejoin %s: source %s is not a primary (it is a %s); promote it first", in.Target, in.Source, ss.Role)
	}
	if t, err := a.connect(ctx, req, in.Target); err == nil {
		ok, serr := t.streamingFrom(ctx, src, ss.Timeline)
		if serr == nil && !ok {
			serr = a.safeToRewind(ctx, in, src, t)
		}
		t.Close()
		if serr != nil {
			return activities.Result{}, serr
		}
		if ok {
			return activities.Result{Summary: in.Target + " already streams from " + in.Source, Outputs: map[string]any{"timeline": ss.Timeline}}, nil
		}
	} else if err := a.sameCluster(ctx, in, src); err != nil {
		return activities.Result{}, err
	}
	cfg, err := a.dsnConfig(req, in.Source)
	if err != nil {
		return activities.Result{}, err
	}
	conninfo := connString(cfg, "dbname", cfg.Database)
	env := []string{"PGPASSWORD=" + cfg.Password, "PGCONNECT_TIMEOUT=10"}
	repl := cfg
	if in.Replication != "" {
		if repl, err = a.dsnConfig(req, in.Replication); err != nil {
			return activities.Result{}, err
		}
	}
	streamInfo := connString(repl, "application_name", in.Target)

	pgctl := filepath.Join(in.BinDir, "pg_ctl")
	if running(ctx, in, pgctl) {
		if err := runAs(ctx, in.OSUser, nil, pgctl, "-D", in.DataDir, "-m", "fast", "-w", "-t", "60", "stop"); err != nil {
			return activities.Result{}, fmt.Errorf("rejoin %s: stop the old primary: %w", in.Target, err)
		}
	}
	// pg_rewind reads the source's timeline from its control file, which a
	// fresh promotion updates only at its first checkpoint; without this it
	// says "no rewind required" and the node can never follow.
	if _, err := src.conn.Exec(ctx, `CHECKPOINT`); err != nil {
		return activities.Result{}, src.queryErr("checkpoint before pg_rewind", err)
	}
	// pg_rewind runs crash recovery itself when the target was not shut
	// down cleanly (killed), in single-user mode, so no client can reach it.
	// It is never interrupted by the step's cancellation: a half-done
	// rewind leaves the directory unusable. It has its own hard deadline.
	rewindCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Minute)
	defer cancel()
	if err := runAs(rewindCtx, in.OSUser, env, filepath.Join(in.BinDir, "pg_rewind"), "--target-pgdata="+in.DataDir, "--source-server="+conninfo, "--no-sync"); err != nil {
		return activities.Result{}, fmt.Errorf("rejoin %s: pg_rewind from %s: %w", in.Target, in.Source, err)
	}
	if err := a.writeStandbyConfig(in, streamInfo, repl.Password); err != nil {
		return activities.Result{}, err
	}
	args := []string{"-D", in.DataDir, "-l", filepath.Join(in.DataDir, "drctl-rejoin.log"), "-w", "-t", "60"}
	if in.StartOptions != "" {
		args = append(args, "-o", in.StartOptions)
	}
	if err := runAs(ctx, in.OSUser, nil, pgctl, append(args, "start")...); err != nil {
		return activities.Result{}, fmt.Errorf("rejoin %s: start as a standby: %w (see %s/drctl-rejoin.log)", in.Target, err, in.DataDir)
	}
	deadline := time.Now().Add(time.Minute)
	for {
		if t, err := a.connect(ctx, req, in.Target); err == nil {
			ok, serr := t.streamingFrom(ctx, src, ss.Timeline)
			t.Close()
			if serr == nil && ok {
				break
			}
		}
		if time.Now().After(deadline) {
			return activities.Result{}, fmt.Errorf("rejoin %s: started, but not streaming from %s after a minute", in.Target, in.Source)
		}
		select {
		case <-ctx.Done():
			return activities.Result{}, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return activities.Result{Changed: true, Summary: fmt.Sprintf("%s rewound and streaming from %s (timeline %d)", in.Target, in.Source, ss.Timeline), Outputs: map[string]any{"timeline": ss.Timeline}}, nil
}

// safeToRewind refuses to rewind a running target that is an unfenced,
// writable primary (its writes would be thrown away), that is not the
// cluster the source belongs to, or whose data directory is not data_dir
// (the step runs on the wrong host, or names the wrong directory).
func (a Rejoin) safeToRewind(ctx context.Context, in rejoinInput, src, t *node) error {
	st, err := t.status(ctx)
	if err != nil {
		return err
	}
	if st.Role == RolePrimary && !st.Fenced {
		return activities.Permanentf("refusing to rejoin %s: it is a writable, unfenced primary; rewinding it would discard its writes — fence it first (postgres.fence) if it really is the old primary", in.Target)
	}
	var dir string
	if err := t.conn.QueryRow(ctx, `SELECT current_setting('data_directory')`).Scan(&dir); err != nil {
		return t.queryErr("read data_directory", err)
	}
	if filepath.Clean(dir) != filepath.Clean(in.DataDir) {
		return activities.Permanentf("refusing to rejoin %s: its data directory is %s, not data_dir %s; run the step on %s's host and name its directory", in.Target, dir, in.DataDir, in.Target)
	}
	return a.sameCluster(ctx, in, src)
}

// sameCluster checks, from the control file on disk, that data_dir holds
// the cluster the source belongs to (the same system identifier) and is not
// the source's own directory.
func (a Rejoin) sameCluster(ctx context.Context, in rejoinInput, src *node) error {
	var (
		srcID  int64
		srcDir string
	)
	if err := src.conn.QueryRow(ctx, `SELECT system_identifier, current_setting('data_directory') FROM pg_control_system()`).Scan(&srcID, &srcDir); err != nil {
		return src.queryErr("read system identifier", err)
	}
	if filepath.Clean(srcDir) == filepath.Clean(in.DataDir) {
		return activities.Permanentf("refusing to rejoin: data_dir %s is the source's own data directory", in.DataDir)
	}
	out, err := outputAs(ctx, in.OSUser, filepath.Join(in.BinDir, "pg_controldata"), in.DataDir)
	if err != nil {
		return fmt.Errorf("rejoin %s: read the control file of %s: %w", in.Target, in.DataDir, err)
	}
	for _, line := range strings.Split(out, "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "Database system identifier" {
			if strings.TrimSpace(v) != strconv.FormatInt(srcID, 10) {
				return activities.Permanentf("refusing to rejoin: %s holds another cluster (system identifier %s, source %d)", in.DataDir, strings.TrimSpace(v), srcID)
			}
			return nil
		}
	}
	return fmt.Errorf("rejoin %s: pg_controldata printed no system identifier for %s", in.Target, in.DataDir)
}

// connString builds a libpq connection string from a parsed DSN, quoting
// every value and keeping its TLS settings; the password is left out (it
// goes by PGPASSWORD or into primary_conninfo separately).
func connString(cfg *pgx.ConnConfig, extraKey, extraValue string) string {
	kv := [][2]string{{"host", cfg.Host}, {"port", strconv.Itoa(int(cfg.Port))}, {"user", cfg.User}}
	for _, k := range []string{"sslmode", "sslrootcert", "sslcert", "sslkey"} {
		if v, ok := cfg.RuntimeParams[k]; ok && v != "" {
			kv = append(kv, [2]string{k, v})
		}
	}
	if cfg.TLSConfig == nil {
		kv = append(kv, [2]string{"sslmode", "disable"})
	} else if cfg.TLSConfig.InsecureSkipVerify {
		kv = append(kv, [2]string{"sslmode", "require"})
	} else {
		kv = append(kv, [2]string{"sslmode", "verify-full"})
	}
	if extraValue != "" {
		kv = append(kv, [2]string{extraKey, extraValue})
	}
	parts := make([]string, len(kv))
	for i, p := range kv {
		parts[i] = p[0] + "=" + quoteConnValue(p[1])
	}
	return strings.Join(parts, " ")
}

func quoteConnValue(v string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(v) + "'"
}

func (p *Provider) secrets() Secrets {
	if p.Secrets != nil {
		return p.Secrets
	}
	return CredentialSecrets{}
}

// dsnConfig reads and parses a target's DSN.
func (p *Provider) dsnConfig(req activities.Request, name string) (*pgx.ConnConfig, error) {
	t, ok := req.Target(name)
	if !ok {
		return nil, activities.Permanentf("no target %q in the runbook", name)
	}
	dsn, err := p.secrets().DSN(t)
	if err != nil {
		return nil, err
	}
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, activities.Permanentf("target %s: its DSN does not parse (check the value of its credentials; it is not shown here)", name)
	}
	return cfg, nil
}

// writeStandbyConfig makes the rewound directory start as a standby of the
// source. The password goes to the node's own postgresql.auto.conf (readable
// only by its OS user), as PostgreSQL expects; never to a log or history.
func (a Rejoin) writeStandbyConfig(in rejoinInput, conninfo, password string) error {
	full := conninfo
	if password != "" {
		full += " password=" + password
	}
	auto := filepath.Join(in.DataDir, "postgresql.auto.conf")
	old, err := os.ReadFile(auto)
	if err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("rejoin %s: read postgresql.auto.conf: %w", in.Target, err)
	}
	var keep []string
	for _, l := range strings.Split(string(old), "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), "primary_conninfo") || strings.TrimSpace(l) == "" {
			continue
		}
		keep = append(keep, l)
	}
	keep = append(keep, "primary_conninfo = '"+strings.ReplaceAll(full, "'", "''")+"'")
	if err := writeOwned(auto, strings.Join(keep, "\n")+"\n", in.OSUser, 0o600); err != nil {
		return fmt.Errorf("rejoin %s: write postgresql.auto.conf: %w", in.Target, err)
	}
	if err := writeOwned(filepath.Join(in.DataDir, "standby.signal"), "", in.OSUser, 0o600); err != nil {
		return fmt.Errorf("rejoin %s: write standby.signal: %w", in.Target, err)
	}
	return nil
}

func writeOwned(path, text, osUser string, mode os.FileMode) error {
	if err := os.WriteFile(path, []byte(text), mode); err != nil {
		return err
	}
	u, err := user.Lookup(osUser)
	if err != nil {
		return err
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	if os.Geteuid() == 0 {
		return os.Chown(path, uid, gid)
	}
	return nil
}

func running(ctx context.Context, in rejoinInput, pgctl string) bool {
	return runAs(ctx, in.OSUser, nil, pgctl, "-D", in.DataDir, "status") == nil
}

// runAs runs a PostgreSQL tool as the server's OS user (the server refuses
// root). Its output is returned in the error, which names the tool.
func runAs(ctx context.Context, osUser string, env []string, bin string, args ...string) error {
	cmdArgs := append([]string{bin}, args...)
	if cur, err := user.Current(); err == nil && cur.Username != osUser {
		if os.Geteuid() != 0 {
			return activities.Permanentf("%s must run as %s; run this worker as %s or as root", filepath.Base(bin), osUser, osUser)
		}
		cmdArgs = append([]string{"runuser", "-u", osUser, "--"}, cmdArgs...)
	}
	cmd := exec.CommandContext(ctx, cmdArgs[0], cmdArgs[1:]...)
	// Only what the tools need: never the worker's environment, which holds
	// other targets' credentials.
	cmd.Env = append([]string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8", "LC_ALL=C.UTF-8", "HOME=/"}, env...)
	cmd.Dir = "/"
	// Its own process group, killed whole at the deadline (runuser's child
	// included).
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(out.String())
		if len(msg) > 2000 {
			msg = msg[len(msg)-2000:]
		}
		return fmt.Errorf("%s: %v: %s", filepath.Base(bin), err, msg)
	}
	return nil
}

// outputAs runs a tool as the server's OS user and returns its output.
func outputAs(ctx context.Context, osUser, bin string, args ...string) (string, error) {
	cmdArgs := append([]string{bin}, args...)
	if cur, err := user.Current(); err == nil && cur.Username != osUser && os.Geteuid() == 0 {
		cmdArgs = append([]string{"runuser", "-u", osUser, "--"}, cmdArgs...)
	}
	cmd := exec.CommandContext(ctx, cmdArgs[0], cmdArgs[1:]...)
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C", "LC_ALL=C", "HOME=/"}
	cmd.Dir = "/"
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("%s: %v: %s", filepath.Base(bin), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}
