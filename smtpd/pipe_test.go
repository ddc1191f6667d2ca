package smtpd

import (
	"bufio"
	"net"
	"strings"
	"sync"
	"testing"
)

// pipeListener hands out the server ends of net.Pipe connections. A read
// from a pipe never spans two writes, so tests over it control exactly
// what go-smtp sees in one read.
type pipeListener struct {
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

type pipeAddr struct{}

func (pipeAddr) Network() string { return "pipe" }
func (pipeAddr) String() string  { return "pipe" }

func newPipeListener() *pipeListener {
	return &pipeListener{conns: make(chan net.Conn), done: make(chan struct{})}
}

func (l *pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *pipeListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *pipeListener) Addr() net.Addr { return pipeAddr{} }

// dial returns the client end of a new connection, once the server took it.
func (l *pipeListener) dial() (net.Conn, bool) {
	server, client := net.Pipe()
	select {
	case l.conns <- server:
		return client, true
	case <-l.done:
		return nil, false
	}
}

// TestBDATLongLineOverPipe shows our own BDAT line check: with the chunk in
// a read of its own, go-smtp's command line limit does not see it, and our
// strict reader answers 500 5.6.0 with the dialog in sync.
func TestBDATLongLineOverPipe(t *testing.T) {
	enq := &fakeEnqueuer{}
	o := testOptions(t, enq, nil)
	o.TrustedNetworks = nil // a pipe has no IP: untrusted, so use a local address
	o.Intake = &fakeIntake{}
	srv, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	pl := newPipeListener()
	served := make(chan error, 1)
	go func() { served <- srv.Serve(pl) }()
	defer func() {
		if err := srv.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		if err := waitChan(t, served, "Serve to return"); err != nil {
			t.Errorf("Serve: %v", err)
		}
	}()
	conn, ok := pl.dial()
	if !ok {
		t.Fatal("listener closed")
	}
	defer conn.Close()
	c := &client{t: t, conn: conn, r: bufio.NewReader(conn)}
	c.hello()
	c.send("MAIL FROM:<>\r\n")
	c.expect("250")
	c.send("RCPT TO:<bounces+1@mx.test>\r\n")
	c.expect("250")
	chunk := hdr + strings.Repeat("a", 1500) + "\r\n"
	c.send("BDAT 1519 LAST\r\n")
	c.send(chunk)
	c.expect("500 5.6.0")
	c.send("NOOP\r\n")
	c.expect("250 2.0.0")
	c.send("RCPT TO:<x@example.com>\r\n")
	c.expect("502 5.5.1") // the transaction was reset; MAIL comes first
}
