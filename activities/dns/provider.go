package dns

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/libdns/libdns"

	"github.com/drctl/drctl/activities"
	"github.com/drctl/drctl/runbooks"
)

// TargetKind is the runbook target kind this provider serves.
const TargetKind = "dns"

// Target attributes.
const (
	AttrZone      = "zone"      // the zone, e.g. example.test. (every client)
	AttrServer    = "server"    // RFC 2136: the authoritative server, host:port
	AttrKeyName   = "key_name"  // RFC 2136: the TSIG key's name
	AttrAlgorithm = "algorithm" // RFC 2136: the TSIG algorithm, default hmac-sha256
)

// Client is what the actions need from a DNS provider: read the zone's
// records and set RRsets. Every libdns provider that can get and set
// records (rfc2136, route53, cloudflare, ...) satisfies it; drctl's own is
// RFC2136.
type Client interface {
	libdns.RecordGetter
	libdns.RecordSetter
}

// RRsetGetter is the optional capability of reading one RRset without
// listing the zone. name is relative to zone ("@" for the apex), as in
// libdns. Clients without it are read with GetRecords.
type RRsetGetter interface {
	GetRRset(ctx context.Context, zone, name, typ string) ([]libdns.Record, error)
}

// Deleting an RRset (dns.set with no values) needs libdns.RecordDeleter.

// Secrets reads a target's secret (for RFC 2136, the TSIG secret in
// base64). The default reads the environment variable or file the target's
// credentials name, on the worker.
type Secrets interface {
	Secret(t runbooks.Target) (string, error)
}

// CredentialSecrets reads credentials.env / credentials.file.
type CredentialSecrets struct{}

// Secret implements Secrets.
func (CredentialSecrets) Secret(t runbooks.Target) (string, error) {
	return activities.Credential(t, "its TSIG secret (base64)")
}

// NewRFC2136 is the default Provider.NewClient: an RFC2136 client for the
// target's server, key_name and algorithm attributes.
func NewRFC2136(t runbooks.Target, secret string) (Client, error) {
	p := &RFC2136{
		Server:    strings.TrimSpace(t.Attributes[AttrServer]),
		KeyName:   strings.TrimSpace(t.Attributes[AttrKeyName]),
		Algorithm: strings.TrimSpace(t.Attributes[AttrAlgorithm]),
		Secret:    Secret(secret),
	}
	switch {
	case p.Server == "":
		return nil, activities.Permanentf("target %s: attribute %s (host:port of the zone's authoritative server) is missing", t.Name, AttrServer)
	case p.KeyName == "":
		return nil, activities.Permanentf("target %s: attribute %s (the TSIG key's name) is missing", t.Name, AttrKeyName)
	}
	if err := p.check(); err != nil {
		return nil, fmt.Errorf("target %s: %w", t.Name, err)
	}
	return p, nil
}

// Provider holds what every DNS action shares.
type Provider struct {
	// Secrets reads targets' secrets. Nil: CredentialSecrets.
	Secrets Secrets
	// NewClient builds the client for a target from its attributes and
	// secret; this is where other libdns providers plug in. Nil: NewRFC2136.
	NewClient func(t runbooks.Target, secret string) (Client, error)
	// Timeout bounds one exchange with an RFC 2136 server. Default 5s.
	Timeout time.Duration
	// Verify bounds how long Apply waits for the server to show the change
	// it made. Default 10s.
	Verify time.Duration
	// Poll is the interval of the verify loop. Default 20ms.
	Poll time.Duration
}

func (p *Provider) verifyTimeout() time.Duration {
	if p.Verify > 0 {
		return p.Verify
	}
	return 10 * time.Second
}

func (p *Provider) poll() time.Duration {
	if p.Poll > 0 {
		return p.Poll
	}
	return 20 * time.Millisecond
}

// zoneClient is a client bound to one target's zone.
type zoneClient struct {
	target string // target name, for messages
	zone   string // fully qualified, lower case
	client Client
}

// open builds the client for the named target. Errors name the target and
// never hold the secret; a missing or malformed target is permanent.
func (p *Provider) open(req activities.Request, target string) (*zoneClient, error) {
	t, ok := req.Target(target)
	if !ok {
		return nil, activities.Permanentf("no target %q in the runbook", target)
	}
	if t.Kind != TargetKind {
		return nil, activities.Permanentf("target %s is a %s, not a %s target", target, t.Kind, TargetKind)
	}
	zone, err := zoneName(t.Attributes[AttrZone])
	if err != nil {
		return nil, activities.Permanentf("target %s: attribute %s: %v", target, AttrZone, err)
	}
	secrets := p.Secrets
	if secrets == nil {
		secrets = CredentialSecrets{}
	}
	secret, err := secrets.Secret(t)
	if err != nil {
		return nil, err
	}
	newClient := p.NewClient
	if newClient == nil {
		newClient = func(t runbooks.Target, secret string) (Client, error) {
			c, err := NewRFC2136(t, secret)
			if err == nil {
				c.(*RFC2136).Timeout = p.Timeout
			}
			return c, err
		}
	}
	c, err := newClient(t, secret)
	if err != nil {
		return nil, err
	}
	return &zoneClient{target: target, zone: zone, client: c}, nil
}

// read returns the RRset as the zone's authoritative source has it.
func (z *zoneClient) read(ctx context.Context, fqdn, typ string) (rrset, error) {
	var recs []libdns.Record
	var err error
	if g, ok := z.client.(RRsetGetter); ok {
		recs, err = g.GetRRset(ctx, z.zone, relative(fqdn, z.zone), typ)
	} else {
		recs, err = z.client.GetRecords(ctx, z.zone)
	}
	if err != nil {
		return rrset{}, err
	}
	return fromRecords(z.zone, fqdn, typ, recs), nil
}

// write makes the RRset exactly s; with no values it deletes it.
func (z *zoneClient) write(ctx context.Context, s rrset) error {
	if s.exists() {
		_, err := z.client.SetRecords(ctx, z.zone, toRecords(z.zone, s))
		return err
	}
	d, ok := z.client.(libdns.RecordDeleter)
	if !ok {
		return activities.Permanentf("the DNS provider of target %s cannot delete records", z.target)
	}
	_, err := d.DeleteRecords(ctx, z.zone, []libdns.Record{libdns.RR{Name: relative(s.Name, z.zone), Type: s.Type}})
	return err
}

// verify polls the authoritative source until it shows want (values and
// TTL), within the provider's verify timeout.
func (p *Provider) verify(ctx context.Context, z *zoneClient, want rrset) error {
	ctx, cancel := context.WithTimeout(ctx, p.verifyTimeout())
	defer cancel()
	tick := time.NewTicker(p.poll())
	defer tick.Stop()
	for {
		got, err := z.read(ctx, want.Name, want.Type)
		if err == nil && sameValues(got, want) && (!want.exists() || got.TTL == want.TTL) {
			return nil
		}
		if activities.IsPermanent(err) {
			return fmt.Errorf("verify: %w", err)
		}
		select {
		case <-ctx.Done():
			if err != nil {
				return fmt.Errorf("not verified: %w", err)
			}
			return fmt.Errorf("not verified: the server accepted the change but still answers %s, want %s "+
				"(a CNAME cannot share its name with other records; a server may drop such a change silently)", got, want)
		case <-tick.C:
		}
	}
}
