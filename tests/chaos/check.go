package main

import (
	"context"
	"fmt"
	"os"
	"slices"

	"github.com/drctl/drctl/activities/traffic"
	"github.com/drctl/drctl/internal/haproxylab"
	"github.com/drctl/drctl/internal/lab"
	"github.com/drctl/drctl/workflows"
)

// sideEffects are the steps of site-failover.yaml that change the lab, and
// how to see from outside that the change is in place.
var sideEffects = []struct {
	step  string
	what  string
	there func(ctx context.Context, l *lab.Lab) bool
}{
	{"fence-east", "east's database fenced", func(_ context.Context, l *lab.Lab) bool { return l.Fenced(lab.East) }},
	{"promote-west", "west's database a primary", func(ctx context.Context, l *lab.Lab) bool {
		standby, err := l.Node(lab.West).InRecovery(ctx)
		return err == nil && !standby
	}},
	{"dns-to-west", "app answers west", func(ctx context.Context, l *lab.Lab) bool {
		return answers(ctx, l, lab.AppName, lab.WestAppAddr)
	}},
	{"db-dns-to-west", "db answers west", func(ctx context.Context, l *lab.Lab) bool {
		return answers(ctx, l, lab.DBName, lab.WestDBAddr)
	}},
	{"traffic-to-west", "HAProxy sends app traffic to west only", func(ctx context.Context, l *lab.Lab) bool {
		state, err := l.LB.Command(ctx, "show servers state "+lab.AppBackend)
		if err != nil {
			return false
		}
		snap, err := traffic.ParseServersState(state)
		if err != nil {
			return false
		}
		east, _ := snap.Server(lab.AppBackend, haproxylab.EastServer)
		west, _ := snap.Server(lab.AppBackend, haproxylab.WestServer)
		return east.Mode() == traffic.ModeMaint && west.Mode() == traffic.ModeReady
	}},
}

func answers(ctx context.Context, l *lab.Lab, name, addr string) bool {
	got, err := lab.LookupA(ctx, l.DNS.Addr(), name+"."+l.Zone)
	return err == nil && slices.Equal(got, []string{addr})
}

// sideEffectsInPlace reads which side effects are in place, by step; with
// no worker running nothing changes them while it looks. promoted is the
// file the testworker writes once it has run pg_promote ("" if it holds no
// promotion).
func sideEffectsInPlace(ctx context.Context, l *lab.Lab, promoted string) map[string]bool {
	out := map[string]bool{}
	for _, e := range sideEffects {
		out[e.step] = e.there(ctx, l)
	}
	if promoted != "" {
		if _, err := os.Stat(promoted); err == nil {
			out["promote-west"] = true
		}
	}
	return out
}

// check tests the invariants from outside the run and returns what is
// violated.
func (s *suite) check(ctx context.Context, l *lab.Lab, rep *workflows.Report, stats lab.LoadStats, res *result, snapshot map[string]bool, hist *history) []string {
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }

	if rep.State != workflows.StateSucceeded {
		bad("the run ended %s: %s", rep.State, rep.Error)
	}
	// Exactly one primary.
	if standby, err := l.Node(lab.West).InRecovery(ctx); err != nil || standby {
		bad("west's database is not a primary (in recovery %t, %v)", standby, err)
	}
	if writable, err := l.AppWritable(ctx, lab.East); err != nil || writable {
		bad("east's database takes the app's writes too (writable %t, %v)", writable, err)
	}
	// Names, asked of the zone's authoritative server.
	for name, want := range map[string]string{lab.AppName: lab.WestAppAddr, lab.DBName: lab.WestDBAddr} {
		if got, err := lab.LookupA(ctx, l.DNS.Addr(), name+"."+l.Zone); err != nil || !slices.Equal(got, []string{want}) {
			bad("DNS %s answers %v (%v), want %s", name, got, err, want)
		}
	}
	// Traffic: requests through HAProxy land on west's app, writing on west.
	for range 3 {
		h, err := lab.GetHealth(ctx, l.FrontendURL())
		if err != nil || h.Site != lab.West || h.DBSite != lab.West {
			bad("a request through HAProxy: app %q writing to %q (%v), want west and west", h.Site, h.DBSite, err)
			break
		}
	}
	// No acknowledged write lost.
	ids := stats.IDs()
	present, err := lab.Present(ctx, l.AppDSN(lab.West), ids)
	res.lost = len(ids) - present
	if err != nil {
		bad("counting the acknowledged writes on west: %v", err)
	} else if res.lost > 0 {
		beforeFence := 0
		if f, ok := rep.Step("fence-east"); ok && f.StartedAt != nil {
			beforeFence = stats.Before(*f.StartedAt)
		}
		on, _ := lab.Present(ctx, l.AppDSN(lab.West), ids[:beforeFence])
		bad("%d of %d acknowledged writes are not on west (%d of the %d acknowledged before the fence)", res.lost, len(ids), beforeFence-on, beforeFence)
	}
	// West promoted exactly once.
	if tl, err := l.Timeline(ctx, lab.West); err != nil || tl != 2 {
		bad("west's timeline is %d (%v), want 2: one promotion", tl, err)
	}
	if n, err := l.Promotions(ctx, lab.West); err != nil || n != 1 {
		bad("drctl.promotions on west has %d rows (%v), want 1", n, err)
	}
	// No step acted again: a step whose change was in place when the
	// worker died, and that a later attempt finished, must report no change.
	for _, e := range sideEffects {
		st, ok := rep.Step(e.step)
		if !ok || !snapshot[e.step] {
			continue
		}
		if by, _ := hist.completedBy(e.step); by == killedWorker {
			continue // finished before the kill
		}
		if st.Changed {
			bad("%s acted twice: %s when the worker was killed, yet attempt %d reported a change (%s)", e.step, e.what, st.Attempts, st.Summary)
		}
	}
	// Every step reports its outcome.
	for _, st := range rep.Steps {
		if st.State != workflows.StepSucceeded && rep.State == workflows.StateSucceeded {
			bad("step %s: %s in a run that succeeded", st.ID, st.State)
		}
	}
	return problems
}
