// Package dnslab runs a real BIND 9 authoritative server on loopback, for the
// DNS provider's tests and the local demo lab. Start writes a named.conf, a
// zone file and a fresh TSIG key into a directory of its own, starts named in
// the foreground and returns once the server answers for the zone.
//
// Invariants:
//   - named listens on 127.0.0.1 only, on one OS-picked port for both UDP and
//     TCP, and keeps that port for the server's life (Restart reuses it). It
//     never recurses and serves only the one zone.
//   - The zone accepts RFC 2136 updates and zone transfers signed with the
//     server's TSIG key (hmac-sha256, random per server) and nothing else.
//     The secret lives in Server.Secret and in named.conf (mode 0600); it is
//     never in argv, errors or logs.
//   - named is tracked by PID: Stop and Kill return once that process is
//     gone, and nothing writes to Options.Log afterwards. Close also removes
//     the directory. If the test process dies, named is sent SIGTERM.
//   - Start returns only once a TSIG-signed SOA query over UDP and over TCP
//     is answered authoritatively, so the answer comes from this server and
//     not from whatever else took the port.
package dnslab
