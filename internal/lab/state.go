//go:build linux

package lab

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"gopkg.in/yaml.v3"

	"github.com/drctl/drctl/internal/ports"
)

// Files the lab writes into its state directory.
const (
	StateFile  = "state.json"  // State: processes, addresses, ports; no secrets
	EnvFile    = "lab.env"     // the worker's secrets (mode 0600): export NAME='value'
	ParamsFile = "params.yaml" // the runbooks' parameters: drctl run --params
	ConfigFile = "drctl.yaml"  // drctl's config for the lab: drctl --config
	LogFile    = "lab.log"     // every component's output
)

// State describes a running lab to other processes (`lab status`, `lab
// down`). It holds no secrets.
type State struct {
	Dir           string `json:"dir"`
	SupervisorPID int    `json:"supervisor_pid"`
	// BootID and the Start times identify the lab's processes beyond their
	// PIDs, which are reused after they exit or after a reboot: a PID counts
	// as the lab's only on the same boot with the same start time.
	BootID          string      `json:"boot_id"`
	SupervisorStart uint64      `json:"supervisor_start"`
	StartedAt       time.Time   `json:"started_at"`
	Zone            string      `json:"zone"`
	DNS             Endpoint    `json:"dns"`
	HAProxy         HAProxy     `json:"haproxy"`
	Postgres        []NodeState `json:"postgres"`
	Apps            []Endpoint  `json:"apps"`
}

// Endpoint is a process serving on an address.
type Endpoint struct {
	Site  string `json:"site,omitempty"`
	Addr  string `json:"addr"`
	PID   int    `json:"pid,omitempty"`
	Start uint64 `json:"start,omitempty"`
}

// HAProxy is the load balancer's part of State.
type HAProxy struct {
	Frontend string `json:"frontend"` // host:port
	Socket   string `json:"socket"`   // runtime API
	PID      int    `json:"pid"`
	Start    uint64 `json:"start,omitempty"`
}

// NodeState is a database node's part of State.
type NodeState struct {
	Site    string `json:"site"`
	Name    string `json:"name"`
	Addr    string `json:"addr"`
	DataDir string `json:"data_dir"`
}

// State is the lab's description, with supervisor as the PID of the process
// that owns it.
func (l *Lab) State(supervisor int) State {
	st := State{
		Dir: l.Dir, SupervisorPID: supervisor, StartedAt: time.Now().UTC(), Zone: l.Zone,
		BootID: bootID(), SupervisorStart: startTime(supervisor),
		DNS:     Endpoint{Addr: l.DNS.Addr(), PID: l.DNS.PID(), Start: startTime(l.DNS.PID())},
		HAProxy: HAProxy{Frontend: strings.TrimPrefix(l.FrontendURL(), "http://"), Socket: l.LB.Socket(), PID: l.LB.PID(), Start: startTime(l.LB.PID())},
	}
	for _, site := range []string{East, West} {
		n := l.Node(site)
		st.Postgres = append(st.Postgres, NodeState{Site: site, Name: n.Name, Addr: net.JoinHostPort(n.Host, strconv.Itoa(n.Port)), DataDir: n.DataDir})
		st.Apps = append(st.Apps, Endpoint{Site: site, Addr: l.Apps[site].Addr(), PID: os.Getpid()})
	}
	return st
}

// WriteFiles writes the lab's files into dir: the params and config first,
// the secrets (mode 0600), and state.json last, atomically, so a reader
// that finds state.json finds everything.
func (l *Lab) WriteFiles(dir string, st State) error {
	params, err := yaml.Marshal(l.Params())
	if err != nil {
		return err
	}
	var env strings.Builder
	env.WriteString("# drctl lab: the secrets a worker needs for the shipped runbooks. Keep private.\n")
	for _, k := range slices.Sorted(maps.Keys(l.Secrets())) {
		fmt.Fprintf(&env, "export %s=%s\n", k, shellQuote(l.Secrets()[k]))
	}
	cfg := "# drctl lab: a worker started with these settings (drctl dev) serves the lab's runs.\n" +
		"temporal:\n  address: 127.0.0.1:7233\n  task_queue: drctl\n" +
		"worker:\n  sites: [" + strings.Join(Sites, ", ") + "]   # the lab is one machine standing for every site\n"
	state, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	for _, f := range []struct {
		name string
		data []byte
		mode os.FileMode
	}{
		{ParamsFile, params, 0o644},
		{EnvFile, []byte(env.String()), 0o600},
		{ConfigFile, []byte(cfg), 0o644},
		{StateFile, append(state, '\n'), 0o644},
	} {
		if err := writeAtomic(filepath.Join(dir, f.name), f.data, f.mode); err != nil {
			return fmt.Errorf("lab: write %s: %w", f.name, err)
		}
	}
	return nil
}

func writeAtomic(path string, data []byte, mode os.FileMode) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, mode); err != nil {
		return err
	}
	if err := os.Chmod(tmp, mode); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// ErrNoLab is returned (wrapped) by ReadState when dir holds no lab.
var ErrNoLab = errors.New("no lab running")

// ReadState reads dir's state.json.
func ReadState(dir string) (State, error) {
	b, err := os.ReadFile(filepath.Join(dir, StateFile))
	if errors.Is(err, os.ErrNotExist) {
		return State{}, fmt.Errorf("%w in %s (start one with drctl lab up)", ErrNoLab, dir)
	}
	if err != nil {
		return State{}, err
	}
	var st State
	if err := json.Unmarshal(b, &st); err != nil {
		return State{}, fmt.Errorf("lab: %s: %w", filepath.Join(dir, StateFile), err)
	}
	return st, nil
}

// ReadSecrets reads the secrets of dir's lab.env.
func ReadSecrets(dir string) (map[string]string, error) {
	b, err := os.ReadFile(filepath.Join(dir, EnvFile))
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		kv, ok := strings.CutPrefix(line, "export ")
		if !ok {
			continue
		}
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			continue
		}
		out[k] = shellUnquote(v)
	}
	return out, nil
}

// Down stops the lab whose state is in dir: it asks its supervisor to stop
// (SIGTERM), waits until every process the lab ran is gone and every port
// it used is free, then removes dir. A lab whose supervisor died is cleaned
// up the same way (stray database servers are killed).
func Down(ctx context.Context, dir string) error {
	st, err := ReadState(dir)
	if err != nil {
		return err
	}
	if st.SupervisorRunning() {
		if err := syscall.Kill(st.SupervisorPID, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
			return fmt.Errorf("lab down: signal supervisor %d: %w", st.SupervisorPID, err)
		}
		if err := WaitFor(ctx, time.Minute, 20*time.Millisecond, func() bool { return !st.SupervisorRunning() }); err != nil {
			_ = syscall.Kill(st.SupervisorPID, syscall.SIGKILL)
			return fmt.Errorf("lab down: supervisor %d did not stop within a minute; killed it: %w", st.SupervisorPID, err)
		}
	}
	// Children die with the supervisor; database servers restarted by
	// pg_ctl do not, and a supervisor that crashed stopped none of them.
	for _, n := range st.Postgres {
		if pid := PostmasterPID(n.DataDir); pid != 0 {
			_ = syscall.Kill(pid, syscall.SIGINT)
		}
	}
	if err := WaitFor(ctx, 30*time.Second, 20*time.Millisecond, func() bool { return len(Leftovers(st)) == 0 }); err != nil {
		return fmt.Errorf("lab down: still running or bound: %s: %w", strings.Join(Leftovers(st), ", "), err)
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("lab down: %w", err)
	}
	return nil
}

// Leftovers lists what of the lab still runs or holds a port.
func Leftovers(st State) []string {
	var out []string
	type proc struct {
		pid   int
		start uint64
	}
	procs := map[string]proc{"supervisor": {st.SupervisorPID, st.SupervisorStart}, "named": {st.DNS.PID, st.DNS.Start}, "haproxy": {st.HAProxy.PID, st.HAProxy.Start}}
	for _, n := range st.Postgres {
		procs["postgres "+n.Site] = proc{PostmasterPID(n.DataDir), 0} // identified by its data directory
	}
	for _, name := range slices.Sorted(maps.Keys(procs)) {
		if p := procs[name]; p.pid > 0 && st.ours(p.pid, p.start) {
			out = append(out, fmt.Sprintf("%s (pid %d)", name, p.pid))
		}
	}
	addrs := []string{st.DNS.Addr, st.HAProxy.Frontend}
	for _, n := range st.Postgres {
		addrs = append(addrs, n.Addr)
	}
	for _, a := range st.Apps {
		addrs = append(addrs, a.Addr)
	}
	for _, a := range addrs {
		host, port, err := net.SplitHostPort(a)
		if err != nil {
			continue
		}
		p, _ := strconv.Atoi(port)
		if !ports.PortFree(host, p) {
			out = append(out, "port "+a)
		}
	}
	return out
}

// WaitFor polls cond every tick until it holds, limit passes or ctx ends.
func WaitFor(ctx context.Context, limit, tick time.Duration, cond func() bool) error {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	t := time.NewTicker(tick)
	defer t.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
	return nil
}

// Check is one line of `drctl lab status`.
type Check struct {
	Component string `json:"component"`
	OK        bool   `json:"ok"`
	Detail    string `json:"detail"`
}

// Status checks every component of the lab in dir: the supervisor, where
// the DNS names point, each database's role, each app's health and where
// the load balancer sends requests.
func Status(ctx context.Context, dir string) (State, []Check, error) {
	st, err := ReadState(dir)
	if err != nil {
		return st, nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var checks []Check
	add := func(name string, err error, detail string) {
		if err != nil {
			checks = append(checks, Check{name, false, err.Error()})
			return
		}
		checks = append(checks, Check{name, true, detail})
	}
	if st.SupervisorRunning() {
		add("supervisor", nil, fmt.Sprintf("pid %d, up since %s", st.SupervisorPID, st.StartedAt.Local().Format(time.TimeOnly)))
	} else {
		add("supervisor", fmt.Errorf("pid %d is gone; run drctl lab down, then up", st.SupervisorPID), "")
	}
	sites := map[string]string{EastDBAddr: East, WestDBAddr: West, EastAppAddr: East, WestAppAddr: West}
	for _, name := range []string{AppName, DBName} {
		addrs, err := LookupA(ctx, st.DNS.Addr, name+"."+st.Zone)
		add("dns "+name+"."+st.Zone, err, fmt.Sprintf("A %s (%s) from %s", strings.Join(addrs, ","), sites[first(addrs)], st.DNS.Addr))
	}
	secrets, err := ReadSecrets(dir)
	for _, n := range st.Postgres {
		if err != nil {
			add("postgres "+n.Site, err, "")
			continue
		}
		env := EnvDBEast
		if n.Site == West {
			env = EnvDBWest
		}
		role, rerr := role(ctx, secrets[env])
		if _, err := os.Stat(filepath.Join(n.DataDir, "pg_hba.conf.drctl-unfenced")); err == nil && rerr == nil {
			role += ", fenced (only the admin and replication may connect)"
		}
		add("postgres "+n.Site, rerr, fmt.Sprintf("%s on %s", role, n.Addr))
	}
	for _, a := range st.Apps {
		h, herr := GetHealth(ctx, "http://"+a.Addr)
		add("app "+a.Site, herr, fmt.Sprintf("on %s, writes to %s's database", a.Addr, h.DBSite))
	}
	h, herr := GetHealth(ctx, "http://"+st.HAProxy.Frontend)
	add("haproxy", herr, fmt.Sprintf("%s sends requests to %s's app (writes to %s's database)", st.HAProxy.Frontend, h.Site, h.DBSite))
	return st, checks, nil
}

func role(ctx context.Context, dsn string) (string, error) {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return "", errors.New("not reachable")
	}
	defer conn.Close(context.Background())
	var standby bool
	var sender string
	if err := conn.QueryRow(ctx, `SELECT pg_is_in_recovery(), coalesce((SELECT sender_host || ':' || sender_port FROM pg_stat_wal_receiver), '')`).Scan(&standby, &sender); err != nil {
		return "", err
	}
	if !standby {
		return "primary", nil
	}
	if sender == "" {
		return "standby (not streaming)", nil
	}
	return "standby streaming from " + sender, nil
}

// GetHealth asks the app at baseURL (an app or the load balancer's
// frontend) for /healthz. A 503 answer is an error carrying its reason.
func GetHealth(ctx context.Context, baseURL string) (HealthAnswer, error) {
	var h HealthAnswer
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, baseURL+"/healthz", nil)
	if err != nil {
		return h, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return h, err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&h); err != nil {
		return h, fmt.Errorf("GET %s/healthz: %s", baseURL, resp.Status)
	}
	if resp.StatusCode != http.StatusOK {
		return h, fmt.Errorf("GET %s/healthz: %s: %s", baseURL, resp.Status, h.Error)
	}
	return h, nil
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

func shellUnquote(s string) string {
	if len(s) >= 2 && s[0] == '\'' && s[len(s)-1] == '\'' {
		return strings.ReplaceAll(s[1:len(s)-1], `'\''`, "'")
	}
	return s
}

// SupervisorRunning reports whether the lab's supervisor still runs.
func (st State) SupervisorRunning() bool {
	return st.SupervisorPID > 0 && st.ours(st.SupervisorPID, st.SupervisorStart)
}

// ours reports whether pid is still the process the state recorded: same
// boot, alive, same start time (start 0: not recorded, PID alone).
func (st State) ours(pid int, start uint64) bool {
	if st.BootID != "" && st.BootID != bootID() {
		return false
	}
	return Alive(pid) && (start == 0 || startTime(pid) == start)
}

// bootID identifies this boot of the machine.
func bootID() string {
	b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// startTime is a process's start time (clock ticks since boot, field 22 of
// /proc/PID/stat); 0 when it cannot be read.
func startTime(pid int) uint64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	s := string(b)
	end := strings.LastIndexByte(s, ')')
	if end < 0 {
		return 0
	}
	f := strings.Fields(s[end+1:])
	if len(f) < 20 {
		return 0
	}
	v, _ := strconv.ParseUint(f[19], 10, 64)
	return v
}
