package scheduler

import (
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/sluice-mta/sluice/delivery"
	"github.com/sluice-mta/sluice/dsn"
	"github.com/sluice-mta/sluice/queue"
)

func TestDeliversOneTransactionPerDomain(t *testing.T) {
	h := newHarness(t, "")
	h.enqueue("s@origin.test", 1000, "a@one.test", "b@two.test", "c@one.test")
	h.run(time.Second)
	txns := h.fd.sent()
	if len(txns) != 2 {
		t.Fatalf("got %d transactions, want 2: %+v", len(txns), txns)
	}
	got := map[string]string{}
	for _, tx := range txns {
		got[tx.domain] = strings.Join(tx.rcpts, ",")
	}
	if got["one.test"] != "a@one.test,c@one.test" || got["two.test"] != "b@two.test" {
		t.Errorf("transactions by domain = %v", got)
	}
	if n := h.pending(); n != 0 {
		t.Errorf("%d messages left in the queue, want 0", n)
	}
}

func TestPermanentFailureBouncesOnce(t *testing.T) {
	h := newHarness(t, "")
	h.fd.reply = func(d delivery.Destination, rcpt string) delivery.Result {
		if rcpt == "bad@one.test" {
			return delivery.Result{Status: delivery.StatusFailed, Reply: delivery.Reply{Code: 550, Enhanced: "5.1.1", Text: "no such user", RemoteHost: "mx.one.test"}}
		}
		return delivery.Result{Status: delivery.StatusSent, Reply: delivery.Reply{Code: 250}}
	}
	h.enqueue("sender@origin.test", 1000, "bad@one.test", "good@one.test")
	h.run(time.Second)
	var bounces []sentTxn
	for _, tx := range h.fd.sent() {
		if tx.domain == "origin.test" {
			bounces = append(bounces, tx)
		}
	}
	if len(bounces) != 1 {
		t.Fatalf("got %d bounces, want 1", len(bounces))
	}
	b := bounces[0]
	if b.from != "" || b.rcpts[0] != "sender@origin.test" {
		t.Errorf("bounce envelope from=%q to=%v, want null sender to the original sender", b.from, b.rcpts)
	}
	p, err := dsn.Parse(b.body)
	if err != nil {
		t.Fatalf("bounce does not parse as a DSN: %v", err)
	}
	if len(p.Recipients) != 1 || p.Recipients[0].FinalRecipient != "bad@one.test" ||
		p.Recipients[0].Status != "5.1.1" || !strings.Contains(p.Recipients[0].DiagnosticCode, "550 5.1.1 no such user") {
		t.Errorf("bounce recipients = %+v", p.Recipients)
	}
	if n := h.pending(); n != 0 {
		t.Errorf("%d messages left, want 0", n)
	}
}

func TestNoBounceForNullSender(t *testing.T) {
	h := newHarness(t, "")
	h.fd.reply = func(delivery.Destination, string) delivery.Result {
		return delivery.Result{Status: delivery.StatusFailed, Reply: delivery.Reply{Code: 550, Text: "no"}}
	}
	h.enqueue("", 1000, "x@one.test")
	h.run(time.Second)
	if txns := h.fd.sent(); len(txns) != 1 {
		t.Errorf("got %d transactions, want only the original", len(txns))
	}
}

func TestTemporaryFailureRetriesOnSchedule(t *testing.T) {
	h := newHarness(t, "")
	fails := 1
	h.fd.reply = func(d delivery.Destination, rcpt string) delivery.Result {
		if fails > 0 {
			fails--
			return delivery.Result{Status: delivery.StatusDeferred, Reply: delivery.Reply{Code: 451, Enhanced: "4.3.0", Text: "try later"}}
		}
		return delivery.Result{Status: delivery.StatusSent, Reply: delivery.Reply{Code: 250}}
	}
	m := h.enqueue("s@origin.test", 1000, "a@one.test")
	h.run(time.Second)
	got, err := h.store.Get(m.Seq)
	if err != nil {
		t.Fatal(err)
	}
	r := got.Recipients[0]
	if r.State != queue.StateDeferred || r.Attempts != 1 || r.LastReply.Code != 451 {
		t.Fatalf("after a 451: %+v", r)
	}
	wait := r.NextAttempt.Sub(testStart)
	if wait < 4*time.Minute+30*time.Second || wait > 5*time.Minute+30*time.Second+time.Second {
		t.Errorf("next attempt after %v, want 5m ±10%%", wait)
	}
	h.runUntil(r.NextAttempt.Add(-time.Second))
	if n := len(h.fd.sent()); n != 1 {
		t.Fatalf("%d transactions before the retry time, want 1", n)
	}
	h.runUntil(r.NextAttempt)
	if n := len(h.fd.sent()); n != 2 || h.pending() != 0 {
		t.Errorf("after the retry time: %d transactions, %d pending; want 2, 0", n, h.pending())
	}
}

func TestExpiryBouncesWithLastReply(t *testing.T) {
	h := newHarness(t, "")
	h.fd.reply = func(d delivery.Destination, rcpt string) delivery.Result {
		if d.Domain == "origin.test" {
			return delivery.Result{Status: delivery.StatusSent}
		}
		return delivery.Result{Status: delivery.StatusDeferred, Reply: delivery.Reply{Code: 450, Enhanced: "4.2.0", Text: "mailbox busy", RemoteHost: "mx.one.test"}}
	}
	h.enqueue("s@origin.test", 1000, "a@one.test")
	h.run(25 * time.Hour)
	var attempts, bounces int
	var bounce []byte
	for _, tx := range h.fd.sent() {
		if tx.domain == "origin.test" {
			bounces++
			bounce = tx.body
		} else {
			attempts++
		}
	}
	// 5m, 10m, then every 20m until a day has passed.
	if attempts < 60 || attempts > 80 || bounces != 1 {
		t.Fatalf("%d attempts and %d bounces in 25h, want about 72 and 1", attempts, bounces)
	}
	p, err := dsn.Parse(bounce)
	if err != nil || len(p.Recipients) != 1 {
		t.Fatalf("bounce: %+v, %v", p, err)
	}
	if r := p.Recipients[0]; r.Status != "4.4.7" || !strings.Contains(r.DiagnosticCode, "450 4.2.0 mailbox busy") {
		t.Errorf("expiry report recipient = %+v", r)
	}
	if h.pending() != 0 {
		t.Errorf("%d messages left", h.pending())
	}
}

func TestPendingMailSurvivesRestart(t *testing.T) {
	h := newHarness(t, "")
	h.fd.openErr = func(delivery.Destination) error { return errDial }
	h.enqueue("s@origin.test", 1000, "a@one.test", "b@two.test")
	h.run(time.Second)
	if len(h.fd.sent()) != 0 {
		t.Fatal("sent while every connection fails")
	}
	h.restart()
	h.fd.openErr = nil
	h.run(10 * time.Minute)
	got := map[string]bool{}
	for _, tx := range h.fd.sent() {
		for _, r := range tx.rcpts {
			got[r] = true
		}
	}
	if !got["a@one.test"] || !got["b@two.test"] || h.pending() != 0 {
		t.Errorf("after restart delivered %v, %d pending", got, h.pending())
	}
}

func TestRouteRelaysWithoutMX(t *testing.T) {
	h := newHarness(t, `
[[route]]
domains = ["*"]
relay = "127.0.0.1:2526"
`)
	h.enqueue("s@origin.test", 1000, "a@one.test")
	h.run(time.Second)
	txns := h.fd.sent()
	if len(txns) != 1 || txns[0].relay != "127.0.0.1:2526" {
		t.Errorf("transactions = %+v, want one via the relay", txns)
	}
}

func TestConnectionReuse(t *testing.T) {
	h := newHarness(t, `
[default]
max_connections = 1
max_messages_per_connection = 3
`)
	for range 7 {
		h.enqueue("s@origin.test", 1000, "a@one.test")
	}
	h.run(time.Second)
	txns := h.fd.sent()
	if len(txns) != 7 {
		t.Fatalf("%d transactions, want 7", len(txns))
	}
	conns := map[int]int{}
	for _, tx := range txns {
		conns[tx.conn]++
	}
	var counts []int
	for _, n := range conns {
		counts = append(counts, n)
	}
	sort.Ints(counts)
	if len(counts) != 3 || counts[0] != 1 || counts[1] != 3 || counts[2] != 3 {
		t.Errorf("transactions per connection = %v, want [1 3 3]", counts)
	}
}
