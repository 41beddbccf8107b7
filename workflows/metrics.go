package workflows

import (
	"slices"
	"sync"

	"go.temporal.io/sdk/workflow"
)

// drctl's own metrics. Workflow code emits them through
// workflow.GetMetricsHandler, the worker's metrics handler (telemetry.metrics)
// made replay-safe by the SDK: nothing is emitted while a worker replays a
// history, and emitting adds no command to it. So a run counts once, on the
// worker that runs it live, and old histories replay unchanged.
//
// Labels are identifiers from the runbook (runbook, action, check, target)
// or one of a few fixed words (mode, outcome), never a run ID or an error
// text, so the number of series stays bounded. The SDK's handler adds
// namespace, task_queue and workflow_type.
const (
	// nameRunsStarted counts runs that started: runbook, mode.
	nameRunsStarted = "drctl_runs_started_total"
	// nameRunsFinished counts runs that ended: runbook, mode, outcome
	// (succeeded, failed, aborted).
	nameRunsFinished = "drctl_runs_finished_total"
	// nameStepDuration is a histogram of action steps' durations in
	// seconds, preflight checks and waits included, approval gates (a
	// person's time) not: runbook, action, outcome (succeeded, failed,
	// cancelled).
	nameStepDuration = "drctl_step_duration_seconds"
	// nameRunRTO is the RTO of the last succeeded run, in seconds:
	// runbook, mode.
	nameRunRTO = "drctl_run_rto_seconds"
	// nameRunRPO is the RPO (largest replication lag at promotion) of the
	// last run that measured one, in seconds: runbook, mode.
	nameRunRPO = "drctl_run_rpo_seconds"
	// nameObjectiveRTO and nameObjectiveRPO are the runbook's stated
	// objectives, in seconds: runbook. Absent when the runbook states none.
	nameObjectiveRTO = "drctl_objective_rto_seconds"
	nameObjectiveRPO = "drctl_objective_rpo_seconds"
	// nameDrillLastSuccess is when a drill of the runbook last succeeded,
	// in Unix seconds: runbook. Seconds since: time() - it.
	nameDrillLastSuccess = "drctl_drill_last_success_timestamp_seconds"
	// nameApprovalsWaiting is how many approval gates of the runbook's
	// run await a decision: runbook.
	nameApprovalsWaiting = "drctl_approvals_waiting"
	// nameReadiness is 1 when the runbook's readiness checks last all
	// passed, else 0: runbook.
	nameReadiness = "drctl_readiness"
	// nameReadinessCheckFailing is 1 while a readiness check fails, 0 once
	// it passes again: runbook, check.
	nameReadinessCheckFailing = "drctl_readiness_check_failing"
	// nameReplicationLag is the replication lag last observed, in
	// seconds: runbook, target.
	nameReplicationLag = "drctl_replication_lag_seconds"
)

// MetricNames lists every metric drctl's workflows export (a dashboard's
// queries are checked against it).
func MetricNames() []string {
	return []string{
		nameRunsStarted, nameRunsFinished, nameStepDuration,
		nameRunRTO, nameRunRPO, nameObjectiveRTO, nameObjectiveRPO,
		nameDrillLastSuccess, nameApprovalsWaiting,
		nameReadiness, nameReadinessCheckFailing, nameReplicationLag,
	}
}

func metricRunStarted(ctx workflow.Context, rep *Report) {
	workflow.GetMetricsHandler(ctx).WithTags(map[string]string{"runbook": rep.Runbook, "mode": modeLabel(rep)}).
		Counter(nameRunsStarted).Inc(1)
}

// metricRunFinished records how the run ended, its RTO and RPO beside the
// runbook's objectives, and when a drill succeeded.
func metricRunFinished(ctx workflow.Context, rep *Report) {
	h := workflow.GetMetricsHandler(ctx)
	runbook := h.WithTags(map[string]string{"runbook": rep.Runbook})
	run := runbook.WithTags(map[string]string{"mode": modeLabel(rep)})
	run.WithTags(map[string]string{"outcome": rep.State}).Counter(nameRunsFinished).Inc(1)
	if rep.RTO != nil {
		run.Gauge(nameRunRTO).Update(rep.RTO.D().Seconds())
	}
	if rep.RPO != nil {
		run.Gauge(nameRunRPO).Update(rep.RPO.D().Seconds())
	}
	if rep.Objectives.HasRTO() {
		runbook.Gauge(nameObjectiveRTO).Update(rep.Objectives.RTO.D().Seconds())
	}
	if rep.Objectives.HasRPO() {
		runbook.Gauge(nameObjectiveRPO).Update(rep.Objectives.RPO.D().Seconds())
	}
	if rep.Mode == ModeDrill && rep.State == StateSucceeded && rep.EndedAt != nil {
		runbook.Gauge(nameDrillLastSuccess).Update(float64(rep.EndedAt.UnixMilli()) / 1000)
	}
}

// metricStepFinished records an ended action step's duration (workflow
// time, from when it was launched to when its result was seen).
func metricStepFinished(ctx workflow.Context, rep *Report, st *StepReport) {
	if st.Kind == KindApproval || st.Action == "" || st.StartedAt == nil || st.EndedAt == nil {
		return
	}
	workflow.GetMetricsHandler(ctx).
		WithTags(map[string]string{"runbook": rep.Runbook, "action": st.Action, "outcome": st.State}).
		Timer(nameStepDuration).Record(st.EndedAt.Sub(*st.StartedAt))
}

func metricApprovalsWaiting(ctx workflow.Context, rep *Report, n int) {
	workflow.GetMetricsHandler(ctx).WithTags(map[string]string{"runbook": rep.Runbook}).
		Gauge(nameApprovalsWaiting).Update(float64(n))
}

// MetricReadiness records a readiness verdict for runbook: ready (1 or 0)
// and, for each check in failing, a failing series at 1. A check this
// worker process last reported failing for runbook that is not in failing
// now goes back to 0, so the series of a recovered check does not stay at
// 1. Call it with every verdict, ready or not.
func MetricReadiness(ctx workflow.Context, runbook string, ready bool, failing []string) {
	h := workflow.GetMetricsHandler(ctx).WithTags(map[string]string{"runbook": runbook})
	h.Gauge(nameReadiness).Update(boolGauge(ready))
	recovered := readinessFailing.update(runbook, failing, workflow.IsReplaying(ctx))
	for _, check := range recovered {
		h.WithTags(map[string]string{"check": check}).Gauge(nameReadinessCheckFailing).Update(0)
	}
	for _, check := range failing {
		h.WithTags(map[string]string{"check": check}).Gauge(nameReadinessCheckFailing).Update(1)
	}
}

// MetricReplicationLag records the replication lag observed on a target
// of runbook, in seconds.
func MetricReplicationLag(ctx workflow.Context, runbook, target string, seconds float64) {
	workflow.GetMetricsHandler(ctx).WithTags(map[string]string{"runbook": runbook, "target": target}).
		Gauge(nameReplicationLag).Update(seconds)
}

func boolGauge(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// readinessFailing remembers, per runbook, the checks this process last
// exported as failing: an OTel gauge series cannot be removed, only set,
// so a recovered check must be set to 0 by name. It holds only what was
// emitted (nothing while replaying, when nothing is emitted) and never
// influences a workflow's commands, so it does not touch determinism.
var readinessFailing = &failingChecks{last: map[string][]string{}}

type failingChecks struct {
	mu   sync.Mutex
	last map[string][]string
}

// update records failing as runbook's failing checks, unless replaying,
// and returns those that were failing before and are not any more.
func (f *failingChecks) update(runbook string, failing []string, replaying bool) []string {
	if replaying {
		return nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var recovered []string
	for _, check := range f.last[runbook] {
		if !slices.Contains(failing, check) {
			recovered = append(recovered, check)
		}
	}
	f.last[runbook] = slices.Clone(failing)
	return recovered
}

// modeLabel is a run's mode as metrics say it: a drill's failback child is
// "failback", not one more failover.
func modeLabel(rep *Report) string {
	if rep.FailbackOf != "" {
		return ModeFailback
	}
	return rep.Mode
}
