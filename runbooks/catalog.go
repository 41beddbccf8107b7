package runbooks

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
}

// ActionSpec describes an action as a runbook author sees it.
type ActionSpec struct {
	Name    string      `json:"name"`
	Doc     string      `json:"doc"`
	Inputs  []InputSpec `json:"inputs"`
	Outputs []string    `json:"outputs,omitempty"`
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
