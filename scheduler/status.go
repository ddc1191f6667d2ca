package scheduler

import (
	"context"
	"sort"
	"time"
)

// OperatorStatus is a point-in-time view of one operator, route policy or
// default destination, for sluice quota and metrics.
type OperatorStatus struct {
	Key               string
	Label             string
	Quota             int
	Window            time.Duration
	WindowStart       time.Time
	WindowEnd         time.Time
	UsedMilli         int64
	Spent             bool
	Queued            int
	QueuedByPriority  map[uint32]int // priority milli -> ready recipients
	QueuedCostMilli   int64
	Waiting           int            // deferred recipients not yet due
	WaitingByPriority map[uint32]int // the same, by priority milli
	InFlight          int
	Connections       int
	SuspendedUntil    time.Time
	SuspendReason     string
	ThrottleLevel     int
	DrainETA          time.Time // when the ready backlog should be sent, at quota pace
	// UsageError is set when the budget store could not say what the
	// window used (a shared store that is down); UsedMilli is then the
	// relay's own estimate.
	UsageError string
}

// Snapshot is what the loop knows at one moment.
type Snapshot struct {
	Now       time.Time
	Operators []OperatorStatus
	// Active holds the messages with a transaction in flight.
	Active map[uint64]bool
	// Domains maps recipient domains to the key of the operator they were
	// classified under (domains not seen yet are absent).
	Domains map[string]string
}

// Snapshot asks the loop for its current state. The usage of each
// operator's window is then read from the budget store itself, outside the
// loop, so that a shared store shows what every relay used.
func (s *Scheduler) Snapshot(ctx context.Context) (*Snapshot, error) {
	var snap *Snapshot
	if err := s.do(ctx, func() { snap = s.snapshot(s.clock.Now()) }); err != nil {
		return nil, err
	}
	for i := range snap.Operators {
		o := &snap.Operators[i]
		if o.Quota == 0 || o.WindowStart.IsZero() {
			continue
		}
		uctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		used, err := s.budget.Used(uctx, o.Key, o.WindowStart)
		cancel()
		if err != nil {
			o.UsageError = err.Error()
			continue
		}
		o.UsedMilli = used
	}
	return snap, nil
}

func (s *Scheduler) snapshot(now time.Time) *Snapshot {
	snap := &Snapshot{Now: now, Active: make(map[uint64]bool, len(s.active)), Domains: make(map[string]string, len(s.classes))}
	for seq := range s.active {
		snap.Active[seq] = true
	}
	for dom, dc := range s.classes {
		if dc.op != nil {
			snap.Domains[s.doms.name(dom)] = dc.op.key
		}
	}
	waiting := s.waitingByOp()
	for _, op := range s.pol.ops {
		if op.hasQuota() {
			s.refreshWindowQuiet(op, now)
		}
		st := OperatorStatus{
			Key: op.key, Label: op.label, Quota: op.limits.Quota, Window: op.limits.Window,
			WindowStart: op.window.Start, WindowEnd: op.window.End, UsedMilli: op.usedMilli, Spent: op.spent,
			Queued: op.ready.n, QueuedByPriority: op.ready.countByPrio(), QueuedCostMilli: op.ready.costMilli,
			InFlight: op.busy, Connections: op.conns,
			ThrottleLevel: op.throttle.level,
		}
		if wc := waiting[op]; wc != nil {
			st.Waiting, st.WaitingByPriority = wc.n, wc.byPrio
		}
		if now.Before(op.suspendedUntil) {
			st.SuspendedUntil, st.SuspendReason = op.suspendedUntil, op.suspendReason
		}
		st.DrainETA = drainETA(op, now)
		snap.Operators = append(snap.Operators, st)
	}
	sort.Slice(snap.Operators, func(i, j int) bool { return snap.Operators[i].Key < snap.Operators[j].Key })
	return snap
}

// refreshWindowQuiet moves op to the current window for display without
// logging a window opening twice.
func (s *Scheduler) refreshWindowQuiet(op *opState, now time.Time) {
	if op.window.Start.IsZero() || !op.window.Contains(now) {
		s.refreshWindow(op, now)
	}
}

// waitingByOp counts deferred recipients per operator and priority, as far
// as their domain's operator is known.
func (s *Scheduler) waitingByOp() map[*opState]*waitCount {
	out := make(map[*opState]*waitCount)
	for _, w := range s.waiting {
		dc := s.classes[w.dom]
		if dc == nil || dc.op == nil {
			continue
		}
		c := out[dc.op]
		if c == nil {
			c = &waitCount{byPrio: map[uint32]int{}}
			out[dc.op] = c
		}
		c.n++
		c.byPrio[w.prio]++
	}
	return out
}

type waitCount struct {
	n      int
	byPrio map[uint32]int
}

// drainETA estimates when op's ready backlog will have been sent, at one
// quota per window, starting with what is left of the current window.
func drainETA(op *opState, now time.Time) time.Time {
	if op.ready.n == 0 {
		return time.Time{}
	}
	if !op.hasQuota() {
		return now
	}
	need := op.ready.costMilli
	left := op.quotaMilli() - op.usedMilli
	if left < 0 {
		left = 0
	}
	if need <= left {
		return now
	}
	need -= left
	windows := (need + op.quotaMilli() - 1) / op.quotaMilli()
	end := op.window.End
	for i := int64(1); i < windows && i < 100000; i++ {
		end = WindowAt(end, op.limits.Window, op.limits.Location).End
	}
	return end
}
