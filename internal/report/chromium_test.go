package report

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/net/html"

	"github.com/drctl/drctl/internal/testwait"
)

// chromium is Debian's chromium package.
const chromium = "/usr/bin/chromium"

// TestHTMLInChromium opens the page in headless Chromium and reads back the
// DOM it built: the verdict, every step and one timeline bar per step and
// compensation must be there, as elements the browser parsed, not as text
// in a file.
func TestHTMLInChromium(t *testing.T) {
	bin := chromium
	if _, err := os.Stat(bin); err != nil {
		if p, lerr := exec.LookPath("chromium"); lerr == nil {
			bin = p
		} else {
			msg := "no Chromium: " + chromium + " is missing (Debian package chromium; make deps)"
			if os.Getenv("DRCTL_CI") == "1" {
				t.Fatal(msg)
			}
			t.Skip(msg)
		}
	}
	dir := t.TempDir()
	page := filepath.Join(dir, "report.html")
	var b bytes.Buffer
	if err := HTML(&b, drill()); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(page, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	dom := runChromium(t, bin, dir, "--dump-dom", "file://"+page)

	doc, err := html.Parse(bytes.NewReader(dom))
	if err != nil {
		t.Fatal(err)
	}
	// --dump-dom gives the document the browser built: the SVG must be
	// there as elements, with its bars and labels.
	svgs := findAll(doc, func(n *html.Node) bool { return n.Data == "svg" })
	rects := findAll(doc, func(n *html.Node) bool { return n.Data == "rect" })
	if len(svgs) == 0 || len(rects) == 0 {
		t.Fatalf("Chromium's DOM has %d svg and %d rect elements; want the timelines (%d bytes of DOM):\n%.2000s", len(svgs), len(rects), len(dom), dom)
	}
	checkPage(t, doc, drill(), "FAILED")
	text := textOf(doc)
	for _, want := range []string{"drctl run report: site-failover", "Before and after the drill", "DIFFERENT", "Failback run: failback", "bob, carol"} {
		if !strings.Contains(text, want) {
			t.Errorf("the page Chromium shows does not say %q", want)
		}
	}
}

// runChromium runs headless Chromium with its home and profile under dir
// and returns what it printed on stdout. Chromium and its helpers run in
// their own process group, except its crash handlers, which start their
// own session but keep their database under dir; when the test ends (or
// its bound runs out) every one of them is killed, and the test waits
// until they are gone so that nothing is left writing into dir.
func runChromium(t *testing.T, bin, dir string, args ...string) []byte {
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
	cmd.Cancel = func() error { killOurs(cmd.Process.Pid, dir); return nil }
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pgid := cmd.Process.Pid
	t.Cleanup(func() {
		killOurs(pgid, dir)
		testwait.For(t, "Chromium's processes to exit", func() bool { return len(ours(pgid, dir)) == 0 })
	})
	if err := cmd.Wait(); err != nil {
		t.Fatalf("%s: %v\n%s", bin, err, stderr.String())
	}
	dom, err := os.ReadFile(out.Name())
	if err != nil {
		t.Fatal(err)
	}
	return dom
}

// killOurs kills, each by its id, the processes ours finds.
func killOurs(pgid int, dir string) {
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	for _, pid := range ours(pgid, dir) {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
}

// ours lists the running processes this test started: those of process
// group pgid, and those whose command line names dir, the test's own
// temporary directory. A zombie waiting for its reaper is not running.
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
		g, _ := strconv.Atoi(f[2])
		if g == pgid {
			pids = append(pids, pid)
			continue
		}
		if cmdline, err := os.ReadFile(filepath.Join(filepath.Dir(p), "cmdline")); err == nil && bytes.Contains(cmdline, []byte(dir)) {
			pids = append(pids, pid)
		}
	}
	return pids
}
