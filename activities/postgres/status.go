package postgres

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgtype"

	"github.com/drctl/drctl/activities"
	"github.com/drctl/drctl/runbooks"
)

// Roles.
const (
	RolePrimary = "primary"
	RoleStandby = "standby"
)

// NodeStatus is what a node says about itself.
type NodeStatus struct {
	Role     string `json:"role"`
	Timeline int    `json:"timeline"`
	// CurrentLSN is the primary's flushed WAL position; on a standby, the
	// last WAL position received.
	CurrentLSN LSN `json:"current_lsn"`
	ReceiveLSN LSN `json:"receive_lsn,omitempty"` // standby
	ReplayLSN  LSN `json:"replay_lsn,omitempty"`  // standby
	// LastReplayAt is the commit time of the last transaction replayed
	// (standby, and a promoted standby); zero when none.
	LastReplayAt time.Time `json:"last_replay_at,omitempty"`
	// ServerTime is the node's clock when the status was read.
	ServerTime time.Time `json:"server_time"`
	Standbys   []string  `json:"standbys,omitempty"` // "name state replay_lsn" per connected standby
	ReadOnly   bool      `json:"read_only"`          // default_transaction_read_only
	Fenced     bool      `json:"fenced"`
	// Upstream is the host:port of the WAL sender a standby streams from;
	// empty when it is not streaming (and on a primary).
	Upstream string `json:"upstream,omitempty"`
	// Clients counts client sessions other than the admin role's.
	Clients int `json:"clients"`
}

// ReplayLag is how far behind the standby's replay is, by commit time: zero
// when everything received has been replayed (an idle primary writes no
// commits, so the last commit's age alone would be misleading). The receive
// position can stay a little ahead of the last complete record replayed on
// an idle pair, so a gap within one WAL page (8 KiB) counts as caught up.
func (s NodeStatus) ReplayLag() time.Duration {
	const walPage = 8192
	if s.LastReplayAt.IsZero() || s.Role != RoleStandby || s.ReplayLSN+walPage > s.ReceiveLSN {
		return 0
	}
	return max(s.ServerTime.Sub(s.LastReplayAt), 0)
}

// LSN is a WAL position.
type LSN uint64

// ParseLSN parses "16/B374D848".
func ParseLSN(s string) (LSN, error) {
	hi, lo, ok := strings.Cut(s, "/")
	if !ok {
		return 0, fmt.Errorf("%q is not an LSN", s)
	}
	h, err1 := strconv.ParseUint(hi, 16, 32)
	l, err2 := strconv.ParseUint(lo, 16, 32)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("%q is not an LSN", s)
	}
	return LSN(h<<32 | l), nil
}

func (l LSN) String() string { return fmt.Sprintf("%X/%X", uint64(l)>>32, uint64(l)&0xffffffff) }

// MarshalText writes the usual text form.
func (l LSN) MarshalText() ([]byte, error) { return []byte(l.String()), nil }

// UnmarshalText reads the usual text form.
func (l *LSN) UnmarshalText(b []byte) error {
	v, err := ParseLSN(string(b))
	*l = v
	return err
}

func lsnOf(t pgtype.Text) LSN {
	if !t.Valid {
		return 0
	}
	v, _ := ParseLSN(t.String)
	return v
}

// status reads the node's role, positions, fence and sessions.
func (n *node) status(ctx context.Context) (NodeStatus, error) {
	var (
		s                    NodeStatus
		inRecovery, readOnly bool
		cur, recv, replay    pgtype.Text
		replayAt             pgtype.Timestamptz
		tli, senderPort      pgtype.Int4
		senderHost           pgtype.Text
	)
	err := n.conn.QueryRow(ctx, `
SELECT pg_is_in_recovery(),
       current_setting('default_transaction_read_only') = 'on',
       CASE WHEN pg_is_in_recovery() THEN pg_last_wal_receive_lsn()::text ELSE pg_current_wal_flush_lsn()::text END,
       pg_last_wal_receive_lsn()::text,
       pg_last_wal_replay_lsn()::text,
       pg_last_xact_replay_timestamp(),
       now(),
       CASE WHEN pg_is_in_recovery()
            THEN coalesce((SELECT received_tli FROM pg_stat_wal_receiver), (SELECT timeline_id FROM pg_control_checkpoint()))
            ELSE ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int END,
       (SELECT count(*) FROM pg_stat_activity
         WHERE backend_type = 'client backend' AND pid <> pg_backend_pid() AND usename IS DISTINCT FROM current_user),
       (SELECT sender_host FROM pg_stat_wal_receiver WHERE status = 'streaming'),
       (SELECT sender_port FROM pg_stat_wal_receiver WHERE status = 'streaming')`,
	).Scan(&inRecovery, &readOnly, &cur, &recv, &replay, &replayAt, &s.ServerTime, &tli, &s.Clients, &senderHost, &senderPort)
	if err != nil {
		return s, n.queryErr("read status", err)
	}
	s.Role = RolePrimary
	if inRecovery {
		s.Role = RoleStandby
		s.ReceiveLSN, s.ReplayLSN = lsnOf(recv), lsnOf(replay)
	}
	s.CurrentLSN, s.ReadOnly, s.Timeline = lsnOf(cur), readOnly, int(tli.Int32)
	if replayAt.Valid {
		s.LastReplayAt = replayAt.Time
	}
	if senderHost.Valid && senderPort.Valid {
		s.Upstream = net.JoinHostPort(senderHost.String, strconv.Itoa(int(senderPort.Int32)))
	}
	rows, err := n.conn.Query(ctx, `SELECT coalesce(application_name, ''), coalesce(state, ''), coalesce(replay_lsn::text, '') FROM pg_stat_replication ORDER BY application_name`)
	if err != nil {
		return s, n.queryErr("read replication", err)
	}
	for rows.Next() {
		var name, state, lsn string
		if err := rows.Scan(&name, &state, &lsn); err != nil {
			return s, n.queryErr("read replication", err)
		}
		s.Standbys = append(s.Standbys, strings.TrimSpace(name+" "+state+" "+lsn))
	}
	if err := rows.Err(); err != nil {
		return s, n.queryErr("read replication", err)
	}
	hba, err := n.readHBA(ctx)
	if err != nil {
		return s, err
	}
	s.Fenced = isFenced(hba.text)
	return s, nil
}

func (s NodeStatus) summary() string {
	switch s.Role {
	case RolePrimary:
		f := "accepting clients"
		if s.Fenced {
			f = "fenced"
		}
		return fmt.Sprintf("primary on timeline %d at %s, %s, %d client session(s), %d standby(s)", s.Timeline, s.CurrentLSN, f, s.Clients, len(s.Standbys))
	default:
		return fmt.Sprintf("standby on timeline %d, received %s, replayed %s, replay lag %s", s.Timeline, s.ReceiveLSN, s.ReplayLSN, s.ReplayLag().Round(time.Millisecond))
	}
}

func (s NodeStatus) outputs() map[string]any {
	return map[string]any{
		"role":            s.Role,
		"timeline":        s.Timeline,
		"current_lsn":     s.CurrentLSN.String(),
		"receive_lsn":     s.ReceiveLSN.String(),
		"replay_lsn":      s.ReplayLSN.String(),
		"replay_lag":      runbooks.Duration(s.ReplayLag()).String(),
		"lag_bytes":       int64(s.ReceiveLSN) - int64(s.ReplayLSN),
		"standbys":        len(s.Standbys),
		"read_only":       s.ReadOnly,
		"fenced":          s.Fenced,
		"client_backends": s.Clients,
	}
}

// Status is postgres.status: a node's role, positions, lag, standbys and
// fence. With max_lag it is a preflight gate: it fails while a standby's
// replay lag is larger.
type Status struct{ *Provider }

var _ activities.Action = Status{}

type statusInput struct {
	Target string            `json:"target"`
	Role   string            `json:"role"`
	MaxLag runbooks.Duration `json:"max_lag"`
}

// Spec implements activities.Action.
func (Status) Spec() runbooks.ActionSpec {
	return runbooks.ActionSpec{
		Name: "postgres.status",
		Undo: runbooks.UndoNotNeeded,
		Doc:  "Read a node's role, timeline, LSNs, replication lag, standbys and fence; optionally require a role and a maximum replay lag.",
		Inputs: []runbooks.InputSpec{
			{Name: "target", Type: runbooks.TypeTarget, Kinds: []string{TargetKind}, Required: true, Doc: "the postgres target"},
			{Name: "role", Type: runbooks.TypeString, Doc: "fail unless the node has this role (primary or standby)"},
			{Name: "max_lag", Type: runbooks.TypeDuration, Doc: "fail while a standby's replay lag is larger"},
		},
		Outputs: []string{"role", "timeline", "current_lsn", "receive_lsn", "replay_lsn", "replay_lag", "lag_bytes", "standbys", "read_only", "fenced", "client_backends"},
	}
}

func (a Status) read(ctx context.Context, req activities.Request) (NodeStatus, statusInput, error) {
	var in statusInput
	if err := activities.Decode(a.Spec(), req.With, &in); err != nil {
		return NodeStatus{}, in, err
	}
	n, err := a.connect(ctx, req, in.Target)
	if err != nil {
		return NodeStatus{}, in, err
	}
	defer n.Close()
	s, err := n.status(ctx)
	return s, in, err
}

// Observe implements activities.Action.
func (a Status) Observe(ctx context.Context, req activities.Request) (activities.Observation, error) {
	s, in, err := a.read(ctx, req)
	if err != nil {
		return activities.Observation{}, err
	}
	state := map[string]string{}
	a.addFacts(state, req, in.Target, &s)
	return activities.Observation{Current: s.summary(), State: state, Measures: measures(in.Target, &s)}, nil
}

// Apply implements activities.Action; it changes nothing.
func (a Status) Apply(ctx context.Context, req activities.Request) (activities.Result, error) {
	s, in, err := a.read(ctx, req)
	if err != nil {
		return activities.Result{}, err
	}
	if in.Role != "" && in.Role != s.Role {
		return activities.Result{}, fmt.Errorf("%s is a %s, want %s", in.Target, s.Role, in.Role)
	}
	if in.MaxLag > 0 && s.Role == RoleStandby && s.ReplayLag() > in.MaxLag.D() {
		return activities.Result{}, fmt.Errorf("%s replay lag %s exceeds max_lag %s", in.Target, s.ReplayLag().Round(time.Millisecond), in.MaxLag)
	}
	return activities.Result{Summary: in.Target + ": " + s.summary(), Outputs: s.outputs()}, nil
}
