package main

import (
	"bufio"
	"bytes"
	"context"
	_ "embed"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/drctl/drctl/internal/pglab"
)

//go:embed switchover.sh
var switchoverScript []byte

// psqlBin is the real psql; Debian's /usr/bin/psql is a Perl wrapper that
// costs ~20 ms more per process.
const psqlBin = pglab.DefaultBinDir + "/psql"

// script runs switchover.sh and fills in s.
func (b *bench) script(ctx context.Context, old, nw *pglab.Node, s *sample) error {
	ctx, cancel := context.WithTimeout(ctx, b.o.timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", b.scriptPath)
	if b.o.trace != "" {
		f, err := os.OpenFile(b.o.trace, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
		if err != nil {
			return err
		}
		defer f.Close()
		fmt.Fprintf(f, "### %s -> %s\n", old.Name, nw.Name)
		cmd.Args = []string{"bash", "-x", b.scriptPath}
		cmd.ExtraFiles = []*os.File{f} // fd 3
		cmd.Env = append(cmd.Env, "BASH_XTRACEFD=3")
	}
	cmd.Env = append(cmd.Env,
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"LC_ALL=C",
		"PSQL="+psqlBin,
		"ADMIN="+pglab.AdminUser,
		"OLD_PORT="+strconv.Itoa(old.Port),
		"NEW_PORT="+strconv.Itoa(nw.Port),
		"POLL="+strconv.FormatFloat(b.o.poll.Seconds(), 'f', -1, 64),
		"PGPASSWORD="+b.pair.AdminPassword,
		"PGSSLMODE=disable", // as drctl's DSN
		"PGCONNECT_TIMEOUT=5",
		"PGAPPNAME=pgbench-script",
	)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	// Its own process group, so that a cancel ends its psql processes too
	// (and a Ctrl-C reaches it only through ctx).
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 2 * time.Second
	t0 := time.Now()
	err := cmd.Run()
	s.wall = time.Since(t0)
	if err != nil {
		return fmt.Errorf("switchover.sh: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	marks, err := parseMarks(&stdout)
	if err != nil {
		return err
	}
	steps := []string{"start", "fenced", "caught_up", "verified"}
	for i := range 3 {
		a, ok1 := marks[steps[i]]
		z, ok2 := marks[steps[i+1]]
		if !ok1 || !ok2 {
			return fmt.Errorf("switchover.sh printed no %s or %s mark", steps[i], steps[i+1])
		}
		s.phases[i] = z - a
	}
	return nil
}

// parseMarks reads "phase EPOCHREALTIME" lines.
func parseMarks(r io.Reader) (map[string]time.Duration, error) {
	marks := map[string]time.Duration{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		name, at, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		sec, frac, _ := strings.Cut(at, ".")
		frac = (frac + "000000")[:6]
		s, err1 := strconv.ParseInt(sec, 10, 64)
		us, err2 := strconv.ParseInt(frac, 10, 64)
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("switchover.sh: bad mark %q", sc.Text())
		}
		marks[name] = time.Duration(s)*time.Second + time.Duration(us)*time.Microsecond
	}
	return marks, sc.Err()
}
