package runbooks

import (
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strings"
)

// Expressions
//
// A string value anywhere under a step's `with` (or a compensation's `with`,
// or an approval's `message`) may contain expressions of
// the form ${{ REF }}, where REF is one of
//
//	params.NAME                 a runbook parameter (text)
//	steps.ID.outputs.KEY        an output of an earlier step (ID must be an ancestor via needs)
//	run.id | run.mode | run.started_by | run.lock
//	targets.NAME.kind | targets.NAME.ATTRIBUTE
//
// Target attributes may use params and run fields; they are resolved once,
// when the run starts (ResolveTargets).
//
// There are no operators or function calls: resolution is a pure lookup, so
// it is deterministic and safe inside workflow code. A value that is exactly
// one expression keeps the referenced value's type (a step output may be a
// number or a list); an expression embedded in longer text is rendered as
// text.

// Ref is one reference found in an expression.
type Ref struct {
	Kind string // "params", "steps", "run" or "targets"
	Name string // param name, step id, run field or target name
	Key  string // output key (steps) or attribute (targets); empty otherwise
	Raw  string // the whole ${{ ... }} text
}

func (r Ref) String() string { return r.Raw }

var (
	exprRE  = regexp.MustCompile(`\$\{\{(.*?)\}\}`)
	identRE = `[A-Za-z_][A-Za-z0-9_-]*`
	refRE   = regexp.MustCompile(`^(params)\.(` + identRE + `)$|^(steps)\.(` + identRE + `)\.outputs\.(` + identRE + `)$|^(run)\.(id|mode|started_by|lock)$|^(targets)\.(` + identRE + `)\.(` + identRE + `)$`)
)

// ParseRefs returns the references in s, in order. It fails on an
// unterminated or malformed expression, naming it.
func ParseRefs(s string) ([]Ref, error) {
	var refs []Ref
	matches := exprRE.FindAllStringSubmatchIndex(s, -1)
	last := 0
	for _, m := range matches {
		if strings.Contains(s[last:m[0]], "${{") {
			return nil, fmt.Errorf("unterminated expression in %q: close it with }}", s)
		}
		raw := s[m[0]:m[1]]
		body := strings.TrimSpace(s[m[2]:m[3]])
		r, err := parseRef(body)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", raw, err)
		}
		r.Raw = raw
		refs = append(refs, r)
		last = m[1]
	}
	if strings.Contains(s[last:], "${{") {
		return nil, fmt.Errorf("unterminated expression in %q: close it with }}", s)
	}
	return refs, nil
}

// RunFields is the run.* scope of expressions (run.id, run.mode,
// run.started_by, run.lock); runs and plans build it here, the one place
// that knows its keys.
func RunFields(id, mode, startedBy, lock string) map[string]string {
	return map[string]string{"id": id, "mode": mode, "started_by": startedBy, "lock": lock}
}

func parseRef(body string) (Ref, error) {
	m := refRE.FindStringSubmatch(body)
	switch {
	case m == nil:
		return Ref{}, fmt.Errorf("%q is not a reference; write params.NAME, steps.ID.outputs.KEY, run.id|mode|started_by|lock or targets.NAME.ATTRIBUTE", body)
	case m[1] != "":
		return Ref{Kind: "params", Name: m[2]}, nil
	case m[3] != "":
		return Ref{Kind: "steps", Name: m[4], Key: m[5]}, nil
	case m[6] != "":
		return Ref{Kind: "run", Name: m[7]}, nil
	default:
		return Ref{Kind: "targets", Name: m[9], Key: m[10]}, nil
	}
}

// WalkStrings calls fn for every string in v (nested maps and lists
// included) with its path ("url", "servers[1]", "headers.X-Key"). Map keys are
// visited in sorted order.
func WalkStrings(v any, fn func(path, s string)) {
	walkStrings("", v, fn)
}

func walkStrings(path string, v any, fn func(path, s string)) {
	switch t := v.(type) {
	case string:
		fn(path, t)
	case map[string]any:
		for _, k := range sortedKeys(t) {
			walkStrings(joinPath(path, k), t[k], fn)
		}
	case []any:
		for i, e := range t {
			walkStrings(fmt.Sprintf("%s[%d]", path, i), e, fn)
		}
	}
}

func joinPath(a, b string) string {
	if a == "" {
		return b
	}
	return a + "." + b
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	// Deterministic: keys are sorted below, so the order of this loop never shows.
	//workflowcheck:ignore
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Scope holds the values expressions resolve against.
type Scope struct {
	Params  map[string]string
	Outputs map[string]map[string]any // step id -> outputs
	Run     map[string]string         // id, mode, started_by, lock
	Targets map[string]map[string]string
}

// Resolve returns a copy of v with every expression replaced by its value.
// It fails, naming the expression, when a reference has no value.
func Resolve(v any, sc Scope) (any, error) {
	switch t := v.(type) {
	case string:
		return resolveString(t, sc)
	case map[string]any:
		out := make(map[string]any, len(t))
		for _, k := range sortedKeys(t) {
			r, err := Resolve(t[k], sc)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", k, err)
			}
			out[k] = r
		}
		return out, nil
	case []any:
		out := make([]any, len(t))
		for i, e := range t {
			r, err := Resolve(e, sc)
			if err != nil {
				return nil, fmt.Errorf("[%d]: %w", i, err)
			}
			out[i] = r
		}
		return out, nil
	default:
		return v, nil
	}
}

// ResolveMap is Resolve for a step's `with` map.
func ResolveMap(with map[string]any, sc Scope) (map[string]any, error) {
	if with == nil {
		return map[string]any{}, nil
	}
	r, err := Resolve(with, sc)
	if err != nil {
		return nil, err
	}
	return r.(map[string]any), nil
}

func resolveString(s string, sc Scope) (any, error) {
	refs, err := ParseRefs(s)
	if err != nil || len(refs) == 0 {
		return s, err
	}
	if len(refs) == 1 && strings.TrimSpace(s) == refs[0].Raw {
		return lookup(refs[0], sc)
	}
	var b strings.Builder
	rest := s
	for _, r := range refs {
		i := strings.Index(rest, r.Raw)
		b.WriteString(rest[:i])
		v, err := lookup(r, sc)
		if err != nil {
			return nil, err
		}
		b.WriteString(render(v))
		rest = rest[i+len(r.Raw):]
	}
	b.WriteString(rest)
	return b.String(), nil
}

func lookup(r Ref, sc Scope) (any, error) {
	switch r.Kind {
	case "params":
		if v, ok := sc.Params[r.Name]; ok {
			return v, nil
		}
		return nil, fmt.Errorf("%s: parameter %q has no value; pass --set %s=VALUE", r.Raw, r.Name, r.Name)
	case "steps":
		outs, ok := sc.Outputs[r.Name]
		if !ok {
			return nil, fmt.Errorf("%s: step %q has not produced outputs", r.Raw, r.Name)
		}
		if v, ok := outs[r.Key]; ok {
			return v, nil
		}
		return nil, fmt.Errorf("%s: step %q has no output %q (it has: %s)", r.Raw, r.Name, r.Key, strings.Join(sortedKeys(outs), ", "))
	case "run":
		return sc.Run[r.Name], nil
	case "targets":
		attrs, ok := sc.Targets[r.Name]
		if !ok {
			return nil, fmt.Errorf("%s: no target %q", r.Raw, r.Name)
		}
		if v, ok := attrs[r.Key]; ok {
			return v, nil
		}
		return nil, fmt.Errorf("%s: target %q has no attribute %q", r.Raw, r.Name, r.Key)
	}
	return nil, fmt.Errorf("%s: unknown reference", r.Raw)
}

func render(v any) string {
	switch t := v.(type) {
	case string:
		return t
	case nil:
		return ""
	default:
		// Deterministic: encoding/json writes map keys sorted; its type cache does not change output.
		//workflowcheck:ignore
		b, err := json.Marshal(t)
		if err != nil {
			return fmt.Sprint(t)
		}
		return string(b)
	}
}

// ResolveTargets returns the targets with expressions in their attributes
// resolved against params and run fields.
func ResolveTargets(ts []Target, sc Scope) ([]Target, error) {
	out := make([]Target, len(ts))
	for i, t := range ts {
		out[i] = t
		if len(t.Attributes) == 0 {
			continue
		}
		attrs := make(map[string]string, len(t.Attributes))
		for _, k := range sortedKeys(t.Attributes) {
			v, err := resolveString(t.Attributes[k], Scope{Params: sc.Params, Run: sc.Run})
			if err != nil {
				return nil, fmt.Errorf("target %s attribute %s: %w", t.Name, k, err)
			}
			attrs[k] = render(v)
		}
		out[i].Attributes = attrs
	}
	return out, nil
}

// TargetScope turns the runbook's targets into the Targets part of a Scope.
func TargetScope(ts []Target) map[string]map[string]string {
	out := make(map[string]map[string]string, len(ts))
	for _, t := range ts {
		m := make(map[string]string, len(t.Attributes)+1)
		// Deterministic: copying map to map: order cannot show.
		//workflowcheck:ignore
		for k, v := range t.Attributes {
			m[k] = v
		}
		// kind and site are the target's own; an attribute cannot hide
		// them (Validate refuses attributes named kind or site).
		m["kind"] = t.Kind
		if t.Site != "" {
			m["site"] = t.Site
		}
		out[t.Name] = m
	}
	return out
}
