package config

import "strings"

// patternMatch scores how well a normalised domain matches one normalised
// pattern: -1 for no match; for a match, higher is more specific (an exact
// name beats any wildcard, a longer "*.suffix" beats a shorter one, and "*"
// scores 0).
func patternMatch(pattern, domain string) int {
	switch {
	case pattern == domain:
		return len(pattern) + 1<<20 // above any wildcard: names are < 254 bytes
	case pattern == "*":
		return 0
	case strings.HasPrefix(pattern, "*.") && len(domain) > len(pattern)-1 &&
		strings.HasSuffix(domain, pattern[1:]):
		return len(pattern)
	}
	return -1
}

// bestDomainMatch returns the index of the entry whose domain list matches
// domain best, or -1. Earlier entries win ties, which validation rules out
// for configurations that passed Load.
func bestDomainMatch(domain string, n int, patterns func(i int) []string) int {
	domain = normalizeDomain(domain)
	best, bestScore := -1, -1
	for i := range n {
		for _, p := range patterns(i) {
			if s := patternMatch(p, domain); s > bestScore {
				best, bestScore = i, s
			}
		}
	}
	return best
}

// OperatorFor returns the operator whose domains list domain: an exact name
// first, else the longest matching "*.suffix". Matching ignores case and a
// trailing dot. It does not look at MX hosts; see OperatorForMX.
func (c *Config) OperatorFor(domain string) (*Operator, bool) {
	i := bestDomainMatch(domain, len(c.Operators), func(i int) []string { return c.Operators[i].Domains })
	if i < 0 {
		return nil, false
	}
	return &c.Operators[i], true
}

// RouteFor returns the route for domain: an exact name first, else the
// longest matching "*.suffix", else a route listing "*".
func (c *Config) RouteFor(domain string) (*Route, bool) {
	i := bestDomainMatch(domain, len(c.Routes), func(i int) []string { return c.Routes[i].Domains })
	if i < 0 {
		return nil, false
	}
	return &c.Routes[i], true
}

// OperatorForMX returns the operator one of whose mx_patterns matches the MX
// host name host ('*' matches any run of characters, dots included; '?' one
// character). The longest matching pattern wins, then the earlier operator.
// Matching ignores case and a trailing dot.
func (c *Config) OperatorForMX(host string) (*Operator, bool) {
	host = normalizeDomain(host)
	best, bestLen := -1, -1
	for i := range c.Operators {
		for _, p := range c.Operators[i].MXPatterns {
			if len(p) > bestLen && globMatch(p, host) {
				best, bestLen = i, len(p)
			}
		}
	}
	if best < 0 {
		return nil, false
	}
	return &c.Operators[best], true
}
