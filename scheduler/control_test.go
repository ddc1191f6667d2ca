package scheduler

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/sluice-mta/sluice/config"
	"github.com/sluice-mta/sluice/delivery"
	"github.com/sluice-mta/sluice/dsn"
)

func deferAll(delivery.Destination, string) delivery.Result {
	return delivery.Result{Status: delivery.StatusDeferred, Reply: delivery.Reply{Code: 451, Enhanced: "4.3.0", Text: "later"}}
}

func TestHoldAndRelease(t *testing.T) {
	h := newHarness(t, "")
	h.fd.openErr = func(delivery.Destination) error { return errDial }
	m := h.enqueue("s@origin.test", 1000, "a@one.test")
	h.run(time.Second)
	ctx := context.Background()
	if n, err := h.s.Hold(ctx, []uint64{m.Seq}); n != 1 || err != nil {
		t.Fatalf("Hold = %d, %v", n, err)
	}
	if n, _ := h.s.Hold(ctx, []uint64{m.Seq}); n != 0 {
		t.Errorf("second Hold counted %d", n)
	}
	h.fd.openErr = nil
	h.run(2 * time.Hour)
	if len(h.fd.sent()) != 0 {
		t.Fatal("a held message was sent")
	}
	if n, err := h.s.Release(ctx, []uint64{m.Seq}); n != 1 || err != nil {
		t.Fatalf("Release = %d, %v", n, err)
	}
	if n, _ := h.s.Release(ctx, []uint64{m.Seq, 424242}); n != 0 {
		t.Errorf("Release of a message not held counted %d", n)
	}
	// The recipient keeps its retry time; retry makes it due now.
	if n, err := h.s.Retry(ctx, []uint64{m.Seq}); err != nil || n > 1 {
		t.Fatalf("Retry = %d, %v", n, err)
	}
	h.run(time.Second)
	if txns := h.fd.sent(); len(txns) != 1 {
		t.Fatalf("after release and retry: %d transactions, want exactly 1", len(txns))
	}
	if h.pending() != 0 {
		t.Errorf("%d messages left", h.pending())
	}
}

func TestDeleteAndBounce(t *testing.T) {
	h := newHarness(t, "")
	h.fd.reply = func(d delivery.Destination, rcpt string) delivery.Result {
		if d.Domain == "origin.test" {
			return delivery.Result{Status: delivery.StatusSent}
		}
		return deferAll(d, rcpt)
	}
	del := h.enqueue("s@origin.test", 1000, "a@one.test")
	bnc := h.enqueue("s@origin.test", 1000, "b@one.test", "c@one.test")
	h.run(time.Second)
	ctx := context.Background()
	if n, err := h.s.Delete(ctx, []uint64{del.Seq}); n != 1 || err != nil {
		t.Fatalf("Delete = %d, %v", n, err)
	}
	if n, err := h.s.Bounce(ctx, []uint64{bnc.Seq}); n != 1 || err != nil {
		t.Fatalf("Bounce = %d, %v", n, err)
	}
	h.run(time.Hour)
	var reports []sentTxn
	for _, tx := range h.fd.sent() {
		if tx.domain == "origin.test" {
			reports = append(reports, tx)
		} else if tx.at.After(testStart.Add(time.Minute)) {
			t.Errorf("deleted or bounced mail was tried again at %v: %v", tx.at, tx.rcpts)
		}
	}
	if len(reports) != 1 {
		t.Fatalf("%d reports, want 1 (for the bounced message only)", len(reports))
	}
	p, err := dsn.Parse(reports[0].body)
	if err != nil || len(p.Recipients) != 2 || p.Recipients[0].Status != "5.0.0" ||
		!strings.Contains(p.Recipients[0].DiagnosticCode, "administrator") {
		t.Errorf("bounce report = %+v, %v", p, err)
	}
	if h.pending() != 0 {
		t.Errorf("%d messages left", h.pending())
	}
}

func TestSuspendAndResume(t *testing.T) {
	h := newHarness(t, `
[[operator]]
name = "bigmail"
domains = ["bigmail.test"]
`)
	ctx := context.Background()
	if err := h.s.Suspend(ctx, "nosuch", testStart.Add(time.Hour), "test"); !errors.Is(err, ErrUnknownOperator) {
		t.Errorf("Suspend of an unknown operator: %v", err)
	}
	if err := h.s.Suspend(ctx, "bigmail", testStart.Add(30*time.Minute), "manual"); err != nil {
		t.Fatal(err)
	}
	h.enqueue("s@origin.test", 1000, "a@bigmail.test")
	h.run(29 * time.Minute)
	if len(h.fd.sent()) != 0 {
		t.Fatal("sent to a suspended operator")
	}
	h.run(2 * time.Minute)
	if len(h.fd.sent()) != 1 {
		t.Fatalf("not sent when the suspension ended: %d", len(h.fd.sent()))
	}
	// A resumed operator sends at once.
	h.s.Suspend(ctx, "bigmail", h.clock.Now().Add(time.Hour), "manual")
	h.enqueue("s@origin.test", 1000, "b@bigmail.test")
	h.run(time.Second)
	if err := h.s.Resume(ctx, "bigmail"); err != nil {
		t.Fatal(err)
	}
	h.run(time.Second)
	if len(h.fd.sent()) != 2 {
		t.Errorf("resume did not send at once: %d transactions", len(h.fd.sent()))
	}
}

func TestReconfigureChangesQuotaKeepingUsage(t *testing.T) {
	extra := `
[[operator]]
name = "bigmail"
domains = ["bigmail.test"]
quota = 3
window = "1h"
`
	h := newHarness(t, extra)
	for range 6 {
		h.enqueue("s@origin.test", 1000, "a@bigmail.test")
	}
	h.run(time.Minute)
	if n := len(h.fd.sent()); n != 3 {
		t.Fatalf("%d sent under quota 3", n)
	}
	cfg, err := config.Parse([]byte(baseConfig+strings.Replace(extra, "quota = 3", "quota = 5", 1)), "new.toml")
	if err != nil {
		t.Fatal(err)
	}
	if err := h.s.Reconfigure(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	h.run(time.Minute)
	if n := len(h.fd.sent()); n != 5 {
		t.Errorf("after raising the quota to 5 in the same window: %d sent, want 5", n)
	}
	used, _ := h.store.Used(context.Background(), "bigmail", testStart.Truncate(time.Hour))
	if used != 5000 {
		t.Errorf("usage = %d milli, want 5000", used)
	}
}

// A reload while a transaction is in flight: the transaction finishes on
// the limits of its dispatch and the message leaves the queue. (The race
// detector cannot prove the absence of the race here, since the test's
// own channels order the reload before the worker resumes; the workers'
// reads of job.limits and conf() are what keep it away.)
func TestReconfigureWhileDelivering(t *testing.T) {
	extra := `
[[operator]]
name = "bigmail"
domains = ["bigmail.test"]
quota = 10
window = "1h"
refund_rejected = true
envelope_from = "bounces@relay.test"
`
	h := newHarness(t, extra)
	inSend := make(chan struct{}, 10)
	release := make(chan struct{})
	h.fd.hook = func(delivery.Destination) {
		inSend <- struct{}{}
		<-release
	}
	h.enqueue("s@origin.test", 1000, "a@bigmail.test")
	h.s.poke()
	select {
	case <-inSend:
	case <-time.After(10 * time.Second):
		t.Fatal("no delivery started")
	}
	cfg, err := config.Parse([]byte(baseConfig+strings.Replace(extra, "quota = 10", "quota = 20", 1)), "new.toml")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- h.s.Reconfigure(context.Background(), cfg) }()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	close(release)
	h.run(time.Second)
	if h.pending() != 0 || len(h.fd.sent()) != 1 {
		t.Errorf("after the reload: %d pending, %d sent", h.pending(), len(h.fd.sent()))
	}
}
