package harness

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

// ioTimeout bounds every network wait of the SMTP helpers.
const ioTimeout = 15 * time.Second

// Send submits one message (LF line ends are turned into CRLF) and
// returns the queue ID from the 250 reply. Errors are returned, not fatal,
// so that a client racing a killed daemon can retry; an *smtp.SMTPError
// carries the daemon's reply.
func Send(addr, from string, to []string, body string) (string, error) {
	conn, err := net.DialTimeout("tcp", addr, ioTimeout)
	if err != nil {
		return "", err
	}
	_ = conn.SetDeadline(time.Now().Add(ioTimeout))
	c := smtp.NewClient(conn)
	defer c.Close()
	if err := c.Hello("client.test"); err != nil {
		return "", err
	}
	if err := c.Mail(from, nil); err != nil {
		return "", err
	}
	for _, r := range to {
		if err := c.Rcpt(r, nil); err != nil {
			return "", err
		}
	}
	wc, err := c.Data()
	if err != nil {
		return "", err
	}
	if _, err := io.WriteString(wc, strings.ReplaceAll(body, "\n", "\r\n")); err != nil {
		return "", err
	}
	resp, err := wc.CloseWithResponse()
	if err != nil {
		return "", err
	}
	_ = c.Quit()
	return QueueID(resp.StatusText)
}

// QueueID extracts ID from "Ok: queued as ID".
func QueueID(text string) (string, error) {
	const prefix = "queued as "
	i := strings.Index(text, prefix)
	if i < 0 {
		return "", fmt.Errorf("250 reply %q has no queue ID", text)
	}
	return strings.TrimSpace(text[i+len(prefix):]), nil
}

// ReplyCode returns the SMTP code in err, or 0 when err is not a reply.
func ReplyCode(err error) int {
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		return se.Code
	}
	return 0
}

// Conn is a raw SMTP connection for dialog tests: the test writes exact
// bytes and reads replies.
type Conn struct {
	t testing.TB
	C net.Conn
	R *bufio.Reader
}

// Dial connects to addr; a non-empty from binds the local address (an
// untrusted client on another loopback address).
func Dial(t testing.TB, addr, from string) *Conn {
	t.Helper()
	d := net.Dialer{Timeout: ioTimeout}
	if from != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(from)}
	}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return &Conn{t: t, C: c, R: bufio.NewReader(c)}
}

// Wrap makes a Conn of an established connection (a TLS client after
// STARTTLS, say).
func Wrap(t testing.TB, c net.Conn) *Conn { return WrapReader(t, c, bufio.NewReader(c)) }

// WrapReader is Wrap for a connection whose replies are read through r.
func WrapReader(t testing.TB, c net.Conn, r *bufio.Reader) *Conn { return &Conn{t: t, C: c, R: r} }

// Send writes s as is.
func (c *Conn) Send(s string) {
	c.t.Helper()
	_ = c.C.SetWriteDeadline(time.Now().Add(ioTimeout))
	if _, err := io.WriteString(c.C, s); err != nil {
		c.t.Fatalf("send %q: %v", Abbrev(s), err)
	}
}

// Reply reads one reply, possibly multi-line, and returns its lines.
func (c *Conn) Reply(timeout time.Duration) ([]string, error) {
	_ = c.C.SetReadDeadline(time.Now().Add(timeout))
	var lines []string
	for range 100 {
		line, err := c.R.ReadString('\n')
		if err != nil {
			return append(lines, line), err
		}
		line = strings.TrimRight(line, "\r\n")
		lines = append(lines, line)
		if len(line) < 4 || line[3] != '-' {
			return lines, nil
		}
	}
	return lines, errors.New("reply longer than 100 lines")
}

// Expect reads a reply and fails unless its last line starts with want.
func (c *Conn) Expect(want string) string {
	c.t.Helper()
	lines, err := c.Reply(ioTimeout)
	last := lines[len(lines)-1]
	if err != nil || !strings.HasPrefix(last, want) {
		c.t.Fatalf("reply: got %q (err %v), want prefix %q", lines, err, want)
	}
	return last
}

// ExpectClosed fails unless the peer closes the connection without
// sending anything more within timeout.
func (c *Conn) ExpectClosed(timeout time.Duration) {
	c.t.Helper()
	_ = c.C.SetReadDeadline(time.Now().Add(timeout))
	line, err := c.R.ReadString('\n')
	var ne net.Error
	if err == nil || (errors.As(err, &ne) && ne.Timeout()) {
		c.t.Fatalf("want the connection closed, got %q, error %v", line, err)
	}
}

// Hello reads the greeting and says EHLO, returning the EHLO reply lines.
func (c *Conn) Hello() []string {
	c.t.Helper()
	c.Expect("220 ")
	c.Send("EHLO client.test\r\n")
	lines, err := c.Reply(ioTimeout)
	if err != nil || !strings.HasPrefix(lines[len(lines)-1], "250 ") {
		c.t.Fatalf("EHLO: got %q, err %v", lines, err)
	}
	return lines
}

// Abbrev shortens s for messages.
func Abbrev(s string) string {
	if len(s) > 60 {
		return s[:60] + "..."
	}
	return s
}
