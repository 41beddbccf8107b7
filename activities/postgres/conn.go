package postgres

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/drctl/drctl/activities"
	"github.com/drctl/drctl/runbooks"
)

// TargetKind is the runbook target kind this provider serves.
const TargetKind = "postgres"

// Secrets reads a target's admin DSN. The default reads the environment
// variable or file its credentials name, on the worker.
type Secrets interface {
	DSN(t runbooks.Target) (string, error)
}

// CredentialSecrets reads credentials.env / credentials.file.
type CredentialSecrets struct{}

// DSN implements Secrets.
func (CredentialSecrets) DSN(t runbooks.Target) (string, error) {
	return activities.Credential(t, "its admin DSN")
}

// Provider holds what every PostgreSQL action shares.
type Provider struct {
	Secrets Secrets
	// ConnectTimeout bounds one connection attempt. Default 5s.
	ConnectTimeout time.Duration
	// Poll is the interval of every wait loop (promotion, catch-up,
	// terminated backends). Default 10ms.
	Poll time.Duration
	// AfterPromote, when set, runs right after pg_promote and before the
	// promotion is verified and recorded. Tests use it to kill a worker at
	// the worst moment; production leaves it nil.
	AfterPromote func(ctx context.Context)
}

func (p *Provider) poll() time.Duration {
	if p.Poll > 0 {
		return p.Poll
	}
	return 10 * time.Millisecond
}

// node is an admin connection to one target.
type node struct {
	name string // target name, for messages
	addr string // host:port, for messages
	user string
	conn *pgx.Conn
}

func (n *node) String() string { return n.name + " (" + n.addr + ")" }

func (n *node) Close() { _ = n.conn.Close(context.Background()) }

// connect opens an admin connection to the named target. Errors name the
// target and address, never the password; an authentication failure or a
// missing DSN is permanent, a network failure is retryable.
func (p *Provider) connect(ctx context.Context, req activities.Request, target string) (*node, error) {
	t, ok := req.Target(target)
	if !ok {
		return nil, activities.Permanentf("no target %q in the runbook", target)
	}
	if t.Kind != TargetKind {
		return nil, activities.Permanentf("target %s is a %s, not a %s target", target, t.Kind, TargetKind)
	}
	secrets := p.Secrets
	if secrets == nil {
		secrets = CredentialSecrets{}
	}
	dsn, err := secrets.DSN(t)
	if err != nil {
		return nil, err
	}
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, activities.Permanentf("target %s: its DSN does not parse (check the value of its credentials; it is not shown here)", target)
	}
	timeout := p.ConnectTimeout
	if timeout == 0 {
		timeout = 5 * time.Second
	}
	cfg.ConnectTimeout = timeout
	cfg.RuntimeParams["application_name"] = "drctl"
	addr := net.JoinHostPort(cfg.Host, fmt.Sprint(cfg.Port))
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, classify(fmt.Errorf("connect to %s at %s as %s: %s", target, addr, cfg.User, redact(err, cfg.Password)), err)
	}
	return &node{name: target, addr: addr, user: cfg.User, conn: conn}, nil
}

// classify marks errors that retrying cannot fix as permanent.
func classify(wrapped, cause error) error {
	var pe *pgconn.PgError
	if errors.As(cause, &pe) {
		switch {
		case strings.HasPrefix(pe.Code, "28"): // invalid authorization / password
			return activities.Permanent(fmt.Errorf("%w (check the credentials the target names)", wrapped))
		case pe.Code == "3D000": // database does not exist
			return activities.Permanent(wrapped)
		case pe.Code == "42501": // insufficient privilege
			return activities.Permanent(fmt.Errorf("%w (the admin role must be a superuser)", wrapped))
		}
	}
	return wrapped
}

// redact removes the password from an error's text, whatever the driver
// chose to put there.
func redact(err error, password string) string {
	s := err.Error()
	if password != "" {
		s = strings.ReplaceAll(s, password, "******")
	}
	return s
}

// queryErr wraps a query failure with the operation and node.
func (n *node) queryErr(op string, err error) error {
	return classify(fmt.Errorf("%s on %s: %s", op, n, err), err)
}
