package traffic

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"
	"time"

	"github.com/drctl/drctl/activities"
)

// Commander sends one command to an HAProxy runtime API and returns its
// answer, without the blank line that ends it.
type Commander interface {
	Command(ctx context.Context, command string) (string, error)
}

// Socket is a runtime API on a unix socket. Each command uses its own
// connection: in HAProxy's non-interactive mode the answer ends when HAProxy
// closes the connection.
type Socket struct {
	Path string
	// Timeout bounds one command, dial included. Zero: 5s.
	Timeout time.Duration
}

var _ Commander = Socket{}

// Command implements Commander. A socket that does not exist or refuses
// connections is a retryable error naming the path; one the worker may not
// open is permanent.
func (s Socket) Command(ctx context.Context, command string) (string, error) {
	if strings.ContainsAny(command, "\n;") {
		// HAProxy reads both as command separators.
		return "", activities.Permanentf("haproxy command %q holds a newline or ';'", command)
	}
	timeout := s.Timeout
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", s.Path)
	if err != nil {
		return "", dialError(s.Path, err)
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if _, err := io.WriteString(conn, command+"\n"); err != nil {
		return "", fmt.Errorf("haproxy runtime API %s: send %q: %w", s.Path, command, ctxErr(ctx, err))
	}
	b, err := io.ReadAll(conn)
	if err != nil {
		return "", fmt.Errorf("haproxy runtime API %s: read the answer to %q: %w", s.Path, command, ctxErr(ctx, err))
	}
	return strings.TrimRight(string(b), "\n"), nil
}

func dialError(path string, err error) error {
	// The errno alone: the net error would repeat the path.
	var errno syscall.Errno
	if !errors.As(err, &errno) {
		return fmt.Errorf("haproxy runtime API socket %s: %w", path, err)
	}
	switch errno {
	case syscall.ENOENT:
		return fmt.Errorf("haproxy runtime API socket %s does not exist (is haproxy running, with `stats socket` at that path?): %w", path, errno)
	case syscall.ECONNREFUSED:
		return fmt.Errorf("haproxy runtime API socket %s refuses connections (is haproxy running?): %w", path, errno)
	case syscall.EACCES, syscall.EPERM:
		return activities.Permanent(fmt.Errorf("haproxy runtime API socket %s: the worker may not open it (check the socket's owner and mode): %w", path, errno))
	case syscall.ENOTSOCK:
		return activities.Permanent(fmt.Errorf("haproxy runtime API %s is not a socket: %w", path, errno))
	}
	return fmt.Errorf("haproxy runtime API socket %s: %w", path, errno)
}

// ctxErr prefers the context's error to the deadline error the connection
// reports once AfterFunc has cut it.
func ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

// runtime is the runtime API of one runbook target.
type runtime struct {
	target string // runbook target name, for messages
	socket string
	c      Commander
}

func (r *runtime) String() string { return r.target + " (" + r.socket + ")" }

// do sends a command; errors name the target and the command.
func (r *runtime) do(ctx context.Context, command string) (string, error) {
	out, err := r.c.Command(ctx, command)
	if err != nil {
		// Socket errors name the path already.
		return "", fmt.Errorf("%s: %q: %w", r.target, command, err)
	}
	return out, nil
}

// set sends a command whose only correct answer is an empty one.
func (r *runtime) set(ctx context.Context, command string) error {
	out, err := r.do(ctx, command)
	if err != nil {
		return err
	}
	if out = strings.TrimSpace(out); out != "" {
		// Every non-empty answer to a set command is a refusal (unknown
		// server, permission denied, invalid value) that a retry repeats.
		return activities.Permanentf("%s: %q: haproxy answered %q", r, command, firstLine(out))
	}
	return nil
}

// snapshot reads every backend's servers, with session counts when stats
// is true.
func (r *runtime) snapshot(ctx context.Context, stats bool) (Snapshot, error) {
	const cmdState, cmdStat = "show servers state", "show stat"
	out, err := r.do(ctx, cmdState)
	if err != nil {
		return nil, err
	}
	snap, err := ParseServersState(out)
	if err != nil {
		return nil, answerError(r, cmdState, err)
	}
	if !stats {
		return snap, nil
	}
	out, err = r.do(ctx, cmdStat)
	if err != nil {
		return nil, err
	}
	rows, err := ParseStat(out)
	if err != nil {
		return nil, answerError(r, cmdStat, err)
	}
	snap.addStats(rows)
	return snap, nil
}

// answerError reports an answer that does not parse. It is permanent:
// a runtime API that answers this way (wrong level, other version) will
// answer the same way on the next attempt.
func answerError(r *runtime, command string, err error) error {
	return activities.Permanent(fmt.Errorf("%s: %q: %w", r, command, err))
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}
