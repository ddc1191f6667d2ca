package scheduler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluice-mta/sluice/clock"
	"github.com/sluice-mta/sluice/config"
	"github.com/sluice-mta/sluice/delivery"
	"github.com/sluice-mta/sluice/queue"
	"github.com/sluice-mta/sluice/verp"
)

// Store is the durable queue as the scheduler uses it.
type Store interface {
	// Load reads a message, its recipients and its body in one read.
	Load(seq uint64) (*queue.Message, []byte, error)
	Apply(ctx context.Context, ch queue.Change) (queue.Applied, error)
	Scan(fn func(*queue.Message) error) error
	NewID() (uint64, string)
}

// Budget keeps the units each operator used per window. The local
// implementation is the queue's bbolt file; a Redis one shares budgets
// between relays.
type Budget interface {
	// Reserve grants up to n units of costMilli each in the window
	// [start, start+length), as many as fit under quotaMilli, durably and
	// atomically with respect to every other relay sharing the store.
	Reserve(ctx context.Context, op string, start time.Time, length time.Duration, quotaMilli, costMilli int64, n int) (int, error)
	Refund(ctx context.Context, op string, start time.Time, milli int64) error
	Used(ctx context.Context, op string, start time.Time) (int64, error)
}

// Deliverer opens SMTP sessions.
type Deliverer interface {
	Open(ctx context.Context, d delivery.Destination) (Conn, error)
}

// Conn is one open SMTP session.
type Conn interface {
	Send(ctx context.Context, env delivery.Envelope, body []byte) []delivery.Result
	Usable() bool
	Close() error
	RemoteHost() string
	TLSVersion() string
	// SupportsDSN reports whether the server took the DSN parameters, so
	// that it, not sluice, owes the sender any success report.
	SupportsDSN() bool
}

// MXLookup finds a domain's MX hosts, for operators matched by mx_patterns.
type MXLookup interface {
	LookupMX(ctx context.Context, domain string) ([]delivery.MX, error)
}

// ClientDeliverer adapts a *delivery.Client to Deliverer.
func ClientDeliverer(c *delivery.Client) Deliverer { return clientDeliverer{c} }

type clientDeliverer struct{ c *delivery.Client }

func (d clientDeliverer) Open(ctx context.Context, dest delivery.Destination) (Conn, error) {
	cn, err := d.c.Open(ctx, dest)
	if err != nil {
		return nil, err
	}
	return cn, nil
}

// Options configure a Scheduler.
type Options struct {
	Config    *config.Config
	Clock     clock.Clock
	Store     Store
	Budget    Budget
	Deliverer Deliverer
	MX        MXLookup // nil: mx_patterns are not consulted
	Events    Events   // nil: no metrics
	Logger    *slog.Logger
	// ConnCacheTime is how long an idle connection is kept for the next
	// transaction to the same destination. Zero means 2s.
	ConnCacheTime time.Duration
	// SweepInterval is how often waiting mail is checked for expiry and
	// delay warnings. Zero means 1m.
	SweepInterval time.Duration
	// Rand drives retry jitter and nothing else. Nil: a random source.
	Rand *rand.Rand
	// NoRecover lets worker panics crash the test that caused them.
	NoRecover bool
	// VERPKey signs VERP return paths (operators with verp = true). The
	// daemon keeps it in the data directory so that bounces to paths made
	// before a restart still verify.
	VERPKey []byte
}

// Scheduler runs the dispatch loop. Create with New, start with Run.
type Scheduler struct {
	opts   Options
	clock  clock.Clock
	store  Store
	budget Budget
	log    *slog.Logger
	events Events

	// Fed by other goroutines.
	inMu     sync.Mutex
	incoming []*queue.Message
	kick     chan struct{}
	results  chan *jobResult
	cmds     chan func()
	idleCh   chan struct{} // closed when the loop goes idle; see WaitIdle

	// Owned by the loop goroutine.
	pol       *policies
	cfg       atomic.Pointer[config.Config] // for workers and background tasks; pol.cfg is the loop's
	doms      domains
	classes   map[uint32]*domainClass
	waiting   waitHeap
	delays    delayWatch // messages owed a delay warning, by when
	dirty     map[*opState]struct{}
	starved   map[*opState]struct{} // ops waiting for a global connection slot
	active    map[uint64]int        // messages with transactions in flight
	held      map[uint64]bool       // messages put on hold while the loop ran
	running   map[*job]struct{}     // transactions in flight
	adm       admission
	opTimers  opTimerHeap
	workers   map[string][]*worker // idle workers by destination key
	conns     int                  // live workers in all
	inflight  int                  // transactions running
	retiring  int                  // workers told to close that have not exited yet
	nextSweep time.Time
	verp      *verp.Codec
	nextPrune time.Time
	rnd       *rand.Rand
	rndMu     sync.Mutex
	stopping  bool
	jobCtx    context.Context
	cancelJob context.CancelFunc
	jobWG     sync.WaitGroup
	ready     chan struct{} // closed once the index is built

	// Guarded by inMu, for WaitIdle.
	turn    uint64
	idle    bool
	turnNow time.Time    // the clock reading the last turn worked with
	bg      atomic.Int32 // background tasks (lookups, expiries) running
}

// New returns a Scheduler; Run loads the queue and starts sending.
func New(o Options) (*Scheduler, error) {
	if o.Config == nil || o.Store == nil || o.Budget == nil || o.Deliverer == nil {
		return nil, errors.New("scheduler: Config, Store, Budget and Deliverer are required")
	}
	if o.Clock == nil {
		o.Clock = clock.Real{}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.ConnCacheTime <= 0 {
		o.ConnCacheTime = 2 * time.Second
	}
	if o.SweepInterval <= 0 {
		o.SweepInterval = time.Minute
	}
	rnd := o.Rand
	if rnd == nil {
		rnd = rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	}
	ev := o.Events
	if ev == nil {
		ev = nopEvents{}
	}
	s := &Scheduler{
		opts: o, clock: o.Clock, store: o.Store, budget: o.Budget, log: o.Logger, events: ev,
		kick:    make(chan struct{}, 1),
		results: make(chan *jobResult, 256),
		cmds:    make(chan func()),
		idleCh:  make(chan struct{}),
		pol:     newPolicies(o.Config),
		classes: make(map[uint32]*domainClass),
		dirty:   make(map[*opState]struct{}),
		starved: make(map[*opState]struct{}),
		active:  make(map[uint64]int),
		held:    make(map[uint64]bool),
		running: make(map[*job]struct{}),
		adm:     admission{cfg: o.Config, backlog: make(map[string]int64), keys: make(map[uint32]string)},
		workers: make(map[string][]*worker),
		rnd:     rnd,
		ready:   make(chan struct{}),
		verp:    verp.New(o.VERPKey),
	}
	s.adm.verpBases = verpBases(o.Config)
	s.cfg.Store(o.Config)
	return s, nil
}

// conf returns the configuration in force. Configurations are never
// changed after loading, only replaced (Reconfigure), so a worker may keep
// using the one it read.
func (s *Scheduler) conf() *config.Config { return s.cfg.Load() }

// Add tells the scheduler about a newly committed message. It never blocks
// on the loop.
func (s *Scheduler) Add(m *queue.Message) {
	s.inMu.Lock()
	s.incoming = append(s.incoming, m)
	s.inMu.Unlock()
	s.poke()
}

func (s *Scheduler) poke() {
	s.inMu.Lock()
	defer s.inMu.Unlock()
	s.idle = false
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// Run loads every pending recipient from the store and dispatches until ctx
// is cancelled. Then it stops starting transactions, lets those in flight
// finish for at most drain (they are aborted after that and their
// recipients deferred), records their results, and returns.
func (s *Scheduler) Run(ctx context.Context, drain time.Duration) error {
	s.jobCtx, s.cancelJob = context.WithCancel(context.Background())
	defer s.cancelJob()
	if err := s.rebuild(); err != nil {
		return err
	}
	close(s.ready)
	timer := s.clock.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		now := s.clock.Now()
		s.step(now)
		wake := s.nextWake(now)
		if wake.IsZero() {
			wake = now.Add(24 * time.Hour)
		}
		timer.ResetAt(wake) // absolute and atomic: exact under a fake clock
		// Something already due (wake <= now) means the timer fires at
		// once: the loop is not idle, it goes round again.
		// So does a timer that fired while this turn ran (publishTurn
		// checks for a kick).
		s.publishTurn(now, len(timer.C()) == 0 && wake.After(now) && s.inflight == 0 && s.retiring == 0 && s.bg.Load() == 0)
		select {
		case <-ctx.Done():
			return s.shutdown(drain)
		case <-timer.C():
		case <-s.kick:
		case r := <-s.results:
			s.handleResult(r, s.clock.Now())
		case fn := <-s.cmds:
			fn()
		}
	}
}

// step does everything due at now.
func (s *Scheduler) step(now time.Time) {
	s.drainIncoming(now)
	s.drainResults(now)
	s.promoteDue(now)
	s.fireOpTimers(now)
	s.fireDelays(now)
	if !now.Before(s.nextSweep) {
		s.sweep(now)
		s.nextSweep = now.Add(s.opts.SweepInterval)
	}
	for op := range s.dirty {
		delete(s.dirty, op)
		s.dispatch(op, now)
	}
	s.closeIdleWorkers(now)
}

// drainResults handles every result already waiting, so a burst of
// finished transactions costs one loop turn.
func (s *Scheduler) drainResults(now time.Time) {
	for {
		select {
		case r := <-s.results:
			s.handleResult(r, now)
		default:
			return
		}
	}
}

// nextWake is the earliest moment something becomes due.
func (s *Scheduler) nextWake(now time.Time) time.Time {
	var wake time.Time
	consider := func(t time.Time) {
		if !t.IsZero() && (wake.IsZero() || t.Before(wake)) {
			wake = t
		}
	}
	if len(s.waiting) > 0 {
		consider(time.Unix(0, s.waiting[0].at))
	}
	if len(s.opTimers) > 0 {
		consider(s.opTimers[0].at)
	}
	if len(s.delays) > 0 {
		consider(time.Unix(0, s.delays[0].at))
	}
	consider(s.nextSweep)
	consider(s.nextIdleClose())
	return wake
}

// publishTurn records that the loop finished a turn worked at now and is
// about to sleep, and whether it is idle: nothing in flight, no background
// task, no new mail and no wake-up waiting for it. Tests driving a fake
// clock wait for an idle turn after each step (WaitIdle). poke sends its
// kick under inMu, so a kick is either seen here or clears idle after.
func (s *Scheduler) publishTurn(now time.Time, idle bool) {
	s.inMu.Lock()
	defer s.inMu.Unlock()
	s.turn++
	s.turnNow = now
	s.idle = idle && len(s.incoming) == 0 && len(s.kick) == 0
	if s.idle {
		close(s.idleCh)
		s.idleCh = make(chan struct{})
	}
}

// Turn returns the number of loop turns completed so far.
func (s *Scheduler) Turn() uint64 {
	s.inMu.Lock()
	defer s.inMu.Unlock()
	return s.turn
}

// WaitIdleAt blocks until a loop turn later than turn ends idle having
// worked with a clock reading at or after at, or ctx ends. A test driving
// a fake clock reads Turn, causes exactly one wake-up (moving the clock to
// the next deadline, adding mail), then waits with WaitIdleAt and the
// clock's new time, so that no turn can still be running when it moves
// the clock again, and a turn that began before the move is not taken for
// one after it.
func (s *Scheduler) WaitIdleAt(ctx context.Context, turn uint64, at time.Time) error {
	for {
		s.inMu.Lock()
		ch, idle, cur, now := s.idleCh, s.idle, s.turn, s.turnNow
		s.inMu.Unlock()
		if idle && cur > turn && !now.Before(at) {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("scheduler: not idle: %w", ctx.Err())
		}
	}
}

// WaitIdle wakes the loop and waits until a later turn ends idle.
func (s *Scheduler) WaitIdle(ctx context.Context) error {
	turn := s.Turn()
	s.poke()
	return s.WaitIdleAt(ctx, turn, time.Time{})
}

// Ready is closed once Run has loaded the queue.
func (s *Scheduler) Ready() <-chan struct{} { return s.ready }

// do runs fn on the loop goroutine and waits for it.
func (s *Scheduler) do(ctx context.Context, fn func()) error {
	done := make(chan struct{})
	select {
	case s.cmds <- func() { fn(); close(done) }:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// background runs fn in a goroutine that the loop counts as work in
// progress (for WaitIdle) and that shutdown waits for. The count drops on
// the loop itself, in a turn of its own: a wake-up sent from here after
// the count dropped could land after the loop had already reported itself
// idle, and start a turn that a fake-clock test, moving the clock at that
// moment, would take for the turn at the new time.
func (s *Scheduler) background(fn func()) {
	s.bg.Add(1)
	s.jobWG.Add(1)
	go func() {
		defer func() {
			s.jobWG.Done()
			s.post(func() { s.bg.Add(-1) })
		}()
		fn()
	}()
}

// post hands fn to the loop from a background goroutine; it is dropped
// when the scheduler stops.
func (s *Scheduler) post(fn func()) {
	select {
	case s.cmds <- fn:
	case <-s.jobCtx.Done():
	}
}

// markDirty asks the loop to reconsider op in this turn.
func (s *Scheduler) markDirty(op *opState) { s.dirty[op] = struct{}{} }

// wakeOpAt asks the loop to reconsider op at t.
func (s *Scheduler) wakeOpAt(op *opState, t time.Time) {
	if !op.wakeAt.IsZero() && !t.Before(op.wakeAt) {
		return
	}
	op.wakeAt = t
	s.opTimers.push(opTimer{at: t, op: op})
}

func (s *Scheduler) fireOpTimers(now time.Time) {
	for len(s.opTimers) > 0 && !s.opTimers[0].at.After(now) {
		t := s.opTimers.pop()
		if t.op.wakeAt.Equal(t.at) {
			t.op.wakeAt = time.Time{}
		}
		s.markDirty(t.op)
	}
}

type opTimer struct {
	at time.Time
	op *opState
}

//lint:ignore U1000 called through minHeap's type constraint (staticcheck does not see it)
func (t opTimer) before(o opTimer) bool { return t.at.Before(o.at) }

type opTimerHeap = minHeap[opTimer]
