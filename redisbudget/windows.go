package redisbudget

import "time"

// windowKey names one operator's window by its start in Unix seconds, as
// the Redis keys do.
type windowKey struct {
	op    string
	start int64
}

func keyOf(op string, start time.Time) windowKey {
	return windowKey{op: op, start: start.Unix()}
}

// windowEntry is a milli-unit figure kept for one window, with the window's
// end so that it can be forgotten once the window is long over.
type windowEntry struct {
	milli int64
	end   time.Time
}

// windowTable holds per-window figures in memory. It ages by the newest
// window start it has seen rather than by a clock, so that it follows the
// scheduler's (possibly fake) time: an entry is dropped once its window
// ended more than keep before the newest start seen. A current window
// always ends after the newest start, so it is never dropped. It is not
// safe for concurrent use; its owner locks.
type windowTable struct {
	keep   time.Duration
	newest time.Time
	m      map[windowKey]windowEntry
}

func newWindowTable(keep time.Duration) *windowTable {
	return &windowTable{keep: keep, m: make(map[windowKey]windowEntry)}
}

func (t *windowTable) get(op string, start time.Time) (windowEntry, bool) {
	e, ok := t.m[keyOf(op, start)]
	return e, ok
}

// put stores e for op's window and ages the table if start is the newest
// window seen.
func (t *windowTable) put(op string, start time.Time, e windowEntry) {
	t.m[keyOf(op, start)] = e
	t.age(start)
}

// age drops the entries of windows that ended more than keep before start,
// when start is newer than any start seen so far.
func (t *windowTable) age(start time.Time) {
	if !start.After(t.newest) {
		return
	}
	t.newest = start
	cutoff := start.Add(-t.keep)
	for k, e := range t.m {
		if e.end.Before(cutoff) {
			delete(t.m, k)
		}
	}
}

// len reports how many windows are held, for tests.
func (t *windowTable) len() int { return len(t.m) }
