package scheduler

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/sluice-mta/sluice/dsn"
)

const verpOperator = `
[[operator]]
name = "bigmail"
domains = ["bigmail.test"]
envelope_from = "bounces@relay.test"
verp = true
`

func TestVERPReturnPathAndLateBounce(t *testing.T) {
	h := newHarness(t, verpOperator)
	m := h.enqueue("alice@origin.test", 1000, "a@bigmail.test", "b@bigmail.test")
	h.run(time.Second)
	txns := h.fd.sent()
	if len(txns) != 2 {
		t.Fatalf("%d transactions, want one per recipient (each has its own return path)", len(txns))
	}
	var pathB string
	for _, tx := range txns {
		if !strings.HasPrefix(tx.from, "bounces+"+m.ID+"-") || !strings.HasSuffix(tx.from, "=bigmail.test@relay.test") {
			t.Errorf("return path %q is not a VERP address for %s", tx.from, m.ID)
		}
		if tx.rcpts[0] == "b@bigmail.test" {
			pathB = tx.from
		}
	}
	if !h.s.IsLocal(pathB) || h.s.IsLocal("bounces+"+m.ID+"-1-aaaaaaaa=bigmail.test@relay.test") || h.s.IsLocal("bounces@relay.test") {
		t.Errorf("IsLocal does not tell our signed return paths from others")
	}
	if h.pending() != 0 {
		t.Fatalf("message still queued after delivery")
	}
	// Two days later the remote bounces b.
	h.run(48 * time.Hour)
	bounce, err := dsn.Build(&dsn.Report{
		ReportingMTA: "mx.bigmail.test", From: "MAILER-DAEMON@mx.bigmail.test", To: pathB, Date: h.clock.Now(),
		MessageID: "<late@mx.bigmail.test>", ArrivalDate: testStart,
		Recipients: []dsn.Recipient{{FinalRecipient: "b@bigmail.test", Action: dsn.ActionFailed, Status: "5.2.1",
			DiagnosticCode: "smtp; 550 5.2.1 mailbox disabled", RemoteMTA: "store.bigmail.test"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.s.Receive(context.Background(), "", []string{pathB}, bounce, "192.0.2.9"); err != nil {
		t.Fatal(err)
	}
	// A second copy of the same bounce is not reported twice.
	if err := h.s.Receive(context.Background(), "", []string{pathB}, bounce, "192.0.2.9"); err != nil {
		t.Fatal(err)
	}
	h.run(time.Second)
	reps := reportsTo(t, h, "origin.test")
	if len(reps) != 1 {
		t.Fatalf("%d reports to the original sender, want 1", len(reps))
	}
	r := reps[0].Recipients[0]
	if r.FinalRecipient != "b@bigmail.test" || r.Action != "failed" || r.Status != "5.2.1" || !strings.Contains(r.DiagnosticCode, "mailbox disabled") {
		t.Errorf("report recipient = %+v", r)
	}
	recs, err := h.store.Sent(m.Seq)
	if err != nil || len(recs) != 2 {
		t.Fatalf("sent records = %d, %v", len(recs), err)
	}
	for _, rec := range recs {
		if (rec.Addr == "b@bigmail.test") != (rec.Returned != nil) {
			t.Errorf("record %s returned = %+v", rec.Addr, rec.Returned)
		}
	}
}

func TestPlainTextLateBounce(t *testing.T) {
	h := newHarness(t, verpOperator)
	h.enqueue("alice@origin.test", 1000, "c@bigmail.test")
	h.run(time.Second)
	path := h.fd.sent()[0].from
	text := "From: MAILER-DAEMON@old.bigmail.test\r\nTo: " + path + "\r\nSubject: failure notice\r\n\r\n" +
		"Hi. This is the qmail-send program.\r\n<c@bigmail.test>:\r\n550 5.1.1 sorry, no mailbox here by that name\r\n"
	if err := h.s.Receive(context.Background(), "", []string{path}, []byte(text), "192.0.2.9"); err != nil {
		t.Fatal(err)
	}
	h.run(time.Second)
	reps := reportsTo(t, h, "origin.test")
	if len(reps) != 1 || reps[0].Recipients[0].Status != "5.1.1" || reps[0].Recipients[0].FinalRecipient != "c@bigmail.test" {
		t.Fatalf("reports = %+v", reps)
	}
}
