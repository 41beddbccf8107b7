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

	"github.com/drctl/drctl/internal/devserver"

	"github.com/drctl/drctl/internal/proclog"
)

// TemporalModule is the Temporal CLI the local dev server is built from
// (newer versions of the module cannot be go-installed).
const TemporalModule = "github.com/temporalio/cli/cmd/temporal@v1.5.1"

// Requirement is a Debian package the lab or drctl's tests need, and how
// to tell it is installed.
type Requirement struct {
	Package string
	// Any are what shows it installed, one being enough: absolute paths of
	// files, or names of commands looked up on PATH.
	Any []string
	// Tests: only drctl's tests need it, the lab does not.
	Tests bool
}

// Requirements is the one list of the system packages the lab and drctl's
// tests use: `drctl lab up` and `drctl demo` install the lab's, `drctl lab
// deps --tests` (make deps, scripts/install-deps.sh) all of them.
var Requirements = []Requirement{
	{Package: "postgresql-15", Any: []string{"/usr/lib/postgresql/15/bin/postgres"}},
	{Package: "util-linux", Any: []string{"/usr/sbin/runuser", "runuser"}}, // PostgreSQL runs as its OS user
	{Package: "bind9", Any: []string{"/usr/sbin/named"}},
	{Package: "bind9-dnsutils", Any: []string{"dig"}, Tests: true},
	{Package: "haproxy", Any: []string{"/usr/sbin/haproxy", "haproxy"}},
	{Package: "openssh-client", Any: []string{"ssh-agent"}, Tests: true},               // signed approvals: ssh-keygen, ssh-agent
	{Package: "chromium", Any: []string{"/usr/bin/chromium", "chromium"}, Tests: true}, // the HTML report, rendered headless
}

// Installed reports whether r is installed on this host.
func (r Requirement) Installed() bool {
	for _, p := range r.Any {
		if filepath.IsAbs(p) {
			if st, err := os.Stat(p); err == nil && !st.IsDir() {
				return true
			}
		} else if _, err := exec.LookPath(p); err == nil {
			return true
		}
	}
	return false
}

// Missing lists the Debian packages the lab needs and this host lacks.
func Missing() []string { return missing(false) }

// MissingForTests lists the Debian packages the lab and drctl's tests need
// and this host lacks.
func MissingForTests() []string { return missing(true) }

func missing(tests bool) []string {
	var out []string
	for _, r := range Requirements {
		if (tests || !r.Tests) && !r.Installed() {
			out = append(out, r.Package)
		}
	}
	return out
}

// InstallCommand is the command that installs pkgs.
func InstallCommand(pkgs []string) string {
	if len(pkgs) == 0 {
		return "nothing to install"
	}
	return "sudo apt-get install -y " + strings.Join(pkgs, " ")
}

// Install installs the packages Missing lists with apt-get when running as
// root, and stops the services Debian starts for them (the lab runs its
// own). Otherwise it returns an error holding the exact command to run.
func Install(ctx context.Context, out io.Writer) error {
	return install(ctx, out, "the lab needs", Missing)
}

// InstallForTests is Install for the packages MissingForTests lists.
func InstallForTests(ctx context.Context, out io.Writer) error {
	return install(ctx, out, "the lab and drctl's tests need", MissingForTests)
}

func install(ctx context.Context, out io.Writer, needs string, missing func() []string) error {
	pkgs := missing()
	if len(pkgs) == 0 {
		return nil
	}
	if os.Geteuid() != 0 {
		return fmt.Errorf("%s %s; install with: %s", needs, strings.Join(pkgs, ", "), InstallCommand(pkgs))
	}
	fmt.Fprintf(out, "installing %s with apt-get ...\n", strings.Join(pkgs, " "))
	env := append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	for _, args := range [][]string{
		{"apt-get", "update", "-qq"},
		append([]string{"apt-get", "install", "-y", "-qq", "--no-install-recommends"}, pkgs...),
	} {
		cmd := exec.CommandContext(ctx, args[0], args[1:]...)
		cmd.Env = env
		if b, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("%s: %w\n%s", strings.Join(args, " "), err, proclog.LastLines(string(b), 20))
		}
	}
	for _, svc := range []string{"named", "haproxy"} {
		_ = exec.CommandContext(ctx, "service", svc, "stop").Run()
	}
	if _, err := exec.LookPath("pg_ctlcluster"); err == nil {
		_ = exec.CommandContext(ctx, "pg_ctlcluster", "15", "main", "stop").Run()
	}
	if rest := missing(); len(rest) > 0 {
		return fmt.Errorf("still missing after apt-get: %s", strings.Join(rest, ", "))
	}
	return nil
}

// EnsureTemporal returns the Temporal CLI to run the dev server with,
// building it into the project's bin/ (the directory holding go.mod, from
// the working directory up) when it is missing. The first build takes a few
// minutes.
func EnsureTemporal(ctx context.Context, out io.Writer) (string, error) {
	if bin, err := devserver.FindBinary(); err == nil {
		return bin, nil
	}
	root, err := ModuleRoot()
	if err != nil {
		return "", fmt.Errorf("the Temporal CLI is missing and no project directory was found to build it in (%v); %s", err, devserver.InstallHint)
	}
	if _, err := exec.LookPath("go"); err != nil {
		return "", errors.New("the Temporal CLI is missing and go is not on PATH; " + devserver.InstallHint)
	}
	bin := filepath.Join(root, "bin")
	fmt.Fprintf(out, "building the Temporal CLI into %s (go install %s; a few minutes the first time) ...\n", bin, TemporalModule)
	cmd := exec.CommandContext(ctx, "go", "install", TemporalModule)
	cmd.Env = append(os.Environ(), "GOBIN="+bin)
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go install %s: %w\n%s", TemporalModule, err, proclog.LastLines(string(b), 20))
	}
	return filepath.Join(bin, "temporal"), nil
}

// ModuleRoot is the directory holding go.mod: the working directory or
// the nearest of its parents that has one.
func ModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod in the working directory or above")
		}
		dir = parent
	}
}
