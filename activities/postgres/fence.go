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

var targetOnly = []runbooks.InputSpec{{Name: "target", Type: runbooks.TypeTarget, Required: true, Doc: "the postgres target"}}

// Fence is postgres.fence: after it, no client but the admin role can
// connect to the node, and no client session is left on it.
type Fence struct{ *Provider }

var _ activities.Action = Fence{}

// Spec implements activities.Action.
func (Fence) Spec() runbooks.ActionSpec {
	return runbooks.ActionSpec{
		Name: "postgres.fence",
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
	o := activities.Observation{Current: s.summary()}
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
		return activities.Result{}, err
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

// Unfence is postgres.unfence: restore the pg_hba.conf a fence replaced.
type Unfence struct{ *Provider }

var _ activities.Action = Unfence{}

// Spec implements activities.Action.
func (Unfence) Spec() runbooks.ActionSpec {
	return runbooks.ActionSpec{
		Name:   "postgres.unfence",
		Doc:    "Undo postgres.fence: restore the original pg_hba.conf and reload, so clients can connect again.",
		Inputs: targetOnly,
	}
}

// Observe implements activities.Action.
func (a Unfence) Observe(ctx context.Context, req activities.Request) (activities.Observation, error) {
	var in targetInput
	if err := activities.Decode(a.Spec(), req.With, &in); err != nil {
		return activities.Observation{}, err
	}
	n, err := a.connect(ctx, req, in.Target)
	if err != nil {
		return activities.Observation{}, err
	}
	defer n.Close()
	hba, err := n.readHBA(ctx)
	if err != nil {
		return activities.Observation{}, err
	}
	if !isFenced(hba.text) {
		return activities.Observation{Current: in.Target + " is not fenced"}, nil
	}
	return activities.Observation{Current: in.Target + " is fenced", Changes: []string{"restore pg_hba.conf from " + hba.path + backupSuffix + ", reload"}}, nil
}

// Apply implements activities.Action.
func (a Unfence) Apply(ctx context.Context, req activities.Request) (activities.Result, error) {
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
	if !isFenced(hba.text) {
		return activities.Result{Summary: in.Target + " was not fenced"}, nil
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
