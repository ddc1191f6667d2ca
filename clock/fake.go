package clock

import (
	"sort"
	"sync"
	"time"
)

// Fake is a Clock that stands still until Advance or Set moves it. Timers
// whose deadline is reached fire in deadline order (ties in creation order),
// each on a channel with room for one value, like time.Timer.
type Fake struct {
	mu      sync.Mutex
	now     time.Time
	seq     uint64
	timers  map[*fakeTimer]struct{}
	changed chan struct{} // closed and replaced whenever a timer is armed
}

// NewFake returns a Fake clock reading start.
func NewFake(start time.Time) *Fake {
	return &Fake{now: start, timers: make(map[*fakeTimer]struct{}), changed: make(chan struct{})}
}

// Now returns the fake time.
func (f *Fake) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

// NewTimer arms a timer that fires when the fake time reaches Now()+d. A
// timer with d <= 0 fires at once.
func (f *Fake) NewTimer(d time.Duration) Timer {
	t := &fakeTimer{f: f, c: make(chan time.Time, 1)}
	f.mu.Lock()
	f.armLocked(t, d)
	f.mu.Unlock()
	return t
}

// Advance moves the clock forward by d, firing due timers in order.
func (f *Fake) Advance(d time.Duration) {
	f.mu.Lock()
	target := f.now.Add(d)
	f.mu.Unlock()
	f.Set(target)
}

// Set moves the clock to t, which may be earlier than now (a wall-clock step
// backwards). Timers due at or before t fire in deadline order, and the clock
// reads each timer's deadline while it fires.
func (f *Fake) Set(t time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for {
		next := f.nextDueLocked(t)
		if next == nil {
			break
		}
		if next.when.After(f.now) {
			f.now = next.when
		}
		delete(f.timers, next)
		select {
		case next.c <- f.now:
		default:
		}
	}
	f.now = t
}

// Pending returns the number of armed timers.
func (f *Fake) Pending() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.timers)
}

// NextDeadline returns the earliest armed timer's deadline, if any.
func (f *Fake) NextDeadline() (time.Time, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	ts := f.sortedLocked()
	if len(ts) == 0 {
		return time.Time{}, false
	}
	return ts[0].when, true
}

// Armed returns a channel that is closed the next time a timer is armed or
// reset, so a test can wait for a goroutine to go to sleep on the clock.
func (f *Fake) Armed() <-chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.changed
}

func (f *Fake) armLocked(t *fakeTimer, d time.Duration) {
	f.seq++
	t.when = f.now.Add(d)
	t.seq = f.seq
	if d <= 0 {
		select {
		case t.c <- f.now:
		default:
		}
		return
	}
	f.timers[t] = struct{}{}
	close(f.changed)
	f.changed = make(chan struct{})
}

func (f *Fake) nextDueLocked(limit time.Time) *fakeTimer {
	var best *fakeTimer
	for t := range f.timers {
		if t.when.After(limit) {
			continue
		}
		if best == nil || t.when.Before(best.when) || (t.when.Equal(best.when) && t.seq < best.seq) {
			best = t
		}
	}
	return best
}

func (f *Fake) sortedLocked() []*fakeTimer {
	ts := make([]*fakeTimer, 0, len(f.timers))
	for t := range f.timers {
		ts = append(ts, t)
	}
	sort.Slice(ts, func(i, j int) bool {
		if !ts[i].when.Equal(ts[j].when) {
			return ts[i].when.Before(ts[j].when)
		}
		return ts[i].seq < ts[j].seq
	})
	return ts
}

type fakeTimer struct {
	f    *Fake
	c    chan time.Time
	when time.Time
	seq  uint64
}

func (t *fakeTimer) C() <-chan time.Time { return t.c }

// Stop and Reset discard a value already fired but not yet received, as
// time.Timer does since Go 1.23, so no stale tick follows them.
func (t *fakeTimer) Stop() bool {
	t.f.mu.Lock()
	defer t.f.mu.Unlock()
	_, ok := t.f.timers[t]
	delete(t.f.timers, t)
	t.drain()
	return ok
}

func (t *fakeTimer) Reset(d time.Duration) bool {
	t.f.mu.Lock()
	defer t.f.mu.Unlock()
	_, ok := t.f.timers[t]
	delete(t.f.timers, t)
	t.drain()
	t.f.armLocked(t, d)
	return ok
}

func (t *fakeTimer) ResetAt(at time.Time) bool {
	t.f.mu.Lock()
	defer t.f.mu.Unlock()
	_, ok := t.f.timers[t]
	delete(t.f.timers, t)
	t.drain()
	t.f.armLocked(t, at.Sub(t.f.now))
	return ok
}

func (t *fakeTimer) drain() {
	select {
	case <-t.c:
	default:
	}
}
