package dns

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/libdns/libdns"
	mdns "github.com/miekg/dns"

	"github.com/drctl/drctl/activities"
)

// RFC2136 is a libdns provider for an authoritative server that accepts
// TSIG-signed dynamic updates (RFC 2136), such as BIND 9. Every message it
// sends is signed and every signed answer is verified. Reads ask the server
// itself: GetRRset by a query, GetRecords by a zone transfer (AXFR).
// SetRecords, AppendRecords and DeleteRecords each send one update message,
// which the server applies atomically or not at all.
//
// Every zone, owner name and value is checked before anything is sent
// (see names.go and values.go): an owner name must be one plain domain
// name inside the zone, and each record is built as a typed miekg/dns
// record, never parsed from zone-file text, so no input can add a record,
// a field or a comment to a message. A refused input is permanent.
//
// Errors name the server and zone, never the secret. A refused key or
// signature (BADKEY, BADSIG, BADTIME), a zone the server does not serve or
// will not let the key change (NOTAUTH, REFUSED, NOTZONE) and malformed
// requests are permanent (activities.IsPermanent); an unreachable server,
// a timeout or SERVFAIL is not.
type RFC2136 struct {
	// Server is the authoritative server, host:port (port 53 if omitted).
	Server string
	// KeyName is the TSIG key's name, as the server knows it.
	KeyName string
	// Algorithm is the TSIG algorithm: hmac-sha256 (default), hmac-sha1,
	// hmac-sha224, hmac-sha384, hmac-sha512 or hmac-md5.
	Algorithm string
	// Secret is the key's secret, base64.
	Secret Secret
	// Timeout bounds one exchange with the server. Default 5s.
	Timeout time.Duration
}

// Secret is a TSIG secret. It prints as "[redacted]" so it cannot leak
// through a formatted struct or error.
type Secret string

// String implements fmt.Stringer without revealing the secret.
func (Secret) String() string { return "[redacted]" }

// GoString implements fmt.GoStringer without revealing the secret.
func (Secret) GoString() string { return `"[redacted]"` }

var (
	_ libdns.RecordGetter   = (*RFC2136)(nil)
	_ libdns.RecordSetter   = (*RFC2136)(nil)
	_ libdns.RecordAppender = (*RFC2136)(nil)
	_ libdns.RecordDeleter  = (*RFC2136)(nil)
	_ RRsetGetter           = (*RFC2136)(nil)
	_ Client                = (*RFC2136)(nil)
)

var algorithms = map[string]string{
	"hmac-sha256": mdns.HmacSHA256,
	"hmac-sha1":   mdns.HmacSHA1,
	"hmac-sha224": mdns.HmacSHA224,
	"hmac-sha384": mdns.HmacSHA384,
	"hmac-sha512": mdns.HmacSHA512,
	"hmac-md5":    mdns.HmacMD5,
}

// check validates the configuration; its errors are permanent and never
// show the secret.
func (p *RFC2136) check() error {
	if p.Server == "" {
		return activities.Permanentf("rfc2136: no server")
	}
	if p.KeyName == "" {
		return activities.Permanentf("rfc2136: no TSIG key name")
	}
	if _, err := p.algorithm(); err != nil {
		return err
	}
	b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(p.Secret)))
	if err != nil || len(b) == 0 {
		return activities.Permanentf("rfc2136: the TSIG secret of key %s is not base64 (the value is not shown)", p.KeyName)
	}
	return nil
}

func (p *RFC2136) algorithm() (string, error) {
	a := strings.ToLower(strings.TrimSuffix(strings.TrimSpace(p.Algorithm), "."))
	if a == "" {
		a = "hmac-sha256"
	}
	alg, ok := algorithms[a]
	if !ok {
		return "", activities.Permanentf("rfc2136: unknown TSIG algorithm %q (hmac-sha256, hmac-sha512, ...)", p.Algorithm)
	}
	return alg, nil
}

func (p *RFC2136) addr() string {
	if _, _, err := net.SplitHostPort(p.Server); err == nil {
		return p.Server
	}
	return net.JoinHostPort(strings.Trim(p.Server, "[]"), "53")
}

func (p *RFC2136) keyName() string { return mdns.CanonicalName(p.KeyName) }

func (p *RFC2136) timeout() time.Duration {
	if p.Timeout > 0 {
		return p.Timeout
	}
	return 5 * time.Second
}

func (p *RFC2136) tsig() map[string]string {
	return map[string]string{p.keyName(): strings.TrimSpace(string(p.Secret))}
}

// GetRRset implements RRsetGetter with a TSIG-signed query (UDP, then TCP
// if the answer is truncated). The answer must be authoritative.
func (p *RFC2136) GetRRset(ctx context.Context, zone, name, typ string) ([]libdns.Record, error) {
	zone, err := p.zone("query", zone)
	if err != nil {
		return nil, err
	}
	fqdn, err := recordName(name, zone)
	if err != nil {
		return nil, activities.Permanent(p.errorf("query", zone, err))
	}
	code, ok := mdns.StringToType[strings.ToUpper(typ)]
	if !ok {
		return nil, activities.Permanentf("rfc2136: unknown record type %q", typ)
	}
	op := "query " + fqdn + " " + strings.ToUpper(typ)
	m := new(mdns.Msg)
	m.SetQuestion(fqdn, code)
	m.RecursionDesired = false
	r, err := p.exchange(ctx, "udp", m, zone, op, mdns.RcodeNameError)
	if err == nil && r.Truncated {
		r, err = p.exchange(ctx, "tcp", m, zone, op, mdns.RcodeNameError)
	}
	if err != nil {
		return nil, err
	}
	if !r.Authoritative {
		return nil, activities.Permanent(p.errorf(op, zone, fmt.Errorf("the answer is not authoritative: the server does not serve zone %s", zone)))
	}
	var recs []libdns.Record
	for _, rr := range r.Answer {
		if h := rr.Header(); h.Rrtype == code && strings.EqualFold(h.Name, fqdn) {
			recs = append(recs, fromDNS(zone, rr))
		}
	}
	return recs, nil
}

// GetRecords implements libdns.RecordGetter with a TSIG-signed zone
// transfer. The SOA record is left out.
func (p *RFC2136) GetRecords(ctx context.Context, zone string) ([]libdns.Record, error) {
	const op = "zone transfer"
	zone, err := p.zone(op, zone)
	if err != nil {
		return nil, err
	}
	// A signed SOA query first: its answer says precisely why a transfer
	// would fail (key, zone, server), where a failed transfer does not.
	if _, err := p.GetRRset(ctx, zone, "@", "SOA"); err != nil {
		return nil, err
	}
	alg, err := p.algorithm()
	if err != nil {
		return nil, err
	}
	m := new(mdns.Msg)
	m.SetAxfr(zone)
	m.SetTsig(p.keyName(), alg, 300, time.Now().Unix())
	deadline := time.Now().Add(p.timeout())
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	t := &mdns.Transfer{DialTimeout: time.Until(deadline), ReadTimeout: time.Until(deadline), WriteTimeout: time.Until(deadline), TsigSecret: p.tsig()}
	envs, err := t.In(m, p.addr())
	if err != nil {
		return nil, p.errorf(op, zone, fmt.Errorf("server unreachable: %w", err))
	}
	var recs []libdns.Record
	var failed error
	for env := range envs {
		if failed != nil {
			continue // drain
		}
		if env.Error != nil {
			failed = env.Error
			continue
		}
		for _, rr := range env.RR {
			if rr.Header().Rrtype == mdns.TypeSOA {
				continue
			}
			recs = append(recs, fromDNS(zone, rr))
		}
	}
	if failed != nil {
		if errors.Is(failed, mdns.ErrSig) || errors.Is(failed, mdns.ErrTime) || strings.Contains(failed.Error(), "bad xfr rcode") {
			return nil, activities.Permanent(p.errorf(op, zone, fmt.Errorf("refused: %w (the key %s may not transfer the zone?)", failed, p.keyName())))
		}
		return nil, p.errorf(op, zone, failed)
	}
	return recs, ctx.Err()
}

// SetRecords implements libdns.RecordSetter: for every name and type in
// recs, one message deletes the RRset and adds recs' records, so the RRset
// is exactly recs, atomically.
func (p *RFC2136) SetRecords(ctx context.Context, zone string, recs []libdns.Record) ([]libdns.Record, error) {
	zone, err := p.zone("update", zone)
	if err != nil {
		return nil, err
	}
	rrs, err := wireRecords(zone, recs)
	if err != nil {
		return nil, activities.Permanent(p.errorf("update", zone, err))
	}
	m := new(mdns.Msg)
	m.SetUpdate(zone)
	seen := map[[2]string]bool{}
	for _, rr := range rrs {
		h := rr.Header()
		k := [2]string{h.Name, mdns.TypeToString[h.Rrtype]}
		if !seen[k] {
			seen[k] = true
			m.RemoveRRset([]mdns.RR{&mdns.ANY{Hdr: mdns.RR_Header{Name: h.Name, Rrtype: h.Rrtype}}})
		}
	}
	m.Insert(rrs)
	if _, err := p.exchange(ctx, "tcp", m, zone, "update"); err != nil {
		return nil, err
	}
	return recs, nil
}

// AppendRecords implements libdns.RecordAppender: one message adds recs.
func (p *RFC2136) AppendRecords(ctx context.Context, zone string, recs []libdns.Record) ([]libdns.Record, error) {
	zone, err := p.zone("update", zone)
	if err != nil {
		return nil, err
	}
	rrs, err := wireRecords(zone, recs)
	if err != nil {
		return nil, activities.Permanent(p.errorf("update", zone, err))
	}
	m := new(mdns.Msg)
	m.SetUpdate(zone)
	m.Insert(rrs)
	if _, err := p.exchange(ctx, "tcp", m, zone, "update"); err != nil {
		return nil, err
	}
	return recs, nil
}

// DeleteRecords implements libdns.RecordDeleter in one message. A record
// with empty Data deletes the whole RRset of its name and type.
func (p *RFC2136) DeleteRecords(ctx context.Context, zone string, recs []libdns.Record) ([]libdns.Record, error) {
	zone, err := p.zone("update", zone)
	if err != nil {
		return nil, err
	}
	m := new(mdns.Msg)
	m.SetUpdate(zone)
	for _, rec := range recs {
		r := rec.RR()
		fqdn, typ, code, err := wireName(zone, r)
		if err != nil {
			return nil, activities.Permanent(p.errorf("update", zone, err))
		}
		if r.Data == "" {
			m.RemoveRRset([]mdns.RR{&mdns.ANY{Hdr: mdns.RR_Header{Name: fqdn, Rrtype: code}}})
			continue
		}
		rr, err := toDNS(zone, fqdn, typ, 0, r.Data)
		if err != nil {
			return nil, activities.Permanent(p.errorf("update", zone, fmt.Errorf("%s %s: %w", fqdn, typ, err)))
		}
		m.Remove([]mdns.RR{rr})
	}
	if _, err := p.exchange(ctx, "tcp", m, zone, "update"); err != nil {
		return nil, err
	}
	return recs, nil
}

// zone checks a zone a caller names (see zoneName); its error is
// permanent.
func (p *RFC2136) zone(op, zone string) (string, error) {
	z, err := zoneName(zone)
	if err != nil {
		return "", activities.Permanent(p.errorf(op, strconv.Quote(zone), err))
	}
	return z, nil
}

// wireRecords builds the typed wire records for recs, each checked by
// recordName, recordType and toDNS; nothing is sent unless all pass.
func wireRecords(zone string, recs []libdns.Record) ([]mdns.RR, error) {
	rrs := make([]mdns.RR, 0, len(recs))
	for _, rec := range recs {
		r := rec.RR()
		fqdn, typ, _, err := wireName(zone, r)
		if err != nil {
			return nil, err
		}
		rr, err := toDNS(zone, fqdn, typ, r.TTL, r.Data)
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", fqdn, typ, err)
		}
		rrs = append(rrs, rr)
	}
	return rrs, nil
}

// wireName checks a libdns record's name (relative to zone, "@" the apex,
// or fully qualified) and type.
func wireName(zone string, r libdns.RR) (fqdn, typ string, code uint16, err error) {
	if fqdn, err = recordName(r.Name, zone); err != nil {
		return "", "", 0, err
	}
	if typ, code, err = recordType(r.Type); err != nil {
		return "", "", 0, fmt.Errorf("%s: %w", fqdn, err)
	}
	return fqdn, typ, code, nil
}

// exchange signs m, sends it over nw and classifies the outcome. Rcodes
// other than NOERROR and those in ok are errors.
func (p *RFC2136) exchange(ctx context.Context, nw string, m *mdns.Msg, zone, op string, ok ...int) (*mdns.Msg, error) {
	if err := p.check(); err != nil {
		return nil, err
	}
	alg, _ := p.algorithm()
	m.SetTsig(p.keyName(), alg, 300, time.Now().Unix())
	if err := fits(m, alg); err != nil {
		return nil, activities.Permanent(p.errorf(op, zone, err))
	}
	c := &mdns.Client{Net: nw, Timeout: p.timeout(), TsigSecret: p.tsig()}
	r, _, err := c.ExchangeContext(ctx, m, p.addr())
	if r != nil {
		if t := r.IsTsig(); t != nil && t.Error != mdns.RcodeSuccess {
			why := "the key name, secret or algorithm does not match the server's"
			if t.Error == mdns.RcodeBadTime {
				why = "this worker's clock and the server's differ by more than the 5 minutes TSIG allows"
			}
			return nil, activities.Permanent(p.errorf(op, zone, fmt.Errorf(
				"the server refused TSIG key %s (%s): %s", p.keyName(), rcodeName(int(t.Error)), why)))
		}
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil, p.errorf(op, zone, ctx.Err())
		}
		if r != nil && r.Rcode == mdns.RcodeNotAuth && errors.Is(err, mdns.ErrAuth) {
			// miekg/dns does not verify a NOTAUTH answer's signature; NOTAUTH
			// without a TSIG error means the zone is not served there.
			return nil, p.rcodeError(op, zone, r.Rcode)
		}
		if errors.Is(err, mdns.ErrSig) || errors.Is(err, mdns.ErrTime) || errors.Is(err, mdns.ErrSecret) || errors.Is(err, mdns.ErrKeyAlg) {
			return nil, activities.Permanent(p.errorf(op, zone, fmt.Errorf(
				"the answer's TSIG signature does not verify with key %s (%v): the secret does not match the server's", p.keyName(), err)))
		}
		if r == nil {
			return nil, p.errorf(op, zone, fmt.Errorf("server unreachable: %w", err))
		}
		return nil, p.errorf(op, zone, err)
	}
	if r.Rcode == mdns.RcodeSuccess {
		return r, nil
	}
	for _, c := range ok {
		if r.Rcode == c {
			return r, nil
		}
	}
	return nil, p.rcodeError(op, zone, r.Rcode)
}

// macSize is the length of each TSIG algorithm's MAC.
var macSize = map[string]int{
	mdns.HmacSHA256: 32, mdns.HmacSHA1: 20, mdns.HmacSHA224: 28, mdns.HmacSHA384: 48, mdns.HmacSHA512: 64, mdns.HmacMD5: 16,
}

// fits checks that m, once signed with alg, packs into one DNS message.
// Without it a message too large to send would fail in the client as if
// the server were unreachable, and be retried forever.
func fits(m *mdns.Msg, alg string) error {
	b, err := m.Pack()
	if err != nil {
		return fmt.Errorf("the message cannot be encoded: %w", err)
	}
	if n := len(b) + macSize[alg]; n > mdns.MaxMsgSize {
		return fmt.Errorf("the message would be %d bytes, more than the %d a DNS message can hold: set fewer or shorter values", n, mdns.MaxMsgSize)
	}
	return nil
}

func (p *RFC2136) rcodeError(op, zone string, rcode int) error {
	name := rcodeName(rcode)
	switch rcode {
	case mdns.RcodeServerFailure:
		return p.errorf(op, zone, fmt.Errorf("server failure (SERVFAIL)"))
	case mdns.RcodeNotAuth:
		return activities.Permanent(p.errorf(op, zone, fmt.Errorf("the server is not authoritative for zone %s (NOTAUTH): check the target's zone and server", zone)))
	case mdns.RcodeRefused:
		return activities.Permanent(p.errorf(op, zone, fmt.Errorf("refused (REFUSED): the server does not serve zone %s, or key %s may not do this there", zone, p.keyName())))
	case mdns.RcodeNotZone:
		return activities.Permanent(p.errorf(op, zone, fmt.Errorf("a name is outside zone %s (NOTZONE)", zone)))
	}
	return activities.Permanent(p.errorf(op, zone, fmt.Errorf("the server answered %s", name)))
}

func rcodeName(rcode int) string {
	switch rcode {
	case mdns.RcodeBadSig: // 16, also BADVERS
		return "BADSIG"
	case mdns.RcodeBadKey:
		return "BADKEY"
	case mdns.RcodeBadTime:
		return "BADTIME"
	}
	if s, ok := mdns.RcodeToString[rcode]; ok {
		return s
	}
	return fmt.Sprintf("rcode %d", rcode)
}

// errorf names the operation, zone and server: "rfc2136 update drctl.test. at 127.0.0.1:53: ...".
func (p *RFC2136) errorf(op, zone string, err error) error {
	return fmt.Errorf("rfc2136 %s in zone %s at %s: %w", op, zone, p.addr(), err)
}

// String names the provider without its secret.
func (p *RFC2136) String() string {
	return fmt.Sprintf("rfc2136 %s key %s", p.addr(), p.keyName())
}
