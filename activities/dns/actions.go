package dns

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/drctl/drctl/activities"
	"github.com/drctl/drctl/runbooks"
)

// Action names.
const (
	SetAction    = "dns.set"
	CheckAction  = "dns.check"
	SetTTLAction = "dns.set_ttl"
)

// DefaultTTL is dns.set's TTL when the step names none.
const DefaultTTL = 60 * time.Second

// Actions returns every DNS action, ready for activities.Registry.Add.
func Actions(p *Provider) []activities.Action {
	return []activities.Action{Set{p}, Check{p}, SetTTL{p}}
}

var (
	inTarget = runbooks.InputSpec{Name: "target", Type: runbooks.TypeTarget, Kinds: []string{TargetKind}, Required: true, Doc: "the dns target (its zone, server and key)"}
	inName   = runbooks.InputSpec{Name: "name", Type: runbooks.TypeString, Required: true,
		Doc: `owner name in the target's zone: relative to the zone ("www", "@" for the apex) or fully qualified with a trailing dot; ` +
			`letters, digits, '-' and '_' in dot-separated labels, nothing else (no spaces, wildcards or escapes)`}
	inType = runbooks.InputSpec{Name: "type", Type: runbooks.TypeString, Required: true, Doc: "record type: A, AAAA, CNAME, TXT, MX, SRV, CAA, NS or PTR"}
)

// rrsetInput is what every DNS action names: one RRset of one target.
type rrsetInput struct {
	Target string `json:"target"`
	Name   string `json:"name"`
	Type   string `json:"type"`
}

// resolve validates the RRset's name and type and opens the target. It
// sends nothing: a name that is not one plain name in the target's zone is
// refused (permanently, naming action and target) before any exchange.
func (p *Provider) resolve(action string, req activities.Request, in rrsetInput) (*zoneClient, string, string, error) {
	z, err := p.open(req, in.Target)
	if err != nil {
		return nil, "", "", err
	}
	typ, _, err := recordType(in.Type)
	if err != nil {
		return nil, "", "", activities.Permanentf("%s (target %s): %w", action, in.Target, err)
	}
	fqdn, err := ownerName(in.Name, z.zone)
	if err != nil {
		return nil, "", "", activities.Permanentf("%s (target %s): %w", action, in.Target, err)
	}
	return z, fqdn, typ, nil
}

// opError names the action, RRset and target: "dns.set www.example.test. A (target dns): ...".
func opError(action, fqdn, typ, target string, err error) error {
	return fmt.Errorf("%s %s %s (target %s): %w", action, fqdn, typ, target, err)
}

// progress is what Apply records (as heartbeat details) before it changes
// an RRset, so a retry after a crash between the change and the result
// still reports what the RRset was before the step.
type progress struct {
	Before rrset `json:"before"`
}

// before is the RRset as it was before this step first acted: the previous
// attempt's record if there is one for this RRset, else cur.
func before(ctx context.Context, cur rrset) (rrset, bool) {
	var pr progress
	if activities.PreviousHeartbeat(ctx, &pr) && pr.Before.Name == cur.Name && pr.Before.Type == cur.Type {
		return pr.Before, true
	}
	return cur, false
}

// holds reports whether cur is the desired RRset: the same values and, if
// it exists, the same TTL.
func holds(cur, want rrset) bool {
	return sameValues(cur, want) && (!want.exists() || cur.TTL == want.TTL)
}

func ttlText(d time.Duration) string { return runbooks.Duration(d).String() }

func values(s rrset) []string {
	if s.Values == nil {
		return []string{}
	}
	return s.Values
}

// Set is dns.set: make one RRset exactly the given values and TTL.
type Set struct{ *Provider }

var _ activities.Action = Set{}

type setInput struct {
	rrsetInput
	Values []string           `json:"values"`
	TTL    *runbooks.Duration `json:"ttl"`
}

// Spec implements activities.Action.
func (Set) Spec() runbooks.ActionSpec {
	return runbooks.ActionSpec{
		Name: SetAction,
		Undo: runbooks.UndoByCompensation,
		Doc: "Make an RRset exactly the given values and TTL, removing any other values, in one atomic update; " +
			"then verify by asking the authoritative server. No values removes the RRset. Does nothing if the RRset already " +
			"holds. Undo with dns.set, values: changed_from, ttl: previous_ttl.",
		Inputs: []runbooks.InputSpec{inTarget, inName, inType,
			{Name: "values", Type: runbooks.TypeList, Required: true,
				Doc: "the RRset's values, one per item, each checked by its type's rules and sent as a typed record: an address " +
					"(A, AAAA), a name (CNAME, NS, PTR; without a trailing dot relative to the zone), \"10 mail\" (MX), " +
					"\"0 5 5432 db\" (SRV), '0 issue \"ca.example\"' (CAA); TXT values are plain text of at most 4096 bytes"},
			{Name: "ttl", Type: runbooks.TypeDuration, Doc: "the RRset's TTL, whole seconds (default 60s)"},
		},
		Outputs: []string{"changed_from", "values", "ttl", "previous_ttl"},
	}
}

// desired decodes and validates the inputs into the RRset Apply makes.
func (a Set) desired(req activities.Request) (*zoneClient, rrset, error) {
	var in setInput
	if err := activities.Decode(a.Spec(), req.With, &in); err != nil {
		return nil, rrset{}, err
	}
	z, fqdn, typ, err := a.resolve(SetAction, req, in.rrsetInput)
	if err != nil {
		return nil, rrset{}, err
	}
	ttl := DefaultTTL
	if in.TTL != nil {
		ttl = in.TTL.D()
	}
	if _, err := ttlSeconds(ttl); err != nil {
		return nil, rrset{}, activities.Permanent(opError(SetAction, fqdn, typ, in.Target, fmt.Errorf("ttl %w", err)))
	}
	vals, err := normalizeValues(z.zone, fqdn, typ, in.Values)
	if err != nil {
		return nil, rrset{}, activities.Permanent(opError(SetAction, fqdn, typ, in.Target, err))
	}
	want := rrset{Name: fqdn, Type: typ, TTL: ttl, Values: vals}
	if !want.exists() {
		want.TTL = 0
	}
	return z, want, nil
}

// Observe implements activities.Action.
func (a Set) Observe(ctx context.Context, req activities.Request) (activities.Observation, error) {
	z, want, err := a.desired(req)
	if err != nil {
		return activities.Observation{}, err
	}
	cur, err := z.read(ctx, want.Name, want.Type)
	if err != nil {
		return activities.Observation{}, opError(SetAction, want.Name, want.Type, z.target, err)
	}
	o := activities.Observation{Current: cur.String(), State: cur.state(z.target), Measures: cur.measures(z.target)}
	if !holds(cur, want) {
		o.Changes = []string{change(cur, want)}
	}
	return o, nil
}

func change(cur, want rrset) string {
	switch {
	case !want.exists():
		return fmt.Sprintf("delete %s %s (now %s ttl %s)", want.Name, want.Type, showValues(cur.Values), cur.TTL)
	case !cur.exists():
		return fmt.Sprintf("create %s %s %s ttl %s", want.Name, want.Type, showValues(want.Values), want.TTL)
	}
	return fmt.Sprintf("set %s %s to %s ttl %s (now %s ttl %s)", want.Name, want.Type,
		showValues(want.Values), want.TTL, showValues(cur.Values), cur.TTL)
}

// Apply implements activities.Action.
func (a Set) Apply(ctx context.Context, req activities.Request) (activities.Result, error) {
	z, want, err := a.desired(req)
	if err != nil {
		return activities.Result{}, err
	}
	fail := func(err error) (activities.Result, error) {
		return activities.Result{}, opError(SetAction, want.Name, want.Type, z.target, err)
	}
	cur, err := z.read(ctx, want.Name, want.Type)
	if err != nil {
		return fail(err)
	}
	prev, retried := before(ctx, cur)
	changed := true
	if holds(cur, want) {
		// Already done: by an earlier attempt of this step (which recorded
		// the RRset it replaced) or by someone else.
		changed = retried && !holds(prev, want)
	} else {
		activities.Heartbeat(ctx, progress{Before: prev})
		if err := z.write(ctx, want); err != nil {
			return fail(err)
		}
		if err := a.verify(ctx, z, want); err != nil {
			return fail(err)
		}
	}
	summary := fmt.Sprintf("%s already held", want)
	if changed {
		summary = fmt.Sprintf("%s %s: was %s, now %s", want.Name, want.Type, rrsetText(prev), rrsetText(want))
	}
	return activities.Result{Changed: changed, Summary: summary, Outputs: map[string]any{
		"changed_from": values(prev),
		"previous_ttl": ttlText(prev.TTL),
		"values":       values(want),
		"ttl":          ttlText(want.TTL),
	}}, nil
}

func rrsetText(s rrset) string {
	if !s.exists() {
		return "absent"
	}
	return fmt.Sprintf("%s ttl %s", showValues(s.Values), s.TTL)
}

// Check is dns.check: a preflight that fails (retryably) while an RRset
// differs from what the runbook expects, or its TTL is too long.
type Check struct{ *Provider }

var _ activities.Action = Check{}

type checkInput struct {
	rrsetInput
	// Expect nil: the RRset must exist; empty: it must not.
	Expect *[]string          `json:"expect"`
	MaxTTL *runbooks.Duration `json:"max_ttl"`
}

// Spec implements activities.Action.
func (Check) Spec() runbooks.ActionSpec {
	return runbooks.ActionSpec{
		Name: CheckAction,
		Undo: runbooks.UndoNotNeeded,
		Doc: "Ask the authoritative server for an RRset and fail (retryably, so retries poll) while it differs from " +
			"expect or its TTL exceeds max_ttl. Without expect the RRset must exist; expect: [] requires that it does not. Changes nothing.",
		Inputs: []runbooks.InputSpec{inTarget, inName, inType,
			{Name: "expect", Type: runbooks.TypeList, Doc: "the values the RRset must hold, no more and no fewer"},
			{Name: "max_ttl", Type: runbooks.TypeDuration, Doc: "the longest TTL accepted"},
		},
		Outputs: []string{"values", "ttl"},
	}
}

// evaluate reads the RRset and lists how it falls short.
func (a Check) evaluate(ctx context.Context, req activities.Request) (*zoneClient, rrset, []string, error) {
	var in checkInput
	if err := activities.Decode(a.Spec(), req.With, &in); err != nil {
		return nil, rrset{}, nil, err
	}
	z, fqdn, typ, err := a.resolve(CheckAction, req, in.rrsetInput)
	if err != nil {
		return nil, rrset{}, nil, err
	}
	var want []string
	if in.Expect != nil {
		if want, err = normalizeValues(z.zone, fqdn, typ, *in.Expect); err != nil {
			return nil, rrset{}, nil, activities.Permanent(opError(CheckAction, fqdn, typ, in.Target, fmt.Errorf("expect: %w", err)))
		}
	}
	if in.MaxTTL != nil {
		if _, err := ttlSeconds(in.MaxTTL.D()); err != nil {
			return nil, rrset{}, nil, activities.Permanent(opError(CheckAction, fqdn, typ, in.Target, fmt.Errorf("max_ttl %w", err)))
		}
	}
	cur, err := z.read(ctx, fqdn, typ)
	if err != nil {
		return nil, rrset{}, nil, opError(CheckAction, fqdn, typ, in.Target, err)
	}
	var problems []string
	switch {
	case in.Expect == nil && !cur.exists():
		problems = append(problems, "it does not exist")
	case in.Expect != nil && !sameValues(cur, rrset{Values: want}):
		if len(want) == 0 {
			problems = append(problems, fmt.Sprintf("it holds %s, expected it not to exist", showValues(cur.Values)))
		} else {
			problems = append(problems, fmt.Sprintf("it holds %s, expected %s", showValues(values(cur)), showValues(want)))
		}
	}
	if in.MaxTTL != nil && cur.exists() && cur.TTL > in.MaxTTL.D() {
		problems = append(problems, fmt.Sprintf("its TTL %s exceeds max_ttl %s", cur.TTL, in.MaxTTL.D()))
	}
	return z, cur, problems, nil
}

// Observe implements activities.Action. A check changes nothing; the
// observation says whether it would pass now.
func (a Check) Observe(ctx context.Context, req activities.Request) (activities.Observation, error) {
	z, cur, problems, err := a.evaluate(ctx, req)
	if err != nil {
		return activities.Observation{}, err
	}
	o := activities.Observation{Current: fmt.Sprintf("%s; the check passes", cur), State: cur.state(z.target), Measures: cur.measures(z.target)}
	if len(problems) > 0 {
		o.Current = fmt.Sprintf("%s; the check would fail now: %s", cur, strings.Join(problems, "; "))
	}
	return o, nil
}

// Apply implements activities.Action.
func (a Check) Apply(ctx context.Context, req activities.Request) (activities.Result, error) {
	z, cur, problems, err := a.evaluate(ctx, req)
	if err != nil {
		return activities.Result{}, err
	}
	if len(problems) > 0 {
		return activities.Result{}, opError(CheckAction, cur.Name, cur.Type, z.target, fmt.Errorf("%s", strings.Join(problems, "; ")))
	}
	return activities.Result{Summary: cur.String(), Outputs: map[string]any{"values": values(cur), "ttl": ttlText(cur.TTL)}}, nil
}

// SetTTL is dns.set_ttl: change the TTL of an existing RRset, values
// unchanged, typically lowered ahead of a planned move so resolvers let go
// of the old answer quickly.
type SetTTL struct{ *Provider }

var _ activities.Action = SetTTL{}

type setTTLInput struct {
	rrsetInput
	TTL runbooks.Duration `json:"ttl"`
}

// Spec implements activities.Action.
func (SetTTL) Spec() runbooks.ActionSpec {
	return runbooks.ActionSpec{
		Name: SetTTLAction,
		Undo: runbooks.UndoByCompensation,
		Doc: "Set the TTL of an existing RRset, its values unchanged (e.g. lower it ahead of a planned move; remember that " +
			"resolvers keep the old TTL until it expires), then verify. Fails permanently if the RRset does not exist. " +
			"Undo with dns.set_ttl, ttl: previous_ttl.",
		Inputs: []runbooks.InputSpec{inTarget, inName, inType,
			{Name: "ttl", Type: runbooks.TypeDuration, Required: true, Doc: "the new TTL, whole seconds"},
		},
		Outputs: []string{"ttl", "previous_ttl"},
	}
}

func (a SetTTL) input(req activities.Request) (*zoneClient, rrset, error) {
	var in setTTLInput
	if err := activities.Decode(a.Spec(), req.With, &in); err != nil {
		return nil, rrset{}, err
	}
	z, fqdn, typ, err := a.resolve(SetTTLAction, req, in.rrsetInput)
	if err != nil {
		return nil, rrset{}, err
	}
	if _, err := ttlSeconds(in.TTL.D()); err != nil {
		return nil, rrset{}, activities.Permanent(opError(SetTTLAction, fqdn, typ, in.Target, fmt.Errorf("ttl %w", err)))
	}
	return z, rrset{Name: fqdn, Type: typ, TTL: in.TTL.D()}, nil
}

// Observe implements activities.Action.
func (a SetTTL) Observe(ctx context.Context, req activities.Request) (activities.Observation, error) {
	z, want, err := a.input(req)
	if err != nil {
		return activities.Observation{}, err
	}
	cur, err := z.read(ctx, want.Name, want.Type)
	if err != nil {
		return activities.Observation{}, opError(SetTTLAction, want.Name, want.Type, z.target, err)
	}
	o := activities.Observation{Current: cur.String(), State: cur.state(z.target), Measures: cur.measures(z.target)}
	switch {
	case !cur.exists():
		o.Changes = []string{fmt.Sprintf("set the TTL of %s %s to %s (it does not exist now: Apply fails unless an earlier step creates it)", want.Name, want.Type, want.TTL)}
	case cur.TTL != want.TTL:
		o.Changes = []string{fmt.Sprintf("set the TTL of %s %s from %s to %s", want.Name, want.Type, cur.TTL, want.TTL)}
	}
	return o, nil
}

// Apply implements activities.Action.
func (a SetTTL) Apply(ctx context.Context, req activities.Request) (activities.Result, error) {
	z, want, err := a.input(req)
	if err != nil {
		return activities.Result{}, err
	}
	fail := func(err error) (activities.Result, error) {
		return activities.Result{}, opError(SetTTLAction, want.Name, want.Type, z.target, err)
	}
	cur, err := z.read(ctx, want.Name, want.Type)
	if err != nil {
		return fail(err)
	}
	if !cur.exists() {
		return fail(activities.Permanentf("the RRset does not exist, so it has no TTL to set; create it with %s", SetAction))
	}
	want.Values = cur.Values
	prev, retried := before(ctx, cur)
	changed := true
	if cur.TTL == want.TTL {
		changed = retried && prev.TTL != want.TTL
	} else {
		activities.Heartbeat(ctx, progress{Before: prev})
		if err := z.write(ctx, want); err != nil {
			return fail(err)
		}
		if err := a.verify(ctx, z, want); err != nil {
			return fail(err)
		}
	}
	summary := fmt.Sprintf("%s %s already had TTL %s", want.Name, want.Type, want.TTL)
	if changed {
		summary = fmt.Sprintf("%s %s: TTL %s, was %s", want.Name, want.Type, want.TTL, prev.TTL)
	}
	return activities.Result{Changed: changed, Summary: summary, Outputs: map[string]any{
		"ttl":          ttlText(want.TTL),
		"previous_ttl": ttlText(prev.TTL),
	}}, nil
}
