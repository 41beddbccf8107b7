// Package devserver starts the Temporal CLI's development server from the
// project-local build (bin/temporal) for `drctl dev`, `drctl demo`, the
// tests and the benchmark. The server listens on loopback on an OS-picked
// port unless told otherwise, and is stopped by its PID.
//
// Tuned (the default) applies the dynamic configuration that keeps step
// overhead flat on a small machine: without it the dev server's history
// transfer queue is limited to 20 polls/s (about 100 ms per step after the
// first ~20 steps) and four task-queue partitions add periodic 2 s stalls.
// The README's performance section has the measurements.
package devserver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/testsuite"

	"github.com/drctl/drctl/workflows"
)

// InstallHint says how to build the binary this package runs.
const InstallHint = "build it with `make temporal` (GOBIN=$PWD/bin go install github.com/temporalio/cli/cmd/temporal@v1.5.1), or set DRCTL_TEMPORAL_BIN"

// TunedArgs is the dynamic configuration applied when Options.Tuned is set.
var TunedArgs = []string{
	"--dynamic-config-value", "history.transferProcessorMaxPollRPS=1000",
	"--dynamic-config-value", "matching.numTaskqueueReadPartitions=1",
	"--dynamic-config-value", "matching.numTaskqueueWritePartitions=1",
	"--dynamic-config-value", `history.timerProcessorMaxTimeShift="100ms"`,
	// An activity a workflow task schedules goes back to that worker in
	// the task's answer when it has a free slot: one matching round trip
	// fewer per step.
	"--dynamic-config-value", "system.enableActivityEagerExecution=true",
}

// Options configures a dev server.
type Options struct {
	// Binary is the temporal executable; empty: FindBinary().
	Binary string
	// DBFile persists state in this SQLite file; empty: in memory.
	DBFile string
	// HostPort to listen on; empty: 127.0.0.1 on a free port.
	HostPort string
	// UI enables the web UI, on UIPort; empty: the frontend's port plus
	// 1000 (the Temporal CLI's default).
	UI     bool
	UIPort string
	// Untuned runs the server with its defaults (for before/after figures).
	Untuned bool
	// Log receives the server's output; nil discards it.
	Log io.Writer
}

// Server is a running dev server.
type Server struct {
	srv     *testsuite.DevServer
	Address string // host:port of the frontend
	UIURL   string // the web UI (http://host:port) when Options.UI; else empty
}

// FindBinary locates the temporal executable: $DRCTL_TEMPORAL_BIN, else
// temporal beside the running executable (bin/drctl and bin/temporal),
// else bin/temporal in this directory or any parent, else temporal on PATH.
func FindBinary() (string, error) {
	if p := os.Getenv("DRCTL_TEMPORAL_BIN"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("DRCTL_TEMPORAL_BIN=%s: %w", p, err)
		}
		return p, nil
	}
	if exe, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(exe), "temporal")
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p, nil
		}
	}
	if dir, err := os.Getwd(); err == nil {
		for {
			p := filepath.Join(dir, "bin", "temporal")
			if st, err := os.Stat(p); err == nil && !st.IsDir() {
				return p, nil
			}
			parent := filepath.Dir(dir)
			if parent == dir {
				break
			}
			dir = parent
		}
	}
	if p, err := exec.LookPath("temporal"); err == nil {
		return p, nil
	}
	return "", errors.New("the Temporal CLI (dev server) was not found; " + InstallHint)
}

// Start starts a dev server and waits until it answers.
func Start(ctx context.Context, o Options) (*Server, error) {
	bin := o.Binary
	if bin == "" {
		var err error
		if bin, err = FindBinary(); err != nil {
			return nil, err
		}
	}
	out := o.Log
	if out == nil {
		out = io.Discard
	}
	co := &client.Options{HostPort: o.HostPort, Logger: quiet{}}
	// drctl's search attributes exist from the start, as on a cluster where
	// they were registered once (workflows.SearchAttributesCommand).
	var extra []string
	for _, a := range workflows.SearchAttributes {
		extra = append(extra, "--search-attribute", a.Name+"="+a.Type)
	}
	if !o.Untuned {
		extra = append(extra, TunedArgs...)
	}
	srv, err := testsuite.StartDevServer(ctx, testsuite.DevServerOptions{
		ExistingPath:  bin,
		ClientOptions: co,
		DBFilename:    o.DBFile,
		EnableUI:      o.UI,
		UIPort:        o.UIPort,
		LogLevel:      "error",
		ExtraArgs:     extra,
		Stdout:        out,
		Stderr:        out,
	})
	if err != nil {
		return nil, fmt.Errorf("start Temporal dev server (%s): %w", bin, err)
	}
	s := &Server{srv: srv, Address: srv.FrontendHostPort()}
	if o.UI {
		s.UIURL = uiURL(s.Address, o.UIPort)
	}
	return s, nil
}

// uiURL is the web UI's address for a frontend on host:port: uiPort on
// the same host, or the frontend's port plus 1000 when uiPort is empty.
func uiURL(frontend, uiPort string) string {
	host, port, err := net.SplitHostPort(frontend)
	if err != nil {
		return "(unknown)"
	}
	if uiPort == "" {
		p, err := strconv.Atoi(port)
		if err != nil {
			return "(unknown)"
		}
		uiPort = strconv.Itoa(p + 1000)
	}
	return "http://" + net.JoinHostPort(host, uiPort)
}

// Client returns the client the server was started with.
func (s *Server) Client() client.Client { return s.srv.Client() }

// Stop stops the server process and waits for it to exit.
func (s *Server) Stop() error { return s.srv.Stop() }

type quiet struct{}

func (quiet) Debug(string, ...any) {}
func (quiet) Info(string, ...any)  {}
func (quiet) Warn(string, ...any)  {}
func (quiet) Error(string, ...any) {}
