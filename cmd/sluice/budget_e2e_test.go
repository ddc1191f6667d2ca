package main

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/sluice-mta/sluice/scheduler"
)

// TestEndToEndBudgetRealTime runs the whole daemon with a real clock, a 2s
// window and a quota of 10: 40 messages for two domains of one operator,
// half of priority 5 (cost 0.2) and half of priority 1, queued while the
// operator is suspended and released at once. The remote MX must see at
// most 10 units per window, aligned to the window, priority 5 first.
func TestEndToEndBudgetRealTime(t *testing.T) {
	w := newWorld(t, "bigmail.test", "bigmail.test.de")
	r := startTestDaemon(t, t.TempDir(), w.daemonConfig(t.TempDir(), `
[[operator]]
name = "bigmail"
domains = ["bigmail.test", "bigmail.test.de"]
quota = 10
window = "2s"
max_connections = 2
`))
	ctx := context.Background()
	if err := r.d.sched.Suspend(ctx, "bigmail", time.Now().Add(time.Hour), "test: queue everything first"); err != nil {
		t.Fatal(err)
	}
	prio := map[string]int{}
	for i := range 40 {
		p := 1
		if i%2 == 1 {
			p = 5
		}
		dom := "bigmail.test"
		if i%4 >= 2 {
			dom = "bigmail.test.de"
		}
		rcpt := fmt.Sprintf("u%d@%s", i, dom)
		prio[rcpt] = p
		send(t, r.addr(), "alice@origin.test", []string{rcpt},
			fmt.Sprintf("From: <alice@origin.test>\nSubject: %d\nX-Relay-Priority: %d\n\nbody\n", i, p))
	}
	if err := r.d.sched.Resume(ctx, "bigmail"); err != nil {
		t.Fatal(err)
	}
	// 20 x 0.2 + 20 x 1 = 24 units: three windows at 10 per window.
	deadline := time.Now().Add(20 * time.Second)
	var got []receipt
	for time.Now().Before(deadline) {
		// Take the notification channels before reading, so that a message
		// arriving in between wakes the wait below.
		n1, n2 := w.mx["bigmail.test"].Notify(), w.mx["bigmail.test.de"].Notify()
		got = receipts(w)
		if len(got) >= 40 {
			break
		}
		select {
		case <-n1:
		case <-n2:
		case <-time.After(500 * time.Millisecond):
		}
	}
	if len(got) != 40 {
		t.Fatalf("remote MXes received %d of 40", len(got))
	}
	used := map[time.Time]int{} // milli-units per window
	lastHigh, firstLow := time.Time{}, time.Time{}
	for _, g := range got {
		win := scheduler.WindowAt(g.at, 2*time.Second, time.UTC).Start
		p := prio[g.rcpt]
		used[win] += int(scheduler.CostMilli(uint32(p * 1000)))
		if p == 5 && win.After(lastHigh) {
			lastHigh = win
		}
		if p == 1 && (firstLow.IsZero() || win.Before(firstLow)) {
			firstLow = win
		}
	}
	var report []string
	for win, u := range used {
		report = append(report, fmt.Sprintf("%s=%d.%03d", win.Format("15:04:05"), u/1000, u%1000))
		if u > 10000 {
			t.Errorf("window %s received %d milli-units, over the quota of 10", win.Format("15:04:05.000"), u)
		}
	}
	sort.Strings(report)
	t.Logf("units per 2s window at the remote MX: %s", strings.Join(report, " "))
	if lastHigh.After(firstLow) {
		t.Errorf("priority-1 mail arrived in the window of %s, before the last priority-5 mail (window %s)",
			firstLow.Format("15:04:05"), lastHigh.Format("15:04:05"))
	}
	if len(used) < 3 {
		t.Errorf("24 units arrived in %d windows; a quota of 10 needs at least 3", len(used))
	}
}

type receipt struct {
	rcpt string
	at   time.Time
}

func receipts(w *world) []receipt {
	var out []receipt
	for _, mx := range w.mx {
		for _, m := range mx.Messages() {
			for _, rc := range m.To {
				out = append(out, receipt{rcpt: rc, at: m.Received})
			}
		}
	}
	return out
}
