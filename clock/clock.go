// Package clock is the single source of time for sluice. Production code gets
// Real; tests get a Fake that only moves when told to, so windows, backoff and
// expiry can be exercised over simulated days in milliseconds.
//
// It must not import any other sluice package.
package clock

import "time"

// Clock tells the time and makes timers.
type Clock interface {
	Now() time.Time
	NewTimer(d time.Duration) Timer
}

// Timer is the subset of *time.Timer that sluice uses.
type Timer interface {
	// C delivers the time at which the timer fired.
	C() <-chan time.Time
	// Stop prevents the timer from firing; it reports whether it was active.
	Stop() bool
	// Reset rearms the timer to fire after d; it reports whether it was active.
	Reset(d time.Duration) bool
	// ResetAt rearms the timer to fire when the clock reads at. Unlike
	// Reset, the deadline does not depend on when the call runs, which
	// keeps a loop's wake-up exact while a test moves a fake clock.
	ResetAt(at time.Time) bool
}

// Real is the wall clock.
type Real struct{}

// Now returns time.Now().
func (Real) Now() time.Time { return time.Now() }

// NewTimer wraps time.NewTimer.
func (Real) NewTimer(d time.Duration) Timer { return realTimer{time.NewTimer(d)} }

type realTimer struct{ t *time.Timer }

func (r realTimer) C() <-chan time.Time        { return r.t.C }
func (r realTimer) Stop() bool                 { return r.t.Stop() }
func (r realTimer) Reset(d time.Duration) bool { return r.t.Reset(d) }
func (r realTimer) ResetAt(at time.Time) bool  { return r.t.Reset(time.Until(at)) }
