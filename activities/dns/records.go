package dns

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/libdns/libdns"
	mdns "github.com/miekg/dns"
)

// rrset is one RRset as the actions see it: a fully qualified lower-case
// owner name, an upper-case type, one TTL and the values in canonical form
// (see canonicalValue), sorted and without duplicates. No values means the
// RRset does not exist.
type rrset struct {
	Name   string        `json:"name"`
	Type   string        `json:"type"`
	TTL    time.Duration `json:"ttl"`
	Values []string      `json:"values"`
}

func (s rrset) exists() bool { return len(s.Values) > 0 }

// String is "www.example.test. A [192.0.2.1] ttl 1m0s", or "... does not exist".
func (s rrset) String() string {
	if !s.exists() {
		return fmt.Sprintf("%s %s does not exist", s.Name, s.Type)
	}
	return fmt.Sprintf("%s %s %s ttl %s", s.Name, s.Type, showValues(s.Values), s.TTL)
}

func showValues(vs []string) string {
	q := make([]string, len(vs))
	for i, v := range vs {
		q[i] = strconv.Quote(v)
		if !strings.ContainsAny(v, " \"\\") && q[i] == `"`+v+`"` {
			q[i] = v
		}
	}
	return "[" + strings.Join(q, " ") + "]"
}

// sameValues reports whether two RRsets hold the same values (TTL aside).
func sameValues(a, b rrset) bool { return slices.Equal(a.Values, b.Values) }

// ownerName turns an input name into a fully qualified lower-case name in
// zone. Names without a trailing dot are relative to the zone ("www", "@"
// or "" for the apex), as in a zone file; a relative name that ends in the
// zone's own name ("www.example.test" in example.test.) is refused, because
// it nearly always means the FQDN with its trailing dot forgotten.
func ownerName(name, zone string) (string, error) {
	name = strings.TrimSpace(name)
	var fqdn string
	switch {
	case name == "" || name == "@":
		fqdn = zone
	case strings.HasSuffix(name, "."):
		fqdn = mdns.CanonicalName(name)
	default:
		bare := strings.TrimSuffix(zone, ".")
		if n := strings.ToLower(name); n == bare || strings.HasSuffix(n, "."+bare) {
			return "", fmt.Errorf("name %q is relative, so it means %s; write %q (relative to the zone) or %q (with the trailing dot)",
				name, mdns.CanonicalName(name+"."+zone), relative(mdns.CanonicalName(name+"."), zone), name+".")
		}
		fqdn = mdns.CanonicalName(name + "." + zone)
	}
	if _, ok := mdns.IsDomainName(fqdn); !ok {
		return "", fmt.Errorf("name %q is not a valid domain name", name)
	}
	if !mdns.IsSubDomain(zone, fqdn) {
		return "", fmt.Errorf("name %s is not in zone %s", fqdn, zone)
	}
	return fqdn, nil
}

// relative is fqdn relative to zone, "@" for the apex (libdns's convention).
func relative(fqdn, zone string) string { return libdns.RelativeName(fqdn, zone) }

// zoneName is a zone attribute as a fully qualified lower-case name.
func zoneName(z string) (string, error) {
	z = mdns.CanonicalName(strings.TrimSpace(z))
	if _, ok := mdns.IsDomainName(z); !ok || z == "." {
		return "", fmt.Errorf("%q is not a zone name", z)
	}
	return z, nil
}

// recordType validates and upper-cases a type. SOA is the server's to
// manage and is refused.
func recordType(t string) (string, uint16, error) {
	t = strings.ToUpper(strings.TrimSpace(t))
	code, ok := mdns.StringToType[t]
	if !ok || t == "ANY" || t == "AXFR" || t == "IXFR" || t == "OPT" || t == "TSIG" {
		return "", 0, fmt.Errorf("%q is not a record type (A, AAAA, CNAME, TXT, MX, SRV, CAA, ...)", t)
	}
	if t == "SOA" {
		return "", 0, fmt.Errorf("the SOA record is managed by the server and cannot be set")
	}
	return t, code, nil
}

// ttlSeconds checks that d is a whole number of seconds a DNS TTL can hold.
func ttlSeconds(d time.Duration) (uint32, error) {
	if d < 0 || d%time.Second != 0 || d > time.Duration(1<<31-1)*time.Second {
		return 0, fmt.Errorf("ttl %s is not a whole number of seconds between 0s and 68y", d)
	}
	return uint32(d / time.Second), nil
}

// toDNS builds the wire record for one value. TXT values are raw text (no
// quotes, no escapes: libdns's convention) of any length; every other type
// is parsed as zone-file RDATA, where names without a trailing dot are
// relative to the zone.
func toDNS(zone, fqdn, typ string, ttl time.Duration, value string) (mdns.RR, error) {
	secs, err := ttlSeconds(ttl)
	if err != nil {
		return nil, err
	}
	code, ok := mdns.StringToType[typ]
	if !ok {
		return nil, fmt.Errorf("%q is not a record type", typ)
	}
	if code == mdns.TypeTXT {
		return &mdns.TXT{
			Hdr: mdns.RR_Header{Name: fqdn, Rrtype: code, Class: mdns.ClassINET, Ttl: secs},
			Txt: txtStrings(value),
		}, nil
	}
	if strings.TrimSpace(value) == "" {
		return nil, fmt.Errorf("empty %s value", typ)
	}
	if strings.ContainsAny(value, "\n;") {
		return nil, fmt.Errorf("%s value %q holds a newline or ';'", typ, value)
	}
	zp := mdns.NewZoneParser(strings.NewReader(fmt.Sprintf("%s %d IN %s %s\n", fqdn, secs, typ, value)), zone, "")
	rr, ok := zp.Next()
	if err := zp.Err(); err != nil {
		return nil, fmt.Errorf("%s value %q: %v", typ, value, parseReason(err))
	}
	if !ok || rr == nil || rr.Header().Rrtype != code {
		return nil, fmt.Errorf("%s value %q does not parse", typ, value)
	}
	if _, extra := zp.Next(); extra {
		return nil, fmt.Errorf("%s value %q holds more than one record", typ, value)
	}
	return rr, nil
}

// parseReason is the zone parser's complaint without its file/line
// decorations.
func parseReason(err error) string {
	if pe, ok := err.(*mdns.ParseError); ok && pe.Error() != "" {
		s := pe.Error()
		if i := strings.Index(s, ": "); i >= 0 && strings.HasPrefix(s, "dns: ") {
			s = s[i+2:]
		}
		return s
	}
	return err.Error()
}

// canonicalValue is the form values are compared and reported in: the
// RDATA in zone-file syntax with domain names fully qualified and, for types
// whose RDATA is only names and numbers, lower case; A and AAAA in their
// canonical text; TXT as the raw text, its strings joined.
func canonicalValue(rr mdns.RR) string {
	switch r := rr.(type) {
	case *mdns.TXT:
		return txtText(r.Txt)
	case *mdns.CNAME, *mdns.NS, *mdns.PTR, *mdns.MX, *mdns.SRV, *mdns.DNAME:
		return strings.ToLower(rdata(rr))
	}
	return rdata(rr)
}

func rdata(rr mdns.RR) string {
	return strings.TrimPrefix(rr.String(), rr.Header().String())
}

// normalizeValues turns input values into canonical, sorted, de-duplicated
// form. A TXT value written in quotes ("v=spf1 -all"), as in a zone file,
// loses the enclosing quotes.
func normalizeValues(zone, fqdn, typ string, values []string) ([]string, error) {
	out := make([]string, 0, len(values))
	for _, v := range values {
		if typ == "TXT" {
			v = unquoteTXT(v)
		} else {
			v = strings.TrimSpace(v)
		}
		rr, err := toDNS(zone, fqdn, typ, 0, v)
		if err != nil {
			return nil, err
		}
		out = append(out, canonicalValue(rr))
	}
	slices.Sort(out)
	out = slices.Compact(out)
	if typ == "CNAME" && len(out) > 1 {
		return nil, fmt.Errorf("a CNAME RRset holds one value, got %d", len(out))
	}
	return out, nil
}

func unquoteTXT(v string) string {
	if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' && !strings.Contains(v[1:len(v)-1], `"`) {
		return v[1 : len(v)-1]
	}
	return v
}

// fromRecords collects the records of one name and type (libdns records
// with names relative to zone) into an RRset. The TTL is the smallest of
// the records' TTLs (they should all be equal; a resolver would cache the
// set no longer than that).
func fromRecords(zone, fqdn, typ string, recs []libdns.Record) (rrset, error) {
	s := rrset{Name: fqdn, Type: typ}
	first := true
	for _, rec := range recs {
		r := rec.RR()
		if !strings.EqualFold(r.Type, typ) || mdns.CanonicalName(libdns.AbsoluteName(r.Name, zone)) != fqdn {
			continue
		}
		rr, err := toDNS(zone, fqdn, typ, 0, r.Data)
		if err != nil {
			return rrset{}, fmt.Errorf("record %s %s %q from the provider: %w", fqdn, typ, r.Data, err)
		}
		s.Values = append(s.Values, canonicalValue(rr))
		if first || r.TTL < s.TTL {
			s.TTL = r.TTL.Truncate(time.Second)
		}
		first = false
	}
	slices.Sort(s.Values)
	s.Values = slices.Compact(s.Values)
	return s, nil
}

// toRecords is the RRset as libdns records (names relative to zone), typed
// where libdns has a type for them, as libdns providers expect.
func toRecords(zone string, s rrset) []libdns.Record {
	recs := make([]libdns.Record, 0, len(s.Values))
	for _, v := range s.Values {
		rr := libdns.RR{Name: relative(s.Name, zone), TTL: s.TTL, Type: s.Type, Data: v}
		if typed, err := rr.Parse(); err == nil {
			recs = append(recs, typed)
		} else {
			recs = append(recs, rr)
		}
	}
	return recs
}

// fromDNS converts a wire record into a typed libdns record relative to zone.
func fromDNS(zone string, rr mdns.RR) libdns.Record {
	h := rr.Header()
	r := libdns.RR{
		Name: relative(mdns.CanonicalName(h.Name), zone),
		TTL:  time.Duration(h.Ttl) * time.Second,
		Type: mdns.TypeToString[h.Rrtype],
		Data: canonicalValue(rr),
	}
	if typed, err := r.Parse(); err == nil {
		return typed
	}
	return r
}

// txtStrings splits raw text into the escaped character-strings of a TXT
// record (at most 255 bytes each), as miekg/dns holds them.
func txtStrings(raw string) []string {
	if raw == "" {
		return []string{""}
	}
	var out []string
	for len(raw) > 0 {
		n := min(len(raw), 255)
		out = append(out, escapeTXT(raw[:n]))
		raw = raw[n:]
	}
	return out
}

func escapeTXT(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c < ' ' || c > '~':
			fmt.Fprintf(&b, "\\%03d", c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// txtText joins a TXT record's escaped strings into raw text.
func txtText(ss []string) string {
	var b strings.Builder
	for _, s := range ss {
		for i := 0; i < len(s); i++ {
			c := s[i]
			if c != '\\' || i+1 >= len(s) {
				b.WriteByte(c)
				continue
			}
			if i+3 < len(s) && isDigit(s[i+1]) && isDigit(s[i+2]) && isDigit(s[i+3]) {
				n, _ := strconv.Atoi(s[i+1 : i+4])
				b.WriteByte(byte(n))
				i += 3
				continue
			}
			b.WriteByte(s[i+1])
			i++
		}
	}
	return b.String()
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
