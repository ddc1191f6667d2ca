package scheduler

import (
	"fmt"
	"math/rand/v2"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/sluice-mta/sluice/config"
	"github.com/sluice-mta/sluice/queue"
)

const simConfig = `
hostname = "relay.test"
data_dir = "."
[delivery]
max_queue_lifetime = "30d"
delay_warning_after = "0"

[[operator]]
name = "alpha"
domains = ["alpha.test", "alpha.test.de", "alpha.test.fr"]
quota = 10
window = "1h"
max_connections = 2

[[operator]]
name = "beta"
domains = ["beta.test"]
quota = 3
window = "15m"
window_guard = "2s"
priority_aging = "3h"

[[operator]]
name = "gamma"
domains = ["*.gamma.test"]
quota = 100
window = "24h"
timezone = "Europe/Warsaw"

[default]
max_connections = 4
`

// simRcpt is what the simulation knows of one recipient it queued.
type simRcpt struct {
	addr    string
	op      string
	prio    uint32
	arrival time.Time
	sentAt  time.Time
	order   int // position in the global send order; -1 if never sent
}

// TestSimulatedWeek runs seven simulated days of mail for three operators
// with different quotas, windows and time zones and a default policy, with
// seeded random arrivals and priorities and the store restarted at random
// moments, then checks every window of every operator: the quota is never
// exceeded, a window with mail waiting is filled to within one recipient's
// cost, and no recipient went before one of higher effective priority that
// was ready for the same operator.
func TestSimulatedWeek(t *testing.T) {
	if testing.Short() {
		t.Skip("seven simulated days")
	}
	h := newHarnessConfig(t, simDir(t), simConfig)
	rnd := rand.New(rand.NewPCG(2026, 11))
	week := 7 * 24 * time.Hour
	start := h.clock.Now()

	type event struct {
		at      time.Time
		n       int // messages arriving at once
		restart bool
	}
	var events []event
	for range 2500 {
		events = append(events, event{at: start.Add(time.Duration(rnd.Int64N(int64(week)))), n: 1})
	}
	for range 40 { // bursts: twenty messages at one moment
		events = append(events, event{at: start.Add(time.Duration(rnd.Int64N(int64(week)))), n: 20})
	}
	for range 12 {
		events = append(events, event{at: start.Add(time.Duration(rnd.Int64N(int64(week)))), restart: true})
	}
	sort.SliceStable(events, func(i, j int) bool { return events[i].at.Before(events[j].at) })

	domainsByOp := map[string][]string{
		"alpha":   {"alpha.test", "alpha.test.de", "alpha.test.fr"},
		"beta":    {"beta.test"},
		"gamma":   {"a.gamma.test", "b.gamma.test"},
		"default": {"other.test", "elsewhere.test"},
	}
	opNames := []string{"alpha", "alpha", "beta", "gamma", "default"}
	prios := []uint32{1000, 1000, 1000, 1500, 2000, 5000}
	rcpts := map[string]*simRcpt{}
	restarts := 0
	for i, ev := range events {
		h.runUntil(ev.at)
		if ev.restart {
			h.restart()
			restarts++
			continue
		}
		var burst []*queue.Message
		for k := range ev.n {
			prio := prios[rnd.IntN(len(prios))]
			var addrs []string
			for j := range 1 + rnd.IntN(3) {
				op := opNames[rnd.IntN(len(opNames))]
				ds := domainsByOp[op]
				addr := fmt.Sprintf("m%d.%dr%d@%s", i, k, j, ds[rnd.IntN(len(ds))])
				addrs = append(addrs, addr)
				rcpts[addr] = &simRcpt{addr: addr, op: op, prio: prio, arrival: ev.at, order: -1}
			}
			burst = append(burst, h.enqueueStored("s@origin.test", prio, addrs...))
		}
		h.enqueueAtOnce(burst)
	}
	h.runUntil(start.Add(week + 5*24*time.Hour)) // let the backlog drain

	for i, tx := range h.fd.sent() {
		for _, a := range tx.rcpts {
			r := rcpts[a]
			if r == nil {
				continue // a bounce
			}
			if r.order >= 0 {
				t.Errorf("%s was sent twice", a)
			}
			r.sentAt, r.order = tx.at, i
		}
	}
	cfg := h.cfg
	for _, name := range []string{"alpha", "beta", "gamma"} {
		checkOperatorWindows(t, cfg, name, rcpts, start, start.Add(week))
	}
	unsent := 0
	for _, r := range rcpts {
		if r.order < 0 {
			unsent++
		}
	}
	if unsent > 0 {
		t.Errorf("%d of %d recipients never sent", unsent, len(rcpts))
	}
	for _, u := range mustUsage(t, h) {
		if o, ok := cfg.OperatorFor(domainsByOp[u.Operator][0]); ok && u.UsedMilli > int64(o.Quota)*1000 {
			t.Errorf("store: %s used %d milli in the window from %s, over its quota", u.Operator, u.UsedMilli, u.WindowStart)
		}
	}
	t.Logf("simulated %v: %d recipients, %d restarts", week, len(rcpts), restarts)
}

// checkOperatorWindows asserts the three properties for one operator.
func checkOperatorWindows(t *testing.T, cfg *config.Config, name string, rcpts map[string]*simRcpt, from, to time.Time) {
	t.Helper()
	var op *config.Operator
	for i := range cfg.Operators {
		if cfg.Operators[i].Name == name {
			op = &cfg.Operators[i]
		}
	}
	quota := int64(op.Quota) * 1000
	var mine []*simRcpt
	for _, r := range rcpts {
		if r.op == name {
			mine = append(mine, r)
		}
	}
	used := map[time.Time]int64{}
	for _, r := range mine {
		if r.order >= 0 {
			used[WindowAt(r.sentAt, op.Window, op.Location).Start] += CostMilli(r.prio)
		}
	}
	windows, full, busiest := 0, 0, int64(0)
	for w := WindowAt(from, op.Window, op.Location); w.Start.Before(to); w = WindowAt(w.End, op.Window, op.Location) {
		windows++
		u := used[w.Start]
		busiest = max(busiest, u)
		if u > quota {
			t.Errorf("%s: window %s used %s units, over its quota %d", name, w.Start.Format(time.RFC3339), formatUnits(u), op.Quota)
		}
		// Mail that was ready before the window's last sendable moment
		// and still went later: the window must have had no room for it.
		var waitedCost int64
		for _, r := range mine {
			if r.arrival.Before(w.End.Add(-op.WindowGuard)) && (r.order < 0 || !r.sentAt.Before(w.End)) {
				waitedCost = max(waitedCost, CostMilli(r.prio))
			}
		}
		if waitedCost > 0 {
			full++
			if quota-u >= waitedCost {
				t.Errorf("%s: window %s left %s units idle while a recipient costing %s waited",
					name, w.Start.Format(time.RFC3339), formatUnits(quota-u), formatUnits(waitedCost))
			}
		}
	}
	violations := priorityViolations(mine, op.PriorityAging)
	for _, v := range violations[:min(len(violations), 5)] {
		t.Errorf("%s: %s", name, v)
	}
	sent := 0
	for _, r := range mine {
		if r.order >= 0 {
			sent++
		}
	}
	t.Logf("%-5s quota %4d per %-8v %3d windows, %3d with backlog (all filled to within one recipient), busiest %s units, %d recipients sent, %d order violations",
		name, op.Quota, op.Window, windows, full, formatUnits(busiest), sent, len(violations))
}

// priorityViolations lists recipients sent while another recipient of the
// same operator, ready at that moment, had a higher effective priority and
// went out only later.
func priorityViolations(rs []*simRcpt, aging time.Duration) []string {
	sort.Slice(rs, func(i, j int) bool { return rs[i].order < rs[j].order })
	var out []string
	for _, r := range rs {
		if r.order < 0 {
			continue
		}
		effR := EffectivePriorityMilli(r.prio, r.arrival, r.sentAt, aging)
		for _, o := range rs {
			if o == r || o.arrival.After(r.sentAt) || (o.order >= 0 && !o.sentAt.After(r.sentAt)) {
				continue
			}
			if effO := EffectivePriorityMilli(o.prio, o.arrival, r.sentAt, aging); effO > effR {
				out = append(out, fmt.Sprintf("%s (arrived %s, effective priority %s) sent at %s while %s (arrived %s, effective %s) waited until %s",
					r.addr, r.arrival.Format(time.RFC3339Nano), formatUnits(effR), r.sentAt.Format(time.RFC3339Nano),
					o.addr, o.arrival.Format(time.RFC3339Nano), formatUnits(effO), o.sentAt.Format(time.RFC3339Nano)))
			}
		}
	}
	return out
}

// simDir keeps the simulation's store in memory when /dev/shm exists: the
// test is about scheduling, not about fsync speed.
func simDir(t *testing.T) string {
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		d, err := os.MkdirTemp("/dev/shm", "sluice-sim-")
		if err == nil {
			t.Cleanup(func() { os.RemoveAll(d) })
			return d
		}
	}
	return t.TempDir()
}

func mustUsage(t *testing.T, h *harness) []usageRec {
	us, err := h.store.Usage()
	if err != nil {
		t.Fatal(err)
	}
	var out []usageRec
	for _, u := range us {
		out = append(out, usageRec{Operator: strings.TrimSpace(u.Operator), WindowStart: u.WindowStart, UsedMilli: u.UsedMilli})
	}
	return out
}

type usageRec struct {
	Operator    string
	WindowStart time.Time
	UsedMilli   int64
}
