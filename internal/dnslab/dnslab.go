//go:build linux

package dnslab

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
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

	"github.com/miekg/dns"

	"github.com/drctl/drctl/internal/ports"
	"github.com/drctl/drctl/internal/proclog"
)

// DefaultNamed is where Debian's bind9 package installs named.
const DefaultNamed = "/usr/sbin/named"

// DefaultZone is the zone a server serves when Options.Zone is empty.
const DefaultZone = "drctl.test."

// Algorithm is the TSIG algorithm of every lab key, as named.conf spells it.
const Algorithm = "hmac-sha256"

// ErrNotInstalled is returned (wrapped) by Start when named is missing;
// tests skip on it.
var ErrNotInstalled = errors.New("BIND 9 (named) not installed")

// Options configures a Server.
type Options struct {
	// Zone is the zone served. Empty: DefaultZone.
	Zone string
	// Records are zone-file lines added after the SOA and NS records, with
	// names relative to the zone, e.g. "www 300 IN A 192.0.2.10". The zone
	// always has the apex SOA, "@ NS ns1" and "ns1 A 127.0.0.1".
	Records []string
	// KeyName is the TSIG key's name. Empty: "drctl-lab." + Zone.
	KeyName string
	// Named is the named binary. Empty: DefaultNamed.
	Named string
	// Log receives named's output, each line prefixed with "named: ". Nil:
	// named.log in the server's directory. Never written after Stop, Kill
	// or Close return.
	Log io.Writer
}

// Server is one running (or stopped) named. The exported fields are set by
// Start and never change.
type Server struct {
	Zone      string // fully qualified, lower case
	KeyName   string // fully qualified
	Algorithm string // Algorithm
	// Secret is the TSIG secret, base64. Never log it.
	Secret string
	Dir    string // named.conf, the zone file and its journal
	Port   int    // on 127.0.0.1, UDP and TCP

	named string
	out   io.Writer
	logF  *os.File

	mu        sync.Mutex
	proc      *process
	closeOnce sync.Once
	closeErr  error
}

// process is one run of named.
type process struct {
	cmd     *exec.Cmd
	exited  chan struct{} // closed once named is reaped
	waitErr error
	logDone chan struct{}
	tail    *proclog.Tail
}

func (p *process) running() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// Start creates the server's directory, key, configuration and zone, starts
// named and returns once it answers for the zone. ctx bounds the start; on
// failure everything started is stopped and removed.
func Start(ctx context.Context, o Options) (*Server, error) {
	named := o.Named
	if named == "" {
		named = DefaultNamed
	}
	if _, err := os.Stat(named); err != nil {
		return nil, fmt.Errorf("dnslab: %w: %v", ErrNotInstalled, err)
	}
	zone := dns.CanonicalName(o.Zone)
	if o.Zone == "" {
		zone = DefaultZone
	}
	if _, ok := dns.IsDomainName(zone); !ok || zone == "." {
		return nil, fmt.Errorf("dnslab: %q is not a zone name", o.Zone)
	}
	keyName := dns.CanonicalName(o.KeyName)
	if o.KeyName == "" {
		keyName = "drctl-lab." + zone
	}
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return nil, fmt.Errorf("dnslab: TSIG secret: %w", err)
	}
	dir, err := os.MkdirTemp("", "dnslab-")
	if err != nil {
		return nil, fmt.Errorf("dnslab: create dir: %w", err)
	}
	s := &Server{
		Zone: zone, KeyName: keyName, Algorithm: Algorithm,
		Secret: base64.StdEncoding.EncodeToString(secret),
		Dir:    dir, named: named,
	}
	fail := func(err error) (*Server, error) {
		if cerr := s.Close(); cerr != nil {
			err = errors.Join(err, cerr)
		}
		return nil, err
	}
	if o.Log != nil {
		s.out = &proclog.PrefixWriter{Mu: &sync.Mutex{}, W: o.Log, Prefix: "named: "}
	} else {
		f, err := os.OpenFile(filepath.Join(dir, "named.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			return fail(fmt.Errorf("dnslab: %w", err))
		}
		s.out, s.logF = f, f
	}
	if err := os.WriteFile(s.zoneFile(), []byte(zoneText(zone, o.Records)), 0o600); err != nil {
		return fail(fmt.Errorf("dnslab: write zone: %w", err))
	}
	if err := s.checkZone(ctx); err != nil {
		return fail(err)
	}
	for attempt := 1; ; attempt++ {
		port, err := ports.FreeTCPUDP("127.0.0.1")
		if err != nil {
			return fail(s.errorf("start", err))
		}
		s.Port = port
		err = s.run(ctx)
		if err == nil {
			return s, nil
		}
		if !errors.Is(err, errPortInUse) || attempt == 5 {
			return fail(err)
		}
	}
}

// Addr is the server's address, "127.0.0.1:PORT".
func (s *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.Port)) }

// String names the server without secrets.
func (s *Server) String() string { return fmt.Sprintf("named for %s at %s", s.Zone, s.Addr()) }

// Restart starts a stopped server again on the same port, with the zone as
// it was (updates are kept in the zone's journal). It does nothing if the
// server runs.
func (s *Server) Restart(ctx context.Context) error {
	if s.Running() {
		return nil
	}
	return s.run(ctx)
}

// Running reports whether named runs.
func (s *Server) Running() bool {
	p := s.process()
	return p != nil && p.running()
}

// PID is named's process ID, or 0 when it is not running.
func (s *Server) PID() int {
	if p := s.process(); p != nil && p.running() {
		return p.cmd.Process.Pid
	}
	return 0
}

// Stop shuts named down (SIGTERM) and returns once it has exited. If it is
// still running after 10 seconds it is killed. It does nothing if named is
// not running.
func (s *Server) Stop() error {
	return s.signal(syscall.SIGTERM, 10*time.Second)
}

// Kill SIGKILLs named, like a crash of its host, and returns once it is
// gone. It does nothing if named is not running.
func (s *Server) Kill() error {
	return s.signal(syscall.SIGKILL, 0)
}

// Close stops named and removes the server's directory. It is safe to call
// more than once.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		err := s.Stop()
		if s.logF != nil {
			_ = s.logF.Close()
		}
		if rerr := os.RemoveAll(s.Dir); rerr != nil {
			err = errors.Join(err, rerr)
		}
		s.closeErr = err
	})
	return s.closeErr
}

func (s *Server) signal(sig syscall.Signal, grace time.Duration) error {
	p := s.process()
	if p == nil {
		return nil
	}
	if p.running() {
		if err := p.cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
			return s.errorf("stop", err)
		}
		if grace > 0 {
			select {
			case <-p.exited:
			case <-time.After(grace):
				_ = p.cmd.Process.Kill()
			}
		}
		select {
		case <-p.exited:
		case <-time.After(10 * time.Second):
			return s.errorf("stop", fmt.Errorf("named (pid %d) not gone after SIGKILL", p.cmd.Process.Pid))
		}
	}
	waitLog(p.logDone)
	return nil
}

func (s *Server) process() *process {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.proc
}

// errPortInUse marks a start that failed because another process holds the
// port; Start then retries on a fresh port.
var errPortInUse = errors.New("port already in use")

// run writes named.conf for the current port, starts named and waits until
// it answers. On failure named is killed.
func (s *Server) run(ctx context.Context) error {
	const op = "start"
	if err := os.WriteFile(s.confFile(), []byte(s.conf()), 0o600); err != nil {
		return s.errorf(op, err)
	}
	// -g: foreground, log to stderr; -4: IPv4 only; -n 1: one worker thread
	// (the machines this runs on are small).
	cmd := exec.Command(s.named, "-g", "-4", "-n", "1", "-c", s.confFile())
	cmd.Dir = s.Dir
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C"}
	r, w, err := os.Pipe()
	if err != nil {
		return s.errorf(op, err)
	}
	cmd.Stdout, cmd.Stderr = w, w
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	p := &process{cmd: cmd, exited: make(chan struct{}), logDone: make(chan struct{}), tail: &proclog.Tail{}}
	// The parent-death signal fires when the forking OS thread exits; pin
	// the fork to a thread the runtime keeps.
	runtime.LockOSThread()
	err = cmd.Start()
	runtime.UnlockOSThread()
	w.Close()
	if err != nil {
		r.Close()
		return s.errorf(op, err)
	}
	go copyLines(r, s.out, p.tail, p.logDone)
	go func() {
		p.waitErr = cmd.Wait()
		close(p.exited)
	}()
	s.mu.Lock()
	s.proc = p
	s.mu.Unlock()

	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		if strings.Contains(p.tail.String(), "address in use") {
			_ = s.Kill()
			return s.errorf(op, fmt.Errorf("%w%s", errPortInUse, s.logTail(p)))
		}
		if s.answers(ctx, "udp") && s.answers(ctx, "tcp") {
			return nil
		}
		select {
		case <-p.exited:
			waitLog(p.logDone)
			return s.errorf(op, fmt.Errorf("named exited: %v%s", p.waitErr, s.logTail(p)))
		case <-ctx.Done():
			err := fmt.Errorf("not answering: %w%s", ctx.Err(), s.logTail(p))
			if kerr := s.Kill(); kerr != nil {
				err = errors.Join(err, kerr)
			}
			return s.errorf(op, err)
		case <-tick.C:
		}
	}
}

// answers reports whether a TSIG-signed SOA query for the zone is answered
// authoritatively and correctly signed over network nw: only this server
// knows the key.
func (s *Server) answers(ctx context.Context, nw string) bool {
	m := new(dns.Msg)
	m.SetQuestion(s.Zone, dns.TypeSOA)
	m.RecursionDesired = false
	m.SetTsig(s.KeyName, dns.HmacSHA256, 300, time.Now().Unix())
	c := &dns.Client{Net: nw, Timeout: 200 * time.Millisecond, TsigSecret: map[string]string{s.KeyName: s.Secret}}
	r, _, err := c.ExchangeContext(ctx, m, s.Addr())
	return err == nil && r.Rcode == dns.RcodeSuccess && r.Authoritative && len(r.Answer) > 0
}

// checkZone runs named-checkzone when it is installed, so a bad record in
// Options.Records is reported as such rather than as a server that never
// answers.
func (s *Server) checkZone(ctx context.Context) error {
	tool := filepath.Join(filepath.Dir(s.named), "named-checkzone")
	if _, err := os.Stat(tool); err != nil {
		if tool, err = exec.LookPath("named-checkzone"); err != nil {
			return nil
		}
	}
	out, err := exec.CommandContext(ctx, tool, "-q", s.Zone, s.zoneFile()).CombinedOutput()
	if err != nil {
		if len(out) == 0 {
			out, _ = exec.CommandContext(ctx, tool, s.Zone, s.zoneFile()).CombinedOutput()
		}
		return s.errorf("check zone", fmt.Errorf("%v: %s", err, strings.TrimSpace(string(out))))
	}
	return nil
}

// Query asks the server for name's RRset of the given type (names relative
// to the zone or fully qualified; "@" is the apex), without TSIG, as any
// client would, and returns the answer records of exactly that name and
// type. NXDOMAIN and NODATA give no records and no error.
func (s *Server) Query(ctx context.Context, name, qtype string) ([]dns.RR, error) {
	t, ok := dns.StringToType[strings.ToUpper(qtype)]
	if !ok {
		return nil, fmt.Errorf("dnslab: unknown type %q", qtype)
	}
	fqdn := s.fqdn(name)
	m := new(dns.Msg)
	m.SetQuestion(fqdn, t)
	m.RecursionDesired = false
	c := &dns.Client{Net: "tcp", Timeout: 2 * time.Second}
	r, _, err := c.ExchangeContext(ctx, m, s.Addr())
	if err != nil {
		return nil, s.errorf("query "+fqdn+" "+qtype, err)
	}
	if r.Rcode != dns.RcodeSuccess && r.Rcode != dns.RcodeNameError {
		return nil, s.errorf("query "+fqdn+" "+qtype, fmt.Errorf("rcode %s", dns.RcodeToString[r.Rcode]))
	}
	var out []dns.RR
	for _, rr := range r.Answer {
		if h := rr.Header(); h.Rrtype == t && strings.EqualFold(h.Name, fqdn) {
			out = append(out, rr)
		}
	}
	return out, nil
}

// Serial is the zone's current SOA serial. Every update that changes the
// zone increments it.
func (s *Server) Serial(ctx context.Context) (uint32, error) {
	rrs, err := s.Query(ctx, "@", "SOA")
	if err != nil {
		return 0, err
	}
	if len(rrs) != 1 {
		return 0, s.errorf("serial", fmt.Errorf("%d SOA records", len(rrs)))
	}
	return rrs[0].(*dns.SOA).Serial, nil
}

func (s *Server) fqdn(name string) string {
	switch {
	case name == "" || name == "@":
		return s.Zone
	case strings.HasSuffix(name, "."):
		return dns.CanonicalName(name)
	}
	return dns.CanonicalName(name + "." + s.Zone)
}

func (s *Server) confFile() string { return filepath.Join(s.Dir, "named.conf") }
func (s *Server) zoneFile() string { return filepath.Join(s.Dir, "zone.db") }

// conf is named.conf: one primary zone, updatable and transferable with
// the server's key only, no recursion, no control channel, every file in
// the server's directory.
func (s *Server) conf() string {
	q := strconv.Quote
	return fmt.Sprintf(`key %[1]s {
	algorithm %[2]s;
	secret %[3]s;
};
options {
	directory %[4]s;
	pid-file %[5]s;
	session-keyfile %[6]s;
	managed-keys-directory %[4]s;
	listen-on port %[7]d { 127.0.0.1; };
	listen-on-v6 { none; };
	recursion no;
	allow-recursion { none; };
	dnssec-validation no;
	notify no;
	querylog no;
};
controls { };
zone %[8]s {
	type primary;
	file %[9]s;
	allow-update { key %[1]s; };
	allow-transfer { key %[1]s; };
};
`, q(s.KeyName), s.Algorithm, q(s.Secret), q(s.Dir), q(filepath.Join(s.Dir, "named.pid")),
		q(filepath.Join(s.Dir, "session.key")), s.Port, q(s.Zone), q(s.zoneFile()))
}

func zoneText(zone string, records []string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "$ORIGIN %s\n$TTL 300\n", zone)
	b.WriteString("@ IN SOA ns1 hostmaster 1 3600 600 86400 60\n")
	b.WriteString("@ IN NS ns1\n")
	b.WriteString("ns1 IN A 127.0.0.1\n")
	for _, r := range records {
		b.WriteString(r + "\n")
	}
	return b.String()
}

// errorf names the operation and server: "dnslab: start drctl.test. (127.0.0.1:5353): ...".
func (s *Server) errorf(op string, err error) error {
	return fmt.Errorf("dnslab: %s %s (%s): %w", op, s.Zone, s.Addr(), err)
}

func (s *Server) logTail(p *process) string {
	if t := p.tail.LastLines(12); t != "" {
		return "\n--- end of named's output ---\n" + t
	}
	return ""
}

func copyLines(r *os.File, out io.Writer, tail *proclog.Tail, done chan struct{}) {
	defer close(done)
	defer r.Close()
	br := bufio.NewReader(r)
	for {
		line, err := br.ReadBytes('\n')
		if len(line) > 0 {
			tail.Write(line)
			_, _ = out.Write(line)
		}
		if err != nil {
			return
		}
	}
}

// waitLog waits (briefly) until a log pipe is drained.
func waitLog(done <-chan struct{}) {
	select {
	case <-done:
	case <-time.After(5 * time.Second):
	}
}
