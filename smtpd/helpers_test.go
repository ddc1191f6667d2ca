package smtpd

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluice-mta/sluice/queue"
)

// testLogWriter sends log lines to t.Log until the test's cleanups run, and
// drops them afterwards (connection goroutines may outlive Close briefly).
type testLogWriter struct {
	t    testing.TB
	mu   sync.Mutex
	done bool
}

func (w *testLogWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

func newTestLogger(t testing.TB) *slog.Logger {
	w := &testLogWriter{t: t}
	t.Cleanup(func() {
		w.mu.Lock()
		w.done = true
		w.mu.Unlock()
	})
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type enqueued struct {
	msg  *queue.Message
	body []byte
}

// fakeEnqueuer records messages; err, when set, is returned by Enqueue.
type fakeEnqueuer struct {
	mu   sync.Mutex
	seq  uint64
	msgs []enqueued
	err  error
}

func (f *fakeEnqueuer) NewID() (uint64, string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.seq++
	return f.seq, fmt.Sprintf("Q%06d", f.seq)
}

func (f *fakeEnqueuer) Enqueue(_ context.Context, m *queue.Message, body []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return f.err
	}
	f.msgs = append(f.msgs, enqueued{msg: m, body: append([]byte(nil), body...)})
	return nil
}

func (f *fakeEnqueuer) setErr(err error) {
	f.mu.Lock()
	f.err = err
	f.mu.Unlock()
}

func (f *fakeEnqueuer) all() []enqueued {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]enqueued(nil), f.msgs...)
}

// fakeIntake treats addresses starting with "bounces+" at mx.test as local.
type fakeIntake struct {
	mu       sync.Mutex
	received []intakeCall
}

type intakeCall struct {
	from   string
	rcpts  []string
	body   []byte
	client string
}

func (f *fakeIntake) IsLocal(rcpt string) bool {
	return strings.HasPrefix(rcpt, "bounces+") && strings.HasSuffix(rcpt, "@mx.test")
}

func (f *fakeIntake) Receive(_ context.Context, from string, rcpts []string, body []byte, client string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.received = append(f.received, intakeCall{from: from, rcpts: rcpts, body: append([]byte(nil), body...), client: client})
	return nil
}

func (f *fakeIntake) calls() []intakeCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]intakeCall(nil), f.received...)
}

// fakeAdmitter refuses the addresses in deny.
type fakeAdmitter struct{ deny map[string]bool }

func (f fakeAdmitter) Admit(rcpt string) error {
	if f.deny[rcpt] {
		return errors.New("backlog full for example.net\r\ninjected")
	}
	return nil
}

var testNow = time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)

type testServer struct {
	srv    *Server
	addr   string
	enq    *fakeEnqueuer
	intake *fakeIntake
}

func testOptions(t testing.TB, enq *fakeEnqueuer, intake *fakeIntake) Options {
	return Options{
		Hostname:            "mx.test",
		Listen:              []string{"127.0.0.1:0"},
		TrustedNetworks:     []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
		MaxMessageBytes:     64 << 10,
		MaxRecipients:       10,
		MaxLineLength:       1000,
		MaxConnections:      20,
		ReadTimeout:         10 * time.Second,
		WriteTimeout:        10 * time.Second,
		PriorityHeader:      "X-Relay-Priority",
		MaxPriorityMilli:    10000,
		StripPriorityHeader: true,
		Now:                 func() time.Time { return testNow },
		Logger:              newTestLogger(t),
		Enqueuer:            enq,
		Intake:              intake,
	}
}

// newTestServer starts a server on 127.0.0.1 port 0; mod adjusts options.
func newTestServer(t testing.TB, mod func(*Options)) *testServer {
	t.Helper()
	ts := &testServer{enq: &fakeEnqueuer{}, intake: &fakeIntake{}}
	o := testOptions(t, ts.enq, ts.intake)
	if mod != nil {
		mod(&o)
	}
	srv, err := New(o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if err := srv.Start(); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	ts.srv = srv
	ts.addr = srv.Addrs()[0].String()
	return ts
}

// replyTimeout bounds every wait for a reply in tests.
const testReplyTimeout = 10 * time.Second

type client struct {
	t    testing.TB
	conn net.Conn
	r    *bufio.Reader
}

func dial(t testing.TB, addr string) *client {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, testReplyTimeout)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return &client{t: t, conn: c, r: bufio.NewReader(c)}
}

func (c *client) send(s string) {
	c.t.Helper()
	_ = c.conn.SetWriteDeadline(time.Now().Add(testReplyTimeout))
	if _, err := io.WriteString(c.conn, s); err != nil {
		c.t.Fatalf("send %q: %v", abbrev(s), err)
	}
}

// readReply reads one (possibly multi-line) reply and returns its last line.
func (c *client) readReply() (string, error) {
	_ = c.conn.SetReadDeadline(time.Now().Add(testReplyTimeout))
	for range 100 {
		line, err := c.r.ReadString('\n')
		if err != nil {
			return line, err
		}
		line = strings.TrimRight(line, "\r\n")
		if len(line) < 4 || line[3] != '-' {
			return line, nil
		}
	}
	return "", errors.New("reply longer than 100 lines")
}

// expect reads a reply and checks it starts with want ("250 2.0.0").
func (c *client) expect(want string) string {
	c.t.Helper()
	got, err := c.readReply()
	if err != nil {
		c.t.Fatalf("waiting for %q: got %q, error %v", want, got, err)
	}
	if !strings.HasPrefix(got, want) {
		c.t.Fatalf("reply: got %q, want prefix %q", got, want)
	}
	return got
}

// expectClosed checks that the server closes the connection without
// sending anything more.
func (c *client) expectClosed() {
	c.t.Helper()
	_ = c.conn.SetReadDeadline(time.Now().Add(testReplyTimeout))
	line, err := c.r.ReadString('\n')
	if err == nil || isTimeout(err) {
		c.t.Fatalf("want connection closed, got %q, error %v", line, err)
	}
}

// hello reads the greeting and says EHLO.
func (c *client) hello() {
	c.t.Helper()
	c.expect("220 ")
	c.send("EHLO client.test\r\n")
	c.expect("250 ")
}

func abbrev(s string) string {
	if len(s) > 60 {
		return s[:60] + "..."
	}
	return s
}

// waitChan waits for ch with a deadline.
func waitChan[T any](t testing.TB, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(testReplyTimeout):
		t.Fatalf("timed out waiting for %s", what)
		var zero T
		return zero
	}
}
