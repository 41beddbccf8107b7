package runbooks

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// The keys each part of a runbook file accepts, in the order the schema and
// error hints list them. Parse refuses any other key; schema_test.go checks
// that Schema describes exactly these.
var (
	runbookKeys    = []string{"apiVersion", "name", "description", "lock", "objectives", "notify", "drill", "params", "targets", "preflight", "steps"}
	objectivesKeys = []string{"rto", "rpo", "drill_every", "readiness"}
	notifyKeys     = []string{"slack_channel"}
	drillKeys      = []string{"failback"}
	paramKeys      = []string{"description", "default", "required", "allowed"}
	targetKeys     = []string{"kind", "site", "credentials", "attributes"}
	credentialKeys = []string{"env", "file"}
	stepKeys       = []string{"id", "description", "action", "with", "needs", "retry", "timeout", "deadline", "heartbeat", "on_failure", "run_on", "compensate", "approval", "runbook", "for_each", "as", "max_parallel"}
	retryKeys      = []string{"max_attempts", "initial_interval", "backoff", "max_interval"}
	compensateKeys = []string{"action", "with", "timeout", "retry"}
	approvalKeys   = []string{"message", "approvers", "two_person", "min_approvals", "timeout", "on_timeout", "drill_approvers", "auto_approve"}
)

// keySynonyms maps keys that other workflow languages use to drctl's word
// for the same thing, so the hint can say what to write instead even when
// the edit distance is large.
var keySynonyms = map[string]string{
	"depends_on": "needs", "dependsOn": "needs", "depends": "needs", "after": "needs", "requires": "needs",
	"inputs": "with", "args": "with", "arguments": "with", "params": "with",
	"retries": "retry", "rollback": "compensate", "undo": "compensate",
	"uses": "action", "run": "action", "name": "id",
}

// maxExactInt is the largest integer a float64 (and so JSON as the
// workflow decodes it) represents exactly. Larger literals would change
// value between the file and the run.
const maxExactInt = 1 << 53

// positions records where each part of a parsed runbook was written, keyed
// by path: "lock", "params.ticket.default", "steps[2].needs[0]",
// "steps[2].with.headers.X-Key", "steps[2].compensate.with.target". Paths
// under `with` follow WalkStrings, so a reference found while walking a
// value can be located.
type positions map[string]nodePos

// nodePos is where a mapping entry's key and its value start. Key is zero
// for list items and for the document root.
type nodePos struct {
	Key   srcPos
	Value srcPos
}

// Parse reads a runbook file. It checks the shape: YAML syntax, known keys,
// the kind of each node (mapping, list, text), durations, numbers and
// booleans. It does not check meaning (actions, references, the step graph);
// Validate does. On failure the error is Problems with every shape problem
// found, each located by file:line:col, and the Runbook is nil.
func Parse(file string, data []byte) (*Runbook, error) {
	rb, probs := parse(file, data)
	if err := probs.err(); err != nil {
		return nil, err
	}
	return rb, nil
}

// parse is Parse keeping what it could read. With shape problems it also
// returns the Runbook decoded from the rest, whose broken set names the
// parts that were not read, or nil when the file is not one YAML mapping
// (syntax, aliases, several documents): then nothing in it is trusted.
func parse(file string, data []byte) (*Runbook, Problems) {
	d := &decoder{file: file, pos: positions{}}
	root := d.document(data)
	if root == nil {
		return nil, d.probs
	}
	rb := d.runbook(root)
	rb.broken = d.broken
	return rb, d.probs
}

// Load reads, parses and validates the runbook at path. Problems with the
// runbook come back as Problems; a file that cannot be read comes back as
// that error, wrapped.
//
// One run reports every problem it can, so an author fixes a runbook in
// one pass rather than one class of mistake at a time. When the file is
// not one YAML mapping, only that is reported: nothing in it can be
// trusted. Otherwise every shape problem is reported and Validate still
// runs on what was read, but skips each check that depends on a part that
// was not: a finding about a half-read runbook must be true of the file
// as written, never an artefact of what the parser had to leave out. So a
// step whose `with` is broken is not told it misses inputs, a section
// whose names could not all be read does not make references to it
// "undeclared", an unknown key (perhaps a misspelt known one) stands for
// every known key missing beside it, no step is said not to exist while
// some step's id could not be read, and no step is said not to run
// before another when the needs that decide it could not be read. Cycles
// are still reported: a missing edge can hide a cycle but never make one.
func Load(path string, cat Catalog) (*Runbook, error) {
	data, err := ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read runbook: %w", err)
	}
	rb, probs := check(path, data, cat)
	if err := probs.err(); err != nil {
		return nil, err
	}
	Place(rb, cat)
	return rb, nil
}

// check parses and validates a runbook file's contents, as Load describes.
func check(file string, data []byte, cat Catalog) (*Runbook, Problems) {
	rb, probs := parse(file, data)
	if rb == nil {
		return nil, probs
	}
	probs = append(probs, loadChildren(rb, cat)...)
	return rb, append(probs, Validate(rb, cat)...)
}

// loadChildren loads the runbook each fan-out step runs (a path relative
// to rb's file) into the step. A child's own problems are reported in its
// file; a child that runs runbooks itself is refused (one level).
func loadChildren(rb *Runbook, cat Catalog) Problems {
	var probs Problems
	for i := range rb.Steps {
		s := &rb.Steps[i]
		if s.Runbook == "" {
			continue
		}
		at := linePos(s.Line)
		if np, ok := rb.pos["steps["+strconv.Itoa(i)+"].runbook"]; ok {
			at = np.Value
		}
		path := filepath.Join(filepath.Dir(rb.File), s.Runbook)
		data, err := ReadFileIn(filepath.Dir(rb.File), s.Runbook)
		if err != nil {
			why := err.Error()
			if u := errors.Unwrap(err); u != nil {
				why = u.Error()
			}
			probs = append(probs, Problem{File: rb.File, Line: at.Line, Col: at.Col, Step: s.ID,
				Message: fmt.Sprintf("runbook %s cannot be read: %s", s.Runbook, why), Hint: "write the child runbook's path relative to this file, inside its directory"})
			continue
		}
		child, cprobs := parse(path, data)
		if child != nil {
			for _, cs := range child.Steps {
				if cs.Runbook != "" {
					cprobs = append(cprobs, Problem{File: path, Line: cs.Line, Step: cs.ID, Message: "a runbook run by another cannot run runbooks itself", Hint: "run every runbook from the top one"})
				}
			}
			cprobs = append(cprobs, Validate(child, cat)...)
		}
		if len(cprobs) > 0 {
			probs = append(probs, cprobs...)
			continue
		}
		Place(child, cat)
		s.Child = child
	}
	return probs
}

// decoder turns a yaml.Node tree into a Runbook, collecting every problem
// instead of stopping at the first.
type decoder struct {
	file  string
	probs Problems
	pos   positions
	step  string // id of the step being decoded, for problem messages
	// cur is the path of the part being decoded; a problem marks it
	// broken unless the problem names another path.
	cur    string
	broken brokenParts
}

func posOf(n *yaml.Node) srcPos { return srcPos{Line: n.Line, Col: n.Column} }

// problem records a problem with the part being decoded.
func (d *decoder) problem(at srcPos, msg, hint string) {
	d.problemAt(d.cur, at, msg, hint)
}

// problemAt records a problem that leaves the part at path unread.
func (d *decoder) problemAt(path string, at srcPos, msg, hint string) {
	d.probs = append(d.probs, Problem{File: d.file, Line: at.Line, Col: at.Col, Step: d.step, Message: msg, Hint: hint})
	d.broken.mark(path)
}

// within decodes the part at path with fn, so problems mark it.
func (d *decoder) within(path string, fn func()) {
	prev := d.cur
	d.cur = path
	defer func() { d.cur = prev }()
	fn()
}

var yamlErrorRE = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// yamlProblem turns a YAML syntax error into a Problem. The YAML library
// reports where the broken construct started, 0-based for parser errors
// ("did not find expected ...") and not at all on the first line; this
// corrects both, and finds the exact place of a tab in indentation.
func (d *decoder) yamlProblem(err error, data []byte) {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	at := srcPos{Line: 1}
	if m := yamlErrorRE.FindStringSubmatch(err.Error()); m != nil {
		at.Line, _ = strconv.Atoi(m[1])
		msg = m[2]
		if strings.HasPrefix(msg, "did not find expected") {
			at.Line++
		}
	}
	hint := "fix the YAML syntax; quote text that contains ': ' or starts with a special character"
	if strings.Contains(msg, "tab character") {
		hint = "indent with spaces; YAML does not allow tabs"
		for i, line := range strings.Split(string(data), "\n") {
			indent := line[:len(line)-len(strings.TrimLeft(line, " \t"))]
			if col := strings.IndexByte(indent, '\t'); col >= 0 {
				at = srcPos{Line: i + 1, Col: col + 1}
				break
			}
		}
	}
	d.problem(at, "invalid YAML: "+msg, hint)
}

// document parses data as exactly one YAML document and returns its root
// mapping, or nil after recording why there is none.
func (d *decoder) document(data []byte) *yaml.Node {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := decodeYAML(dec, &doc); err != nil {
		if errors.Is(err, io.EOF) {
			d.problem(srcPos{}, "the file is empty", "start with apiVersion: "+APIVersion)
		} else {
			d.yamlProblem(err, data)
		}
		return nil
	}
	var extra yaml.Node
	switch err := decodeYAML(dec, &extra); {
	case err == nil:
		d.problem(srcPos{Line: extra.Line, Col: extra.Column}, "the file holds more than one YAML document", "keep one runbook per file and remove the extra ---")
	case !errors.Is(err, io.EOF):
		d.yamlProblem(err, data)
	}
	if len(doc.Content) == 0 || isNull(doc.Content[0]) {
		d.problem(posOf(&doc), "the file is empty", "start with apiVersion: "+APIVersion)
		return nil
	}
	root := doc.Content[0]
	d.refuseAliases(root)
	if root.Kind != yaml.MappingNode {
		d.problem(posOf(root), fmt.Sprintf("a runbook is a mapping of keys (apiVersion, name, steps, ...), not %s", kindName(root)), "start with apiVersion: "+APIVersion)
		return nil
	}
	if len(d.probs) > 0 {
		return nil
	}
	return root
}

// decodeYAML reads the next document. The YAML library has panicked on
// hostile input in the past; a runbook file must never take the CLI or a
// worker down, so a panic there becomes an error.
func decodeYAML(dec *yaml.Decoder, n *yaml.Node) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("yaml: the parser failed on this file (%v)", r)
		}
	}()
	return dec.Decode(n)
}

// refuseAliases reports every YAML alias and merge key. A reviewed runbook
// must say everything where it is used, and expanding aliases is how YAML
// bombs work.
func (d *decoder) refuseAliases(n *yaml.Node) {
	stack := []*yaml.Node{n}
	for len(stack) > 0 {
		n := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		switch {
		case n.Kind == yaml.AliasNode:
			d.problem(posOf(n), fmt.Sprintf("YAML alias *%s is not supported", n.Value), "write the value out in full where it is used, so reviewers see it")
		case n.Kind == yaml.ScalarNode && n.Tag == "!!merge":
			d.problem(posOf(n), "YAML merge key << is not supported", "write the keys out in full where they are used, so reviewers see them")
		}
		for i := len(n.Content) - 1; i >= 0; i-- {
			stack = append(stack, n.Content[i])
		}
	}
}

func isNull(n *yaml.Node) bool { return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" }

// kindName describes a node for messages: "a mapping", "a list", "text \"x\"".
func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if isNull(n) {
			return "empty"
		}
		return strconv.Quote(n.Value)
	}
	return "an alias"
}

func joinKey(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func indexPath(path string, i int) string { return fmt.Sprintf("%s[%d]", path, i) }

// fields decodes a mapping whose keys must be among known. It records the
// position of every entry, reports duplicate and unknown keys, and calls set
// for each known key in file order. what names the mapping in messages ("a
// step", "retry"). A null node is an empty mapping.
func (d *decoder) fields(n *yaml.Node, path, what string, known []string, set func(key string, v *yaml.Node, path string)) {
	if isNull(n) {
		return
	}
	if n.Kind != yaml.MappingNode {
		d.problemAt(path, posOf(n), fmt.Sprintf("%s must be a mapping of keys (%s), not %s", what, strings.Join(known, ", "), kindName(n)), "write key: value pairs, one per line")
		return
	}
	seen := map[string]int{}
	misnamed := false // a key that may be a known key written wrong
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			d.problemAt(joinKey(path, unreadName), posOf(k), fmt.Sprintf("a key in %s must be plain text, not %s", what, kindName(k)), "")
			misnamed = true
			continue
		}
		key := k.Value
		p := joinKey(path, key)
		if first, dup := seen[key]; dup {
			d.problemAt(p, posOf(k), fmt.Sprintf("duplicate key %q in %s (first at line %d)", key, what, first), "remove one of them")
			continue
		}
		seen[key] = k.Line
		if !slices.Contains(known, key) {
			hint := suggest(key, known, "keys")
			if syn, ok := keySynonyms[key]; ok && slices.Contains(known, syn) {
				hint = fmt.Sprintf("did you mean %q?", syn)
			}
			d.problemAt(p, posOf(k), fmt.Sprintf("unknown key %q in %s", key, what), hint)
			misnamed = true
			continue
		}
		d.pos[p] = nodePos{Key: posOf(k), Value: posOf(v)}
		d.within(p, func() { set(key, v, p) })
	}
	if misnamed {
		for _, key := range known {
			if _, ok := seen[key]; !ok {
				d.broken.mark(joinKey(path, key))
			}
		}
	}
}

// text decodes a scalar as text, as written. Null is "".
func (d *decoder) text(n *yaml.Node, key string) string {
	if n.Kind != yaml.ScalarNode {
		d.problem(posOf(n), fmt.Sprintf("%s must be text, not %s", key, kindName(n)), fmt.Sprintf("write %s: VALUE on one line", key))
		return ""
	}
	if isNull(n) {
		return ""
	}
	return n.Value
}

func (d *decoder) duration(n *yaml.Node, key string) Duration {
	if n.Kind != yaml.ScalarNode {
		d.problem(posOf(n), fmt.Sprintf("%s must be a duration like 30s or 5m, not %s", key, kindName(n)), "")
		return 0
	}
	if isNull(n) {
		return 0
	}
	v, err := ParseDuration(n.Value)
	if err != nil {
		d.problem(posOf(n), fmt.Sprintf("%s: %v", key, err), "")
		return 0
	}
	return v
}

func (d *decoder) integer(n *yaml.Node, key string) int {
	if isNull(n) {
		return 0
	}
	var v int
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" || n.Decode(&v) != nil {
		d.problem(posOf(n), fmt.Sprintf("%s must be a whole number, not %s", key, kindName(n)), fmt.Sprintf("write %s: 5", key))
		return 0
	}
	return v
}

func (d *decoder) float(n *yaml.Node, key string) float64 {
	if isNull(n) {
		return 0
	}
	var v float64
	tag := n.ShortTag()
	if n.Kind != yaml.ScalarNode || (tag != "!!int" && tag != "!!float") || n.Decode(&v) != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		d.problem(posOf(n), fmt.Sprintf("%s must be a number, not %s", key, kindName(n)), fmt.Sprintf("write %s: 2", key))
		return 0
	}
	return v
}

func (d *decoder) boolean(n *yaml.Node, key string) (v, ok bool) {
	if isNull(n) {
		return false, false
	}
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" || n.Decode(&v) != nil {
		d.problem(posOf(n), fmt.Sprintf("%s must be true or false, not %s", key, kindName(n)), "")
		return false, false
	}
	return v, true
}

// textList decodes a list of scalars as text, recording each item's
// position at path[i].
func (d *decoder) textList(n *yaml.Node, path, key string) []string {
	if isNull(n) {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		hint := fmt.Sprintf("write a list: %s: [a, b]", key)
		if n.Kind == yaml.ScalarNode {
			hint = fmt.Sprintf("write a list: %s: [%s]", key, n.Value)
		}
		d.problem(posOf(n), fmt.Sprintf("%s must be a list, not %s", key, kindName(n)), hint)
		return nil
	}
	out := make([]string, 0, len(n.Content))
	for i, item := range n.Content {
		p := indexPath(path, i)
		d.pos[p] = nodePos{Value: posOf(item)}
		if item.Kind != yaml.ScalarNode || isNull(item) {
			d.problemAt(p, posOf(item), fmt.Sprintf("each entry of %s must be text, not %s", key, kindName(item)), "")
			continue
		}
		out = append(out, item.Value)
	}
	return out
}

// value decodes free-form input values (a step's `with`) into the plain Go
// values that survive JSON: map[string]any, []any, string, int, float64,
// bool and nil. It refuses what JSON would change: integers beyond 2^53,
// NaN and infinities.
func (d *decoder) value(n *yaml.Node, path string) any {
	switch n.Kind {
	case yaml.MappingNode:
		m := make(map[string]any, len(n.Content)/2)
		seen := map[string]int{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Kind != yaml.ScalarNode {
				d.problemAt(joinKey(path, unreadName), posOf(k), fmt.Sprintf("a key must be plain text, not %s", kindName(k)), "")
				continue
			}
			p := joinKey(path, k.Value)
			if first, dup := seen[k.Value]; dup {
				d.problemAt(p, posOf(k), fmt.Sprintf("duplicate key %q (first at line %d)", k.Value, first), "remove one of them")
				continue
			}
			seen[k.Value] = k.Line
			d.pos[p] = nodePos{Key: posOf(k), Value: posOf(v)}
			d.within(p, func() { m[k.Value] = d.value(v, p) })
		}
		return m
	case yaml.SequenceNode:
		list := make([]any, len(n.Content))
		for i, item := range n.Content {
			p := indexPath(path, i)
			d.pos[p] = nodePos{Value: posOf(item)}
			d.within(p, func() { list[i] = d.value(item, p) })
		}
		return list
	case yaml.ScalarNode:
		return d.scalar(n)
	}
	return nil
}

func (d *decoder) scalar(n *yaml.Node) any {
	switch tag := n.ShortTag(); tag {
	case "!!null":
		return nil
	case "!!str", "!!timestamp":
		// Timestamps stay text, as written; actions parse what they need.
		return n.Value
	case "!!bool":
		var b bool
		if n.Decode(&b) == nil {
			return b
		}
	case "!!int":
		var i int64
		if err := n.Decode(&i); err != nil || i > maxExactInt || i < -maxExactInt {
			d.problem(posOf(n), fmt.Sprintf("the number %s is too large to pass to an action exactly", n.Value), fmt.Sprintf("quote it as text: %q", n.Value))
			return nil
		}
		return int(i)
	case "!!float":
		var f float64
		if err := n.Decode(&f); err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			d.problem(posOf(n), fmt.Sprintf("%s is not a finite number", n.Value), fmt.Sprintf("quote it as text: %q", n.Value))
			return nil
		}
		if f == 0 {
			f = 0 // -0 would not survive JSON as a float
		}
		return f
	default:
		d.problem(posOf(n), fmt.Sprintf("YAML tag %s is not supported", tag), "remove the tag; write plain text, numbers, true/false, lists and mappings")
		return nil
	}
	d.problem(posOf(n), fmt.Sprintf("cannot read %s", kindName(n)), "")
	return nil
}

// withMap decodes a `with` mapping. Null is no inputs.
func (d *decoder) withMap(n *yaml.Node, path string) map[string]any {
	if isNull(n) {
		return nil
	}
	if n.Kind != yaml.MappingNode {
		d.problem(posOf(n), fmt.Sprintf("with must be a mapping of input names to values, not %s", kindName(n)), "write with: {input: value}")
		return nil
	}
	return d.value(n, path).(map[string]any)
}

func (d *decoder) runbook(root *yaml.Node) *Runbook {
	rb := &Runbook{File: d.file, pos: d.pos}
	d.pos[""] = nodePos{Value: posOf(root)}
	d.fields(root, "", "the runbook", runbookKeys, func(key string, v *yaml.Node, p string) {
		switch key {
		case "apiVersion":
			rb.APIVersion = d.text(v, key)
		case "name":
			rb.Name = d.text(v, key)
		case "description":
			rb.Description = d.text(v, key)
		case "lock":
			rb.Lock = d.text(v, key)
		case "objectives":
			d.fields(v, p, "objectives", objectivesKeys, func(key string, v *yaml.Node, _ string) {
				switch key {
				case "rto":
					rb.Objectives.RTO, rb.Objectives.RTOSet = d.duration(v, key), true
				case "rpo":
					rb.Objectives.RPO, rb.Objectives.RPOSet = d.duration(v, key), true
				case "drill_every":
					if p, err := ParsePeriod(v.Value); v.Kind != yaml.ScalarNode || err != nil {
						d.problem(posOf(v), fmt.Sprintf("objectives.drill_every: %v", errOr(err, "must be a period like 30d")), "write drill_every: 30d")
					} else {
						rb.Objectives.DrillEvery = p
					}
				case "readiness":
					if o, err := ParseReadinessObjective(v.Value); v.Kind != yaml.ScalarNode || err != nil {
						d.problem(posOf(v), fmt.Sprintf("objectives.readiness: %v", errOr(err, "must be text like \"99.5%% over 30d\"")), `write readiness: "99.5% over 30d"`)
					} else {
						rb.Objectives.Readiness = &o
					}
				}
			})
		case "notify":
			d.fields(v, p, "notify", notifyKeys, func(key string, v *yaml.Node, _ string) {
				rb.Notify.SlackChannel = d.text(v, key)
			})
		case "drill":
			d.fields(v, p, "drill", drillKeys, func(key string, v *yaml.Node, _ string) {
				rb.Drill.Failback = d.text(v, key)
			})
		case "params":
			rb.Params = d.params(v, p)
		case "targets":
			rb.Targets = d.targets(v, p)
		case "preflight":
			rb.Preflight = d.steps(v, p)
		case "steps":
			rb.Steps = d.steps(v, p)
		}
	})
	return rb
}

// namedEntries walks a mapping of name -> definition (params, targets) in
// file order, recording the position of each name at path.NAME.
func (d *decoder) namedEntries(n *yaml.Node, path, what string, each func(name string, k, v *yaml.Node, p string)) {
	if isNull(n) {
		return
	}
	if n.Kind != yaml.MappingNode {
		d.problemAt(path, posOf(n), fmt.Sprintf("%s must be a mapping of names to definitions, not %s", path, kindName(n)), fmt.Sprintf("write each %s as NAME: {...} on its own line under %s:", what, path))
		return
	}
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode || isNull(k) {
			d.problemAt(joinKey(path, unreadName), posOf(k), fmt.Sprintf("a %s name must be plain text, not %s", what, kindName(k)), "")
			continue
		}
		p := joinKey(path, k.Value)
		if first, dup := seen[k.Value]; dup {
			d.problemAt(p, posOf(k), fmt.Sprintf("duplicate %s %q (first at line %d)", what, k.Value, first), "give each one a unique name")
			continue
		}
		seen[k.Value] = k.Line
		d.pos[p] = nodePos{Key: posOf(k), Value: posOf(v)}
		d.within(p, func() { each(k.Value, k, v, p) })
	}
}

func (d *decoder) params(n *yaml.Node, path string) []Param {
	var out []Param
	d.namedEntries(n, path, "param", func(name string, k, v *yaml.Node, p string) {
		pm := Param{Name: name, Line: k.Line}
		d.fields(v, p, fmt.Sprintf("param %q", name), paramKeys, func(key string, v *yaml.Node, p string) {
			switch key {
			case "description":
				pm.Description = d.text(v, key)
			case "default":
				if !isNull(v) {
					s := d.text(v, key)
					pm.Default = &s
				}
			case "required":
				pm.Required, _ = d.boolean(v, key)
			case "allowed":
				pm.Allowed = d.textList(v, p, key)
			}
		})
		out = append(out, pm)
	})
	return out
}

func (d *decoder) targets(n *yaml.Node, path string) []Target {
	var out []Target
	d.namedEntries(n, path, "target", func(name string, k, v *yaml.Node, p string) {
		t := Target{Name: name, Line: k.Line}
		d.fields(v, p, fmt.Sprintf("target %q", name), targetKeys, func(key string, v *yaml.Node, p string) {
			switch key {
			case "kind":
				t.Kind = d.text(v, key)
			case "site":
				t.Site = d.text(v, key)
			case "credentials":
				t.Credentials = &CredentialRef{}
				d.fields(v, p, "credentials", credentialKeys, func(key string, v *yaml.Node, _ string) {
					switch key {
					case "env":
						t.Credentials.Env = d.text(v, key)
					case "file":
						t.Credentials.File = d.text(v, key)
					}
				})
			case "attributes":
				t.Attributes = d.attributes(v, p)
			}
		})
		out = append(out, t)
	})
	return out
}

// attributes decodes a target's attributes: a mapping of text to text.
func (d *decoder) attributes(n *yaml.Node, path string) map[string]string {
	if isNull(n) {
		return nil
	}
	if n.Kind != yaml.MappingNode {
		d.problem(posOf(n), fmt.Sprintf("attributes must be a mapping of names to text, not %s", kindName(n)), "write attributes: {site: east}")
		return nil
	}
	out := map[string]string{}
	d.namedEntries(n, path, "attribute", func(name string, _, v *yaml.Node, _ string) {
		if v.Kind != yaml.ScalarNode || isNull(v) {
			d.problem(posOf(v), fmt.Sprintf("attribute %q must be text, not %s", name, kindName(v)), fmt.Sprintf("write %s: VALUE", name))
			return
		}
		out[name] = v.Value
	})
	return out
}

func (d *decoder) steps(n *yaml.Node, path string) []Step {
	if isNull(n) {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		d.problemAt(path, posOf(n), fmt.Sprintf("%s must be a list of steps, not %s", path, kindName(n)), "start each step with '- id: NAME'")
		return nil
	}
	out := make([]Step, 0, len(n.Content))
	for i, item := range n.Content {
		p := indexPath(path, i)
		d.pos[p] = nodePos{Value: posOf(item)}
		d.within(p, func() { out = append(out, d.stepAt(item, p)) })
	}
	return out
}

func (d *decoder) stepAt(n *yaml.Node, path string) Step {
	s := Step{Line: n.Line}
	d.step = stepID(n)
	defer func() { d.step = "" }()
	d.fields(n, path, "a step", stepKeys, func(key string, v *yaml.Node, p string) {
		switch key {
		case "id":
			s.ID = d.text(v, key)
		case "description":
			s.Description = d.text(v, key)
		case "action":
			s.Action = d.text(v, key)
		case "with":
			s.With = d.withMap(v, p)
		case "needs":
			s.Needs = d.textList(v, p, key)
		case "retry":
			s.Retry = d.retry(v, p)
		case "timeout":
			s.Timeout = d.duration(v, key)
		case "deadline":
			s.Deadline = d.duration(v, key)
		case "heartbeat":
			s.Heartbeat = d.duration(v, key)
		case "on_failure":
			s.OnFailure = d.text(v, key)
		case "run_on":
			s.RunOn = d.text(v, key)
		case "runbook":
			s.Runbook = d.text(v, key)
		case "for_each":
			s.ForEach = d.value(v, p)
		case "as":
			s.As = d.text(v, key)
		case "max_parallel":
			s.MaxParallel = d.integer(v, key)
		case "compensate":
			s.Compensate = d.compensation(v, p)
		case "approval":
			s.Approval = d.approval(v, p)
		}
	})
	return s
}

// stepID finds a step's id before the rest is decoded, so that every
// problem inside the step can name it.
func stepID(n *yaml.Node) string {
	if n.Kind != yaml.MappingNode {
		return ""
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if k, v := n.Content[i], n.Content[i+1]; k.Value == "id" && v.Kind == yaml.ScalarNode && !isNull(v) {
			return v.Value
		}
	}
	return ""
}

func (d *decoder) retry(n *yaml.Node, path string) *RetryPolicy {
	r := &RetryPolicy{}
	d.fields(n, path, "retry", retryKeys, func(key string, v *yaml.Node, _ string) {
		switch key {
		case "max_attempts":
			r.MaxAttempts = d.integer(v, key)
		case "initial_interval":
			r.InitialInterval = d.duration(v, key)
		case "backoff":
			r.BackoffCoefficient = d.float(v, key)
		case "max_interval":
			r.MaxInterval = d.duration(v, key)
		}
	})
	return r
}

func (d *decoder) compensation(n *yaml.Node, path string) *Compensation {
	c := &Compensation{Line: n.Line}
	d.fields(n, path, "compensate", compensateKeys, func(key string, v *yaml.Node, p string) {
		switch key {
		case "action":
			c.Action = d.text(v, key)
		case "with":
			c.With = d.withMap(v, p)
		case "timeout":
			c.Timeout = d.duration(v, key)
		case "retry":
			c.Retry = d.retry(v, p)
		}
	})
	return c
}

func (d *decoder) approval(n *yaml.Node, path string) *Approval {
	a := &Approval{TwoPerson: true}
	d.fields(n, path, "approval", approvalKeys, func(key string, v *yaml.Node, p string) {
		switch key {
		case "message":
			a.Message = d.text(v, key)
		case "approvers":
			a.Approvers = d.textList(v, p, key)
		case "two_person":
			if b, ok := d.boolean(v, key); ok {
				a.TwoPerson = b
			}
		case "min_approvals":
			a.MinApprovals = d.integer(v, key)
		case "timeout":
			a.Timeout = d.duration(v, key)
		case "on_timeout":
			a.OnTimeout = d.text(v, key)
		case "drill_approvers":
			a.DrillApprovers = d.textList(v, p, key)
		case "auto_approve":
			if b, ok := d.boolean(v, key); ok {
				a.AutoApprove = b
			}
		}
	})
	return a
}

// errOr is err's text, or text when err is nil.
func errOr(err error, text string) string {
	if err != nil {
		return err.Error()
	}
	return text
}
