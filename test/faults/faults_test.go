package faults

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/miekg/dns"

	"github.com/sluice-mta/sluice/dsn"
	"github.com/sluice-mta/sluice/internal/testmx"
	"github.com/sluice-mta/sluice/test/harness"
)

// faultWait bounds each wait for a deferral, a delivery or a bounce; the
// retry schedule is 1s, so each takes a few seconds at most.
const faultWait = 30 * time.Second

// faultDomains get one fake MX each; origin.test receives bounces.
var faultDomains = []string{"origin.test", "timeout.test", "servfail.test", "trunc.test",
	"drop.test", "greet.test", "stall.test"}

// startFaultWorld runs sluice on 127.0.0.1 at the fake MXes' port, so that
// an MX record pointing at 127.0.0.1 points at sluice itself.
func startFaultWorld(t *testing.T) (*harness.World, *harness.Daemon) {
	w := harness.NewWorld(t, faultDomains...)
	if !harness.PortFree("127.0.0.1", w.Port) {
		t.Fatalf("port %d is taken on 127.0.0.1; sluice must listen there for the loop case", w.Port)
	}
	cfg := w.Config(t.TempDir())
	cfg.Listen = fmt.Sprintf("127.0.0.1:%d", w.Port)
	cfg.Delivery = "data_timeout = \"1s\"\ncommand_timeout = \"2s\""
	return w, harness.Start(t, cfg)
}

type faultCase struct {
	name   string
	domain string
	inject func(*harness.World)
	// deferDSN prefixes the dsn of the deferral the fault must cause; ""
	// means the message must go out without any deferral.
	deferDSN string
	heal     func(*harness.World) // after the deferral; nil: the fault is one-shot
	check    func(*testing.T, *harness.World)
}

// TestFaultsDeferThenDeliver injects one fault per destination domain and
// checks that it defers the recipient (or, for a truncated UDP answer, is
// handled without deferral) and that the message is delivered once the
// fault is gone. The cases run in parallel against one daemon.
func TestFaultsDeferThenDeliver(t *testing.T) {
	w, d := startFaultWorld(t)
	stall := 3 * time.Second // past data_timeout = 1s
	cases := []faultCase{
		{name: "DNS timeout defers", domain: "timeout.test",
			inject:   func(w *harness.World) { w.DNS.SetDrop("timeout.test", true) },
			deferDSN: "4.4.3",
			heal:     func(w *harness.World) { w.DNS.SetDrop("timeout.test", false) }},
		{name: "DNS SERVFAIL defers", domain: "servfail.test",
			inject:   func(w *harness.World) { w.DNS.SetRcode("servfail.test", dns.RcodeServerFailure) },
			deferDSN: "4.4.3",
			heal:     func(w *harness.World) { w.DNS.SetRcode("servfail.test", dns.RcodeSuccess) }},
		{name: "truncated UDP answer is retried over TCP", domain: "trunc.test",
			inject: func(w *harness.World) {
				w.DNS.SetTruncateUDP("trunc.test", true)
				w.DNS.SetTruncateUDP("mx.trunc.test", true)
			},
			check: func(t *testing.T, w *harness.World) {
				// The UDP answer carries no record: only TCP could have
				// told sluice where mx.trunc.test is.
				if n := w.DNS.Queries("trunc.test", dns.TypeMX); n < 2 {
					t.Errorf("MX queries for trunc.test: got %d, want a UDP and a TCP one", n)
				}
			}},
		{name: "remote drops the connection mid-DATA", domain: "drop.test", deferDSN: "4.",
			inject: func(w *harness.World) {
				w.MX["drop.test"].SetHooks(testmx.Hooks{DropMidData: func(n int) bool { return n == 1 }})
			}},
		{name: "remote answers 421 at greeting", domain: "greet.test", deferDSN: "4.",
			inject: func(w *harness.World) {
				w.MX["greet.test"].SetHooks(testmx.Hooks{Greeting: func(n int) *smtp.SMTPError {
					if n == 1 {
						return &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 3, 2}, Message: "not now"}
					}
					return nil
				}})
			}},
		{name: "remote stalls past the data timeout", domain: "stall.test", deferDSN: "4.",
			inject: func(w *harness.World) { w.MX["stall.test"].SetHooks(testmx.Hooks{StallData: stall}) },
			heal:   func(w *harness.World) { w.MX["stall.test"].SetHooks(testmx.Hooks{}) },
			check: func(t *testing.T, w *harness.World) {
				// The stalled remote had the whole message and keeps it
				// when it finally answers: the retry is a duplicate, the
				// one at-least-once delivery allows, and sluice says so.
				w.MX["stall.test"].WaitMessages(t, 2, faultWait)
				if !warnedDuplicate(d, "x@stall.test") {
					t.Errorf("no warning that the retry may duplicate the message")
				}
			}},
	}
	t.Run("group", func(t *testing.T) {
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				runFaultCase(t, w, d, tc)
			})
		}
	})
	if n := len(w.MX["origin.test"].Messages()); n != 0 {
		t.Errorf("the sender got %d bounces, want none: every fault is temporary", n)
	}
}

// warnedDuplicate reports whether the daemon logged that a retry to
// may duplicate a message.
func warnedDuplicate(d *harness.Daemon, to string) bool {
	for _, r := range d.LogRecords("connection lost after the final dot; a retry may duplicate the message") {
		if r["to"] == to {
			return true
		}
	}
	return false
}

func runFaultCase(t *testing.T, w *harness.World, d *harness.Daemon, tc faultCase) {
	tc.inject(w)
	to := "x@" + tc.domain
	if _, err := harness.Send(d.Addr(), "alice@origin.test", []string{to}, "Subject: "+tc.name+"\n\nbody\n"); err != nil {
		t.Fatalf("send: %v", err)
	}
	if tc.deferDSN != "" {
		rec, err := d.WaitDelivery(to, "deferred", faultWait)
		if err != nil {
			t.Fatal(err)
		}
		if got := harness.Str(rec, "dsn"); !strings.HasPrefix(got, tc.deferDSN) {
			t.Errorf("deferral dsn: got %q, want prefix %q (reply %q)", got, tc.deferDSN, harness.Str(rec, "reply"))
		}
		if tc.heal != nil {
			tc.heal(w)
		}
	}
	if _, err := d.WaitDelivery(to, "sent", faultWait); err != nil {
		t.Fatal(err)
	}
	if got := w.MX[tc.domain].Messages(); len(got) == 0 || got[len(got)-1].To[0] != to {
		t.Errorf("MX for %s: got %d messages, want the one for %s", tc.domain, len(got), to)
	}
	if tc.deferDSN == "" {
		for _, r := range d.Deliveries(to) {
			if r["status"] != "sent" {
				t.Errorf("unexpected delivery record %v", r)
			}
		}
	}
	if tc.check != nil {
		tc.check(t, w)
	}
}

// TestMXPointingAtSluiceIsALoop points a domain's MX at 127.0.0.1, where
// sluice itself listens on the delivery port: the recipient must fail at
// once with 5.4.6 and the sender get one bounce saying so.
func TestMXPointingAtSluiceIsALoop(t *testing.T) {
	w, d := startFaultWorld(t)
	w.DNS.AddMX("loop.test", 10, "self.relay.test")
	w.DNS.AddA("self.relay.test", "127.0.0.1")
	to := "x@loop.test"
	if _, err := harness.Send(d.Addr(), "alice@origin.test", []string{to}, "Subject: loop\n\nbody\n"); err != nil {
		t.Fatalf("send: %v", err)
	}
	rec, err := d.WaitDelivery(to, "bounced", faultWait)
	if err != nil {
		t.Fatal(err)
	}
	if got := harness.Str(rec, "dsn"); got != "5.4.6" {
		t.Errorf("dsn: got %q, want 5.4.6 (reply %q)", got, harness.Str(rec, "reply"))
	}
	b := w.MX["origin.test"].WaitMessages(t, 1, faultWait)[0]
	if b.From != "" || len(b.To) != 1 || b.To[0] != "alice@origin.test" {
		t.Fatalf("bounce envelope: from %q to %v, want <> to alice@origin.test", b.From, b.To)
	}
	p, err := dsn.Parse(b.Data)
	if err != nil {
		t.Fatalf("bounce is not a DSN: %v\n%s", err, b.Data)
	}
	if len(p.Recipients) != 1 || p.Recipients[0].FinalRecipient != to || p.Recipients[0].Status != "5.4.6" {
		t.Errorf("DSN recipients: got %+v, want %s with status 5.4.6", p.Recipients, to)
	}
	if _, ok := d.WaitQueueEmpty(faultWait); !ok {
		t.Error("queue not empty after the bounce went out")
	}
}
