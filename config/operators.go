package config

import (
	"fmt"
	"strings"
)

// Operator is one [[operator]]: a mailbox provider whose domains share one
// budget.
type Operator struct {
	Name string
	// Domains are lowercased names without a trailing dot: exact
	// ("bigmail.com") or wildcards ("*.bigmail.com", which matches
	// subdomains but not bigmail.com itself).
	Domains []string
	// MXPatterns are lowercased host-name globs ("*.mx.bigmail.net"): a
	// domain matching no operator by name belongs to the operator one of
	// whose patterns matches one of its MX hosts.
	MXPatterns []string
	Limits
}

// Route is one [[route]]: mail for its domains goes to Relay, bypassing MX
// lookup.
type Route struct {
	// Domains are lowercased: exact, "*.suffix", or "*" for every domain no
	// other route lists.
	Domains []string
	Relay   string // host:port
	// HasLimits tells whether the route set any limit key. A route without
	// limits is a fast lane: no quota, 20 connections.
	HasLimits bool
	Limits
}

// claims remembers which table listed a domain or pattern first, to report
// duplicates naming both.
type claims map[string]claim

type claim struct {
	owner string // "operator \"bigmail\"" or "route[0]"
	key   string
}

// claim records that owner lists pattern at key, reporting a duplicate.
func (c *checker) claim(seen claims, pattern, owner, key string) {
	prev, dup := seen[pattern]
	switch {
	case dup && prev.owner == owner:
		c.errorf(key, "%q is listed twice by %s (also %s, line %d)", pattern, owner, prev.key, c.idx.line(prev.key))
	case dup:
		c.errorf(key, "%q is listed by both %s and %s (%s, line %d)",
			pattern, owner, prev.owner, prev.key, c.idx.line(prev.key))
	}
	if dup {
		return
	}
	seen[pattern] = claim{owner: owner, key: key}
}

// operators checks every [[operator]].
func (c *checker) operators(raws []rawOperator) []Operator {
	out := make([]Operator, 0, len(raws))
	names := map[string]string{} // name → key of its first use
	domains, mxs := claims{}, claims{}
	for i := range raws {
		r := &raws[i]
		p := elemPath("operator", i)
		op := Operator{Limits: c.limits(p, &r.rawLimits, limitDefaults{maxConnections: 10})}
		op.Name = c.operatorName(p, r.Name, names)
		owner := fmt.Sprintf("operator %q", op.Name)
		op.Domains = c.domainList(childPath(p, "domains"), r.Domains, false, owner, domains)
		op.MXPatterns = c.mxPatterns(childPath(p, "mx_patterns"), r.MXPatterns, owner, mxs)
		if isEmptyList(r.Domains) && isEmptyList(r.MXPatterns) {
			c.errorf(childPath(p, "domains"), "is required unless mx_patterns is set")
		}
		out = append(out, op)
	}
	return out
}

// isEmptyList tells whether a raw list is absent or empty.
func isEmptyList(v any) bool {
	list, ok := v.([]any)
	return v == nil || ok && len(list) == 0
}

// operatorName checks an operator's name and its uniqueness.
func (c *checker) operatorName(p string, v any, names map[string]string) string {
	key := childPath(p, "name")
	c.required(key, v)
	name, ok := c.str(key, v, "")
	if !ok {
		return name
	}
	if err := checkOperatorName(name); err != nil {
		c.errorf(key, "%v", err)
	} else if prev, dup := names[name]; dup {
		c.errorf(key, "%q is already the name of %s (line %d)", name, parentPath(prev), c.idx.line(prev))
	} else {
		names[name] = key
	}
	return name
}

// domainList checks a list of domain patterns: exact names and
// "*.suffix" wildcards, plus "*" when allowStar.
func (c *checker) domainList(key string, v any, allowStar bool, owner string, seen claims) []string {
	list, _ := c.strList(key, v, nil)
	out := make([]string, 0, len(list))
	for i, s := range list {
		el := elemPath(key, i)
		d := normalizeDomain(s)
		if err := checkDomainPattern(d, allowStar); err != nil {
			c.errorf(el, "%q %v", s, err)
			continue
		}
		c.claim(seen, d, owner, el)
		out = append(out, d)
	}
	return out
}

// checkDomainPattern checks a normalised exact or wildcard domain.
func checkDomainPattern(d string, allowStar bool) error {
	if d == "*" {
		if allowStar {
			return nil
		}
		return fmt.Errorf("matches everything: use the [default] table")
	}
	if suffix, ok := strings.CutPrefix(d, "*."); ok {
		d = suffix
	}
	if err := checkDomain(d); err != nil {
		return fmt.Errorf("is not a domain name or \"*.domain\" wildcard: it %w", err)
	}
	return nil
}

// mxPatterns checks host-name globs.
func (c *checker) mxPatterns(key string, v any, owner string, seen claims) []string {
	list, _ := c.strList(key, v, nil)
	out := make([]string, 0, len(list))
	for i, s := range list {
		el := elemPath(key, i)
		g := normalizeDomain(s)
		// Replacing the wildcards by a letter must leave a host name.
		if g == "" || checkDomain(strings.NewReplacer("*", "a", "?", "a").Replace(g)) != nil {
			c.errorf(el, "%q is not a host-name glob such as \"*.mx.example.net\"", s)
			continue
		}
		c.claim(seen, g, owner, el)
		out = append(out, g)
	}
	return out
}

// routes checks every [[route]].
func (c *checker) routes(raws []rawRoute) []Route {
	out := make([]Route, 0, len(raws))
	seen := claims{}
	for i := range raws {
		r := &raws[i]
		p := elemPath("route", i)
		rt := Route{HasLimits: c.hasLimits(p)}
		def := limitDefaults{maxConnections: 20}
		if rt.HasLimits {
			def.maxConnections = 10
		}
		rt.Limits = c.limits(p, &r.rawLimits, def)
		rt.Domains = c.domainList(childPath(p, "domains"), r.Domains, true, p, seen)
		if len(rt.Domains) == 0 && r.Domains != nil {
			c.errorf(childPath(p, "domains"), "must list at least one domain")
		}
		c.required(childPath(p, "domains"), r.Domains)
		rt.Relay = c.relay(childPath(p, "relay"), r.Relay)
		out = append(out, rt)
	}
	return out
}

// hasLimits tells whether any limit key (response_rule included) is set in
// the table at p.
func (c *checker) hasLimits(p string) bool {
	for name := range tomlFields(rawLimitsType) {
		if c.idx.has(childPath(p, name)) {
			return true
		}
	}
	return false
}

// relay checks a route's smarthost.
func (c *checker) relay(key string, v any) string {
	c.required(key, v)
	s, ok := c.str(key, v, "")
	if !ok {
		return s
	}
	host, err := checkHostPort(s, 1)
	if err == nil && host == "" {
		err = fmt.Errorf("%q has no host", s)
	}
	if err != nil {
		c.errorf(key, "%v", err)
	}
	return s
}
