package redisbudget

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluice-mta/sluice/internal/testredis"
)

// testTimeout is the Store timeout in tests against a live server: far
// above loopback latency even under -race, so that it never fires by
// accident.
const testTimeout = 2 * time.Second

// waitLimit bounds every wait in the tests.
const waitLimit = 10 * time.Second

// window0 is a window start far from the real clock: keys must live by
// their relative TTL whatever the scheduler's clock says.
var window0 = time.Date(2001, 9, 9, 1, 0, 0, 0, time.UTC)

// newTestStore returns a Store on url whose logs go to t.Log.
func newTestStore(t *testing.T, url string, o Options) *Store {
	t.Helper()
	o.URL = url
	if o.Timeout == 0 {
		o.Timeout = testTimeout
	}
	if o.Logger == nil {
		o.Logger = newTestLogger(t, nil)
	}
	s, err := New(o)
	if err != nil {
		t.Fatalf("New(%q): %v", url, err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// newTestRedis starts a real server and a Store on it.
func newTestRedis(t *testing.T) (*testredis.Server, *Store) {
	t.Helper()
	srv := testredis.Start(t)
	return srv, newTestStore(t, srv.URL(), Options{})
}

func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	t.Cleanup(cancel)
	return ctx
}

// logRecord is one captured log line.
type logRecord struct {
	level slog.Level
	msg   string
}

// logCapture records log lines for counting, and also writes them to t.Log.
type logCapture struct {
	mu      sync.Mutex
	records []logRecord
}

func (c *logCapture) count(level slog.Level, msgPrefix string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, r := range c.records {
		if r.level == level && strings.HasPrefix(r.msg, msgPrefix) {
			n++
		}
	}
	return n
}

// testHandler sends records to t.Log through a text handler and, when
// capture is set, records them.
type testHandler struct {
	text    slog.Handler
	capture *logCapture
}

func newTestLogger(t testing.TB, capture *logCapture) *slog.Logger {
	text := slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug})
	return slog.New(testHandler{text: text, capture: capture})
}

func (h testHandler) Enabled(ctx context.Context, l slog.Level) bool { return h.text.Enabled(ctx, l) }

func (h testHandler) Handle(ctx context.Context, r slog.Record) error {
	if h.capture != nil {
		h.capture.mu.Lock()
		h.capture.records = append(h.capture.records, logRecord{level: r.Level, msg: r.Message})
		h.capture.mu.Unlock()
	}
	return h.text.Handle(ctx, r)
}

func (h testHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return testHandler{text: h.text.WithAttrs(as), capture: h.capture}
}

func (h testHandler) WithGroup(name string) slog.Handler {
	return testHandler{text: h.text.WithGroup(name), capture: h.capture}
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

// startSilentServer listens on loopback, accepts connections, reads and
// discards whatever arrives and never answers: a Redis that is up but
// stuck. It returns the address.
func startSilentServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	var (
		mu    sync.Mutex
		conns []net.Conn
		wg    sync.WaitGroup
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, _ = io.Copy(io.Discard, c)
			}()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		mu.Lock()
		for _, c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

// closedAddr returns a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	return addr
}

// fakeBudget is an in-memory Budget enforcing quotas, with switchable
// failure. It records the quotas Reserve was called with.
type fakeBudget struct {
	mu      sync.Mutex
	used    map[windowKey]int64
	fail    error // returned by every call while set
	calls   int
	quotas  []int64
	refunds []int64
}

func newFakeBudget() *fakeBudget { return &fakeBudget{used: make(map[windowKey]int64)} }

func (b *fakeBudget) setFail(err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.fail = err
}

func (b *fakeBudget) Reserve(_ context.Context, op string, start time.Time, _ time.Duration, quotaMilli, costMilli int64, n int) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.calls++
	if b.fail != nil {
		return 0, b.fail
	}
	b.quotas = append(b.quotas, quotaMilli)
	k := keyOf(op, start)
	granted := 0
	if free := quotaMilli - b.used[k]; free > 0 {
		granted = int(min(int64(n), free/costMilli))
	}
	b.used[k] += int64(granted) * costMilli
	return granted, nil
}

func (b *fakeBudget) Refund(_ context.Context, op string, start time.Time, milli int64) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.calls++
	if b.fail != nil {
		return b.fail
	}
	b.refunds = append(b.refunds, milli)
	k := keyOf(op, start)
	b.used[k] = max(0, b.used[k]-milli)
	return nil
}

func (b *fakeBudget) Used(_ context.Context, op string, start time.Time) (int64, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.calls++
	if b.fail != nil {
		return 0, b.fail
	}
	return b.used[keyOf(op, start)], nil
}

func (b *fakeBudget) usedNow(op string, start time.Time) int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used[keyOf(op, start)]
}

func (b *fakeBudget) callCount() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.calls
}

// fakeStore is a fakeBudget that also reports totals and takes charges, as
// *Store does, so Fallback's outage bookkeeping can be tested without Redis.
type fakeStore struct {
	*fakeBudget
	charges []int64
}

func newFakeStore() *fakeStore { return &fakeStore{fakeBudget: newFakeBudget()} }

func (s *fakeStore) lastUsed(op string, start time.Time) (int64, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.used[keyOf(op, start)]
	return u, ok
}

func (s *fakeStore) charge(_ context.Context, op string, start time.Time, _ time.Duration, milli int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	if s.fail != nil {
		return s.fail
	}
	s.charges = append(s.charges, milli)
	s.used[keyOf(op, start)] += milli
	return nil
}

var errFakeDown = errors.New("fake redis: connection refused")
