package workflows

import (
	"fmt"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"
)

// Search attributes make runs findable in Temporal's visibility store, so
// drill history and SLO figures need no database of drctl's own. The
// starter sets what is known at start (runbook, lock, mode); the run adds
// its outcome, RTO, RPO and whether the objectives were met as it ends
// (from versionScheduled on). All of them must be registered in the
// namespace before the first run: `drctl dev` and the test harness do it;
// on a cluster, SearchAttributesCommand prints the one command.
var (
	SearchRunbook  = temporal.NewSearchAttributeKeyKeyword("DrctlRunbook")
	SearchLock     = temporal.NewSearchAttributeKeyKeyword("DrctlLock")
	SearchMode     = temporal.NewSearchAttributeKeyKeyword("DrctlMode")
	SearchOutcome  = temporal.NewSearchAttributeKeyKeyword("DrctlOutcome")
	SearchRTOMs    = temporal.NewSearchAttributeKeyInt64("DrctlRtoMs")
	SearchRPOMs    = temporal.NewSearchAttributeKeyInt64("DrctlRpoMs")
	SearchMet      = temporal.NewSearchAttributeKeyBool("DrctlObjectivesMet")
	SearchSchedule = temporal.NewSearchAttributeKeyKeyword("DrctlSchedule")
)

// SearchAttribute is one attribute's name and Temporal type.
type SearchAttribute struct {
	Name string
	Type string // Keyword, Int, Bool: the names `temporal operator search-attribute create` takes
}

// SearchAttributes lists every attribute drctl sets, in the order the
// registration command names them.
var SearchAttributes = []SearchAttribute{
	{SearchRunbook.GetName(), "Keyword"}, {SearchLock.GetName(), "Keyword"}, {SearchMode.GetName(), "Keyword"},
	{SearchOutcome.GetName(), "Keyword"}, {SearchRTOMs.GetName(), "Int"}, {SearchRPOMs.GetName(), "Int"},
	{SearchMet.GetName(), "Bool"}, {SearchSchedule.GetName(), "Keyword"},
}

// SearchAttributesCommand is the one command that registers drctl's search
// attributes in a namespace of a self-hosted cluster.
func SearchAttributesCommand(namespace string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "temporal operator search-attribute create --namespace %s", namespace)
	for _, a := range SearchAttributes {
		fmt.Fprintf(&b, " --name %s --type %s", a.Name, a.Type)
	}
	return b.String()
}

// StartSearchAttributes are the attributes a run carries from its start.
func StartSearchAttributes(runbook, lock, mode string) temporal.SearchAttributes {
	return temporal.NewSearchAttributes(startAttributes(runbook, lock, mode)...)
}

func startAttributes(runbook, lock, mode string) []temporal.SearchAttributeUpdate {
	return []temporal.SearchAttributeUpdate{SearchRunbook.ValueSet(runbook), SearchLock.ValueSet(lock), SearchMode.ValueSet(mode)}
}

// ObjectivesMet says whether a finished run met its objectives: it
// succeeded, its RTO is within the objective (when there is one), and its
// RPO is measured and within the objective (when there is one). An
// unknown or unmeasured RPO never counts as met.
func ObjectivesMet(rep *Report) bool {
	if rep.State != StateSucceeded || rep.RTO == nil {
		return false
	}
	if rep.Objectives.HasRTO() && *rep.RTO > rep.Objectives.RTO {
		return false
	}
	if rep.Objectives.HasRPO() {
		// An objective nothing measured is not met.
		return !rep.RPOUnknown && rep.RPO != nil && *rep.RPO <= rep.Objectives.RPO
	}
	return true
}

// upsertOutcome records the run's outcome in its search attributes.
func (r *runner) upsertOutcome() {
	sa := []temporal.SearchAttributeUpdate{
		SearchOutcome.ValueSet(r.rep.State), SearchMet.ValueSet(ObjectivesMet(r.rep)),
	}
	if r.rep.RTO != nil {
		sa = append(sa, SearchRTOMs.ValueSet(r.rep.RTO.D().Milliseconds()))
	}
	if r.rep.RPO != nil && !r.rep.RPOUnknown {
		sa = append(sa, SearchRPOMs.ValueSet(r.rep.RPO.D().Milliseconds()))
	}
	// The SDK refuses only malformed updates here (these are not); an
	// attribute the namespace lacks is refused by the server when the
	// workflow task completes, which is why the worker checks at start
	// that all of them are registered (worker.CheckSearchAttributes).
	_ = workflow.UpsertTypedSearchAttributes(r.ctx, sa...)
}

// runChildOptions are the options of a run another workflow starts (a
// drill schedule's firing, a site watch's proposal, a fan-out's children):
// the workflow ID from the run's lock, reused once the lock is free, its
// search attributes (plus extra) and status memo from the start, so it is
// listed and readable before a worker takes it, abandoned by its parent
// unless the caller says otherwise.
func runChildOptions(ctx workflow.Context, in RunInput, startedAt time.Time, summary string, extra ...temporal.SearchAttributeUpdate) workflow.ChildWorkflowOptions {
	rb := &in.Runbook
	mode := in.Mode
	if mode == "" {
		mode = ModeFailover
	}
	return workflow.ChildWorkflowOptions{
		WorkflowID:            WorkflowID(rb.Lock),
		WorkflowTaskTimeout:   3 * time.Second,
		WorkflowIDReusePolicy: enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		ParentClosePolicy:     enumspb.PARENT_CLOSE_POLICY_ABANDON,
		TypedSearchAttributes: temporal.NewSearchAttributes(append(startAttributes(rb.Name, rb.Lock, mode), extra...)...),
		Memo: map[string]any{MemoKey: Status{
			Runbook: rb.Name, Lock: rb.Lock, Mode: mode, StartedBy: in.StartedBy,
			StartedAt: startedAt, Reason: in.Reason, State: StateRunning,
			Total: len(rb.Steps) + len(rb.Preflight),
		}},
		StaticSummary: summary,
	}
}
