package runbooks_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/drctl/drctl/runbooks"
)

func TestProblemString(t *testing.T) {
	tests := []struct {
		p    runbooks.Problem
		want string
	}{
		{runbooks.Problem{File: "runbooks/bad.yaml", Line: 12, Col: 7, Step: "promote", Message: `unknown action "postgres.promot"`, Hint: `did you mean "postgres.promote"?`},
			`runbooks/bad.yaml:12:7: step "promote": unknown action "postgres.promot" (did you mean "postgres.promote"?)`},
		{runbooks.Problem{File: "a.yaml", Line: 3, Message: "invalid YAML: x"}, "a.yaml:3: invalid YAML: x"},
		{runbooks.Problem{File: "a.yaml", Message: "the file is empty"}, "a.yaml: the file is empty"},
		{runbooks.Problem{Line: 4, Col: 2, Message: "m", Hint: "h"}, "4:2: m (h)"},
		{runbooks.Problem{Step: "s", Message: "m"}, `step "s": m`},
	}
	for _, tt := range tests {
		if got := tt.p.String(); got != tt.want {
			t.Errorf("String() = %q, want %q", got, tt.want)
		}
	}
}

func TestProblemsErrorIsSortedAndUnwrappable(t *testing.T) {
	ps := runbooks.Problems{
		{File: "f", Line: 9, Col: 1, Message: "third"},
		{File: "f", Line: 2, Col: 5, Message: "second"},
		{File: "f", Line: 2, Col: 1, Message: "first"},
	}
	err := fmt.Errorf("validate: %w", ps)
	var got runbooks.Problems
	if !errors.As(err, &got) || len(got) != 3 {
		t.Fatalf("errors.As did not find the Problems in %v", err)
	}
	if want := "f:2:1: first\nf:2:5: second\nf:9:1: third"; got.Error() != want {
		t.Errorf("Error() =\n%s\nwant\n%s", got.Error(), want)
	}
	if ps[0].Message != "third" {
		t.Error("Error() reordered the receiver")
	}
}
