package delivery

import (
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
)

const (
	// maxCacheTTL caps how long any answer is kept, so that a record with
	// a huge TTL cannot pin a stale route.
	maxCacheTTL = time.Hour
	// defaultNegTTL applies to negative answers without an SOA.
	defaultNegTTL = 60 * time.Second
	// maxCacheEntries bounds the cache's memory.
	maxCacheEntries = 10000
	// maxCNAMEChain bounds how many aliases are followed in one answer.
	maxCNAMEChain = 8
)

type cacheKey struct {
	name  string
	qtype uint16
}

// cacheEntry is a parsed answer. nxdomain marks a name that does not exist;
// an entry with no records and !nxdomain is NODATA.
type cacheEntry struct {
	expires  time.Time
	nxdomain bool
	mx       []MX // sorted by preference; null MX kept as Host "."
	addrs    []netip.Addr
}

// cache holds answers until their TTL passes. Safe for concurrent use.
type cache struct {
	mu sync.Mutex
	m  map[cacheKey]cacheEntry
}

func newCache() *cache {
	return &cache{m: make(map[cacheKey]cacheEntry)}
}

func (c *cache) get(k cacheKey, now time.Time) (cacheEntry, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[k]
	if !ok {
		return cacheEntry{}, false
	}
	if !now.Before(e.expires) {
		delete(c.m, k)
		return cacheEntry{}, false
	}
	return e, true
}

func (c *cache) put(k cacheKey, e cacheEntry, now time.Time) {
	if !e.expires.After(now) {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= maxCacheEntries {
		c.evict(now)
	}
	c.m[k] = e
}

// evict drops expired entries and, if the cache is still full, arbitrary
// ones (map order) until a tenth is free. Callers hold c.mu.
func (c *cache) evict(now time.Time) {
	for k, e := range c.m {
		if !now.Before(e.expires) {
			delete(c.m, k)
		}
	}
	for k := range c.m {
		if len(c.m) < maxCacheEntries*9/10 {
			return
		}
		delete(c.m, k)
	}
}

// parseAnswer turns a NOERROR or NXDOMAIN answer for name into a cache
// entry, with its lifetime: the smallest TTL of the records used (RFC 2181
// section 5.2), or for negative answers the RFC 2308 section 5 negative TTL.
func parseAnswer(name string, qtype uint16, resp *dns.Msg, now time.Time) cacheEntry {
	if resp.Rcode == dns.RcodeNameError {
		return cacheEntry{nxdomain: true, expires: now.Add(negativeTTL(resp))}
	}
	owners, ttl := cnameChain(name, resp.Answer)
	var e cacheEntry
	for _, rr := range resp.Answer {
		if !owners[dns.CanonicalName(rr.Header().Name)] || rr.Header().Rrtype != qtype {
			continue
		}
		switch v := rr.(type) {
		case *dns.MX:
			e.mx = append(e.mx, MX{Host: hostName(v.Mx), Pref: v.Preference})
		case *dns.A:
			e.addrs = appendAddr(e.addrs, v.A)
		case *dns.AAAA:
			e.addrs = appendAddr(e.addrs, v.AAAA)
		default:
			continue
		}
		ttl = min(ttl, time.Duration(rr.Header().Ttl)*time.Second)
	}
	if len(e.mx) == 0 && len(e.addrs) == 0 {
		ttl = negativeTTL(resp)
	}
	e.expires = now.Add(ttl)
	return e
}

// cnameChain returns the names that answer for name (itself and the
// aliases it leads to) and the smallest TTL along the chain.
func cnameChain(name string, answer []dns.RR) (map[string]bool, time.Duration) {
	owners := map[string]bool{name: true}
	ttl := maxCacheTTL
	cur := name
	for range maxCNAMEChain {
		next := ""
		for _, rr := range answer {
			if c, ok := rr.(*dns.CNAME); ok && dns.CanonicalName(c.Hdr.Name) == cur {
				next = dns.CanonicalName(c.Target)
				ttl = min(ttl, time.Duration(c.Hdr.Ttl)*time.Second)
				break
			}
		}
		if next == "" || owners[next] {
			break
		}
		owners[next] = true
		cur = next
	}
	return owners, ttl
}

// negativeTTL is min(SOA TTL, SOA MINIMUM) from the authority section (RFC
// 2308 section 5), capped; without an SOA a short default applies.
func negativeTTL(resp *dns.Msg) time.Duration {
	for _, rr := range resp.Ns {
		if soa, ok := rr.(*dns.SOA); ok {
			ttl := time.Duration(min(soa.Hdr.Ttl, soa.Minttl)) * time.Second
			return min(ttl, maxCacheTTL)
		}
	}
	return defaultNegTTL
}

func appendAddr(addrs []netip.Addr, ip []byte) []netip.Addr {
	a, ok := netip.AddrFromSlice(ip)
	if !ok {
		return addrs
	}
	return append(addrs, a.Unmap())
}

// hostName is the presentation form used for hosts: lower case, without
// the trailing dot; the root stays ".".
func hostName(fqdn string) string {
	if fqdn == "." {
		return "."
	}
	return strings.TrimSuffix(strings.ToLower(fqdn), ".")
}
