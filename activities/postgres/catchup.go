package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/drctl/drctl/activities"
	"github.com/drctl/drctl/runbooks"
)

// WaitCaughtUp is postgres.wait_caught_up: for a planned switchover, after
// the old primary is fenced, wait until the standby has replayed everything
// the old primary flushed. This is what makes a planned switchover lose
// nothing.
type WaitCaughtUp struct{ *Provider }

var _ activities.Action = WaitCaughtUp{}

type catchUpInput struct {
	Primary string `json:"primary"`
	Standby string `json:"standby"`
}

// Spec implements activities.Action.
func (WaitCaughtUp) Spec() runbooks.ActionSpec {
	return runbooks.ActionSpec{
		Name: "postgres.wait_caught_up",
		Undo: runbooks.UndoNotNeeded,
		Doc:  "Wait until the standby has replayed every WAL record the fenced primary flushed (LSN equality); heartbeats the remaining lag. Bound it with the step's deadline.",
		Inputs: []runbooks.InputSpec{
			{Name: "primary", Type: runbooks.TypeTarget, Kinds: []string{TargetKind}, Required: true, Doc: "the old primary; must be fenced"},
			{Name: "standby", Type: runbooks.TypeTarget, Kinds: []string{TargetKind}, Required: true, Doc: "the standby that will be promoted"},
		},
		Outputs: []string{"lsn", "waited"},
	}
}

func (a WaitCaughtUp) open(ctx context.Context, req activities.Request) (p, s *node, err error) {
	var in catchUpInput
	if err := activities.Decode(a.Spec(), req.With, &in); err != nil {
		return nil, nil, err
	}
	if p, err = a.connect(ctx, req, in.Primary); err != nil {
		return nil, nil, err
	}
	if s, err = a.connect(ctx, req, in.Standby); err != nil {
		p.Close()
		return nil, nil, err
	}
	return p, s, nil
}

// positions reads the primary's flushed and the standby's replayed LSN.
func positions(ctx context.Context, p, s *node) (flushed, replayed LSN, standbyInRecovery bool, err error) {
	var f, r string
	if err := p.conn.QueryRow(ctx, `SELECT CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_flush_lsn() END::text`).Scan(&f); err != nil {
		return 0, 0, false, p.queryErr("read flushed LSN", err)
	}
	if err := s.conn.QueryRow(ctx, `SELECT pg_is_in_recovery(), coalesce(pg_last_wal_replay_lsn()::text, '0/0')`).Scan(&standbyInRecovery, &r); err != nil {
		return 0, 0, false, s.queryErr("read replayed LSN", err)
	}
	flushed, _ = ParseLSN(f)
	replayed, _ = ParseLSN(r)
	return flushed, replayed, standbyInRecovery, nil
}

// Observe implements activities.Action.
func (a WaitCaughtUp) Observe(ctx context.Context, req activities.Request) (activities.Observation, error) {
	p, s, err := a.open(ctx, req)
	if err != nil {
		return activities.Observation{}, err
	}
	defer p.Close()
	defer s.Close()
	f, r, _, err := positions(ctx, p, s)
	if err != nil {
		return activities.Observation{}, err
	}
	o := activities.Observation{Current: fmt.Sprintf("%s flushed %s, %s replayed %s (%d bytes behind)", p.name, f, s.name, r, lagBytes(f, r)), State: map[string]string{}}
	for _, n := range []*node{p, s} {
		st, err := n.status(ctx)
		if err != nil {
			return activities.Observation{}, err
		}
		a.addFacts(o.State, req, n.name, &st)
	}
	if r < f {
		o.Changes = []string{"wait for " + s.name + " to replay up to " + f.String()}
	}
	return o, nil
}

func lagBytes(flushed, replayed LSN) int64 {
	if replayed >= flushed {
		return 0
	}
	return int64(flushed - replayed)
}

// Apply implements activities.Action.
func (a WaitCaughtUp) Apply(ctx context.Context, req activities.Request) (activities.Result, error) {
	p, s, err := a.open(ctx, req)
	if err != nil {
		return activities.Result{}, err
	}
	defer p.Close()
	defer s.Close()
	ps, err := p.status(ctx)
	if err != nil {
		return activities.Result{}, err
	}
	if ps.Role == RolePrimary && !ps.Fenced {
		return activities.Result{}, activities.Permanentf("wait for %s to catch up: %s is not fenced, so it may still take writes and the standby could never be known to have everything; run postgres.fence on it first", s.name, p)
	}
	start := time.Now()
	for {
		f, r, inRecovery, err := positions(ctx, p, s)
		if err != nil {
			return activities.Result{}, err
		}
		if !inRecovery {
			return activities.Result{Summary: s.name + " is already a primary; nothing to wait for", Outputs: map[string]any{"lsn": r.String(), "waited": "0s"}}, nil
		}
		if r >= f {
			waited := time.Since(start)
			return activities.Result{
				Summary: fmt.Sprintf("%s replayed up to %s, everything %s flushed (waited %s)", s.name, r, p.name, waited.Round(time.Millisecond)),
				Outputs: map[string]any{"lsn": f.String(), "waited": runbooks.Duration(waited).String()},
			}, nil
		}
		activities.Heartbeat(ctx, lagBytes(f, r))
		select {
		case <-ctx.Done():
			return activities.Result{}, fmt.Errorf("%s still %d bytes behind %s: %w", s.name, lagBytes(f, r), p.name, ctx.Err())
		case <-time.After(a.poll()):
		}
	}
}
