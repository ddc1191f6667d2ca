package delivery

import (
	"context"
	"crypto"
	"crypto/x509"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"time"
)

// Defaults for zero Options fields.
const (
	defaultPort           = 25
	defaultHelo           = "localhost"
	defaultConnectTimeout = 30 * time.Second
	// RFC 5321 section 4.5.3.2: 5 minutes for most commands, 10 for the
	// reply to the final dot.
	defaultCommandTimeout = 5 * time.Minute
	defaultDataTimeout    = 10 * time.Minute
	// defaultMaxMXHosts follows Postfix's smtp_mx_address_limit spirit.
	defaultMaxMXHosts = 5
)

// MXResolver finds mail hosts and their addresses. *Resolver implements it.
type MXResolver interface {
	LookupMX(ctx context.Context, domain string) ([]MX, error)
	LookupAddrs(ctx context.Context, host string) ([]netip.Addr, error)
}

// TLSPolicy says what to do when a server does not offer STARTTLS or the
// handshake fails.
type TLSPolicy uint8

const (
	// TLSOpportunistic uses STARTTLS when offered and falls back to
	// plaintext otherwise, on a new connection after a failed handshake
	// (RFC 7435: protection against passive attackers only).
	TLSOpportunistic TLSPolicy = iota
	// TLSRequired defers delivery unless a TLS session is established.
	TLSRequired
)

func (p TLSPolicy) String() string {
	if p == TLSRequired {
		return "required"
	}
	return "opportunistic"
}

// DKIMKey signs mail whose From header is in Domain.
type DKIMKey struct {
	Domain   string
	Selector string
	Signer   crypto.Signer // *rsa.PrivateKey or ed25519.PrivateKey
}

// Options configure a Client. Zero values take the defaults noted.
type Options struct {
	Helo           string // EHLO name; "" = "localhost"
	Port           int    // for MX hosts; 0 = 25
	ConnectTimeout time.Duration
	CommandTimeout time.Duration // each command's reply; 0 = 5m
	DataTimeout    time.Duration // sending the body, and the final reply; 0 = 10m
	// Resolver is required unless every destination has a Relay.
	Resolver   MXResolver
	MaxMXHosts int // MX hosts tried per Open; 0 = 5
	// OwnAddrs are sluice's own listening addresses and ports: an MX (on
	// Port) or relay resolving to one is a mail loop. Pass concrete
	// addresses, not wildcards.
	OwnAddrs []netip.AddrPort
	// AllowPrivateMX permits MX addresses in loopback, private,
	// link-local and unspecified ranges, which are refused otherwise.
	AllowPrivateMX bool
	DKIM           []DKIMKey
	// TLSRootCAs verifies certificates when a destination asks for
	// TLSVerify; nil = the system roots.
	TLSRootCAs *x509.CertPool
	Logger     *slog.Logger
	// Dial opens TCP connections; nil = net.Dialer. Tests use it to
	// observe or fail dials.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

// Destination is where a batch of mail goes.
type Destination struct {
	Domain    string    // recipient domain; MX lookup unless Relay is set
	Relay     string    // "host:port" or "[ip]:port": connect there, no MX lookup
	TLS       TLSPolicy // default TLSOpportunistic
	TLSVerify bool      // verify the certificate against the MX (or relay) host name
}

// Envelope is one transaction's sender and recipients.
type Envelope struct {
	From  string // "" for the null reverse-path
	Rcpts []Rcpt
	Ret   string // DSN RET: "FULL", "HDRS" or ""
	EnvID string // DSN ENVID
	DKIM  bool   // sign if a key matches the From header's domain
}

// Rcpt is one recipient with its DSN parameters (RFC 3461 section 4).
type Rcpt struct {
	Addr   string
	Notify []string // "NEVER", "SUCCESS", "FAILURE", "DELAY"
	ORCPT  string   // "rfc822;addr"
}

// Client opens SMTP sessions to destinations. Safe for concurrent use; the
// Conns it returns are not.
type Client struct {
	o   Options
	log *slog.Logger
}

// New returns a Client with defaults filled in.
func New(o Options) *Client {
	if o.Helo == "" {
		o.Helo = defaultHelo
	}
	if o.Port == 0 {
		o.Port = defaultPort
	}
	o.ConnectTimeout = orDefault(o.ConnectTimeout, defaultConnectTimeout)
	o.CommandTimeout = orDefault(o.CommandTimeout, defaultCommandTimeout)
	o.DataTimeout = orDefault(o.DataTimeout, defaultDataTimeout)
	if o.MaxMXHosts <= 0 {
		o.MaxMXHosts = defaultMaxMXHosts
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Dial == nil {
		var d net.Dialer
		o.Dial = d.DialContext
	}
	o.OwnAddrs = slices.Clone(o.OwnAddrs)
	for i, a := range o.OwnAddrs {
		o.OwnAddrs[i] = netip.AddrPortFrom(a.Addr().Unmap(), a.Port())
	}
	o.DKIM = slices.Clone(o.DKIM)
	return &Client{o: o, log: o.Logger}
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// isOwn reports whether a, on port, is one of our own listening
// addresses. The port matters: a relay on another port of our own host (a
// local smarthost, a test sink) is not a loop.
func (c *Client) isOwn(a netip.Addr, port int) bool {
	return slices.Contains(c.o.OwnAddrs, netip.AddrPortFrom(a.Unmap(), uint16(port)))
}

// ownOn returns isOwn for one port, for slices.ContainsFunc.
func (c *Client) ownOn(port int) func(netip.Addr) bool {
	return func(a netip.Addr) bool { return c.isOwn(a, port) }
}

// isPrivate reports addresses no public MX should have (RFC 6890 special
// purpose ranges that do not route on the Internet).
func isPrivate(a netip.Addr) bool {
	a = a.Unmap()
	return a.IsLoopback() || a.IsPrivate() || a.IsLinkLocalUnicast() ||
		a.IsLinkLocalMulticast() || a.IsUnspecified() || a.IsMulticast()
}
