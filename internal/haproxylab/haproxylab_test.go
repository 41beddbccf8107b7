//go:build linux

package haproxylab_test

import (
	"errors"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/drctl/drctl/internal/testwait"

	"github.com/drctl/drctl/internal/haproxylab"
)

func start(t *testing.T, o haproxylab.Options) *haproxylab.Lab {
	t.Helper()
	ctx := testwait.Context(t)
	l, err := haproxylab.Start(ctx, o)
	if errors.Is(err, haproxylab.ErrNotInstalled) && os.Getenv("DRCTL_CI") == "" {
		t.Skip("HAProxy is needed (apt-get install haproxy); CI sets DRCTL_CI=1 and fails instead: ", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := l.Stop(); err != nil {
			t.Errorf("stop lab: %v", err)
		}
	})
	return l
}

func TestLabServesEastAndStopsClean(t *testing.T) {
	ctx := testwait.Context(t)
	l := start(t, haproxylab.Options{})
	for range 10 {
		site, err := l.Get(ctx, "", "/")
		if err != nil {
			t.Fatal(err)
		}
		if site != "east" {
			t.Fatalf("answered by %q, want east (west1 starts in maintenance)", site)
		}
	}
	state, err := l.Command(ctx, "show servers state app")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(state, " app ") || !strings.Contains(state, haproxylab.WestServer) {
		t.Errorf("show servers state app:\n%s", state)
	}
	pid, dir := l.PID(), l.Dir
	if err := l.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("haproxy pid %d still exists after Stop (kill 0: %v)", pid, err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("%s still exists after Stop: %v", dir, err)
	}
	if err := l.Stop(); err != nil {
		t.Errorf("second Stop: %v", err)
	}
}

func TestLabBothReadyAndBackends(t *testing.T) {
	ctx := testwait.Context(t)
	l := start(t, haproxylab.Options{Backends: []string{"app", "api"}, BothReady: true, HealthChecks: true})
	for _, backend := range []string{"app", "api"} {
		seen := map[string]int{}
		for range 10 {
			site, err := l.Get(ctx, backend, "/")
			if err != nil {
				t.Fatal(err)
			}
			seen[site]++
		}
		if seen["east"] == 0 || seen["west"] == 0 {
			t.Errorf("backend %s: answers %v, want both sites (round robin)", backend, seen)
		}
	}
}
