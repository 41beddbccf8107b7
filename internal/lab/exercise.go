//go:build linux

package lab

import (
	"context"
	"fmt"
	"time"

	"github.com/drctl/drctl/internal/operator"
	"github.com/drctl/drctl/runbooks"
	"github.com/drctl/drctl/workflows"
)

// ExerciseOptions configures Exercise.
type ExerciseOptions struct {
	// Operator starts the run (its identity is the run's starter).
	Operator *operator.Operator
	// Params override the lab's own (Params), of which the runbook takes
	// those it declares.
	Params map[string]string
	Reason string
	// Approve is called once per approval gate the run waits at, in a
	// goroutine of its own, and decides it. Nil: gates wait for someone
	// else (drctl approve).
	Approve func(ctx context.Context, workflowID string, gate workflows.StepReport)
	// Progress is called with each progress report and the final one.
	Progress func(rep *workflows.Report, load *Load)
	// Writers is the number of load workers (default 2), each writing
	// every WriteInterval (default 10ms).
	Writers       int
	WriteInterval time.Duration
}

// Outcome is what a run did to the lab, measured from outside the run.
type Outcome struct {
	WorkflowID string
	Report     *workflows.Report
	Load       LoadStats
	// FenceAt is when the run's first postgres.fence step started (zero if
	// it has none); AckedBeforeFence counts the writes acknowledged before.
	FenceAt          time.Time
	AckedBeforeFence int
	// Primary is the site whose database is the primary after the run, and
	// Present the number of acknowledged writes found there.
	Primary string
	Present int
	// DNSApp and DNSDB are the zone's answers for the app's and the
	// database's names after the run.
	DNSApp, DNSDB []string
	// Served is the health answer of a request through the load balancer.
	Served HealthAnswer
}

// Lost is the number of acknowledged writes missing on the primary.
func (o *Outcome) Lost() int { return len(o.Load.Acks) - o.Present }

// SiteOf names the site of a lab address (app or database), or "".
func SiteOf(addr string) string {
	switch addr {
	case EastAppAddr, EastDBAddr:
		return East
	case WestAppAddr, WestDBAddr:
		return West
	}
	return ""
}

// Exercise runs rb against the lab while a load generator writes through
// the load balancer, and measures the result: writes acknowledged and
// present on the primary afterwards, where DNS and the load balancer point.
// It returns once the run has ended (whatever its state) and the load has
// seen the app write again, or ctx ends.
func (l *Lab) Exercise(ctx context.Context, rb *runbooks.Runbook, o ExerciseOptions) (*Outcome, error) {
	if o.Writers <= 0 {
		o.Writers = 2
	}
	if o.WriteInterval <= 0 {
		o.WriteInterval = 10 * time.Millisecond
	}
	params := map[string]string{}
	for k, v := range l.Params() {
		if _, ok := rb.Param(k); ok {
			params[k] = v
		}
	}
	for k, v := range o.Params {
		params[k] = v
	}

	load := StartLoad(ctx, l.FrontendURL(), o.Writers, o.WriteInterval)
	defer load.Stop()
	// The app must be writing before anything moves.
	if err := WaitFor(ctx, 30*time.Second, 20*time.Millisecond, func() bool { return load.Acked() >= 10 }); err != nil {
		return nil, fmt.Errorf("lab: the app acknowledged no writes through %s before the run: %w", l.FrontendURL(), err)
	}
	started, err := o.Operator.Start(ctx, rb, params, workflows.ModeFailover, o.Reason)
	if err != nil {
		return nil, err
	}
	out := &Outcome{WorkflowID: started.WorkflowID}

	decided := map[string]bool{}
	gateCtx, stopGates := context.WithCancel(ctx)
	defer stopGates()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		st, err := o.Operator.Status(ctx, started.WorkflowID)
		if err != nil {
			return out, err
		}
		rep, rerr := o.Operator.Report(ctx, started.WorkflowID)
		if rerr == nil {
			if o.Progress != nil {
				o.Progress(rep, load)
			}
			out.Report = rep
		}
		if st.Closed {
			if rerr != nil {
				return out, rerr
			}
			break
		}
		for _, id := range st.Waiting {
			if decided[id] || o.Approve == nil || rep == nil {
				continue
			}
			for _, s := range rep.Steps {
				if s.ID == id {
					decided[id] = true
					go o.Approve(gateCtx, started.WorkflowID, s)
				}
			}
		}
		select {
		case <-ctx.Done():
			return out, ctx.Err()
		case <-tick.C:
		}
	}
	stopGates()

	if out.Primary, err = l.primary(ctx); err != nil {
		return out, err
	}
	// Let the load see the app write on the primary's site again (when the
	// run succeeded it should at once), so the report shows both sides.
	before := len(load.Stats().Acks)
	_ = WaitFor(ctx, 5*time.Second, 20*time.Millisecond, func() bool { return load.Acked() >= before+10 })
	out.Load = load.Stop()

	for _, s := range out.Report.Steps {
		if s.Action == "postgres.fence" && s.StartedAt != nil {
			out.FenceAt = *s.StartedAt
			out.AckedBeforeFence = out.Load.Before(out.FenceAt)
			break
		}
	}
	if out.Present, err = Present(ctx, l.AppDSN(out.Primary), out.Load.IDs()); err != nil {
		return out, err
	}
	if out.DNSApp, err = LookupA(ctx, l.DNS.Addr(), AppName+"."+l.Zone); err != nil {
		return out, err
	}
	if out.DNSDB, err = LookupA(ctx, l.DNS.Addr(), DBName+"."+l.Zone); err != nil {
		return out, err
	}
	out.Served, err = GetHealth(ctx, l.FrontendURL())
	if err != nil {
		return out, fmt.Errorf("lab: after the run, a request through the load balancer failed: %w", err)
	}
	return out, nil
}

// primary is the site db.<zone> points at, which must be a primary (not in
// recovery). A fenced old primary is not in recovery either, but no client
// finds it any more.
func (l *Lab) primary(ctx context.Context) (string, error) {
	addrs, err := LookupA(ctx, l.DNS.Addr(), DBName+"."+l.Zone)
	if err != nil {
		return "", err
	}
	site := SiteOf(first(addrs))
	if len(addrs) != 1 || site == "" {
		return "", fmt.Errorf("lab: %s.%s points at %v, not at one of the sites' databases", DBName, l.Zone, addrs)
	}
	standby, err := l.Node(site).InRecovery(ctx)
	if err != nil {
		return "", err
	}
	if standby {
		return "", fmt.Errorf("lab: %s.%s points at %s's database, which is a standby", DBName, l.Zone, site)
	}
	return site, nil
}

func first(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[0]
}

// Primary is the site whose database is the primary now.
func (l *Lab) Primary(ctx context.Context) (string, error) { return l.primary(ctx) }
