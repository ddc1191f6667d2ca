package redisbudget

import (
	"context"
	"errors"
	"testing"
	"time"
)

// shortTimeout is the Store timeout in the tests of dead and silent
// servers. The assertions bound each call at boundFactor times it: a hang
// bound, not a performance measurement.
const (
	shortTimeout = 100 * time.Millisecond
	boundFactor  = 10
)

// calls lists every Store method that talks to Redis.
func storeCalls(s *Store) []struct {
	name string
	call func(ctx context.Context) error
} {
	return []struct {
		name string
		call func(ctx context.Context) error
	}{
		{"reserve", func(ctx context.Context) error {
			_, err := s.Reserve(ctx, "op", window0, time.Hour, 10_000, 1000, 1)
			return err
		}},
		{"refund", func(ctx context.Context) error { return s.Refund(ctx, "op", window0, 1000) }},
		{"used", func(ctx context.Context) error { _, err := s.Used(ctx, "op", window0); return err }},
		{"charge", func(ctx context.Context) error { return s.charge(ctx, "op", window0, time.Hour, 1000) }},
		{"clock skew", func(ctx context.Context) error { _, err := s.ClockSkew(ctx); return err }},
	}
}

func TestSilentRedisTimesOut(t *testing.T) {
	s := newTestStore(t, "redis://"+startSilentServer(t)+"/0", Options{Timeout: shortTimeout})
	for _, tt := range storeCalls(s) {
		t.Run(tt.name, func(t *testing.T) {
			checkBoundedFailure(t, tt.call)
		})
	}
}

func TestRefusedRedisFailsFast(t *testing.T) {
	s := newTestStore(t, "redis://"+closedAddr(t)+"/0", Options{Timeout: shortTimeout})
	for _, tt := range storeCalls(s) {
		t.Run(tt.name, func(t *testing.T) {
			checkBoundedFailure(t, tt.call)
		})
	}
}

// checkBoundedFailure runs call with no deadline of its own and checks it
// fails with ErrUnavailable within boundFactor timeouts.
func checkBoundedFailure(t *testing.T, call func(ctx context.Context) error) {
	t.Helper()
	done := make(chan error, 1)
	began := time.Now()
	go func() { done <- call(context.Background()) }()
	limit := time.NewTimer(boundFactor * shortTimeout)
	defer limit.Stop()
	select {
	case err := <-done:
		if !errors.Is(err, ErrUnavailable) {
			t.Errorf("err = %v, want one wrapping ErrUnavailable", err)
		}
		t.Logf("failed after %v: %v", time.Since(began), err)
	case <-limit.C:
		t.Errorf("call still running after %v (timeout %v)", boundFactor*shortTimeout, shortTimeout)
		select {
		case <-done: // let it finish so that it cannot log after the test
		case <-time.After(waitLimit):
		}
	}
}

func TestCallerDeadlineShorterThanTimeout(t *testing.T) {
	s := newTestStore(t, "redis://"+startSilentServer(t)+"/0", Options{Timeout: waitLimit})
	ctx, cancel := context.WithTimeout(context.Background(), shortTimeout)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := s.Reserve(ctx, "op", window0, time.Hour, 10, 1, 1)
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, ErrUnavailable) {
			t.Errorf("err = %v, want a deadline error", err)
		}
	case <-time.After(boundFactor * shortTimeout):
		t.Fatalf("Reserve ignored the caller's deadline of %v", shortTimeout)
	}
}
