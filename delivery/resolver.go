package delivery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// defaultDNSTimeout bounds one query to one server when none is configured.
const defaultDNSTimeout = 5 * time.Second

// resolvConf is read when no servers are configured.
const resolvConf = "/etc/resolv.conf"

// MX is one mail exchanger of a domain.
type MX struct {
	Host string // lower case, no trailing dot
	Pref uint16
}

// ResolverOptions configure a Resolver.
type ResolverOptions struct {
	Servers []string      // host:port, tried in order; empty = /etc/resolv.conf
	Timeout time.Duration // per query and server; 0 = 5s
	Logger  *slog.Logger
	Now     func() time.Time // for cache expiry; nil = time.Now
	// Rand shuffles MX hosts of equal preference (RFC 5321 section 5.1).
	// nil uses the process's random source; tests pass a seeded one.
	Rand *rand.Rand
}

// Resolver looks up MX and address records with miekg/dns and caches the
// answers within their TTL. Safe for concurrent use.
type Resolver struct {
	servers []string
	timeout time.Duration
	log     *slog.Logger
	now     func() time.Time
	cache   *cache

	randMu sync.Mutex
	rand   *rand.Rand
}

// NewResolver returns a Resolver. With no servers it reads
// /etc/resolv.conf, and fails if that names none.
func NewResolver(o ResolverOptions) (*Resolver, error) {
	r := &Resolver{
		servers: slices.Clone(o.Servers),
		timeout: o.Timeout,
		log:     o.Logger,
		now:     o.Now,
		rand:    o.Rand,
		cache:   newCache(),
	}
	if r.timeout <= 0 {
		r.timeout = defaultDNSTimeout
	}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	if r.now == nil {
		r.now = time.Now
	}
	if len(r.servers) == 0 {
		cfg, err := dns.ClientConfigFromFile(resolvConf)
		if err != nil {
			return nil, fmt.Errorf("read dns servers: %w", err)
		}
		for _, s := range cfg.Servers {
			r.servers = append(r.servers, net.JoinHostPort(s, cfg.Port))
		}
		if len(r.servers) == 0 {
			return nil, fmt.Errorf("read dns servers: no nameserver in %s", resolvConf)
		}
	}
	return r, nil
}

// LookupMX returns the mail exchangers of domain sorted by preference, in
// random order among equal preferences (RFC 5321 section 5.1). A domain
// without MX records but with address records is its own implicit MX with
// preference 0. Errors are *DNSError: null MX (RFC 7505) is permanent with
// 5.1.10, NXDOMAIN permanent with 5.1.2, server failures and timeouts
// temporary. An address literal ("[192.0.2.1]") is returned as its own MX.
func (r *Resolver) LookupMX(ctx context.Context, domain string) ([]MX, error) {
	if _, ok := parseLiteral(domain); ok {
		return []MX{{Host: domain, Pref: 0}}, nil
	}
	name, err := canonical(domain)
	if err != nil {
		return nil, err
	}
	e, err := r.lookup(ctx, name, dns.TypeMX)
	if err != nil {
		return nil, err
	}
	switch {
	case e.nxdomain:
		return nil, errNXDomain(hostName(name))
	case len(e.mx) == 0:
		return r.implicitMX(ctx, name)
	}
	hosts := slices.DeleteFunc(slices.Clone(e.mx), func(m MX) bool { return m.Host == "." })
	if len(hosts) == 0 {
		// RFC 7505 section 3: a null MX is the only MX of its domain;
		// should other records appear beside it we use those.
		return nil, errNullMX(hostName(name))
	}
	r.shuffleEqual(hosts)
	return hosts, nil
}

// implicitMX applies RFC 5321 section 5.1: with no MX records, the domain
// itself is the mail host if it has an address.
func (r *Resolver) implicitMX(ctx context.Context, name string) ([]MX, error) {
	host := hostName(name)
	if _, err := r.LookupAddrs(ctx, host); err != nil {
		var de *DNSError
		if errors.As(err, &de) && !de.Temporary {
			return nil, errNoMailHost(host)
		}
		return nil, err
	}
	return []MX{{Host: host, Pref: 0}}, nil
}

// LookupAddrs returns the IPv4 and then the IPv6 addresses of host. An IP
// address or address literal is returned as is.
func (r *Resolver) LookupAddrs(ctx context.Context, host string) ([]netip.Addr, error) {
	if a, ok := parseLiteral(host); ok {
		return []netip.Addr{a}, nil
	}
	if a, err := netip.ParseAddr(host); err == nil {
		return []netip.Addr{a.Unmap()}, nil
	}
	name, err := canonical(host)
	if err != nil {
		return nil, err
	}
	type result struct {
		e   cacheEntry
		err error
	}
	var res [2]result
	var wg sync.WaitGroup
	for i, qtype := range []uint16{dns.TypeA, dns.TypeAAAA} {
		wg.Go(func() {
			res[i].e, res[i].err = r.lookup(ctx, name, qtype)
		})
	}
	wg.Wait()
	addrs := append(slices.Clone(res[0].e.addrs), res[1].e.addrs...)
	switch {
	case len(addrs) > 0:
		return addrs, nil
	case res[0].err != nil:
		return nil, res[0].err
	case res[1].err != nil:
		return nil, res[1].err
	case res[0].e.nxdomain || res[1].e.nxdomain:
		return nil, errHostNotFound(hostName(name))
	}
	return nil, errNoAddress(hostName(name))
}

// lookup answers from the cache or asks the servers. Only NOERROR and
// NXDOMAIN answers are cached; failures are returned as temporary.
func (r *Resolver) lookup(ctx context.Context, name string, qtype uint16) (cacheEntry, error) {
	k := cacheKey{name, qtype}
	if e, ok := r.cache.get(k, r.now()); ok {
		return e, nil
	}
	resp, err := r.query(ctx, name, qtype)
	if err != nil {
		return cacheEntry{}, errTemporary(hostName(name), err)
	}
	now := r.now()
	e := parseAnswer(name, qtype, resp, now)
	slices.SortStableFunc(e.mx, func(a, b MX) int { return int(a.Pref) - int(b.Pref) })
	r.cache.put(k, e, now)
	return e, nil
}

// shuffleEqual randomises the order within each run of equal preferences;
// hosts must be sorted by preference.
func (r *Resolver) shuffleEqual(hosts []MX) {
	for i := 0; i < len(hosts); {
		j := i + 1
		for j < len(hosts) && hosts[j].Pref == hosts[i].Pref {
			j++
		}
		r.shuffle(hosts[i:j])
		i = j
	}
}

func (r *Resolver) shuffle(run []MX) {
	if len(run) < 2 {
		return
	}
	swap := func(i, j int) { run[i], run[j] = run[j], run[i] }
	if r.rand == nil {
		rand.Shuffle(len(run), swap)
		return
	}
	r.randMu.Lock()
	defer r.randMu.Unlock()
	r.rand.Shuffle(len(run), swap)
}

// canonical validates a domain and returns its lower-case FQDN.
func canonical(domain string) (string, error) {
	d := strings.TrimSuffix(domain, ".")
	if d == "" || strings.HasSuffix(d, ".") {
		return "", errBadName(domain)
	}
	if _, ok := dns.IsDomainName(d); !ok {
		return "", errBadName(domain)
	}
	return dns.CanonicalName(d), nil
}

// parseLiteral parses an address literal "[192.0.2.1]" or "[IPv6:2001:db8::1]"
// (RFC 5321 section 4.1.3).
func parseLiteral(s string) (netip.Addr, bool) {
	inner, ok := strings.CutPrefix(s, "[")
	if !ok {
		return netip.Addr{}, false
	}
	inner, ok = strings.CutSuffix(inner, "]")
	if !ok {
		return netip.Addr{}, false
	}
	if v6, ok := cutPrefixFold(inner, "IPv6:"); ok {
		a, err := netip.ParseAddr(v6)
		return a, err == nil && a.Is6()
	}
	a, err := netip.ParseAddr(inner)
	return a, err == nil && a.Is4()
}

func cutPrefixFold(s, prefix string) (string, bool) {
	if len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix) {
		return s[len(prefix):], true
	}
	return s, false
}
