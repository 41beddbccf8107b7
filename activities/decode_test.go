package activities_test

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/drctl/drctl/activities"
	"github.com/drctl/drctl/runbooks"
)

// decodeSpec declares one input of every type Decode converts.
var decodeSpec = runbooks.ActionSpec{
	Name: "test.decode",
	Inputs: []runbooks.InputSpec{
		{Name: "n", Type: runbooks.TypeInt},
		{Name: "f", Type: runbooks.TypeFloat},
		{Name: "b", Type: runbooks.TypeBool},
		{Name: "d", Type: runbooks.TypeDuration},
		{Name: "s", Type: runbooks.TypeString},
		{Name: "t", Type: runbooks.TypeTarget},
		{Name: "l", Type: runbooks.TypeList},
		{Name: "m", Type: runbooks.TypeMap},
		{Name: "a", Type: runbooks.TypeAny},
	},
}

type decoded struct {
	N int64             `json:"n"`
	F float64           `json:"f"`
	B bool              `json:"b"`
	D runbooks.Duration `json:"d"`
	S string            `json:"s"`
	T string            `json:"t"`
	L []string          `json:"l"`
	M map[string]string `json:"m"`
	A any               `json:"a"`
}

func TestDecodeConverts(t *testing.T) {
	tests := []struct {
		name string
		with map[string]any
		want decoded
	}{
		{"int from text", map[string]any{"n": "3"}, decoded{N: 3}},
		{"int from padded text", map[string]any{"n": " 42 "}, decoded{N: 42}},
		{"int from negative text", map[string]any{"n": "-7"}, decoded{N: -7}},
		{"int from whole float", map[string]any{"n": float64(5)}, decoded{N: 5}},
		{"int from int", map[string]any{"n": 6}, decoded{N: 6}},
		{"int from int64", map[string]any{"n": int64(8)}, decoded{N: 8}},
		{"float from text", map[string]any{"f": "2.5"}, decoded{F: 2.5}},
		{"float from float", map[string]any{"f": 0.25}, decoded{F: 0.25}},
		{"float from int", map[string]any{"f": 3}, decoded{F: 3}},
		{"bool from text", map[string]any{"b": "true"}, decoded{B: true}},
		{"bool from padded text", map[string]any{"b": " TRUE "}, decoded{B: true}},
		{"bool from bool", map[string]any{"b": true}, decoded{B: true}},
		{"false from text", map[string]any{"b": "false"}, decoded{B: false}},
		{"duration from text", map[string]any{"d": "30s"}, decoded{D: runbooks.Duration(30 * time.Second)}},
		{"duration compound", map[string]any{"d": "1h30m"}, decoded{D: runbooks.Duration(90 * time.Minute)}},
		{"duration padded", map[string]any{"d": " 200ms "}, decoded{D: runbooks.Duration(200 * time.Millisecond)}},
		{"string", map[string]any{"s": "hello"}, decoded{S: "hello"}},
		{"string from number", map[string]any{"s": float64(12)}, decoded{S: "12"}},
		{"string from bool", map[string]any{"s": false}, decoded{S: "false"}},
		{"target", map[string]any{"t": "payments-db"}, decoded{T: "payments-db"}},
		{"target from number", map[string]any{"t": 7}, decoded{T: "7"}},
		{"list from list", map[string]any{"l": []any{"a", float64(1), true}}, decoded{L: []string{"a", "1", "true"}}},
		{"list from strings", map[string]any{"l": []string{"x", "y"}}, decoded{L: []string{"x", "y"}}},
		{"list from one text", map[string]any{"l": "only"}, decoded{L: []string{"only"}}},
		{"map", map[string]any{"m": map[string]any{"k": "v", "n": float64(2)}}, decoded{M: map[string]string{"k": "v", "n": "2"}}},
		{"any keeps its value", map[string]any{"a": map[string]any{"x": "y"}}, decoded{A: map[string]any{"x": "y"}}},
		{"no inputs", nil, decoded{}},
		{"several at once", map[string]any{"n": "1", "b": "false", "s": "x"}, decoded{N: 1, S: "x"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got decoded
			if err := activities.Decode(decodeSpec, tc.with, &got); err != nil {
				t.Fatalf("Decode(%v): %v", tc.with, err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Decode(%v) = %+v, want %+v", tc.with, got, tc.want)
			}
		})
	}
}

// TestDecodeDurationIntoText: a duration input decoded into a string field
// arrives as canonical Go duration text.
func TestDecodeDurationIntoText(t *testing.T) {
	var got struct {
		D string `json:"d"`
	}
	if err := activities.Decode(decodeSpec, map[string]any{"d": "90s"}, &got); err != nil {
		t.Fatal(err)
	}
	if got.D != "1m30s" {
		t.Errorf("d = %q, want 1m30s", got.D)
	}
}

func TestDecodeRefuses(t *testing.T) {
	tests := []struct {
		name  string
		with  map[string]any
		input string // the input the error must name
		say   string // and what it must say about it
	}{
		{"unknown input", map[string]any{"bogus": "1"}, "bogus", "unknown input"},
		{"int from words", map[string]any{"n": "three"}, "n", `"three" is not a whole number`},
		{"int from decimal text", map[string]any{"n": "2.5"}, "n", "not a whole number"},
		{"int from fractional float", map[string]any{"n": 2.5}, "n", "2.5 is not a whole number"},
		{"int from bool", map[string]any{"n": true}, "n", "expected int, got bool"},
		{"int from nil", map[string]any{"n": nil}, "n", "expected int"},
		{"float from words", map[string]any{"f": "lots"}, "f", `"lots" is not a number`},
		{"float from list", map[string]any{"f": []any{1.0}}, "f", "expected float"},
		{"bool from yes", map[string]any{"b": "yes"}, "b", `"yes" is not true or false`},
		{"bool from number", map[string]any{"b": float64(1)}, "b", "expected bool, got float64"},
		{"duration without unit", map[string]any{"d": "5"}, "d", "is not a duration"},
		{"duration in words", map[string]any{"d": "5 minutes"}, "d", "is not a duration"},
		{"negative duration", map[string]any{"d": "-1m"}, "d", "negative"},
		{"duration from number", map[string]any{"d": float64(30)}, "d", "expected duration, got float64"},
		{"string from list", map[string]any{"s": []any{"a"}}, "s", "expected string"},
		{"target from map", map[string]any{"t": map[string]any{}}, "t", "expected target"},
		{"list from map", map[string]any{"l": map[string]any{"a": "b"}}, "l", "expected list"},
		{"map from text", map[string]any{"m": "k=v"}, "m", "expected map, got string"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got decoded
			err := activities.Decode(decodeSpec, tc.with, &got)
			if err == nil {
				t.Fatalf("Decode(%v) = %+v, want an error", tc.with, got)
			}
			if !activities.IsPermanent(err) {
				t.Errorf("Decode(%v) error %q is retryable, want permanent", tc.with, err)
			}
			msg := err.Error()
			for _, want := range []string{decodeSpec.Name, `"` + tc.input + `"`, tc.say} {
				if !strings.Contains(msg, want) {
					t.Errorf("Decode(%v) error %q does not contain %q", tc.with, msg, want)
				}
			}
		})
	}
}

// TestDecodeRefusesMismatchedStruct: a value that converts but does not fit
// the action's struct is still a permanent error, not a panic or a retry.
func TestDecodeRefusesMismatchedStruct(t *testing.T) {
	var out struct {
		S int `json:"s"`
	}
	err := activities.Decode(decodeSpec, map[string]any{"s": "text"}, &out)
	if err == nil {
		t.Fatal("want an error decoding text into an int field")
	}
	if !activities.IsPermanent(err) || !strings.Contains(err.Error(), decodeSpec.Name) {
		t.Errorf("error %q: want permanent and naming %s", err, decodeSpec.Name)
	}
}
