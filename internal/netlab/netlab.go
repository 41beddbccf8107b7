//go:build linux

package netlab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// ErrUnavailable is returned (wrapped) by NewSite when this machine or user
// may not create network namespaces (not root, no iproute2, a container
// without CAP_SYS_ADMIN); tests skip on it.
var ErrUnavailable = errors.New("network namespaces are not available")

// guardMetric is the metric of the unreachable route that claims a site's
// subnet for its whole life. The veth's own route (metric 0) wins while
// the link exists; the guard catches the subnet's traffic once it is gone.
const guardMetric = 4242

// subnetBase is the /16 sites take their /24 from: 10.213.X.0/24.
var subnetBase = [2]byte{10, 213}

// Options configures a site.
type Options struct {
	// Name names the site ("east"); it is part of the namespace's name.
	// Empty: "site".
	Name string
}

// Site is a network namespace joined to the root namespace by a veth pair.
// The exported fields are set by NewSite and never changed.
type Site struct {
	Name string
	// Namespace is the network namespace's name, as `ip netns` knows it.
	Namespace string
	// Subnet is the site's private /24.
	Subnet netip.Prefix
	// HostAddr is the root namespace's end of the veth (.1): the address
	// the site reaches the rest of the machine by.
	HostAddr netip.Addr
	// SiteAddr is the site's end of the veth (.2).
	SiteAddr netip.Addr
	// HostLink and SiteLink are the veth's two ends.
	HostLink, SiteLink string

	ns        *os.File // the namespace, for setns
	nsDev     uint64
	nsIno     uint64
	mu        sync.Mutex
	cut       bool // the subnet's route was replaced by an unreachable one
	relays    []*relay
	closeOnce sync.Once
	closeErr  error
}

var siteSeq atomic.Int32

// NewSite creates the namespace, the veth pair and the addresses, and brings
// the links up. ctx bounds the set-up; on failure everything created is
// removed.
func NewSite(ctx context.Context, o Options) (*Site, error) {
	if o.Name == "" {
		o.Name = "site"
	}
	if os.Geteuid() != 0 {
		return nil, fmt.Errorf("netlab: %w: not root", ErrUnavailable)
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return nil, fmt.Errorf("netlab: %w: iproute2: %v", ErrUnavailable, err)
	}
	seq := siteSeq.Add(1)
	pid := os.Getpid()
	s := &Site{
		Name:      o.Name,
		Namespace: fmt.Sprintf("drctl-%s-%d-%d", o.Name, pid, seq),
		// IFNAMSIZ: at most 15 characters ("dr" + 7 digits + "h" + seq).
		HostLink: fmt.Sprintf("dr%dh%d", pid, seq),
		SiteLink: fmt.Sprintf("dr%ds%d", pid, seq),
	}
	if err := s.claimSubnet(ctx, pid); err != nil {
		return nil, err
	}
	if err := s.setUp(ctx); err != nil {
		return nil, errors.Join(err, s.Close())
	}
	return s, nil
}

// claimSubnet picks a 10.213.X.0/24 that no route or address of this
// machine overlaps and claims it by adding its guard route, which fails if
// another site (of any process) holds it already.
func (s *Site) claimSubnet(ctx context.Context, pid int) error {
	used, err := usedPrefixes(ctx)
	if err != nil {
		return err
	}
	start := pid % 254
	for i := range 254 {
		x := byte((start+i)%254 + 1)
		p := netip.PrefixFrom(netip.AddrFrom4([4]byte{subnetBase[0], subnetBase[1], x, 0}), 24)
		if overlapsAny(p, used) {
			continue
		}
		err := ip(ctx, "route", "add", "unreachable", p.String(), "metric", strconv.Itoa(guardMetric))
		if err != nil {
			if strings.Contains(err.Error(), "File exists") {
				continue // claimed meanwhile by another site
			}
			if permissionDenied(err) {
				return fmt.Errorf("netlab: %w: %v", ErrUnavailable, err)
			}
			return fmt.Errorf("netlab: claim %s: %w", p, err)
		}
		s.Subnet = p
		s.HostAddr = netip.AddrFrom4([4]byte{subnetBase[0], subnetBase[1], x, 1})
		s.SiteAddr = netip.AddrFrom4([4]byte{subnetBase[0], subnetBase[1], x, 2})
		return nil
	}
	return fmt.Errorf("netlab: no free /24 in %d.%d.0.0/16", subnetBase[0], subnetBase[1])
}

func (s *Site) setUp(ctx context.Context) error {
	if err := ip(ctx, "netns", "add", s.Namespace); err != nil {
		if permissionDenied(err) {
			return fmt.Errorf("netlab: %w: %v", ErrUnavailable, err)
		}
		return fmt.Errorf("netlab: create namespace: %w", err)
	}
	ns, err := os.Open("/run/netns/" + s.Namespace)
	if err != nil {
		return fmt.Errorf("netlab: open namespace %s: %w", s.Namespace, err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(ns.Fd()), &st); err != nil {
		ns.Close()
		return fmt.Errorf("netlab: stat namespace %s: %w", s.Namespace, err)
	}
	s.ns, s.nsDev, s.nsIno = ns, st.Dev, st.Ino

	hostCIDR := netip.PrefixFrom(s.HostAddr, s.Subnet.Bits()).String()
	siteCIDR := netip.PrefixFrom(s.SiteAddr, s.Subnet.Bits()).String()
	for _, args := range [][]string{
		{"link", "add", s.HostLink, "type", "veth", "peer", "name", s.SiteLink, "netns", s.Namespace},
		{"addr", "add", hostCIDR, "dev", s.HostLink},
		{"link", "set", s.HostLink, "up"},
		// Inside: the veth's connected route and loopback, nothing else.
		{"-n", s.Namespace, "addr", "add", siteCIDR, "dev", s.SiteLink},
		{"-n", s.Namespace, "link", "set", s.SiteLink, "up"},
		{"-n", s.Namespace, "link", "set", "lo", "up"},
	} {
		if err := ip(ctx, args...); err != nil {
			return fmt.Errorf("netlab: set up %s: %w", s.Namespace, err)
		}
	}
	return nil
}

// Do runs f on an OS thread that is inside the site's namespace: sockets
// f creates and processes f starts belong to the site. f must not rely on
// goroutines it starts being inside. The thread returns to the namespace it
// came from afterwards; if that fails, the thread is discarded.
func (s *Site) Do(f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("netlab: %s: own namespace: %w", s.Namespace, err)
			return
		}
		defer orig.Close()
		if err := unix.Setns(int(s.ns.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("netlab: enter %s: %w", s.Namespace, err)
			return
		}
		ferr := f()
		if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
			// Still locked: the thread ends with this goroutine instead of
			// running other code inside the site.
			errc <- errors.Join(ferr, fmt.Errorf("netlab: leave %s: %w", s.Namespace, err))
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// Start starts cmd inside the site. The caller owns cmd (Wait, and
// SysProcAttr: a Pdeathsig set there refers to a thread that lives on).
func (s *Site) Start(cmd *exec.Cmd) error {
	if err := s.Do(cmd.Start); err != nil {
		return fmt.Errorf("netlab: start %s in %s: %w", cmd.Path, s.Namespace, err)
	}
	return nil
}

// DialContext connects from inside the site, as a program running there
// would; it fits pgx's DialFunc and net/http's Transport.DialContext.
func (s *Site) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	var c net.Conn
	err := s.Do(func() error {
		var err error
		c, err = (&net.Dialer{}).DialContext(ctx, network, address)
		return err
	})
	return c, err
}

// Processes lists the processes inside the site, zombies excluded.
func (s *Site) Processes() []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	self := os.Getpid()
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		if s.inside(pid) {
			pids = append(pids, pid)
		}
	}
	return pids
}

func (s *Site) inside(pid int) bool {
	var st unix.Stat_t
	if err := unix.Stat("/proc/"+strconv.Itoa(pid)+"/ns/net", &st); err != nil {
		return false
	}
	return st.Dev == s.nsDev && st.Ino == s.nsIno
}

// Cut is the site's power loss, in the only order that keeps its traffic on
// the machine: the subnet's route becomes unreachable (traffic for the site
// fails at once instead of falling through to the default route), both ends
// of the veth go down (no FIN or RST from the dying site reaches anyone), and
// every process inside is SIGKILLed. It returns once none is left (the
// caller reaps its own children). The namespace stays until Close.
func (s *Site) Cut(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := ip(ctx, "route", "replace", "unreachable", s.Subnet.String()); err != nil {
		return fmt.Errorf("netlab: cut %s: %w", s.Namespace, err)
	}
	s.cut = true
	for _, args := range [][]string{
		{"-n", s.Namespace, "link", "set", s.SiteLink, "down"},
		{"link", "set", s.HostLink, "down"},
	} {
		if err := ip(ctx, args...); err != nil {
			return fmt.Errorf("netlab: cut %s: %w", s.Namespace, err)
		}
	}
	return s.killAll(ctx)
}

// killAll SIGKILLs every process inside until none is left. A pidfd makes
// the check and the signal refer to one process even if its PID is reused.
func (s *Site) killAll(ctx context.Context) error {
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		pids := s.Processes()
		if len(pids) == 0 {
			return nil
		}
		for _, pid := range pids {
			fd, err := unix.PidfdOpen(pid, 0)
			if err != nil {
				continue
			}
			if s.inside(pid) {
				_ = unix.PidfdSendSignal(fd, unix.SIGKILL, nil, 0)
			}
			unix.Close(fd)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("netlab: processes %v in %s still alive after SIGKILL: %w", pids, s.Namespace, ctx.Err())
		case <-tick.C:
		}
	}
}

// Close kills what still runs inside, deletes the veth pair and the
// namespace, then the subnet's routes, the guard last. It stops the relays
// of Expose first. It is safe to call
// more than once.
func (s *Site) Close() error {
	s.closeOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		s.mu.Lock()
		defer s.mu.Unlock()
		var errs []error
		for _, r := range s.relays {
			if err := r.close(); err != nil {
				errs = append(errs, err)
			}
		}
		if s.ns != nil {
			if err := s.killAll(ctx); err != nil {
				errs = append(errs, err)
			}
		}
		if err := ip(ctx, "link", "del", s.HostLink); err != nil && !strings.Contains(err.Error(), "Cannot find device") {
			errs = append(errs, err)
		}
		if s.ns != nil {
			s.ns.Close()
		}
		if err := ip(ctx, "netns", "del", s.Namespace); err != nil && !strings.Contains(err.Error(), "No such file") {
			errs = append(errs, err)
		}
		if s.cut {
			if err := ip(ctx, "route", "del", "unreachable", s.Subnet.String(), "metric", "0"); err != nil {
				errs = append(errs, err)
			}
		}
		if s.Subnet.IsValid() {
			if err := ip(ctx, "route", "del", "unreachable", s.Subnet.String(), "metric", strconv.Itoa(guardMetric)); err != nil {
				errs = append(errs, err)
			}
		}
		if len(errs) > 0 {
			s.closeErr = fmt.Errorf("netlab: remove %s: %w", s.Namespace, errors.Join(errs...))
		}
	})
	return s.closeErr
}

// String names the site and its addresses.
func (s *Site) String() string {
	return fmt.Sprintf("site %s (namespace %s, %s on %s, host end %s)", s.Name, s.Namespace, s.SiteAddr, s.SiteLink, s.HostAddr)
}

// ip runs iproute2; the error carries the arguments and its output.
func ip(ctx context.Context, args ...string) error {
	cmd := exec.CommandContext(ctx, "ip", args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(out.String()))
	}
	return nil
}

func permissionDenied(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, "Operation not permitted") || strings.Contains(msg, "Permission denied")
}

// usedPrefixes lists the IPv4 prefixes of every route (all tables) and
// address of the root namespace, the default route excepted.
func usedPrefixes(ctx context.Context) ([]netip.Prefix, error) {
	var used []netip.Prefix
	for _, args := range [][]string{{"-4", "-o", "route", "show", "table", "all"}, {"-4", "-o", "addr", "show"}} {
		out, err := exec.CommandContext(ctx, "ip", args...).Output()
		if err != nil {
			return nil, fmt.Errorf("netlab: %w: ip %s: %v", ErrUnavailable, strings.Join(args, " "), err)
		}
		for line := range strings.Lines(string(out)) {
			for _, f := range strings.Fields(line) {
				if p, ok := parsePrefix(f); ok {
					used = append(used, p)
					break
				}
			}
		}
	}
	return used, nil
}

// parsePrefix reads "10.0.0.0/8" or a host address "10.0.0.1" as a prefix.
func parsePrefix(f string) (netip.Prefix, bool) {
	if p, err := netip.ParsePrefix(f); err == nil && p.Addr().Is4() {
		return p.Masked(), true
	}
	if a, err := netip.ParseAddr(f); err == nil && a.Is4() {
		return netip.PrefixFrom(a, 32), true
	}
	return netip.Prefix{}, false
}

func overlapsAny(p netip.Prefix, used []netip.Prefix) bool {
	for _, u := range used {
		if u.Bits() > 0 && u.Overlaps(p) {
			return true
		}
	}
	return false
}
