package main

import (
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/miekg/dns"

	"github.com/sluice-mta/sluice/dsn"
	"github.com/sluice-mta/sluice/internal/testmx"
)

func TestEndToEndTwoDomains(t *testing.T) {
	w := newWorld(t, "one.test", "two.test")
	r := startTestDaemon(t, t.TempDir(), w.daemonConfig(t.TempDir(), ""))
	send(t, r.addr(), "alice@origin.test", []string{"a@one.test", "b@two.test", "c@one.test"}, testMessage("alice@origin.test", "two domains"))
	one := w.mx["one.test"].WaitMessages(t, 1, 10*time.Second)
	two := w.mx["two.test"].WaitMessages(t, 1, 10*time.Second)
	if got := strings.Join(one[0].To, ","); got != "a@one.test,c@one.test" {
		t.Errorf("one.test got recipients %s", got)
	}
	if got := strings.Join(two[0].To, ","); got != "b@two.test" {
		t.Errorf("two.test got recipients %s", got)
	}
	if one[0].From != "alice@origin.test" || !strings.Contains(string(one[0].Data), "Received: from client.test") {
		t.Errorf("one.test got from=%q data=%q", one[0].From, one[0].Data)
	}
}

func TestEndToEndRefusedRecipientBouncesOnce(t *testing.T) {
	w := newWorld(t, "one.test", "origin.test")
	w.mx["one.test"].SetHooks(testmx.Hooks{Rcpt: func(to string, n int) *smtp.SMTPError {
		if strings.HasPrefix(to, "nobody@") {
			return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user here"}
		}
		return nil
	}})
	r := startTestDaemon(t, t.TempDir(), w.daemonConfig(t.TempDir(), ""))
	id := send(t, r.addr(), "alice@origin.test", []string{"nobody@one.test", "bob@one.test"}, testMessage("alice@origin.test", "bounce me"))
	got := w.mx["one.test"].WaitMessages(t, 1, 10*time.Second)
	if strings.Join(got[0].To, ",") != "bob@one.test" {
		t.Errorf("one.test received for %v, want only bob", got[0].To)
	}
	bounces := w.mx["origin.test"].WaitMessages(t, 1, 10*time.Second)
	b := bounces[0]
	if b.From != "" || len(b.To) != 1 || b.To[0] != "alice@origin.test" {
		t.Fatalf("bounce envelope from=%q to=%v", b.From, b.To)
	}
	p, err := dsn.Parse(b.Data)
	if err != nil {
		t.Fatalf("bounce is not a DSN: %v\n%s", err, b.Data)
	}
	if len(p.Recipients) != 1 {
		t.Fatalf("DSN names %d recipients, want 1", len(p.Recipients))
	}
	pr := p.Recipients[0]
	if pr.FinalRecipient != "nobody@one.test" || pr.Action != "failed" || pr.Status != "5.1.1" ||
		!strings.Contains(pr.DiagnosticCode, "550 5.1.1 no such user here") {
		t.Errorf("DSN recipient = %+v", pr)
	}
	if !strings.Contains(string(b.Data), id) {
		t.Errorf("bounce does not mention queue ID %s", id)
	}
	// Exactly one: nothing else arrives while the queue drains.
	waitQueueEmpty(t, r)
	if n := len(w.mx["origin.test"].Messages()); n != 1 {
		t.Errorf("sender received %d bounces, want 1", n)
	}
}

func TestEndToEndTemporaryFailureThenDelivery(t *testing.T) {
	w := newWorld(t, "one.test")
	w.mx["one.test"].SetHooks(testmx.Hooks{Rcpt: func(to string, n int) *smtp.SMTPError {
		if n == 1 {
			return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try again"}
		}
		return nil
	}})
	r := startTestDaemon(t, t.TempDir(), w.daemonConfig(t.TempDir(), ""))
	send(t, r.addr(), "alice@origin.test", []string{"bob@one.test"}, testMessage("alice@origin.test", "retry"))
	got := w.mx["one.test"].WaitMessages(t, 1, 15*time.Second)
	if got[0].To[0] != "bob@one.test" {
		t.Errorf("delivered to %v", got[0].To)
	}
	waitQueueEmpty(t, r)
}

func TestEndToEndNullMXBounces(t *testing.T) {
	w := newWorld(t, "origin.test")
	w.dns.SetNullMX("nomail.test")
	r := startTestDaemon(t, t.TempDir(), w.daemonConfig(t.TempDir(), ""))
	send(t, r.addr(), "alice@origin.test", []string{"x@nomail.test"}, testMessage("alice@origin.test", "null mx"))
	b := w.mx["origin.test"].WaitMessages(t, 1, 10*time.Second)[0]
	p, err := dsn.Parse(b.Data)
	if err != nil || len(p.Recipients) != 1 || p.Recipients[0].Status != "5.1.10" {
		t.Errorf("null MX bounce = %+v, %v", p, err)
	}
}

func TestEndToEndServfailDefers(t *testing.T) {
	w := newWorld(t, "origin.test")
	w.dns.SetRcode("broken.test", dns.RcodeServerFailure)
	r := startTestDaemon(t, t.TempDir(), w.daemonConfig(t.TempDir(), ""))
	id := send(t, r.addr(), "alice@origin.test", []string{"x@broken.test"}, testMessage("alice@origin.test", "servfail"))
	d := waitRecipientState(t, r, id, "deferred", 10*time.Second)
	if !strings.Contains(d.Recipients[0].LastReply, "4.4.3") {
		t.Errorf("last reply after SERVFAIL = %q, want a 4.4.3 temporary DNS failure", d.Recipients[0].LastReply)
	}
	if n := len(w.mx["origin.test"].Messages()); n != 0 {
		t.Errorf("SERVFAIL produced %d bounces", n)
	}
}

func TestEndToEndQueueSurvivesRestart(t *testing.T) {
	w := newWorld(t, "one.test")
	w.mx["one.test"].SetHooks(testmx.Hooks{Greeting: func(n int) *smtp.SMTPError {
		return &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 3, 2}, Message: "not now"}
	}})
	dataDir := t.TempDir()
	cfg := w.daemonConfig(dataDir, "")
	r := startTestDaemon(t, t.TempDir(), cfg)
	id := send(t, r.addr(), "alice@origin.test", []string{"bob@one.test"}, testMessage("alice@origin.test", "restart"))
	waitRecipientState(t, r, id, "deferred", 10*time.Second)
	r.stop()
	w.mx["one.test"].SetHooks(testmx.Hooks{})
	r2 := startTestDaemon(t, t.TempDir(), cfg)
	got := w.mx["one.test"].WaitMessages(t, 1, 15*time.Second)
	if got[0].To[0] != "bob@one.test" {
		t.Errorf("after restart delivered to %v", got[0].To)
	}
	waitQueueEmpty(t, r2)
}
