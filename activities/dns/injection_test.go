//go:build linux

package dns_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libdns/libdns"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/drctl/drctl/activities"
	"github.com/drctl/drctl/activities/dns"
	"github.com/drctl/drctl/runbooks"
)

// recorder is the RFC 2136 client with every call counted, reads
// included: an input the provider refuses must reach none of them.
type recorder struct {
	*dns.RFC2136
	calls *atomic.Int32
}

func (c recorder) GetRRset(ctx context.Context, zone, name, typ string) ([]libdns.Record, error) {
	c.calls.Add(1)
	return c.RFC2136.GetRRset(ctx, zone, name, typ)
}

func (c recorder) GetRecords(ctx context.Context, zone string) ([]libdns.Record, error) {
	c.calls.Add(1)
	return c.RFC2136.GetRecords(ctx, zone)
}

func (c recorder) SetRecords(ctx context.Context, zone string, recs []libdns.Record) ([]libdns.Record, error) {
	c.calls.Add(1)
	return c.RFC2136.SetRecords(ctx, zone, recs)
}

func (c recorder) DeleteRecords(ctx context.Context, zone string, recs []libdns.Record) ([]libdns.Record, error) {
	c.calls.Add(1)
	return c.RFC2136.DeleteRecords(ctx, zone, recs)
}

var (
	_ dns.Client           = recorder{}
	_ dns.RRsetGetter      = recorder{}
	_ libdns.RecordDeleter = recorder{}
)

// zoneSnapshot is the whole zone as the server holds it (a signed
// transfer, SOA included through its serial), one line per record, sorted.
func zoneSnapshot(t *testing.T, l *lab) []string {
	t.Helper()
	c := &dns.RFC2136{Server: l.srv.Addr(), KeyName: l.srv.KeyName, Secret: dns.Secret(l.srv.Secret)}
	recs, err := c.GetRecords(ctxT(t), l.srv.Zone)
	if err != nil {
		t.Fatal(err)
	}
	lines := []string{fmt.Sprintf("serial %d", l.serial(t))}
	for _, r := range recs {
		rr := r.RR()
		lines = append(lines, fmt.Sprintf("%s %s %s %q", rr.Name, rr.TTL, rr.Type, rr.Data))
	}
	slices.Sort(lines)
	return lines
}

// The hints every refused name ends with, for the lab's zone.
const (
	nameRule = `a name is letters, digits, '-' and '_' in labels of at most 63 bytes, separated by dots: ` +
		`write e.g. "www" (relative to zone drctl.test.), "www.drctl.test." (fully qualified) or "@" (the apex)`
)

// TestHostileInputsRefused is issue 10 item 1 (DNS zone injection): a name
// or value that is not one plain DNS name or value, such as a runbook
// parameter holding zone-file text, is refused by every DNS action with a
// permanent error that names the action and target and says what to write,
// before the provider is called at all; the zone on the real server is
// unchanged afterwards.
func TestHostileInputsRefused(t *testing.T) {
	l := newLab(t)
	ctx := ctxT(t)
	var calls atomic.Int32
	p := &dns.Provider{NewClient: func(t runbooks.Target, secret string) (dns.Client, error) {
		c, err := dns.NewRFC2136(t, secret)
		if err != nil {
			return nil, err
		}
		return recorder{RFC2136: c.(*dns.RFC2136), calls: &calls}, nil
	}}
	before := zoneSnapshot(t, l)

	label64 := strings.Repeat("a", 64)
	long := strings.Repeat("abcdefghi.", 25) + "abc" // 253 bytes relative, 265 fully qualified
	a := func(name string, values ...any) map[string]any {
		return map[string]any{"name": name, "type": "A", "values": values}
	}
	for _, tc := range []struct {
		name   string
		action activities.Action
		with   map[string]any
		want   string
	}{
		// The reported injection: the name carries a record and a comment.
		{"zone-file text in the name", dns.Set{Provider: p}, a("app IN A 6.6.6.6 ;", "127.0.0.22"),
			`dns.set (target zone): name "app IN A 6.6.6.6 ;": a space is not allowed; ` + nameRule},
		{"empty (a parameter left empty)", dns.Set{Provider: p}, a("", "127.0.0.22"),
			`dns.set (target zone): name "" is empty: write "@" for the zone's apex, or a name such as "www"`},
		{"line break", dns.Set{Provider: p}, a("app\n", "127.0.0.22"),
			`dns.set (target zone): name "app\n": a line break is not allowed; ` + nameRule},
		{"leading space", dns.Set{Provider: p}, a(" app", "127.0.0.22"),
			`dns.set (target zone): name " app": a space is not allowed; ` + nameRule},
		{"tab", dns.Set{Provider: p}, a("app\t60", "127.0.0.22"),
			`dns.set (target zone): name "app\t60": a tab is not allowed; ` + nameRule},
		{"semicolon", dns.Set{Provider: p}, a("app;x", "127.0.0.22"),
			`dns.set (target zone): name "app;x": a ';' is not allowed; ` + nameRule},
		{"space", dns.Set{Provider: p}, a("a b", "127.0.0.22"),
			`dns.set (target zone): name "a b": a space is not allowed; ` + nameRule},
		{"NUL", dns.Set{Provider: p}, a("app\x00", "127.0.0.22"),
			`dns.set (target zone): name "app\x00": a control character (0x00) is not allowed; ` + nameRule},
		{"escape", dns.Set{Provider: p}, a(`app\032x`, "127.0.0.22"),
			`dns.set (target zone): name "app\\032x": a '\' is not allowed (escapes are not accepted); ` + nameRule},
		{"escaped dot", dns.Set{Provider: p}, a(`app\.drctl.test.`, "127.0.0.22"),
			`dns.set (target zone): name "app\\.drctl.test.": a '\' is not allowed (escapes are not accepted); ` + nameRule},
		{"@ inside a name", dns.Set{Provider: p}, a("app.@", "127.0.0.22"),
			`dns.set (target zone): name "app.@": an '@' is not allowed ("@" alone is the zone's apex); ` + nameRule},
		{"$ORIGIN", dns.Set{Provider: p}, a("$ORIGIN", "127.0.0.22"),
			`dns.set (target zone): name "$ORIGIN": a '$' is not allowed; ` + nameRule},
		{"parenthesis", dns.Set{Provider: p}, a("app(", "127.0.0.22"),
			`dns.set (target zone): name "app(": a '(' is not allowed; ` + nameRule},
		{"non-ASCII", dns.Set{Provider: p}, a("äpp", "127.0.0.22"),
			`dns.set (target zone): name "äpp": a non-ASCII character 'ä' is not allowed (write an internationalized name in its xn-- form); ` + nameRule},
		{"64-byte label", dns.Set{Provider: p}, a(label64, "127.0.0.22"),
			`dns.set (target zone): name "` + label64 + `": label "` + label64 + `" is 64 bytes long; ` + nameRule},
		{"name too long", dns.Set{Provider: p}, a(long, "127.0.0.22"),
			`dns.set (target zone): name "` + long + `": it is 264 bytes long fully qualified, more than 253; ` + nameRule},
		{"empty label", dns.Set{Provider: p}, a("a..b", "127.0.0.22"),
			`dns.set (target zone): name "a..b": it has an empty label (a leading dot or two dots in a row); ` + nameRule},
		{"leading hyphen", dns.Set{Provider: p}, a("-app", "127.0.0.22"),
			`dns.set (target zone): name "-app": label "-app" starts with '-'; ` + nameRule},
		{"outside the zone", dns.Set{Provider: p}, a("app.other.test.", "127.0.0.22"),
			`dns.set (target zone): name "app.other.test." is not in zone drctl.test., the target's zone: ` +
				`write a name inside it, e.g. "www" or "www.drctl.test.", or use a target whose zone holds it`},
		{"wildcard", dns.Set{Provider: p}, a("*", "127.0.0.22"),
			`dns.set (target zone): name "*": a '*' is not allowed (drctl does not manage wildcard records); ` + nameRule},
		{"wildcard fully qualified", dns.Set{Provider: p}, a("*.drctl.test.", "127.0.0.22"),
			`dns.set (target zone): name "*.drctl.test.": a '*' is not allowed (drctl does not manage wildcard records); ` + nameRule},

		{"zone-file text in an A value", dns.Set{Provider: p}, a("app", "1.2.3.4 ; x"),
			`dns.set app.drctl.test. A (target zone): A value "1.2.3.4 ; x" is not an IPv4 address; write one address per value, e.g. "192.0.2.10"`},
		{"a second record in a value", dns.Set{Provider: p}, a("app", "1.2.3.4\napp 60 IN A 6.6.6.6"),
			`dns.set app.drctl.test. A (target zone): A value "1.2.3.4\napp 60 IN A 6.6.6.6": a line break is not allowed; write one value per list item, e.g. "192.0.2.10"`},
		{"IPv6 in an A record", dns.Set{Provider: p}, a("app", "2001:db8::1"),
			`dns.set app.drctl.test. A (target zone): A value "2001:db8::1" is an IPv6 address; an A record holds IPv4 addresses: set it with type AAAA`},
		{"IPv4-mapped in an A record", dns.Set{Provider: p}, a("app", "::ffff:192.0.2.1"),
			`dns.set app.drctl.test. A (target zone): A value "::ffff:192.0.2.1" is an IPv4-mapped IPv6 address; write "192.0.2.1"`},
		{"IPv4 in an AAAA record", dns.Set{Provider: p}, map[string]any{"name": "app", "type": "AAAA", "values": []any{"192.0.2.1"}},
			`dns.set app.drctl.test. AAAA (target zone): AAAA value "192.0.2.1" is an IPv4 address; an AAAA record holds IPv6 addresses: set it with type A`},
		{"scoped IPv6", dns.Set{Provider: p}, map[string]any{"name": "app", "type": "AAAA", "values": []any{"fe80::1%eth0"}},
			`dns.set app.drctl.test. AAAA (target zone): AAAA value "fe80::1%eth0" has a zone ("eth0"), which DNS cannot hold; write "fe80::1"`},
		{"zone-file text in a CNAME value", dns.Set{Provider: p}, map[string]any{"name": "app", "type": "CNAME", "values": []any{"evil. 60 IN A 6.6.6.6"}},
			`dns.set app.drctl.test. CNAME (target zone): CNAME value "evil. 60 IN A 6.6.6.6": a space is not allowed; ` + nameRule},
		{"zone-file text in an MX value", dns.Set{Provider: p}, map[string]any{"name": "app", "type": "MX", "values": []any{"10 mail ; x"}},
			`dns.set app.drctl.test. MX (target zone): MX value "10 mail ; x" is not "preference host", e.g. "10 mail"`},
		{"MX preference out of range", dns.Set{Provider: p}, map[string]any{"name": "app", "type": "MX", "values": []any{"65536 mail"}},
			`dns.set app.drctl.test. MX (target zone): MX value "65536 mail": preference "65536" is not a whole number from 0 to 65535`},
		{"SRV port out of range", dns.Set{Provider: p}, map[string]any{"name": "_pg._tcp", "type": "SRV", "values": []any{"0 5 70000 db"}},
			`dns.set _pg._tcp.drctl.test. SRV (target zone): SRV value "0 5 70000 db": port "70000" is not a whole number from 0 to 65535`},
		{"CAA value with a quote", dns.Set{Provider: p}, map[string]any{"name": "@", "type": "CAA", "values": []any{`0 issue "a" "b"`}},
			`dns.set drctl.test. CAA (target zone): CAA value "0 issue \"a\" \"b\"": the value holds a '"'; write e.g. 0 issue "letsencrypt.org"`},
		{"TXT too long", dns.Set{Provider: p}, map[string]any{"name": "app", "type": "TXT", "values": []any{strings.Repeat("t", 4097)}},
			`dns.set app.drctl.test. TXT (target zone): TXT value is 4097 bytes long; the limit is 4096`},
		// (Runbook durations stop at 30 days before the action sees them;
		// the RFC 2181 bound is tested at the provider below.)
		{"fractional TTL", dns.Set{Provider: p}, map[string]any{"name": "app", "type": "A", "values": []any{"127.0.0.22"}, "ttl": "1.5s"},
			`dns.set app.drctl.test. A (target zone): ttl 1.5s is not a whole number of seconds from 0 to 2147483647 (RFC 2181); write e.g. "60s" or "5m"`},
		{"unsupported type", dns.Set{Provider: p}, map[string]any{"name": "app", "type": "HINFO", "values": []any{`"a" "b"`}},
			`dns.set (target zone): "HINFO" is not a record type drctl sets (A, AAAA, CNAME, TXT, MX, SRV, CAA, NS, PTR)`},

		// The other actions refuse the same names, and dns.check the same values.
		{"dns.check name", dns.Check{Provider: p}, map[string]any{"name": "app;x", "type": "A"},
			`dns.check (target zone): name "app;x": a ';' is not allowed; ` + nameRule},
		{"dns.check expect", dns.Check{Provider: p}, map[string]any{"name": "app", "type": "A", "expect": []any{"1.2.3.4 ; x"}},
			`dns.check app.drctl.test. A (target zone): expect: A value "1.2.3.4 ; x" is not an IPv4 address; write one address per value, e.g. "192.0.2.10"`},
		{"dns.set_ttl name", dns.SetTTL{Provider: p}, map[string]any{"name": "app IN A 6.6.6.6 ;", "type": "A", "ttl": "30s"},
			`dns.set_ttl (target zone): name "app IN A 6.6.6.6 ;": a space is not allowed; ` + nameRule},
	} {
		t.Run(tc.name, func(t *testing.T) {
			calls.Store(0)
			_, oerr := tc.action.Observe(ctx, l.req(tc.with))
			_, err := tc.action.Apply(ctx, l.req(tc.with))
			for _, e := range []error{oerr, err} {
				if e == nil {
					t.Fatalf("accepted; want %s", tc.want)
				}
				if e.Error() != tc.want {
					t.Errorf("got  %s\nwant %s", e, tc.want)
				}
				if !activities.IsPermanent(e) {
					t.Errorf("retryable: %v", e)
				}
			}
			if n := calls.Load(); n != 0 {
				t.Errorf("the provider was called %d times before the input was refused", n)
			}
		})
	}

	// The server holds exactly what it held: nothing landed.
	if after := zoneSnapshot(t, l); !slices.Equal(after, before) {
		t.Errorf("the zone changed:\nbefore %q\nafter  %q", before, after)
	}
	if vals, _ := l.answer(t, "app", "A"); len(vals) != 0 {
		t.Errorf("app A answers %v", vals)
	}

	// The same recorder does see a valid step, so the zero counts above
	// are not vacuous.
	res, err := dns.Set{Provider: p}.Apply(ctx, l.req(a("app", "127.0.0.22")))
	if err != nil || !res.Changed || calls.Load() == 0 {
		t.Fatalf("valid set: %+v %v (%d calls)", res, err, calls.Load())
	}
	if vals, _ := l.answer(t, "app", "A"); !slices.Equal(vals, []string{"127.0.0.22"}) {
		t.Errorf("app A answers %v after a valid set", vals)
	}
}

// TestInjectionNonRetryable runs the reported step as a worker does: the
// activity fails with a non-retryable error that says what is wrong with
// the name, not "server unreachable", and the zone is unchanged.
func TestInjectionNonRetryable(t *testing.T) {
	l := newLab(t)
	reg := activities.NewRegistry()
	if err := reg.Add(dns.Actions(l.p)...); err != nil {
		t.Fatal(err)
	}
	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	reg.RegisterActivities(env)
	before := zoneSnapshot(t, l)
	_, err := env.ExecuteActivity(dns.SetAction, l.req(map[string]any{
		"name": "app IN A 6.6.6.6 ;", "type": "A", "values": []any{"127.0.0.22"}}))
	var appErr *temporal.ApplicationError
	if !errors.As(err, &appErr) || !appErr.NonRetryable() ||
		!strings.Contains(err.Error(), `dns.set (target zone): name "app IN A 6.6.6.6 ;": a space is not allowed`) {
		t.Errorf("got %v; want a non-retryable error about the name", err)
	}
	if after := zoneSnapshot(t, l); !slices.Equal(after, before) {
		t.Errorf("the zone changed:\nbefore %q\nafter  %q", before, after)
	}
	if l.updates.Load() != 0 {
		t.Error("an update was sent")
	}
}

// TestRFC2136RefusesHostileRecords: the provider itself, called as any
// libdns caller would, refuses records it cannot send as exactly one
// well-formed record in its zone, before it sends anything, with a
// permanent error naming the operation, zone and server.
func TestRFC2136RefusesHostileRecords(t *testing.T) {
	l := newLab(t)
	ctx := ctxT(t)
	c := &dns.RFC2136{Server: l.srv.Addr(), KeyName: l.srv.KeyName, Secret: dns.Secret(l.srv.Secret)}
	before := zoneSnapshot(t, l)
	at := " in zone drctl.test. at " + l.srv.Addr() + ": "
	rr := func(name, typ, data string) []libdns.Record {
		return []libdns.Record{libdns.RR{Name: name, Type: typ, TTL: time.Minute, Data: data}}
	}
	bigTXT := make([]libdns.Record, 20)
	for i := range bigTXT {
		bigTXT[i] = libdns.TXT{Name: "big", TTL: time.Minute, Text: fmt.Sprintf("%02d%s", i, strings.Repeat("t", 4094))}
	}
	for _, tc := range []struct {
		name string
		call func() error
		want string
	}{
		{"set: zone-file text in the name", func() error {
			_, err := c.SetRecords(ctx, "drctl.test.", rr("app IN A 6.6.6.6 ;", "A", "127.0.0.22"))
			return err
		}, `rfc2136 update` + at + `name "app IN A 6.6.6.6 ;": a space is not allowed; ` + nameRule},
		{"set: zone-file text in the value", func() error {
			_, err := c.SetRecords(ctx, "drctl.test.", rr("app", "A", "1.2.3.4 ; x"))
			return err
		}, `rfc2136 update` + at + `app.drctl.test. A: A value "1.2.3.4 ; x" is not an IPv4 address; write one address per value, e.g. "192.0.2.10"`},
		{"set: IPv6 as A", func() error {
			_, err := c.SetRecords(ctx, "drctl.test.", rr("app", "A", "2001:db8::1"))
			return err
		}, `rfc2136 update` + at + `app.drctl.test. A: A value "2001:db8::1" is an IPv6 address; an A record holds IPv4 addresses: set it with type AAAA`},
		{"set: outside the zone", func() error {
			_, err := c.SetRecords(ctx, "drctl.test.", rr("app.other.test.", "A", "127.0.0.22"))
			return err
		}, `rfc2136 update` + at + `name "app.other.test." is not in zone drctl.test., the target's zone: ` +
			`write a name inside it, e.g. "www" or "www.drctl.test.", or use a target whose zone holds it`},
		{"set: negative TTL", func() error {
			_, err := c.SetRecords(ctx, "drctl.test.", []libdns.Record{libdns.RR{Name: "app", Type: "A", TTL: -time.Second, Data: "127.0.0.22"}})
			return err
		}, `rfc2136 update` + at + `app.drctl.test. A: ttl -1s is not a whole number of seconds from 0 to 2147483647 (RFC 2181); write e.g. "60s" or "5m"`},
		{"set: TTL beyond RFC 2181", func() error {
			_, err := c.SetRecords(ctx, "drctl.test.", []libdns.Record{libdns.RR{Name: "app", Type: "A", TTL: (1 << 31) * time.Second, Data: "127.0.0.22"}})
			return err
		}, `rfc2136 update` + at + `app.drctl.test. A: ttl 596523h14m8s is not a whole number of seconds from 0 to 2147483647 (RFC 2181); write e.g. "60s" or "5m"`},
		{"set: more than a DNS message holds", func() error {
			// 12 header + 16 zone + 20 × (26 + 4113) TXT + 26 delete + 93 TSIG (SHA-256)
			// bytes: refused here, where the client would fail as "server unreachable".
			_, err := c.SetRecords(ctx, "drctl.test.", bigTXT)
			return err
		}, `rfc2136 update` + at + `the message would be 82927 bytes, more than the 65535 a DNS message can hold: set fewer or shorter values`},
		{"append: zone-file text in the name", func() error {
			_, err := c.AppendRecords(ctx, "drctl.test.", rr("app;x", "A", "127.0.0.22"))
			return err
		}, `rfc2136 update` + at + `name "app;x": a ';' is not allowed; ` + nameRule},
		{"delete: zone-file text in the name", func() error {
			_, err := c.DeleteRecords(ctx, "drctl.test.", rr("www IN A 192.0.2.1 ;", "A", ""))
			return err
		}, `rfc2136 update` + at + `name "www IN A 192.0.2.1 ;": a space is not allowed; ` + nameRule},
		{"delete: zone-file text in the value", func() error {
			_, err := c.DeleteRecords(ctx, "drctl.test.", rr("www", "A", "192.0.2.1\n"))
			return err
		}, `rfc2136 update` + at + `www.drctl.test. A: A value "192.0.2.1\n": a line break is not allowed; write one value per list item, e.g. "192.0.2.10"`},
		{"query: zone-file text in the name", func() error {
			_, err := c.GetRRset(ctx, "drctl.test.", "app IN A 6.6.6.6 ;", "A")
			return err
		}, `rfc2136 query` + at + `name "app IN A 6.6.6.6 ;": a space is not allowed; ` + nameRule},
		{"set: zone-file text in the zone", func() error {
			_, err := c.SetRecords(ctx, "drctl.test. IN A", rr("app", "A", "127.0.0.22"))
			return err
		}, `rfc2136 update in zone "drctl.test. IN A" at ` + l.srv.Addr() + `: zone "drctl.test. IN A": a space is not allowed; ` +
			`a name is letters, digits, '-' and '_' in labels of at most 63 bytes, separated by dots: write e.g. "example.com."`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			if err == nil {
				t.Fatalf("accepted; want %s", tc.want)
			}
			if err.Error() != tc.want {
				t.Errorf("got  %s\nwant %s", err, tc.want)
			}
			if !activities.IsPermanent(err) {
				t.Errorf("retryable: %v", err)
			}
		})
	}
	if after := zoneSnapshot(t, l); !slices.Equal(after, before) {
		t.Errorf("the zone changed:\nbefore %q\nafter  %q", before, after)
	}
	for _, name := range []string{"app", "www", "big"} {
		want := []string(nil)
		if name == "www" {
			want = []string{"192.0.2.1", "192.0.2.2"}
		}
		if vals, _ := l.answer(t, name, "A"); !slices.Equal(vals, want) {
			t.Errorf("%s A answers %v, want %v", name, vals, want)
		}
	}
}
