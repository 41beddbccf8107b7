package runbooks

import "fmt"

// Undo says what a drill can expect of an action: whether, after it acted,
// anything needs putting back, and whether a compensation can do it. A
// drill (--mode drill) runs the forward path, then the compensations in
// reverse as the way back, then compares every target with its state
// before the drill; a step that nothing puts back would make that
// comparison fail every time, so such runbooks are refused before they
// start.
type Undo string

const (
	// UndoNotNeeded: the action only reads (status, checks, waits for a
	// condition); there is nothing to put back.
	UndoNotNeeded Undo = "not_needed"
	// UndoByCompensation: a compensate: step puts back what it changed
	// (fence / unfence, a DNS record set back to changed_from). The
	// default for an action that declares nothing.
	UndoByCompensation Undo = "compensation"
	// UndoImpossible: no compensation restores the prior state (a promoted
	// standby cannot be demoted by a step: the old primary must be
	// rewound and the roles switched back by a failback runbook).
	UndoImpossible Undo = "impossible"
)

// ValidateDrill reports each acting step of rb that a drill could not put
// back: an action whose Undo is UndoImpossible, or one that changes
// something and has no compensate:. A runbook that names a failback
// (drill.failback) comes back by that runbook instead. It is Validate's companion for
// `drctl validate --mode drill` and `drctl run --mode drill`.
func ValidateDrill(rb *Runbook, cat Catalog) Problems {
	v := &validator{rb: rb, cat: cat, broken: rb.broken, steps: map[string]stepRef{}, ancestors: map[string]map[string]bool{}}
	v.collectSteps()
	for _, s := range v.order {
		if s.Runbook != "" {
			v.report(v.at(s.path+".runbook", v.stepPos(s)), s.ID, "a drill cannot run runbooks as children yet: each child would put itself back before the next step, leaving the whole half failed over",
				"drill each child runbook on its own")
		}
	}
	if rb.Drill.Failback != "" {
		v.probs.Sort()
		return v.probs // the failback runbook is the way back for every step
	}
	for _, s := range v.order {
		if s.preflight || s.Action == "" || cat == nil {
			continue
		}
		spec, ok := cat.Lookup(s.Action)
		if !ok {
			continue // Validate reports unknown actions
		}
		at := v.at(s.path+".action", v.stepPos(s))
		switch noWayBack(spec, *s.Step) {
		case UndoImpossible:
			v.report(at, s.ID, fmt.Sprintf("a drill cannot put back %s: no compensation undoes it, so the drill would leave the system failed over", s.Action),
				"name the runbook that brings everything back: drill: {failback: failback.yaml} (or --failback FILE)")
		case UndoByCompensation:
			v.report(at, s.ID, fmt.Sprintf("%s changes its target and has no compensate:, so a drill cannot put it back", s.Action),
				"add compensate: {action: ..., with: {...}} that restores what the step changed")
		}
	}
	v.probs.Sort()
	return v.probs
}

// noWayBack says why a step's change has no way back in its own runbook:
// UndoImpossible (no compensation can undo the action), UndoByCompensation
// (it changes something and has no compensate:), or "" (it only reads, or
// its compensation puts it back).
func noWayBack(spec ActionSpec, s Step) Undo {
	switch {
	case spec.Undo == UndoNotNeeded:
		return ""
	case spec.Undo == UndoImpossible:
		return UndoImpossible
	case s.Compensate == nil:
		return UndoByCompensation
	}
	return ""
}

// OnlyFailbackUndoes lists the steps of rb (in order) whose change only a
// failback runbook can bring back (see noWayBack). A drill whose forward
// path fails after one of them changed something takes its failback
// runbook as the way back instead of the compensations.
func OnlyFailbackUndoes(rb *Runbook, cat Catalog) []string {
	var out []string
	for _, s := range rb.Steps {
		if s.Action == "" || cat == nil {
			continue
		}
		if spec, ok := cat.Lookup(s.Action); ok && noWayBack(spec, s) != "" {
			out = append(out, s.ID)
		}
	}
	return out
}

// ActingSteps lists the steps of rb (in order) whose action changes
// something (its Undo is not UndoNotNeeded): the readiness evaluation
// expects each one's Observe to find something to change.
func ActingSteps(rb *Runbook, cat Catalog) []string {
	var out []string
	for _, s := range rb.Steps {
		if s.Action == "" || cat == nil {
			continue
		}
		if spec, ok := cat.Lookup(s.Action); ok && spec.Undo != UndoNotNeeded {
			out = append(out, s.ID)
		}
	}
	return out
}
