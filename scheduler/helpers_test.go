package scheduler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluice-mta/sluice/clock"
	"github.com/sluice-mta/sluice/config"
	"github.com/sluice-mta/sluice/delivery"
	"github.com/sluice-mta/sluice/queue"
)

type testLogWriter struct{ t testing.TB }

func (w testLogWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func newTestLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testLogWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// sentTxn is one transaction the fake deliverer saw.
type sentTxn struct {
	at     time.Time
	domain string
	relay  string
	from   string
	rcpts  []string
	body   []byte
	conn   int // which connection carried it
}

// fakeDeliverer records transactions and answers per a script.
type fakeDeliverer struct {
	clock clock.Clock
	mu    sync.Mutex
	txns  []sentTxn
	opens int
	// reply decides each recipient's result; nil means sent.
	reply func(d delivery.Destination, rcpt string) delivery.Result
	// openErr, if set, fails Open.
	openErr func(d delivery.Destination) error
	// hook runs inside Send, before answering (for concurrency checks).
	hook func(d delivery.Destination)
	dsn  bool // the fake servers advertise DSN
}

func (f *fakeDeliverer) Open(_ context.Context, d delivery.Destination) (Conn, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.openErr != nil {
		if err := f.openErr(d); err != nil {
			return nil, err
		}
	}
	f.opens++
	return &fakeConn{f: f, d: d, id: f.opens}, nil
}

func (f *fakeDeliverer) sent() []sentTxn {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]sentTxn(nil), f.txns...)
}

type fakeConn struct {
	f      *fakeDeliverer
	d      delivery.Destination
	id     int
	closed bool
}

func (c *fakeConn) Send(_ context.Context, env delivery.Envelope, body []byte) []delivery.Result {
	if c.f.hook != nil {
		c.f.hook(c.d)
	}
	c.f.mu.Lock()
	defer c.f.mu.Unlock()
	tx := sentTxn{at: c.f.clock.Now(), domain: c.d.Domain, relay: c.d.Relay, from: env.From, body: body, conn: c.id}
	out := make([]delivery.Result, len(env.Rcpts))
	for i, r := range env.Rcpts {
		tx.rcpts = append(tx.rcpts, r.Addr)
		res := delivery.Result{Rcpt: r.Addr, Status: delivery.StatusSent,
			Reply: delivery.Reply{Code: 250, Enhanced: "2.0.0", Text: "ok", RemoteHost: "mx." + c.d.Domain, RemoteIP: "127.0.0.9"}}
		if c.f.reply != nil {
			res = c.f.reply(c.d, r.Addr)
			res.Rcpt = r.Addr
			// A reply means the RCPT went out; a scripted result without
			// one stands for a transaction cut before it.
			res.RcptSent = res.RcptSent || res.Reply.Code != 0 || res.Status == delivery.StatusSent
		} else {
			res.RcptSent = true
		}
		out[i] = res
	}
	c.f.txns = append(c.f.txns, tx)
	return out
}

func (c *fakeConn) Usable() bool       { return !c.closed }
func (c *fakeConn) Close() error       { c.closed = true; return nil }
func (c *fakeConn) RemoteHost() string { return "mx." + c.d.Domain }
func (c *fakeConn) TLSVersion() string { return "" }
func (c *fakeConn) SupportsDSN() bool  { return c.f.dsn }

// harness runs a Scheduler over a real store with a fake clock.
type harness struct {
	t      testing.TB
	s      *Scheduler
	store  *queue.Store
	clock  *clock.Fake
	fd     *fakeDeliverer
	cfg    *config.Config
	path   string
	cancel context.CancelFunc
	done   chan error
}

const baseConfig = `
hostname = "relay.test"
data_dir = "."
[delivery]
retry_schedule = ["5m", "10m", "20m"]
max_queue_lifetime = "1d"
delay_warning_after = "0"
`

var testStart = time.Date(2026, 11, 23, 10, 0, 30, 0, time.UTC)

func newHarness(t testing.TB, extraConfig string) *harness {
	t.Helper()
	return newHarnessIn(t, t.TempDir(), extraConfig)
}

// newHarnessIn keeps the store in dir.
func newHarnessIn(t testing.TB, dir, extraConfig string) *harness {
	t.Helper()
	return newHarnessConfig(t, dir, baseConfig+extraConfig)
}

// newHarnessConfig runs on a complete configuration text.
func newHarnessConfig(t testing.TB, dir, configText string) *harness {
	t.Helper()
	cfg, err := config.Parse([]byte(configText), filepath.Join(t.TempDir(), "sluice.toml"))
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	h := &harness{t: t, cfg: cfg, clock: clock.NewFake(testStart), path: filepath.Join(dir, "queue.db")}
	h.fd = &fakeDeliverer{clock: h.clock}
	h.openStore()
	h.start()
	t.Cleanup(h.stop)
	return h
}

func (h *harness) openStore() {
	// No lazy commits: the harness waits for every commit before it moves
	// the clock, so sharing an fsync with a later enqueue would only add
	// the delay to each step.
	st, err := queue.Open(queue.Options{Path: h.path, Logger: newTestLogger(h.t), LazyCommitDelay: -1})
	if err != nil {
		h.t.Fatalf("open store: %v", err)
	}
	h.store = st
}

func (h *harness) start() {
	s, err := New(Options{
		Config: h.cfg, Clock: h.clock, Store: h.store, Budget: h.store, Deliverer: h.fd,
		Logger: newTestLogger(h.t), Rand: rand.New(rand.NewPCG(1, 2)), NoRecover: true,
	})
	if err != nil {
		h.t.Fatal(err)
	}
	h.runWith(s)
}

// runWith starts the given scheduler on the harness's store.
func (h *harness) runWith(s *Scheduler) {
	h.s = s
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel, h.done = cancel, make(chan error, 1)
	go func() { h.done <- s.Run(ctx, 5*time.Second) }()
	h.idle()
}

// stop shuts the scheduler down and closes the store.
func (h *harness) stop() {
	if h.cancel == nil {
		return
	}
	h.cancel()
	select {
	case err := <-h.done:
		if err != nil {
			h.t.Errorf("Run: %v", err)
		}
	case <-time.After(20 * time.Second):
		h.t.Fatal("scheduler did not stop")
	}
	h.cancel = nil
	h.store.Close()
}

// restart stops everything and starts again on the same store file.
func (h *harness) restart() {
	h.stop()
	h.openStore()
	h.start()
}

// idle wakes the loop and waits for it to settle.
func (h *harness) idle() {
	h.t.Helper()
	h.waitAfter(h.s.Turn(), true)
}

func (h *harness) waitAfter(turn uint64, poke bool) {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if poke {
		h.s.poke()
	}
	if err := h.s.WaitIdleAt(ctx, turn, h.clock.Now()); err != nil {
		h.t.Fatal(err)
	}
}

// runUntil moves the fake clock to t one loop deadline at a time, letting
// the scheduler settle after each step. Every step wakes the loop exactly
// once (its timer fires), so no turn is running when the clock moves.
func (h *harness) runUntil(t time.Time) {
	h.t.Helper()
	h.idle()
	for i := 0; i < 1_000_000; i++ {
		next, ok := h.clock.NextDeadline()
		if !ok || next.After(t) {
			turn := h.s.Turn()
			h.clock.Set(t)
			h.waitAfter(turn, true)
			return
		}
		turn := h.s.Turn()
		h.clock.Set(next)
		h.waitAfter(turn, false)
	}
	h.t.Fatal("runUntil: too many steps")
}

func (h *harness) run(d time.Duration) { h.runUntil(h.clock.Now().Add(d)) }

// enqueue stores a message the way the SMTP side does and tells the
// scheduler.
func (h *harness) enqueue(from string, prioMilli uint32, rcpts ...string) *queue.Message {
	h.t.Helper()
	m := h.enqueueStored(from, prioMilli, rcpts...)
	h.s.Add(m)
	return m
}

// enqueueWith queues a message whose recipients carry a NOTIFY set.
func (h *harness) enqueueWith(from string, notify queue.Notify, rcpts ...string) *queue.Message {
	h.t.Helper()
	seq, id := h.store.NewID()
	m := &queue.Message{ID: id, Seq: seq, From: from, Arrival: h.clock.Now(), PriorityMilli: 1000}
	for i, r := range rcpts {
		m.Recipients = append(m.Recipients, queue.Recipient{Index: i, Addr: r, State: queue.StateQueued, Notify: notify})
	}
	body := fmt.Sprintf("From: <%s>\r\nSubject: test %s\r\n\r\nhello\r\n", from, id)
	if err := h.store.Enqueue(context.Background(), m, []byte(body)); err != nil {
		h.t.Fatal(err)
	}
	h.s.Add(m)
	return m
}

// enqueueStored only stores a message; the scheduler sees it at its next
// start (so that many messages become ready at the same moment).
func (h *harness) enqueueStored(from string, prioMilli uint32, rcpts ...string) *queue.Message {
	h.t.Helper()
	seq, id := h.store.NewID()
	m := &queue.Message{ID: id, Seq: seq, From: from, Arrival: h.clock.Now(), PriorityMilli: prioMilli}
	for i, r := range rcpts {
		m.Recipients = append(m.Recipients, queue.Recipient{Index: i, Addr: r, State: queue.StateQueued})
	}
	body := fmt.Sprintf("From: <%s>\r\nSubject: test %s\r\n\r\nhello\r\n", from, id)
	if err := h.store.Enqueue(context.Background(), m, []byte(body)); err != nil {
		h.t.Fatal(err)
	}
	return m
}

// enqueueAtOnce stores messages and hands them to the scheduler in one go,
// so that they are all ready at the same moment (a burst).
func (h *harness) enqueueAtOnce(ms []*queue.Message) {
	h.s.inMu.Lock()
	h.s.incoming = append(h.s.incoming, ms...)
	h.s.inMu.Unlock()
	h.s.poke()
}

// pending counts messages still in the store.
func (h *harness) pending() int {
	n, _, err := h.store.Count()
	if err != nil {
		h.t.Fatal(err)
	}
	return n
}

var errDial = errors.New("connection refused")
