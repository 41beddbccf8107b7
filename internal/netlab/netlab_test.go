//go:build linux

package netlab

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/drctl/drctl/internal/testwait"
)

func newSite(t *testing.T) *Site {
	t.Helper()
	ctx := testwait.Context(t)
	s, err := NewSite(ctx, Options{Name: "t"})
	if errors.Is(err, ErrUnavailable) && os.Getenv("DRCTL_CI") == "" {
		t.Skip("network namespaces are needed (run as root with iproute2); CI sets DRCTL_CI=1 and fails instead: ", err)
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

func ipOut(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("ip %v: %v: %s", args, err, out)
	}
	return string(out)
}

// TestSiteLifecycle: a process and a connection inside the site, traffic
// over the veth both ways, no default route inside; after Cut the subnet
// is unreachable at once and nothing runs inside; Close leaves no
// namespace, link or route behind.
func TestSiteLifecycle(t *testing.T) {
	s := newSite(t)
	ctx := testwait.Context(t)

	if r := ipOut(t, "-n", s.Namespace, "route", "show"); strings.Contains(r, "default") {
		t.Fatalf("the site has a default route:\n%s", r)
	}
	if r := ipOut(t, "route", "show", s.Subnet.String()); !strings.Contains(r, "unreachable") || !strings.Contains(r, s.HostLink) {
		t.Fatalf("want the veth's route and the guard for %s:\n%s", s.Subnet, r)
	}

	// Inside to the root namespace: the peer is the site's address.
	ln, err := net.Listen("tcp", net.JoinHostPort(s.HostAddr.String(), "0"))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := s.DialContext(ctx, "tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	peer, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	if got := peer.RemoteAddr().(*net.TCPAddr).AddrPort().Addr(); got != s.SiteAddr {
		t.Fatalf("connection from inside arrives from %s, want %s", got, s.SiteAddr)
	}
	c.Close()
	peer.Close()

	// A listener started inside is reachable from the root namespace.
	var inner net.Listener
	if err := s.Do(func() error {
		var err error
		inner, err = net.Listen("tcp", net.JoinHostPort(s.SiteAddr.String(), "0"))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer inner.Close()
	go func() {
		if c, err := inner.Accept(); err == nil {
			c.Close()
		}
	}()
	if c, err := net.DialTimeout("tcp", inner.Addr().String(), 5*time.Second); err != nil {
		t.Fatalf("dial into the site: %v", err)
	} else {
		c.Close()
	}

	sleep := exec.Command("sleep", "600")
	sleep.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := s.Start(sleep); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = sleep.Wait(); close(exited) }()
	if pids := s.Processes(); len(pids) != 1 || pids[0] != sleep.Process.Pid {
		t.Fatalf("processes inside %v, want [%d]", pids, sleep.Process.Pid)
	}

	start := time.Now()
	if err := s.Cut(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("cut in %s", time.Since(start).Round(time.Microsecond))
	select {
	case <-exited:
	case <-time.After(testwait.Bound):
		t.Fatal("the process inside survived the cut")
	}
	// No route to host is the kernel's answer at once; a black hole
	// would end in the dial's own timeout instead, with another error.
	start = time.Now()
	_, err = net.DialTimeout("tcp", inner.Addr().String(), testwait.Bound)
	if !errors.Is(err, syscall.EHOSTUNREACH) {
		t.Fatalf("dial into the cut site: %v after %s; want no route to host", err, time.Since(start))
	}
	t.Logf("dial into the cut site refused in %s", time.Since(start).Round(time.Microsecond))

	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if out := ipOut(t, "netns", "list"); strings.Contains(out, s.Namespace) {
		t.Fatalf("namespace left:\n%s", out)
	}
	if out := ipOut(t, "-o", "link", "show"); strings.Contains(out, s.HostLink) {
		t.Fatalf("link left:\n%s", out)
	}
	if out := ipOut(t, "route", "show", "table", "all"); strings.Contains(out, s.Subnet.Addr().String()) {
		t.Fatalf("route left:\n%s", out)
	}
}

// TestSitesDoNotCollide: two sites of one process get distinct subnets and
// names.
func TestSitesDoNotCollide(t *testing.T) {
	a, b := newSite(t), newSite(t)
	if a.Subnet == b.Subnet || a.Namespace == b.Namespace || a.HostLink == b.HostLink {
		t.Fatalf("collision: %s and %s", a, b)
	}
	if !a.Subnet.Contains(a.HostAddr) || !a.Subnet.Contains(a.SiteAddr) || a.Subnet.Bits() != 24 {
		t.Fatalf("addresses %s, %s outside %s", a.HostAddr, a.SiteAddr, a.Subnet)
	}
}

func TestOverlaps(t *testing.T) {
	used := []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0"), netip.MustParsePrefix("10.213.5.0/24"), netip.MustParsePrefix("10.0.0.0/9")}
	for _, c := range []struct {
		p    string
		want bool
	}{{"10.213.5.0/24", true}, {"10.213.6.0/24", false}, {"10.100.0.0/24", true}} {
		if got := overlapsAny(netip.MustParsePrefix(c.p), used); got != c.want {
			t.Errorf("%s: overlaps %t, want %t", c.p, got, c.want)
		}
	}
}
