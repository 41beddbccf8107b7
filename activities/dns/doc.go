// Package dns is drctl's DNS provider: dns.set moves a name (makes an RRset
// exactly the given values), dns.set_ttl lowers a TTL ahead of a planned
// move, and dns.check is the preflight that waits for the answer a runbook
// expects. The actions depend on two libdns capabilities (get records, set
// records, see Client), so any libdns provider plugs in through
// Provider.NewClient; the built-in one, RFC2136, speaks TSIG-signed RFC 2136
// dynamic updates to an authoritative server such as BIND 9.
//
// Invariants:
//   - Every action reads the RRset from the zone's authoritative source (for
//     RFC 2136: a signed query to the server itself, never a resolver), and
//     Observe does nothing else.
//   - Apply does nothing when the RRset already holds the desired values and
//     TTL, so a retry sends no second update. Otherwise it sends one update
//     that replaces the whole RRset (atomic on an RFC 2136 server) and then
//     polls the authoritative source until it shows the change.
//   - Nothing is sent until every name and value has passed the provider's
//     rules (names.go, values.go): an owner name is one plain domain name
//     inside the target's zone, each value is one value of its type, and
//     each record is built as a typed miekg/dns record, never formatted as
//     zone-file text and parsed. A refused input is a permanent error that
//     names the action and target and says what to write instead.
//   - Values are compared in canonical form (names fully qualified and lower
//     case, addresses in canonical text, TXT as raw text), as sets.
//   - The TSIG secret comes from the target's credentials on the worker,
//     never from inputs; no error, log line or formatted value holds it.
//   - A refused key, a zone the server does not serve and bad inputs are
//     permanent errors; an unreachable server is not.
package dns
