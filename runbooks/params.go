package runbooks

import (
	"fmt"
	"slices"
	"sort"
	"strings"
)

// ParamValues merges values set by the operator with the runbook's defaults.
// It fails, naming every problem, on an undeclared name, a missing required
// value or a value outside `allowed`.
func ParamValues(rb *Runbook, set map[string]string) (map[string]string, error) {
	out := make(map[string]string, len(rb.Params))
	var problems []string
	names := make([]string, 0, len(set))
	// Deterministic: names are sorted below.
	//workflowcheck:ignore
	for k := range set {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		if _, ok := rb.Param(k); !ok {
			problems = append(problems, fmt.Sprintf("--set %s: runbook %q has no parameter %q (it has: %s)", k, rb.Name, k, paramNames(rb)))
		}
	}
	for _, p := range rb.Params {
		v, ok := set[p.Name]
		switch {
		case ok:
		case p.Default != nil:
			v = *p.Default
		case p.Required:
			problems = append(problems, fmt.Sprintf("parameter %q is required; pass --set %s=VALUE", p.Name, p.Name))
			continue
		default:
			v = ""
		}
		if len(p.Allowed) > 0 && !slices.Contains(p.Allowed, v) {
			problems = append(problems, fmt.Sprintf("parameter %q is %q; allowed values: %s", p.Name, v, strings.Join(p.Allowed, ", ")))
			continue
		}
		out[p.Name] = v
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("%s", strings.Join(problems, "\n"))
	}
	return out, nil
}

func paramNames(rb *Runbook) string {
	if len(rb.Params) == 0 {
		return "none"
	}
	names := make([]string, len(rb.Params))
	for i, p := range rb.Params {
		names[i] = p.Name
	}
	return strings.Join(names, ", ")
}
