package smtpd

import (
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"
)

// go-smtp starts a session only at HELO/EHLO, so a connection cap has to
// sit in front of it, in the listener: over the cap we answer 421 and close
// without go-smtp ever seeing the connection (RFC 5321 3.8, 4.2.3 allow a
// 421 in place of the greeting).

type limiterConfig struct {
	max          int
	hostname     string
	writeTimeout time.Duration
	log          *slog.Logger
}

// connLimiter caps and tracks the connections of every listener of a Server.
type connLimiter struct {
	cfg limiterConfig

	mu       sync.Mutex
	live     map[*trackedConn]struct{}
	draining bool
	seq      uint64
}

func newConnLimiter(cfg limiterConfig) *connLimiter {
	return &connLimiter{cfg: cfg, live: make(map[*trackedConn]struct{})}
}

// admit takes a slot for c, or returns the reply line to refuse it with.
func (l *connLimiter) admit(c net.Conn) (*trackedConn, string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.draining {
		return nil, "421 4.3.2 " + l.cfg.hostname + " Service shutting down, try again later\r\n"
	}
	if len(l.live) >= l.cfg.max {
		return nil, "421 4.7.0 " + l.cfg.hostname + " Too many connections, try again later\r\n"
	}
	l.seq++
	id := strconv.FormatUint(l.seq, 10)
	tc := &trackedConn{
		Conn: c,
		lim:  l,
		id:   id,
		log:  l.cfg.log.With("conn_id", id, "remote_ip", ipString(remoteIP(c.RemoteAddr()))),
	}
	l.live[tc] = struct{}{}
	return tc, ""
}

// refuse answers a connection that gets no slot and closes it.
func (l *connLimiter) refuse(c net.Conn, line string) {
	l.cfg.log.Info("connection refused", "remote_ip", ipString(remoteIP(c.RemoteAddr())),
		"reason", line[:len(line)-2])
	// A fresh socket's send buffer is empty, so this write does not block;
	// the deadline only guards against the impossible.
	_ = c.SetWriteDeadline(time.Now().Add(l.cfg.writeTimeout))
	_, _ = io.WriteString(c, line) // best effort: the client may be gone
	_ = c.Close()
}

func (l *connLimiter) release(c *trackedConn) {
	l.mu.Lock()
	delete(l.live, c)
	l.mu.Unlock()
}

func (l *connLimiter) snapshot() []*trackedConn {
	l.mu.Lock()
	defer l.mu.Unlock()
	conns := make([]*trackedConn, 0, len(l.live))
	for c := range l.live {
		conns = append(conns, c)
	}
	return conns
}

// drain refuses new connections, closes those without a transaction in
// flight and marks the others to close once it ends.
func (l *connLimiter) drain() {
	l.mu.Lock()
	l.draining = true
	l.mu.Unlock()
	for _, c := range l.snapshot() {
		if c.markDraining() {
			_ = c.Close() // idle: nothing accepted can be lost
		}
	}
}

func (l *connLimiter) closeAll() {
	for _, c := range l.snapshot() {
		_ = c.Close() // shutting down: the peer sees the close
	}
}

// limitListener applies a connLimiter to a listener.
type limitListener struct {
	net.Listener
	lim       *connLimiter
	closeOnce sync.Once
	closeErr  error
}

// Accept returns the next connection that got a slot; refused ones are
// answered and closed here.
func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		tc, refusal := l.lim.admit(c)
		if tc != nil {
			tc.log.Debug("connection accepted")
			return tc, nil
		}
		l.lim.refuse(c, refusal)
	}
}

// Close closes the listener once; go-smtp and Server.Close both call it.
func (l *limitListener) Close() error {
	l.closeOnce.Do(func() { l.closeErr = l.Listener.Close() })
	return l.closeErr
}

// trackedConn is a connection holding a slot. Besides releasing the slot
// exactly once, it makes a read timeout final: go-smtp renews the read
// deadline before each command, and after a timeout in the middle of a
// body it would otherwise read the rest of that body as commands. So once a
// read times out, every later read fails the same way and the connection
// closes right after the next reply (the 421) is written (RFC 5321 4.5.3.2
// lets the server close on timeout).
type trackedConn struct {
	net.Conn
	lim *connLimiter
	id  string
	log *slog.Logger

	closeOnce sync.Once
	closeErr  error

	mu              sync.Mutex
	readErr         error // sticky timeout
	closeAfterWrite bool
	busy            bool // a transaction with recipients is open
	draining        bool
}

func (c *trackedConn) Read(p []byte) (int, error) {
	c.mu.Lock()
	err := c.readErr
	c.mu.Unlock()
	if err != nil {
		return 0, err
	}
	n, err := c.Conn.Read(p)
	if err != nil && isTimeout(err) {
		c.mu.Lock()
		c.readErr = err
		c.closeAfterWrite = true
		c.mu.Unlock()
	}
	return n, err
}

func (c *trackedConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.mu.Lock()
	closeNow := c.closeAfterWrite
	c.mu.Unlock()
	if closeNow {
		_ = c.Close() // the reply is out; nothing more to say
	}
	return n, err
}

// Close releases the slot before closing the socket, so that a client that
// saw the close can count on the slot being free.
func (c *trackedConn) Close() error {
	c.closeOnce.Do(func() {
		c.lim.release(c)
		c.closeErr = c.Conn.Close()
		c.log.Debug("connection closed")
	})
	return c.closeErr
}

// closeAfterNextWrite makes the next reply the last one, for errors after
// which go-smtp cannot find the next command (a too-long line in DATA).
func (c *trackedConn) closeAfterNextWrite() {
	c.mu.Lock()
	c.closeAfterWrite = true
	c.mu.Unlock()
}

// markDraining marks c for shutdown and reports whether it is idle and can
// be closed now.
func (c *trackedConn) markDraining() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.draining = true
	return !c.busy
}

// beginTransaction marks c busy from the first accepted recipient until
// the transaction ends: Shutdown lets such a connection finish (go-smtp
// sends 354 before Data is called, so Data would be too late to mark it).
// It fails if c is draining and not yet busy, so that Shutdown never cuts
// a connection between a commit and its 250.
func (c *trackedConn) beginTransaction() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.draining && !c.busy {
		c.closeAfterWrite = true
		return false
	}
	c.busy = true
	return true
}

// endTransaction clears busy. After a body go-smtp resets the session once
// the reply is written, so a draining connection can close now.
func (c *trackedConn) endTransaction() {
	c.mu.Lock()
	c.busy = false
	closeNow := c.draining
	c.mu.Unlock()
	if closeNow {
		_ = c.Close()
	}
}

// baseConn finds the trackedConn under nc, which is the tracked connection
// itself or a TLS connection over it after STARTTLS.
func baseConn(nc net.Conn) (*trackedConn, bool) {
	for range 4 { // bounded unwrapping
		switch c := nc.(type) {
		case *trackedConn:
			return c, true
		case *tls.Conn:
			nc = c.NetConn()
		default:
			return nil, false
		}
	}
	return nil, false
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
