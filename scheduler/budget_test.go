package scheduler

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/sluice-mta/sluice/delivery"
	"github.com/sluice-mta/sluice/queue"
)

const bigmail = `
[[operator]]
name = "bigmail"
domains = ["bigmail.test", "bigmail.test.de", "*.bigmail.test"]
quota = 10
window = "1m"
window_guard = "1s"
max_connections = 1
`

// byWindow counts the recipients sent in each window of length w.
func byWindow(txns []sentTxn, w time.Duration) map[time.Time]int {
	out := map[time.Time]int{}
	for _, tx := range txns {
		out[tx.at.Truncate(w)] += len(tx.rcpts)
	}
	return out
}

func TestQuotaFillsEachWindowHighPriorityFirst(t *testing.T) {
	h := newHarness(t, bigmail)
	// 30 messages ready at once: 10 of priority 5, 20 of priority 1, mixed.
	for i := range 30 {
		prio := uint32(1000)
		if i%3 == 0 {
			prio = 5000
		}
		h.enqueueStored("s@origin.test", prio, fmt.Sprintf("r%d@bigmail.test", i))
	}
	h.restart()
	h.run(5 * time.Minute)
	txns := h.fd.sent()
	// Priority 5 costs 200 milli: all 10 fit in the first window with
	// 8 units to spare, filled by 8 priority-1 recipients.
	counts := byWindow(txns, time.Minute)
	first := testStart.Truncate(time.Minute)
	want := map[time.Time]int{first: 18, first.Add(time.Minute): 10, first.Add(2 * time.Minute): 2}
	for w, n := range want {
		if counts[w] != n {
			t.Errorf("window %s: %d sent, want %d (all: %v)", w.Format("15:04"), counts[w], n, counts)
		}
	}
	for i, tx := range txns[:10] {
		seqPrio := strings.TrimPrefix(tx.rcpts[0], "r")
		var n int
		fmt.Sscanf(seqPrio, "%d@", &n)
		if n%3 != 0 {
			t.Errorf("transaction %d went to %s (priority 1) before all priority-5 mail", i, tx.rcpts[0])
		}
	}
	used, _ := h.store.Used(context.Background(), "bigmail", first)
	if used != 10*200+8*1000 {
		t.Errorf("first window used %d milli, want %d", used, 10*200+8*1000)
	}
}

func TestNoTransactionStartsInGuardBand(t *testing.T) {
	h := newHarness(t, `
[[operator]]
name = "bigmail"
domains = ["bigmail.test"]
quota = 5
window = "1m"
window_guard = "2s"
max_connections = 1
`)
	// Arrivals all through several windows, including inside guard bands.
	for i := range 40 {
		h.enqueue("s@origin.test", 1000, fmt.Sprintf("r%d@bigmail.test", i))
		h.run(7 * time.Second)
	}
	h.run(10 * time.Minute)
	txns := h.fd.sent()
	if len(txns) != 40 {
		t.Fatalf("%d of 40 sent", len(txns))
	}
	for _, tx := range txns {
		w := WindowAt(tx.at, time.Minute, time.UTC)
		if tx.at.Before(w.Start.Add(2*time.Second)) || !tx.at.Before(w.End.Add(-2*time.Second)) {
			t.Errorf("transaction at %s is inside the guard band of [%s, %s)", tx.at.Format("15:04:05.000"),
				w.Start.Format("15:04:05"), w.End.Format("15:04:05"))
		}
	}
	for w, n := range byWindow(txns, time.Minute) {
		if n > 5 {
			t.Errorf("window %s: %d sent over quota 5", w.Format("15:04"), n)
		}
	}
}

func TestWaitingForBudgetIsNotAnAttempt(t *testing.T) {
	h := newHarness(t, strings.Replace(bigmail, "quota = 10", "quota = 1", 1))
	var ms []*queue.Message
	for i := range 3 {
		ms = append(ms, h.enqueue("s@origin.test", 1000, fmt.Sprintf("r%d@bigmail.test", i)))
	}
	h.run(90 * time.Second)
	m, err := h.store.Get(ms[2].Seq)
	if err != nil {
		t.Fatal(err)
	}
	if r := m.Recipients[0]; r.Attempts != 0 || r.State != queue.StateQueued || !r.NextAttempt.IsZero() {
		t.Errorf("recipient waiting for budget = %+v, want no attempt and no retry time", r)
	}
	// The loop wakes at the next window boundary (plus the guard), not later.
	h.run(time.Minute)
	txns := h.fd.sent()
	if len(txns) != 3 {
		t.Fatalf("%d sent, want 3", len(txns))
	}
	for i, tx := range txns[1:] {
		want := testStart.Truncate(time.Minute).Add(time.Duration(i+1)*time.Minute + time.Second)
		if !tx.at.Equal(want) {
			t.Errorf("transaction %d at %s, want exactly %s (window start + guard)", i+1, tx.at.Format("15:04:05.000"), want.Format("15:04:05.000"))
		}
	}
}

func TestRefundRejected(t *testing.T) {
	for _, refund := range []bool{false, true} {
		t.Run(fmt.Sprintf("refund_rejected=%v", refund), func(t *testing.T) {
			h := newHarness(t, bigmail+fmt.Sprintf("refund_rejected = %v\n", refund))
			h.fd.reply = func(d delivery.Destination, rcpt string) delivery.Result {
				if strings.HasPrefix(rcpt, "bad") {
					return delivery.Result{Status: delivery.StatusFailed, Reply: delivery.Reply{Code: 550, Enhanced: "5.1.1", Text: "unknown"}}
				}
				return delivery.Result{Status: delivery.StatusSent, Reply: delivery.Reply{Code: 250}}
			}
			h.enqueue("", 1000, "bad1@bigmail.test", "bad2@bigmail.test", "good@bigmail.test")
			h.run(time.Second)
			used, _ := h.store.Used(context.Background(), "bigmail", testStart.Truncate(time.Minute))
			want := int64(3000)
			if refund {
				want = 1000
			}
			if used != want {
				t.Errorf("used = %d milli, want %d", used, want)
			}
		})
	}
}

func TestConnectionFailureRefunds(t *testing.T) {
	h := newHarness(t, bigmail)
	h.fd.openErr = func(delivery.Destination) error { return errDial }
	h.enqueue("s@origin.test", 1000, "a@bigmail.test", "b@bigmail.test")
	h.run(time.Second)
	used, _ := h.store.Used(context.Background(), "bigmail", testStart.Truncate(time.Minute))
	if used != 0 {
		t.Errorf("used = %d after a connection that never opened, want 0", used)
	}
}

// agingRun queues ten priority-1 messages at once under a quota of one
// per minute, adds a priority-2 message four and a half minutes later, and
// returns the order of sending.
func agingRun(t *testing.T, aging string) []string {
	cfg := strings.Replace(bigmail, "quota = 10", "quota = 1", 1)
	if aging != "" {
		cfg += "priority_aging = \"" + aging + "\"\n"
	}
	h := newHarness(t, cfg)
	for i := range 10 {
		h.enqueueStored("s@origin.test", 1000, fmt.Sprintf("old%d@bigmail.test", i))
	}
	h.restart()
	h.runUntil(testStart.Add(4*time.Minute + 28*time.Second))
	h.enqueue("s@origin.test", 2000, "new@bigmail.test")
	h.run(10 * time.Minute)
	var order []string
	for _, tx := range h.fd.sent() {
		order = append(order, tx.rcpts[0])
	}
	if len(order) != 11 {
		t.Fatalf("sent %d of 11: %v", len(order), order)
	}
	return order
}

func TestPriorityAging(t *testing.T) {
	// The old mail has waited 4.5m when the new arrives: with aging 2m its
	// effective priority is 1 + 2 = 3, above the newcomer's 2, so every
	// old message still waiting goes first.
	order := agingRun(t, "2m")
	if got := idx(order, "new@bigmail.test"); got != 10 {
		t.Errorf("with priority_aging the fresh priority-2 message went out at position %d, want last: %v", got, order)
	}
}

func TestWithoutAgingHigherPriorityWins(t *testing.T) {
	order := agingRun(t, "")
	// Windows at 10:00:30 (first), 10:01, 10:02, 10:03, 10:04 took five old
	// messages; the new one arrives at 10:04:58 and takes the 10:05 window.
	if got := idx(order, "new@bigmail.test"); got != 5 {
		t.Errorf("without aging the priority-2 message went out at position %d, want 5 (the first window after it arrived): %v", got, order)
	}
}

func idx(ss []string, s string) int {
	for i, v := range ss {
		if v == s {
			return i
		}
	}
	return -1
}

func TestDomainsShareOneBudget(t *testing.T) {
	h := newHarness(t, bigmail)
	for i := range 8 {
		h.enqueue("s@origin.test", 1000, fmt.Sprintf("a%d@bigmail.test", i), fmt.Sprintf("b%d@bigmail.test.de", i), fmt.Sprintf("c%d@x.bigmail.test", i))
	}
	h.run(time.Second)
	total := 0
	for _, tx := range h.fd.sent() {
		total += len(tx.rcpts)
	}
	if total != 10 {
		t.Errorf("%d recipients sent across the operator's domains in one window, want exactly the quota 10", total)
	}
}

func TestMXPatternsShareTheBudget(t *testing.T) {
	h := newHarness(t, `
[[operator]]
name = "bigmail"
domains = ["bigmail.test"]
mx_patterns = ["*.mx.bigmail.net"]
quota = 2
window = "1m"
`)
	h.stop()
	h.openStore()
	h.s = nil
	mx := fakeMX{"hosted.test": "in1.mx.bigmail.net", "other.test": "mx.other.test"}
	s, err := New(Options{Config: h.cfg, Clock: h.clock, Store: h.store, Budget: h.store, Deliverer: h.fd, MX: mx,
		Logger: newTestLogger(t), NoRecover: true})
	if err != nil {
		t.Fatal(err)
	}
	h.runWith(s)
	h.enqueue("s@origin.test", 1000, "a@bigmail.test", "b@hosted.test", "c@hosted.test", "d@other.test")
	h.run(time.Second)
	got := map[string]int{}
	for _, tx := range h.fd.sent() {
		got[tx.domain] += len(tx.rcpts)
	}
	if got["bigmail.test"]+got["hosted.test"] != 2 || got["other.test"] != 1 {
		t.Errorf("sent per domain = %v; want 2 in all for bigmail.test and hosted.test (one budget), 1 for other.test", got)
	}
}

type fakeMX map[string]string

func (f fakeMX) LookupMX(_ context.Context, domain string) ([]delivery.MX, error) {
	if h, ok := f[domain]; ok {
		return []delivery.MX{{Host: h, Pref: 10}}, nil
	}
	return nil, &delivery.DNSError{Domain: domain, Msg: "no such domain"}
}

func TestBacklogAdmission(t *testing.T) {
	h := newHarness(t, strings.Replace(bigmail, "quota = 10", "quota = 2", 1)+"max_backlog_windows = 2\n")
	if err := h.s.Admit("x@bigmail.test"); err != nil {
		t.Fatalf("empty queue refused: %v", err)
	}
	for i := range 6 {
		h.enqueue("s@origin.test", 1000, fmt.Sprintf("r%d@bigmail.test", i))
	}
	h.run(time.Second) // 2 sent, 4 units queued = 2 windows
	err := h.s.Admit("x@bigmail.test")
	var be *BacklogError
	if err == nil || !asBacklog(err, &be) || be.Operator != "bigmail" || be.BacklogMilli != 4000 {
		t.Fatalf("Admit with 2 windows queued = %v, want a BacklogError for bigmail with 4 units", err)
	}
	if err := h.s.Admit("x@other.test"); err != nil {
		t.Errorf("another operator's domain refused: %v", err)
	}
	h.run(time.Minute) // 2 more sent: 2 units queued = 1 window
	if err := h.s.Admit("x@bigmail.test"); err != nil {
		t.Errorf("refused with 1 window queued: %v", err)
	}
}

func asBacklog(err error, be **BacklogError) bool {
	b, ok := err.(*BacklogError)
	*be = b
	return ok
}

// A restart in the middle of a window must not grant the window again.
func TestRestartMidWindowKeepsUsage(t *testing.T) {
	h := newHarness(t, bigmail)
	for i := range 25 {
		h.enqueue("s@origin.test", 1000, fmt.Sprintf("r%d@bigmail.test", i))
	}
	h.run(10 * time.Second)
	h.restart()
	h.run(10 * time.Second)
	h.restart()
	h.run(3 * time.Minute)
	counts := byWindow(h.fd.sent(), time.Minute)
	var ws []string
	for w, n := range counts {
		ws = append(ws, fmt.Sprintf("%s=%d", w.Format("15:04"), n))
		if n > 10 {
			t.Errorf("window %s got %d over quota 10 across restarts", w.Format("15:04"), n)
		}
	}
	sort.Strings(ws)
	if total := len(h.fd.sent()); total != 25 {
		t.Errorf("%d of 25 sent (%v)", total, ws)
	}
}

// A wall clock stepped back across a window boundary must not get the
// earlier window's budget a second time.
func TestClockStepBackDoesNotRegrantWindow(t *testing.T) {
	h := newHarness(t, bigmail)
	for i := range 30 {
		h.enqueue("s@origin.test", 1000, fmt.Sprintf("r%d@bigmail.test", i))
	}
	h.run(time.Second)
	h.runUntil(testStart.Truncate(time.Minute).Add(time.Minute + 5*time.Second)) // second window spent too
	if n := len(h.fd.sent()); n != 20 {
		t.Fatalf("%d sent after two windows, want 20", n)
	}
	turn := h.s.Turn()
	h.clock.Set(testStart.Add(10 * time.Second)) // back into the first window
	h.waitAfter(turn, true)
	h.run(20 * time.Second)
	if n := len(h.fd.sent()); n != 20 {
		t.Errorf("%d sent after the clock stepped back into a spent window, want still 20", n)
	}
}

// Units reserved for recipients whose RCPT never went out (the
// transaction was cut before) go back to the budget.
func TestUnsentRecipientsRefunded(t *testing.T) {
	h := newHarness(t, bigmail)
	h.fd.reply = func(d delivery.Destination, rcpt string) delivery.Result {
		if rcpt == "a@bigmail.test" {
			return delivery.Result{Status: delivery.StatusSent, Reply: delivery.Reply{Code: 250}}
		}
		return delivery.Result{Status: delivery.StatusDeferred, Reply: delivery.Reply{Enhanced: "4.4.2", Text: "lost connection"}}
	}
	h.enqueue("s@origin.test", 1000, "a@bigmail.test", "b@bigmail.test", "c@bigmail.test")
	h.run(time.Second)
	used, _ := h.store.Used(context.Background(), "bigmail", testStart.Truncate(time.Minute))
	if used != 1000 {
		t.Errorf("used = %d milli, want 1000: only the recipient whose RCPT went out counts", used)
	}
}
