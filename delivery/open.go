package delivery

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/emersion/go-smtp"
)

// Enhanced status codes (RFC 3463) for session failures.
const (
	enhConnect      = "4.4.1" // no answer from host
	enhConnLost     = "4.4.2" // bad connection
	enhLoop         = "5.4.6" // routing loop detected
	enhUnroutable   = "5.4.4" // unable to route
	enhTLSMissing   = "4.7.4" // security features not supported
	enhTLSFailed    = "4.7.5" // cryptographic failure
	enhLocalConfig  = "4.3.5" // system incorrectly configured
	enhLocalFailure = "4.3.0" // other or undefined mail system status
)

// target is one mail host with the addresses to try.
type target struct {
	host  string // for logs, SNI and certificate verification
	pref  uint16
	port  int
	addrs []netip.Addr
}

// Open resolves d and returns a session with the first MX host (or the
// relay) that accepts one, trying hosts in preference order. Connection
// failures move to the host's next address; a refused greeting, a failed
// EHLO or an unmet TLS requirement move to the next host. Errors are a
// *DNSError when the domain cannot be resolved, else an *Error carrying the
// last reply seen.
func (c *Client) Open(ctx context.Context, d Destination) (*Conn, error) {
	f := &failures{dest: d.Domain}
	var targets []target
	var err error
	if d.Relay != "" {
		f.dest = d.Relay
		targets, err = c.relayTargets(ctx, d, f)
	} else {
		targets, err = c.mxTargets(ctx, d, f)
	}
	if err != nil {
		return nil, err
	}
	for _, t := range targets {
		if cn := c.tryHost(ctx, d, t, f); cn != nil {
			return cn, nil
		}
		if ctx.Err() != nil {
			break
		}
	}
	return nil, f.err()
}

// mxTargets resolves the MX hosts of d.Domain and their addresses, leaving
// out loops and (unless allowed) private addresses. Per RFC 5321 section
// 5.1, when a host resolves to one of our own addresses, it and all hosts
// of equal or higher preference are dropped; with nothing left the mail
// loops back to us.
func (c *Client) mxTargets(ctx context.Context, d Destination, f *failures) ([]target, error) {
	if c.o.Resolver == nil {
		return nil, &Error{Temporary: true, Msg: "no resolver configured", Reply: Reply{Enhanced: enhLocalConfig}}
	}
	mxs, err := c.o.Resolver.LookupMX(ctx, d.Domain)
	if err != nil {
		return nil, err
	}
	mxs = mxs[:min(len(mxs), c.o.MaxMXHosts)]
	var out []target
	for _, mx := range mxs {
		addrs, err := c.o.Resolver.LookupAddrs(ctx, mx.Host)
		if err != nil {
			f.add(dnsFailure(mx.Host, err))
			continue
		}
		if slices.ContainsFunc(addrs, c.ownOn(c.o.Port)) {
			out = slices.DeleteFunc(out, func(t target) bool { return t.pref >= mx.Pref })
			if len(out) == 0 && !f.temporary {
				return nil, loopError(d.Domain, mx.Host)
			}
			break
		}
		if addrs = c.routable(mx.Host, addrs, f); len(addrs) > 0 {
			out = append(out, target{host: mx.Host, pref: mx.Pref, port: c.o.Port, addrs: addrs})
		}
	}
	return out, nil
}

// routable drops private addresses unless they are allowed, recording a
// permanent failure for each.
func (c *Client) routable(host string, addrs []netip.Addr, f *failures) []netip.Addr {
	if c.o.AllowPrivateMX {
		return addrs
	}
	var out []netip.Addr
	for _, a := range addrs {
		if !isPrivate(a) {
			out = append(out, a)
			continue
		}
		f.add(&Error{
			Msg:   fmt.Sprintf("MX host %s has the non-routable address %s", host, a),
			Reply: Reply{Enhanced: enhUnroutable, Text: "MX host has a non-routable address", RemoteHost: host, RemoteIP: a.String()},
		})
	}
	return out
}

// relayTargets resolves a configured relay ("host:port", "[ip]:port", or
// either without a port). Relays are chosen by the administrator, so
// private addresses are allowed, but a relay pointing at us is a loop.
func (c *Client) relayTargets(ctx context.Context, d Destination, f *failures) ([]target, error) {
	host, port, err := splitRelay(d.Relay, c.o.Port)
	if err != nil {
		return nil, &Error{Temporary: true, Msg: fmt.Sprintf("bad relay %q", d.Relay), Reply: Reply{Enhanced: enhLocalConfig}, Err: err}
	}
	var addrs []netip.Addr
	if a, err := netip.ParseAddr(host); err == nil {
		addrs = []netip.Addr{a.Unmap()}
	} else {
		if c.o.Resolver == nil {
			return nil, &Error{Temporary: true, Msg: "no resolver configured", Reply: Reply{Enhanced: enhLocalConfig}}
		}
		if addrs, err = c.o.Resolver.LookupAddrs(ctx, host); err != nil {
			return nil, err
		}
	}
	if slices.ContainsFunc(addrs, c.ownOn(port)) {
		return nil, loopError(d.Relay, host)
	}
	return []target{{host: host, port: port, addrs: addrs}}, nil
}

// splitRelay parses a relay; brackets around the host are dropped.
func splitRelay(relay string, defPort int) (string, int, error) {
	host, portStr, err := net.SplitHostPort(relay)
	if err != nil {
		host, portStr = strings.TrimSuffix(strings.TrimPrefix(relay, "["), "]"), strconv.Itoa(defPort)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port <= 0 || port > 65535 {
		return "", 0, fmt.Errorf("invalid port %q", portStr)
	}
	if host == "" {
		return "", 0, errors.New("empty host")
	}
	return host, port, nil
}

// tryHost tries the addresses of one host until one gives a session. Only
// a failure to connect moves on to the next address: once a server has
// answered, its verdict stands for the whole host.
func (c *Client) tryHost(ctx context.Context, d Destination, t target, f *failures) *Conn {
	for _, ip := range t.addrs {
		cn, e := c.connect(ctx, d, t, ip)
		if e == nil {
			return cn
		}
		c.log.Debug("mx attempt failed", "relay", t.host, "remote_ip", ip.String(), "err", e)
		f.add(e)
		if !e.dialFailed || ctx.Err() != nil {
			return nil
		}
	}
	return nil
}

// failures accumulates the outcome of every attempt of one Open.
type failures struct {
	dest      string
	n         int
	temporary bool
	lastReply Reply // last real SMTP reply
	last      *Error
}

func (f *failures) add(e *Error) {
	f.n++
	f.temporary = f.temporary || e.Temporary
	if e.Reply.Code != 0 {
		f.lastReply = e.Reply
	}
	f.last = e
}

// err summarises: temporary unless every attempt failed permanently.
func (f *failures) err() *Error {
	if f.last == nil {
		return &Error{Temporary: true, Msg: "no mail host to try for " + f.dest, Reply: Reply{Enhanced: enhLocalFailure}}
	}
	out := *f.last
	out.Temporary = f.temporary
	if f.lastReply.Code != 0 {
		out.Reply = f.lastReply
	}
	if f.n > 1 {
		out.Msg = fmt.Sprintf("all %d attempts for %s failed, last: %s", f.n, f.dest, f.last.Msg)
	}
	return &out
}

// dnsFailure wraps an MX host lookup failure.
func dnsFailure(host string, err error) *Error {
	e := &Error{Temporary: true, Msg: fmt.Sprintf("lookup of MX host %s failed", host), Err: err,
		Reply: Reply{Enhanced: enhDNSTemporary, Text: err.Error(), RemoteHost: host}}
	var de *DNSError
	if errors.As(err, &de) {
		e.Temporary = de.Temporary
		e.Reply.Enhanced = de.Enhanced
		e.Reply.Text = de.Msg
	}
	return e
}

func loopError(dest, host string) *Error {
	return &Error{
		Msg:   fmt.Sprintf("mail for %s loops back to myself (via %s)", dest, host),
		Reply: Reply{Enhanced: enhLoop, Text: "mail loops back to myself", RemoteHost: host},
	}
}

// sessionError describes a server that refused the session or broke it.
func sessionError(t target, ip netip.Addr, stage string, err error) *Error {
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		r := replyFromSMTPError(se)
		r.RemoteHost, r.RemoteIP = t.host, ip.String()
		return &Error{
			Temporary: Classify(se.Code, nil) != StatusFailed,
			Reply:     r,
			Msg:       fmt.Sprintf("%s[%s] refused %s", t.host, ip, stage),
		}
	}
	return &Error{
		Temporary: true,
		Reply:     Reply{Enhanced: enhConnLost, Text: "lost connection during " + stage, RemoteHost: t.host, RemoteIP: ip.String()},
		Msg:       fmt.Sprintf("lost connection with %s[%s] during %s", t.host, ip, stage),
		Err:       err,
	}
}
