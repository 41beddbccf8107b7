//go:build linux

package dnslab_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/drctl/drctl/internal/testwait"

	"github.com/miekg/dns"

	"github.com/drctl/drctl/internal/dnslab"
)

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func start(t *testing.T, o dnslab.Options) *dnslab.Server {
	t.Helper()
	ctx := testwait.Context(t)
	s, err := dnslab.Start(ctx, o)
	if errors.Is(err, dnslab.ErrNotInstalled) && os.Getenv("DRCTL_CI") == "" {
		t.Skip("BIND 9 is needed (apt-get install bind9 bind9-dnsutils); CI sets DRCTL_CI=1 and fails instead: ", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return s
}

// TestLifecycle starts a server, queries a record, takes an update signed
// with the key, stops (the port stops answering), restarts on the same port
// with the update kept, and is removed by Close.
func TestLifecycle(t *testing.T) {
	log := &syncBuffer{}
	began := time.Now()
	s := start(t, dnslab.Options{Records: []string{"www 120 IN A 192.0.2.10"}, Log: log})
	t.Logf("named answering after %v on %s", time.Since(began), s.Addr())
	ctx := context.Background()

	rrs, err := s.Query(ctx, "www", "A")
	if err != nil {
		t.Fatal(err)
	}
	if len(rrs) != 1 || rrs[0].(*dns.A).A.String() != "192.0.2.10" || rrs[0].Header().Ttl != 120 {
		t.Fatalf("www A = %v", rrs)
	}
	serial, err := s.Serial(ctx)
	if err != nil {
		t.Fatal(err)
	}

	// An update signed with the server's key is accepted.
	m := new(dns.Msg)
	m.SetUpdate(s.Zone)
	rr, _ := dns.NewRR("new." + s.Zone + " 60 IN A 192.0.2.20")
	m.Insert([]dns.RR{rr})
	m.SetTsig(s.KeyName, dns.HmacSHA256, 300, time.Now().Unix())
	c := &dns.Client{Net: "tcp", TsigSecret: map[string]string{s.KeyName: s.Secret}}
	r, _, err := c.ExchangeContext(ctx, m, s.Addr())
	if err != nil || r.Rcode != dns.RcodeSuccess {
		t.Fatalf("update: %v %v", r, err)
	}
	if after, _ := s.Serial(ctx); after != serial+1 {
		t.Errorf("serial %d after an update, want %d", after, serial+1)
	}

	// An unsigned update is refused.
	m = new(dns.Msg)
	m.SetUpdate(s.Zone)
	rr, _ = dns.NewRR("evil." + s.Zone + " 60 IN A 192.0.2.66")
	m.Insert([]dns.RR{rr})
	r, _, err = (&dns.Client{Net: "tcp"}).ExchangeContext(ctx, m, s.Addr())
	if err != nil || r.Rcode != dns.RcodeRefused {
		t.Fatalf("unsigned update: %v %v", r, err)
	}

	pid, port := s.PID(), s.Port
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	if s.Running() || processAlive(pid) {
		t.Fatalf("named %d still running after Stop", pid)
	}
	if _, err := s.Query(ctx, "www", "A"); err == nil {
		t.Fatal("a stopped server answered")
	}
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := s.Restart(rctx); err != nil {
		t.Fatal(err)
	}
	if s.Port != port {
		t.Errorf("port %d after restart, want %d", s.Port, port)
	}
	if rrs, err := s.Query(ctx, "new", "A"); err != nil || len(rrs) != 1 {
		t.Errorf("update lost over a restart: %v %v", rrs, err)
	}
	if err := s.Kill(); err != nil {
		t.Fatal(err)
	}
	if s.Running() {
		t.Fatal("running after Kill")
	}
	dir := s.Dir
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("%s not removed: %v", dir, err)
	}
	if strings.Contains(log.String(), s.Secret) {
		t.Error("the TSIG secret appears in named's output")
	}
}

func TestBadRecordReported(t *testing.T) {
	ctx := testwait.Context(t)
	s, err := dnslab.Start(ctx, dnslab.Options{Records: []string{"www IN A not-an-address"}})
	if errors.Is(err, dnslab.ErrNotInstalled) {
		t.Skip(err)
	}
	if err == nil {
		s.Close()
		t.Fatal("started with a bad record")
	}
	if !strings.Contains(err.Error(), "not-an-address") && !strings.Contains(err.Error(), "bad dotted quad") {
		t.Errorf("error does not point at the record: %v", err)
	}
}

// TestParallel starts several servers at once: each gets its own port.
func TestParallel(t *testing.T) {
	var servers []*dnslab.Server
	for range 3 {
		servers = append(servers, start(t, dnslab.Options{Zone: "p.test"}))
	}
	seen := map[int]bool{}
	for _, s := range servers {
		if seen[s.Port] {
			t.Fatalf("port %d used twice", s.Port)
		}
		seen[s.Port] = true
		if s.Zone != "p.test." {
			t.Errorf("zone %q", s.Zone)
		}
	}
}

// processAlive reports whether pid still runs (signal 0 probes without
// signalling; a nil signal would always fail and prove nothing).
func processAlive(pid int) bool {
	return syscall.Kill(pid, 0) == nil
}
