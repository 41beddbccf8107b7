package haproxylab

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// HoldPath is the path whose requests a site keeps open until Release.
const HoldPath = "/hold"

// SiteHeader carries the answering site's name.
const SiteHeader = "X-Site"

// Site is one small HTTP server standing for a data center.
type Site struct {
	Name string

	ln      net.Listener
	srv     *http.Server
	served  chan struct{}
	failing atomic.Bool

	mu      sync.Mutex
	held    int
	release chan struct{} // closed by Release; replaced for later holds
}

func startSite(name string) (*Site, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("haproxylab: site %s: listen: %w", name, err)
	}
	s := &Site{Name: name, ln: ln, served: make(chan struct{}), release: make(chan struct{})}
	s.srv = &http.Server{Handler: http.HandlerFunc(s.serve), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		defer close(s.served)
		_ = s.srv.Serve(ln)
	}()
	return s, nil
}

func (s *Site) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == HoldPath {
		s.mu.Lock()
		s.held++
		release := s.release
		s.mu.Unlock()
		select {
		case <-release:
		case <-r.Context().Done():
		}
		s.mu.Lock()
		s.held--
		s.mu.Unlock()
	}
	w.Header().Set(SiteHeader, s.Name)
	w.Header().Set("Content-Type", "text/plain")
	if s.failing.Load() {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	_, _ = w.Write([]byte(s.Name))
}

// Addr is the site's host:port.
func (s *Site) Addr() string { return s.ln.Addr().String() }

// URL is the site's own base URL, bypassing HAProxy.
func (s *Site) URL() string { return "http://" + s.Addr() }

// Fail makes the site answer 503 Service Unavailable (true) or 200 OK
// (false), so health checks mark it down or up.
func (s *Site) Fail(failing bool) { s.failing.Store(failing) }

// Held is the number of /hold requests currently open.
func (s *Site) Held() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.held
}

// Release answers every /hold request open now; later ones wait for the
// next Release.
func (s *Site) Release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	close(s.release)
	s.release = make(chan struct{})
}

func (s *Site) close() error {
	s.Release()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := s.srv.Shutdown(ctx)
	if err != nil {
		err = s.srv.Close()
	}
	<-s.served
	if err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("haproxylab: close site %s: %w", s.Name, err)
	}
	return nil
}
