package runbooks

import (
	"errors"
	"fmt"
)

// CheckBounds reports the first number of rb outside the bounds above
// (MaxDuration, MaxAttempts, MaxBackoff). Validate reports the same with
// file:line; the workflow calls this before a run starts, because its input
// may come from anywhere that speaks to Temporal, and a number out of range
// there (say max_attempts 2^31, which overflows Temporal's int32) would
// wedge the run with its lock held.
func CheckBounds(rb *Runbook) error {
	var errs []error
	dur := func(what string, d Duration) {
		if d < 0 || d > MaxDuration {
			errs = append(errs, fmt.Errorf("%s %s is outside 0s..%s", what, d, MaxDuration))
		}
	}
	retry := func(what string, r *RetryPolicy) {
		if r == nil {
			return
		}
		if r.MaxAttempts < 0 || r.MaxAttempts > MaxAttempts {
			errs = append(errs, fmt.Errorf("%s retry.max_attempts %d is outside 0..%d", what, r.MaxAttempts, MaxAttempts))
		}
		if r.BackoffCoefficient != 0 && (r.BackoffCoefficient < 1 || r.BackoffCoefficient > MaxBackoff) {
			errs = append(errs, fmt.Errorf("%s retry.backoff %v is outside 1..%v", what, r.BackoffCoefficient, MaxBackoff))
		}
		dur(what+" retry.initial_interval", r.InitialInterval)
		dur(what+" retry.max_interval", r.MaxInterval)
	}
	dur("objectives.rto", rb.Objectives.RTO)
	dur("objectives.rpo", rb.Objectives.RPO)
	if d := rb.Objectives.DrillEvery; d != 0 && (d < MinPeriod || d > MaxPeriod) {
		errs = append(errs, fmt.Errorf("objectives.drill_every %s is outside %s..%s", d, MinPeriod, MaxPeriod))
	}
	if o := rb.Objectives.Readiness; o != nil && (o.Target <= 0 || o.Target >= 100 || o.Window < MinPeriod || o.Window > MaxPeriod) {
		errs = append(errs, fmt.Errorf("objectives.readiness %s is outside (0%%, 100%%) over %s..%s", o, MinPeriod, MaxPeriod))
	}
	// Sites name task queues: the workflow's input may not have been
	// through Validate.
	for _, t := range rb.Targets {
		if t.Site != "" {
			if err := CheckSite(t.Site); err != nil {
				errs = append(errs, fmt.Errorf("target %s: %w", t.Name, err))
			}
		}
	}
	for _, list := range [][]Step{rb.Preflight, rb.Steps} {
		for _, s := range list {
			what := "step " + s.ID + ":"
			if s.RunOn != "" && s.RunOn != RunOnAny {
				if err := CheckSite(s.RunOn); err != nil {
					errs = append(errs, fmt.Errorf("%s run_on: %w", what, err))
				}
			}
			dur(what+" timeout", s.Timeout)
			dur(what+" deadline", s.Deadline)
			dur(what+" heartbeat", s.Heartbeat)
			retry(what, s.Retry)
			if c := s.Compensate; c != nil {
				dur(what+" compensate.timeout", c.Timeout)
				retry(what+" compensate", c.Retry)
			}
			if s.MaxParallel < 0 || s.MaxParallel > MaxParallel {
				errs = append(errs, fmt.Errorf("%s max_parallel %d is outside 1..%d", what, s.MaxParallel, MaxParallel))
			}
			if s.Runbook != "" && s.Child == nil {
				errs = append(errs, fmt.Errorf("%s runs %s, which the input does not carry (load the runbook with runbooks.Load)", what, s.Runbook))
			}
			if s.Child != nil {
				for _, cs := range s.Child.Steps {
					if cs.Child != nil || cs.Runbook != "" {
						errs = append(errs, fmt.Errorf("%s %s runs runbooks itself; one level is the most", what, s.Runbook))
					}
				}
				if err := CheckBounds(s.Child); err != nil {
					errs = append(errs, fmt.Errorf("%s %s: %w", what, s.Runbook, err))
				}
			}
			if a := s.Approval; a != nil {
				dur(what+" approval.timeout", a.Timeout)
				if a.MinApprovals < 0 || a.MinApprovals > MaxApprovals {
					errs = append(errs, fmt.Errorf("%s approval.min_approvals %d is outside 0..%d", what, a.MinApprovals, MaxApprovals))
				}
			}
		}
	}
	return errors.Join(errs...)
}
