package redisbudget

import (
	"context"
	"fmt"
	"time"
)

// DefaultClockCheckEvery is MonitorClock's period when none is given.
const DefaultClockCheckEvery = time.Minute

// Relays that share Redis keys must agree on which window is current:
// each computes window starts from its own clock, so a relay whose clock is
// off by more than the window guard charges, and sends in, a neighbouring
// window. Redis's TIME is the one reference every relay can read.

// ClockSkew returns how far the relay's clock (Options.Now) is ahead of
// Redis's TIME; negative means behind. The relay's reading is taken at the
// midpoint of the round trip, so network delay does not count as skew.
func (s *Store) ClockSkew(ctx context.Context) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	local := s.now()
	sent := time.Now() // monotonic, for the round trip only
	remote, err := s.client.Time(ctx).Result()
	rtt := time.Since(sent)
	if err != nil {
		return 0, fmt.Errorf("redisbudget: read redis time: %w: %w", ErrUnavailable, err)
	}
	return local.Add(rtt / 2).Sub(remote), nil
}

// MonitorClock checks the skew at once and then every every (default one
// minute) until ctx ends; it blocks, so run it in its own goroutine. Each
// measurement is passed to onSkew (nil: none), for a metric. When |skew|
// exceeds maxSkew it logs one Warn line, and one Info line when the clocks
// agree again; nothing in between, however many checks run. maxSkew <= 0
// turns the log lines off. A failed check is logged at Debug and changes
// nothing: Redis outages are reported by Fallback.
func (s *Store) MonitorClock(ctx context.Context, maxSkew, every time.Duration, onSkew func(skew time.Duration)) {
	if every <= 0 {
		every = DefaultClockCheckEvery
	}
	m := clockMonitor{s: s, maxSkew: maxSkew, onSkew: onSkew}
	m.check(ctx)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			m.check(ctx)
		}
	}
}

// clockMonitor is MonitorClock's state; only its goroutine touches it.
type clockMonitor struct {
	s       *Store
	maxSkew time.Duration
	onSkew  func(time.Duration)
	skewed  bool // whether the last warning line said "skewed"
}

func (m *clockMonitor) check(ctx context.Context) {
	skew, err := m.s.ClockSkew(ctx)
	if err != nil {
		if ctx.Err() == nil {
			m.s.log.Debug("clock check against redis failed", "error", err)
		}
		return
	}
	if m.onSkew != nil {
		m.onSkew(skew)
	}
	if m.maxSkew <= 0 {
		return
	}
	over := skew > m.maxSkew || skew < -m.maxSkew
	switch {
	case over && !m.skewed:
		m.s.log.Warn("clock differs from redis by more than max_clock_skew; relays may charge neighbouring windows",
			"skew", skew, "max_skew", m.maxSkew)
	case !over && m.skewed:
		m.s.log.Info("clock agrees with redis again", "skew", skew, "max_skew", m.maxSkew)
	}
	m.skewed = over
}
