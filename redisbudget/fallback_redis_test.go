package redisbudget

import (
	"errors"
	"slices"
	"testing"
	"time"
)

// retryEvery spaces the attempts while waiting for a restarted Redis.
const retryEvery = 20 * time.Millisecond

// reserveUntilOK retries Reserve until it succeeds, within waitLimit, and
// returns the units granted.
func reserveUntilOK(t *testing.T, f *Fallback, op string, quota, cost int64, n int) int {
	t.Helper()
	ctx := testCtx(t)
	deadline := time.NewTimer(waitLimit)
	defer deadline.Stop()
	tick := time.NewTicker(retryEvery)
	defer tick.Stop()
	for {
		k, err := f.Reserve(ctx, op, window0, time.Hour, quota, cost, n)
		if err == nil {
			return k
		}
		if !errors.Is(err, ErrUnavailable) {
			t.Fatalf("Reserve: %v, want success or ErrUnavailable", err)
		}
		select {
		case <-tick.C:
		case <-deadline.C:
			t.Fatalf("Reserve still failing %v after Restart: %v", waitLimit, err)
		}
	}
}

func TestFallbackPauseRecoversWithRealRedis(t *testing.T) {
	srv, s := newTestRedis(t)
	f, logs, events := newTestFallback(t, s, nil, FallbackOptions{Policy: PolicyPause})
	ctx := testCtx(t)
	if k, err := f.Reserve(ctx, "op", window0, time.Hour, 10_000, 1000, 2); err != nil || k != 2 {
		t.Fatalf("Reserve = %d, %v; want 2, nil", k, err)
	}
	srv.Stop()
	for i := range 5 {
		k, err := f.Reserve(ctx, "op", window0, time.Hour, 10_000, 1000, 1)
		if k != 0 || !errors.Is(err, ErrUnavailable) {
			t.Fatalf("Reserve %d with Redis stopped = %d, %v; want 0, ErrUnavailable", i, k, err)
		}
	}
	if _, err := f.Used(ctx, "op", window0); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Used with Redis stopped: %v, want ErrUnavailable", err)
	}
	srv.Restart()
	// The restarted Redis has forgotten the window (no persistence in
	// tests), so it grants from zero.
	if k := reserveUntilOK(t, f, "op", 10_000, 1000, 3); k != 3 {
		t.Errorf("Reserve after Restart granted %d, want 3", k)
	}
	if k, err := f.Reserve(ctx, "op", window0, time.Hour, 10_000, 1000, 1); err != nil || k != 1 {
		t.Errorf("second Reserve after Restart = %d, %v; want 1, nil", k, err)
	}
	checkOutageLines(t, logs, 1, 1)
	if got, want := events.list(), []bool{true, false}; !slices.Equal(got, want) {
		t.Errorf("OnOutage calls = %v, want %v", got, want)
	}
}

func TestFallbackLocalShareWithRealRedis(t *testing.T) {
	srv, s := newTestRedis(t)
	local := newFakeBudget()
	f, logs, _ := newTestFallback(t, s, local, FallbackOptions{Policy: PolicyLocalShare, ExpectedRelays: 2})
	ctx := testCtx(t)
	if k, err := f.Reserve(ctx, "op", window0, time.Hour, 10_000, 1000, 2); err != nil || k != 2 {
		t.Fatalf("Reserve = %d, %v; want 2, nil", k, err)
	}
	srv.Stop()
	// Redis last said 2000 used: each of 2 relays may spend (10000-2000)/2.
	k, err := f.Reserve(ctx, "op", window0, time.Hour, 10_000, 1000, 10)
	if err != nil || k != 4 {
		t.Fatalf("Reserve with Redis stopped = %d, %v; want 4 from the local share, nil", k, err)
	}
	srv.Restart()
	// The first call after the outage charges the 4000 granted locally
	// into the (empty) restarted Redis before reserving.
	if k := reserveUntilOK(t, f, "op", 10_000, 1000, 1); k != 1 {
		t.Errorf("Reserve after Restart granted %d, want 1", k)
	}
	used, err := srv.Client().Get(ctx, Key("op", window0)).Int64()
	if err != nil || used != 5000 {
		t.Errorf("Redis holds %d, %v; want 5000 (4000 charged + 1000 reserved), nil", used, err)
	}
	checkOutageLines(t, logs, 1, 1)
}
