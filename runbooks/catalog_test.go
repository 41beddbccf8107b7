package runbooks_test

import (
	"strings"
	"testing"

	"github.com/drctl/drctl/runbooks"
)

func TestTestCatalogIsConsistent(t *testing.T) {
	if err := runbooks.CheckCatalog(catalog); err != nil {
		t.Fatal(err)
	}
}

func TestCheckSpec(t *testing.T) {
	tests := []struct {
		name string
		spec runbooks.ActionSpec
		want []string // substrings of the error, one per problem
	}{
		{"target without kinds", runbooks.ActionSpec{Name: "a", Inputs: []runbooks.InputSpec{in("target", runbooks.TypeTarget, true)}},
			[]string{`a: target input "target" declares no Kinds`}},
		{"kinds on text", runbooks.ActionSpec{Name: "a", Inputs: []runbooks.InputSpec{{Name: "name", Type: runbooks.TypeString, Kinds: []string{"dns"}}}},
			[]string{`a: input "name" is not a target but declares Kinds`}},
		{"bad groups", runbooks.ActionSpec{Name: "a", Inputs: []runbooks.InputSpec{in("url", runbooks.TypeString, true), in("urls", runbooks.TypeList, false)},
			Groups: []runbooks.InputGroup{
				{Inputs: []string{"url", "urls"}, Rule: runbooks.AtLeastOne},
				{Inputs: []string{"urls", "uri"}, Rule: "one_of"},
				{Inputs: []string{"urls"}, Rule: runbooks.AtMostOne},
			}},
			[]string{
				`a: group 0 names input "url", which is required anyway`,
				`a: group 1 has unknown rule "one_of"`,
				`a: group 1 names input "uri", which is not declared`,
				`a: group 2 names 1 inputs; a group needs two or more`,
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := runbooks.CheckSpec(tt.spec)
			if err == nil {
				t.Fatal("CheckSpec = nil, want an error")
			}
			if got := strings.Split(err.Error(), "\n"); len(got) != len(tt.want) {
				t.Errorf("CheckSpec = %q, want %d problems", err, len(tt.want))
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("CheckSpec = %q, want it to say %q", err, w)
				}
			}
		})
	}
}
