package runbooks

import (
	"encoding/json"
	"fmt"
)

// SchemaID is the $id of the JSON Schema that Schema returns.
const SchemaID = "https://github.com/drctl/drctl/runbooks/schema/runbook-v1.json"

// obj is a JSON Schema object. encoding/json writes map keys sorted, so the
// schema's text is deterministic.
type obj = map[string]any

// exprPattern matches a value that is exactly one ${{ }} expression; such a
// value is allowed wherever a typed input is, because its type is only known
// at run time.
const exprPattern = `^\s*\$\{\{.*\}\}\s*$`

// durationPattern matches Go duration text, as ParseDuration accepts it.
const durationPattern = `^(0|([0-9]+(\.[0-9]*)?|\.[0-9]+)(ns|us|µs|μs|ms|s|m|h))+$`

// Schema returns a JSON Schema (draft 2020-12) for runbook files, for
// editors (yaml-language-server: add `# yaml-language-server:
// $schema=PATH` at the top of a runbook). It describes every key Parse
// accepts and, per action in cat, that action's inputs. It is a typing aid:
// Validate remains the authority.
func Schema(cat Catalog) ([]byte, error) {
	var names []string
	if cat != nil {
		names = cat.Names()
	}
	var perAction []any
	for _, name := range names {
		spec, ok := cat.Lookup(name)
		if !ok {
			return nil, fmt.Errorf("schema: catalog lists action %q but cannot look it up", name)
		}
		perAction = append(perAction, obj{
			"if":   obj{"properties": obj{"action": obj{"const": name}}, "required": []string{"action"}},
			"then": obj{"properties": obj{"with": withSchema(spec)}},
		})
	}
	action := obj{"type": "string", "description": "The action to run, like postgres.promote."}
	if len(names) > 0 {
		action["enum"] = names
	}

	step := obj{
		"type":                 "object",
		"description":          "One node of the step graph: an action with inputs, or an approval gate.",
		"additionalProperties": false,
		"required":             []string{"id"},
		"properties": obj{
			"id":           obj{"type": "string", "pattern": "^" + identRE + "$", "description": "Unique id; other steps name it in needs and ${{ steps.ID.outputs.KEY }}."},
			"description":  obj{"type": "string", "description": "What the step is for, for operators."},
			"action":       action,
			"with":         obj{"type": "object", "description": "The action's inputs. Text may contain ${{ params.NAME }}, ${{ steps.ID.outputs.KEY }}, ${{ run.id }} or ${{ targets.NAME.ATTRIBUTE }}."},
			"needs":        obj{"type": "array", "items": obj{"type": "string"}, "uniqueItems": true, "description": "Ids of the steps that must finish first. Steps with no path between them run in parallel."},
			"retry":        obj{"$ref": "#/$defs/retry"},
			"timeout":      durationRef("Bounds one attempt (start to close). Default: the action's."),
			"deadline":     durationRef("Bounds all attempts together (schedule to close). Default: none."),
			"heartbeat":    durationRef("Heartbeat timeout for long actions. Default: the action's."),
			"on_failure":   obj{"enum": []string{OnFailureAbort, OnFailureContinue}, "description": "abort (default): stop the run and compensate completed steps. continue: record the failure; dependents still run."},
			"run_on":       obj{"type": "string", "pattern": lockRE.String(), "description": "any: any worker may run the action; a site name: only that site's workers. Default: where the action's reach puts it."},
			"compensate":   obj{"$ref": "#/$defs/compensation"},
			"approval":     obj{"$ref": "#/$defs/approval"},
			"runbook":      obj{"type": "string", "description": "Run another runbook (its path relative to this file) as a child run with its own lock and report; with holds its parameters."},
			"for_each":     obj{"type": []string{"array", "string"}, "items": obj{"type": "string", "pattern": lockRE.String()}, "maxItems": MaxForEach, "description": "Run the child runbook once per item: a list, or one expression whose value is a list or comma-separated text. Each child's lock is the child runbook's lock, \"-\" and the item."},
			"as":           obj{"type": "string", "description": "The child parameter each item of for_each is given as."},
			"max_parallel": obj{"type": "integer", "minimum": 1, "maximum": MaxParallel, "description": fmt.Sprintf("Children running at once (default %d).", DefaultMaxParallel)},
		},
		"oneOf": []any{
			obj{"required": []string{"action"}, "not": obj{"anyOf": []any{obj{"required": []string{"approval"}}, obj{"required": []string{"runbook"}}}}},
			obj{"required": []string{"approval"}, "not": obj{"anyOf": []any{obj{"required": []string{"action"}}, obj{"required": []string{"runbook"}}}}},
			obj{"required": []string{"runbook"}, "not": obj{"anyOf": []any{obj{"required": []string{"action"}}, obj{"required": []string{"approval"}}}}},
		},
	}
	if len(perAction) > 0 {
		step["allOf"] = perAction
	}

	preflight := obj{
		"type":                 "object",
		"description":          "A read-only check that runs before any step; if one fails the run stops with nothing changed.",
		"additionalProperties": false,
		"required":             []string{"id", "action"},
		"properties": obj{
			"id":          step["properties"].(obj)["id"],
			"description": step["properties"].(obj)["description"],
			"action":      action,
			"with":        step["properties"].(obj)["with"],
			"retry":       obj{"$ref": "#/$defs/retry"},
			"timeout":     step["properties"].(obj)["timeout"],
			"deadline":    step["properties"].(obj)["deadline"],
			"heartbeat":   step["properties"].(obj)["heartbeat"],
		},
	}
	if len(perAction) > 0 {
		preflight["allOf"] = perAction
	}

	compensation := obj{
		"type":                 "object",
		"description":          "Undoes the step when the run is aborted or fails, and is the failback in drill mode. It may use the step's own outputs.",
		"additionalProperties": false,
		"required":             []string{"action"},
		"properties": obj{
			"action":  action,
			"with":    step["properties"].(obj)["with"],
			"timeout": durationRef("Bounds one attempt of the compensation."),
			"retry":   obj{"$ref": "#/$defs/retry"},
		},
	}
	if len(perAction) > 0 {
		compensation["allOf"] = perAction
	}

	schema := obj{
		"$schema":              "https://json-schema.org/draft/2020-12/schema",
		"$id":                  SchemaID,
		"title":                "drctl runbook",
		"description":          "A disaster-recovery runbook that drctl runs as a durable workflow.",
		"type":                 "object",
		"additionalProperties": false,
		"required":             []string{"apiVersion", "name", "lock", "steps"},
		"properties": obj{
			"apiVersion":  obj{"const": APIVersion, "description": "The runbook format version."},
			"name":        obj{"type": "string", "pattern": lockRE.String(), "maxLength": maxLockLen, "description": "A short name for the runbook, like site-failover."},
			"description": obj{"type": "string", "description": "What the runbook does and when to run it."},
			"lock":        obj{"type": "string", "pattern": lockRE.String(), "maxLength": maxLockLen, "description": "Names what the runbook moves; at most one run per lock at a time."},
			"objectives": obj{
				"type":                 "object",
				"additionalProperties": false,
				"description":          "Recovery objectives every run is measured against.",
				"properties": obj{
					"rto": durationRef("Recovery time objective: start to verified done."),
					"rpo": durationRef("Recovery point objective: replication lag at promotion."),
					"drill_every": obj{"type": "string", "pattern": `^([0-9]{1,3}d|[0-9hms.]+)$`,
						"description": "How often the runbook must pass a drill, like 30d (1h..366d)."},
					"readiness": obj{"type": "string", "pattern": `^[0-9]{1,3}(\.[0-9]{1,4})?% over \S+$`,
						"description": "Share of time the readiness evaluation must find the runbook ready, like \"99.5% over 30d\"."},
				},
			},
			"notify": obj{
				"type":                 "object",
				"additionalProperties": false,
				"description":          "Where the run reports progress and asks for approvals.",
				"properties": obj{
					"slack_channel": obj{"type": "string", "description": "Slack channel ID (C0123...) or #name; default: the worker's slack.channel."},
				},
			},
			"drill": obj{
				"type":                 "object",
				"additionalProperties": false,
				"description":          "How a drill (--mode drill) comes back.",
				"properties": obj{
					"failback": obj{"type": "string", "description": "A runbook (path relative to this file) a drill runs after the forward path, instead of the compensations."},
				},
			},
			"params": obj{
				"type":                 "object",
				"description":          "Parameters, set with drctl run --set NAME=VALUE; used as ${{ params.NAME }}.",
				"propertyNames":        obj{"pattern": "^" + identRE + "$"},
				"additionalProperties": obj{"$ref": "#/$defs/param"},
			},
			"targets": obj{
				"type":                 "object",
				"description":          "Resources the runbook acts on, and where their credentials come from (never the secrets).",
				"propertyNames":        obj{"pattern": "^" + identRE + "$"},
				"additionalProperties": obj{"$ref": "#/$defs/target"},
			},
			"preflight": obj{"type": "array", "items": obj{"$ref": "#/$defs/preflight"}, "description": "Read-only checks that all run, in parallel, before any step."},
			"steps":     obj{"type": "array", "minItems": 1, "items": obj{"$ref": "#/$defs/step"}, "description": "The step graph; order in the file does not imply order of execution, needs does."},
		},
		"$defs": obj{
			"duration": obj{"type": "string", "pattern": durationPattern, "description": "Go duration text, like 30s, 5m or 1h30m."},
			"param": obj{
				"type":                 []string{"object", "null"},
				"additionalProperties": false,
				"properties": obj{
					"description": obj{"type": "string"},
					"default":     obj{"type": []string{"string", "number", "boolean"}, "description": "Used when the operator sets no value."},
					"required":    obj{"type": "boolean", "description": "The operator must set a value. Contradicts default."},
					"allowed":     obj{"type": "array", "items": obj{"type": []string{"string", "number", "boolean"}}, "description": "The only values accepted."},
				},
			},
			"target": obj{
				"type":                 "object",
				"additionalProperties": false,
				"required":             []string{"kind"},
				"properties": obj{
					"kind": obj{"type": "string", "description": "What the target is, like postgres or dns."},
					"site": obj{"type": "string", "pattern": lockRE.String(), "description": "Where the target lives. An action that needs the site's local reach runs only on a worker started there (drctl worker --site)."},
					"credentials": obj{
						"type":                 "object",
						"additionalProperties": false,
						"description":          "Where a worker finds the secret: exactly one of env and file.",
						"properties": obj{
							"env":  obj{"type": "string", "pattern": envVarRE.String(), "description": "An environment variable on the worker."},
							"file": obj{"type": "string", "pattern": "^/", "description": "An absolute path to a file on the worker's host."},
						},
						"minProperties": 1,
						"maxProperties": 1,
					},
					"attributes": obj{
						"type":                 "object",
						"description":          "Plain facts about the target (site, host, zone), used as ${{ targets.NAME.ATTRIBUTE }}. Never secrets.",
						"additionalProperties": obj{"type": []string{"string", "number", "boolean"}},
					},
				},
			},
			"retry": obj{
				"type":                 "object",
				"additionalProperties": false,
				"description":          "Retry policy; unset fields take drctl's defaults.",
				"properties": obj{
					"max_attempts":     obj{"type": "integer", "minimum": 0, "maximum": MaxAttempts, "description": "Attempts in all; 0 means unlimited (bounded by deadline)."},
					"initial_interval": durationRef("Wait before the first retry."),
					"backoff":          obj{"type": "number", "minimum": 1, "maximum": MaxBackoff, "description": "Multiplies the wait after each attempt."},
					"max_interval":     durationRef("The longest wait between attempts; at least initial_interval."),
				},
			},
			"approval": obj{
				"type":                 []string{"object", "null"},
				"additionalProperties": false,
				"description":          "A gate: the run waits until an allowed approver decides.",
				"required":             []string{"approvers"},
				"properties": obj{
					"message":         obj{"type": "string", "description": "What the approvers are asked."},
					"approvers":       obj{"type": "array", "minItems": 1, "items": obj{"type": "string"}, "description": "People (alice) and groups (group:dba) allowed to decide."},
					"two_person":      obj{"type": "boolean", "default": true, "description": "Refuse an approval by whoever started the run. Default true."},
					"min_approvals":   obj{"type": "integer", "minimum": 1, "maximum": MaxApprovals, "description": "Distinct approvers needed to open the gate (the starter never counts when above 1). Default 1."},
					"timeout":         durationRef("How long to wait for a decision. Default: forever."),
					"on_timeout":      obj{"enum": []string{OnFailureAbort, OnFailureContinue}, "description": "abort (default) or continue when nobody decides in time."},
					"auto_approve":    obj{"type": "boolean", "description": "A site watch's auto_approve_after may open this gate when nobody decided in that time, in a run the watch proposed."},
					"drill_approvers": obj{"type": "array", "items": obj{"type": "string", "pattern": `^[A-Za-z0-9._@+-]{1,64}$`}, "description": "Identities a drill schedule may name (--auto-approve) to approve this gate automatically, in scheduled drills only."},
				},
			},
			"compensation": compensation,
			"preflight":    preflight,
			"step":         step,
		},
	}
	return json.MarshalIndent(schema, "", "  ")
}

func durationRef(description string) obj {
	return obj{"$ref": "#/$defs/duration", "description": description}
}

// withSchema describes one action's inputs.
func withSchema(spec ActionSpec) obj {
	props := obj{}
	var required []string
	for _, in := range spec.Inputs {
		p := inputSchema(in.Type)
		if in.Doc != "" {
			p["description"] = in.Doc
		}
		props[in.Name] = p
		if in.Required {
			required = append(required, in.Name)
		}
	}
	w := obj{"type": "object", "additionalProperties": false, "properties": props}
	if spec.Doc != "" {
		w["description"] = spec.Doc
	}
	if len(required) > 0 {
		w["required"] = required
	}
	var rules []any
	for _, g := range spec.Groups {
		rules = append(rules, groupSchema(g)...)
	}
	if len(rules) > 0 {
		w["allOf"] = rules
	}
	return w
}

// groupSchema describes an InputGroup's rule. The schema counts an input
// as given when its key is written; Validate also treats empty text and
// empty lists as not given.
func groupSchema(g InputGroup) []any {
	switch g.Rule {
	case AtLeastOne:
		var alternatives []any
		for _, name := range g.Inputs {
			alternatives = append(alternatives, obj{"required": []string{name}})
		}
		return []any{obj{"anyOf": alternatives}}
	case AtMostOne:
		var out []any
		for i, a := range g.Inputs {
			for _, b := range g.Inputs[i+1:] {
				out = append(out, obj{"not": obj{"required": []string{a, b}}})
			}
		}
		return out
	case AllOrNone:
		dep := obj{}
		for _, name := range g.Inputs {
			var others []string
			for _, o := range g.Inputs {
				if o != name {
					others = append(others, o)
				}
			}
			dep[name] = others
		}
		return []any{obj{"dependentRequired": dep}}
	}
	return nil
}

// inputSchema is the schema of one input value of type t. Every typed
// input also accepts a single ${{ }} expression, whose type is only known
// at run time, and whole numbers also their text form, as Validate does.
func inputSchema(t InputType) obj {
	expr := obj{"type": "string", "pattern": exprPattern}
	var typed obj
	switch t {
	case TypeString, TypeTarget:
		return obj{"type": "string"}
	case TypeInt:
		return obj{"anyOf": []any{obj{"type": "integer"}, obj{"type": "string", "pattern": `^\s*[+-]?[0-9]+\s*$`}, expr}}
	case TypeFloat:
		typed = obj{"type": "number"}
	case TypeBool:
		typed = obj{"type": "boolean"}
	case TypeDuration:
		typed = obj{"$ref": "#/$defs/duration"}
	case TypeList:
		typed = obj{"type": "array", "items": obj{"type": "string"}}
	case TypeMap:
		typed = obj{"type": "object", "additionalProperties": obj{"type": "string"}}
	default:
		return obj{}
	}
	return obj{"anyOf": []any{typed, expr}}
}
