package dns

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/libdns/libdns"
	mdns "github.com/miekg/dns"
)

const zone = "example.test."

func TestOwnerName(t *testing.T) {
	for _, tc := range []struct {
		in, want, err string
	}{
		{in: "www", want: "www.example.test."},
		{in: "WWW.Api", want: "www.api.example.test."},
		{in: "@", want: "example.test."},
		{in: "", err: `name "" is empty: write "@" for the zone's apex`},
		{in: "www.example.test.", want: "www.example.test."},
		{in: "Example.Test.", want: "example.test."},
		{in: " db ", err: `name " db ": a space is not allowed`},
		{in: "db\n", err: `name "db\n": a line break is not allowed`},
		{in: "_pg._tcp", want: "_pg._tcp.example.test."},
		{in: "xn--bcher-kva", want: "xn--bcher-kva.example.test."},
		{in: "db-", err: `label "db-" ends with '-'`},
		{in: "www.@", err: `an '@' is not allowed`},
		{in: "*.www", err: `a '*' is not allowed`},
		{in: "www.EXAMPLE.test.", want: "www.example.test."},
		{in: "xexample.test.", err: "not in zone example.test."},
		{in: ".", err: "empty label"},
		{in: "www.example.test", err: `write "www" (relative to the zone) or "www.example.test." (with the trailing dot)`},
		{in: "example.test", err: `write "@"`},
		{in: "www.other.test.", err: "not in zone example.test."},
		{in: "a..b", err: "empty label"},
	} {
		got, err := ownerName(tc.in, zone)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ownerName(%q) = %q, %v; want error containing %q", tc.in, got, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ownerName(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestNormalizeValues(t *testing.T) {
	long := strings.Repeat("x", 300) + `"quoted" \ back`
	for _, tc := range []struct {
		typ  string
		in   []string
		want []string
		err  string
	}{
		{typ: "A", in: []string{" 192.0.2.2", "192.0.2.1", "192.0.2.2"}, want: []string{"192.0.2.1", "192.0.2.2"}},
		{typ: "AAAA", in: []string{"2001:DB8:0::1"}, want: []string{"2001:db8::1"}},
		{typ: "CNAME", in: []string{"DB-West"}, want: []string{"db-west.example.test."}},
		{typ: "CNAME", in: []string{"db.other.test."}, want: []string{"db.other.test."}},
		{typ: "CNAME", in: []string{"a.", "b."}, err: "one value"},
		{typ: "MX", in: []string{"10 Mail"}, want: []string{"10 mail.example.test."}},
		{typ: "SRV", in: []string{"0 5 5432 db"}, want: []string{"0 5 5432 db.example.test."}},
		{typ: "TXT", in: []string{`"v=spf1 -all"`, "hello world"}, want: []string{"hello world", "v=spf1 -all"}},
		{typ: "TXT", in: []string{long}, want: []string{long}},
		{typ: "TXT", in: []string{""}, want: []string{""}},
		{typ: "A", in: []string{"not-an-ip"}, err: `A value "not-an-ip"`},
		{typ: "A", in: []string{"192.0.2.1; rm"}, err: `A value "192.0.2.1; rm" is not an IPv4 address`},
		{typ: "A", in: []string{"192.0.2.1\nevil 1 IN A 1.2.3.4"}, err: "a line break is not allowed"},
		{typ: "A", in: []string{""}, err: "empty"},
		{typ: "A", in: []string{"192.0.2.01"}, err: "not an IPv4 address"},
		{typ: "AAAA", in: []string{"2001:db8::1 2001:db8::2"}, err: "not an IPv6 address"},
		{typ: "CNAME", in: []string{"@"}, want: []string{"example.test."}},
		{typ: "CNAME", in: []string{"db.example.test"}, err: `write "db" (relative to the zone) or "db.example.test." (with the trailing dot)`},
		{typ: "CNAME", in: []string{"db\\032x."}, err: `a '\' is not allowed (escapes are not accepted)`},
		{typ: "NS", in: []string{"ns1"}, want: []string{"ns1.example.test."}},
		{typ: "PTR", in: []string{"Host.Example.COM."}, want: []string{"host.example.com."}},
		{typ: "MX", in: []string{"0 ."}, want: []string{"0 ."}},
		{typ: "MX", in: []string{"10 mail extra"}, err: `is not "preference host"`},
		{typ: "MX", in: []string{"-1 mail"}, err: `preference "-1" is not a whole number from 0 to 65535`},
		{typ: "SRV", in: []string{"0 5 5432 db;x"}, err: `target "db;x": a ';' is not allowed`},
		{typ: "CAA", in: []string{`0 issue "letsencrypt.org"`, "128 issuewild ;", `0 iodef "mailto:sec@example.test"`},
			want: []string{`0 iodef "mailto:sec@example.test"`, `0 issue "letsencrypt.org"`, `128 issuewild ";"`}},
		{typ: "CAA", in: []string{`0 issue "a\\b"`}, err: `escapes are not accepted`},
		{typ: "CAA", in: []string{`256 issue "ca"`}, err: `flags "256" is not a whole number from 0 to 255`},
		{typ: "CAA", in: []string{`0 is-sue "ca"`}, err: `tag "is-sue" is not 1 to 15 letters and digits`},
		{typ: "CAA", in: []string{`0 issue ca example`}, err: `must be quoted`},
		{typ: "TXT", in: []string{strings.Repeat("x", 4096)}, want: []string{strings.Repeat("x", 4096)}},
		{typ: "TXT", in: []string{strings.Repeat("x", 4097)}, err: "TXT value is 4097 bytes long; the limit is 4096"},
		{typ: "A", in: nil, want: []string{}},
	} {
		got, err := normalizeValues(zone, "x.example.test.", tc.typ, tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s %q: got %q, %v; want error containing %q", tc.typ, tc.in, got, err, tc.err)
			}
			continue
		}
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("%s %q: got %q, %v; want %q", tc.typ, tc.in, got, err, tc.want)
		}
	}
}

// TestTXTWire checks that raw text survives the trip to wire strings
// (escaped, split at 255 bytes) and back.
func TestTXTWire(t *testing.T) {
	for _, raw := range []string{"", "plain", `a "quote" and \ backslash`, "tab\there\x00\xff", strings.Repeat("é", 200)} {
		rr, err := toDNS(zone, "t.example.test.", "TXT", time.Minute, raw)
		if err != nil {
			t.Fatal(err)
		}
		if got := canonicalValue(rr); got != raw {
			t.Errorf("%q came back as %q", raw, got)
		}
		// The wire form packs and unpacks to the same text.
		buf := make([]byte, 4096)
		n, err := mdns.PackRR(rr, buf, 0, nil, false)
		if err != nil {
			t.Fatalf("%q: pack: %v", raw, err)
		}
		back, _, err := mdns.UnpackRR(buf[:n], 0)
		if err != nil {
			t.Fatalf("%q: unpack: %v", raw, err)
		}
		if got := canonicalValue(back); got != raw {
			t.Errorf("%q came back from the wire as %q", raw, got)
		}
	}
}

func TestRecordType(t *testing.T) {
	for in, want := range map[string]string{"a": "A", " aaaa ": "AAAA", "cname": "CNAME", "TXT": "TXT", "caa": "CAA"} {
		if got, _, err := recordType(in); err != nil || got != want {
			t.Errorf("recordType(%q) = %q, %v", in, got, err)
		}
	}
	for _, in := range []string{"SOA", "ANY", "AXFR", "bogus", "", "HINFO", "DNAME", "A IN"} {
		if _, _, err := recordType(in); err == nil {
			t.Errorf("recordType(%q) accepted", in)
		}
	}
}

func TestTTLSeconds(t *testing.T) {
	if s, err := ttlSeconds(90 * time.Second); err != nil || s != 90 {
		t.Errorf("90s: %d %v", s, err)
	}
	if s, err := ttlSeconds(0); err != nil || s != 0 {
		t.Errorf("0s: %d %v", s, err)
	}
	if s, err := ttlSeconds(maxTTLSeconds * time.Second); err != nil || s != maxTTLSeconds {
		t.Errorf("RFC 2181 maximum: %d %v", s, err)
	}
	for _, d := range []time.Duration{1500 * time.Millisecond, -time.Second, (maxTTLSeconds + 1) * time.Second} {
		if _, err := ttlSeconds(d); err == nil {
			t.Errorf("%s accepted", d)
		}
	}
}

// TestRecordsRoundTrip: an RRset becomes typed libdns records and back.
func TestRecordsRoundTrip(t *testing.T) {
	for _, s := range []rrset{
		{Name: "www.example.test.", Type: "A", TTL: time.Minute, Values: []string{"192.0.2.1", "192.0.2.2"}},
		{Name: "example.test.", Type: "TXT", TTL: time.Second, Values: []string{"a b", "v=1"}},
		{Name: "alias.example.test.", Type: "CNAME", TTL: time.Hour, Values: []string{"www.example.test."}},
		{Name: "example.test.", Type: "CAA", TTL: time.Hour, Values: []string{`0 issue "letsencrypt.org"`}},
	} {
		recs := toRecords(zone, s)
		if _, ok := recs[0].(libdns.RR); ok && s.Type != "CAA" {
			t.Errorf("%s: not typed: %T", s, recs[0])
		}
		if back := fromRecords(zone, s.Name, s.Type, recs); back.String() != s.String() {
			t.Errorf("%s came back as %s", s, back)
		}
	}
}

// TestFromRecordsKeepsForeignValues: a value set by other means that drctl
// would refuse to send reads back as the provider gave it, so Observe
// shows it and dns.set replaces it, instead of the read failing.
func TestFromRecordsKeepsForeignValues(t *testing.T) {
	recs := []libdns.Record{
		libdns.RR{Name: "www", Type: "AAAA", TTL: time.Minute, Data: "::ffff:192.0.2.1"},
		libdns.RR{Name: "www", Type: "AAAA", TTL: time.Minute, Data: "2001:DB8::1"},
	}
	got := fromRecords(zone, "www.example.test.", "AAAA", recs)
	if want := []string{"2001:db8::1", "::ffff:192.0.2.1"}; !slices.Equal(got.Values, want) {
		t.Errorf("got %q, want %q", got.Values, want)
	}
}

// TestToDNSTyped: every type drctl sets is built as its typed miekg/dns
// record, and a value cannot carry a second record or field into it.
func TestToDNSTyped(t *testing.T) {
	for _, tc := range []struct {
		typ, value string
		want       mdns.RR
	}{
		{"A", "192.0.2.1", &mdns.A{}},
		{"AAAA", "2001:db8::1", &mdns.AAAA{}},
		{"CNAME", "db", &mdns.CNAME{}},
		{"TXT", "a ; b\nc IN A 1.2.3.4", &mdns.TXT{}},
		{"MX", "10 mail", &mdns.MX{}},
		{"SRV", "0 5 5432 db", &mdns.SRV{}},
		{"CAA", `0 issue "ca.example"`, &mdns.CAA{}},
		{"NS", "ns1", &mdns.NS{}},
		{"PTR", "host.example.com.", &mdns.PTR{}},
	} {
		rr, err := toDNS(zone, "x.example.test.", tc.typ, time.Minute, tc.value)
		if err != nil {
			t.Errorf("%s %q: %v", tc.typ, tc.value, err)
			continue
		}
		if fmt.Sprintf("%T", rr) != fmt.Sprintf("%T", tc.want) {
			t.Errorf("%s %q built as %T", tc.typ, tc.value, rr)
		}
		h := rr.Header()
		if h.Name != "x.example.test." || h.Class != mdns.ClassINET || h.Ttl != 60 || mdns.TypeToString[h.Rrtype] != tc.typ {
			t.Errorf("%s %q: header %+v", tc.typ, tc.value, h)
		}
		// One record, whatever the value held: it packs and unpacks alone.
		buf := make([]byte, 1024)
		n, err := mdns.PackRR(rr, buf, 0, nil, false)
		if err != nil {
			t.Fatalf("%s: pack: %v", tc.typ, err)
		}
		if _, off, err := mdns.UnpackRR(buf[:n], 0); err != nil || off != n {
			t.Errorf("%s: unpack: %v (%d of %d bytes)", tc.typ, err, off, n)
		}
	}
	for _, owner := range []string{"x y.example.test.", "x.example.test", "*.example.test.", `x\.example.test.`} {
		if _, err := toDNS(zone, owner, "A", time.Minute, "192.0.2.1"); err == nil {
			t.Errorf("owner %q accepted", owner)
		}
	}
}

func TestSecretNotFormatted(t *testing.T) {
	const secret = "c2VjcmV0LXNlY3JldC1zZWNyZXQ="
	p := &RFC2136{Server: "127.0.0.1:53", KeyName: "k", Secret: secret}
	for _, f := range []string{"%v", "%+v", "%#v", "%s"} {
		if s := fmt.Sprintf(f, p); strings.Contains(s, secret) {
			t.Errorf("%s shows the secret: %s", f, s)
		}
		if s := fmt.Sprintf(f, *p); strings.Contains(s, secret) {
			t.Errorf("%s of the value shows the secret: %s", f, s)
		}
	}
	bad := &RFC2136{Server: "127.0.0.1:53", KeyName: "k", Secret: "not base64!" + secret}
	if err := bad.check(); err == nil || strings.Contains(err.Error(), secret) {
		t.Errorf("bad secret: %v", err)
	}
}
