package redisbudget

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"
)

const (
	warnOutage = "redis budget store unavailable"
	infoBack   = "redis budget store available again"
)

// outageEvents records OnOutage calls.
type outageEvents struct {
	mu  sync.Mutex
	got []bool
}

func (e *outageEvents) record(down bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.got = append(e.got, down)
}

func (e *outageEvents) list() []bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.got)
}

// newTestFallback wraps primary and local, probing on every call unless o
// says otherwise, with logs captured.
func newTestFallback(t *testing.T, primary, local Budget, o FallbackOptions) (*Fallback, *logCapture, *outageEvents) {
	t.Helper()
	logs, events := &logCapture{}, &outageEvents{}
	o.Logger = newTestLogger(t, logs)
	o.OnOutage = events.record
	if o.ProbeInterval == 0 {
		o.ProbeInterval = -1
	}
	return WithFallback(primary, local, o), logs, events
}

func TestFallbackPauseOutageLogsOnce(t *testing.T) {
	primary, local := newFakeStore(), newFakeBudget()
	f, logs, events := newTestFallback(t, primary, local, FallbackOptions{Policy: PolicyPause})
	ctx := testCtx(t)
	primary.setFail(errFakeDown)
	calls := []struct {
		name string
		call func() error
	}{
		{"reserve", func() error {
			k, err := f.Reserve(ctx, "op", window0, time.Hour, 10_000, 1000, 3)
			if k != 0 {
				t.Errorf("Reserve granted %d during a paused outage, want 0", k)
			}
			return err
		}},
		{"refund", func() error { return f.Refund(ctx, "op", window0, 1000) }},
		{"used", func() error { _, err := f.Used(ctx, "op", window0); return err }},
		{"reserve again", func() error { _, err := f.Reserve(ctx, "op", window0, time.Hour, 10_000, 1000, 1); return err }},
	}
	for _, tt := range calls {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			if !errors.Is(err, ErrUnavailable) || !errors.Is(err, errFakeDown) {
				t.Errorf("err = %v, want one wrapping ErrUnavailable and the cause", err)
			}
		})
	}
	if local.callCount() != 0 {
		t.Errorf("pause policy made %d calls to the local store, want 0", local.callCount())
	}
	if !f.Down() {
		t.Errorf("Down() = false during the outage, want true")
	}
	primary.setFail(nil)
	for range 3 {
		if k, err := f.Reserve(ctx, "op", window0, time.Hour, 10_000, 1000, 1); err != nil || k != 1 {
			t.Fatalf("Reserve after recovery = %d, %v; want 1, nil", k, err)
		}
	}
	checkOutageLines(t, logs, 1, 1)
	if got, want := events.list(), []bool{true, false}; !slices.Equal(got, want) {
		t.Errorf("OnOutage calls = %v, want %v", got, want)
	}
	// A second outage is reported again.
	primary.setFail(errFakeDown)
	_, _ = f.Reserve(ctx, "op", window0, time.Hour, 10_000, 1000, 1)
	checkOutageLines(t, logs, 2, 1)
}

func checkOutageLines(t *testing.T, logs *logCapture, wantWarn, wantInfo int) {
	t.Helper()
	if n := logs.count(slog.LevelWarn, warnOutage); n != wantWarn {
		t.Errorf("%d outage Warn lines, want %d", n, wantWarn)
	}
	if n := logs.count(slog.LevelInfo, infoBack); n != wantInfo {
		t.Errorf("%d recovery Info lines, want %d", n, wantInfo)
	}
}

func TestFallbackProbeInterval(t *testing.T) {
	primary := newFakeStore()
	f, _, _ := newTestFallback(t, primary, nil, FallbackOptions{Policy: PolicyPause, ProbeInterval: time.Second})
	now := time.Unix(1000, 0)
	f.now = func() time.Time { return now }
	ctx := testCtx(t)
	primary.setFail(errFakeDown)
	steps := []struct {
		name      string
		advance   time.Duration
		wantCalls int // primary calls so far
	}{
		{"first failure starts the outage", 0, 1},
		{"within the interval: not tried", 500 * time.Millisecond, 1},
		{"interval over: probed", 500 * time.Millisecond, 2},
		{"right after the probe: not tried", time.Millisecond, 2},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			now = now.Add(st.advance)
			_, err := f.Reserve(ctx, "op", window0, time.Hour, 10_000, 1000, 1)
			if !errors.Is(err, ErrUnavailable) {
				t.Errorf("err = %v, want ErrUnavailable", err)
			}
			if got := primary.callCount(); got != st.wantCalls {
				t.Errorf("primary calls = %d, want %d", got, st.wantCalls)
			}
		})
	}
}

func TestFallbackLocalShareQuota(t *testing.T) {
	tests := []struct {
		name      string
		quota     int64
		relays    int
		seen      int64 // primary total before the outage; -1: never seen
		wantShare int64
	}{
		{"window unseen: quota / relays", 10_000, 3, -1, 3333},
		{"integer division rounds down", 7, 2, -1, 3},
		{"one relay gets all", 10_000, 1, -1, 10_000},
		{"what was left, shared", 10_000, 2, 4_000, 3_000},
		{"nothing left", 10_000, 2, 12_000, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			primary, local := newFakeStore(), newFakeBudget()
			if tt.seen >= 0 {
				primary.used[keyOf("op", window0)] = tt.seen
			}
			primary.setFail(errFakeDown)
			f, _, _ := newTestFallback(t, primary, local, FallbackOptions{Policy: PolicyLocalShare, ExpectedRelays: tt.relays})
			if _, err := f.Reserve(testCtx(t), "op", window0, time.Hour, tt.quota, 1, 1); err != nil {
				t.Fatalf("Reserve: %v", err)
			}
			if len(local.quotas) != 1 || local.quotas[0] != tt.wantShare {
				t.Errorf("local store asked with quotas %v, want [%d]", local.quotas, tt.wantShare)
			}
		})
	}
}

func TestFallbackLocalSharePlainPrimary(t *testing.T) {
	// A primary that is not a *Store reports no totals: the share is the
	// plain quota / relays.
	primary, local := newFakeBudget(), newFakeBudget()
	primary.used[keyOf("op", window0)] = 9_000
	primary.setFail(errFakeDown)
	f, _, _ := newTestFallback(t, primary, local, FallbackOptions{Policy: PolicyLocalShare, ExpectedRelays: 2})
	if _, err := f.Reserve(testCtx(t), "op", window0, time.Hour, 10_000, 1, 1); err != nil {
		t.Fatalf("Reserve: %v", err)
	}
	if len(local.quotas) != 1 || local.quotas[0] != 5_000 {
		t.Errorf("local quotas %v, want [5000]", local.quotas)
	}
}

func TestFallbackLocalShareGrantsAndRefunds(t *testing.T) {
	primary, local := newFakeStore(), newFakeBudget()
	f, logs, events := newTestFallback(t, primary, local, FallbackOptions{Policy: PolicyLocalShare, ExpectedRelays: 2})
	ctx := testCtx(t)
	primary.setFail(errFakeDown)
	steps := []struct {
		name      string
		call      func() (int, error)
		want      int
		wantErr   error
		wantLocal int64
	}{
		{"half the quota granted locally", func() (int, error) {
			return f.Reserve(ctx, "op", window0, time.Hour, 10_000, 1000, 8)
		}, 5, nil, 5000},
		{"the share is spent", func() (int, error) {
			return f.Reserve(ctx, "op", window0, time.Hour, 10_000, 1000, 1)
		}, 0, nil, 5000},
		{"refund goes to the local store", func() (int, error) {
			return 0, f.Refund(ctx, "op", window0, 2000)
		}, 0, nil, 3000},
		{"refund beyond local grants: the rest needs redis", func() (int, error) {
			return 0, f.Refund(ctx, "op", window0, 4000)
		}, 0, ErrUnavailable, 0},
		{"other window starts its own share", func() (int, error) {
			return f.Reserve(ctx, "op", window0.Add(time.Hour), time.Hour, 10_000, 1000, 8)
		}, 5, nil, 0},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			got, err := st.call()
			if !errors.Is(err, st.wantErr) || (st.wantErr == nil && err != nil) {
				t.Fatalf("err = %v, want %v", err, st.wantErr)
			}
			if got != st.want {
				t.Errorf("granted %d, want %d", got, st.want)
			}
			if u := local.usedNow("op", window0); u != st.wantLocal {
				t.Errorf("local used %d, want %d", u, st.wantLocal)
			}
		})
	}
	checkOutageLines(t, logs, 1, 0)
	if got := events.list(); !slices.Equal(got, []bool{true}) {
		t.Errorf("OnOutage calls = %v, want [true]", got)
	}
}

func TestFallbackChargesLocalGrantsOnRecovery(t *testing.T) {
	primary, local := newFakeStore(), newFakeBudget()
	f, logs, _ := newTestFallback(t, primary, local, FallbackOptions{Policy: PolicyLocalShare, ExpectedRelays: 1})
	ctx := testCtx(t)
	if k, err := f.Reserve(ctx, "op", window0, time.Hour, 10_000, 1000, 4); err != nil || k != 4 {
		t.Fatalf("Reserve before the outage = %d, %v; want 4, nil", k, err)
	}
	primary.setFail(errFakeDown)
	// One relay: it may spend what the window had left, locally.
	if k, err := f.Reserve(ctx, "op", window0, time.Hour, 10_000, 1000, 10); err != nil || k != 6 {
		t.Fatalf("Reserve during the outage = %d, %v; want 6, nil", k, err)
	}
	primary.setFail(nil)
	// Redis is back: the 6000 sent meanwhile are charged before anything
	// else, so the window cannot be spent twice.
	if k, err := f.Reserve(ctx, "op", window0, time.Hour, 10_000, 1000, 1); err != nil || k != 0 {
		t.Fatalf("Reserve after recovery = %d, %v; want 0, nil", k, err)
	}
	if got, want := primary.charges, []int64{6000}; !slices.Equal(got, want) {
		t.Errorf("charges = %v, want %v", got, want)
	}
	if u := primary.usedNow("op", window0); u != 10_000 {
		t.Errorf("primary used %d, want 10000", u)
	}
	// Charged units are the primary's now: refunds go there.
	if err := f.Refund(ctx, "op", window0, 1000); err != nil {
		t.Fatalf("Refund: %v", err)
	}
	if u := primary.usedNow("op", window0); u != 9_000 {
		t.Errorf("primary used after refund %d, want 9000", u)
	}
	if len(local.refunds) != 0 {
		t.Errorf("local refunds %v, want none", local.refunds)
	}
	// Nothing is charged twice.
	if _, err := f.Used(ctx, "op", window0); err != nil {
		t.Fatalf("Used: %v", err)
	}
	if len(primary.charges) != 1 {
		t.Errorf("charges = %v, want one", primary.charges)
	}
	checkOutageLines(t, logs, 1, 1)
}

func TestFallbackChargeFailureKeepsGrants(t *testing.T) {
	primary, local := newFakeStore(), newFakeBudget()
	f, _, _ := newTestFallback(t, primary, local, FallbackOptions{Policy: PolicyLocalShare, ExpectedRelays: 1})
	ctx := testCtx(t)
	primary.setFail(errFakeDown)
	if k, err := f.Reserve(ctx, "op", window0, time.Hour, 10_000, 1000, 2); err != nil || k != 2 {
		t.Fatalf("Reserve during the outage = %d, %v; want 2, nil", k, err)
	}
	// Still down: the probe's charge fails, the grants stay pending.
	if _, err := f.Used(ctx, "op", window0); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Used during the outage: %v, want ErrUnavailable", err)
	}
	if len(primary.charges) != 0 {
		t.Fatalf("charges while down = %v, want none", primary.charges)
	}
	primary.setFail(nil)
	if used, err := f.Used(ctx, "op", window0); err != nil || used != 2000 {
		t.Errorf("Used after recovery = %d, %v; want 2000 (the charge), nil", used, err)
	}
}

func TestFallbackNotAnOutage(t *testing.T) {
	tests := []struct {
		name    string
		call    func(f *Fallback) error
		wantErr error
	}{
		{"invalid cost", func(f *Fallback) error {
			_, err := f.Reserve(testCtx(t), "op", window0, time.Hour, 10, 0, 1)
			return err
		}, ErrInvalidArgument},
		{"caller gave up", func(f *Fallback) error {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			_, err := f.Reserve(ctx, "op", window0, time.Hour, 10, 1, 1)
			return err
		}, errFakeDown},
		{"caller gave up on a refund", func(f *Fallback) error {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			return f.Refund(ctx, "op", window0, 5)
		}, errFakeDown},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			primary, local := newFakeStore(), newFakeBudget()
			primary.setFail(errFakeDown)
			f, logs, events := newTestFallback(t, primary, local, FallbackOptions{Policy: PolicyLocalShare, ExpectedRelays: 2})
			if err := tt.call(f); !errors.Is(err, tt.wantErr) {
				t.Errorf("err = %v, want %v", err, tt.wantErr)
			}
			if f.Down() || len(events.list()) != 0 || logs.count(slog.LevelWarn, "") != 0 {
				t.Errorf("Down %v, OnOutage %v, %d Warn lines; want no outage", f.Down(), events.list(), logs.count(slog.LevelWarn, ""))
			}
			if local.callCount() != 0 {
				t.Errorf("local store called %d times, want 0", local.callCount())
			}
		})
	}
}

func TestFallbackUnusablePolicyPauses(t *testing.T) {
	tests := []struct {
		name  string
		o     FallbackOptions
		local bool
	}{
		{"empty policy", FallbackOptions{}, true},
		{"unknown policy", FallbackOptions{Policy: "share"}, true},
		{"local_share without a local store", FallbackOptions{Policy: PolicyLocalShare, ExpectedRelays: 2}, false},
		{"local_share with zero relays", FallbackOptions{Policy: PolicyLocalShare}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			primary := newFakeStore()
			var local Budget
			fl := newFakeBudget()
			if tt.local {
				local = fl
			}
			f, logs, _ := newTestFallback(t, primary, local, tt.o)
			if n := logs.count(slog.LevelWarn, "redis budget outage policy unusable"); n != 1 {
				t.Errorf("%d construction warnings, want 1", n)
			}
			primary.setFail(errFakeDown)
			if _, err := f.Reserve(testCtx(t), "op", window0, time.Hour, 10, 1, 1); !errors.Is(err, ErrUnavailable) {
				t.Errorf("Reserve during an outage: %v, want ErrUnavailable (paused)", err)
			}
			if fl.callCount() != 0 {
				t.Errorf("local store called %d times, want 0", fl.callCount())
			}
		})
	}
}

func TestWindowTableAges(t *testing.T) {
	tb := newWindowTable(time.Hour)
	day := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tb.put("daily", day, windowEntry{milli: 1, end: day.Add(24 * time.Hour)})
	for h := range 30 {
		start := day.Add(time.Duration(h) * time.Hour)
		tb.put("hourly", start, windowEntry{milli: 1, end: start.Add(time.Hour)})
	}
	// Newest start: day+29h. Hourly windows that ended before day+28h go,
	// as does the daily one (ended day+24h); day+27h..day+29h stay.
	if _, ok := tb.get("daily", day); ok {
		t.Errorf("daily window ended 5h before the newest start, want it dropped")
	}
	if got := tb.len(); got != 3 {
		t.Errorf("%d windows kept, want 3", got)
	}
	for _, h := range []int{27, 28, 29} {
		if _, ok := tb.get("hourly", day.Add(time.Duration(h)*time.Hour)); !ok {
			t.Errorf("hourly window +%dh dropped, want kept", h)
		}
	}
}

// TestFallbackConcurrent runs reservations and refunds from many goroutines
// while the primary comes and goes; under -race it checks the locking, and
// at the end the primary must count everything still outstanding.
func TestFallbackConcurrent(t *testing.T) {
	primary, local := newFakeStore(), newFakeBudget()
	f, _, _ := newTestFallback(t, primary, local, FallbackOptions{Policy: PolicyLocalShare, ExpectedRelays: 2})
	ctx := testCtx(t)
	const (
		workers = 20
		rounds  = 50
		cost    = 500
	)
	var (
		mu          sync.Mutex
		outstanding int64
		wg          sync.WaitGroup
	)
	stop := make(chan struct{})
	toggled := toggleOutages(primary, stop)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range rounds {
				k, err := f.Reserve(ctx, "op", window0, time.Hour, 1_000_000, cost, 1+(w+r)%3)
				if err != nil {
					t.Errorf("Reserve: %v", err)
					return
				}
				refund := int64(0)
				if r%4 == 0 && k > 0 {
					refund = cost
					_ = f.Refund(ctx, "op", window0, refund) // may fail: units stay counted
				}
				mu.Lock()
				outstanding += int64(k)*cost - refund
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(stop)
	<-toggled
	primary.setFail(nil)
	if _, err := f.Used(ctx, "op", window0); err != nil {
		t.Fatalf("Used after recovery: %v", err)
	}
	if p := primary.usedNow("op", window0); p < outstanding {
		t.Errorf("primary counts %d, less than the %d outstanding", p, outstanding)
	}
}

// toggleOutages flips primary between failing and working, a bounded
// number of times, until stop closes; the returned channel closes when it
// is done.
func toggleOutages(primary *fakeStore, stop <-chan struct{}) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 1000 {
			select {
			case <-stop:
				return
			default:
			}
			if i%2 == 0 {
				primary.setFail(errFakeDown)
			} else {
				primary.setFail(nil)
			}
		}
	}()
	return done
}
