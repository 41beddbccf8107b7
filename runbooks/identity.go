package runbooks

import (
	"errors"
	"fmt"
	"strings"
)

// MaxIdentity bounds the length of an identity, in bytes.
const MaxIdentity = 64

// CheckIdentity accepts an identity: who starts a run or decides a gate,
// as the CLI and Slack report it, and a person named in approvers. It is 1
// to 64 letters, digits and . _ - @ + (alice, alice@example.com,
// oncall-dba). Anything else, in particular "*" and "group:NAME", which
// are approver patterns, is refused, so no identity can match a pattern it
// only spells. This is the one rule; the workflow checks deciders with it
// too.
func CheckIdentity(who string) error {
	if who == "" {
		return errors.New("an identity is empty")
	}
	return checkName("identity", who)
}

// checkName holds an identity or a group name to the identity rule; what
// names it in the error.
func checkName(what, name string) error {
	if len(name) > MaxIdentity {
		return fmt.Errorf("%s of %d bytes is longer than %d", what, len(name), MaxIdentity)
	}
	for _, c := range name {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("._-@+", c)
		if !ok {
			return fmt.Errorf("%s %q has %q; use letters, digits and . _ - @ + only", what, name, c)
		}
	}
	return nil
}

// Approver patterns besides a person's identity.
const (
	// AnyApprover lets anyone approve; with two_person, anyone but the
	// run's starter.
	AnyApprover = "*"
	// GroupPrefix starts "group:NAME": any member of the approver group
	// NAME, as the front end (Slack user groups) verifies membership.
	GroupPrefix = "group:"
)

// CheckApprover accepts an entry of approval.approvers: AnyApprover,
// GroupPrefix followed by a group name that follows the identity rule, or
// an identity. Approvers are never evaluated, so "${{ params.x }}" would
// be a literal name that no one has.
func CheckApprover(entry string) error {
	switch {
	case entry == AnyApprover:
		return nil
	case strings.Contains(entry, "${{"):
		return errors.New("approvers are not evaluated: the expression would stay text that names no one")
	}
	if group, ok := strings.CutPrefix(entry, GroupPrefix); ok {
		if group == "" {
			return errors.New("group: names no group")
		}
		return checkName("group name", group)
	}
	return CheckIdentity(entry)
}
