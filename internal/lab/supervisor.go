//go:build linux

package lab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/drctl/drctl/internal/proclog"
)

// SupervisorLog is the file in a lab's state directory that Up sends its
// supervisor's output to.
const SupervisorLog = "supervisor.log"

// UpOptions configures Up.
type UpOptions struct {
	// Supervisor is the command line of the process that runs the lab in
	// the foreground until SIGTERM by calling Serve (`drctl lab serve
	// --state DIR`). Required.
	Supervisor []string
	// Out receives what Up does on its way: cleaning up, installing.
	// Nil: discarded.
	Out io.Writer
	// Limit bounds the wait for the supervisor to write the lab's state.
	// Default 3 minutes.
	Limit time.Duration
}

// UpResult is what Up found or started.
type UpResult struct {
	State State
	// AlreadyRunning: a lab's supervisor already ran in the directory; Up
	// left it alone.
	AlreadyRunning bool
	// Took is how long the new lab took to start.
	Took time.Duration
}

// Up starts a lab in dir in the background and returns once its
// supervisor has written state.json, or at once if a lab already runs
// there. A lab whose supervisor is gone is cleaned up first; missing
// packages are installed (as Install does). The supervisor runs in a
// session of its own, so it outlives the caller and its terminal; its
// output goes to SupervisorLog in dir.
func Up(ctx context.Context, dir string, o UpOptions) (UpResult, error) {
	if len(o.Supervisor) == 0 {
		return UpResult{}, errors.New("lab: Up needs the supervisor's command line")
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
	if o.Limit <= 0 {
		o.Limit = 3 * time.Minute
	}
	if st, err := ReadState(dir); err == nil {
		if st.SupervisorRunning() {
			return UpResult{State: st, AlreadyRunning: true}, nil
		}
		// A lab whose supervisor died (or a state left from before a
		// reboot): clean up what it left running before starting anew.
		if left := Leftovers(st); len(left) > 0 {
			fmt.Fprintf(o.Out, "cleaning up a lab whose supervisor is gone: %s\n", strings.Join(left, ", "))
		}
		if err := Down(ctx, dir); err != nil {
			return UpResult{}, fmt.Errorf("lab up: a previous lab in %s could not be cleaned up: %w", dir, err)
		}
	}
	if err := Install(ctx, o.Out); err != nil {
		return UpResult{}, err
	}
	if _, err := EnsureTemporal(ctx, o.Out); err != nil {
		// The lab itself runs without Temporal; running runbooks needs it.
		fmt.Fprintf(o.Out, "warning: %v\n", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return UpResult{}, err
	}
	_ = os.Remove(filepath.Join(dir, StateFile)) // a stale one from a crashed lab
	logPath := filepath.Join(dir, SupervisorLog)
	log, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return UpResult{}, err
	}
	defer log.Close()
	sup := exec.Command(o.Supervisor[0], o.Supervisor[1:]...)
	sup.Stdout, sup.Stderr = log, log
	sup.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := sup.Start(); err != nil {
		return UpResult{}, fmt.Errorf("start the lab supervisor: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- sup.Wait() }()
	start := time.Now()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(o.Limit)
	for {
		if st, err := ReadState(dir); err == nil && st.SupervisorPID == sup.Process.Pid {
			return UpResult{State: st, Took: time.Since(start)}, nil
		}
		select {
		case err := <-exited:
			b, _ := os.ReadFile(logPath)
			return UpResult{}, fmt.Errorf("the lab did not start (%v):\n%s", err, strings.TrimSpace(proclog.LastLines(string(b), 30)))
		case <-deadline:
			_ = sup.Process.Signal(syscall.SIGTERM)
			return UpResult{}, fmt.Errorf("the lab did not start within %s; see %s", o.Limit, logPath)
		case <-ctx.Done():
			_ = sup.Process.Signal(syscall.SIGTERM)
			return UpResult{}, ctx.Err()
		case <-tick.C:
		}
	}
}

// Serve runs a lab in dir until ctx ends (SIGTERM or SIGINT), then stops
// it: the supervisor Up starts. It writes the lab's files, state.json last,
// so Up finds everything once it finds that; log receives its own lines.
func Serve(ctx context.Context, dir string, log io.Writer) error {
	l, err := Start(ctx, Options{Dir: dir})
	if err != nil {
		return err
	}
	if err := l.WriteFiles(dir, l.State(os.Getpid())); err != nil {
		return errors.Join(err, l.Close())
	}
	fmt.Fprintf(log, "lab serving (pid %d); SIGTERM stops it\n", os.Getpid())
	<-ctx.Done()
	err = l.Close()
	fmt.Fprintf(log, "lab stopped (%v)\n", err)
	return err
}
