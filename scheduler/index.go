package scheduler

import (
	"sort"
	"time"
)

// entry is one pending recipient in the in-memory index. It is kept small
// (24 bytes) because a backlog can hold millions: everything else about the
// recipient is read from the store when it is dispatched.
type entry struct {
	seq     uint64 // message
	arrival int64  // message arrival, Unix nanoseconds: the age order
	idx     uint32 // recipient index within the message
	dom     uint32 // interned recipient domain
}

// before orders entries oldest first; entries of one message stay adjacent
// and in recipient order.
func (a entry) before(b entry) bool {
	if a.arrival != b.arrival {
		return a.arrival < b.arrival
	}
	if a.seq != b.seq {
		return a.seq < b.seq
	}
	return a.idx < b.idx
}

// ageHeap is a min-heap of entries by age.
type ageHeap = minHeap[entry]

// readyQueue holds one operator's recipients that may be sent now, one age
// heap per declared priority. Picking compares the heads: the oldest of each
// priority is the one that has aged most, so the head with the highest
// effective priority (ties: the oldest) is the right next recipient. The
// number of distinct priorities is small, so a pick costs a few comparisons
// plus one heap pop.
type readyQueue struct {
	classes   map[uint32]*ageHeap
	prios     []uint32 // keys of classes, highest first
	n         int
	costMilli int64 // summed cost of every entry, for backlog admission
}

func (q *readyQueue) push(prio uint32, e entry) {
	if q.classes == nil {
		q.classes = make(map[uint32]*ageHeap)
	}
	h := q.classes[prio]
	if h == nil {
		h = new(ageHeap)
		q.classes[prio] = h
		q.prios = append(q.prios, prio)
		sort.Slice(q.prios, func(i, j int) bool { return q.prios[i] > q.prios[j] })
	}
	h.push(e)
	q.n++
	q.costMilli += CostMilli(prio)
}

// best returns the priority class whose head goes next at now.
func (q *readyQueue) best(now time.Time, aging time.Duration) (uint32, bool) {
	var bestPrio uint32
	var bestEff int64
	var bestHead entry
	found := false
	for _, p := range q.prios {
		h := *q.classes[p]
		if len(h) == 0 {
			continue
		}
		head := h[0]
		eff := EffectivePriorityMilli(p, time.Unix(0, head.arrival), now, aging)
		if !found || eff > bestEff || (eff == bestEff && head.before(bestHead)) {
			bestPrio, bestEff, bestHead, found = p, eff, head, true
		}
		if aging <= 0 {
			break // without aging the highest non-empty class wins outright
		}
	}
	return bestPrio, found
}

// pop removes the head of class prio.
func (q *readyQueue) pop(prio uint32) entry {
	e := q.classes[prio].pop()
	q.n--
	q.costMilli -= CostMilli(prio)
	return e
}

// popMessage removes the head of class prio and every entry behind it
// that belongs to the same message (they are adjacent in age order), so
// the caller can group one message's recipients by domain.
func (q *readyQueue) popMessage(prio uint32) []entry {
	first := q.pop(prio)
	batch := []entry{first}
	h := q.classes[prio]
	for len(*h) > 0 && (*h)[0].seq == first.seq {
		batch = append(batch, q.pop(prio))
	}
	return batch
}

// countByPrio returns how many entries wait in each priority class.
func (q *readyQueue) countByPrio() map[uint32]int {
	out := make(map[uint32]int, len(q.prios))
	for _, p := range q.prios {
		if n := len(*q.classes[p]); n > 0 {
			out[p] = n
		}
	}
	return out
}

// filter drops entries for which keep is false and returns them with their
// priority.
func (q *readyQueue) filter(keep func(entry) bool) []prioEntry {
	var out []prioEntry
	for _, p := range q.prios {
		for _, e := range q.classes[p].filter(keep) {
			out = append(out, prioEntry{prio: p, entry: e})
			q.n--
			q.costMilli -= CostMilli(p)
		}
	}
	return out
}

type prioEntry struct {
	prio uint32
	entry
}

// waitEntry is a recipient that may not be tried before at.
type waitEntry struct {
	at   int64 // Unix nanoseconds
	prio uint32
	entry
}

// before orders waiting recipients by due time, then age.
//
//lint:ignore U1000 called through minHeap's type constraint (staticcheck does not see it)
func (w waitEntry) before(o waitEntry) bool {
	if w.at != o.at {
		return w.at < o.at
	}
	return w.entry.before(o.entry)
}

// waitHeap is a min-heap of waiting recipients by due time.
type waitHeap = minHeap[waitEntry]

// domains interns recipient domains so an entry carries 4 bytes, not a
// string.
type domains struct {
	names []string
	ids   map[string]uint32
}

func (d *domains) id(name string) uint32 {
	if d.ids == nil {
		d.ids = make(map[string]uint32)
	}
	if id, ok := d.ids[name]; ok {
		return id
	}
	id := uint32(len(d.names))
	d.names = append(d.names, name)
	d.ids[name] = id
	return id
}

func (d *domains) name(id uint32) string { return d.names[id] }
