package scheduler

import (
	"sort"
	"time"
)

// Window is one budget period of an operator: [Start, End).
type Window struct {
	Start, End time.Time
}

// Contains reports whether t falls inside the window.
func (w Window) Contains(t time.Time) bool {
	return !t.Before(w.Start) && t.Before(w.End)
}

// WindowAt returns the window of the given length that contains t, aligned
// to the wall clock in loc: a 1h window starts at every full hour of local
// time (at :30 UTC in Asia/Kolkata), a 24h window at local midnight. length
// is a whole number of seconds that divides 24h.
//
// A window is a maximal run of instants whose local time falls in the same
// aligned slot. Across daylight-saving changes this means: after a spring
// jump the new window starts at the jump (the day is 23h long), and when
// the clock falls back into the same slot (02:59:59 CEST, then 02:00:00
// CET for a 1h window) the slot continues, so the repeated hour shares one
// budget with the first. That is the reading under which an operator that
// counts by its own wall clock can never see more than its quota.
func WindowAt(t time.Time, length time.Duration, loc *time.Location) Window {
	if loc == nil {
		loc = time.UTC
	}
	z := zoneView{loc: loc, sec: max(int64(length/time.Second), 1)}
	u := t.Unix()
	z.trans = transitions(loc, u-2*z.sec-3*3600, u+2*z.sec+3*3600)
	slot := z.slot(u)
	return Window{
		Start: time.Unix(z.start(u, slot), 0).UTC(),
		End:   time.Unix(z.end(u, slot), 0).UTC(),
	}
}

type zoneView struct {
	loc   *time.Location
	sec   int64
	trans []int64 // instants (Unix seconds) at which the zone offset changes
}

func (z *zoneView) offset(u int64) int64 {
	_, off := time.Unix(u, 0).In(z.loc).Zone()
	return int64(off)
}

// slot is the index of the aligned local-time slot holding instant u.
func (z *zoneView) slot(u int64) int64 {
	return floorDiv(u+z.offset(u), z.sec)
}

// start walks back from u through offset segments to the first instant of
// the run of slot.
func (z *zoneView) start(u, slot int64) int64 {
	for range 8 {
		segStart, ok := z.lastTransitionAtOrBefore(u)
		b := slot*z.sec - z.offset(u) // where local time reaches the slot in this segment
		if !ok || b > segStart {
			return b
		}
		if z.slot(segStart-1) != slot {
			return segStart
		}
		u = segStart - 1
	}
	return u
}

// end walks forward from u to the first instant after the run of slot.
func (z *zoneView) end(u, slot int64) int64 {
	for range 8 {
		segEnd, ok := z.firstTransitionAfter(u)
		b := (slot+1)*z.sec - z.offset(u)
		if !ok || b < segEnd {
			return b
		}
		if z.slot(segEnd) != slot {
			return segEnd
		}
		u = segEnd
	}
	return u + 1
}

func (z *zoneView) lastTransitionAtOrBefore(u int64) (int64, bool) {
	i := sort.Search(len(z.trans), func(i int) bool { return z.trans[i] > u })
	if i == 0 {
		return 0, false
	}
	return z.trans[i-1], true
}

func (z *zoneView) firstTransitionAfter(u int64) (int64, bool) {
	i := sort.Search(len(z.trans), func(i int) bool { return z.trans[i] > u })
	if i == len(z.trans) {
		return 0, false
	}
	return z.trans[i], true
}

// transitions lists the instants in (from, to] at which loc's offset
// changes, found by hourly sampling and bisection to the second. Zones do
// not change offset twice within an hour.
func transitions(loc *time.Location, from, to int64) []int64 {
	if loc == time.UTC {
		return nil
	}
	off := func(u int64) int {
		_, o := time.Unix(u, 0).In(loc).Zone()
		return o
	}
	var out []int64
	prev, prevOff := from, off(from)
	for u := from + 3600; ; u += 3600 {
		u = min(u, to)
		if o := off(u); o != prevOff {
			lo, hi := prev, u // off(lo) = prevOff, off(hi) != prevOff
			for hi-lo > 1 {
				mid := lo + (hi-lo)/2
				if off(mid) == prevOff {
					lo = mid
				} else {
					hi = mid
				}
			}
			out = append(out, hi)
			prevOff = o
		}
		prev = u
		if u >= to {
			return out
		}
	}
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}
