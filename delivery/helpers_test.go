package delivery

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluice-mta/sluice/internal/testdns"
	"github.com/sluice-mta/sluice/internal/testmx"
)

// testTimeout bounds every wait in these tests.
const testTimeout = 10 * time.Second

// tLogWriter sends slog output to t.Log, and drops it once the test ended.
type tLogWriter struct {
	mu   sync.Mutex
	t    testing.TB
	done bool
}

func (w *tLogWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimRight(string(bytes.Clone(p)), "\n"))
	}
	return len(p), nil
}

func newTestLogger(t testing.TB) *slog.Logger {
	w := &tLogWriter{t: t}
	t.Cleanup(func() {
		w.mu.Lock()
		w.done = true
		w.mu.Unlock()
	})
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// fakeClock is an injectable Now for cache tests.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func newTestResolver(t testing.TB, servers ...*testdns.Server) *Resolver {
	t.Helper()
	var addrs []string
	for _, s := range servers {
		addrs = append(addrs, s.Addr())
	}
	r, err := NewResolver(ResolverOptions{Servers: addrs, Timeout: time.Second, Logger: newTestLogger(t)})
	if err != nil {
		t.Fatalf("NewResolver: %v", err)
	}
	return r
}

// testEnv is a DNS server, a cluster of fake MXes on one port and a client
// pointed at both.
type testEnv struct {
	dns  *testdns.Server
	port int
	mx   []*testmx.Server
	opts Options
}

// newTestEnv starts one fake MX per ip; MX host "mxN.example.com" (N from
// 1) resolves to the Nth ip and example.com has MX records for all of them
// with preferences 10, 20, ...
func newTestEnv(t *testing.T, ips ...string) *testEnv {
	t.Helper()
	e := &testEnv{dns: testdns.Start(t)}
	e.port, e.mx = testmx.StartCluster(t, ips...)
	for i, ip := range ips {
		host := mxName(i)
		e.dns.AddMX("example.com", uint16(10*(i+1)), host)
		e.dns.AddA(host, ip)
	}
	e.opts = Options{
		Helo:           "sluice.test",
		Port:           e.port,
		ConnectTimeout: 2 * time.Second,
		CommandTimeout: 2 * time.Second,
		DataTimeout:    2 * time.Second,
		Resolver:       newTestResolver(t, e.dns),
		AllowPrivateMX: true,
		Logger:         newTestLogger(t),
	}
	return e
}

func mxName(i int) string {
	return "mx" + string(rune('1'+i)) + ".example.com"
}

func (e *testEnv) client() *Client { return New(e.opts) }

// open opens a session to example.com and closes it when the test ends.
func (e *testEnv) open(t *testing.T, d Destination) *Conn {
	t.Helper()
	if d.Domain == "" && d.Relay == "" {
		d.Domain = "example.com"
	}
	cn, err := e.client().Open(testCtx(t), d)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { cn.Close() })
	return cn
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

const testBody = "From: Sender <sender@example.org>\r\n" +
	"To: rcpt@example.com\r\n" +
	"Subject: test\r\n" +
	"Date: Mon, 02 Jan 2006 15:04:05 +0000\r\n" +
	"Message-ID: <1@example.org>\r\n" +
	"\r\n" +
	"Hello,\r\nthis is a test.\r\n"

func envelope(rcpts ...string) Envelope {
	e := Envelope{From: "sender@example.org"}
	for _, r := range rcpts {
		e.Rcpts = append(e.Rcpts, Rcpt{Addr: r})
	}
	return e
}

// wantStatuses checks one status per recipient, in order.
func wantStatuses(t *testing.T, got []Result, want ...Status) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("results: got %d (%+v), want %d", len(got), got, len(want))
	}
	for i := range want {
		if got[i].Status != want[i] {
			t.Errorf("result %d (%s): got %v (%+v), want %v", i, got[i].Rcpt, got[i].Status, got[i], want[i])
		}
	}
}
