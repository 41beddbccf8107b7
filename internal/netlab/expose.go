//go:build linux

package netlab

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
)

// Expose makes a TCP service of the root namespace that listens on
// loopback (target, e.g. 127.0.0.1:7233) reachable from inside the site at
// the returned address on HostAddr, by relaying connections. Use it for
// programs that cannot listen on HostAddr themselves (the Temporal dev
// server's internal clients assume loopback). The relay survives Cut: a
// relayed connection from the dead site stays open towards target, as a
// peer that lost power would leave it. Close stops the relay.
func (s *Site) Expose(target string) (string, error) {
	ln, err := net.Listen("tcp", net.JoinHostPort(s.HostAddr.String(), "0"))
	if err != nil {
		return "", fmt.Errorf("netlab: expose %s to %s: %w", target, s.Namespace, err)
	}
	r := &relay{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	s.mu.Lock()
	s.relays = append(s.relays, r)
	s.mu.Unlock()
	go r.serve()
	return ln.Addr().String(), nil
}

type relay struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
}

func (r *relay) serve() {
	for {
		in, err := r.ln.Accept()
		if err != nil {
			return
		}
		out, err := net.Dial("tcp", r.target)
		if err != nil {
			in.Close()
			continue
		}
		if !r.track(in, out) {
			return
		}
		go r.pipe(in, out)
		go r.pipe(out, in)
	}
}

func (r *relay) track(cs ...net.Conn) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		for _, c := range cs {
			c.Close()
		}
		return false
	}
	for _, c := range cs {
		r.conns[c] = struct{}{}
	}
	return true
}

// pipe copies until either side fails, then closes both.
func (r *relay) pipe(dst, src net.Conn) {
	_, _ = io.Copy(dst, src)
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range []net.Conn{dst, src} {
		c.Close()
		delete(r.conns, c)
	}
}

func (r *relay) close() error {
	err := r.ln.Close()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	for c := range r.conns {
		c.Close()
	}
	if errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}
