package runbooks

import (
	"fmt"
	"math"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

var (
	lockRE   = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]*$`)
	idRE     = regexp.MustCompile(`^` + identRE + `$`)
	envVarRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	// urlPasswordRE finds a URL carrying a password (scheme://user:pass@).
	urlPasswordRE = regexp.MustCompile(`[A-Za-z][A-Za-z0-9+.-]*://[^/\s:@]+:[^/\s@]+@`)
)

// maxLockLen bounds a lock so the workflow ID derived from it stays well
// inside Temporal's limits.
const maxLockLen = 200

// secretWords are substrings of attribute names that hold secrets. Secrets
// belong in the worker's environment or files, never in a runbook, which is
// reviewed, committed and copied into every run's history.
var secretWords = []string{"password", "passwd", "secret", "token", "apikey", "api_key", "private_key"}

// Validate checks what a runbook means: header fields, params, targets,
// steps against the action catalog, the needs graph and every ${{ }}
// reference. It returns every problem found, in file order, and nil when
// there are none. A nil cat skips the checks that need one (actions, inputs
// and outputs). Validate works on a Runbook built in code too; problems then
// carry the Line fields, or no position at all.
func Validate(rb *Runbook, cat Catalog) Problems {
	v := &validator{rb: rb, cat: cat, steps: map[string]stepRef{}, ancestors: map[string]map[string]bool{}}
	v.header()
	v.params()
	v.targets()
	v.collectSteps()
	for _, s := range v.order {
		v.step(s)
	}
	v.cycles()
	v.probs.Sort()
	return v.probs
}

// stepRef is a step with where it sits in the file.
type stepRef struct {
	*Step
	path      string // "steps[2]" or "preflight[0]"
	preflight bool
}

type validator struct {
	rb    *Runbook
	cat   Catalog
	probs Problems
	steps map[string]stepRef // by id; the first of duplicates
	// ancestors caches Ancestors per step id, computed on first use.
	ancestors map[string]map[string]bool
	order     []stepRef // preflight checks, then steps, in file order
}

// report records a problem. step is the id of the step concerned, if any.
func (v *validator) report(at srcPos, step, msg, hint string) {
	v.probs = append(v.probs, Problem{File: v.rb.File, Line: at.Line, Col: at.Col, Step: step, Message: msg, Hint: hint})
}

// at is where the value at path was written; for a path Parse did not see
// (the key is absent, or the runbook was built in code) it is the nearest
// enclosing part that was written, else fallback.
func (v *validator) at(p string, fallback srcPos) srcPos {
	for {
		if np, ok := v.rb.pos[p]; ok {
			return np.Value
		}
		if p == "" {
			return fallback
		}
		p = parentPath(p)
	}
}

// atKey is where the key of the mapping entry at path was written, so a
// problem with the entry as a whole (unknown input, secret attribute)
// points at its name.
func (v *validator) atKey(p string, fallback srcPos) srcPos {
	if np, ok := v.rb.pos[p]; ok && np.Key.Line > 0 {
		return np.Key
	}
	return v.at(p, fallback)
}

// written says whether Parse saw the key at path.
func (v *validator) written(p string) bool {
	_, ok := v.rb.pos[p]
	return ok
}

// parentPath strips the last ".key" or "[i]" from a path.
func parentPath(p string) string {
	if strings.HasSuffix(p, "]") {
		if i := strings.LastIndexByte(p, '['); i >= 0 {
			return p[:i]
		}
	}
	if i := strings.LastIndexByte(p, '.'); i >= 0 {
		return p[:i]
	}
	return ""
}

func linePos(line int) srcPos { return srcPos{Line: line} }

func (v *validator) header() {
	rb := v.rb
	top := v.at("", srcPos{})
	switch {
	case rb.APIVersion == "":
		v.report(top, "", "apiVersion is missing", "add apiVersion: "+APIVersion)
	case rb.APIVersion != APIVersion:
		v.report(v.at("apiVersion", top), "", fmt.Sprintf("apiVersion %q is not supported", rb.APIVersion), "write apiVersion: "+APIVersion)
	}
	if strings.TrimSpace(rb.Name) == "" {
		v.report(v.at("name", top), "", "name is missing", "add name: a short name for the runbook, like site-failover")
	}
	switch {
	case rb.Lock == "":
		v.report(v.at("lock", top), "", "lock is missing", "add lock: NAME naming what the runbook moves, like payments; one run per lock at a time")
	case len(rb.Lock) > maxLockLen:
		v.report(v.at("lock", top), "", fmt.Sprintf("lock is %d characters long; the limit is %d", len(rb.Lock), maxLockLen), "use a shorter lock name")
	case !lockRE.MatchString(rb.Lock):
		v.report(v.at("lock", top), "", fmt.Sprintf("lock %q may only contain a-z, 0-9, '.', '_' and '-', starting with a letter or digit", rb.Lock), fmt.Sprintf("write lock: %s", suggestLock(rb.Lock)))
	}
	if rb.Objectives.RTO < 0 {
		v.report(v.at("objectives.rto", top), "", fmt.Sprintf("objectives.rto %s is negative", rb.Objectives.RTO), "write a duration like 5m")
	}
	if rb.Objectives.RPO < 0 {
		v.report(v.at("objectives.rpo", top), "", fmt.Sprintf("objectives.rpo %s is negative", rb.Objectives.RPO), "write a duration like 30s")
	}
	if len(rb.Steps) == 0 {
		v.report(v.at("steps", top), "", "the runbook has no steps", "add steps: with at least one step")
	}
}

// suggestLock turns text into a valid lock: lower case, other characters
// replaced by '-'.
func suggestLock(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '.', r == '_', r == '-':
			b.WriteRune(r)
		default:
			b.WriteByte('-')
		}
	}
	out := strings.TrimLeft(b.String(), "._-")
	if out == "" {
		return "NAME"
	}
	return out[:min(len(out), maxLockLen)]
}

func (v *validator) params() {
	for _, p := range v.rb.Params {
		base := "params." + p.Name
		at := v.atKey(base, linePos(p.Line))
		if !idRE.MatchString(p.Name) {
			v.report(at, "", fmt.Sprintf("param name %q cannot be referenced as ${{ params.NAME }}", p.Name), "use letters, digits, '_' and '-', starting with a letter or '_'")
		}
		if p.Required && p.Default != nil {
			v.report(v.at(base+".required", at), "", fmt.Sprintf("param %q is required and has a default; the default would never be used", p.Name), "remove required: true to make the default apply, or remove the default")
		}
		if len(p.Allowed) == 0 {
			continue
		}
		allowed := strings.Join(p.Allowed, ", ")
		switch {
		case p.Default != nil && !slices.Contains(p.Allowed, *p.Default):
			v.report(v.at(base+".default", at), "", fmt.Sprintf("param %q has default %q, which is not one of its allowed values (%s)", p.Name, *p.Default, allowed), "set default to one of the allowed values, or add it to allowed")
		case p.Default == nil && !p.Required && !slices.Contains(p.Allowed, ""):
			v.report(at, "", fmt.Sprintf("param %q has allowed values but neither a default nor required: true, so leaving it unset (\"\") would be refused", p.Name), "add a default from allowed, or required: true")
		}
	}
}

func (v *validator) targets() {
	for _, t := range v.rb.Targets {
		base := "targets." + t.Name
		at := v.atKey(base, linePos(t.Line))
		if !idRE.MatchString(t.Name) {
			v.report(at, "", fmt.Sprintf("target name %q cannot be referenced as ${{ targets.NAME.ATTRIBUTE }}", t.Name), "use letters, digits, '_' and '-', starting with a letter or '_'")
		}
		if strings.TrimSpace(t.Kind) == "" {
			v.report(at, "", fmt.Sprintf("target %q has no kind", t.Name), "add kind: what the target is, like postgres or dns")
		}
		if c := t.Credentials; c != nil {
			cat := v.at(base+".credentials", at)
			switch {
			case c.Env != "" && c.File != "":
				v.report(cat, "", fmt.Sprintf("credentials of target %q name both env and file", t.Name), "keep one: env for an environment variable, file for a file on the worker's host")
			case c.Env == "" && c.File == "":
				v.report(cat, "", fmt.Sprintf("credentials of target %q name neither env nor file", t.Name), "write credentials: {env: VARIABLE} or credentials: {file: /path/on/worker}")
			case c.Env != "" && !envVarRE.MatchString(c.Env):
				v.report(v.at(base+".credentials.env", cat), "", fmt.Sprintf("credentials.env %q is not an environment variable name", c.Env), "use letters, digits and '_', like PAYMENTS_DB_DSN")
			case c.File != "" && !path.IsAbs(c.File):
				v.report(v.at(base+".credentials.file", cat), "", fmt.Sprintf("credentials.file %q is a relative path; it would depend on the worker's working directory", c.File), "write an absolute path, like /etc/drctl/"+path.Base(c.File))
			}
		}
		for _, name := range sortedKeys(t.Attributes) {
			ap := base + ".attributes." + name
			aat := v.atKey(ap, at)
			switch {
			case looksSecret(name):
				v.report(aat, "", fmt.Sprintf("attribute %q of target %q looks like a secret; a runbook must never contain secrets", name, t.Name), "remove it and have the worker read the secret from credentials.env or credentials.file")
			case urlPasswordRE.MatchString(t.Attributes[name]):
				v.report(v.at(ap, aat), "", fmt.Sprintf("attribute %q of target %q holds a URL with a password; a runbook must never contain secrets", name, t.Name), "move the URL to credentials.env or credentials.file")
			case name == "kind":
				v.report(aat, "", fmt.Sprintf("attribute \"kind\" of target %q would hide the target's kind in ${{ targets.%s.kind }}", t.Name, t.Name), "rename the attribute")
			case !idRE.MatchString(name):
				v.report(aat, "", fmt.Sprintf("attribute name %q cannot be referenced as ${{ targets.NAME.ATTRIBUTE }}", name), "use letters, digits, '_' and '-', starting with a letter or '_'")
			}
			v.attributeRefs(t.Name, name, t.Attributes[name], v.at(ap, aat))
		}
	}
}

// attributeRefs checks expressions in a target attribute: they are
// resolved when the run starts, so only params and run fields exist then.
func (v *validator) attributeRefs(target, name, value string, at srcPos) {
	refs, err := ParseRefs(value)
	if err != nil {
		v.report(at, "", fmt.Sprintf("attribute %q of target %q: malformed expression %v", name, target, err), "")
		return
	}
	for _, r := range refs {
		switch r.Kind {
		case "params":
			if _, ok := v.rb.Param(r.Name); !ok {
				v.report(at, "", fmt.Sprintf("attribute %q of target %q uses param %q, which is not declared", name, target, r.Name), fmt.Sprintf("declare %s under params:", r.Name))
			}
		case "run":
		default:
			v.report(at, "", fmt.Sprintf("attribute %q of target %q uses %s; target attributes are fixed when the run starts", name, target, r.Raw), "use only ${{ params.NAME }} or ${{ run.FIELD }} in target attributes")
		}
	}
}

func looksSecret(name string) bool {
	lower := strings.ToLower(name)
	for _, w := range secretWords {
		if strings.Contains(lower, w) {
			return true
		}
	}
	return false
}

// collectSteps indexes the steps by id and reports missing, malformed and
// duplicate ids, so later checks can look steps up.
func (v *validator) collectSteps() {
	add := func(list []Step, prefix string, preflight bool) {
		for i := range list {
			s := stepRef{Step: &list[i], path: indexPath(prefix, i), preflight: preflight}
			v.order = append(v.order, s)
			at := v.at(s.path+".id", v.stepPos(s))
			switch {
			case s.ID == "":
				v.report(v.stepPos(s), "", "a step has no id", "add id: NAME, unique in the runbook")
				continue
			case !idRE.MatchString(s.ID):
				v.report(at, s.ID, "the id may only contain letters, digits, '_' and '-', starting with a letter or '_'", fmt.Sprintf("write id: %s", suggestID(s.ID)))
			}
			if first, dup := v.steps[s.ID]; dup {
				v.report(at, s.ID, fmt.Sprintf("duplicate step id (first at line %d)", v.stepPos(first).Line), "give each step and preflight check a unique id")
				continue
			}
			v.steps[s.ID] = s
		}
	}
	add(v.rb.Preflight, "preflight", true)
	add(v.rb.Steps, "steps", false)
}

func suggestID(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '_', r == '-':
			b.WriteRune(r)
		default:
			b.WriteByte('-')
		}
	}
	out := strings.Trim(b.String(), "-")
	if out == "" || !idRE.MatchString(out) {
		out = "step-" + out
	}
	return out
}

func (v *validator) stepPos(s stepRef) srcPos { return v.at(s.path, linePos(s.Line)) }

func (v *validator) step(s stepRef) {
	id, at := s.ID, v.stepPos(s)
	kind := "step"
	if s.preflight {
		kind = "preflight check"
	}
	switch {
	case s.Action != "" && s.Approval != nil:
		v.report(v.at(s.path+".approval", at), id, fmt.Sprintf("a %s has either action or approval, not both", kind), "split it in two: the approval, then the action with needs: [the approval's id]")
	case s.Action == "" && s.Approval == nil:
		v.report(at, id, fmt.Sprintf("a %s needs an action or an approval", kind), "add action: NAME, or approval: {approvers: [...]}")
	}
	if s.preflight {
		v.preflightOnly(s)
	}
	if s.Action != "" {
		v.action(s.Action, s.With, s.path, at, id, "")
	}
	if s.Approval != nil && s.Action == "" {
		v.approval(s)
	}
	switch s.OnFailure {
	case "", OnFailureAbort, OnFailureContinue:
	default:
		v.report(v.at(s.path+".on_failure", at), id, fmt.Sprintf("on_failure %q is not a failure policy", s.OnFailure), fmt.Sprintf("write on_failure: %s (stop and compensate) or on_failure: %s", OnFailureAbort, OnFailureContinue))
	}
	v.retry(s.Retry, s.path+".retry", at, id)
	if s.Timeout > 0 && s.Deadline > 0 && s.Timeout > s.Deadline {
		v.report(v.at(s.path+".timeout", at), id, fmt.Sprintf("timeout %s (one attempt) is longer than deadline %s (all attempts)", s.Timeout, s.Deadline), "make timeout at most the deadline")
	}
	if c := s.Compensate; c != nil && !s.preflight && s.Approval == nil {
		cp := s.path + ".compensate"
		cat := v.at(cp, linePos(c.Line))
		if c.Action == "" {
			v.report(cat, id, "compensate has no action", "add action: the action that undoes this step, like postgres.unfence")
		} else {
			v.action(c.Action, c.With, cp, cat, id, "compensate ")
		}
		v.retry(c.Retry, cp+".retry", cat, id)
	}
	v.needs(s)
	v.references(s, s.With, s.path+".with", false)
	if s.Approval != nil && s.Approval.Message != "" {
		v.references(s, map[string]any{"message": s.Approval.Message}, s.path+".approval", false)
	}
	if s.Compensate != nil {
		v.references(s, s.Compensate.With, s.path+".compensate.with", true)
	}
}

// preflightOnly refuses what a preflight check cannot have: preflight checks
// all run first, in parallel, observe without changing anything, and any
// failure stops the run.
func (v *validator) preflightOnly(s stepRef) {
	at := v.stepPos(s)
	if s.Approval != nil {
		v.report(v.at(s.path+".approval", at), s.ID, "a preflight check cannot be an approval", "move the approval to steps:")
	}
	if len(s.Needs) > 0 || v.written(s.path+".needs") {
		v.report(v.at(s.path+".needs", at), s.ID, "a preflight check cannot have needs: preflight checks all run first, in parallel", "remove needs")
	}
	if s.Compensate != nil {
		v.report(v.at(s.path+".compensate", at), s.ID, "a preflight check cannot have compensate: it must not change anything", "remove compensate, or move the step to steps:")
	}
	if s.OnFailure != "" {
		v.report(v.at(s.path+".on_failure", at), s.ID, "a preflight check cannot set on_failure: a failed check always stops the run", "remove on_failure")
	}
}

func (v *validator) approval(s stepRef) {
	a, ap, at := s.Approval, s.path+".approval", v.stepPos(s)
	if len(a.Approvers) == 0 {
		v.report(v.at(ap+".approvers", v.at(ap, at)), s.ID, "the approval has no approvers", "add approvers: [alice, \"group:dba\"], the people allowed to decide")
	}
	for _, e := range a.Approvers {
		if strings.TrimSpace(e) == "" {
			v.report(v.at(ap+".approvers", at), s.ID, "an approver is empty", "remove the empty entry")
			break
		}
	}
	switch a.OnTimeout {
	case "", OnFailureAbort, OnFailureContinue:
	default:
		v.report(v.at(ap+".on_timeout", at), s.ID, fmt.Sprintf("on_timeout %q is not a timeout policy", a.OnTimeout), fmt.Sprintf("write on_timeout: %s (stop and compensate) or on_timeout: %s", OnFailureAbort, OnFailureContinue))
	}
	// An approval waits for a person; nothing runs, so nothing to feed,
	// retry, time out per attempt or undo.
	misplaced := []struct {
		key, hint string
		set       bool
	}{
		{"with", "remove with; an approval runs no action", s.With != nil},
		{"retry", "remove retry; an approval runs no action", s.Retry != nil},
		{"compensate", "remove compensate; there is nothing to undo after an approval", s.Compensate != nil},
		{"timeout", "move it to approval.timeout", s.Timeout != 0},
		{"deadline", "move it to approval.timeout", s.Deadline != 0},
		{"heartbeat", "remove heartbeat; an approval runs no action", s.Heartbeat != 0},
	}
	for _, m := range misplaced {
		if m.set || v.written(s.path+"."+m.key) {
			v.report(v.atKey(s.path+"."+m.key, at), s.ID, fmt.Sprintf("an approval step cannot have %s", m.key), m.hint)
		}
	}
}

// action checks an action name and its inputs against the catalog. what
// prefixes messages ("compensate ") so they say which action is meant.
func (v *validator) action(name string, with map[string]any, base string, at srcPos, step, what string) {
	if v.cat == nil {
		return
	}
	spec, ok := v.cat.Lookup(name)
	if !ok {
		v.report(v.at(base+".action", at), step, fmt.Sprintf("unknown %saction %q", what, name), suggest(name, v.cat.Names(), "actions"))
		return
	}
	names := make([]string, len(spec.Inputs))
	for i, in := range spec.Inputs {
		names[i] = in.Name
	}
	for _, key := range sortedKeys(with) {
		p := base + ".with." + key
		in, ok := spec.Input(key)
		if !ok {
			v.report(v.atKey(p, at), step, fmt.Sprintf("unknown input %q for %saction %q", key, what, name), suggest(key, names, "inputs"))
			continue
		}
		if with[key] == nil {
			v.report(v.at(p, at), step, fmt.Sprintf("input %q has no value", key), "write a value, or remove the key")
			continue
		}
		if msg, hint := checkLiteral(in.Type, with[key]); msg != "" {
			v.report(v.at(p, at), step, fmt.Sprintf("input %q %s", key, msg), hint)
			continue
		}
		if s, ok := with[key].(string); ok && in.Type == TypeTarget && !strings.Contains(s, "${{") {
			if _, declared := v.target(s); !declared {
				v.report(v.at(p, at), step, fmt.Sprintf("input %q names target %q, which is not declared", key, s), v.declareHint(s, v.targetNames(), "targets"))
			}
		}
	}
	for _, in := range spec.Inputs {
		if _, set := with[in.Name]; in.Required && !set {
			where := v.at(base+".action", at)
			if v.written(base + ".with") {
				where = v.atKey(base+".with", at)
			}
			v.report(where, step, fmt.Sprintf("missing required input %q for %saction %q", in.Name, what, name), fmt.Sprintf("add %s: VALUE under with:", in.Name))
		}
	}
}

// checkLiteral says what is wrong with a literal input value for its type,
// or returns "" when the value fits. A string that is exactly one
// expression is checked at run time, once its value is known; text with an
// embedded expression is accepted wherever text could convert.
func checkLiteral(t InputType, val any) (msg, hint string) {
	if s, ok := val.(string); ok && strings.Contains(s, "${{") {
		if isSingleExpr(s) || (t != TypeList && t != TypeMap) {
			return "", ""
		}
	}
	switch t {
	case TypeString, TypeTarget:
		switch x := val.(type) {
		case string:
		case int, float64, bool:
			return fmt.Sprintf("must be text, not %s", describe(val)), fmt.Sprintf("quote it: \"%v\"", x)
		default:
			return fmt.Sprintf("must be text, not %s", describe(val)), "write one value"
		}
	case TypeInt:
		switch x := val.(type) {
		case int:
		case string:
			if _, err := strconv.Atoi(strings.TrimSpace(x)); err != nil {
				return fmt.Sprintf("must be a whole number, not %s", describe(val)), "write a whole number, like 3"
			}
		default:
			return fmt.Sprintf("must be a whole number, not %s", describe(val)), "write a whole number, like 3"
		}
	case TypeFloat:
		switch x := val.(type) {
		case int, float64:
		case string:
			if f, err := strconv.ParseFloat(strings.TrimSpace(x), 64); err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
				return fmt.Sprintf("must be a number, not %s", describe(val)), "write a number, like 0.5"
			}
		default:
			return fmt.Sprintf("must be a number, not %s", describe(val)), "write a number, like 0.5"
		}
	case TypeBool:
		switch x := val.(type) {
		case bool:
		case string:
			if _, err := strconv.ParseBool(strings.TrimSpace(x)); err != nil {
				return fmt.Sprintf("must be true or false, not %s", describe(val)), "write true or false"
			}
		default:
			return fmt.Sprintf("must be true or false, not %s", describe(val)), "write true or false"
		}
	case TypeDuration:
		switch x := val.(type) {
		case string:
			if _, err := ParseDuration(strings.TrimSpace(x)); err != nil {
				return fmt.Sprintf("must be a duration: %v", err), ""
			}
		case int, float64:
			return fmt.Sprintf("must be a duration with a unit, not %s", describe(val)), fmt.Sprintf("write \"%vs\" or \"%vm\"", x, x)
		default:
			return fmt.Sprintf("must be a duration, not %s", describe(val)), "write a duration, like 30s or 5m"
		}
	case TypeList:
		list, ok := val.([]any)
		if !ok {
			hint := "write a list: [a, b]"
			if s, isText := val.(string); isText {
				hint = fmt.Sprintf("write a list: [%s]", s)
			}
			return fmt.Sprintf("must be a list, not %s", describe(val)), hint
		}
		for i, e := range list {
			if _, ok := e.(string); !ok {
				return fmt.Sprintf("must be a list of text, but entry %d is %s", i, describe(e)), "quote each entry"
			}
		}
	case TypeMap:
		m, ok := val.(map[string]any)
		if !ok {
			return fmt.Sprintf("must be a mapping, not %s", describe(val)), "write a mapping: {key: value}"
		}
		for _, k := range sortedKeys(m) {
			if _, ok := m[k].(string); !ok {
				return fmt.Sprintf("must be a mapping of text, but %q is %s", k, describe(m[k])), "quote each value"
			}
		}
	}
	return "", ""
}

// isSingleExpr says whether s is exactly one ${{ }} expression, which keeps
// the referenced value's type when resolved.
func isSingleExpr(s string) bool {
	refs, err := ParseRefs(s)
	return err == nil && len(refs) == 1 && strings.TrimSpace(s) == refs[0].Raw
}

// describe names a decoded value for messages.
func describe(val any) string {
	switch x := val.(type) {
	case nil:
		return "empty"
	case string:
		return fmt.Sprintf("the text %q", x)
	case bool:
		return fmt.Sprintf("%t", x)
	case int, float64:
		return fmt.Sprintf("the number %v", x)
	case []any:
		return "a list"
	case map[string]any:
		return "a mapping"
	}
	return fmt.Sprintf("%T", val)
}

func (v *validator) retry(r *RetryPolicy, base string, at srcPos, step string) {
	if r == nil {
		return
	}
	if r.MaxAttempts < 0 || r.MaxAttempts > MaxAttempts {
		v.report(v.at(base+".max_attempts", at), step, fmt.Sprintf("retry.max_attempts is %d", r.MaxAttempts), fmt.Sprintf("write 0 for unlimited attempts within the step's deadline, or 1 to %d", MaxAttempts))
	}
	if r.BackoffCoefficient != 0 && r.BackoffCoefficient < 1 {
		v.report(v.at(base+".backoff", at), step, fmt.Sprintf("retry.backoff %v would shrink the interval between attempts", r.BackoffCoefficient), "write a backoff of 1 (constant) or more, like 2")
	}
	if r.BackoffCoefficient > MaxBackoff {
		v.report(v.at(base+".backoff", at), step, fmt.Sprintf("retry.backoff %v grows the interval too fast", r.BackoffCoefficient), fmt.Sprintf("write a backoff from 1 to %v, like 2", MaxBackoff))
	}
	if r.InitialInterval < 0 || r.MaxInterval < 0 {
		v.report(v.at(base, at), step, "retry intervals must not be negative", "write durations like 1s")
	}
	if r.MaxInterval > 0 && r.MaxInterval < r.InitialInterval {
		v.report(v.at(base+".max_interval", at), step, fmt.Sprintf("retry.max_interval %s is shorter than initial_interval %s", r.MaxInterval, r.InitialInterval), fmt.Sprintf("make max_interval at least %s", r.InitialInterval))
	}
}

func (v *validator) needs(s stepRef) {
	seen := map[string]bool{}
	at := v.stepPos(s)
	for i, n := range s.Needs {
		p := v.at(indexPath(s.path+".needs", i), at)
		target, exists := v.steps[n]
		switch {
		case seen[n]:
			v.report(p, s.ID, fmt.Sprintf("needs %q twice", n), "remove the repeated entry")
		case n == s.ID:
			v.report(p, s.ID, "the step needs itself", fmt.Sprintf("remove %s from needs", n))
		case !exists:
			v.report(p, s.ID, fmt.Sprintf("needs %q, which is not a step", n), v.closestStep(n, "remove it, or add a step with that id"))
		case target.preflight && !s.preflight:
			v.report(p, s.ID, fmt.Sprintf("needs %q, which is a preflight check", n), "remove it: preflight checks always finish before any step starts")
		}
		seen[n] = true
	}
}

// closestStep is the hint for a step id that does not exist.
func (v *validator) closestStep(id, otherwise string) string {
	ids := make([]string, 0, len(v.order))
	for _, s := range v.order {
		ids = append(ids, s.ID)
	}
	if c, ok := closest(id, ids); ok {
		return fmt.Sprintf("did you mean %q?", c)
	}
	return otherwise
}

func (v *validator) target(name string) (Target, bool) {
	for _, t := range v.rb.Targets {
		if t.Name == name {
			return t, true
		}
	}
	return Target{}, false
}

func (v *validator) targetNames() []string {
	names := make([]string, len(v.rb.Targets))
	for i, t := range v.rb.Targets {
		names[i] = t.Name
	}
	return names
}

// declareHint is the hint for an undeclared param or target: the closest
// declared name if there is one, else where to declare it.
func (v *validator) declareHint(name string, declared []string, section string) string {
	if c, ok := closest(name, declared); ok {
		return fmt.Sprintf("did you mean %q? otherwise declare %s under %s:", c, name, section)
	}
	return fmt.Sprintf("declare %s under %s:", name, section)
}

// references checks every ${{ }} expression in a step's inputs (or its
// compensation's, when compensating is set: a compensation runs after its
// step, so it may use that step's own outputs).
func (v *validator) references(s stepRef, with map[string]any, base string, compensating bool) {
	if with == nil {
		return
	}
	at := v.stepPos(s)
	WalkStrings(with, func(p, str string) {
		where := v.at(joinPath(base, p), at)
		if urlPasswordRE.MatchString(str) {
			v.report(where, s.ID, "the value holds a URL with a password; a runbook must never contain secrets", "name the credentials in a target's credentials.env or credentials.file instead")
		}
		refs, err := ParseRefs(str)
		if err != nil {
			v.report(where, s.ID, "malformed expression "+err.Error(), "")
			return
		}
		for _, r := range refs {
			v.reference(r, s, compensating, where)
		}
	})
}

func (v *validator) reference(r Ref, s stepRef, compensating bool, where srcPos) {
	switch r.Kind {
	case "params":
		if _, ok := v.rb.Param(r.Name); !ok {
			names := make([]string, len(v.rb.Params))
			for i, p := range v.rb.Params {
				names[i] = p.Name
			}
			v.report(where, s.ID, fmt.Sprintf("%s uses param %q, which is not declared", r.Raw, r.Name), v.declareHint(r.Name, names, "params"))
		}
	case "targets":
		t, ok := v.target(r.Name)
		if !ok {
			v.report(where, s.ID, fmt.Sprintf("%s uses target %q, which is not declared", r.Raw, r.Name), v.declareHint(r.Name, v.targetNames(), "targets"))
			return
		}
		if _, has := t.Attributes[r.Key]; r.Key != "kind" && !has {
			known := append([]string{"kind"}, sortedKeys(t.Attributes)...)
			hint := suggest(r.Key, known, "attributes")
			v.report(where, s.ID, fmt.Sprintf("%s uses attribute %q, which target %q does not have", r.Raw, r.Key, r.Name), hint)
		}
	case "steps":
		v.stepReference(r, s, compensating, where)
	}
}

func (v *validator) stepReference(r Ref, s stepRef, compensating bool, where srcPos) {
	source, exists := v.steps[r.Name]
	if v.ancestors[s.ID] == nil {
		v.ancestors[s.ID] = Ancestors(v.rb, s.ID)
	}
	ancestors := v.ancestors[s.ID]
	switch {
	case !exists:
		v.report(where, s.ID, fmt.Sprintf("%s uses step %q, which does not exist", r.Raw, r.Name), v.closestStep(r.Name, "use the id of an earlier step"))
		return
	case r.Name == s.ID && !compensating:
		v.report(where, s.ID, fmt.Sprintf("%s uses the step's own output, which does not exist yet", r.Raw), "use it in a later step, or in this step's compensate")
		return
	case r.Name == s.ID, ancestors[r.Name]:
		// Finished before this runs: an ancestor, or the compensated step.
	case source.preflight && !s.preflight:
		// Every preflight check finishes before the first step starts.
	case s.preflight:
		v.report(where, s.ID, fmt.Sprintf("%s uses step %q, but a preflight check runs before every step and in parallel with the other checks", r.Raw, r.Name), "remove the reference; preflight checks can use params, targets and run")
		return
	default:
		v.report(where, s.ID, fmt.Sprintf("%s uses step %q, which does not run before this step", r.Raw, r.Name), fmt.Sprintf("add %s to needs", r.Name))
		return
	}
	if v.cat == nil || source.Action == "" {
		return
	}
	spec, ok := v.cat.Lookup(source.Action)
	if !ok || len(spec.Outputs) == 0 || slices.Contains(spec.Outputs, r.Key) {
		return
	}
	hint := suggest(r.Key, spec.Outputs, "outputs")
	v.report(where, s.ID, fmt.Sprintf("%s uses output %q, which action %q of step %q does not produce", r.Raw, r.Key, source.Action, r.Name), hint)
}

// cycles reports each strongly connected group of steps once, as one cycle
// through it starting at the group's first step in the file. Self-needs are
// reported by needs.
func (v *validator) cycles() {
	for _, group := range v.stronglyConnected() {
		if len(group) < 2 {
			continue
		}
		cycle := v.cycleThrough(group)
		start := v.steps[cycle[0]]
		at := v.stepPos(start)
		if i := slices.Index(start.Needs, cycle[1]); i >= 0 {
			at = v.at(indexPath(start.path+".needs", i), at)
		}
		v.report(at, start.ID, "needs form a cycle: "+strings.Join(cycle, " -> "), "a step cannot wait for itself; remove one of these needs")
	}
}

// stronglyConnected returns the strongly connected components of the needs
// graph (Tarjan), each listed in file order, the groups in order of their
// first step.
func (v *validator) stronglyConnected() [][]string {
	index := map[string]int{}
	low := map[string]int{}
	onStack := map[string]bool{}
	var stack []string
	var groups [][]string
	var visit func(id string)
	visit = func(id string) {
		index[id] = len(index)
		low[id] = index[id]
		stack = append(stack, id)
		onStack[id] = true
		for _, n := range v.steps[id].Needs {
			if _, ok := v.steps[n]; !ok {
				continue
			}
			if _, seen := index[n]; !seen {
				visit(n)
				low[id] = min(low[id], low[n])
			} else if onStack[n] {
				low[id] = min(low[id], index[n])
			}
		}
		if low[id] != index[id] {
			return
		}
		var group []string
		for {
			top := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			onStack[top] = false
			group = append(group, top)
			if top == id {
				break
			}
		}
		groups = append(groups, group)
	}
	for _, s := range v.order {
		if _, ok := v.steps[s.ID]; ok && v.steps[s.ID].Step == s.Step {
			if _, seen := index[s.ID]; !seen {
				visit(s.ID)
			}
		}
	}
	rank := map[string]int{}
	for i, s := range v.order {
		if _, ok := rank[s.ID]; !ok {
			rank[s.ID] = i
		}
	}
	for _, g := range groups {
		slices.SortFunc(g, func(a, b string) int { return rank[a] - rank[b] })
	}
	slices.SortFunc(groups, func(a, b []string) int { return rank[a[0]] - rank[b[0]] })
	return groups
}

// cycleThrough finds a cycle inside a strongly connected group, from its
// first step back to it, following needs in the order they are written.
func (v *validator) cycleThrough(group []string) []string {
	in := map[string]bool{}
	for _, id := range group {
		in[id] = true
	}
	start := group[0]
	visited := map[string]bool{}
	var path []string
	var walk func(id string) bool
	walk = func(id string) bool {
		visited[id] = true
		path = append(path, id)
		for _, n := range v.steps[id].Needs {
			if n == start && len(path) > 1 {
				path = append(path, start)
				return true
			}
			if in[n] && !visited[n] && walk(n) {
				return true
			}
		}
		path = path[:len(path)-1]
		return false
	}
	walk(start)
	return path
}
