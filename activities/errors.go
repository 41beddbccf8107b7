package activities

import (
	"errors"
	"fmt"
	"time"
)

// Error is an action failure that names the operation and target and says
// whether retrying can help.
type Error struct {
	Op        string // e.g. "promote"
	Target    string // e.g. "payments-db@west"
	Err       error
	Permanent bool // retrying cannot fix it (bad input, safety rule, bad credentials)
	// RetryAfter, when set, is how long the next attempt must wait (a
	// server's Retry-After); the boundary makes it Temporal's next retry
	// delay instead of the policy's backoff.
	RetryAfter time.Duration
	// NoCredential: this worker does not hold the target's secret. It is
	// permanent here, but another worker may hold it: the boundary gives
	// it NoCredentialType, and the interpreter asks the other workers.
	NoCredential bool
}

func (e *Error) Error() string {
	switch {
	case e.Op != "" && e.Target != "":
		return fmt.Sprintf("%s %s: %v", e.Op, e.Target, e.Err)
	case e.Op != "":
		return fmt.Sprintf("%s: %v", e.Op, e.Err)
	case e.Target != "":
		return fmt.Sprintf("%s: %v", e.Target, e.Err)
	}
	return fmt.Sprint(e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// Permanent marks err as one that retrying cannot fix.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) && e.Permanent {
		return err
	}
	return &Error{Err: err, Permanent: true}
}

// Permanentf is Permanent(fmt.Errorf(format, args...)).
func Permanentf(format string, args ...any) error {
	return Permanent(fmt.Errorf(format, args...))
}

// errPermanent is what every permanent *Error matches with errors.Is, so
// IsPermanent finds a permanent error anywhere in a joined or multiply
// wrapped chain.
var errPermanent = errors.New("permanent")

// Is makes a permanent *Error match errPermanent.
func (e *Error) Is(target error) bool { return e.Permanent && target == errPermanent }

// IsPermanent reports whether err, or any error it wraps, is permanent.
func IsPermanent(err error) bool { return errors.Is(err, errPermanent) }

// NoCredentialf is a permanent error saying this worker lacks a target's
// secret (see Error.NoCredential).
func NoCredentialf(format string, args ...any) error {
	return &Error{Err: fmt.Errorf(format, args...), Permanent: true, NoCredential: true}
}

// IsNoCredential reports whether err, or an error it wraps, says this
// worker lacks a target's secret.
func IsNoCredential(err error) bool {
	var e *Error
	for errors.As(err, &e) {
		if e.NoCredential {
			return true
		}
		err = e.Err
	}
	return false
}

// RetryAfter marks err as retryable no sooner than after d.
func RetryAfter(err error, d time.Duration) error {
	if err == nil {
		return nil
	}
	return &Error{Err: err, RetryAfter: d}
}

// RetryDelay returns the delay a RetryAfter error asks for.
func RetryDelay(err error) (time.Duration, bool) {
	var e *Error
	for errors.As(err, &e) {
		if e.RetryAfter > 0 {
			return e.RetryAfter, true
		}
		err = e.Err
	}
	return 0, false
}
