package scheduler

import (
	"strings"
	"testing"
	"time"

	"github.com/sluice-mta/sluice/delivery"
	"github.com/sluice-mta/sluice/dsn"
	"github.com/sluice-mta/sluice/queue"
)

const delayConfig = `
hostname = "relay.test"
data_dir = "."
[delivery]
retry_schedule = ["5m", "10m"]
max_queue_lifetime = "2d"
delay_warning_after = "30m"

[[operator]]
name = "bigmail"
domains = ["bigmail.test"]
quota = 1
window = "1h"
`

// reportsTo returns the reports delivered to the sender's domain.
func reportsTo(t *testing.T, h *harness, domain string) []*dsn.Parsed {
	t.Helper()
	var out []*dsn.Parsed
	for _, tx := range h.fd.sent() {
		if tx.domain != domain {
			continue
		}
		p, err := dsn.Parse(tx.body)
		if err != nil {
			t.Fatalf("report to %s does not parse: %v", domain, err)
		}
		out = append(out, p)
	}
	return out
}

func TestDelayWarningOnceSaysBudget(t *testing.T) {
	h := newHarnessConfig(t, t.TempDir(), delayConfig)
	h.enqueue("s@origin.test", 1000, "first@bigmail.test") // takes the 10:00 hour's budget
	m := h.enqueue("s@origin.test", 1000, "second@bigmail.test")
	h.run(29 * time.Minute)
	if n := len(reportsTo(t, h, "origin.test")); n != 0 {
		t.Fatalf("%d reports before delay_warning_after", n)
	}
	h.run(2 * time.Minute)
	reps := reportsTo(t, h, "origin.test")
	if len(reps) != 1 {
		t.Fatalf("%d delay reports after 31m, want 1", len(reps))
	}
	r := reps[0].Recipients[0]
	if r.Action != "delayed" || r.FinalRecipient != "second@bigmail.test" || !strings.HasPrefix(r.Status, "4.") {
		t.Errorf("delay report recipient = %+v", r)
	}
	var body string
	for _, tx := range h.fd.sent() {
		if tx.domain == "origin.test" {
			body = string(tx.body)
		}
	}
	if !strings.Contains(strings.Join(strings.Fields(body), " "), "waiting for the operator's hourly budget, next window at 11:00 UTC") {
		t.Errorf("delay report does not say why the mail waits:\n%s", body)
	}
	if !strings.Contains(body, "Will-Retry-Until:") {
		t.Error("delay report lacks Will-Retry-Until")
	}
	got, _ := h.store.Get(m.Seq)
	if !got.Recipients[0].DelayNotified || got.Recipients[0].Attempts != 0 {
		t.Errorf("after the warning: %+v", got.Recipients[0])
	}
	// Later waiting produces no second warning; the mail goes at 11:00.
	h.run(2 * time.Hour)
	if n := len(reportsTo(t, h, "origin.test")); n != 1 {
		t.Errorf("%d reports in all, want exactly one delay warning", n)
	}
	if h.pending() != 0 {
		t.Errorf("%d messages left", h.pending())
	}
}

func TestDelayWarningNamesLastReply(t *testing.T) {
	h := newHarnessConfig(t, t.TempDir(), delayConfig)
	h.fd.reply = func(d delivery.Destination, rcpt string) delivery.Result {
		if d.Domain == "origin.test" {
			return delivery.Result{Status: delivery.StatusSent}
		}
		return delivery.Result{Status: delivery.StatusDeferred, Reply: delivery.Reply{Code: 452, Enhanced: "4.2.2", Text: "mailbox full", RemoteHost: "mx.other.test"}}
	}
	h.enqueue("s@origin.test", 1000, "x@other.test")
	h.run(40 * time.Minute)
	reps := reportsTo(t, h, "origin.test")
	if len(reps) != 1 || reps[0].Recipients[0].Status != "4.2.2" || !strings.Contains(reps[0].Recipients[0].DiagnosticCode, "mailbox full") {
		t.Fatalf("delay reports = %+v", reps)
	}
}

func TestNotifyNeverAndSuccess(t *testing.T) {
	h := newHarness(t, "")
	h.fd.reply = func(d delivery.Destination, rcpt string) delivery.Result {
		if strings.HasPrefix(rcpt, "bad") {
			return delivery.Result{Status: delivery.StatusFailed, Reply: delivery.Reply{Code: 550, Enhanced: "5.1.1", Text: "unknown"}}
		}
		return delivery.Result{Status: delivery.StatusSent, Reply: delivery.Reply{Code: 250, Enhanced: "2.0.0", Text: "ok", RemoteHost: "mx.one.test"}}
	}
	never := h.enqueueWith("s@origin.test", queue.NotifyNever, "bad1@one.test")
	_ = never
	h.enqueueWith("t@origin.test", queue.NotifySuccess|queue.NotifyFailure, "good@one.test", "bad2@one.test")
	h.run(time.Second)
	reps := reportsTo(t, h, "origin.test")
	if len(reps) != 1 {
		t.Fatalf("%d reports, want 1 (none for NOTIFY=NEVER)", len(reps))
	}
	actions := map[string]string{}
	for _, r := range reps[0].Recipients {
		actions[r.FinalRecipient] = r.Action
	}
	if actions["good@one.test"] != "relayed" || actions["bad2@one.test"] != "failed" || len(actions) != 2 {
		t.Errorf("report actions = %v, want good relayed and bad2 failed", actions)
	}
	// When the next hop takes the DSN parameters, it owes the success report.
	h.fd.dsn = true
	h.enqueueWith("u@origin.test", queue.NotifySuccess, "good2@one.test")
	h.run(time.Second)
	if n := len(reportsTo(t, h, "origin.test")); n != 1 {
		t.Errorf("%d reports after a relay to a DSN-capable server, want still 1", n)
	}
}
