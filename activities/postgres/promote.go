package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/drctl/drctl/activities"
	"github.com/drctl/drctl/runbooks"
)

// Promote is postgres.promote.
type Promote struct{ *Provider }

var _ activities.Action = Promote{}

type promoteInput struct {
	Target         string            `json:"target"`
	OldPrimary     string            `json:"old_primary"`
	OldPrimaryDead bool              `json:"old_primary_dead"`
	MaxLag         runbooks.Duration `json:"max_lag"`
	AcceptDataLoss bool              `json:"accept_data_loss"`
	ApprovedBy     string            `json:"approved_by"`
	AlreadyPrimary bool              `json:"already_primary_ok"`
}

// promoteIntent is written into the standby's data directory right before
// pg_promote (COPY TO a file works on a hot standby), so a retry after the
// worker died knows that this step promoted the node, from which timeline,
// and what it measured. It lives on the node itself: durable exactly where
// it matters, whatever happened to the worker.
type promoteIntent struct {
	Key       string    `json:"key"`
	Timeline  int       `json:"timeline"`
	Promotion promotion `json:"promotion"`
}

// intentFile is the intent's name in the data directory.
const intentFile = "drctl-promote.intent"

// Spec implements activities.Action.
func (Promote) Spec() runbooks.ActionSpec {
	return runbooks.ActionSpec{
		Name: "postgres.promote",
		Undo: runbooks.UndoImpossible,
		Doc: "Promote a standby and verify it accepts writes. Refuses while old_primary is a writable, unfenced primary " +
			"(unless declared dead, and even then if it answers as one) and when the lag exceeds max_lag unless accept_data_loss " +
			"is set with approved_by naming the approver. Records the RPO incurred. A node already promoted by this step returns 'already done'.",
		Inputs: []runbooks.InputSpec{
			{Name: "target", Type: runbooks.TypeTarget, Kinds: []string{TargetKind}, Required: true, Doc: "the standby to promote"},
			{Name: "old_primary", Type: runbooks.TypeTarget, Kinds: []string{TargetKind}, Required: true, Doc: "the primary being replaced"},
			{Name: "old_primary_dead", Type: runbooks.TypeBool, Doc: "the old primary is down for good: do not require reaching it (default false)"},
			{Name: "max_lag", Type: runbooks.TypeDuration, Doc: "the most data loss (by commit time) to accept without approval (default 0: none)"},
			{Name: "accept_data_loss", Type: runbooks.TypeBool, Doc: "promote even when the lag exceeds max_lag; needs approved_by"},
			{Name: "approved_by", Type: runbooks.TypeString, Doc: "who accepted the data loss, e.g. ${{ steps.GATE.outputs.decided_by }}"},
			{Name: "already_primary_ok", Type: runbooks.TypeBool, Doc: "a target that is already a primary (promoted by an earlier run) counts as done instead of an error (default false)"},
		},
		Outputs: []string{"timeline", "lsn", "lag_bytes", activities.OutputRPO, "promoted_at"},
	}
}

// promotion is what a promotion records on the new primary, keyed by the
// step's idempotency key, and what the step outputs.
type promotion struct {
	Timeline   int
	LSN        LSN
	LagBytes   int64 // -1: unknown (old primary unreachable)
	RPO        time.Duration
	RPOKnown   bool
	PromotedAt time.Time
	ApprovedBy string
}

func (p promotion) outputs() map[string]any {
	rpo := activities.RPOUnknown
	if p.RPOKnown {
		rpo = runbooks.Duration(p.RPO).String()
	}
	return map[string]any{
		"timeline": p.Timeline, "lsn": p.LSN.String(), "lag_bytes": p.LagBytes,
		activities.OutputRPO: rpo, "promoted_at": p.PromotedAt.UTC().Format(time.RFC3339Nano),
	}
}

// Observe implements activities.Action.
func (a Promote) Observe(ctx context.Context, req activities.Request) (activities.Observation, error) {
	var in promoteInput
	if err := activities.Decode(a.Spec(), req.With, &in); err != nil {
		return activities.Observation{}, err
	}
	s, err := a.connect(ctx, req, in.Target)
	if err != nil {
		return activities.Observation{}, err
	}
	defer s.Close()
	st, err := s.status(ctx)
	if err != nil {
		return activities.Observation{}, err
	}
	o := activities.Observation{Current: in.Target + ": " + st.summary(), State: map[string]string{}, Measures: measures(in.Target, &st)}
	a.addFacts(o.State, req, in.Target, &st)
	if in.OldPrimary != "" && in.OldPrimary != in.Target {
		// The old primary may be down for good: unreachable is a fact.
		if err := a.addProbed(ctx, o.State, req, in.OldPrimary); err != nil {
			return activities.Observation{}, err
		}
	}
	if st.Role == RoleStandby {
		o.Changes = []string{"promote " + s.String() + " to primary (a new timeline)"}
	}
	return o, nil
}

// Apply implements activities.Action.
func (a Promote) Apply(ctx context.Context, req activities.Request) (activities.Result, error) {
	var in promoteInput
	if err := activities.Decode(a.Spec(), req.With, &in); err != nil {
		return activities.Result{}, err
	}
	if in.Target == in.OldPrimary {
		return activities.Result{}, activities.Permanentf("target and old_primary are both %s; name the standby to promote and the primary it replaces", in.Target)
	}
	if in.AcceptDataLoss && strings.TrimSpace(in.ApprovedBy) == "" {
		return activities.Result{}, activities.Permanentf("accept_data_loss needs approved_by naming who accepted it; put an approval step before this one and write approved_by: ${{ steps.GATE.outputs.decided_by }}")
	}
	s, err := a.connect(ctx, req, in.Target)
	if err != nil {
		return activities.Result{}, err
	}
	defer s.Close()
	st, err := s.status(ctx)
	if err != nil {
		return activities.Result{}, err
	}
	key := req.IdempotencyKey()

	if st.Role == RolePrimary {
		return a.alreadyPrimary(ctx, req, in, s, st, key)
	}

	old, err := a.checkOldPrimary(ctx, req, in, st)
	if err != nil {
		return activities.Result{}, err
	}
	if old != nil && old.Role == RolePrimary && old.Fenced {
		// A fenced primary still writes a little WAL of its own (checkpoints,
		// running-transaction snapshots, autovacuum). Let the standby replay
		// it before measuring, so a lossless switchover is not refused.
		if st, old, err = a.settle(ctx, req, in, s, st, old); err != nil {
			return activities.Result{}, err
		}
	}
	pr := measure(st, old)
	if err := checkLag(in, pr); err != nil {
		return activities.Result{}, err
	}
	pr.ApprovedBy = in.ApprovedBy

	if err := s.writeIntent(ctx, promoteIntent{Key: key, Timeline: st.Timeline, Promotion: pr}); err != nil {
		return activities.Result{}, err
	}
	if _, err := s.conn.Exec(ctx, `SELECT pg_promote(wait => false)`); err != nil {
		return activities.Result{}, s.queryErr("pg_promote", err)
	}
	if err := s.waitPrimary(ctx, a.poll()); err != nil {
		return activities.Result{}, err
	}
	if a.AfterPromote != nil {
		a.AfterPromote(ctx)
	}
	if err := s.record(ctx, key, &pr); err != nil {
		return activities.Result{}, err
	}
	return activities.Result{
		Changed: true,
		Summary: fmt.Sprintf("%s promoted to primary on timeline %d; RPO %s", in.Target, pr.Timeline, pr.outputs()[activities.OutputRPO]),
		Outputs: pr.outputs(),
	}, nil
}

// alreadyPrimary handles a target that is no longer a standby. It never
// promotes again. The target counts as promoted by this step when the step
// recorded it, or when an earlier attempt heartbeated its intent from an
// older timeline and died before recording; with already_primary_ok an
// earlier run's promotion counts too. Anything else is refused: a primary
// this step did not promote is the wrong target. A writable, unfenced old
// primary beside it is split brain and always refused.
func (a Promote) alreadyPrimary(ctx context.Context, req activities.Request, in promoteInput, s *node, st NodeStatus, key string) (activities.Result, error) {
	if pr, ok, err := s.recorded(ctx, key); err != nil {
		return activities.Result{}, err
	} else if ok {
		return activities.Result{Summary: fmt.Sprintf("%s was already promoted by this step (timeline %d)", in.Target, pr.Timeline), Outputs: pr.outputs()}, nil
	}
	intent, ok, err := s.readIntent(ctx)
	if err != nil {
		return activities.Result{}, err
	}
	byUs := ok && intent.Key == key && st.Timeline > intent.Timeline
	if !byUs && !in.AlreadyPrimary {
		return activities.Result{}, activities.Permanentf("%s is not a standby: it is a primary on timeline %d and this step did not promote it; check target and old_primary, or, if an earlier run promoted it, set already_primary_ok: true", in.Target, st.Timeline)
	}
	old, err := a.probe(ctx, req, in.OldPrimary)
	if err != nil {
		return activities.Result{}, err
	}
	if old != nil && old.Role == RolePrimary && !old.Fenced {
		return activities.Result{}, activities.Permanentf("SPLIT BRAIN: %s and %s are both writable primaries; fence %s now (postgres.fence) and reconcile its writes", in.Target, in.OldPrimary, in.OldPrimary)
	}
	pr := intent.Promotion
	if !byUs {
		if pr, err = s.measurePromoted(ctx, st, old); err != nil {
			return activities.Result{}, err
		}
	}
	pr.ApprovedBy = in.ApprovedBy
	if err := s.record(ctx, key, &pr); err != nil {
		return activities.Result{}, err
	}
	how := "promoted by an earlier attempt of this step, which stopped before reporting"
	if !byUs {
		how = "promoted before this run (already_primary_ok)"
	}
	return activities.Result{
		Summary: fmt.Sprintf("%s is already a primary on timeline %d, %s; RPO %s", in.Target, pr.Timeline, how, pr.outputs()[activities.OutputRPO]),
		Outputs: pr.outputs(),
	}, nil
}

func (n *node) intentPath(ctx context.Context) (string, error) {
	var dir string
	if err := n.conn.QueryRow(ctx, `SELECT current_setting('data_directory')`).Scan(&dir); err != nil {
		return "", n.queryErr("read data_directory", err)
	}
	return dir + "/" + intentFile, nil
}

func (n *node) writeIntent(ctx context.Context, in promoteIntent) error {
	path, err := n.intentPath(ctx)
	if err != nil {
		return err
	}
	b, err := json.Marshal(in)
	if err != nil {
		return err
	}
	return n.writeFile(ctx, path, string(b))
}

func (n *node) readIntent(ctx context.Context) (promoteIntent, bool, error) {
	var in promoteIntent
	path, err := n.intentPath(ctx)
	if err != nil {
		return in, false, err
	}
	text, ok, err := n.readFileIfExists(ctx, path)
	if err != nil || !ok {
		return in, false, err
	}
	if err := json.Unmarshal([]byte(strings.TrimSpace(text)), &in); err != nil {
		return in, false, nil // not ours to interpret; treated as no intent
	}
	return in, true, nil
}

// settleFor bounds how long promote waits for a standby to replay the WAL
// a fenced primary writes by itself.
const settleFor = 10 * time.Second

// settle re-reads both nodes until the standby has replayed everything the
// fenced old primary flushed, or settleFor passes; it returns the last
// readings.
func (a Promote) settle(ctx context.Context, req activities.Request, in promoteInput, s *node, st NodeStatus, old *NodeStatus) (NodeStatus, *NodeStatus, error) {
	deadline := time.Now().Add(settleFor)
	for lagBytes(old.CurrentLSN, st.ReplayLSN) > 0 && time.Now().Before(deadline) {
		select {
		case <-ctx.Done():
			return st, old, ctx.Err()
		case <-time.After(a.poll()):
		}
		o, err := a.probe(ctx, req, in.OldPrimary)
		if err != nil || o == nil {
			return st, old, err // unreachable now: keep the last reading
		}
		if st, err = s.status(ctx); err != nil {
			return st, old, err
		}
		old = o
	}
	return st, old, nil
}

// probe connects to a node and reads its status; a nil status with a nil
// error means the node is unreachable.
func (p *Provider) probe(ctx context.Context, req activities.Request, target string) (*NodeStatus, error) {
	n, err := p.connect(ctx, req, target)
	if err != nil {
		if activities.IsPermanent(err) {
			return nil, err
		}
		return nil, nil
	}
	defer n.Close()
	st, err := n.status(ctx)
	if err != nil {
		return nil, err
	}
	return &st, nil
}

// checkOldPrimary is the split-brain guard. It returns the old primary's
// status when it could be read, nil when it is unreachable and declared dead.
func (a Promote) checkOldPrimary(ctx context.Context, req activities.Request, in promoteInput, standby NodeStatus) (*NodeStatus, error) {
	old, err := a.probe(ctx, req, in.OldPrimary)
	if err != nil {
		return nil, err
	}
	switch {
	case old == nil && in.OldPrimaryDead:
		return nil, nil
	case old == nil:
		return nil, fmt.Errorf("cannot reach old primary %s to confirm it is fenced; if it is down for good, declare it with old_primary_dead: true", in.OldPrimary)
	case old.Role == RolePrimary && !old.Fenced && in.OldPrimaryDead:
		return nil, activities.Permanentf("refusing to promote %s: old primary %s was declared dead but answers as a writable, unfenced primary; fence it (postgres.fence) first", in.Target, in.OldPrimary)
	case old.Role == RolePrimary && !old.Fenced:
		return nil, activities.Permanentf("refusing to promote %s: old primary %s is still a writable, unfenced primary (split-brain risk); fence it first with postgres.fence, or if it is unreachable to clients and down for good declare old_primary_dead: true", in.Target, in.OldPrimary)
	}
	return old, nil
}

// measure computes the lag and RPO of promoting standby now.
func measure(standby NodeStatus, old *NodeStatus) promotion {
	pr := promotion{LagBytes: -1}
	if old != nil && old.Role == RolePrimary {
		pr.LagBytes = lagBytes(old.CurrentLSN, standby.ReplayLSN)
		if pr.LagBytes == 0 {
			pr.RPO, pr.RPOKnown = 0, true
			return pr
		}
	}
	// Unknown or non-zero byte lag: the age of the last replayed commit is
	// an upper bound on what the standby is missing.
	if !standby.LastReplayAt.IsZero() {
		pr.RPO, pr.RPOKnown = max(standby.ServerTime.Sub(standby.LastReplayAt), 0), true
	}
	return pr
}

func checkLag(in promoteInput, pr promotion) error {
	exceeded := !pr.RPOKnown || pr.RPO > in.MaxLag.D() || (in.MaxLag == 0 && pr.LagBytes != 0)
	if !exceeded || in.AcceptDataLoss {
		return nil
	}
	what := "the data loss cannot be measured (old primary unreachable and no replayed commit to date)"
	if pr.RPOKnown {
		what = fmt.Sprintf("promoting now could lose up to %s of commits", pr.RPO.Round(time.Millisecond))
		if pr.LagBytes > 0 {
			what += fmt.Sprintf(" (%d bytes of WAL behind)", pr.LagBytes)
		}
	}
	return activities.Permanentf("refusing to promote %s: %s, over max_lag %s; wait for it to catch up, or set accept_data_loss: true with approved_by from an approval step", in.Target, what, in.MaxLag)
}

// waitPrimary polls until the node has left recovery. pg_promote(wait =>
// true) checks only every 100 ms; polling finishes sooner.
func (n *node) waitPrimary(ctx context.Context, poll time.Duration) error {
	deadline := time.Now().Add(time.Minute)
	for {
		var inRecovery bool
		if err := n.conn.QueryRow(ctx, `SELECT pg_is_in_recovery()`).Scan(&inRecovery); err != nil {
			return n.queryErr("wait for promotion", err)
		}
		if !inRecovery {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s is still in recovery a minute after pg_promote; check its log", n)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for promotion of %s: %w", n, ctx.Err())
		case <-time.After(poll):
		}
	}
}

// measurePromoted reconstructs the promotion's lag for a node promoted
// before this attempt: the timeline switch point is in its history file.
func (n *node) measurePromoted(ctx context.Context, st NodeStatus, old *NodeStatus) (promotion, error) {
	pr := promotion{Timeline: st.Timeline, LagBytes: -1, PromotedAt: st.ServerTime}
	var history *string
	err := n.conn.QueryRow(ctx, `SELECT pg_read_file('pg_wal/' || lpad(upper(to_hex($1::int)), 8, '0') || '.history', 0, 1048576, true)`, st.Timeline).Scan(&history)
	if err != nil {
		return pr, n.queryErr("read timeline history", err)
	}
	var switchpoint LSN
	if history != nil {
		lines := strings.Split(strings.TrimSpace(*history), "\n")
		if f := strings.Fields(lines[len(lines)-1]); len(f) >= 2 {
			switchpoint, _ = ParseLSN(f[1])
		}
	}
	pr.LSN = switchpoint
	if old != nil && old.Role == RolePrimary && switchpoint > 0 {
		pr.LagBytes = lagBytes(old.CurrentLSN, switchpoint)
		if pr.LagBytes == 0 {
			pr.RPOKnown = true
			return pr, nil
		}
	}
	if !st.LastReplayAt.IsZero() {
		pr.RPO, pr.RPOKnown = max(st.ServerTime.Sub(st.LastReplayAt), 0), true
	}
	return pr, nil
}

const promotionsDDL = `
CREATE SCHEMA IF NOT EXISTS drctl;
CREATE TABLE IF NOT EXISTS drctl.promotions (
  key         text PRIMARY KEY,
  promoted_at timestamptz NOT NULL DEFAULT now(),
  timeline    int NOT NULL,
  lsn         pg_lsn NOT NULL,
  lag_bytes   bigint NOT NULL,
  rpo_us      bigint,
  approved_by text
);`

// record writes the promotion on the new primary. It is the check that the
// node accepts writes, and what a retry finds to know the step is done.
func (n *node) record(ctx context.Context, key string, pr *promotion) error {
	if _, err := n.conn.Exec(ctx, promotionsDDL); err != nil {
		return n.queryErr("verify writes (create drctl.promotions)", err)
	}
	var (
		lsn string
		tl  int32
	)
	err := n.conn.QueryRow(ctx, `SELECT pg_current_wal_lsn()::text, ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int`).Scan(&lsn, &tl)
	if err != nil {
		return n.queryErr("read position", err)
	}
	if pr.LSN == 0 {
		pr.LSN, _ = ParseLSN(lsn)
	}
	pr.Timeline = int(tl)
	var rpo *int64
	if pr.RPOKnown {
		us := pr.RPO.Microseconds()
		rpo = &us
	}
	var approved *string
	if pr.ApprovedBy != "" {
		approved = &pr.ApprovedBy
	}
	err = n.conn.QueryRow(ctx, `
INSERT INTO drctl.promotions (key, timeline, lsn, lag_bytes, rpo_us, approved_by)
VALUES ($1, $2, $3::pg_lsn, $4, $5, $6)
ON CONFLICT (key) DO UPDATE SET key = EXCLUDED.key
RETURNING promoted_at`, key, pr.Timeline, pr.LSN.String(), pr.LagBytes, rpo, approved).Scan(&pr.PromotedAt)
	if err != nil {
		return n.queryErr("verify writes (record promotion)", err)
	}
	return nil
}

// recorded returns the promotion this step recorded, if any.
func (n *node) recorded(ctx context.Context, key string) (promotion, bool, error) {
	var (
		pr  promotion
		lsn string
		rpo *int64
		pe  *pgconn.PgError
	)
	err := n.conn.QueryRow(ctx, `
SELECT timeline, lsn::text, lag_bytes, rpo_us, promoted_at
  FROM drctl.promotions WHERE key = $1`, key).Scan(&pr.Timeline, &lsn, &pr.LagBytes, &rpo, &pr.PromotedAt)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return pr, false, nil
	case errors.As(err, &pe) && pe.Code == "42P01": // no drctl.promotions yet
		return pr, false, nil
	case err != nil:
		return pr, false, n.queryErr("read recorded promotion", err)
	}
	pr.LSN, _ = ParseLSN(lsn)
	if rpo != nil {
		pr.RPO, pr.RPOKnown = time.Duration(*rpo)*time.Microsecond, true
	}
	return pr, true, nil
}
