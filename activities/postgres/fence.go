package postgres

import (
	"context"
	"fmt"

	"github.com/drctl/drctl/activities"
	"github.com/drctl/drctl/runbooks"
)

type targetInput struct {
	Target string `json:"target"`
}

var targetOnly = []runbooks.InputSpec{{Name: "target", Type: runbooks.TypeTarget, Kinds: []string{TargetKind}, Required: true, Doc: "the postgres target"}}

// Fence is postgres.fence: after it, no client but the admin role can
// connect to the node, and no client session is left on it.
type Fence struct{ *Provider }

var _ activities.Action = Fence{}

// Spec implements activities.Action.
func (Fence) Spec() runbooks.ActionSpec {
	return runbooks.ActionSpec{
		Name: "postgres.fence",
		Undo: runbooks.UndoByCompensation,
		Doc: "Stop a node from serving clients in a way they cannot undo: rewrite pg_hba.conf so only the admin role and " +
			"replication connect, reload, terminate every other client session, verify none is left. Undo with postgres.unfence.",
		Inputs:  targetOnly,
		Outputs: []string{"lsn", "terminated"},
	}
}

// Observe implements activities.Action.
func (a Fence) Observe(ctx context.Context, req activities.Request) (activities.Observation, error) {
	var in targetInput
	if err := activities.Decode(a.Spec(), req.With, &in); err != nil {
		return activities.Observation{}, err
	}
	n, err := a.connect(ctx, req, in.Target)
	if err != nil {
		return activities.Observation{}, err
	}
	defer n.Close()
	s, err := n.status(ctx)
	if err != nil {
		return activities.Observation{}, err
	}
	o := activities.Observation{Current: s.summary(), State: map[string]string{}}
	a.addFacts(o.State, req, in.Target, &s)
	if !s.Fenced {
		o.Changes = append(o.Changes, fmt.Sprintf("rewrite pg_hba.conf on %s so only %s and replication connect, reload", n, n.user))
	}
	if s.Clients > 0 || !s.Fenced {
		o.Changes = append(o.Changes, fmt.Sprintf("terminate %d client session(s)", s.Clients))
	}
	return o, nil
}

// Apply implements activities.Action.
func (a Fence) Apply(ctx context.Context, req activities.Request) (activities.Result, error) {
	var in targetInput
	if err := activities.Decode(a.Spec(), req.With, &in); err != nil {
		return activities.Result{}, err
	}
	n, err := a.connect(ctx, req, in.Target)
	if err != nil {
		return activities.Result{}, err
	}
	defer n.Close()
	hba, err := n.readHBA(ctx)
	if err != nil {
		return activities.Result{}, err
	}
	changed := false
	if !isFenced(hba.text) {
		// Keep the original first: unfence restores it. A retry after a
		// crash between these writes finds the file unfenced and writes the
		// same backup again.
		if err := n.writeFile(ctx, hba.path+backupSuffix, hba.text); err != nil {
			return activities.Result{}, err
		}
		fenced := fencedHBA(hba.text, n.user, fmt.Sprintf("run %s step %s", req.Run.WorkflowID, req.Step))
		if err := n.writeFile(ctx, hba.path, fenced); err != nil {
			return activities.Result{}, err
		}
		changed = true
	}
	// Reload even when the file was already fenced: a crash may have come
	// between the write and the reload.
	if err := n.reload(ctx, a.poll()); err != nil {
		return activities.Result{}, a.undo(ctx, n, hba.path, fmt.Errorf("fence %s: %w", n, err))
	}
	// The admin role must still get in, or every later step (catch-up,
	// promote's guard, unfence) would be locked out of this node.
	if probe, err := a.connect(ctx, req, in.Target); err != nil {
		return activities.Result{}, a.undo(ctx, n, hba.path, fmt.Errorf("fence %s: the fenced pg_hba.conf would lock the admin role out (%v); its rules reach %s only through a group or file, give it a rule of its own", n, err, n.user))
	} else {
		probe.Close()
	}
	terminated, err := n.terminateClients(ctx, a.poll())
	if err != nil {
		return activities.Result{}, err
	}
	s, err := n.status(ctx)
	if err != nil {
		return activities.Result{}, err
	}
	if !s.Fenced || s.Clients > 0 {
		return activities.Result{}, fmt.Errorf("fence %s: not verified (fenced %t, %d client sessions left)", n, s.Fenced, s.Clients)
	}
	changed = changed || terminated > 0
	summary := fmt.Sprintf("%s fenced at %s; %d client session(s) terminated", in.Target, s.CurrentLSN, terminated)
	if !changed {
		summary = fmt.Sprintf("%s was already fenced, no client sessions", in.Target)
	}
	return activities.Result{Changed: changed, Summary: summary, Outputs: map[string]any{"lsn": s.CurrentLSN.String(), "terminated": terminated}}, nil
}

// undo puts the original pg_hba.conf back after a fence that could not be
// completed safely, and returns cause as a permanent error (with the undo's
// own failure, if any).
func (a Fence) undo(ctx context.Context, n *node, path string, cause error) error {
	original, ok, err := n.readFileIfExists(ctx, path+backupSuffix)
	if err == nil && ok && !isFenced(original) {
		if err = n.writeFile(ctx, path, original); err == nil {
			err = n.reload(ctx, a.poll())
		}
	}
	if err != nil {
		return activities.Permanent(fmt.Errorf("%w; restoring the original pg_hba.conf also failed: %v", cause, err))
	}
	return activities.Permanent(fmt.Errorf("%w; the original pg_hba.conf was restored", cause))
}

// Unfence is postgres.unfence: restore the pg_hba.conf a fence replaced.
// It first asks the runbook's other postgres nodes (or unless_primary):
// when one of them is a primary — a later step promoted it — or cannot be
// asked, unfencing would risk two writable primaries, so the node is left
// fenced and the step says why. That makes it safe as the compensation of a
// fence in a failover that got past its promotion.
type Unfence struct{ *Provider }

var _ activities.Action = Unfence{}

type unfenceInput struct {
	Target        string `json:"target"`
	UnlessPrimary string `json:"unless_primary"`
	Force         bool   `json:"force"`
}

// Spec implements activities.Action.
func (Unfence) Spec() runbooks.ActionSpec {
	return runbooks.ActionSpec{
		Name: "postgres.unfence",
		Undo: runbooks.UndoByCompensation,
		Doc: "Undo postgres.fence: restore the original pg_hba.conf and reload, so clients can connect again. " +
			"With unless_primary, leave the node fenced when that node is (or may be) a primary.",
		Inputs: []runbooks.InputSpec{
			targetOnly[0],
			{Name: "unless_primary", Type: runbooks.TypeTarget, Kinds: []string{TargetKind}, Doc: "leave target fenced if this node is a primary, or cannot be reached to tell (default: every other postgres target of the runbook)"},
			{Name: "force", Type: runbooks.TypeBool, Doc: "unfence without asking the other nodes (default false)"},
		},
	}
}

// blockedBy reports why unfencing target must not happen: another node is
// a primary, or cannot be asked. The nodes asked are unless_primary when
// given, else every other postgres target of the runbook.
func (a Unfence) blockedBy(ctx context.Context, req activities.Request, in unfenceInput) string {
	for _, o := range in.others(req) {
		if why := a.primaryElsewhere(ctx, req, o); why != "" {
			return why
		}
	}
	return ""
}

// others are the nodes asked before unfencing: unless_primary when given,
// else every other postgres target of the runbook.
func (in unfenceInput) others(req activities.Request) []string {
	if in.UnlessPrimary != "" {
		return []string{in.UnlessPrimary}
	}
	var others []string
	for _, t := range req.Targets {
		if t.Kind == TargetKind && t.Name != in.Target {
			others = append(others, t.Name)
		}
	}
	return others
}

func (a Unfence) primaryElsewhere(ctx context.Context, req activities.Request, other string) string {
	n, err := a.connect(ctx, req, other)
	if err != nil {
		return fmt.Sprintf("%s cannot be reached to confirm it is not a primary", other)
	}
	defer n.Close()
	st, err := n.status(ctx)
	if err != nil {
		return fmt.Sprintf("%s's role cannot be read", other)
	}
	if st.Role == RolePrimary {
		return fmt.Sprintf("%s is a primary (timeline %d); unfencing would give clients two writable primaries", other, st.Timeline)
	}
	return ""
}

// unfenceState is what Observe and Apply both decide from.
type unfenceState struct {
	in      unfenceInput
	n       *node
	hba     hbaFile
	fenced  bool
	blocked string // why it must stay fenced; "" if it may be unfenced
}

// look connects and reads the fence; the caller closes st.n.
func (a Unfence) look(ctx context.Context, req activities.Request) (unfenceState, error) {
	var st unfenceState
	if err := activities.Decode(a.Spec(), req.With, &st.in); err != nil {
		return st, err
	}
	n, err := a.connect(ctx, req, st.in.Target)
	if err != nil {
		return st, err
	}
	st.n = n
	if st.hba, err = n.readHBA(ctx); err != nil {
		n.Close()
		return st, err
	}
	st.fenced = isFenced(st.hba.text)
	if st.fenced && !st.in.Force {
		st.blocked = a.blockedBy(ctx, req, st.in)
	}
	return st, nil
}

// Observe implements activities.Action.
func (a Unfence) Observe(ctx context.Context, req activities.Request) (activities.Observation, error) {
	st, err := a.look(ctx, req)
	if err != nil {
		return activities.Observation{}, err
	}
	defer st.n.Close()
	state, err := a.state(ctx, req, st)
	if err != nil {
		return activities.Observation{}, err
	}
	switch {
	case !st.fenced:
		return activities.Observation{Current: st.in.Target + " is not fenced", State: state}, nil
	case st.blocked != "":
		return activities.Observation{Current: st.in.Target + " is fenced and stays fenced: " + st.blocked, State: state}, nil
	}
	return activities.Observation{Current: st.in.Target + " is fenced", Changes: []string{"restore pg_hba.conf from " + st.hba.path + backupSuffix + ", reload"}, State: state}, nil
}

// state is the facts of the target and, unless forced, of the nodes asked
// before unfencing it: the same nodes whatever the fence, so a drill
// compares the same facts before and after.
func (a Unfence) state(ctx context.Context, req activities.Request, st unfenceState) (map[string]string, error) {
	s, err := st.n.status(ctx)
	if err != nil {
		return nil, err
	}
	state := map[string]string{}
	a.addFacts(state, req, st.in.Target, &s)
	if st.in.Force {
		return state, nil
	}
	for _, o := range st.in.others(req) {
		if err := a.addProbed(ctx, state, req, o); err != nil {
			return nil, err
		}
	}
	return state, nil
}

// Apply implements activities.Action.
func (a Unfence) Apply(ctx context.Context, req activities.Request) (activities.Result, error) {
	st, err := a.look(ctx, req)
	if err != nil {
		return activities.Result{}, err
	}
	defer st.n.Close()
	in, n, hba := st.in, st.n, st.hba
	switch {
	case !st.fenced:
		return activities.Result{Summary: in.Target + " was not fenced"}, nil
	case st.blocked != "":
		return activities.Result{Summary: in.Target + " left fenced: " + st.blocked}, nil
	}
	original, ok, err := n.readFileIfExists(ctx, hba.path+backupSuffix)
	if err != nil {
		return activities.Result{}, err
	}
	if !ok || isFenced(original) {
		return activities.Result{}, activities.Permanentf("unfence %s: the saved original %s%s is missing or fenced itself; restore pg_hba.conf by hand and run SELECT pg_reload_conf()", n, hba.path, backupSuffix)
	}
	if err := n.writeFile(ctx, hba.path, original); err != nil {
		return activities.Result{}, err
	}
	if err := n.reload(ctx, a.poll()); err != nil {
		return activities.Result{}, err
	}
	after, err := n.readHBA(ctx)
	if err != nil {
		return activities.Result{}, err
	}
	if isFenced(after.text) {
		return activities.Result{}, fmt.Errorf("unfence %s: pg_hba.conf still fenced after the restore", n)
	}
	return activities.Result{Changed: true, Summary: in.Target + " unfenced: original pg_hba.conf restored"}, nil
}
