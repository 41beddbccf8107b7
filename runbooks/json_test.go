package runbooks_test

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/drctl/drctl/runbooks"
)

// The workflow receives the runbook as JSON; its inputs must have the same
// Go types there as the validator saw after Parse.
func TestJSONKeepsWholeNumbersAsInt(t *testing.T) {
	in := runbooks.Step{ID: "a", With: map[string]any{"n": 3, "f": 0.5, "big": 1e21, "list": []any{1, "x"}, "m": map[string]any{"k": -2}},
		Compensate: &runbooks.Compensation{Action: "note", With: map[string]any{"n": 7}}}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	var out runbooks.Step
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(in, out) {
		t.Errorf("round trip:\n got %#v\nwant %#v", out, in)
	}
}

func TestJSONRefusesBadStep(t *testing.T) {
	var s runbooks.Step
	if err := json.Unmarshal([]byte(`{"id": "a", "timeout": "soon"}`), &s); err == nil {
		t.Error("a bad duration was accepted")
	}
	if err := json.Unmarshal([]byte(`{"id": "a", "with": {"x": }}`), &s); err == nil {
		t.Error("bad JSON was accepted")
	}
}
