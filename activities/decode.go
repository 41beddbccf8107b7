package activities

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/drctl/drctl/runbooks"
)

// Decode converts a request's inputs into the action's input struct, using
// the spec's input types: parameters arrive as text, so "3" becomes an int
// and "30s" a runbooks.Duration. Inputs the spec does not declare, and values
// that do not convert, are permanent errors naming the input.
func Decode(spec runbooks.ActionSpec, with map[string]any, out any) error {
	conv := make(map[string]any, len(with))
	for k, v := range with {
		in, ok := spec.Input(k)
		if !ok {
			return Permanentf("%s: unknown input %q", spec.Name, k)
		}
		c, err := convert(in.Type, v)
		if err != nil {
			return Permanentf("%s: input %q: %v", spec.Name, k, err)
		}
		conv[k] = c
	}
	b, err := json.Marshal(conv)
	if err != nil {
		return Permanentf("%s: inputs: %v", spec.Name, err)
	}
	if err := json.Unmarshal(b, out); err != nil {
		return Permanentf("%s: inputs: %v", spec.Name, err)
	}
	return nil
}

func convert(t runbooks.InputType, v any) (any, error) {
	s, isText := v.(string)
	s = strings.TrimSpace(s)
	switch t {
	case runbooks.TypeInt:
		switch n := v.(type) {
		case float64:
			if n != float64(int64(n)) {
				return nil, fmt.Errorf("%v is not a whole number", n)
			}
			return int64(n), nil
		case int, int64:
			return n, nil
		}
		if isText {
			n, err := strconv.ParseInt(s, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("%q is not a whole number", s)
			}
			return n, nil
		}
	case runbooks.TypeFloat:
		switch n := v.(type) {
		case float64, int, int64:
			return n, nil
		}
		if isText {
			f, err := strconv.ParseFloat(s, 64)
			if err != nil {
				return nil, fmt.Errorf("%q is not a number", s)
			}
			return f, nil
		}
	case runbooks.TypeBool:
		if b, ok := v.(bool); ok {
			return b, nil
		}
		if isText {
			b, err := strconv.ParseBool(s)
			if err != nil {
				return nil, fmt.Errorf("%q is not true or false", s)
			}
			return b, nil
		}
	case runbooks.TypeDuration:
		if isText {
			d, err := runbooks.ParseDuration(s)
			if err != nil {
				return nil, err
			}
			return d.String(), nil
		}
	case runbooks.TypeString, runbooks.TypeTarget:
		switch x := v.(type) {
		case string:
			return x, nil
		case float64, int, int64, bool:
			return fmt.Sprint(x), nil
		}
	case runbooks.TypeList:
		switch x := v.(type) {
		case []any:
			out := make([]string, len(x))
			for i, e := range x {
				out[i] = fmt.Sprint(e)
			}
			return out, nil
		case []string:
			return x, nil
		case string:
			return []string{x}, nil
		}
	case runbooks.TypeMap:
		if m, ok := v.(map[string]any); ok {
			out := make(map[string]string, len(m))
			for k, e := range m {
				out[k] = fmt.Sprint(e)
			}
			return out, nil
		}
	case runbooks.TypeAny, "":
		return v, nil
	}
	return nil, fmt.Errorf("expected %s, got %T", t, v)
}
