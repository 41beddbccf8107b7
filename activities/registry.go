package activities

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/drctl/drctl/runbooks"
)

// ObserveSuffix names an action's Observe activity: "http.check.observe".
const ObserveSuffix = ".observe"

// FailureType is the Temporal application error type of every action failure.
const FailureType = "drctl.ActionFailed"

// NoCredentialType is the Temporal application error type of an action
// that failed because this worker lacks the target's secret (IsNoCredential);
// it is not retried here, and the interpreter asks the other workers.
const NoCredentialType = "drctl.NoCredential"

// FailureDetail travels as the details of an action failure so the workflow
// can report how many attempts were made, and which worker failed.
type FailureDetail struct {
	Attempt int32 `json:"attempt"`
	// Worker is the identity of the worker the attempt ran on (WithWorker).
	Worker string `json:"worker,omitempty"`
}

type workerKey struct{}

// WithWorker returns ctx naming the worker whose activities run under it;
// a worker passes it as the activities' background context so failures
// can say where they happened.
func WithWorker(ctx context.Context, identity string) context.Context {
	return context.WithValue(ctx, workerKey{}, identity)
}

// WorkerOf returns the worker identity WithWorker put in ctx, or "".
func WorkerOf(ctx context.Context) string {
	s, _ := ctx.Value(workerKey{}).(string)
	return s
}

// Registry holds the actions a worker can run and the specs the validator
// checks runbooks against. Native actions (run by the workflow itself, like
// `wait`) have a spec but no activity.
type Registry struct {
	actions map[string]Action
	native  map[string]runbooks.ActionSpec
	// internal are activities the interpreter calls itself (notifications),
	// not runbook actions: not in the catalog, registered on the worker.
	internal []internalActivity
}

type internalActivity struct {
	name string
	fn   any
}

// AddInternal registers an activity the interpreter itself calls (such as
// the notifier), not a runbook action. Its errors cross the same boundary
// as actions' (permanent, retry-after, attempt).
func AddInternal[I, O any](r *Registry, name string, fn func(context.Context, I) (O, error)) {
	r.internal = append(r.internal, internalActivity{name: name, fn: Bounded(fn)})
}

var _ runbooks.Catalog = (*Registry)(nil)

// NewRegistry returns a registry holding the workflow-native actions.
func NewRegistry() *Registry {
	r := &Registry{actions: map[string]Action{}, native: map[string]runbooks.ActionSpec{}}
	for _, s := range NativeSpecs() {
		r.native[s.Name] = s
	}
	return r
}

// Add registers actions; a name may be registered once. Nothing is added
// when any of them is refused.
func (r *Registry) Add(actions ...Action) error {
	seen := map[string]bool{}
	for _, a := range actions {
		name := a.Spec().Name
		if _, dup := r.actions[name]; dup || seen[name] {
			return fmt.Errorf("action %q is registered twice", name)
		}
		if _, dup := r.native[name]; dup {
			return fmt.Errorf("action %q is built into the workflow and cannot be registered", name)
		}
		seen[name] = true
	}
	for _, a := range actions {
		r.actions[a.Spec().Name] = a
	}
	return nil
}

// Lookup implements runbooks.Catalog.
func (r *Registry) Lookup(name string) (runbooks.ActionSpec, bool) {
	if a, ok := r.actions[name]; ok {
		return a.Spec(), true
	}
	s, ok := r.native[name]
	return s, ok
}

// Names implements runbooks.Catalog.
func (r *Registry) Names() []string {
	names := make([]string, 0, len(r.actions)+len(r.native))
	for n := range r.actions {
		names = append(names, n)
	}
	for n := range r.native {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Action returns a registered (non-native) action.
func (r *Registry) Action(name string) (Action, bool) {
	a, ok := r.actions[name]
	return a, ok
}

// ActivityRegistry is the part of a Temporal worker the registry needs.
type ActivityRegistry interface {
	RegisterActivityWithOptions(a any, options activity.RegisterOptions)
}

// RegisterActivities registers every action's Apply under its name and its
// Observe under NAME.observe.
func (r *Registry) RegisterActivities(w ActivityRegistry) {
	for _, name := range r.Names() {
		a, ok := r.actions[name]
		if !ok {
			continue
		}
		w.RegisterActivityWithOptions(applyActivity(a), activity.RegisterOptions{Name: name})
		w.RegisterActivityWithOptions(observeActivity(a), activity.RegisterOptions{Name: name + ObserveSuffix})
	}
	for _, in := range r.internal {
		w.RegisterActivityWithOptions(in.fn, activity.RegisterOptions{Name: in.name})
	}
}

func applyActivity(a Action) func(context.Context, Request) (Result, error) {
	spec := a.Spec()
	return func(ctx context.Context, req Request) (Result, error) {
		info := activity.GetInfo(ctx)
		annotateSpan(ctx, req)
		ctx, stop := KeepAlive(ctx)
		defer stop()
		if err := checkInputs(spec, req.With); err != nil {
			return Result{}, boundaryError(ctx, err)
		}
		if err := inject(ctx, req.Fault, info.Attempt); err != nil {
			return Result{}, boundaryError(ctx, err)
		}
		res, err := a.Apply(ctx, req)
		if err != nil {
			return Result{}, boundaryError(ctx, err)
		}
		res.Attempt, res.Worker = info.Attempt, WorkerOf(ctx)
		return res, nil
	}
}

func observeActivity(a Action) func(context.Context, Request) (Observation, error) {
	spec := a.Spec()
	return func(ctx context.Context, req Request) (Observation, error) {
		annotateSpan(ctx, req)
		if err := checkInputs(spec, req.With); err != nil {
			return Observation{}, boundaryError(ctx, err)
		}
		obs, err := a.Observe(ctx, req)
		if err != nil {
			return Observation{}, boundaryError(ctx, err)
		}
		return obs, nil
	}
}

// annotateSpan adds the run's runbook, step and action to the span the
// tracing interceptor (telemetry.traces) opened for this activity, which
// knows only Temporal's IDs. Without tracing the span is a no-op.
func annotateSpan(ctx context.Context, req Request) {
	span := trace.SpanFromContext(ctx)
	if !span.IsRecording() {
		return
	}
	span.SetAttributes(
		attribute.String("drctl.runbook", req.Run.Runbook),
		attribute.String("drctl.step", req.Step),
		attribute.String("drctl.action", req.Action),
		attribute.String("drctl.mode", req.Run.Mode),
		attribute.String("drctl.lock", req.Run.Lock),
		attribute.Bool("drctl.compensating", req.Compensating),
	)
}

// KeepAlive heartbeats while an activity runs, so a worker that dies is
// noticed within the activity's heartbeat timeout even when the activity
// itself does not report progress. It repeats the last details recorded
// with Heartbeat, so its beats never erase them. Every action gets it from
// the registry; internal activities (the notifier) call it themselves.
// Outside an activity, or without a heartbeat timeout, it does nothing.
func KeepAlive(ctx context.Context) (context.Context, func()) {
	if !activity.IsActivity(ctx) {
		return ctx, func() {}
	}
	timeout := activity.GetInfo(ctx).HeartbeatTimeout
	hb := &heartbeat{}
	ctx = context.WithValue(ctx, heartbeatKey{}, hb)
	if timeout <= 0 {
		return ctx, func() {}
	}
	tctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(max(timeout/3, 10*time.Millisecond))
		defer t.Stop()
		for {
			select {
			case <-tctx.Done():
				return
			case <-t.C:
				hb.beat(ctx)
			}
		}
	}()
	return ctx, func() { cancel(); <-done }
}

type heartbeatKey struct{}

type heartbeat struct {
	mu      sync.Mutex
	details []any
}

func (h *heartbeat) beat(ctx context.Context) {
	h.mu.Lock()
	d := h.details
	h.mu.Unlock()
	activity.RecordHeartbeat(ctx, d...)
}

// Heartbeat records progress details for the running attempt. A retry of
// the same step reads the last details with PreviousHeartbeat; actions use
// it to know what an attempt that died was doing. Outside an activity it
// does nothing.
func Heartbeat(ctx context.Context, details ...any) {
	if !activity.IsActivity(ctx) {
		return
	}
	if hb, ok := ctx.Value(heartbeatKey{}).(*heartbeat); ok {
		hb.mu.Lock()
		hb.details = details
		hb.mu.Unlock()
	}
	activity.RecordHeartbeat(ctx, details...)
}

// PreviousHeartbeat decodes the details the previous attempt of this step
// last recorded; it reports false when there are none.
func PreviousHeartbeat(ctx context.Context, out any) bool {
	if !activity.IsActivity(ctx) || !activity.HasHeartbeatDetails(ctx) {
		return false
	}
	return activity.GetHeartbeatDetails(ctx, out) == nil
}

// boundaryError turns an action error into the Temporal error the workflow
// sees: permanent errors become non-retryable, a RetryAfter error sets the
// next retry delay, and every failure carries the attempt number.
// Cancellation passes through untouched. This is the one place drctl
// builds Temporal errors for activities.
func boundaryError(ctx context.Context, err error) error {
	if ctx.Err() != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)) {
		return err
	}
	var attempt int32
	if activity.IsActivity(ctx) {
		attempt = activity.GetInfo(ctx).Attempt
	}
	opts := temporal.ApplicationErrorOptions{
		NonRetryable: IsPermanent(err),
		Details:      []any{FailureDetail{Attempt: attempt, Worker: WorkerOf(ctx)}},
	}
	if d, ok := RetryDelay(err); ok && !opts.NonRetryable {
		opts.NextRetryDelay = d
	}
	typ := FailureType
	if IsNoCredential(err) {
		typ = NoCredentialType
	}
	return temporal.NewApplicationErrorWithOptions(err.Error(), typ, opts)
}

// Bounded wraps an internal activity (one that is not a runbook action,
// like the notifier) so its errors cross the same boundary as actions'.
func Bounded[I, O any](fn func(context.Context, I) (O, error)) func(context.Context, I) (O, error) {
	return func(ctx context.Context, in I) (O, error) {
		out, err := fn(ctx, in)
		if err != nil {
			return out, boundaryError(ctx, err)
		}
		return out, nil
	}
}

// inject applies a drill's fault before the action runs.
func inject(ctx context.Context, f *Fault, attempt int32) error {
	if f == nil {
		return nil
	}
	if f.Latency > 0 {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(f.Latency.D()):
		}
	}
	switch {
	case f.Permanent:
		return Permanentf("chaos: injected permanent failure")
	case int(attempt) <= f.Fail:
		return fmt.Errorf("chaos: injected failure (attempt %d of %d failing)", attempt, f.Fail)
	}
	return nil
}

func checkInputs(spec runbooks.ActionSpec, with map[string]any) error {
	for _, in := range spec.Inputs {
		if _, ok := with[in.Name]; in.Required && !ok {
			return Permanentf("%s: missing required input %q", spec.Name, in.Name)
		}
	}
	return nil
}
