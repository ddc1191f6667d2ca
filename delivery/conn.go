package delivery

import (
	"context"
	"errors"
	"net"
	"net/textproto"

	"github.com/emersion/go-smtp"
)

// ErrUnusable is the error of results from a Conn that can no longer carry
// transactions (closed, or broken by an earlier failure).
var ErrUnusable = errors.New("connection is not usable")

// Conn is an open SMTP session with one MX host, ready for transactions.
// It is not safe for concurrent use.
type Conn struct {
	client *Client
	sc     *smtp.Client
	nc     *trackConn // what sc reads and writes (TLS or plain)
	raw    net.Conn   // the TCP connection, closed to abort

	host, ip   string
	tlsVersion string

	tp *textproto.Conn // pipelined transactions; nil until the first

	usable bool // false after a connection-level failure or Close
	dirty  bool // a transaction was left open: RSET before the next
	closed bool
}

// Usable reports whether the connection can carry another transaction.
// It is false after a connection-level failure (network error, timeout,
// 421) and after Close; then the caller should Close it.
func (cn *Conn) Usable() bool { return cn.usable }

// RemoteHost returns the MX (or relay) host name.
func (cn *Conn) RemoteHost() string { return cn.host }

// RemoteIP returns the address connected to.
func (cn *Conn) RemoteIP() string { return cn.ip }

// TLSVersion returns the TLS version in use ("TLS 1.3"), or "" if plain.
func (cn *Conn) TLSVersion() string { return cn.tlsVersion }

// Close says QUIT, waiting at most CommandTimeout for the reply, and closes
// the connection. It is safe to call twice.
func (cn *Conn) Close() error {
	if cn.closed {
		return nil
	}
	cn.closed = true
	if cn.usable {
		_ = cn.sc.Quit()
	}
	cn.usable = false
	err := cn.raw.Close()
	if errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

// abort closes the connection from another goroutine when a context ends;
// the blocked call then fails and marks the connection unusable.
func (cn *Conn) abort() { cn.raw.Close() }

// reply stamps r with where it came from.
func (cn *Conn) reply(r Reply) Reply {
	r.RemoteHost, r.RemoteIP = cn.host, cn.ip
	return r
}

// rset ends a transaction left open, so the next can start (RFC 5321
// section 4.1.1.5). go-smtp re-sends EHLO before the next command.
func (cn *Conn) rset() error {
	if err := cn.sc.Reset(); err != nil {
		cn.usable = false
		return err
	}
	cn.dirty = false
	return nil
}

// withCause adds the context's cause to an error caused by aborting.
func withCause(ctx context.Context, err error) error {
	if ctx.Err() == nil {
		return err
	}
	return errors.Join(context.Cause(ctx), err)
}
