package dns

import (
	"fmt"
	"strings"
	"unicode/utf8"

	mdns "github.com/miekg/dns"
)

// Every domain name drctl sends (owner names, zone names, names inside
// values) is a plain host-style name: ASCII letters, digits, '-' and '_'
// in dot-separated labels of 1 to 63 bytes, no label starting or ending
// with '-', at most 253 bytes fully qualified (255 on the wire). Nothing
// else is accepted, in particular not white space, ';', '(', '$', '"',
// control characters, '\' escapes, '@' inside a name or '*' wildcards: a
// name that passes is one name and nothing more however it is later
// printed or parsed. miekg/dns's IsDomainName and IsFqdn check the result
// again.
const (
	maxLabelLen = 63
	maxNameLen  = 253 // fully qualified, without the trailing dot
)

// nameRule explains every refused name.
const nameRule = "a name is letters, digits, '-' and '_' in labels of at most 63 bytes, separated by dots"

// nameHint says what to write instead of a refused name in zone.
func nameHint(zone string) string {
	return fmt.Sprintf(`write e.g. "www" (relative to zone %s), "www.%s" (fully qualified) or "@" (the apex)`, zone, zone)
}

// checkName reports why s, a name as written (relative or fully
// qualified, not "@"), is not a plain domain name; nil if it is one.
func checkName(s string) error {
	for i := 0; i < len(s); i++ {
		if c := s[i]; !isNameByte(c) {
			what, why := describe(s[i:])
			if why != "" {
				return fmt.Errorf("%s is not allowed (%s)", what, why)
			}
			return fmt.Errorf("%s is not allowed", what)
		}
	}
	for _, label := range strings.Split(strings.TrimSuffix(s, "."), ".") {
		switch {
		case label == "":
			return fmt.Errorf("it has an empty label (a leading dot or two dots in a row)")
		case len(label) > maxLabelLen:
			return fmt.Errorf("label %q is %d bytes long", label, len(label))
		case label[0] == '-':
			return fmt.Errorf("label %q starts with '-'", label)
		case label[len(label)-1] == '-':
			return fmt.Errorf("label %q ends with '-'", label)
		}
	}
	return nil
}

func isNameByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.'
}

// describe names the character that s starts with for a message, and why
// it is refused when that is not obvious.
func describe(s string) (what, why string) {
	switch c := s[0]; {
	case c == ' ':
		return "a space", ""
	case c == '\t':
		return "a tab", ""
	case c == '\n':
		return "a line break", ""
	case c == '\r':
		return "a carriage return", ""
	case c < ' ' || c == 0x7f:
		return fmt.Sprintf("a control character (0x%02x)", c), ""
	case c == '\\':
		return `a '\'`, "escapes are not accepted"
	case c == '@':
		return "an '@'", `"@" alone is the zone's apex`
	case c == '*':
		return "a '*'", "drctl does not manage wildcard records"
	case c < utf8.RuneSelf:
		return fmt.Sprintf("a '%c'", c), ""
	}
	if r, n := utf8.DecodeRuneInString(s); r != utf8.RuneError || n > 1 {
		return fmt.Sprintf("a non-ASCII character %q", r), "write an internationalized name in its xn-- form"
	}
	return fmt.Sprintf("the byte 0x%02x (not UTF-8)", s[0]), ""
}

// domainName resolves a name a person wrote to a fully qualified
// lower-case name: relative to zone unless it ends in a dot, "@" (or "")
// being the apex, as in a zone file. what names the input in messages
// (`name "www"`, `CNAME value "db"`). A relative name that ends in the
// zone's own name ("www.example.test" in example.test.) is refused: it
// nearly always means the fully qualified name with its trailing dot
// forgotten.
func domainName(what, s, zone string) (string, error) {
	if s != "" && s != "@" && !strings.HasSuffix(s, ".") && checkName(s) == nil {
		bare := strings.TrimSuffix(zone, ".")
		if n := strings.ToLower(s); n == bare || strings.HasSuffix(n, "."+bare) {
			return "", fmt.Errorf("%s is relative, so it means %s; write %q (relative to the zone) or %q (with the trailing dot)",
				what, n+"."+zone, relative(n+".", zone), s+".")
		}
	}
	return absoluteName(what, s, zone)
}

// absoluteName is domainName without the guess about a forgotten trailing
// dot, for names that follow libdns's convention (relative to the zone
// unless they end in a dot) because a program, not a person, made them
// relative.
func absoluteName(what, s, zone string) (string, error) {
	if s == "" || s == "@" {
		return zone, nil
	}
	if err := checkName(s); err != nil {
		return "", fmt.Errorf("%s: %v; %s: %s", what, err, nameRule, nameHint(zone))
	}
	fqdn := strings.ToLower(s)
	if !strings.HasSuffix(s, ".") {
		fqdn += "." + zone
	}
	if n := len(fqdn) - 1; n > maxNameLen {
		return "", fmt.Errorf("%s: it is %d bytes long fully qualified, more than %d; %s: %s", what, n, maxNameLen, nameRule, nameHint(zone))
	}
	if _, ok := mdns.IsDomainName(fqdn); !ok || !mdns.IsFqdn(fqdn) {
		// Unreachable with the rules above; kept so the library's rules
		// bind even if ours drift.
		return "", fmt.Errorf("%s is not a domain name by the DNS library's rules; %s: %s", what, nameRule, nameHint(zone))
	}
	return fqdn, nil
}

// ownerName turns an owner name a person wrote into a fully qualified
// lower-case name inside zone (see domainName), or says why it cannot be
// one. An empty name is refused rather than taken for the apex: it is
// what a runbook parameter left empty expands to, and the apex is written
// "@".
func ownerName(name, zone string) (string, error) {
	if name == "" {
		return "", fmt.Errorf(`name "" is empty: write "@" for the zone's apex, or a name such as "www"`)
	}
	fqdn, err := domainName(fmt.Sprintf("name %q", name), name, zone)
	if err != nil {
		return "", err
	}
	return fqdn, inZone(name, fqdn, zone)
}

// recordName is ownerName for a libdns record's name (see absoluteName).
func recordName(name, zone string) (string, error) {
	fqdn, err := absoluteName(fmt.Sprintf("name %q", name), name, zone)
	if err != nil {
		return "", err
	}
	return fqdn, inZone(name, fqdn, zone)
}

func inZone(name, fqdn, zone string) error {
	if !mdns.IsSubDomain(zone, fqdn) {
		return fmt.Errorf(`name %q is not in zone %s, the target's zone: write a name inside it, e.g. "www" or "www.%s", or use a target whose zone holds it`,
			name, zone, zone)
	}
	return nil
}

// zoneName is a zone as a fully qualified lower-case name; the root is
// refused.
func zoneName(z string) (string, error) {
	if z == "" {
		return "", fmt.Errorf(`no zone: write e.g. "example.com."`)
	}
	if err := checkName(z); err != nil {
		return "", fmt.Errorf(`zone %q: %v; %s: write e.g. "example.com."`, z, err, nameRule)
	}
	fqdn := strings.ToLower(mdns.Fqdn(z))
	if n := len(fqdn) - 1; n > maxNameLen {
		return "", fmt.Errorf(`zone %q is %d bytes long, more than %d`, z, n, maxNameLen)
	}
	if _, ok := mdns.IsDomainName(fqdn); !ok || !mdns.IsFqdn(fqdn) {
		return "", fmt.Errorf(`zone %q is not a domain name by the DNS library's rules: write e.g. "example.com."`, z)
	}
	return fqdn, nil
}
