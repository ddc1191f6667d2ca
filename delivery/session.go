package delivery

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-smtp"
)

// maxReplyLines and maxReplyLine bound the STARTTLS reply we read by hand.
const (
	maxReplyLines = 50
	maxReplyLine  = 1000 // RFC 5321 section 4.5.3.1.5 allows 512; be lenient
)

// resumeGreeting stands in for the server greeting when a go-smtp client is
// created on a connection that just switched to TLS. The client always
// reads a greeting first, while after STARTTLS the server sends none and
// waits for our EHLO (RFC 3207 section 4.2).
const resumeGreeting = "220 sluice resumed after STARTTLS\r\n"

// connect runs one session attempt; under opportunistic TLS a failed
// STARTTLS is retried in plaintext on a new connection (a session whose
// TLS failed may be in any state).
func (c *Client) connect(ctx context.Context, d Destination, t target, ip netip.Addr) (*Conn, *Error) {
	cn, e := c.session(ctx, d, t, ip, true)
	if e == nil || !e.tlsFailed || tlsMandatory(d) {
		return cn, e
	}
	c.log.Warn("STARTTLS failed, retrying without TLS on a new connection",
		"relay", t.host, "remote_ip", ip.String(), "err", e)
	return c.session(ctx, d, t, ip, false)
}

// tlsMandatory: TLSVerify implies TLSRequired, since a verified channel
// that silently falls back to plaintext would verify nothing.
func tlsMandatory(d Destination) bool {
	return d.TLS == TLSRequired || d.TLSVerify
}

// session dials ip and runs the greeting, EHLO and STARTTLS. The context
// closes the connection if it ends before the session is ready.
func (c *Client) session(ctx context.Context, d Destination, t target, ip netip.Addr, tryTLS bool) (*Conn, *Error) {
	addr := net.JoinHostPort(ip.String(), fmt.Sprint(t.port))
	dctx, cancel := context.WithTimeout(ctx, c.o.ConnectTimeout)
	raw, err := c.o.Dial(dctx, "tcp", addr)
	cancel()
	if err != nil {
		return nil, &Error{
			Temporary: true, dialFailed: true, Err: err,
			Msg:   fmt.Sprintf("connect to %s[%s]:%d failed", t.host, ip, t.port),
			Reply: Reply{Enhanced: enhConnect, Text: "connect failed: " + err.Error(), RemoteHost: t.host, RemoteIP: ip.String()},
		}
	}
	stop := context.AfterFunc(ctx, func() { raw.Close() })
	cn, e := c.handshake(ctx, d, t, ip, raw, tryTLS)
	if !stop() && e == nil {
		e = sessionError(t, ip, "session setup", context.Cause(ctx))
	}
	if e != nil {
		raw.Close()
		return nil, e
	}
	return cn, nil
}

// handshake reads the greeting, says EHLO (go-smtp falls back to HELO on
// 500/502, RFC 5321 section 4.1.4) and applies the TLS policy.
func (c *Client) handshake(ctx context.Context, d Destination, t target, ip netip.Addr, raw net.Conn, tryTLS bool) (*Conn, *Error) {
	tc := &trackConn{Conn: raw}
	sc := c.newSMTP(tc)
	if err := sc.Hello(c.o.Helo); err != nil {
		return nil, sessionError(t, ip, "greeting or EHLO", err)
	}
	cn := &Conn{client: c, sc: sc, nc: tc, raw: raw, host: t.host, ip: ip.String(), usable: true}
	offered, _ := sc.Extension("STARTTLS")
	switch {
	case offered && tryTLS:
		return c.startTLS(ctx, d, t, ip, cn)
	case !offered && tlsMandatory(d):
		_ = sc.Quit()
		return nil, &Error{
			Temporary: true,
			Msg:       fmt.Sprintf("TLS required but %s does not offer STARTTLS", t.host),
			Reply:     Reply{Enhanced: enhTLSMissing, Text: "TLS required but STARTTLS not offered", RemoteHost: t.host, RemoteIP: ip.String()},
		}
	}
	return cn, nil
}

func (c *Client) newSMTP(nc net.Conn) *smtp.Client {
	sc := smtp.NewClient(nc)
	sc.CommandTimeout = c.o.CommandTimeout
	sc.SubmissionTimeout = c.o.DataTimeout
	return sc
}

// startTLS sends STARTTLS on the raw connection, runs the handshake and
// starts a fresh go-smtp client on the TLS stream, which then says EHLO
// again: everything learned before TLS is discarded (RFC 3207 section
// 4.2). The reply is read byte by byte, so that anything a
// man-in-the-middle injected after it is never taken as a TLS reply
// (the CVE-2011-0411 class of bugs).
func (c *Client) startTLS(ctx context.Context, d Destination, t target, ip netip.Addr, cn *Conn) (*Conn, *Error) {
	fail := func(why string, r Reply, err error) (*Conn, *Error) {
		r.RemoteHost, r.RemoteIP = t.host, ip.String()
		if r.Enhanced == "" {
			r.Enhanced = enhTLSFailed
		}
		return nil, &Error{Temporary: true, tlsFailed: true, Reply: r, Err: err,
			Msg: fmt.Sprintf("STARTTLS with %s[%s] failed: %s", t.host, ip, why)}
	}
	_ = cn.raw.SetDeadline(time.Now().Add(c.o.CommandTimeout))
	r, err := rawCommand(cn.raw, "STARTTLS")
	if err != nil {
		return fail("lost connection", Reply{Text: "lost connection during STARTTLS"}, err)
	}
	if r.Code != 220 {
		return fail("refused", r, nil)
	}
	tlsConn := tls.Client(cn.raw, c.tlsConfig(d, t.host))
	if err := tlsConn.HandshakeContext(ctx); err != nil {
		// The reason (an unverifiable certificate, no common protocol)
		// is what the administrator needs to see in the log and the report.
		return fail("TLS handshake", Reply{Text: "TLS handshake failed: " + oneLine(err.Error())}, err)
	}
	_ = cn.raw.SetDeadline(time.Time{})
	tc := &trackConn{Conn: &greetedConn{Conn: tlsConn, pending: []byte(resumeGreeting)}}
	sc := c.newSMTP(tc)
	if err := sc.Hello(c.o.Helo); err != nil {
		return nil, sessionError(t, ip, "EHLO after STARTTLS", err)
	}
	state := tlsConn.ConnectionState()
	cn.sc, cn.nc, cn.tlsVersion = sc, tc, tls.VersionName(state.Version)
	return cn, nil
}

// tlsConfig verifies against the host name when asked (an IP for "[ip]"
// relays). Otherwise it accepts any certificate: opportunistic TLS only
// protects against passive attackers (RFC 7435 section 1.3), and refusing
// unverifiable certificates would mean sending in plaintext instead.
func (c *Client) tlsConfig(d Destination, host string) *tls.Config {
	name := strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if v6, ok := cutPrefixFold(name, "IPv6:"); ok {
		name = v6
	}
	cfg := &tls.Config{ServerName: name}
	if d.TLSVerify {
		cfg.RootCAs = c.o.TLSRootCAs
		cfg.MinVersion = tls.VersionTLS12
		return cfg
	}
	cfg.InsecureSkipVerify = true
	if d.TLS == TLSOpportunistic {
		// Old TLS is still better than the plaintext we would fall back to.
		cfg.MinVersion = tls.VersionTLS10
	}
	return cfg
}

// rawCommand writes cmd and reads one (possibly multi-line) reply without
// buffering beyond it.
func rawCommand(conn net.Conn, cmd string) (Reply, error) {
	if _, err := conn.Write([]byte(cmd + "\r\n")); err != nil {
		return Reply{}, err
	}
	var text []string
	for range maxReplyLines {
		line, err := readLine(conn)
		if err != nil {
			return Reply{}, err
		}
		if len(line) < 3 {
			return Reply{}, fmt.Errorf("malformed reply %q", line)
		}
		code, rest := line[:3], line[3:]
		n, err := strconv.Atoi(code)
		if err != nil || n < 100 || n > 599 {
			return Reply{}, fmt.Errorf("malformed reply %q", line)
		}
		text = append(text, strings.TrimPrefix(strings.TrimPrefix(rest, "-"), " "))
		if !strings.HasPrefix(rest, "-") {
			return replyFromText(n, strings.Join(text, "\n")), nil
		}
	}
	return Reply{}, fmt.Errorf("reply longer than %d lines", maxReplyLines)
}

// readLine reads one line a byte at a time, without its CRLF.
func readLine(conn net.Conn) (string, error) {
	var b []byte
	one := make([]byte, 1)
	for len(b) < maxReplyLine {
		if _, err := conn.Read(one); err != nil {
			return "", err
		}
		if one[0] == '\n' {
			return strings.TrimSuffix(string(b), "\r"), nil
		}
		b = append(b, one[0])
	}
	return "", errors.New("reply line too long")
}

// greetedConn replays a synthetic greeting before the real stream.
type greetedConn struct {
	net.Conn
	pending []byte
}

func (g *greetedConn) Read(p []byte) (int, error) {
	if len(g.pending) > 0 {
		n := copy(p, g.pending)
		g.pending = g.pending[n:]
		return n, nil
	}
	return g.Conn.Read(p)
}

// trackConn remembers whether a write failed, to tell a message that never
// fully left from one whose final reply was lost (RFC 1047).
type trackConn struct {
	net.Conn
	writeFailed bool
}

func (t *trackConn) Write(p []byte) (int, error) {
	n, err := t.Conn.Write(p)
	if err != nil {
		t.writeFailed = true
	}
	return n, err
}
