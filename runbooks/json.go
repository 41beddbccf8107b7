package runbooks

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
)

// A step's inputs are free-form values. Parse decodes YAML integers as int;
// plain encoding/json would turn them into float64 when the workflow decodes
// its input, so an action would see a different type in a run than the
// validator saw in the file. Steps and compensations therefore decode their
// `with` maps keeping whole numbers as int. (A whole-number float, 2.0,
// comes back as int 2: JSON does not tell them apart.)

// UnmarshalJSON decodes a step, keeping whole numbers in With as int.
func (s *Step) UnmarshalJSON(b []byte) error {
	type plain Step // no methods: no recursion
	var p struct {
		plain
		With map[string]json.RawMessage `json:"with,omitempty"`
	}
	if err := json.Unmarshal(b, &p); err != nil {
		return err
	}
	with, err := decodeWith(p.With)
	if err != nil {
		return err
	}
	*s = Step(p.plain)
	s.With = with
	return nil
}

// UnmarshalJSON decodes a compensation, keeping whole numbers in With as int.
func (c *Compensation) UnmarshalJSON(b []byte) error {
	type plain Compensation
	var p struct {
		plain
		With map[string]json.RawMessage `json:"with,omitempty"`
	}
	if err := json.Unmarshal(b, &p); err != nil {
		return err
	}
	with, err := decodeWith(p.With)
	if err != nil {
		return err
	}
	*c = Compensation(p.plain)
	c.With = with
	return nil
}

func decodeWith(raw map[string]json.RawMessage) (map[string]any, error) {
	if raw == nil {
		return nil, nil
	}
	out := make(map[string]any, len(raw))
	for k, r := range raw {
		dec := json.NewDecoder(bytes.NewReader(r))
		dec.UseNumber()
		var v any
		if err := dec.Decode(&v); err != nil {
			return nil, err
		}
		out[k] = plainNumbers(v)
	}
	return out, nil
}

// plainNumbers replaces json.Number with int when the text is a whole
// number that fits, and float64 otherwise.
func plainNumbers(v any) any {
	switch t := v.(type) {
	case json.Number:
		if !strings.ContainsAny(string(t), ".eE") {
			if i, err := strconv.ParseInt(string(t), 10, 0); err == nil {
				return int(i)
			}
		}
		f, _ := t.Float64()
		return f
	case map[string]any:
		for k, e := range t {
			t[k] = plainNumbers(e)
		}
	case []any:
		for i, e := range t {
			t[i] = plainNumbers(e)
		}
	}
	return v
}
