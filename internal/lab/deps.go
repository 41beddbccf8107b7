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

// requirements: a file that must exist, and the Debian package providing it.
var requirements = []struct{ path, pkg string }{
	{"/usr/lib/postgresql/15/bin/postgres", "postgresql-15"},
	{"/usr/sbin/named", "bind9"},
	{"/usr/sbin/haproxy", "haproxy"},
	{"/usr/sbin/runuser", "util-linux"},
}

// Missing lists the Debian packages the lab needs and this host lacks.
func Missing() []string {
	var out []string
	for _, r := range requirements {
		if _, err := os.Stat(r.path); err != nil {
			if r.pkg == "haproxy" {
				if _, err := exec.LookPath("haproxy"); err == nil {
					continue
				}
			}
			out = append(out, r.pkg)
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

// Install installs the missing packages with apt-get when running as root,
// and stops the services Debian starts for them (the lab runs its own).
// Otherwise it returns an error holding the exact command to run.
func Install(ctx context.Context, out io.Writer) error {
	pkgs := Missing()
	if len(pkgs) == 0 {
		return nil
	}
	if os.Geteuid() != 0 {
		return fmt.Errorf("the lab needs %s; install with: %s", strings.Join(pkgs, ", "), InstallCommand(pkgs))
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
	if rest := Missing(); len(rest) > 0 {
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
