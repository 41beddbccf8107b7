package chromium

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/drctl/drctl/internal/testwait"
)

// Debian is where Debian's chromium package installs the browser.
const Debian = "/usr/bin/chromium"

// Find returns the Chromium binary: Debian, else chromium on PATH. Without
// either it skips t, or fails it when DRCTL_CI=1.
func Find(t testing.TB) string {
	t.Helper()
	if _, err := os.Stat(Debian); err == nil {
		return Debian
	}
	if p, err := exec.LookPath("chromium"); err == nil {
		return p
	}
	msg := "no Chromium: " + Debian + " is missing and no chromium is on PATH (Debian package chromium; make deps)"
	if os.Getenv("DRCTL_CI") == "1" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// DumpDOM opens url in headless Chromium (found by Find) with its home and
// profile under dir and returns the document the browser built
// (--dump-dom).
func DumpDOM(t testing.TB, dir, url string) string {
	t.Helper()
	return string(Run(t, Find(t), dir, "--dump-dom", url))
}

// Screenshot opens url in headless Chromium (found by Find) with its home
// and profile under dir, in a window of width x height pixels without
// scrollbars, and saves a PNG of what it shows to file (an absolute path).
func Screenshot(t testing.TB, dir, url, file string, width, height int) {
	t.Helper()
	Run(t, Find(t), dir, "--hide-scrollbars", fmt.Sprintf("--window-size=%d,%d", width, height), "--screenshot="+file, url)
}

// Run runs Chromium bin headless with args, its home and profile under
// dir, and returns what it printed on stdout; it fails t if Chromium
// fails. Everything it started is killed and waited for when t ends (see
// the package doc).
func Run(t testing.TB, bin, dir string, args ...string) []byte {
	t.Helper()
	out, err := os.Create(filepath.Join(dir, "stdout"))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	var stderr bytes.Buffer
	home := filepath.Join(dir, "home")
	cmd := exec.CommandContext(testwait.Context(t), bin, append([]string{
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
		"--no-first-run", "--no-default-browser-check", "--disable-extensions",
		"--user-data-dir=" + filepath.Join(dir, "profile"),
	}, args...)...)
	cmd.Env = append(os.Environ(), "HOME="+home, "XDG_CONFIG_HOME="+filepath.Join(home, ".config"), "XDG_CACHE_HOME="+filepath.Join(home, ".cache"))
	// stdout goes to a file, not a pipe, so a helper process that outlives
	// Chromium cannot hold Wait open.
	cmd.Stdout, cmd.Stderr = out, &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { kill(cmd.Process.Pid, dir); return nil }
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pgid := cmd.Process.Pid
	t.Cleanup(func() {
		kill(pgid, dir)
		testwait.For(t, "Chromium's processes to exit", func() bool { return len(ours(pgid, dir)) == 0 })
	})
	if err := cmd.Wait(); err != nil {
		t.Fatalf("%s: %v\n%s", bin, err, stderr.String())
	}
	b, err := os.ReadFile(out.Name())
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// kill kills, each by its id, the processes ours finds.
func kill(pgid int, dir string) {
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	for _, pid := range ours(pgid, dir) {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
}

// ours lists the running processes a run started: those of process group
// pgid, and those whose command line names dir, the test's own temporary
// directory. A zombie waiting for its reaper is not running.
func ours(pgid int, dir string) []int {
	var pids []int
	procs, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		// pid (comm) state ppid pgrp ...; comm may hold spaces and ")".
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) < 3 || f[0] == "Z" || f[0] == "X" {
			continue
		}
		pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(p)))
		if g, _ := strconv.Atoi(f[2]); g == pgid {
			pids = append(pids, pid)
			continue
		}
		if cmdline, err := os.ReadFile(filepath.Join(filepath.Dir(p), "cmdline")); err == nil && bytes.Contains(cmdline, []byte(dir)) {
			pids = append(pids, pid)
		}
	}
	return pids
}
