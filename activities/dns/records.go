package dns

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/libdns/libdns"
	mdns "github.com/miekg/dns"

	"github.com/drctl/drctl/activities"
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

// state is the RRset as the fact a drill compares before and after (see
// activities.Observation.State): "<target> <fqdn> <TYPE>" is its values,
// sorted, and TTL in whole seconds ("192.0.2.1, 192.0.2.2 ttl 300s"), or
// "absent".
func (s rrset) state(target string) map[string]string {
	v := "absent"
	if s.exists() {
		v = fmt.Sprintf("%s ttl %ds", strings.Join(s.Values, ", "), int64(s.TTL/time.Second))
	}
	return map[string]string{target + " " + s.Name + " " + s.Type: v}
}

// measures is the RRset's TTL for the readiness evaluation (see
// activities.Observation.Measures); none when the set does not exist.
func (s rrset) measures(target string) map[string]float64 {
	if !s.exists() {
		return nil
	}
	return map[string]float64{target + " " + s.Name + " " + s.Type + " " + activities.MeasureTTL: s.TTL.Seconds()}
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

// relative is fqdn relative to zone, "@" for the apex (libdns's convention).
func relative(fqdn, zone string) string { return libdns.RelativeName(fqdn, zone) }

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

// normalizeValues checks input values by their type's rules (see toDNS)
// and turns them into canonical, sorted, de-duplicated form. A TXT value
// written in quotes ("v=spf1 -all"), as in a zone file, loses the
// enclosing quotes; any other value loses leading and trailing spaces.
func normalizeValues(zone, fqdn, typ string, values []string) ([]string, error) {
	out := make([]string, 0, len(values))
	for _, v := range values {
		if typ == "TXT" {
			v = unquoteTXT(v)
		} else {
			v = strings.Trim(v, " ")
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
//
// A value that passes toDNS's rules is put in canonical form; one that
// does not (set by other means: an escaped name, an IPv4-mapped AAAA, ...)
// is kept as the provider gives it. It then differs from every value an
// action may set, so Observe reports it and dns.set replaces it, but it is
// never sent back: an undo that names it is refused.
func fromRecords(zone, fqdn, typ string, recs []libdns.Record) rrset {
	s := rrset{Name: fqdn, Type: typ}
	first := true
	for _, rec := range recs {
		r := rec.RR()
		if !strings.EqualFold(r.Type, typ) || mdns.CanonicalName(libdns.AbsoluteName(r.Name, zone)) != fqdn {
			continue
		}
		v := r.Data
		if rr, err := toDNS(zone, fqdn, typ, 0, r.Data); err == nil {
			v = canonicalValue(rr)
		}
		s.Values = append(s.Values, v)
		if first || r.TTL < s.TTL {
			s.TTL = r.TTL.Truncate(time.Second)
		}
		first = false
	}
	slices.Sort(s.Values)
	s.Values = slices.Compact(s.Values)
	return s
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
