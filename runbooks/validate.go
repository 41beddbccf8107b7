package runbooks

import (
	"fmt"
	"maps"
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
)

// maxLockLen bounds a lock so the workflow ID derived from it stays well
// inside Temporal's limits.
const maxLockLen = 200

// Validate checks what a runbook means: header fields, params, targets,
// steps against the action catalog, the needs graph and every ${{ }}
// reference. It returns every problem found, in file order, and nil when
// there are none. A nil cat skips the checks that need one (actions, inputs
// and outputs, target kinds). Validate works on a Runbook built in code
// too; problems then carry the Line fields, or no position at all.
func Validate(rb *Runbook, cat Catalog) Problems {
	v := &validator{rb: rb, cat: cat, broken: rb.broken, steps: map[string]stepRef{}, ancestors: map[string]map[string]bool{}}
	v.kinds = targetKinds(cat)
	v.header()
	v.params()
	v.targets()
	v.collectSteps()
	v.idsKnown = v.stepIDsRead()
	for _, s := range v.order {
		v.step(s)
	}
	v.cycles()
	v.probs.Sort()
	return v.probs
}

// targetKinds lists, sorted, every target kind an input of an action in
// cat accepts.
func targetKinds(cat Catalog) []string {
	if cat == nil {
		return nil
	}
	var kinds []string
	for _, name := range cat.Names() {
		spec, _ := cat.Lookup(name)
		for _, in := range spec.Inputs {
			for _, k := range in.Kinds {
				if !slices.Contains(kinds, k) {
					kinds = append(kinds, k)
				}
			}
		}
	}
	slices.Sort(kinds)
	return kinds
}

// stepIDsRead says whether every step's id was read, so that a step that
// is not found does not exist in the file.
func (v *validator) stepIDsRead() bool {
	if v.broken.unread("steps") || v.broken.unread("preflight") {
		return false
	}
	for _, s := range v.order {
		if v.broken.unread(s.path + ".id") {
			return false
		}
	}
	return true
}

// ancestryRead says whether the steps that run before s are known: the
// needs of s and of every step before it were read, and each names a step
// that exists or, when not, could not be one whose id was not read.
func (v *validator) ancestryRead(s stepRef) bool {
	check := func(r stepRef) bool {
		if v.broken.damaged(r.path + ".needs") {
			return false
		}
		for _, n := range r.Needs {
			if _, ok := v.steps[n]; !ok && !v.idsKnown {
				return false
			}
		}
		return true
	}
	if !check(s) {
		return false
	}
	for _, id := range slices.Sorted(maps.Keys(v.ancestorsOf(s.ID))) {
		if !check(v.steps[id]) {
			return false
		}
	}
	return true
}

// ancestorsOf is Ancestors, computed once per step.
func (v *validator) ancestorsOf(id string) map[string]bool {
	if v.ancestors[id] == nil {
		v.ancestors[id] = Ancestors(v.rb, id)
	}
	return v.ancestors[id]
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
	// broken are the parts of the file Parse could not read; checks that
	// depend on them are skipped (see Load).
	broken brokenParts
	// idsKnown: every step's id was read.
	idsKnown bool
	// kinds are the target kinds some action in the catalog takes.
	kinds []string
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
	unread := v.broken.unread
	switch {
	case unread("apiVersion"):
	case rb.APIVersion == "":
		v.report(top, "", "apiVersion is missing", "add apiVersion: "+APIVersion)
	case rb.APIVersion != APIVersion:
		v.report(v.at("apiVersion", top), "", fmt.Sprintf("apiVersion %q is not supported", rb.APIVersion), "write apiVersion: "+APIVersion)
	}
	switch {
	case unread("name"):
	case strings.TrimSpace(rb.Name) == "":
		v.report(v.at("name", top), "", "name is missing", "add name: a short name for the runbook, like site-failover")
	case CheckName(rb.Name) != nil:
		v.report(v.at("name", top), "", CheckName(rb.Name).Error(), fmt.Sprintf("write name: %s", suggestLock(rb.Name)))
	}
	v.secretText(v.at("description", top), "", "the description", rb.Description)
	switch {
	case unread("lock"):
	case rb.Lock == "":
		v.report(v.at("lock", top), "", "lock is missing", "add lock: NAME naming what the runbook moves, like payments; one run per lock at a time")
	case len(rb.Lock) > maxLockLen:
		v.report(v.at("lock", top), "", fmt.Sprintf("lock is %d characters long; the limit is %d", len(rb.Lock), maxLockLen), "use a shorter lock name")
	case !lockRE.MatchString(rb.Lock):
		v.report(v.at("lock", top), "", fmt.Sprintf("lock %q may only contain a-z, 0-9, '.', '_' and '-', starting with a letter or digit", rb.Lock), fmt.Sprintf("write lock: %s", suggestLock(rb.Lock)))
	case strings.HasPrefix(rb.Lock, "readiness-") || strings.HasPrefix(rb.Lock, "drill-"):
		// drctl-readiness-NAME is a runbook's readiness record and
		// drctl-drill-NAME-<time> a drill schedule's firing.
		v.report(v.at("lock", top), "", fmt.Sprintf("lock %q starts with a prefix drctl keeps for its own workflows (readiness-, drill-)", rb.Lock), fmt.Sprintf("write lock: %s", strings.TrimPrefix(strings.TrimPrefix(rb.Lock, "readiness-"), "drill-")))
	}
	if rb.Objectives.RTO < 0 {
		v.report(v.at("objectives.rto", top), "", fmt.Sprintf("objectives.rto %s is negative", rb.Objectives.RTO), "write a duration like 5m")
	}
	if rb.Objectives.RPO < 0 {
		v.report(v.at("objectives.rpo", top), "", fmt.Sprintf("objectives.rpo %s is negative", rb.Objectives.RPO), "write a duration like 30s")
	}
	if len(rb.Steps) == 0 && !v.broken.damaged("steps") {
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
		if looksSecret(p.Name) {
			v.report(at, "", fmt.Sprintf("param %q looks like a secret; its value would be passed with --set and recorded in every run's history", p.Name), secretHint)
		}
		what := fmt.Sprintf("param %q", p.Name)
		v.secretText(v.at(base+".description", at), "", what, p.Description)
		if p.Default != nil {
			v.secretText(v.at(base+".default", at), "", what, *p.Default)
		}
		for i, a := range p.Allowed {
			v.secretText(v.at(indexPath(base+".allowed", i), at), "", what, a)
		}
		if v.broken.damaged(base) {
			continue // required, default and allowed are checked together
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
		switch {
		case v.broken.unread(base + ".kind"):
		case strings.TrimSpace(t.Kind) == "":
			v.report(at, "", fmt.Sprintf("target %q has no kind", t.Name), "add kind: what the target is, like postgres or dns")
		case len(v.kinds) > 0 && !slices.Contains(v.kinds, t.Kind):
			v.report(v.at(base+".kind", at), "", fmt.Sprintf("target %q has kind %q, which no action takes", t.Name, t.Kind), suggest(t.Kind, v.kinds, "kinds"))
		}
		if t.Site != "" && CheckSite(t.Site) != nil {
			v.report(v.at(base+".site", at), "", fmt.Sprintf("site %q of target %q is not a site name", t.Site, t.Name), "use a-z, 0-9, '.', '_' and '-', starting with a letter or digit, like east or eu-west-1")
		}
		if c := t.Credentials; c != nil && !v.broken.damaged(base+".credentials") {
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
				v.report(aat, "", fmt.Sprintf("attribute %q of target %q looks like a secret; a runbook must never contain secrets", name, t.Name), "remove it and have the worker read the secret from the target's credentials.env or credentials.file")
			case secretInText(t.Attributes[name]) != "":
				v.report(v.at(ap, aat), "", fmt.Sprintf("attribute %q of target %q holds %s; a runbook must never contain secrets", name, t.Name, secretInText(t.Attributes[name])), "move the secret to the target's credentials.env or credentials.file")
			case name == "kind":
				v.report(aat, "", fmt.Sprintf("attribute \"kind\" of target %q would hide the target's kind in ${{ targets.%s.kind }}", t.Name, t.Name), "rename the attribute")
			case name == "site":
				v.report(aat, "", fmt.Sprintf("site of target %q is written as an attribute; drctl places actions by a target's own site", t.Name), fmt.Sprintf("write site: %s beside kind; ${{ targets.%s.site }} still reads it", t.Attributes[name], t.Name))
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
				if !v.broken.unread(s.path + ".id") {
					v.report(v.stepPos(s), "", "a step has no id", "add id: NAME, unique in the runbook")
				}
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
	if v.broken.unread(s.path) {
		return // not a mapping: Parse said so, and there is nothing to check
	}
	id, at := s.ID, v.stepPos(s)
	unread := func(key string) bool { return v.broken.unread(s.path + "." + key) }
	kind := "step"
	if s.preflight {
		kind = "preflight check"
	}
	switch {
	case s.Action != "" && s.Approval != nil:
		v.report(v.at(s.path+".approval", at), id, fmt.Sprintf("a %s has either action or approval, not both", kind), "split it in two: the approval, then the action with needs: [the approval's id]")
	case s.Runbook != "" && (s.Action != "" || s.Approval != nil):
		v.report(v.at(s.path+".runbook", at), id, fmt.Sprintf("a %s runs a runbook, an action or an approval, one of them", kind), "split it in two, joined by needs:")
	case s.Action == "" && s.Approval == nil && s.Runbook == "" && !unread("action") && !unread("approval") && !unread("runbook"):
		v.report(at, id, fmt.Sprintf("a %s needs an action, an approval or a runbook", kind), "add action: NAME, approval: {approvers: [...]} or runbook: FILE")
	}
	if s.preflight && s.Runbook != "" {
		v.report(v.at(s.path+".runbook", at), id, "a preflight check cannot run a runbook: it must not change anything", "move the step to steps:")
	} else if s.Runbook != "" || s.ForEach != nil || s.As != "" || s.MaxParallel != 0 {
		v.fanOut(s, at)
	}
	v.secretText(v.at(s.path+".description", at), id, "the description", s.Description)
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
	v.runOn(s, at)
	v.retry(s.Retry, s.path+".retry", at, id)
	if s.Timeout > 0 && s.Deadline > 0 && s.Timeout > s.Deadline {
		v.report(v.at(s.path+".timeout", at), id, fmt.Sprintf("timeout %s (one attempt) is longer than deadline %s (all attempts)", s.Timeout, s.Deadline), "make timeout at most the deadline")
	}
	if c := s.Compensate; c != nil && !s.preflight && s.Approval == nil && !unread("compensate") {
		cp := s.path + ".compensate"
		cat := v.at(cp, linePos(c.Line))
		switch {
		case unread("compensate.action"):
		case c.Action == "":
			v.report(cat, id, "compensate has no action", "add action: the action that undoes this step, like postgres.unfence")
		default:
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
	v.approvalOnlyKeys(s)
	a, ap, at := s.Approval, s.path+".approval", v.stepPos(s)
	if v.broken.unread(ap) {
		return
	}
	// Entries Parse could not read are left out of a.Approvers, so the
	// positions of the others are known only when there were none.
	approversRead := !v.broken.damaged(ap + ".approvers")
	if len(a.Approvers) == 0 && approversRead {
		v.report(v.at(ap+".approvers", v.at(ap, at)), s.ID, "the approval has no approvers", "add approvers: [alice, \"group:dba\"], the people allowed to decide")
	}
	for i, e := range a.Approvers {
		where := v.at(ap+".approvers", at)
		if approversRead {
			where = v.at(indexPath(ap+".approvers", i), at)
		}
		if msg, hint := approverProblem(e); msg != "" {
			v.report(where, s.ID, msg, hint)
		}
	}
	for i, e := range a.DrillApprovers {
		if err := CheckIdentity(e); err != nil {
			v.report(v.at(indexPath(ap+".drill_approvers", i), at), s.ID, "drill_approvers: "+err.Error(), "name one identity (the automatic approver a drill schedule names), not a group or *")
		}
	}
	if a.MinApprovals < 0 || a.MinApprovals > MaxApprovals {
		v.report(v.at(ap+".min_approvals", at), s.ID, fmt.Sprintf("min_approvals is %d", a.MinApprovals), fmt.Sprintf("write a number of distinct approvers from 1 to %d", MaxApprovals))
	} else if open := slices.ContainsFunc(a.Approvers, func(e string) bool { return e == "*" || strings.HasPrefix(e, "group:") }); !open && a.MinApprovals > len(a.Approvers) && approversRead {
		v.report(v.at(ap+".min_approvals", at), s.ID, fmt.Sprintf("min_approvals %d needs more approvers than the %d listed", a.MinApprovals, len(a.Approvers)), fmt.Sprintf("list at least %d approvers (the starter never counts), or lower min_approvals", a.MinApprovals))
	}
	switch a.OnTimeout {
	case "", OnFailureAbort, OnFailureContinue:
	default:
		v.report(v.at(ap+".on_timeout", at), s.ID, fmt.Sprintf("on_timeout %q is not a timeout policy", a.OnTimeout), fmt.Sprintf("write on_timeout: %s (stop and compensate) or on_timeout: %s", OnFailureAbort, OnFailureContinue))
	}
}

// approverProblem says what is wrong with an entry of approvers and what to
// write instead, or "" when it is a person, a group or "*".
func approverProblem(e string) (msg, hint string) {
	err := CheckApprover(e)
	switch {
	case err == nil:
		return "", ""
	case strings.Contains(e, "${{"):
		return fmt.Sprintf("approver %q is never evaluated: the text itself would be the approver, and no one is called that", e),
			"write the people or groups themselves: approvers: [alice, \"group:dba\"]; \"*\" lets anyone but the starter approve"
	case e == GroupPrefix:
		return "approver \"group:\" names no group", "write \"group:NAME\", like \"group:dba\""
	case strings.HasPrefix(e, GroupPrefix):
		return fmt.Sprintf("approver %q: %v", e, err), "write \"group:NAME\", like \"group:dba\""
	case strings.TrimSpace(e) == "":
		return "an approver is empty", "remove the empty entry"
	}
	return fmt.Sprintf("approver %q: %v", e, err), "write a person's identity (alice, alice@example.com), \"group:NAME\", or \"*\" for anyone"
}

// approvalOnlyKeys refuses what an approval step cannot have: it waits for
// a person and runs nothing, so there is nothing to feed, retry, time out
// per attempt or undo.
func (v *validator) approvalOnlyKeys(s stepRef) {
	at := v.stepPos(s)
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
		v.secretKeys(spec, key, with[key], p, at, step)
		if v.broken.damaged(p) {
			continue // Parse reported what it could not read
		}
		in, ok := spec.Input(key)
		switch {
		case !ok && looksSecret(key):
			v.report(v.atKey(p, at), step, fmt.Sprintf("unknown input %q for %saction %q, and it looks like a secret, which a runbook must never contain", key, what, name), credentialHint(spec))
			continue
		case !ok:
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
			v.targetInput(spec, in, s, v.at(p, at), step, what)
		}
	}
	if v.broken.namesUnread(base + ".with") {
		return // an input that seems missing may be among those not read
	}
	missingAt := v.at(base+".action", at)
	if v.written(base + ".with") {
		missingAt = v.atKey(base+".with", at)
	}
	for _, in := range spec.Inputs {
		if _, set := with[in.Name]; in.Required && !set {
			v.report(missingAt, step, fmt.Sprintf("missing required input %q for %saction %q", in.Name, what, name), fmt.Sprintf("add %s: %s under with:", in.Name, sampleValue(in.Type)))
		}
	}
	for _, g := range spec.Groups {
		v.inputGroup(spec, g, with, base, missingAt, step, what)
	}
}

// targetInput checks a target named literally in an input: it must be
// declared, and of a kind the input accepts.
func (v *validator) targetInput(spec ActionSpec, in InputSpec, name string, at srcPos, step, what string) {
	if v.broken.namesUnread("targets") {
		return
	}
	t, declared := v.target(name)
	if !declared {
		v.report(at, step, fmt.Sprintf("input %q names target %q, which is not declared", in.Name, name), v.declareHint(name, v.targetNames(), "targets"))
		return
	}
	if len(in.Kinds) == 0 || t.Kind == "" || slices.Contains(in.Kinds, t.Kind) || v.broken.unread("targets."+t.Name+".kind") {
		return
	}
	kinds := orList(in.Kinds)
	var fitting []string
	for _, o := range v.rb.Targets {
		if slices.Contains(in.Kinds, o.Kind) {
			fitting = append(fitting, o.Name)
		}
	}
	hint := fmt.Sprintf("declare a target of kind %s under targets: and name it here", kinds)
	if len(fitting) > 0 {
		hint = fmt.Sprintf("name a target of kind %s: %s", kinds, strings.Join(fitting, ", "))
	}
	v.report(at, step, fmt.Sprintf("input %q names target %q, which is of kind %q; %saction %q takes a target of kind %s there", in.Name, name, t.Kind, what, spec.Name, kinds), hint)
}

// inputGroup checks one rule over several inputs (InputGroup).
func (v *validator) inputGroup(spec ActionSpec, g InputGroup, with map[string]any, base string, missingAt srcPos, step, what string) {
	var given []string
	for _, name := range g.Inputs {
		if val, ok := with[name]; ok && !emptyLiteral(val) {
			given = append(given, name)
		}
	}
	switch {
	case g.Rule == AtLeastOne && len(given) == 0:
		var adds []string
		for _, name := range g.Inputs {
			in, _ := spec.Input(name)
			adds = append(adds, fmt.Sprintf("%s: %s", name, sampleValue(in.Type)))
		}
		v.report(missingAt, step, fmt.Sprintf("%saction %q needs %s", what, spec.Name, orList(g.Inputs)), fmt.Sprintf("add %s under with:", orList(adds)))
	case g.Rule == AtMostOne && len(given) > 1:
		p := base + ".with." + given[1]
		v.report(v.atKey(p, missingAt), step, fmt.Sprintf("%saction %q takes %s, not %s together", what, spec.Name, orList(g.Inputs), andList(given)), fmt.Sprintf("keep one of %s", andList(given)))
	case g.Rule == AllOrNone && len(given) > 0 && len(given) < len(g.Inputs):
		var missing []string
		for _, name := range g.Inputs {
			if !slices.Contains(given, name) {
				missing = append(missing, name)
			}
		}
		var adds []string
		for _, name := range missing {
			in, _ := spec.Input(name)
			adds = append(adds, fmt.Sprintf("%s: %s", name, sampleValue(in.Type)))
		}
		p := base + ".with." + given[0]
		v.report(v.atKey(p, missingAt), step, fmt.Sprintf("input %q goes with %s for %saction %q", given[0], andList(missing), what, spec.Name), fmt.Sprintf("add %s under with:, or remove %s", andList(adds), andList(given)))
	}
}

// emptyLiteral says whether an input's value is written but empty: empty
// text or an empty list, which give an action nothing.
func emptyLiteral(val any) bool {
	switch x := val.(type) {
	case string:
		return strings.TrimSpace(x) == ""
	case []any:
		return len(x) == 0
	}
	return false
}

// sampleValue is how a hint writes a value of type t.
func sampleValue(t InputType) string {
	switch t {
	case TypeList:
		return "[A, B]"
	case TypeMap:
		return "{KEY: VALUE}"
	}
	return "VALUE"
}

// orList joins names for messages: "a", "a or b", "a, b or c".
func orList(names []string) string { return joinWords(names, "or") }

// andList joins names for messages: "a", "a and b", "a, b and c".
func andList(names []string) string { return joinWords(names, "and") }

func joinWords(names []string, word string) string {
	if len(names) <= 1 {
		return strings.Join(names, "")
	}
	return strings.Join(names[:len(names)-1], ", ") + " " + word + " " + names[len(names)-1]
}

// secretKeys refuses keys inside an input's value that name a secret: a
// header such as Authorization, Cookie or X-Api-Key, or a field of a JSON
// body such as password. Whatever a runbook writes reaches the run's
// history; a secret must come from a target's credentials instead.
func (v *validator) secretKeys(spec ActionSpec, input string, val any, path string, at srcPos, step string) {
	switch x := val.(type) {
	case map[string]any:
		for _, k := range sortedKeys(x) {
			p := path + "." + k
			if looksSecret(k) {
				v.report(v.atKey(p, at), step, fmt.Sprintf("input %q sets %q, which carries a secret; a runbook must never contain secrets, and every input is recorded in the run's history", input, k), credentialHint(spec))
				continue
			}
			v.secretKeys(spec, input, x[k], p, at, step)
		}
	case []any:
		for i, e := range x {
			v.secretKeys(spec, input, e, indexPath(path, i), at, step)
		}
	}
}

// credentialHint says where an action's secret comes from instead: a
// target named in one of its target inputs, whose credentials hold it.
func credentialHint(spec ActionSpec) string {
	var inputs []string
	for _, in := range spec.Inputs {
		if in.Type == TypeTarget {
			inputs = append(inputs, in.Name+":")
		}
	}
	if len(inputs) == 0 {
		return secretHint
	}
	return fmt.Sprintf("remove it; name under %s a target whose credentials.env or credentials.file holds the secret on the worker", orList(inputs))
}

// secretText reports a value that holds a secret (secretInText). what
// names where the value is written ("param \"x\"", "the description").
func (v *validator) secretText(at srcPos, step, what, s string) {
	if found := secretInText(s); found != "" {
		v.report(at, step, fmt.Sprintf("%s holds %s; a runbook must never contain secrets", what, found), secretHint)
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
		case !exists && !v.idsKnown:
			// a step whose id Parse could not read may be the one meant
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
		v.secretText(where, s.ID, "the value", str)
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
		if _, ok := v.rb.Param(r.Name); !ok && !v.broken.namesUnread("params") {
			names := make([]string, len(v.rb.Params))
			for i, p := range v.rb.Params {
				names[i] = p.Name
			}
			v.report(where, s.ID, fmt.Sprintf("%s uses param %q, which is not declared", r.Raw, r.Name), v.declareHint(r.Name, names, "params"))
		}
	case "targets":
		t, ok := v.target(r.Name)
		switch {
		case !ok && v.broken.namesUnread("targets"):
			return
		case !ok:
			v.report(where, s.ID, fmt.Sprintf("%s uses target %q, which is not declared", r.Raw, r.Name), v.declareHint(r.Name, v.targetNames(), "targets"))
			return
		}
		attrs := "targets." + t.Name + ".attributes"
		if r.Key == "kind" || (r.Key == "site" && t.Site != "") || v.broken.namesUnread(attrs) || v.broken.unread(attrs+"."+r.Key) {
			return
		}
		if _, has := t.Attributes[r.Key]; !has {
			known := append([]string{"kind"}, sortedKeys(t.Attributes)...)
			if t.Site != "" {
				known = append(known, "site")
			}
			hint := suggest(r.Key, known, "attributes")
			v.report(where, s.ID, fmt.Sprintf("%s uses attribute %q, which target %q does not have", r.Raw, r.Key, r.Name), hint)
		}
	case "steps":
		v.stepReference(r, s, compensating, where)
	}
}

func (v *validator) stepReference(r Ref, s stepRef, compensating bool, where srcPos) {
	source, exists := v.steps[r.Name]
	ancestors := v.ancestorsOf(s.ID)
	ordered := r.Name == s.ID || ancestors[r.Name] || exists && source.preflight && !s.preflight
	switch {
	case !exists && !v.idsKnown, exists && !ordered && !s.preflight && !v.ancestryRead(s):
		return // a step or needs edge Parse could not read may be the one meant
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
	if source.Approval != nil {
		if !slices.Contains(GateOutputs, r.Key) {
			v.report(where, s.ID, fmt.Sprintf("%s uses output %q, which approval gate %q does not produce", r.Raw, r.Key, r.Name), suggest(r.Key, GateOutputs, "outputs"))
		}
		return
	}
	if v.cat == nil || source.Action == "" || v.broken.unread(source.path+".action") {
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

// CheckSite reports whether name is a site name (a target's site, a
// step's run_on, a worker's --site): the lock-name rule, so it can end a
// task queue name.
func CheckSite(name string) error {
	if name == RunOnAny || len(name) > MaxSiteLen || !lockRE.MatchString(name) {
		return fmt.Errorf("site %q may only contain a-z, 0-9, '.', '_' and '-', starting with a letter or digit (at most %d), and is not %q", name, MaxSiteLen, RunOnAny)
	}
	return nil
}

// MaxSiteLen bounds a site name, so that the identity a site watch starts
// runs under ("site-watch@NAME") stays an identity.
const MaxSiteLen = 40

// fanOut checks a step that runs another runbook: its own keys, its
// parameters for the child (with, as) against the child's, and for_each.
func (v *validator) fanOut(s stepRef, at srcPos) {
	if s.Runbook == "" {
		for _, key := range []string{"for_each", "as", "max_parallel"} {
			if v.written(s.path + "." + key) {
				v.report(v.at(s.path+"."+key, at), s.ID, key+" belongs to a step that runs a runbook", "add runbook: FILE, or remove "+key)
			}
		}
		return
	}
	for _, key := range []string{"compensate", "retry", "timeout", "deadline", "heartbeat", "run_on"} {
		if v.written(s.path + "." + key) {
			v.report(v.at(s.path+"."+key, at), s.ID, fmt.Sprintf("a step that runs a runbook cannot have %s: the child run's steps have their own", key), "remove "+key)
		}
	}
	if s.MaxParallel < 0 || s.MaxParallel > MaxParallel {
		v.report(v.at(s.path+".max_parallel", at), s.ID, fmt.Sprintf("max_parallel %d is outside 1..%d", s.MaxParallel, MaxParallel), fmt.Sprintf("write a number from 1 to %d (default %d)", MaxParallel, DefaultMaxParallel))
	}
	switch items := s.ForEach.(type) {
	case nil:
		if s.As != "" {
			v.report(v.at(s.path+".as", at), s.ID, "as names the child parameter each item of for_each is given as, and there is no for_each", "add for_each: [ITEMS], or remove as")
		}
	case string:
		if refs, err := ParseRefs(items); err != nil || len(refs) != 1 || strings.TrimSpace(items) != refs[0].Raw {
			v.report(v.at(s.path+".for_each", at), s.ID, "for_each is a list, or one expression whose value is a list or comma-separated text", `write for_each: [a, b] or for_each: "${{ params.services }}"`)
		}
		v.references(s, map[string]any{"for_each": items}, s.path, false)
	case []any:
		if len(items) == 0 {
			v.report(v.at(s.path+".for_each", at), s.ID, "for_each lists no item", "list the items, or remove for_each to run the runbook once")
		}
		if len(items) > MaxForEach {
			v.report(v.at(s.path+".for_each", at), s.ID, fmt.Sprintf("for_each lists %d items; the most is %d", len(items), MaxForEach), "split the fan-out")
		}
		for i, it := range items {
			str, ok := it.(string)
			switch err := CheckForEachItem(str); {
			case !ok || err != nil:
				v.report(v.at(indexPath(s.path+".for_each", i), at), s.ID, fmt.Sprintf("for_each item %v is not a name a lock can end with", it), "use a-z, 0-9, '.', '_' and '-', starting with a letter or digit")
			case slices.Contains(items[:i], any(str)):
				v.report(v.at(indexPath(s.path+".for_each", i), at), s.ID, fmt.Sprintf("for_each lists %s twice", str), "list each item once: each is a run holding its own lock")
			}
		}
	default:
		v.report(v.at(s.path+".for_each", at), s.ID, "for_each is a list, or one expression whose value is a list or comma-separated text", `write for_each: [a, b] or for_each: "${{ params.services }}"`)
	}
	child := s.Child
	if child == nil {
		return // loading it failed, and said why
	}
	if s.ForEach == nil {
		switch {
		case child.Lock == v.rb.Lock:
			v.report(v.at(s.path+".runbook", at), s.ID, fmt.Sprintf("%s holds lock %q, this runbook's own: its run could never start", s.Runbook, child.Lock), "give one of them another lock")
		default:
			for _, o := range v.order {
				if o.Step != s.Step && o.Child != nil && o.ForEach == nil && o.Child.Lock == child.Lock && o.Line < s.Line {
					v.report(v.at(s.path+".runbook", at), s.ID, fmt.Sprintf("step %s already runs a runbook holding lock %q", o.ID, child.Lock), "run it once, or give the runbooks different locks")
				}
			}
		}
	}
	if s.ForEach != nil {
		if s.As == "" {
			v.report(at, s.ID, "for_each needs as: the child parameter each item is given as", fmt.Sprintf("add as: one of %s's parameters (%s)", s.Runbook, paramNames(child)))
		} else if _, ok := child.Param(s.As); !ok {
			v.report(v.at(s.path+".as", at), s.ID, fmt.Sprintf("as %q names no parameter of %s", s.As, s.Runbook), fmt.Sprintf("write as: one of its parameters (%s)", paramNames(child)))
		}
		if len(child.Lock)+1+maxItemLen > maxLockLen {
			v.report(v.at(s.path+".runbook", at), s.ID, fmt.Sprintf("%s's lock %q is too long to be followed by an item", s.Runbook, child.Lock), "shorten its lock")
		}
	}
	for _, key := range sortedKeys(s.With) {
		if _, ok := child.Param(key); !ok {
			v.report(v.atKey(s.path+".with."+key, at), s.ID, fmt.Sprintf("%s has no parameter %q", s.Runbook, key), fmt.Sprintf("its parameters: %s", paramNames(child)))
		} else if key == s.As {
			v.report(v.atKey(s.path+".with."+key, at), s.ID, fmt.Sprintf("parameter %q is given each item of for_each (as)", key), "remove it from with")
		}
	}
	for _, p := range child.Params {
		_, inherited := v.rb.Param(p.Name)
		if _, set := s.With[p.Name]; p.Required && !set && !inherited && p.Name != s.As {
			v.report(v.at(s.path+".runbook", at), s.ID, fmt.Sprintf("%s requires parameter %q", s.Runbook, p.Name), fmt.Sprintf("add %s: VALUE under with:", p.Name))
		}
	}
}

// maxItemLen bounds a for_each item, which ends the child's lock.
const maxItemLen = 63

// CheckForEachItem reports whether item can end a child's lock.
func CheckForEachItem(item string) error {
	if len(item) > maxItemLen || !lockRE.MatchString(item) {
		return fmt.Errorf("for_each item %q may only contain a-z, 0-9, '.', '_' and '-', starting with a letter or digit (at most %d)", item, maxItemLen)
	}
	return nil
}

// runOn checks a step's run_on: any, or a site some target lives in, on
// a step that runs an action on a worker.
func (v *validator) runOn(s stepRef, at srcPos) {
	if s.RunOn == "" {
		return
	}
	where := v.at(s.path+".run_on", at)
	var sites []string
	for _, t := range v.rb.Targets {
		if t.Site != "" && !slices.Contains(sites, t.Site) {
			sites = append(sites, t.Site)
		}
	}
	slices.Sort(sites)
	switch {
	case s.Approval != nil || s.Action == "":
		v.report(where, s.ID, "run_on places an action on a worker; an approval gate runs in the workflow itself", "remove run_on")
	case s.RunOn == RunOnAny:
	case !slices.Contains(sites, s.RunOn) && !v.broken.namesUnread("targets"):
		hint := fmt.Sprintf("write run_on: %s, or the site of a target (declare it with site: under the target)", RunOnAny)
		if len(sites) > 0 {
			hint = fmt.Sprintf("write run_on: %s or one of the targets' sites: %s", RunOnAny, strings.Join(sites, ", "))
		}
		v.report(where, s.ID, fmt.Sprintf("run_on %q names no site a target lives in", s.RunOn), hint)
	}
}

// CheckName holds a runbook's name to the lock's rule: it names the
// runbook's drill schedule and its runs in Temporal's visibility queries,
// so it is an identifier, not prose.
func CheckName(name string) error {
	if len(name) > maxLockLen || !lockRE.MatchString(name) {
		return fmt.Errorf("runbook name %q may only contain a-z, 0-9, '.', '_' and '-', starting with a letter or digit (at most %d)", name, maxLockLen)
	}
	return nil
}
