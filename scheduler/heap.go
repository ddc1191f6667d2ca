package scheduler

// minHeap is a binary min-heap of values ordered by their before method.
// The index, the retry heap and the timers all use it; values are stored
// inline (no pointers), which keeps a million queued recipients cheap.
type minHeap[T interface{ before(T) bool }] []T

func (h *minHeap[T]) push(x T) {
	*h = append(*h, x)
	s := *h
	for i := len(s) - 1; i > 0; {
		p := (i - 1) / 2
		if !s[i].before(s[p]) {
			break
		}
		s[i], s[p] = s[p], s[i]
		i = p
	}
}

// pop removes and returns the smallest value; the heap must not be empty.
func (h *minHeap[T]) pop() T {
	s := *h
	top := s[0]
	n := len(s) - 1
	s[0] = s[n]
	*h = s[:n]
	h.down(0)
	return top
}

func (h minHeap[T]) down(i int) {
	n := len(h)
	for {
		l := 2*i + 1
		if l >= n {
			return
		}
		m := l
		if r := l + 1; r < n && h[r].before(h[l]) {
			m = r
		}
		if !h[m].before(h[i]) {
			return
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
}

// filter keeps the values for which keep is true, restores the heap
// order, and returns the others.
func (h *minHeap[T]) filter(keep func(T) bool) (removed []T) {
	s := *h
	out := s[:0]
	for _, x := range s {
		if keep(x) {
			out = append(out, x)
		} else {
			removed = append(removed, x)
		}
	}
	for i := len(out)/2 - 1; i >= 0; i-- {
		out.down(i)
	}
	*h = out
	return removed
}
