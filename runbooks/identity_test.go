package runbooks_test

import (
	"strings"
	"testing"

	"github.com/drctl/drctl/runbooks"
)

func TestCheckIdentity(t *testing.T) {
	for _, ok := range []string{"alice", "alice@example.com", "oncall-dba", "carol+oncall", "a.b_c", "U012AB3CD", strings.Repeat("a", runbooks.MaxIdentity)} {
		if err := runbooks.CheckIdentity(ok); err != nil {
			t.Errorf("CheckIdentity(%q) = %v, want nil", ok, err)
		}
	}
	for _, bad := range []string{"", "*", "group:dba", "alice bob", "alice\n", "ali\u202ece", "${{ params.x }}", strings.Repeat("a", runbooks.MaxIdentity+1)} {
		if err := runbooks.CheckIdentity(bad); err == nil {
			t.Errorf("CheckIdentity(%q) = nil, want an error", bad)
		}
	}
}

func TestCheckApprover(t *testing.T) {
	for _, ok := range []string{"*", "alice", "group:dba", "group:dr-approvers", "alice@example.com"} {
		if err := runbooks.CheckApprover(ok); err != nil {
			t.Errorf("CheckApprover(%q) = %v, want nil", ok, err)
		}
	}
	for _, bad := range []string{"", "group:", "group:*", "group:on call", "**", "${{ params.approver }}", "group:${{ params.g }}", "alice bob"} {
		if err := runbooks.CheckApprover(bad); err == nil {
			t.Errorf("CheckApprover(%q) = nil, want an error", bad)
		}
	}
}
