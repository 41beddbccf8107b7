package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// workerProc is a testworker process.
type workerProc struct {
	cmd    *exec.Cmd
	out    *readyWriter
	exited chan struct{}
}

// startWorker starts a testworker polling queue and returns once it is
// connected. It dies with this process (parent-death signal).
func startWorker(ctx context.Context, bin, address, queue, identity string, env []string) (*workerProc, error) {
	out := &readyWriter{ready: make(chan struct{})}
	cmd := exec.Command(bin, "-address", address, "-task-queue", queue, "-identity", identity)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start worker %s: %w", identity, err)
	}
	w := &workerProc{cmd: cmd, out: out, exited: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		close(w.exited)
	}()
	select {
	case <-out.ready:
		return w, nil
	case <-w.exited:
		return nil, fmt.Errorf("worker %s exited before it was ready: %s", identity, out.String())
	case <-time.After(30 * time.Second):
	case <-ctx.Done():
	}
	w.stop()
	return nil, fmt.Errorf("worker %s not ready within 30s: %s", identity, out.String())
}

// kill sends SIGKILL and returns once the process is gone.
func (w *workerProc) kill() error {
	if err := w.cmd.Process.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("kill worker %d: %w", w.cmd.Process.Pid, err)
	}
	<-w.exited
	return nil
}

// stop asks the worker to stop (SIGTERM), kills it after 15s, and returns
// once it is gone.
func (w *workerProc) stop() {
	_ = w.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-w.exited:
	case <-time.After(15 * time.Second):
		_ = w.kill()
	}
}

// readyWriter collects a worker's output and closes ready at its "ready"
// line.
type readyWriter struct {
	mu    sync.Mutex
	b     strings.Builder
	ready chan struct{}
	seen  bool
}

func (r *readyWriter) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.b.Write(p)
	if !r.seen && strings.Contains(r.b.String(), "ready\n") {
		r.seen = true
		close(r.ready)
	}
	return len(p), nil
}

func (r *readyWriter) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.TrimSpace(r.b.String())
}
