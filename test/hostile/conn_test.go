package hostile

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluice-mta/sluice/internal/testmx"
	"github.com/sluice-mta/sluice/test/harness"
)

// writeCert writes a self-signed certificate for relay.test and its key
// as PEM files and returns the [smtp] lines naming them, and a pool
// trusting the certificate.
func writeCert(t *testing.T) (string, *x509.CertPool) {
	t.Helper()
	cert := testmx.SelfSignedCert(t, "relay.test")
	key, err := x509.MarshalPKCS8PrivateKey(cert.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: key}), 0o600); err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert.Leaf)
	return fmt.Sprintf("tls_cert_file = %q\ntls_key_file = %q\n", certFile, keyFile), pool
}

// bufConn reads through r, which may already hold bytes read from Conn.
type bufConn struct {
	net.Conn
	r *bufio.Reader
}

func (b bufConn) Read(p []byte) (int, error) { return b.r.Read(p) }

// TestHostileStartTLSPipelining is CVE-2011-0411: commands pipelined in
// plaintext behind STARTTLS must be discarded, not run after the
// handshake. The client sends STARTTLS and a MAIL in one write; after the
// handshake the first reply must be to the client's EHLO, and the
// transaction must start from scratch (RCPT before MAIL is refused).
func TestHostileStartTLSPipelining(t *testing.T) {
	tlsLines, pool := writeCert(t)
	d := startHostile(t, smtpConf(30000, 10*time.Second)+tlsLines)
	c := harness.Dial(t, d.Addr(), "")
	if lines := c.Hello(); !strings.Contains(strings.Join(lines, "\n"), "STARTTLS") {
		t.Fatalf("EHLO reply %q does not offer STARTTLS", lines)
	}
	c.Send("STARTTLS\r\n" + mail("injected@evil.test"))
	c.Expect("220 2.0.0")
	tc := tls.Client(bufConn{Conn: c.C, r: c.R}, &tls.Config{RootCAs: pool, ServerName: "relay.test"})
	_ = tc.SetDeadline(time.Now().Add(10 * time.Second))
	if err := tc.Handshake(); err != nil {
		t.Fatalf("handshake (a plaintext reply in the stream would break it): %v", err)
	}
	sc := harness.Wrap(t, tc)
	sc.Send("EHLO client.test\r\n")
	lines, err := sc.Reply(10 * time.Second)
	if err != nil || !strings.HasPrefix(lines[0], "250-") {
		t.Fatalf("first reply after the handshake: got %q (err %v), want the EHLO reply", lines, err)
	}
	sc.Send(rcpt)
	sc.Expect("502 5.5.1") // no MAIL: the injected one was discarded
	sc.Send(mail("tls@origin.test") + rcpt + "DATA\r\n")
	sc.Expect("250")
	sc.Expect("250")
	sc.Expect("354")
	sc.Send(hdr + "over TLS\r\n.\r\n")
	sc.Expect("250 2.0.0")
	msgs, err := d.QueueList()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range msgs {
		if m.Sender == "injected@evil.test" {
			t.Errorf("the plaintext MAIL was executed: %+v", m)
		}
	}
}

// readTimeout is the timeouts daemon's read_timeout.
const readTimeout = 3 * time.Second

// TestHostileTimeouts: with read_timeout = 3s an idle client and a client
// that sends its message one byte per second are both cut off with 421
// 4.4.2 and the connection closes; nothing is queued from the trickle.
// Each trickled byte is a successful read, so only a bound on the whole
// DATA phase (which read_timeout is) can stop it.
func TestHostileTimeouts(t *testing.T) {
	d := startHostile(t, smtpConf(30000, readTimeout))
	t.Run("idle client gets 421 4.4.2, closed", func(t *testing.T) {
		c := harness.Dial(t, d.Addr(), "")
		c.Hello()
		start := time.Now()
		lines, err := c.Reply(10 * time.Second)
		if err != nil || !strings.HasPrefix(lines[len(lines)-1], "421 4.4.2") {
			t.Fatalf("idle: got %q (err %v), want 421 4.4.2", lines, err)
		}
		c.ExpectClosed(5 * time.Second)
		if el := time.Since(start); el > readTimeout+3*time.Second {
			t.Errorf("cut off after %v, want about the %v read_timeout", el, readTimeout)
		}
	})
	t.Run("one byte per second in DATA gets 421 4.4.2, closed, nothing queued", func(t *testing.T) {
		c := harness.Dial(t, d.Addr(), "")
		c.Hello()
		c.Send(mail("trickle@origin.test"))
		c.Expect("250")
		c.Send(rcpt)
		c.Expect("250")
		c.Send("DATA\r\n")
		c.Expect("354")
		stop := make(chan struct{})
		done := make(chan struct{})
		sent := 0
		start := time.Now()
		go func() {
			defer close(done)
			tick := time.NewTicker(time.Second)
			defer tick.Stop()
			for range 30 {
				select {
				case <-stop:
					return
				case <-tick.C:
				}
				if _, err := c.C.Write([]byte("x")); err != nil {
					return
				}
				sent++
			}
		}()
		lines, err := c.Reply(15 * time.Second)
		elapsed := time.Since(start)
		close(stop)
		<-done
		if err != nil || !strings.HasPrefix(lines[len(lines)-1], "421 4.4.2") {
			t.Fatalf("trickle: got %q (err %v), want 421 4.4.2", lines, err)
		}
		c.ExpectClosed(5 * time.Second)
		if sent < 2 || elapsed > readTimeout+3*time.Second {
			t.Errorf("cut off after %v and %d bytes, want about %v while bytes keep coming", elapsed, sent, readTimeout)
		}
		checkQueued(t, d, dialog{sender: "trickle@origin.test"})
	})
}

// stormConns is how many connections the storm opens at once.
const (
	stormConns    = 500
	stormMax      = 100
	stormRSSBound = 64 << 20 // growth of the peak RSS allowed, in bytes
)

// TestHostileConnectionStorm opens 500 connections at once against
// max_connections = 100: exactly 100 are greeted, 400 get 421 4.7.0 and are
// closed, and the daemon's memory stays bounded. Memory is the child's
// peak resident set size (VmHWM in /proc/PID/status, which the kernel
// keeps as a high-water mark, so no spike between two samples is missed),
// read after startup and again after the storm with all 100 sessions
// still open and each holding a half-sent message.
func TestHostileConnectionStorm(t *testing.T) {
	d := startHostile(t, smtpConf(30000, time.Minute)+fmt.Sprintf("max_connections = %d\n", stormMax))
	before := vmHWM(t, d.PID())
	results := make(chan stormResult, stormConns)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for range stormConns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			results <- stormDial(d.Addr())
		}()
	}
	close(start)
	wg.Wait()
	close(results)
	var greeted []stormResult
	refused := 0
	for r := range results {
		switch {
		case r.err != nil:
			t.Errorf("connection: %v", r.err)
		case strings.HasPrefix(r.first, "220 "):
			greeted = append(greeted, r)
		case strings.HasPrefix(r.first, "421 4.7.0"):
			refused++
			if !r.closed {
				t.Errorf("a refused connection was not closed")
			}
		default:
			t.Errorf("first line: got %q, want 220 or 421 4.7.0", r.first)
		}
	}
	defer func() {
		for _, g := range greeted {
			g.conn.Close()
		}
	}()
	if len(greeted) != stormMax || refused != stormConns-stormMax {
		t.Fatalf("got %d greeted and %d refused, want %d and %d", len(greeted), refused, stormMax, stormConns-stormMax)
	}
	loadSessions(t, greeted)
	after := vmHWM(t, d.PID())
	t.Logf("peak RSS (VmHWM) of sluice: %d KiB after start, %d KiB after %d connections (growth %d KiB, bound %d KiB)",
		before>>10, after>>10, stormConns, (after-before)>>10, stormRSSBound>>10)
	if after-before > stormRSSBound {
		t.Errorf("peak RSS grew by %d KiB, more than %d KiB", (after-before)>>10, stormRSSBound>>10)
	}
	for _, g := range greeted {
		g.conn.Close()
	}
	// Slots are released before the daemon closes the socket; once the
	// daemon saw our closes, new clients are greeted again.
	if !harness.Poll(10*time.Second, func() bool { return greetedNow(d.Addr()) }) {
		t.Error("no 220 for a new connection after the storm ended")
	}
}

type stormResult struct {
	conn   net.Conn
	r      *bufio.Reader
	first  string
	closed bool
	err    error
}

func stormDial(addr string) stormResult {
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return stormResult{err: err}
	}
	_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
	r := bufio.NewReader(c)
	line, err := r.ReadString('\n')
	res := stormResult{conn: c, r: r, first: line, err: err}
	if strings.HasPrefix(line, "421") {
		_, rerr := r.ReadString('\n')
		res.closed = rerr != nil
		c.Close()
	}
	return res
}

// loadSessions makes every open session start a transaction and send
// 20 kB of a message it never finishes, so memory is measured under load.
func loadSessions(t *testing.T, conns []stormResult) {
	t.Helper()
	chunk := hdr + strings.Repeat(strings.Repeat("z", 98)+"\r\n", 200)
	for _, g := range conns {
		_ = g.conn.SetDeadline(time.Now().Add(20 * time.Second))
		if _, err := g.conn.Write([]byte("EHLO storm.test\r\n" + mail("storm@origin.test") + rcpt + "DATA\r\n" + chunk)); err != nil {
			t.Fatalf("loading a session: %v", err)
		}
	}
	for _, g := range conns {
		for range 4 { // EHLO (multi-line), MAIL, RCPT, DATA
			lines, err := harness.WrapReader(t, g.conn, g.r).Reply(20 * time.Second)
			if err != nil {
				t.Fatalf("reply while loading: %q, %v", lines, err)
			}
		}
	}
}

func greetedNow(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return false
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	return err == nil && strings.HasPrefix(line, "220 ")
}

// vmHWM returns the peak resident set size of process pid in bytes.
func vmHWM(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Skipf("no /proc status for the daemon: %v", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			f := strings.Fields(rest)
			kb, err := strconv.ParseInt(f[0], 10, 64)
			if err != nil || len(f) < 2 || f[1] != "kB" {
				t.Fatalf("cannot read %q", line)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmHWM line in /proc/PID/status")
	return 0
}
