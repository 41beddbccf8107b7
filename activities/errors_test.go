package activities_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/drctl/drctl/activities"
)

func TestErrorFormatting(t *testing.T) {
	boom := errors.New("boom")
	tests := []struct {
		name string
		err  *activities.Error
		want string
	}{
		{"op and target", &activities.Error{Op: "promote", Target: "payments-db@west", Err: boom}, "promote payments-db@west: boom"},
		{"op only", &activities.Error{Op: "promote", Err: boom}, "promote: boom"},
		{"neither", &activities.Error{Err: boom}, "boom"},
		{"permanent does not change the text", &activities.Error{Op: "fence", Target: "db@ams", Err: boom, Permanent: true}, "fence db@ams: boom"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.err.Error(); got != tc.want {
				t.Errorf("Error() = %q, want %q", got, tc.want)
			}
			if !errors.Is(tc.err, boom) {
				t.Errorf("errors.Is(%q, boom) = false; Unwrap must expose the cause", tc.err)
			}
		})
	}
}

func TestIsPermanent(t *testing.T) {
	cause := errors.New("bad credentials")
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"plain error", cause, false},
		{"context error", context.DeadlineExceeded, false},
		{"Permanent", activities.Permanent(cause), true},
		{"Permanentf", activities.Permanentf("fence %s: %w", "db", cause), true},
		{"wrapped with %w", fmt.Errorf("step fence: %w", activities.Permanent(cause)), true},
		{"wrapped twice", fmt.Errorf("a: %w", fmt.Errorf("b: %w", activities.Permanent(cause))), true},
		{"wrapped with %v loses it", fmt.Errorf("step fence: %v", activities.Permanent(cause)), false},
		{"retryable Error", &activities.Error{Op: "promote", Err: cause}, false},
		{"permanent Error", &activities.Error{Op: "promote", Err: cause, Permanent: true}, true},
		{"retryable Error around a permanent one", &activities.Error{Op: "promote", Err: activities.Permanent(cause)}, true},
		{"retryable Error around a wrapped permanent one", &activities.Error{Op: "promote", Err: fmt.Errorf("x: %w", activities.Permanent(cause))}, true},
		{"retryable Error around a retryable one", &activities.Error{Op: "a", Err: &activities.Error{Op: "b", Err: cause}}, false},
		{"joined", errors.Join(cause, activities.Permanent(errors.New("other"))), true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := activities.IsPermanent(tc.err); got != tc.want {
				t.Errorf("IsPermanent(%v) = %v, want %v", tc.err, got, tc.want)
			}
		})
	}
}

func TestPermanent(t *testing.T) {
	if err := activities.Permanent(nil); err != nil {
		t.Errorf("Permanent(nil) = %v, want nil", err)
	}

	cause := errors.New("bad input")
	p := activities.Permanent(cause)
	if p.Error() != "bad input" {
		t.Errorf("Permanent(cause).Error() = %q, want the cause's text unchanged", p)
	}
	if !errors.Is(p, cause) {
		t.Error("Permanent hides its cause from errors.Is")
	}
	if again := activities.Permanent(p); again != p {
		t.Errorf("Permanent(permanent) = %#v, want the same error back", again)
	}
	wrapped := fmt.Errorf("ctx: %w", p)
	if again := activities.Permanent(wrapped); again != wrapped {
		t.Errorf("Permanent(wrapped permanent) = %#v, want the same error back", again)
	}

	// A retryable *Error keeps its op and target when made permanent.
	op := &activities.Error{Op: "promote", Target: "db@west", Err: cause}
	pop := activities.Permanent(op)
	if !activities.IsPermanent(pop) || pop.Error() != "promote db@west: bad input" {
		t.Errorf("Permanent(%q) = %q (permanent %v)", op, pop, activities.IsPermanent(pop))
	}
	var got *activities.Error
	if !errors.As(pop, &got) {
		t.Fatal("Permanent does not return an *Error")
	}

	pf := activities.Permanentf("input %q: %w", "n", cause)
	if pf.Error() != `input "n": bad input` || !errors.Is(pf, cause) {
		t.Errorf("Permanentf = %q; want formatted text that wraps the cause", pf)
	}
}

func TestIsPermanentFindsAnyBranch(t *testing.T) {
	busy := &activities.Error{Op: "fence", Err: errors.New("busy")}
	for _, err := range []error{
		errors.Join(busy, activities.Permanentf("bad creds")),
		errors.Join(activities.Permanentf("bad creds"), busy),
		fmt.Errorf("both: %w and %w", busy, activities.Permanentf("bad creds")),
	} {
		if !activities.IsPermanent(err) {
			t.Errorf("activities.IsPermanent(%v) = false, want true", err)
		}
	}
	if activities.IsPermanent(errors.Join(busy, errors.New("x"))) {
		t.Error("a chain without a permanent error reported permanent")
	}
}
