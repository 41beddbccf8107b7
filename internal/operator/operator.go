// Package operator is the operator's side of a run, shared by the CLI, the
// Slack integration and tests: start a run (one per lock), read its status
// with or without a worker, decide approval gates, pause, resume and abort,
// list runs, and export a run's history for replay tests.
//
// Decisions and controls go as Updates, so the caller learns at once whether
// the workflow's validator accepted them. An Update needs a live worker;
// when none answers within UpdateWait the message is sent as a Signal
// instead, which the server stores and the workflow checks by the same rules
// when a worker returns.
package operator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"time"

	"github.com/drctl/drctl/internal/sshsig"
	"golang.org/x/crypto/ssh"

	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/serviceerror"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/drctl/drctl/activities"
	"github.com/drctl/drctl/runbooks"
	"github.com/drctl/drctl/workflows"
)

// Operator acts on runs as one identity.
type Operator struct {
	Client    client.Client
	TaskQueue string
	// Namespace is the client's namespace, named in hints; empty: default.
	Namespace string
	Identity  string
	// UpdateWait is how long an Update may wait for a worker before the
	// message is sent as a Signal. Default 10s.
	UpdateWait time.Duration
	// Signer, when set, signs this operator's decisions (LoadSigner).
	Signer ssh.Signer
}

// RunID turns what an operator types (a lock or a workflow ID) into a
// workflow ID.
func RunID(arg string) string {
	if strings.HasPrefix(arg, workflows.WorkflowIDPrefix) {
		return arg
	}
	return workflows.WorkflowID(arg)
}

// runIDRE is the shape of a Temporal run ID (a UUID).
var runIDRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// locate turns what an operator types into a workflow ID and run ID: a
// run ID (any run, also an older one of a lock, as `drctl list` shows
// them) is looked up in visibility; a lock or workflow ID means its
// latest run (run ID empty).
func (o *Operator) locate(ctx context.Context, run string) (string, string, error) {
	if !runIDRE.MatchString(run) {
		return RunID(run), "", nil
	}
	// The shape check above keeps the query's literal to hex and dashes.
	resp, err := o.Client.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Query: fmt.Sprintf("RunId = '%s'", run), PageSize: 1})
	if err != nil {
		return "", "", fmt.Errorf("look up run %s: %w", run, err)
	}
	if len(resp.GetExecutions()) == 0 {
		return "", "", fmt.Errorf("no run with run ID %s; `drctl list` shows the runs", run)
	}
	e := resp.GetExecutions()[0].GetExecution()
	return e.GetWorkflowId(), e.GetRunId(), nil
}

// LockHeldError says a run already holds the lock.
type LockHeldError struct {
	Lock       string
	WorkflowID string
	RunID      string
	StartedBy  string
	StartedAt  time.Time
	Runbook    string
}

func (e *LockHeldError) Error() string {
	who := e.StartedBy
	if who == "" {
		who = "someone"
	}
	return fmt.Sprintf("lock %q is held by run %s (runbook %s), started by %s at %s; follow it with `drctl watch %s`, or stop it with `drctl abort %s --reason ...` before starting another",
		e.Lock, e.WorkflowID, e.Runbook, who, e.StartedAt.UTC().Format(time.RFC3339), e.Lock, e.Lock)
}

// Started identifies a run that was started.
type Started struct {
	WorkflowID string
	RunID      string
}

// Start starts a run of rb. A second run of the same lock is refused with a
// LockHeldError naming the run that holds it.
func (o *Operator) Start(ctx context.Context, rb *runbooks.Runbook, params map[string]string, mode, reason string) (Started, error) {
	return o.StartWith(ctx, rb, StartOptions{Params: params, Mode: mode, Reason: reason})
}

// StartOptions are the choices of a start beyond the runbook.
type StartOptions struct {
	Params map[string]string
	Mode   string
	Reason string
	// Chaos injects faults into steps (drills only).
	Chaos []activities.Fault
	// Signers, when any, make the run accept signed CLI decisions only
	// (LoadAllowedSigners).
	Signers []workflows.Signer
	// Failback is a drill's way back (drills only).
	Failback *workflows.Failback
}

// StartWith is Start with every option.
func (o *Operator) StartWith(ctx context.Context, rb *runbooks.Runbook, so StartOptions) (Started, error) {
	params, mode, reason := so.Params, so.Mode, so.Reason
	if mode == "" {
		mode = workflows.ModeFailover
	}
	in := workflows.RunInput{Runbook: *rb, Params: params, Mode: mode, StartedBy: o.Identity, Reason: reason, Chaos: so.Chaos, Signers: so.Signers, Failback: so.Failback}
	if err := workflows.CheckInput(in); err != nil {
		return Started{}, err
	}
	id := workflows.WorkflowID(rb.Lock)
	now := time.Now().UTC()
	opts := client.StartWorkflowOptions{
		ID:                                       id,
		TaskQueue:                                o.TaskQueue,
		WorkflowIDReusePolicy:                    enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		WorkflowIDConflictPolicy:                 enumspb.WORKFLOW_ID_CONFLICT_POLICY_FAIL,
		WorkflowExecutionErrorWhenAlreadyStarted: true,
		// A workflow task handed to a worker that died (its connection
		// still open, as after a site's power loss) is handed to another
		// after 3 s instead of the default 10 s. drctl's tasks take
		// milliseconds.
		WorkflowTaskTimeout: 3 * time.Second,
		Memo: map[string]any{workflows.MemoKey: workflows.Status{
			Runbook: rb.Name, Lock: rb.Lock, Mode: mode, StartedBy: o.Identity, StartedAt: now,
			Reason: reason, State: workflows.StateRunning, Total: len(rb.Steps) + len(rb.Preflight),
		}},
		StaticSummary:         fmt.Sprintf("%s (%s) started by %s", rb.Name, mode, o.Identity),
		TypedSearchAttributes: workflows.StartSearchAttributes(rb.Name, rb.Lock, mode),
	}
	run, err := o.Client.ExecuteWorkflow(ctx, opts, workflows.RunbookWorkflow, in)
	if err != nil {
		if hint := o.searchAttributesHint(err); hint != "" {
			return Started{}, fmt.Errorf("start run of %s: %w; %s", rb.Name, err, hint)
		}
		var started *serviceerror.WorkflowExecutionAlreadyStarted
		if errors.As(err, &started) {
			held := &LockHeldError{Lock: rb.Lock, WorkflowID: id, RunID: started.RunId}
			if st, err := o.Status(ctx, id); err == nil {
				held.StartedBy, held.StartedAt, held.Runbook, held.RunID = st.StartedBy, st.StartedAt, st.Runbook, st.RunID
			}
			return Started{}, held
		}
		return Started{}, fmt.Errorf("start run of %s: %w", rb.Name, err)
	}
	return Started{WorkflowID: run.GetID(), RunID: run.GetRunID()}, nil
}

// RunStatus is what Status reports.
type RunStatus struct {
	workflows.Status
	WorkflowID string `json:"workflow_id"`
	RunID      string `json:"run_id"`
	// Closed is true once the workflow has ended.
	Closed bool `json:"closed"`
	// InFlight is the attempt in flight of each running step and
	// compensation (Temporal's pending activities): a retrying step's
	// attempt, last error and next try.
	InFlight []Attempt `json:"in_flight,omitempty"`
}

// Status reads a run's memo and its attempts in flight, from one
// description of its workflow. It needs no worker.
func (o *Operator) Status(ctx context.Context, run string) (RunStatus, error) {
	id, runID, err := o.locate(ctx, run)
	if err != nil {
		return RunStatus{}, err
	}
	d, err := o.Client.DescribeWorkflow(ctx, id, runID)
	if err != nil {
		return RunStatus{}, notFound(run, err)
	}
	info := d.RawResponse.GetWorkflowExecutionInfo()
	st := RunStatus{WorkflowID: id, RunID: info.GetExecution().GetRunId()}
	if f := info.GetMemo().GetFields()[workflows.MemoKey]; f != nil {
		if err := converter.GetDefaultDataConverter().FromPayload(f, &st.Status); err != nil {
			return st, fmt.Errorf("run %s: unreadable memo: %w", id, err)
		}
	}
	st.Closed = info.GetStatus() != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING
	if st.Closed && st.State == workflows.StateRunning {
		// The run ended without writing its final state (terminated, timed out).
		st.State = closeState(info)
	}
	if !st.Closed {
		st.InFlight = inFlight(d.RawResponse.GetPendingActivities(), st.Running, time.Now())
	}
	return st, nil
}

// Report returns the full run report: the result or failure of a closed
// run, or the progress query of a running one (which needs a worker).
func (o *Operator) Report(ctx context.Context, run string) (*workflows.Report, error) {
	st, err := o.Status(ctx, run)
	if err != nil {
		return nil, err
	}
	return o.ReportOf(ctx, st)
}

// ReportOf is Report of the run st describes, as Status read it: a view
// that shows both describes the workflow once. A running step's attempts
// are the ones in flight in st.
func (o *Operator) ReportOf(ctx context.Context, st RunStatus) (*workflows.Report, error) {
	if st.Closed {
		return o.result(ctx, st.WorkflowID, st.RunID)
	}
	if msg := o.NoWorker(ctx); msg != "" {
		return nil, errors.New(msg) // a query would only wait
	}
	// A query needs a worker; without one, say so soon rather than wait
	// for the server's own timeout.
	qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	v, err := o.Client.QueryWorkflow(qctx, st.WorkflowID, st.RunID, workflows.QueryProgress)
	if err != nil {
		return nil, fmt.Errorf("run %s: no worker answered the progress query (%v); `drctl status` shows the summary kept without a worker", st.WorkflowID, err)
	}
	var rep workflows.Report
	if err := v.Get(&rep); err != nil {
		return nil, err
	}
	withAttempts(&rep, st.InFlight)
	return &rep, nil
}

// Wait blocks until the run ends and returns its report.
func (o *Operator) Wait(ctx context.Context, run string) (*workflows.Report, error) {
	return o.result(ctx, RunID(run), "")
}

func (o *Operator) result(ctx context.Context, id, runID string) (*workflows.Report, error) {
	var rep workflows.Report
	err := o.Client.GetWorkflow(ctx, id, runID).Get(ctx, &rep)
	if err == nil {
		return &rep, nil
	}
	var ae *temporal.ApplicationError
	if errors.As(err, &ae) && ae.HasDetails() && ae.Details(&rep) == nil {
		return &rep, nil
	}
	return nil, fmt.Errorf("run %s: %w", id, err)
}

// ErrNoRun is what errors.Is finds in the error for a run that does not
// exist.
var ErrNoRun = errors.New("no such run")

// noRun is the error for a run that does not exist.
type noRun string

func (e noRun) Error() string        { return string(e) }
func (e noRun) Is(target error) bool { return target == ErrNoRun }

func notFound(run string, err error) error {
	var nf *serviceerror.NotFound
	if errors.As(err, &nf) {
		return noRun(fmt.Sprintf("no run %q (workflow %s) exists; `drctl list` shows the runs", run, RunID(run)))
	}
	return fmt.Errorf("run %s: %w", RunID(run), err)
}

// checkWho refuses, before anything is sent, an identity or reason the
// workflow would refuse (or that could not be printed safely).
func (o *Operator) checkWho(reason string) error {
	if err := workflows.CheckIdentity(o.Identity); err != nil {
		return fmt.Errorf("--as: %w", err)
	}
	if err := workflows.CheckReason(reason); err != nil {
		return fmt.Errorf("--reason: %w", err)
	}
	return nil
}

// Decide approves or rejects an approval gate. The returned error carries
// the workflow validator's reason when the decision is refused.
func (o *Operator) Decide(ctx context.Context, run, step string, approve bool, reason string) (Delivery, error) {
	d, _, err := o.DecideResult(ctx, run, step, approve, reason)
	return d, err
}

// DecideResult is Decide that also returns the workflow's answer (empty
// when the decision was queued as a signal): who decided and, for a gate
// with min_approvals, how many approvals it still needs.
func (o *Operator) DecideResult(ctx context.Context, run, step string, approve bool, reason string) (Delivery, workflows.DecisionResult, error) {
	var res workflows.DecisionResult
	if err := o.checkWho(reason); err != nil {
		return "", res, err
	}
	d := workflows.Decision{Step: step, Approve: approve, By: o.Identity, Reason: reason, Via: workflows.ViaCLI}
	st, err := o.Status(ctx, run)
	if err != nil {
		return "", res, err
	}
	if o.Signer != nil {
		// The signature names this run (workflow and run ID), and the
		// decision goes to this run only (sendTo pins the run ID).
		d.SignedAt = time.Now().UTC()
		if d.Signature, err = sshsig.Sign(o.Signer, workflows.SignatureNamespace, workflows.SignedText(st.WorkflowID, st.RunID, d)); err != nil {
			return "", res, err
		}
	}
	del, err := o.sendTo(ctx, st, workflows.UpdateDecide, workflows.SignalDecide, d, &res)
	return del, res, err
}

// DecideAs sends a decision made through another front end (Slack), which
// has already established who decided and their groups. runID, when set,
// is the run that asked (the message the click came from): a decision for
// an earlier run of the same lock is refused, never applied to a newer one.
// updateID makes the decision idempotent: the same ID twice (a double
// click) is one decision. It waits for a worker like Decide, but never
// falls back to a signal: the front end must be able to tell the clicker
// the outcome.
func (o *Operator) DecideAs(ctx context.Context, run, runID string, d workflows.Decision, updateID string) (workflows.DecisionResult, error) {
	var res workflows.DecisionResult
	st, err := o.Status(ctx, run)
	if err != nil {
		return res, err
	}
	if runID != "" && runID != st.RunID {
		return res, fmt.Errorf("this message belongs to an earlier run of %s (%s); the current run is %s — decide from its own message or with drctl approve", st.WorkflowID, runID, st.RunID)
	}
	if st.Closed {
		return res, fmt.Errorf("run %s has ended (%s); it takes no more decisions", st.WorkflowID, st.State)
	}
	h, err := o.Client.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
		WorkflowID:   st.WorkflowID,
		RunID:        st.RunID,
		UpdateID:     updateID,
		UpdateName:   workflows.UpdateDecide,
		Args:         []any{d},
		WaitForStage: client.WorkflowUpdateStageCompleted,
	})
	if err == nil {
		err = h.Get(ctx, &res)
	}
	if err != nil {
		return res, refused(err)
	}
	return res, nil
}

// Control pauses, resumes or aborts a run.
func (o *Operator) Control(ctx context.Context, run, op, reason string) (Delivery, error) {
	if err := o.checkWho(reason); err != nil {
		return "", err
	}
	c := workflows.Control{Op: op, By: o.Identity, Reason: reason}
	return o.send(ctx, run, workflows.UpdateControl, workflows.SignalControl, c, nil)
}

// Delivery says how a message reached the run.
type Delivery string

// Deliveries.
const (
	Accepted Delivery = "accepted" // the workflow validated and applied it
	Queued   Delivery = "queued"   // no worker answered: stored as a signal, checked when one returns
)

func (o *Operator) send(ctx context.Context, run, update, signal string, arg, result any) (Delivery, error) {
	st, err := o.Status(ctx, run)
	if err != nil {
		return "", err
	}
	return o.sendTo(ctx, st, update, signal, arg, result)
}

// sendTo is send to the run st names (read once by the caller).
func (o *Operator) sendTo(ctx context.Context, st RunStatus, update, signal string, arg, result any) (Delivery, error) {
	if st.Closed {
		return "", fmt.Errorf("run %s has ended (%s); it takes no more messages", st.WorkflowID, st.State)
	}
	wait := o.UpdateWait
	if wait == 0 {
		wait = 10 * time.Second
	}
	if n, err := o.Pollers(ctx); err == nil && n == 0 {
		// No worker polls the queue: an Update could only time out.
		wait = 0
	}
	uctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	h, err := o.Client.UpdateWorkflow(uctx, client.UpdateWorkflowOptions{
		WorkflowID:   st.WorkflowID,
		RunID:        st.RunID, // never a newer run of the same lock
		UpdateName:   update,
		Args:         []any{arg},
		WaitForStage: client.WorkflowUpdateStageCompleted,
	})
	if err == nil {
		err = h.Get(uctx, result)
	}
	// The server may give up waiting a moment before the client's deadline
	// does: its timeout says the same as ours.
	var waited *client.WorkflowUpdateServiceTimeoutOrCanceledError
	switch {
	case err == nil:
		return Accepted, nil
	case (uctx.Err() != nil || errors.As(err, &waited)) && ctx.Err() == nil:
		// No worker took the update in time. Send the same message as a
		// signal, which the server stores; should the update still be
		// delivered later, the workflow's rules refuse the second copy
		// (the step is decided, the run already paused), so it is applied
		// once.
		if err := o.Client.SignalWorkflow(ctx, st.WorkflowID, st.RunID, signal, arg); err != nil {
			return "", fmt.Errorf("run %s: no worker answered and the signal failed: %w", st.WorkflowID, err)
		}
		return Queued, nil
	default:
		return "", refused(err)
	}
}

// refused strips Temporal's wrapping from a validator's rejection.
func refused(err error) error {
	var ae *temporal.ApplicationError
	if errors.As(err, &ae) {
		return errors.New(ae.Error())
	}
	return err
}

// Summary is one line of `drctl list`.
type Summary struct {
	WorkflowID string           `json:"workflow_id"`
	RunID      string           `json:"run_id"`
	Status     workflows.Status `json:"status"`
	Closed     bool             `json:"closed"`
	CloseState string           `json:"close_state"`
}

// List returns recent runs, newest first.
func (o *Operator) List(ctx context.Context, limit int) ([]Summary, error) {
	return o.ListWith(ctx, ListFilter{Limit: limit})
}

// ListFilter narrows `drctl list`.
type ListFilter struct {
	Limit int
	// State: running (still open), closed, or a run state (succeeded,
	// failed, aborted, paused...). Empty: any.
	State string
	// Runbook: runs of this runbook only.
	Runbook string
	// Waiting: only runs with a gate awaiting a decision.
	Waiting bool
	// StartedBy: only runs this identity started.
	StartedBy string
}

// ListWith returns recent runs matching f, newest first.
func (o *Operator) ListWith(ctx context.Context, f ListFilter) ([]Summary, error) {
	switch f.State {
	case "", "running", "closed", workflows.StateSucceeded, workflows.StateFailed, workflows.StateAborted, workflows.StatePaused,
		workflows.StateCompensating, workflows.StateAborting, "terminated", "timed_out", "canceled":
	default:
		return nil, fmt.Errorf("--state %q: use running, closed, succeeded, failed, aborted, paused, compensating, aborting, terminated, timed_out or canceled", f.State)
	}
	query := fmt.Sprintf("WorkflowType = '%s'", workflows.RunbookWorkflow)
	if f.Runbook != "" {
		if err := runbooks.CheckName(f.Runbook); err != nil {
			return nil, err
		}
		query += fmt.Sprintf(" AND %s = '%s'", workflows.SearchRunbook.GetName(), f.Runbook)
	}
	switch f.State {
	case "running":
		query += " AND ExecutionStatus = 'Running'"
	case "closed":
		query += " AND ExecutionStatus != 'Running'"
	}
	if f.Waiting {
		query += " AND ExecutionStatus = 'Running'"
	}
	var out []Summary
	err := o.page(ctx, query, f.Limit, func(e *workflowpb.WorkflowExecutionInfo) bool {
		s := Summary{WorkflowID: e.GetExecution().GetWorkflowId(), RunID: e.GetExecution().GetRunId(), Status: memoStatus(e)}
		s.Closed = e.GetStatus() != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING
		s.CloseState = closeState(e)
		state := s.Status.State
		if s.Closed && (state == "" || state == workflows.StateRunning) {
			state = s.CloseState
		}
		switch {
		case f.State != "" && f.State != "running" && f.State != "closed" && state != f.State:
		case f.Waiting && len(s.Status.Waiting) == 0:
		case f.StartedBy != "" && s.Status.StartedBy != f.StartedBy:
		default:
			out = append(out, s)
		}
		return len(out) < f.Limit
	})
	return out, err
}

// page calls take on each execution matching a visibility query, newest
// first, page by page, until take returns false or none are left.
func (o *Operator) page(ctx context.Context, query string, limit int, take func(*workflowpb.WorkflowExecutionInfo) bool) error {
	var token []byte
	for {
		resp, err := o.Client.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Query: query, PageSize: int32(min(max(limit, 1), 1000)), NextPageToken: token})
		if err != nil {
			return fmt.Errorf("list runs: %w%s", err, o.searchAttributesSuffix(err))
		}
		for _, e := range resp.GetExecutions() {
			if !take(e) {
				return nil
			}
		}
		if token = resp.GetNextPageToken(); len(token) == 0 {
			return nil
		}
	}
}

// memoStatus is the run summary an execution's memo holds (zero when it
// holds none, or one this build cannot read).
func memoStatus(e *workflowpb.WorkflowExecutionInfo) workflows.Status {
	var st workflows.Status
	if m := e.GetMemo().GetFields()[workflows.MemoKey]; m != nil {
		_ = converter.GetDefaultDataConverter().FromPayload(m, &st)
	}
	return st
}

// closeState is an execution's Temporal status in lower case (running,
// completed, failed, terminated, timed_out...), from the enum's proto name:
// its String() is CamelCase.
func closeState(e *workflowpb.WorkflowExecutionInfo) string {
	return strings.ToLower(strings.TrimPrefix(enumspb.WorkflowExecutionStatus_name[int32(e.GetStatus())], "WORKFLOW_EXECUTION_STATUS_"))
}

// ExportHistory writes the run's full event history as JSON, in the format
// `temporal workflow show --output json` writes and the replayer reads.
func (o *Operator) ExportHistory(ctx context.Context, run string, w io.Writer) error {
	id, runID, err := o.locate(ctx, run)
	if err != nil {
		return err
	}
	it := o.Client.GetWorkflowHistory(ctx, id, runID, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	h := &historypb.History{}
	for it.HasNext() {
		e, err := it.Next()
		if err != nil {
			return notFound(run, err)
		}
		h.Events = append(h.Events, e)
	}
	b, err := protojson.MarshalOptions{Multiline: true, Indent: "  "}.Marshal(h)
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// Plan validates nothing (the caller has) and asks a worker to observe
// every step it can without acting.
func (o *Operator) Plan(ctx context.Context, rb *runbooks.Runbook, params map[string]string) (*workflows.PlanResult, error) {
	opts := client.StartWorkflowOptions{
		ID:                       fmt.Sprintf("drctl-plan-%s-%d", rb.Lock, time.Now().UnixNano()),
		TaskQueue:                o.TaskQueue,
		WorkflowExecutionTimeout: 2 * time.Minute,
	}
	run, err := o.Client.ExecuteWorkflow(ctx, opts, workflows.PlanWorkflow, workflows.PlanInput{Runbook: *rb, Params: params, StartedBy: o.Identity})
	if err != nil {
		return nil, fmt.Errorf("start plan: %w", err)
	}
	var res workflows.PlanResult
	if err := run.Get(ctx, &res); err != nil {
		if ctx.Err() != nil {
			// Nobody waits for this plan any more: end it now rather
			// than leave it queued for its whole timeout.
			tctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			_ = o.Client.TerminateWorkflow(tctx, run.GetID(), run.GetRunID(), "drctl plan gave up waiting for a worker")
			cancel()
		}
		return nil, fmt.Errorf("plan: %w", err)
	}
	return &res, nil
}

// Pollers counts the workers polling the operator's task queue for
// workflow tasks now (as the server saw them in the last minute or so).
func (o *Operator) Pollers(ctx context.Context) (int, error) {
	resp, err := o.Client.DescribeTaskQueue(ctx, o.TaskQueue, enumspb.TASK_QUEUE_TYPE_WORKFLOW)
	if err != nil {
		return 0, fmt.Errorf("describe task queue %s: %w", o.TaskQueue, err)
	}
	return len(resp.GetPollers()), nil
}

// SiteWorkers counts the workers of site polling its task queue for
// actions now (as the server saw them in the last minute).
func (o *Operator) SiteWorkers(ctx context.Context, site string) (int, error) {
	q := workflows.SiteQueue(o.TaskQueue, site)
	resp, err := o.Client.DescribeTaskQueue(ctx, q, enumspb.TASK_QUEUE_TYPE_ACTIVITY)
	if err != nil {
		return 0, fmt.Errorf("describe task queue %s: %w", q, err)
	}
	n := 0
	for _, p := range resp.GetPollers() {
		if at := p.GetLastAccessTime(); at != nil && time.Since(at.AsTime()) <= time.Minute {
			n++
		}
	}
	return n, nil
}

// Unserved says what of a plan no live worker can do: each site a step is
// placed in that has no worker, and each step whose target's credentials
// no worker holds. Empty: every step has a worker that can run it.
func (o *Operator) Unserved(ctx context.Context, res *workflows.PlanResult) []string {
	var out []string
	bySite := map[string][]string{}
	var sites []string
	for _, p := range res.Steps {
		if p.Site == "" {
			continue
		}
		if _, seen := bySite[p.Site]; !seen {
			sites = append(sites, p.Site)
		}
		bySite[p.Site] = append(bySite[p.Site], p.ID)
	}
	for _, site := range sites {
		// The server remembers a stopped worker's last poll for a minute;
		// an Observe no worker of the site took in time says it first.
		waited := false
		for _, p := range res.Steps {
			waited = waited || p.Site == site && p.Unserved == workflows.UnservedSite
		}
		if n, err := o.SiteWorkers(ctx, site); waited || err == nil && n == 0 {
			out = append(out, fmt.Sprintf("no worker of site %s is polling task queue %s, and %s must run there (the site's local reach, or run_on): start one with drctl worker --site %s",
				site, workflows.SiteQueue(o.TaskQueue, site), strings.Join(bySite[site], ", "), site))
		}
	}
	for _, p := range res.Steps {
		if p.Unserved == workflows.UnservedCredentials {
			out = append(out, fmt.Sprintf("step %s: no live worker holds the credentials of its target: give a worker that can reach it the variable or file its credentials name", p.ID))
		}
	}
	return out
}

// NoWorker says, when no worker polls the task queue, what that means for
// a run; it is empty when one does or when the server cannot tell.
func (o *Operator) NoWorker(ctx context.Context) string {
	n, err := o.Pollers(ctx)
	if err != nil || n > 0 {
		return ""
	}
	return fmt.Sprintf("no worker is polling task queue %q: nothing of the run happens until one starts (drctl worker --task-queue %s)", o.TaskQueue, o.TaskQueue)
}

// Terminate ends a run at once, without compensations, releasing its lock:
// for a run no worker will ever pick up. The reason and who asked are
// recorded in the history.
// It returns the steps that had changed something, which no compensation
// will now undo (from the run's memo).
func (o *Operator) Terminate(ctx context.Context, run, reason string) ([]string, error) {
	if err := o.checkWho(reason); err != nil {
		return nil, err
	}
	st, err := o.Status(ctx, run)
	if err != nil {
		return nil, err
	}
	if st.Closed {
		return nil, fmt.Errorf("run %s has ended (%s)", st.WorkflowID, st.State)
	}
	return st.Changed, o.Client.TerminateWorkflow(ctx, st.WorkflowID, st.RunID, fmt.Sprintf("terminated by %s: %s (no compensation ran)", o.Identity, reason))
}

// JSON is a helper for --output json.
func JSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// searchAttributesHint names the registration command when err says the
// namespace does not know one of drctl's search attributes.
func (o *Operator) searchAttributesHint(err error) string {
	var bad *serviceerror.InvalidArgument
	if !errors.As(err, &bad) || !strings.Contains(strings.ToLower(bad.Error()), "search attribute") {
		return ""
	}
	ns := o.Namespace
	if ns == "" {
		ns = "default"
	}
	return "register drctl's search attributes once with: " + workflows.SearchAttributesCommand(ns)
}
