package activities

import (
	"errors"
	"os"
	"strings"

	"github.com/drctl/drctl/runbooks"
)

// Credential reads the secret a runbook target's credentials name — an
// environment variable or a file on this worker. what says what the secret
// is ("its admin DSN") for the messages. Every failure is permanent and
// names the target and the source, never the value; a secret this worker
// lacks (an unset variable, an unreadable file) is NoCredential, since
// another worker may hold it.
func Credential(t runbooks.Target, what string) (string, error) {
	c := t.Credentials
	switch {
	case c == nil || (c.Env == "" && c.File == ""):
		return "", Permanentf("target %s has no credentials; add credentials: {env: NAME} naming the variable that holds %s on the worker", t.Name, what)
	case c.Env != "":
		v := strings.TrimSpace(os.Getenv(c.Env))
		if v == "" {
			return "", NoCredentialf("target %s: environment variable %s is not set on worker %s; set it to %s", t.Name, c.Env, WorkerHost(), what)
		}
		return v, nil
	default:
		b, err := os.ReadFile(c.File)
		if err != nil {
			return "", NoCredentialf("target %s: credentials file %s: %v (on worker %s)", t.Name, c.File, errors.Unwrap(err), WorkerHost())
		}
		return strings.TrimSpace(string(b)), nil
	}
}

// WorkerHost names this worker's host in messages.
func WorkerHost() string {
	h, err := os.Hostname()
	if err != nil {
		return "this host"
	}
	return h
}
