package runbooks

import (
	"errors"
	"fmt"
)

// InputType is the type an action input is converted to before the action
// runs. Parameters are strings, so "int", "bool", "duration" and "float"
// inputs also accept their text form.
type InputType string

// Input types an action may declare.
const (
	TypeString   InputType = "string"
	TypeInt      InputType = "int"
	TypeFloat    InputType = "float"
	TypeBool     InputType = "bool"
	TypeDuration InputType = "duration"
	TypeList     InputType = "list" // list of strings
	TypeMap      InputType = "map"  // map of strings
	TypeAny      InputType = "any"
	// TypeTarget is text naming one of the runbook's targets; Validate
	// refuses a literal name that is not declared under targets:.
	TypeTarget InputType = "target"
)

// InputSpec describes one input of an action.
type InputSpec struct {
	Name     string    `json:"name"`
	Type     InputType `json:"type"`
	Required bool      `json:"required,omitempty"`
	Doc      string    `json:"doc,omitempty"`
	// Kinds are the target kinds a TypeTarget input accepts ("postgres").
	// Validate refuses a literal target of another kind, and a target
	// whose kind no input of any action in the catalog accepts. Every
	// TypeTarget input declares them (CheckSpec); other inputs have none.
	Kinds []string `json:"kinds,omitempty"`
}

// GroupRule says how many inputs of an InputGroup a step may give.
type GroupRule string

// Rules over a group of inputs. An input counts as given when it is
// written with a value other than empty text or an empty list; a value
// that is an expression counts as given, since it is known only at run
// time.
const (
	// AtLeastOne: one or more of them (http.check's url or urls).
	AtLeastOne GroupRule = "at_least_one"
	// AtMostOne: none or one of them (http.call's json or body).
	AtMostOne GroupRule = "at_most_one"
	// AllOrNone: all of them or none (json_field with json_value).
	AllOrNone GroupRule = "all_or_none"
)

// InputGroup is a rule over several inputs of one action, which Validate
// checks with file:line so that a runbook breaking it is refused before it
// runs rather than failing at that step.
type InputGroup struct {
	Inputs []string  `json:"inputs"`
	Rule   GroupRule `json:"rule"`
}

// ActionSpec describes an action as a runbook author sees it.
type ActionSpec struct {
	Name    string      `json:"name"`
	Doc     string      `json:"doc"`
	Inputs  []InputSpec `json:"inputs"`
	Outputs []string    `json:"outputs,omitempty"`
	// Groups are rules over several inputs together, such as "url or urls".
	Groups []InputGroup `json:"groups,omitempty"`
	// Undo says whether a drill can put back what the action changes (see
	// Undo); empty means UndoByCompensation.
	Undo Undo `json:"undo,omitempty"`
	// Reach says where a worker must stand to run the action; empty means
	// ReachNetwork.
	Reach Reach `json:"reach,omitempty"`
	// Local says the action does no I/O (it only records): a run executes
	// it as a local activity, in the worker running the run's workflow,
	// with no round trip through the server.
	Local bool `json:"local,omitempty"`
}

// Reach is where a worker must be to run an action on a target.
type Reach string

const (
	// ReachNetwork: any worker that holds the target's credentials and
	// reaches it over the network (a DNS update with the key, a promote
	// over a DSN, a fence of a dead site's database tried from another).
	ReachNetwork Reach = "network"
	// ReachSite: only a worker started in the site of the target the
	// action's "target" input names (--site, worker.sites): the action
	// needs the site's local reach, such as a data directory on the
	// database host or a unix socket. A target with no site: any worker.
	ReachSite Reach = "site"
)

// Where says which site's workers may run an action of the given reach
// whose resolved inputs are with, as placed by runOn (a step's run_on):
// a site name, or "" for any worker.
func Where(runOn string, reach Reach, with map[string]any, targets []Target) string {
	switch {
	case runOn == RunOnAny:
		return ""
	case runOn != "":
		return runOn
	case reach != ReachSite:
		return ""
	}
	name, _ := with["target"].(string)
	for _, t := range targets {
		if t.Name == name {
			return t.Site
		}
	}
	return ""
}

// Place copies each step's and compensation's action reach and locality
// from cat into the runbook (Step.Reach and Local, Compensation.Reach and
// Local); Load calls it.
func Place(rb *Runbook, cat Catalog) {
	if cat == nil {
		return
	}
	spec := func(action string) (Reach, bool) {
		spec, ok := cat.Lookup(action)
		if !ok || spec.Reach == ReachNetwork {
			return "", ok && spec.Local
		}
		return spec.Reach, spec.Local
	}
	for _, steps := range [][]Step{rb.Preflight, rb.Steps} {
		for i := range steps {
			if steps[i].Action != "" {
				steps[i].Reach, steps[i].Local = spec(steps[i].Action)
			}
			if c := steps[i].Compensate; c != nil && c.Action != "" {
				c.Reach, c.Local = spec(c.Action)
			}
		}
	}
}

// CheckSpec reports what is inconsistent in an action's spec: a group
// naming an undeclared input or with fewer than two, a group that a
// required input makes pointless, an unknown rule, a TypeTarget input
// without Kinds, or Kinds on another input. The validator trusts specs;
// a registry calls this when an action is added, and tests call it on
// every shipped action.
func CheckSpec(a ActionSpec) error {
	var errs []error
	for _, in := range a.Inputs {
		switch {
		case in.Type == TypeTarget && len(in.Kinds) == 0:
			errs = append(errs, fmt.Errorf("%s: target input %q declares no Kinds", a.Name, in.Name))
		case in.Type != TypeTarget && len(in.Kinds) > 0:
			errs = append(errs, fmt.Errorf("%s: input %q is not a target but declares Kinds", a.Name, in.Name))
		}
	}
	if a.Local && a.Reach == ReachSite {
		errs = append(errs, fmt.Errorf("%s: a local action runs wherever the run's workflow does; it cannot need a site's reach", a.Name))
	}
	switch a.Reach {
	case "", ReachNetwork:
	case ReachSite:
		if in, ok := a.Input("target"); !ok || in.Type != TypeTarget {
			errs = append(errs, fmt.Errorf("%s: reach %q needs a target input named \"target\" (the target whose site the action runs in)", a.Name, a.Reach))
		}
	default:
		errs = append(errs, fmt.Errorf("%s: unknown reach %q", a.Name, a.Reach))
	}
	for i, g := range a.Groups {
		switch g.Rule {
		case AtLeastOne, AtMostOne, AllOrNone:
		default:
			errs = append(errs, fmt.Errorf("%s: group %d has unknown rule %q", a.Name, i, g.Rule))
		}
		if len(g.Inputs) < 2 {
			errs = append(errs, fmt.Errorf("%s: group %d names %d inputs; a group needs two or more", a.Name, i, len(g.Inputs)))
		}
		for _, name := range g.Inputs {
			in, ok := a.Input(name)
			switch {
			case !ok:
				errs = append(errs, fmt.Errorf("%s: group %d names input %q, which is not declared", a.Name, i, name))
			case in.Required:
				errs = append(errs, fmt.Errorf("%s: group %d names input %q, which is required anyway", a.Name, i, name))
			}
		}
	}
	return errors.Join(errs...)
}

// CheckCatalog runs CheckSpec on every action of cat.
func CheckCatalog(cat Catalog) error {
	var errs []error
	for _, name := range cat.Names() {
		spec, ok := cat.Lookup(name)
		if !ok {
			errs = append(errs, fmt.Errorf("the catalog lists %q but cannot look it up", name))
			continue
		}
		if spec.Name != name {
			errs = append(errs, fmt.Errorf("the catalog lists %q with a spec named %q", name, spec.Name))
		}
		errs = append(errs, CheckSpec(spec))
	}
	return errors.Join(errs...)
}

// Input returns the input spec with the given name.
func (a ActionSpec) Input(name string) (InputSpec, bool) {
	for _, in := range a.Inputs {
		if in.Name == name {
			return in, true
		}
	}
	return InputSpec{}, false
}

// Catalog is what the validator needs to know about actions. The action
// registry (package activities) implements it; tests may use a literal one.
type Catalog interface {
	// Lookup returns the action's spec.
	Lookup(action string) (ActionSpec, bool)
	// Names lists every known action, sorted.
	Names() []string
}
