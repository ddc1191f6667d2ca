package smtpd

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"math/big"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestNewRejectsBadOptions(t *testing.T) {
	cases := []struct {
		name   string
		mod    func(*Options)
		option string
	}{
		{"zero MaxMessageBytes", func(o *Options) { o.MaxMessageBytes = 0 }, "MaxMessageBytes"},
		{"zero MaxRecipients", func(o *Options) { o.MaxRecipients = 0 }, "MaxRecipients"},
		{"zero MaxLineLength", func(o *Options) { o.MaxLineLength = 0 }, "MaxLineLength"},
		{"MaxLineLength below RFC minimum", func(o *Options) { o.MaxLineLength = 512 }, "MaxLineLength"},
		{"zero MaxConnections", func(o *Options) { o.MaxConnections = 0 }, "MaxConnections"},
		{"zero ReadTimeout", func(o *Options) { o.ReadTimeout = 0 }, "ReadTimeout"},
		{"zero WriteTimeout", func(o *Options) { o.WriteTimeout = 0 }, "WriteTimeout"},
		{"empty Hostname", func(o *Options) { o.Hostname = "" }, "Hostname"},
		{"Hostname with space", func(o *Options) { o.Hostname = "mx test" }, "Hostname"},
		{"Listen without port", func(o *Options) { o.Listen = []string{"127.0.0.1"} }, "Listen"},
		{"empty PriorityHeader", func(o *Options) { o.PriorityHeader = "" }, "PriorityHeader"},
		{"PriorityHeader with colon", func(o *Options) { o.PriorityHeader = "X-P:" }, "PriorityHeader"},
		{"MaxPriorityMilli below 1000", func(o *Options) { o.MaxPriorityMilli = 999 }, "MaxPriorityMilli"},
		{"no Logger", func(o *Options) { o.Logger = nil }, "Logger"},
		{"no Enqueuer", func(o *Options) { o.Enqueuer = nil }, "Enqueuer"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o := testOptions(t, &fakeEnqueuer{}, nil)
			tc.mod(&o)
			_, err := New(o)
			var oe *OptionError
			if !errors.As(err, &oe) {
				t.Fatalf("New: got error %v, want *OptionError", err)
			}
			if oe.Option != tc.option {
				t.Errorf("OptionError.Option: got %q, want %q", oe.Option, tc.option)
			}
		})
	}
}

func TestStartErrorNamesAddress(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	o := testOptions(t, &fakeEnqueuer{}, nil)
	o.Listen = []string{"127.0.0.1:0", busy.Addr().String()}
	srv, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	err = srv.Start()
	if err == nil || !strings.Contains(err.Error(), busy.Addr().String()) {
		t.Fatalf("Start: got %v, want an error naming %s", err, busy.Addr())
	}
	if got := len(srv.Addrs()); got != 0 {
		t.Errorf("Addrs after failed Start: got %d listeners, want 0", got)
	}
}

func TestCloseTwice(t *testing.T) {
	ts := newTestServer(t, nil)
	if err := ts.srv.Close(); err != nil {
		t.Fatalf("first Close: %v", err)
	}
	if err := ts.srv.Close(); err != nil {
		t.Fatalf("second Close: got %v, want nil", err)
	}
	if err := ts.srv.Start(); !errors.Is(err, ErrClosed) {
		t.Fatalf("Start after Close: got %v, want ErrClosed", err)
	}
}

func TestConnectionCap(t *testing.T) {
	const max, total = 5, 50
	ts := newTestServer(t, func(o *Options) { o.MaxConnections = max })

	type result struct {
		conn  net.Conn
		r     *bufio.Reader
		first string
		err   error
	}
	results := make(chan result, total)
	var wg sync.WaitGroup
	for range total {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.DialTimeout("tcp", ts.addr, testReplyTimeout)
			if err != nil {
				results <- result{err: err}
				return
			}
			_ = c.SetReadDeadline(time.Now().Add(testReplyTimeout))
			r := bufio.NewReader(c)
			line, err := r.ReadString('\n')
			results <- result{conn: c, r: r, first: line, err: err}
		}()
	}
	wg.Wait()
	close(results)

	var open []result
	refused := 0
	for res := range results {
		switch {
		case res.err != nil:
			t.Errorf("connection: %v", res.err)
		case strings.HasPrefix(res.first, "220 "):
			open = append(open, res)
		case strings.HasPrefix(res.first, "421 4.7.0 mx.test Too many connections"):
			refused++
			if _, err := res.r.ReadString('\n'); err == nil {
				t.Errorf("refused connection not closed")
			}
			res.conn.Close()
		default:
			t.Errorf("first line: got %q, want 220 or 421 4.7.0", res.first)
		}
	}
	if len(open) != max || refused != total-max {
		t.Fatalf("got %d greeted and %d refused, want %d and %d", len(open), refused, max, total-max)
	}
	for _, o := range open {
		c := &client{t: t, conn: o.conn, r: o.r}
		c.send("QUIT\r\n")
		c.expect("221 ")
		c.expectClosed()
		o.conn.Close()
	}
	// Slots are released before the server closes the socket, so once the
	// clients saw the close, the slots are free.
	for range max {
		c := dial(t, ts.addr)
		c.expect("220 ")
	}
	c := dial(t, ts.addr)
	c.expect("421 4.7.0")
}

func TestIdleTimeout(t *testing.T) {
	ts := newTestServer(t, func(o *Options) { o.ReadTimeout = 300 * time.Millisecond })
	c := dial(t, ts.addr)
	c.hello()
	c.expect("421 4.4.2")
	c.expectClosed()
}

func TestSlowDataTimeout(t *testing.T) {
	ts := newTestServer(t, func(o *Options) { o.ReadTimeout = 500 * time.Millisecond })
	c := dial(t, ts.addr)
	c.hello()
	c.send(mailOK)
	c.expect("250")
	c.send(rcptOK)
	c.expect("250")
	c.send("DATA\r\n")
	c.expect("354")

	// Trickle one byte per 100ms: each read succeeds, but go-smtp's read
	// deadline is not renewed during DATA, so the whole body must arrive
	// within ReadTimeout.
	stop := make(chan struct{})
	trickled := make(chan struct{})
	go func() {
		defer close(trickled)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for range 100 {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			if _, err := c.conn.Write([]byte("x")); err != nil {
				return
			}
		}
	}()
	c.expect("421 4.4.2")
	c.expectClosed()
	close(stop)
	waitChan(t, trickled, "trickling writer")
	if n := len(ts.enq.all()); n != 0 {
		t.Errorf("enqueued: got %d, want 0", n)
	}
}

// bufConn reads through r (which may hold bytes already read from Conn).
type bufConn struct {
	net.Conn
	r *bufio.Reader
}

func (b bufConn) Read(p []byte) (int, error) { return b.r.Read(p) }

func testTLS(t testing.TB) (server *tls.Config, roots *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "mx.test"},
		DNSNames:     []string{"mx.test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	roots = x509.NewCertPool()
	roots.AddCert(cert)
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}, roots
}

// TestStartTLSDiscardsPipelinedPlaintext is CVE-2011-0411: commands sent in
// plaintext together with STARTTLS must not be executed, neither before
// nor after the handshake.
func TestStartTLSDiscardsPipelinedPlaintext(t *testing.T) {
	serverTLS, roots := testTLS(t)
	ts := newTestServer(t, func(o *Options) { o.TLSConfig = serverTLS })
	c := dial(t, ts.addr)
	c.expect("220 ")
	c.send("EHLO client.test\r\n")
	if lines := c.replyLines(); !contains(lines, "250-STARTTLS") {
		t.Fatalf("EHLO reply %q does not offer STARTTLS", lines)
	}
	c.send("STARTTLS\r\nNOOP\r\n")
	c.expect("220 2.0.0")

	tc := tls.Client(bufConn{Conn: c.conn, r: c.r}, &tls.Config{RootCAs: roots, ServerName: "mx.test"})
	_ = tc.SetDeadline(time.Now().Add(testReplyTimeout))
	if err := tc.Handshake(); err != nil {
		t.Fatalf("handshake (a plaintext reply would break it): %v", err)
	}
	sc := &client{t: t, conn: tc, r: bufio.NewReader(tc)}
	sc.send("EHLO client.test\r\n")
	if lines := sc.replyLines(); len(lines) == 0 || !strings.HasPrefix(lines[0], "250-") {
		t.Fatalf("first reply after handshake: got %q, want the EHLO reply (NOOP must be discarded)", lines)
	}
	sc.send("NOOP\r\n")
	sc.expect("250 2.0.0")
	sc.send(mailOK + rcptOK + "DATA\r\n")
	sc.expect("250")
	sc.expect("250")
	sc.expect("354")
	sc.send(hdr + "secret\r\n.\r\n")
	sc.expect("250 2.0.0")
	msgs := ts.enq.all()
	if len(msgs) != 1 || !strings.Contains(string(msgs[0].body), "with ESMTPS id") {
		t.Fatalf("want one message received with ESMTPS, got %d", len(msgs))
	}
}

func (c *client) replyLines() []string {
	c.t.Helper()
	_ = c.conn.SetReadDeadline(time.Now().Add(testReplyTimeout))
	var lines []string
	for range 100 {
		line, err := c.r.ReadString('\n')
		if err != nil {
			c.t.Fatalf("reading reply: got %q, error %v", lines, err)
		}
		line = strings.TrimRight(line, "\r\n")
		lines = append(lines, line)
		if len(line) < 4 || line[3] != '-' {
			break
		}
	}
	return lines
}

func contains(lines []string, prefix string) bool {
	for _, l := range lines {
		if strings.HasPrefix(l, prefix) {
			return true
		}
	}
	return false
}

func TestShutdownLetsDataFinish(t *testing.T) {
	ts := newTestServer(t, nil)
	idle := dial(t, ts.addr)
	idle.hello()
	mailOnly := dial(t, ts.addr) // no recipient yet: nothing in flight
	mailOnly.hello()
	mailOnly.send(mailOK)
	mailOnly.expect("250")
	busy := dial(t, ts.addr)
	busy.hello()
	busy.send(mailOK + rcptOK + "DATA\r\n")
	busy.expect("250")
	busy.expect("250")
	busy.expect("354")
	busy.send(hdr + "first half\r\n")

	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), testReplyTimeout)
		defer cancel()
		done <- ts.srv.Shutdown(ctx)
	}()
	idle.expectClosed() // proves the drain has begun
	mailOnly.expectClosed()
	busy.send("second half\r\n.\r\n")
	busy.expect("250 2.0.0 Ok: queued as")
	busy.expectClosed()
	if err := waitChan(t, done, "Shutdown"); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if n := len(ts.enq.all()); n != 1 {
		t.Errorf("enqueued: got %d, want 1", n)
	}
}

func TestShutdownDeadline(t *testing.T) {
	ts := newTestServer(t, nil)
	busy := dial(t, ts.addr)
	busy.hello()
	busy.send(mailOK + rcptOK + "DATA\r\n")
	busy.expect("250")
	busy.expect("250")
	busy.expect("354")

	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	err := ts.srv.Shutdown(ctx)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown: got %v, want context.DeadlineExceeded", err)
	}
	_ = busy.conn.SetReadDeadline(time.Now().Add(testReplyTimeout))
	if _, err := io.ReadAll(busy.r); err != nil && isTimeout(err) {
		t.Fatalf("connection still open after Shutdown deadline: %v", err)
	}
	if n := len(ts.enq.all()); n != 0 {
		t.Errorf("enqueued: got %d, want 0", n)
	}
}
