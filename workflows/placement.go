package workflows

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/drctl/drctl/activities"
)

// Where actions run. Every worker polls the shared task queue (the one
// runs start on), where workflows and actions that may run anywhere go. A
// worker started in a site (--site) also polls SiteQueue(shared, site),
// where actions that need that site's local reach go (runbooks.Where).
// For each queue it polls, a worker also polls WorkerQueue(queue,
// identity), which only the credential fallback uses: an action that
// failed because its worker lacks the target's secret is offered to the
// other workers polling the queue it was sent to, one at a time (most
// recently seen first), within what is left of the step's deadline, and
// fails only when none holds it. Keying the offer by the queue keeps it in
// the site even when two sites' workers share an identity. An action
// placed in a site with no worker up waits there (its deadline, if any,
// ends the wait); it never runs in another site.

// SiteQueue is the task queue of the workers of site.
func SiteQueue(shared, site string) string { return shared + "@" + site }

// WorkerQueue is the task queue only the workers of queue with this
// identity poll.
func WorkerQueue(queue, identity string) string { return queue + "@worker:" + identity }

// WorkersActivity lists the identities of the workers that polled a task
// queue's activities lately, most recently seen first (a worker reads them
// from the server).
const WorkersActivity = "drctl.Workers"

// siteWait bounds how long a read-only Observe (plan, readiness, a
// drill's steady-state check) waits for a worker of its site.
const siteWait = 10 * time.Second

// observeIn runs a read-only activity (plan, readiness, a drill's steady
// check) with opts, in site: there it waits at most siteWait for a worker
// of the site (a site with none up is a finding, not a wait); on the
// shared queue it waits as long as any activity.
func observeIn(ctx workflow.Context, opts workflow.ActivityOptions, site, name string, req activities.Request, out any) error {
	if site != "" {
		opts.ScheduleToStartTimeout = siteWait
	}
	return runAction(workflow.WithActivityOptions(ctx, opts), site, name, req, out)
}

// placedErrorText is ErrorText, saying so when no worker of site took the
// activity in time.
func placedErrorText(err error, site string) string {
	if site != "" && neverStarted(err) {
		return fmt.Sprintf("no worker of site %s took it within %s", site, siteWait)
	}
	return ErrorText(err)
}

// offerTimeout bounds how long an action offered to one other worker
// waits for it to start: a worker seen lately may be gone since.
const offerTimeout = 10 * time.Second

// placed returns ctx sending activities to site's workers; site "" keeps
// the shared queue.
func placed(ctx workflow.Context, site string) workflow.Context {
	if site == "" {
		return ctx
	}
	return workflow.WithTaskQueue(ctx, SiteQueue(workflow.GetInfo(ctx).TaskQueueName, site))
}

// runAction runs an action's activity (name: the action, or its Observe)
// in site ("" for anywhere) with ctx's options, and when the worker that
// took it lacks the target's secret, offers it to the other workers of
// that queue in turn.
func runAction(ctx workflow.Context, site, name string, req activities.Request, out any) error {
	start := workflow.Now(ctx)
	err := workflow.ExecuteActivity(placed(ctx, site), name, req).Get(ctx, out)
	if !isNoCredential(err) {
		return err
	}
	return offerElsewhere(ctx, site, name, req, out, err, start)
}

func offerElsewhere(ctx workflow.Context, site, name string, req activities.Request, out any, first error, start time.Time) error {
	shared := workflow.GetInfo(ctx).TaskQueueName
	queue := shared
	if site != "" {
		queue = SiteQueue(shared, site)
	}
	asked := []string{workerOf(first)}
	last := first
	lctx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 30 * time.Second,
		RetryPolicy:         &temporal.RetryPolicy{MaximumAttempts: 3},
	})
	var workers []string
	if err := workflow.ExecuteActivity(lctx, WorkersActivity, queue).Get(ctx, &workers); err != nil {
		return noCredentialError(first, asked, fmt.Sprintf("the other workers of %s could not be listed: %s", queue, ErrorText(err)))
	}
	opts := workflow.GetActivityOptions(ctx)
	for _, w := range workers {
		if slices.Contains(asked, w) {
			continue
		}
		asked = append(asked, w)
		o := opts
		o.TaskQueue = WorkerQueue(queue, w)
		o.ScheduleToStartTimeout = offerTimeout
		if o.ScheduleToCloseTimeout > 0 {
			// The step's deadline bounds all attempts, offers included.
			left := o.ScheduleToCloseTimeout - workflow.Now(ctx).Sub(start)
			if left <= 0 {
				return noCredentialError(last, asked[:len(asked)-1], "the step's deadline passed before another worker could be asked")
			}
			o.ScheduleToCloseTimeout = left
			o.ScheduleToStartTimeout = min(offerTimeout, left)
		}
		if o.ActivityID != "" {
			o.ActivityID += "@" + w
		}
		err := workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, o), name, req).Get(ctx, out)
		var te *temporal.TimeoutError
		switch {
		case err == nil:
			return nil
		case isNoCredential(err):
			last = err
		case errors.As(err, &te) && te.TimeoutType() == enumspb.TIMEOUT_TYPE_SCHEDULE_TO_START:
			// gone since it last polled: ask the next
		default:
			return err
		}
	}
	return noCredentialError(last, asked, "")
}

// neverStarted reports whether err says no worker started the activity
// in time (a step placed in a site waits there at most its deadline, as
// its schedule-to-start timeout).
func neverStarted(err error) bool {
	var te *temporal.TimeoutError
	return errors.As(err, &te) && te.TimeoutType() == enumspb.TIMEOUT_TYPE_SCHEDULE_TO_START
}

func isNoCredential(err error) bool {
	var ae *temporal.ApplicationError
	return errors.As(err, &ae) && ae.Type() == activities.NoCredentialType
}

func workerOf(err error) string {
	var ae *temporal.ApplicationError
	if errors.As(err, &ae) && ae.HasDetails() {
		var d activities.FailureDetail
		if ae.Details(&d) == nil {
			return d.Worker
		}
	}
	return ""
}

// noCredentialError says that no live worker holds the secret, naming the
// workers asked.
func noCredentialError(last error, asked []string, why string) error {
	var names []string
	for _, w := range asked {
		if w != "" {
			names = append(names, w)
		}
	}
	msg := fmt.Sprintf("%s; no live worker holds these credentials (asked: %s)", ErrorText(last), strings.Join(names, ", "))
	if why != "" {
		msg += "; " + why
	}
	return temporal.NewNonRetryableApplicationError(msg, activities.NoCredentialType, nil, activities.FailureDetail{Attempt: attemptsOf(last)})
}
