package redisbudget

import (
	"context"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-mta/sluice/internal/testredis"
)

// skewTolerance bounds how far a measured skew may be from the injected
// offset: loopback round trips are far shorter, and Redis TIME has
// microsecond resolution.
const skewTolerance = 500 * time.Millisecond

func TestClockSkew(t *testing.T) {
	srv := testredis.Start(t)
	tests := []struct {
		name   string
		offset time.Duration
	}{
		{"ahead", 5 * time.Second},
		{"behind", -5 * time.Second},
		{"agreeing", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			now := func() time.Time { return time.Now().Add(tt.offset) }
			s := newTestStore(t, srv.URL(), Options{Now: now})
			skew, err := s.ClockSkew(testCtx(t))
			if err != nil {
				t.Fatalf("ClockSkew: %v", err)
			}
			if d := skew - tt.offset; d > skewTolerance || d < -skewTolerance {
				t.Errorf("ClockSkew = %v, want %v ± %v", skew, tt.offset, skewTolerance)
			}
		})
	}
}

func TestMonitorClockLogsOncePerChange(t *testing.T) {
	srv := testredis.Start(t)
	var offset atomic.Int64
	offset.Store(int64(5 * time.Second))
	logs := &logCapture{}
	s := newTestStore(t, srv.URL(), Options{
		Now:    func() time.Time { return time.Now().Add(time.Duration(offset.Load())) },
		Logger: newTestLogger(t, logs),
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	skews := make(chan time.Duration)
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.MonitorClock(ctx, time.Second, 5*time.Millisecond, func(d time.Duration) {
			select {
			case skews <- d:
			case <-ctx.Done():
			}
		})
	}()
	// Several skewed measurements, then several agreeing ones.
	waitSkews(t, skews, 4, func(d time.Duration) bool { return d > time.Second })
	offset.Store(0)
	waitSkews(t, skews, 4, func(d time.Duration) bool { return d < time.Second && d > -time.Second })
	cancel()
	waitDone(t, done, "MonitorClock to return after cancel")
	if n := logs.count(slog.LevelWarn, "clock differs from redis"); n != 1 {
		t.Errorf("%d skew warnings, want 1", n)
	}
	if n := logs.count(slog.LevelInfo, "clock agrees with redis again"); n != 1 {
		t.Errorf("%d recovery lines, want 1", n)
	}
}

func TestMonitorClockSurvivesOutage(t *testing.T) {
	logs := &logCapture{}
	s := newTestStore(t, "redis://"+closedAddr(t), Options{Timeout: shortTimeout, Logger: newTestLogger(t, logs)})
	ctx, cancel := context.WithCancel(context.Background())
	called := make(chan time.Duration, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.MonitorClock(ctx, time.Second, 5*time.Millisecond, func(d time.Duration) { called <- d })
	}()
	// Let a few checks fail: each logs one Debug line.
	deadline := time.After(waitLimit)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for logs.count(slog.LevelDebug, "clock check against redis failed") < 3 {
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatalf("no failed clock checks logged within %v", waitLimit)
		}
	}
	cancel()
	waitDone(t, done, "MonitorClock to return after cancel")
	select {
	case d := <-called:
		t.Errorf("onSkew called with %v while Redis was down, want no call", d)
	default:
	}
	if n := logs.count(slog.LevelWarn, ""); n != 0 {
		t.Errorf("%d Warn lines while Redis was down, want 0 (outages are Fallback's to report)", n)
	}
}

// waitSkews reads measurements until want consecutive ones satisfy ok.
func waitSkews(t *testing.T, skews <-chan time.Duration, want int, ok func(time.Duration) bool) {
	t.Helper()
	deadline := time.NewTimer(waitLimit)
	defer deadline.Stop()
	for got := 0; got < want; {
		select {
		case d := <-skews:
			if ok(d) {
				got++
			} else {
				got = 0
			}
		case <-deadline.C:
			t.Fatalf("no %d matching clock measurements within %v", want, waitLimit)
		}
	}
}

func waitDone(t *testing.T, done <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-done:
	case <-time.After(waitLimit):
		t.Fatalf("waited %v for %s", waitLimit, what)
	}
}
