package scheduler

import (
	"context"
	"time"

	"github.com/sluice-mta/sluice/config"
	"github.com/sluice-mta/sluice/delivery"
)

// budgetRetry is how soon an operator whose budget store failed is tried
// again. Its mail waits meanwhile; nothing is attempted.
const budgetRetry = 5 * time.Second

// dispatch starts as many transactions for op as its limits allow at now,
// and arranges to be called again when the next limit lifts.
func (s *Scheduler) dispatch(op *opState, now time.Time) {
	if s.stopping || op.ready.n == 0 {
		return
	}
	if now.Before(op.suspendedUntil) {
		s.wakeOpAt(op, op.suspendedUntil)
		return
	}
	if op.hasQuota() {
		if wake, ok := s.inSendableWindow(op, now); !ok {
			s.wakeOpAt(op, wake)
			return
		}
	}
	for op.ready.n > 0 {
		if d := op.rateDelay(); d > 0 && !op.lastStart.IsZero() && now.Before(op.lastStart.Add(d)) {
			s.wakeOpAt(op, op.lastStart.Add(d))
			return
		}
		if op.busy >= op.maxConns() || s.globalFull(op) {
			return // a finishing transaction marks op dirty again
		}
		prio, _ := op.ready.best(now, op.limits.PriorityAging)
		batch := op.ready.popMessage(prio)
		if !s.startMessage(op, prio, batch, now) {
			return
		}
	}
}

// inSendableWindow refreshes op's window at now and tells whether a new
// transaction may start: not within the guard band at either edge, and
// budget left. If not, it returns when to look again.
func (s *Scheduler) inSendableWindow(op *opState, now time.Time) (time.Time, bool) {
	s.refreshWindow(op, now)
	g := op.guard()
	switch {
	case now.Before(op.window.Start.Add(g)):
		return op.window.Start.Add(g), false
	case !now.Before(op.window.End.Add(-g)):
		return op.window.End.Add(g), false
	case op.budgetDownUntil.After(now):
		return op.budgetDownUntil, false
	case op.quotaMilli()-op.usedMilli < CostMilli(op.cheapestPrio()):
		s.noteSpent(op)
		return op.window.End.Add(g), false
	}
	return time.Time{}, true
}

// refreshWindow moves op to the window holding now, reading what the budget
// store says was already used there (by us before a restart, or by other
// relays).
func (s *Scheduler) refreshWindow(op *opState, now time.Time) {
	if !op.window.Start.IsZero() && op.window.Contains(now) {
		return
	}
	had := !op.window.Start.IsZero()
	op.window = WindowAt(now, op.limits.Window, op.limits.Location)
	op.spent = false
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	used, err := s.budget.Used(ctx, op.key, op.window.Start)
	cancel()
	if err != nil {
		s.log.Warn("cannot read budget usage", "operator", op.key, "err", err)
		used = 0
	}
	op.usedMilli = used
	s.events.Budget(op.label, op.usedMilli, op.quotaMilli(), op.window.End)
	if had && op.ready.n > 0 {
		s.log.Info("budget window opened", "operator", op.key,
			"window_start", op.window.Start.Format(time.RFC3339), "window_end", op.window.End.Format(time.RFC3339),
			"quota", op.limits.Quota, "used", formatUnits(used), "backlog", op.ready.n)
	}
}

// noteSpent logs, once per window, that op's budget ran out.
func (s *Scheduler) noteSpent(op *opState) {
	if op.spent {
		return
	}
	op.spent = true
	s.log.Info("budget exhausted", "operator", op.key, "quota", op.limits.Quota,
		"used", formatUnits(op.usedMilli), "backlog", op.ready.n,
		"next_window", op.window.End.Format(time.RFC3339))
}

// cheapestPrio is the highest priority waiting (the cheapest recipient);
// if not even that fits, the window is spent.
func (o *opState) cheapestPrio() uint32 {
	for _, p := range o.ready.prios {
		if len(*o.ready.classes[p]) > 0 {
			return p
		}
	}
	return UnitMilli
}

// startMessage turns one message's ready recipients at op into
// transactions, one per domain and at most max_recipients_per_transaction
// each, as far as limits allow; what cannot start now goes back to the
// ready queue. It reports whether dispatching op may continue.
func (s *Scheduler) startMessage(op *opState, prio uint32, batch []entry, now time.Time) bool {
	maxRcpts := op.limits.MaxRecipientsPerTransaction
	if op.limits.VERP && op.limits.EnvelopeFrom != "" {
		maxRcpts = 1 // each recipient has its own return path
	}
	groups := groupByDomain(batch, maxRcpts)
	cost := CostMilli(prio)
	for gi, g := range groups {
		ok := op.busy < op.maxConns() && !s.globalFull(op)
		if ok && gi > 0 {
			if d := op.rateDelay(); d > 0 && now.Before(op.lastStart.Add(d)) {
				s.wakeOpAt(op, op.lastStart.Add(d))
				ok = false
			}
		}
		n := len(g)
		if ok && op.hasQuota() {
			n = int(min(int64(n), (op.quotaMilli()-op.usedMilli)/cost))
			if n == 0 {
				s.noteSpent(op)
				s.wakeOpAt(op, op.window.End.Add(op.guard()))
				ok = false
			}
		}
		if !ok {
			for _, rest := range groups[gi:] {
				s.pushBack(op, prio, rest)
			}
			return false
		}
		s.pushBack(op, prio, g[n:])
		s.startJob(op, prio, g[:n], now)
	}
	return true
}

func (s *Scheduler) pushBack(op *opState, prio uint32, es []entry) {
	for _, e := range es {
		op.ready.push(prio, e)
	}
}

// groupByDomain splits one message's entries into transactions: by domain,
// in order of first appearance, at most max recipients each.
func groupByDomain(batch []entry, maxRcpts int) [][]entry {
	var order []uint32
	by := make(map[uint32][]entry, 2)
	for _, e := range batch {
		if _, seen := by[e.dom]; !seen {
			order = append(order, e.dom)
		}
		by[e.dom] = append(by[e.dom], e)
	}
	var out [][]entry
	for _, d := range order {
		es := by[d]
		for len(es) > maxRcpts {
			out = append(out, es[:maxRcpts])
			es = es[maxRcpts:]
		}
		out = append(out, es)
	}
	return out
}

// globalFull reports whether the global connection cap leaves no room for
// a new transaction of op. An idle connection of another operator is
// closed to make room.
func (s *Scheduler) globalFull(op *opState) bool {
	if s.conns < s.pol.cfg.Delivery.MaxConnections {
		return false
	}
	if s.hasIdleFor(op) {
		return false
	}
	s.starved[op] = struct{}{}
	s.closeOldestIdle(nil)
	return true
}

// startJob reserves the op's in-memory share of the budget and hands the
// transaction to a connection worker.
func (s *Scheduler) startJob(op *opState, prio uint32, es []entry, now time.Time) {
	domain := s.doms.name(es[0].dom)
	dest, key := s.destination(op, domain)
	j := &job{op: op, limits: op.limits, prio: prio, entries: es, dest: dest, destKey: key, started: now}
	if op.hasQuota() {
		j.window = op.window
		j.costMilli = CostMilli(prio)
		op.usedMilli += int64(len(es)) * j.costMilli
		s.events.Budget(op.label, op.usedMilli, op.quotaMilli(), op.window.End)
	}
	op.lastStart = now
	op.busy++
	s.inflight++
	s.running[j] = struct{}{}
	s.active[j.entries[0].seq]++
	s.assign(j, now)
}

// destination says where a transaction for domain goes and which pooled
// connections may carry it.
func (s *Scheduler) destination(op *opState, domain string) (delivery.Destination, string) {
	d := delivery.Destination{Domain: domain, TLSVerify: op.limits.TLSVerify}
	if op.limits.TLS == config.TLSRequired {
		d.TLS = delivery.TLSRequired
	}
	key := op.key + "|"
	if r, ok := s.pol.cfg.RouteFor(domain); ok {
		d.Relay = r.Relay
		key += "relay:" + r.Relay
	} else {
		key += "mx:" + domain
	}
	if d.TLS == delivery.TLSRequired {
		key += "|tls"
	}
	return d, key
}
