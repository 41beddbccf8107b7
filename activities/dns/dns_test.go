//go:build linux

package dns_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/drctl/drctl/internal/testwait"

	"github.com/libdns/libdns"

	"github.com/drctl/drctl/activities"
	"github.com/drctl/drctl/activities/dns"
	"github.com/drctl/drctl/internal/dnslab"
	"github.com/drctl/drctl/runbooks"
)

const secretEnv = "DRCTL_TEST_TSIG_SECRET"

// lab is a real BIND 9 serving drctl.test., and a provider whose client
// counts the update messages it sends.
type lab struct {
	srv     *dnslab.Server
	p       *dns.Provider
	updates atomic.Int32
	target  runbooks.Target
}

// counting is the RFC 2136 client with every update-sending method counted.
type counting struct {
	*dns.RFC2136
	n *atomic.Int32
}

func (c counting) SetRecords(ctx context.Context, zone string, recs []libdns.Record) ([]libdns.Record, error) {
	c.n.Add(1)
	return c.RFC2136.SetRecords(ctx, zone, recs)
}

func (c counting) AppendRecords(ctx context.Context, zone string, recs []libdns.Record) ([]libdns.Record, error) {
	c.n.Add(1)
	return c.RFC2136.AppendRecords(ctx, zone, recs)
}

func (c counting) DeleteRecords(ctx context.Context, zone string, recs []libdns.Record) ([]libdns.Record, error) {
	c.n.Add(1)
	return c.RFC2136.DeleteRecords(ctx, zone, recs)
}

var (
	_ dns.Client            = counting{}
	_ dns.RRsetGetter       = counting{}
	_ libdns.RecordDeleter  = counting{}
	_ libdns.RecordAppender = counting{}
)

func newLab(t *testing.T) *lab {
	t.Helper()
	ctx := testwait.Context(t)
	srv, err := dnslab.Start(ctx, dnslab.Options{Records: []string{
		"www 300 IN A 192.0.2.1",
		"www 300 IN A 192.0.2.2",
		"db 300 IN CNAME db-east",
		"db-east 300 IN A 192.0.2.11",
		"db-west 300 IN A 192.0.2.21",
		"@ 300 IN TXT \"owner=drctl\"",
	}})
	if errors.Is(err, dnslab.ErrNotInstalled) && os.Getenv("DRCTL_CI") == "" {
		t.Skip("BIND 9 is needed (apt-get install bind9 bind9-dnsutils); CI sets DRCTL_CI=1 and fails instead: ", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Errorf("close lab: %v", err)
		}
	})
	t.Setenv(secretEnv, srv.Secret)
	l := &lab{srv: srv}
	l.target = runbooks.Target{
		Name: "zone", Kind: dns.TargetKind,
		Credentials: &runbooks.CredentialRef{Env: secretEnv},
		Attributes: map[string]string{
			dns.AttrServer: srv.Addr(), dns.AttrZone: "drctl.test.", dns.AttrKeyName: srv.KeyName, dns.AttrAlgorithm: "hmac-sha256",
		},
	}
	l.p = &dns.Provider{NewClient: func(t runbooks.Target, secret string) (dns.Client, error) {
		c, err := dns.NewRFC2136(t, secret)
		if err != nil {
			return nil, err
		}
		return counting{RFC2136: c.(*dns.RFC2136), n: &l.updates}, nil
	}}
	return l
}

func (l *lab) req(with map[string]any, targets ...runbooks.Target) activities.Request {
	if len(targets) == 0 {
		targets = []runbooks.Target{l.target}
	}
	with["target"] = targets[0].Name
	return activities.Request{Run: activities.Run{WorkflowID: "drctl-test", RunID: "run-1"}, Step: "dns", With: with, Targets: targets}
}

// answer asks the server directly (no drctl code) for name's values and TTL.
func (l *lab) answer(t *testing.T, name, typ string) ([]string, uint32) {
	t.Helper()
	rrs, err := l.srv.Query(context.Background(), name, typ)
	if err != nil {
		t.Fatal(err)
	}
	var vals []string
	var ttl uint32
	for _, rr := range rrs {
		vals = append(vals, strings.TrimPrefix(rr.String(), rr.Header().String()))
		ttl = rr.Header().Ttl
	}
	slices.Sort(vals)
	return vals, ttl
}

func (l *lab) serial(t *testing.T) uint32 {
	t.Helper()
	s, err := l.srv.Serial(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// noSecret fails the test if err's text holds any of the secrets.
func noSecret(t *testing.T, err error, secrets ...string) {
	t.Helper()
	if err == nil {
		return
	}
	for _, s := range secrets {
		if s != "" && strings.Contains(err.Error(), s) {
			t.Errorf("error shows a TSIG secret: %v", err)
		}
	}
}

func TestSet(t *testing.T) {
	l := newLab(t)
	ctx := ctxT(t)
	set := dns.Set{Provider: l.p}
	with := func() map[string]any {
		return map[string]any{"name": "www", "type": "a", "values": []any{"192.0.2.20", "192.0.2.10"}, "ttl": "30s"}
	}

	obs, err := set.Observe(ctx, l.req(with()))
	if err != nil {
		t.Fatal(err)
	}
	if len(obs.Changes) != 1 || !strings.Contains(obs.Changes[0], "to [192.0.2.10 192.0.2.20] ttl 30s (now [192.0.2.1 192.0.2.2] ttl 5m0s)") {
		t.Errorf("observe: %+v", obs)
	}
	before := l.serial(t)
	start := time.Now()
	res, err := set.Apply(ctx, l.req(with()))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("dns.set (observe + update + verify) took %v", time.Since(start))
	if !res.Changed || !slices.Equal(res.Outputs["changed_from"].([]string), []string{"192.0.2.1", "192.0.2.2"}) ||
		res.Outputs["previous_ttl"] != "5m0s" || res.Outputs["ttl"] != "30s" ||
		!slices.Equal(res.Outputs["values"].([]string), []string{"192.0.2.10", "192.0.2.20"}) {
		t.Errorf("apply: %+v", res)
	}
	// The server itself answers the new RRset, changed by one update message.
	if vals, ttl := l.answer(t, "www", "A"); !slices.Equal(vals, []string{"192.0.2.10", "192.0.2.20"}) || ttl != 30 {
		t.Errorf("server answers %v ttl %d", vals, ttl)
	}
	if got := l.serial(t); got != before+1 {
		t.Errorf("serial %d after the set, want %d (one update)", got, before+1)
	}
	if n := l.updates.Load(); n != 1 {
		t.Errorf("%d update messages, want 1", n)
	}

	// Again: already done, nothing sent, the zone untouched.
	serial := l.serial(t)
	obs, err = set.Observe(ctx, l.req(with()))
	if err != nil || len(obs.Changes) != 0 {
		t.Errorf("observe after set: %+v %v", obs, err)
	}
	res, err = set.Apply(ctx, l.req(with()))
	if err != nil {
		t.Fatal(err)
	}
	if res.Changed || !strings.Contains(res.Summary, "already held") {
		t.Errorf("second apply: %+v", res)
	}
	if n := l.updates.Load(); n != 1 {
		t.Errorf("second apply sent an update (%d in all)", n)
	}
	if got := l.serial(t); got != serial {
		t.Errorf("serial moved from %d to %d on a no-op", serial, got)
	}

	// Values written differently but meaning the same are the same.
	same := map[string]any{"name": "WWW.drctl.test.", "type": "A", "values": []any{" 192.0.2.10", "192.0.2.20", "192.0.2.10"}, "ttl": "30s"}
	if res, err := set.Apply(ctx, l.req(same)); err != nil || res.Changed {
		t.Errorf("equivalent set: %+v %v", res, err)
	}
	// A different TTL alone is a change.
	ttlOnly := with()
	ttlOnly["ttl"] = "45s"
	if res, err := set.Apply(ctx, l.req(ttlOnly)); err != nil || !res.Changed {
		t.Errorf("ttl-only set: %+v %v", res, err)
	}
	if _, ttl := l.answer(t, "www", "A"); ttl != 45 {
		t.Errorf("ttl %d, want 45", ttl)
	}
}

// TestSetMovesCNAME is the failover move: db points at db-west, and the
// compensation (values: changed_from) points it back.
func TestSetMovesCNAME(t *testing.T) {
	l := newLab(t)
	ctx := ctxT(t)
	set := dns.Set{Provider: l.p}
	res, err := set.Apply(ctx, l.req(map[string]any{"name": "db", "type": "CNAME", "values": []any{"db-west"}}))
	if err != nil {
		t.Fatal(err)
	}
	if vals, ttl := l.answer(t, "db", "CNAME"); !slices.Equal(vals, []string{"db-west.drctl.test."}) || ttl != 60 {
		t.Errorf("server answers %v ttl %d (default ttl 60)", vals, ttl)
	}
	back, err := set.Apply(ctx, l.req(map[string]any{"name": "db", "type": "CNAME",
		"values": res.Outputs["changed_from"], "ttl": res.Outputs["previous_ttl"]}))
	if err != nil || !back.Changed {
		t.Fatalf("compensation: %+v %v", back, err)
	}
	if vals, ttl := l.answer(t, "db", "CNAME"); !slices.Equal(vals, []string{"db-east.drctl.test."}) || ttl != 300 {
		t.Errorf("after compensation the server answers %v ttl %d", vals, ttl)
	}
}

// TestSetCreatesAndDeletes: a new RRset (long TXT), then values: [] removes
// it, and a compensation with the empty changed_from removes a created one.
func TestSetCreatesAndDeletes(t *testing.T) {
	l := newLab(t)
	ctx := ctxT(t)
	set := dns.Set{Provider: l.p}
	long := strings.Repeat("k", 300) + ` with "quotes"`
	res, err := set.Apply(ctx, l.req(map[string]any{"name": "_acme", "type": "TXT", "values": []any{long, "short"}}))
	if err != nil {
		t.Fatal(err)
	}
	if !res.Changed || len(res.Outputs["changed_from"].([]string)) != 0 || res.Outputs["previous_ttl"] != "0s" {
		t.Errorf("create: %+v", res)
	}
	if vals, _ := l.answer(t, "_acme", "TXT"); len(vals) != 2 {
		t.Errorf("server answers %v", vals)
	}
	// The long value reads back equal: a second set is a no-op.
	if again, err := set.Apply(ctx, l.req(map[string]any{"name": "_acme", "type": "TXT", "values": []any{"short", long}})); err != nil || again.Changed {
		t.Errorf("second set of the long TXT: %+v %v", again, err)
	}
	del, err := set.Apply(ctx, l.req(map[string]any{"name": "_acme", "type": "TXT", "values": res.Outputs["changed_from"]}))
	if err != nil || !del.Changed {
		t.Fatalf("delete: %+v %v", del, err)
	}
	if vals, _ := l.answer(t, "_acme", "TXT"); len(vals) != 0 {
		t.Errorf("still answers %v after the delete", vals)
	}
	n := l.updates.Load()
	if del, err := set.Apply(ctx, l.req(map[string]any{"name": "_acme", "type": "TXT", "values": []any{}})); err != nil || del.Changed {
		t.Errorf("second delete: %+v %v", del, err)
	}
	if l.updates.Load() != n {
		t.Error("second delete sent an update")
	}
}

func TestSetTTL(t *testing.T) {
	l := newLab(t)
	ctx := ctxT(t)
	st := dns.SetTTL{Provider: l.p}
	with := func() map[string]any { return map[string]any{"name": "www", "type": "A", "ttl": "30s"} }
	obs, err := st.Observe(ctx, l.req(with()))
	if err != nil || len(obs.Changes) != 1 || !strings.Contains(obs.Changes[0], "from 5m0s to 30s") {
		t.Errorf("observe: %+v %v", obs, err)
	}
	res, err := st.Apply(ctx, l.req(with()))
	if err != nil {
		t.Fatal(err)
	}
	if !res.Changed || res.Outputs["ttl"] != "30s" || res.Outputs["previous_ttl"] != "5m0s" {
		t.Errorf("apply: %+v", res)
	}
	if vals, ttl := l.answer(t, "www", "A"); !slices.Equal(vals, []string{"192.0.2.1", "192.0.2.2"}) || ttl != 30 {
		t.Errorf("server answers %v ttl %d; want the values unchanged, ttl 30", vals, ttl)
	}
	n := l.updates.Load()
	if res, err := st.Apply(ctx, l.req(with())); err != nil || res.Changed || res.Outputs["previous_ttl"] != "30s" {
		t.Errorf("second apply: %+v %v", res, err)
	}
	if l.updates.Load() != n {
		t.Error("second set_ttl sent an update")
	}
	_, err = st.Apply(ctx, l.req(map[string]any{"name": "nothing-here", "type": "A", "ttl": "30s"}))
	if !activities.IsPermanent(err) || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("set_ttl of a missing RRset: %v", err)
	}
}

func TestCheck(t *testing.T) {
	l := newLab(t)
	ctx := ctxT(t)
	check := dns.Check{Provider: l.p}
	for _, tc := range []struct {
		name string
		with map[string]any
		fail string // empty: passes
	}{
		{"exists", map[string]any{"name": "www", "type": "A"}, ""},
		{"expected values", map[string]any{"name": "www", "type": "A", "expect": []any{"192.0.2.2", "192.0.2.1"}, "max_ttl": "5m"}, ""},
		{"cname relative", map[string]any{"name": "db", "type": "CNAME", "expect": []any{"db-east"}}, ""},
		{"txt quoted", map[string]any{"name": "@", "type": "TXT", "expect": []any{`"owner=drctl"`}}, ""},
		{"absent as expected", map[string]any{"name": "gone", "type": "A", "expect": []any{}}, ""},
		{"wrong value", map[string]any{"name": "www", "type": "A", "expect": []any{"192.0.2.1"}},
			"it holds [192.0.2.1 192.0.2.2], expected [192.0.2.1]"},
		{"ttl too long", map[string]any{"name": "www", "type": "A", "max_ttl": "60s"}, "its TTL 5m0s exceeds max_ttl 1m0s"},
		{"missing", map[string]any{"name": "gone", "type": "A"}, "does not exist"},
		{"present, expected absent", map[string]any{"name": "www", "type": "A", "expect": []any{}}, "expected it not to exist"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := check.Apply(ctx, l.req(tc.with))
			obs, oerr := check.Observe(ctx, l.req(tc.with))
			if oerr != nil || len(obs.Changes) != 0 {
				t.Errorf("observe: %+v %v", obs, oerr)
			}
			if tc.fail == "" {
				if err != nil {
					t.Fatal(err)
				}
				if !strings.Contains(obs.Current, "the check passes") {
					t.Errorf("observe: %+v", obs)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.fail) {
				t.Fatalf("got %+v, %v; want a failure containing %q", res, err, tc.fail)
			}
			if activities.IsPermanent(err) {
				t.Errorf("a failed check must be retryable (retries poll): %v", err)
			}
			if !strings.Contains(obs.Current, "would fail now: ") {
				t.Errorf("observe: %+v", obs)
			}
		})
	}
	res, err := check.Apply(ctx, l.req(map[string]any{"name": "www", "type": "A"}))
	if err != nil || !slices.Equal(res.Outputs["values"].([]string), []string{"192.0.2.1", "192.0.2.2"}) || res.Outputs["ttl"] != "5m0s" {
		t.Errorf("outputs: %+v %v", res, err)
	}
	if l.updates.Load() != 0 {
		t.Error("a check sent an update")
	}
}

// TestWrongKey: a wrong secret (BADSIG) or a key the server does not know
// (BADKEY) is refused, permanently, with the key named and no secret shown;
// reads are signed too, so even Observe and dns.check catch it.
func TestWrongKey(t *testing.T) {
	l := newLab(t)
	ctx := ctxT(t)
	raw := make([]byte, 32)
	_, _ = rand.Read(raw)
	wrong := base64.StdEncoding.EncodeToString(raw)

	t.Setenv(secretEnv, wrong)
	with := func() map[string]any {
		return map[string]any{"name": "www", "type": "A", "values": []any{"192.0.2.99"}}
	}
	_, err := dns.Set{Provider: l.p}.Apply(ctx, l.req(with()))
	if !activities.IsPermanent(err) || !strings.Contains(err.Error(), "refused TSIG key "+l.srv.KeyName+" (BADSIG)") ||
		!strings.Contains(err.Error(), l.srv.Addr()) {
		t.Errorf("wrong secret: %v", err)
	}
	t.Log(err)
	noSecret(t, err, wrong, l.srv.Secret)
	_, err = dns.Check{Provider: l.p}.Observe(ctx, l.req(map[string]any{"name": "www", "type": "A"}))
	if !activities.IsPermanent(err) || !strings.Contains(err.Error(), "BADSIG") {
		t.Errorf("check with a wrong secret: %v", err)
	}
	noSecret(t, err, wrong, l.srv.Secret)

	// Bypass the read: the update itself is refused too.
	c := &dns.RFC2136{Server: l.srv.Addr(), KeyName: l.srv.KeyName, Secret: dns.Secret(wrong)}
	_, err = c.SetRecords(ctx, "drctl.test.", []libdns.Record{libdns.Address{Name: "www", TTL: time.Minute, IP: mustAddr("192.0.2.99")}})
	if !activities.IsPermanent(err) || !strings.Contains(err.Error(), "BADSIG") {
		t.Errorf("update with a wrong secret: %v", err)
	}
	noSecret(t, err, wrong, l.srv.Secret)
	_, err = c.GetRecords(ctx, "drctl.test.")
	if !activities.IsPermanent(err) || !strings.Contains(err.Error(), "BADSIG") {
		t.Errorf("transfer with a wrong secret: %v", err)
	}

	t.Setenv(secretEnv, l.srv.Secret)
	unknown := l.target
	unknown.Attributes = map[string]string{dns.AttrServer: l.srv.Addr(), dns.AttrZone: "drctl.test.", dns.AttrKeyName: "nobody.drctl.test."}
	_, err = dns.Set{Provider: l.p}.Apply(ctx, l.req(with(), unknown))
	if !activities.IsPermanent(err) || !strings.Contains(err.Error(), "refused TSIG key nobody.drctl.test. (BADKEY)") {
		t.Errorf("unknown key: %v", err)
	}
	noSecret(t, err, l.srv.Secret)

	if vals, _ := l.answer(t, "www", "A"); !slices.Equal(vals, []string{"192.0.2.1", "192.0.2.2"}) {
		t.Errorf("the zone changed: %v", vals)
	}
	if n := l.updates.Load(); n != 0 {
		t.Errorf("%d updates sent after a refused read", n)
	}
}

// TestServerDown: a stopped server is a retryable error naming the server.
func TestServerDown(t *testing.T) {
	l := newLab(t)
	ctx := ctxT(t)
	if err := l.srv.Stop(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	var lastErr error
	for _, a := range []activities.Action{dns.Set{Provider: l.p}, dns.SetTTL{Provider: l.p}, dns.Check{Provider: l.p}} {
		with := map[string]any{"name": "www", "type": "A"}
		switch a.(type) {
		case dns.Set:
			with["values"] = []any{"192.0.2.99"}
		case dns.SetTTL:
			with["ttl"] = "30s"
		}
		_, err := a.Apply(ctx, l.req(with))
		if err == nil || activities.IsPermanent(err) || !strings.Contains(err.Error(), l.srv.Addr()) || !strings.Contains(err.Error(), "unreachable") {
			t.Errorf("%s with the server down: %v; want a retryable error naming %s", a.Spec().Name, err, l.srv.Addr())
		}
		noSecret(t, err, l.srv.Secret)
		lastErr = err
	}
	t.Logf("three actions failed in %v with the server down; e.g. %v", time.Since(start), lastErr)

	// Back up: the retry succeeds.
	if err := l.srv.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := (dns.Set{Provider: l.p}).Apply(ctx, l.req(map[string]any{"name": "www", "type": "A", "values": []any{"192.0.2.99"}})); err != nil {
		t.Errorf("after restart: %v", err)
	}
}

// TestZoneNotServed: a target naming a zone the server does not serve is a
// permanent error naming the zone and the server, for reads and updates.
func TestZoneNotServed(t *testing.T) {
	l := newLab(t)
	ctx := ctxT(t)
	other := l.target
	other.Attributes = map[string]string{dns.AttrServer: l.srv.Addr(), dns.AttrZone: "other.test.", dns.AttrKeyName: l.srv.KeyName}
	_, err := dns.Set{Provider: l.p}.Apply(ctx, l.req(map[string]any{"name": "www", "type": "A", "values": []any{"192.0.2.99"}}, other))
	if !activities.IsPermanent(err) || !strings.Contains(err.Error(), "zone other.test.") || !strings.Contains(err.Error(), l.srv.Addr()) {
		t.Errorf("set in a zone not served: %v", err)
	}
	t.Log(err)
	noSecret(t, err, l.srv.Secret)

	c := &dns.RFC2136{Server: l.srv.Addr(), KeyName: l.srv.KeyName, Secret: dns.Secret(l.srv.Secret)}
	_, err = c.SetRecords(ctx, "other.test.", []libdns.Record{libdns.Address{Name: "www", TTL: time.Minute, IP: mustAddr("192.0.2.99")}})
	if !activities.IsPermanent(err) || !strings.Contains(err.Error(), "zone other.test.") || !strings.Contains(err.Error(), "NOTAUTH") {
		t.Errorf("update of a zone not served: %v", err)
	}
	t.Log(err)
}

// TestBadInputs are refused permanently before anything is sent.
func TestBadInputs(t *testing.T) {
	l := newLab(t)
	ctx := ctxT(t)
	set := dns.Set{Provider: l.p}
	for _, tc := range []struct {
		with map[string]any
		want string
	}{
		{map[string]any{"name": "www", "type": "SOA", "values": []any{"x"}}, "managed by the server"},
		{map[string]any{"name": "www", "type": "BOGUS", "values": []any{"x"}}, "not a record type"},
		{map[string]any{"name": "www.drctl.test", "type": "A", "values": []any{"192.0.2.1"}}, "trailing dot"},
		{map[string]any{"name": "www.other.test.", "type": "A", "values": []any{"192.0.2.1"}}, "not in zone drctl.test."},
		{map[string]any{"name": "db", "type": "CNAME", "values": []any{"a.", "b."}}, "one value"},
		{map[string]any{"name": "www", "type": "A", "values": []any{"192.0.2.1"}, "ttl": "1.5s"}, "whole number of seconds"},
		{map[string]any{"name": "www", "type": "A", "values": []any{"300.0.0.1"}}, `A value "300.0.0.1"`},
	} {
		_, err := set.Apply(ctx, l.req(tc.with))
		if !activities.IsPermanent(err) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v; want a permanent error containing %q", tc.with, err, tc.want)
		}
	}
	noEnv := l.target
	noEnv.Credentials = &runbooks.CredentialRef{Env: "DRCTL_TEST_UNSET_VARIABLE"}
	_, err := set.Apply(ctx, l.req(map[string]any{"name": "www", "type": "A", "values": []any{"192.0.2.1"}}, noEnv))
	if !activities.IsPermanent(err) || !strings.Contains(err.Error(), "DRCTL_TEST_UNSET_VARIABLE is not set") {
		t.Errorf("unset secret variable: %v", err)
	}
	notB64 := "this is not base64 " + l.srv.Secret
	t.Setenv(secretEnv, notB64)
	_, err = set.Apply(ctx, l.req(map[string]any{"name": "www", "type": "A", "values": []any{"192.0.2.1"}}))
	if !activities.IsPermanent(err) || !strings.Contains(err.Error(), "not base64") {
		t.Errorf("malformed secret: %v", err)
	}
	noSecret(t, err, notB64, l.srv.Secret)
	if l.updates.Load() != 0 {
		t.Error("a bad input sent an update")
	}
}

// TestGetRecords reads the whole zone by a signed transfer: libdns typed
// records, names relative to the zone, SOA left out.
func TestGetRecords(t *testing.T) {
	l := newLab(t)
	c := &dns.RFC2136{Server: l.srv.Addr(), KeyName: l.srv.KeyName, Secret: dns.Secret(l.srv.Secret)}
	recs, err := c.GetRecords(ctxT(t), "drctl.test.")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range recs {
		switch r.(type) {
		case libdns.Address, libdns.CNAME, libdns.TXT, libdns.NS:
		default:
			t.Errorf("untyped record %T %v", r, r.RR())
		}
		rr := r.RR()
		got = append(got, rr.Name+" "+rr.Type+" "+rr.Data)
	}
	slices.Sort(got)
	want := []string{"@ NS ns1.drctl.test.", "@ TXT owner=drctl", "db CNAME db-east.drctl.test.", "db-east A 192.0.2.11",
		"db-west A 192.0.2.21", "ns1 A 127.0.0.1", "www A 192.0.2.1", "www A 192.0.2.2"}
	if !slices.Equal(got, want) {
		t.Errorf("zone:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestDig: what dns.set wrote is what a plain dig sees.
func TestDig(t *testing.T) {
	dig, err := exec.LookPath("dig")
	if err != nil {
		t.Skip("dig not installed")
	}
	l := newLab(t)
	ctx := ctxT(t)
	if _, err := (dns.Set{Provider: l.p}).Apply(ctx, l.req(map[string]any{"name": "www", "type": "A", "values": []any{"192.0.2.77"}, "ttl": "42s"})); err != nil {
		t.Fatal(err)
	}
	out, err := exec.CommandContext(ctx, dig, "+norecurse", "+noall", "+answer", "-p", strings.TrimPrefix(l.srv.Addr(), "127.0.0.1:"),
		"@127.0.0.1", "www.drctl.test.", "A").CombinedOutput()
	if err != nil {
		t.Fatalf("dig: %v: %s", err, out)
	}
	if f := strings.Fields(string(out)); len(f) != 5 || f[1] != "42" || f[4] != "192.0.2.77" {
		t.Errorf("dig answers %q", out)
	}
}

// TestLatency measures the provider's exchanges against the real server.
func TestLatency(t *testing.T) {
	l := newLab(t)
	ctx := ctxT(t)
	c := &dns.RFC2136{Server: l.srv.Addr(), KeyName: l.srv.KeyName, Secret: dns.Secret(l.srv.Secret)}
	const n = 50
	var update, query time.Duration
	for i := range n {
		ip := mustAddr(fmt.Sprintf("192.0.2.%d", 10+i%10))
		start := time.Now()
		if _, err := c.SetRecords(ctx, "drctl.test.", []libdns.Record{libdns.Address{Name: "lat", TTL: time.Minute, IP: ip}}); err != nil {
			t.Fatal(err)
		}
		update += time.Since(start)
		start = time.Now()
		if _, err := c.GetRRset(ctx, "drctl.test.", "lat", "A"); err != nil {
			t.Fatal(err)
		}
		query += time.Since(start)
	}
	set := dns.Set{Provider: l.p}
	var apply time.Duration
	for i := range n {
		start := time.Now()
		res, err := set.Apply(ctx, l.req(map[string]any{"name": "www", "type": "A", "values": []any{fmt.Sprintf("192.0.2.%d", 1+i%2)}}))
		if err != nil || !res.Changed {
			t.Fatal(res, err)
		}
		apply += time.Since(start)
	}
	t.Logf("mean over %d: update (TCP, TSIG) %v; signed query (UDP) %v; dns.set Apply (read + update + verify) %v",
		n, update/n, query/n, apply/n)
}

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }
