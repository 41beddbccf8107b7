package dns

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	mdns "github.com/miekg/dns"
)

// A record is built field by field as a typed miekg/dns record (toDNS),
// never by formatting zone-file text and parsing it: no input can add a
// field, a record, a comment or a directive to what is sent. Each value is
// checked by its type's rules first:
//
//	A      an IPv4 address (netip); not IPv4-mapped IPv6
//	AAAA   an IPv6 address (netip); not IPv4 or IPv4-mapped, no %zone
//	CNAME, NS, PTR
//	       a domain name (names.go), relative to the zone unless it ends in a dot
//	MX     "preference host": 0-65535 and a domain name, or "." (null MX)
//	SRV    "priority weight port target": three 0-65535 and a domain name or "."
//	CAA    `flags tag "value"`: 0-255, 1-15 letters and digits, and up to 255
//	       printable ASCII bytes without '"' or '\', quoted or a bare word
//	TXT    raw text, any bytes, at most maxTXT bytes (escaped for the wire)
//
// Values other than TXT are printable ASCII; single spaces separate fields.

// recordTypes are the types drctl sets, in the order messages list them.
var recordTypes = []string{"A", "AAAA", "CNAME", "TXT", "MX", "SRV", "CAA", "NS", "PTR"}

// examples are what a refused value's message suggests writing instead.
var examples = map[string]string{
	"A": `"192.0.2.10"`, "AAAA": `"2001:db8::10"`, "CNAME": `"www"`, "NS": `"ns1"`, "PTR": `"host.example.com."`,
	"MX": `"10 mail"`, "SRV": `"0 5 5432 db"`, "CAA": `0 issue "letsencrypt.org"`,
}

const (
	// maxTXT bounds one TXT value: well above a 4096-bit DKIM key (~800
	// bytes) or an SPF policy, well below the 64 KiB an update can carry.
	maxTXT = 4096
	// maxCAAValue bounds a CAA value (a CA's domain name or an iodef URL).
	maxCAAValue = 255
	// maxTTLSeconds is RFC 2181 §8's limit on a TTL. drctl sends any TTL
	// up to it, not a smaller "sensible" bound, so that a step's undo
	// (ttl: previous_ttl) can always restore the TTL an RRset had; runbook
	// inputs themselves stop at runbooks.MaxDuration (30 days).
	maxTTLSeconds = 1<<31 - 1
)

// recordType validates and upper-cases a type: one of recordTypes. SOA is
// the server's to manage and is refused.
func recordType(t string) (string, uint16, error) {
	t = strings.ToUpper(strings.TrimSpace(t))
	if t == "SOA" {
		return "", 0, fmt.Errorf("the SOA record is managed by the server and cannot be set")
	}
	for _, s := range recordTypes {
		if t == s {
			return t, mdns.StringToType[t], nil
		}
	}
	return "", 0, fmt.Errorf("%q is not a record type drctl sets (%s)", t, strings.Join(recordTypes, ", "))
}

// ttlSeconds checks that d is a whole number of seconds from 0 to
// maxTTLSeconds.
func ttlSeconds(d time.Duration) (uint32, error) {
	if d < 0 || d%time.Second != 0 || d > maxTTLSeconds*time.Second {
		return 0, fmt.Errorf(`%s is not a whole number of seconds from 0 to %d (RFC 2181); write e.g. "60s" or "5m"`, d, maxTTLSeconds)
	}
	return uint32(d / time.Second), nil
}

// toDNS builds the typed wire record for one value of the RRset fqdn typ
// in zone. fqdn must be a name ownerName returned; typ one of recordTypes.
// Names in values without a trailing dot are relative to zone.
func toDNS(zone, fqdn, typ string, ttl time.Duration, value string) (mdns.RR, error) {
	if _, ok := mdns.IsDomainName(fqdn); !ok || !mdns.IsFqdn(fqdn) || checkName(fqdn) != nil {
		return nil, fmt.Errorf("owner %q is not a checked domain name", fqdn)
	}
	typ, code, err := recordType(typ)
	if err != nil {
		return nil, err
	}
	secs, err := ttlSeconds(ttl)
	if err != nil {
		return nil, fmt.Errorf("ttl %w", err)
	}
	hdr := mdns.RR_Header{Name: fqdn, Rrtype: code, Class: mdns.ClassINET, Ttl: secs}
	if code == mdns.TypeTXT {
		if len(value) > maxTXT {
			return nil, fmt.Errorf("TXT value is %d bytes long; the limit is %d", len(value), maxTXT)
		}
		return &mdns.TXT{Hdr: hdr, Txt: txtStrings(value)}, nil
	}
	if value == "" {
		return nil, fmt.Errorf("%s value %q is empty; write e.g. %s", typ, value, examples[typ])
	}
	for i := 0; i < len(value); i++ {
		if c := value[i]; c < ' ' || c > '~' {
			what, _ := describe(value[i:])
			return nil, fmt.Errorf("%s value %q: %s is not allowed; write one value per list item, e.g. %s", typ, value, what, examples[typ])
		}
	}
	v := value
	switch code {
	case mdns.TypeA, mdns.TypeAAAA:
		ip, err := address(typ, v)
		if err != nil {
			return nil, err
		}
		if code == mdns.TypeA {
			return &mdns.A{Hdr: hdr, A: net.IP(ip.AsSlice())}, nil
		}
		return &mdns.AAAA{Hdr: hdr, AAAA: net.IP(ip.AsSlice())}, nil
	case mdns.TypeCNAME, mdns.TypeNS, mdns.TypePTR:
		name, err := domainName(fmt.Sprintf("%s value %q", typ, v), v, zone)
		if err != nil {
			return nil, err
		}
		switch code {
		case mdns.TypeCNAME:
			return &mdns.CNAME{Hdr: hdr, Target: name}, nil
		case mdns.TypeNS:
			return &mdns.NS{Hdr: hdr, Ns: name}, nil
		}
		return &mdns.PTR{Hdr: hdr, Ptr: name}, nil
	case mdns.TypeMX:
		f := strings.Fields(v)
		if len(f) != 2 {
			return nil, fmt.Errorf(`MX value %q is not "preference host", e.g. %s`, v, examples[typ])
		}
		pref, err := uint16Field(typ, v, "preference", f[0])
		if err != nil {
			return nil, err
		}
		host, err := hostField(typ, v, "host", f[1], zone)
		if err != nil {
			return nil, err
		}
		return &mdns.MX{Hdr: hdr, Preference: pref, Mx: host}, nil
	case mdns.TypeSRV:
		f := strings.Fields(v)
		if len(f) != 4 {
			return nil, fmt.Errorf(`SRV value %q is not "priority weight port target", e.g. %s`, v, examples[typ])
		}
		var n [3]uint16
		for i, field := range []string{"priority", "weight", "port"} {
			if n[i], err = uint16Field(typ, v, field, f[i]); err != nil {
				return nil, err
			}
		}
		target, err := hostField(typ, v, "target", f[3], zone)
		if err != nil {
			return nil, err
		}
		return &mdns.SRV{Hdr: hdr, Priority: n[0], Weight: n[1], Port: n[2], Target: target}, nil
	case mdns.TypeCAA:
		return caa(hdr, v)
	}
	return nil, fmt.Errorf("%s records are not built by drctl", typ) // unreachable: recordType allows no other
}

// address parses an A (IPv4) or AAAA (IPv6) value: one address in its
// plain form, neither of the other family nor IPv4-mapped, without a zone.
func address(typ, v string) (netip.Addr, error) {
	want, other := "IPv4", "AAAA"
	if typ == "AAAA" {
		want, other = "IPv6", "A"
	}
	ip, err := netip.ParseAddr(v)
	switch {
	case err != nil:
		return ip, fmt.Errorf("%s value %q is not an %s address; write one address per value, e.g. %s", typ, v, want, examples[typ])
	case ip.Is4In6() && typ == "A":
		return ip, fmt.Errorf("%s value %q is an IPv4-mapped IPv6 address; write %q", typ, v, ip.Unmap().String())
	case ip.Is4In6():
		return ip, fmt.Errorf("%s value %q is an IPv4-mapped address; set %q with type A", typ, v, ip.Unmap().String())
	case ip.Is4() != (typ == "A"):
		got := "IPv6"
		if ip.Is4() {
			got = "IPv4"
		}
		return ip, fmt.Errorf("%s value %q is an %s address; an %s record holds %s addresses: set it with type %s", typ, v, got, typ, want, other)
	case ip.Zone() != "":
		return ip, fmt.Errorf("%s value %q has a zone (%q), which DNS cannot hold; write %q", typ, v, ip.Zone(), ip.WithZone("").String())
	}
	return ip, nil
}

func uint16Field(typ, value, field, s string) (uint16, error) {
	n, err := strconv.ParseUint(s, 10, 16)
	if err != nil {
		return 0, fmt.Errorf("%s value %q: %s %q is not a whole number from 0 to 65535", typ, value, field, s)
	}
	return uint16(n), nil
}

// hostField is the name in an MX or SRV value; "." means "no service"
// (RFC 7505, RFC 2782).
func hostField(typ, value, field, s, zone string) (string, error) {
	if s == "." {
		return s, nil
	}
	return domainName(fmt.Sprintf("%s value %q: %s %q", typ, value, field, s), s, zone)
}

// caa builds a CAA record from `flags tag "value"` (RFC 8659).
func caa(hdr mdns.RR_Header, v string) (mdns.RR, error) {
	example := examples["CAA"]
	flags, rest, ok1 := strings.Cut(v, " ")
	tag, val, ok2 := strings.Cut(strings.TrimLeft(rest, " "), " ")
	val = strings.TrimLeft(val, " ")
	if !ok1 || !ok2 || val == "" {
		return nil, fmt.Errorf("CAA value %q is not flags, tag and value; write e.g. %s", v, example)
	}
	f, err := strconv.ParseUint(flags, 10, 8)
	if err != nil {
		return nil, fmt.Errorf("CAA value %q: flags %q is not a whole number from 0 to 255", v, flags)
	}
	if tag == "" || len(tag) > 15 || strings.IndexFunc(tag, func(r rune) bool {
		return (r < 'a' || r > 'z') && (r < 'A' || r > 'Z') && (r < '0' || r > '9')
	}) >= 0 {
		return nil, fmt.Errorf("CAA value %q: tag %q is not 1 to 15 letters and digits; write e.g. %s", v, tag, example)
	}
	if len(val) >= 2 && val[0] == '"' && val[len(val)-1] == '"' {
		val = val[1 : len(val)-1]
	} else if strings.Contains(val, " ") {
		return nil, fmt.Errorf("CAA value %q: a value with spaces must be quoted; write e.g. %s", v, example)
	}
	switch {
	case strings.Contains(val, `"`):
		return nil, fmt.Errorf(`CAA value %q: the value holds a '"'; write e.g. %s`, v, example)
	case strings.Contains(val, `\`):
		return nil, fmt.Errorf(`CAA value %q: the value holds a '\' (escapes are not accepted); write e.g. %s`, v, example)
	case len(val) > maxCAAValue:
		return nil, fmt.Errorf("CAA value %q: the value is %d bytes long; the limit is %d", v, len(val), maxCAAValue)
	}
	return &mdns.CAA{Hdr: hdr, Flag: uint8(f), Tag: tag, Value: val}, nil
}
