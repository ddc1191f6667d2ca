package e2e

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/sluice-mta/sluice/dsn"
	"github.com/sluice-mta/sluice/internal/postfixinst"
	"github.com/sluice-mta/sluice/internal/testmx"
	"github.com/sluice-mta/sluice/scheduler"
	"github.com/sluice-mta/sluice/test/harness"
)

// The operator's budget: 2 units per 2s window.
const (
	quota  = 2
	window = 2 * time.Second
)

// Counts of the two kinds of mail and the bound on each wait.
const (
	normalMsgs = 6  // from alice, no header: 1 unit each
	vipMsgs    = 10 // from vip, header prepended by Postfix: 0.2 unit each
	e2eWait    = 90 * time.Second
)

var seqHeader = regexp.MustCompile(`(?m)^X-E2E-Seq: ([a-z]+\d+)\r?$`)

// startPostfix starts a private Postfix whose relayhost is sluice at
// relay, skipping (or failing under SLUICE_REQUIRE_SERVERS=1) when
// Postfix cannot run here. It is stopped when the test ends, whatever
// happens.
func startPostfix(t *testing.T, relay string) *postfixinst.Instance {
	t.Helper()
	if err := postfixinst.Check(); err != nil {
		if os.Getenv(harness.RequireEnv) == "1" {
			t.Fatalf("%s=1 but %v", harness.RequireEnv, err)
		}
		t.Skip(err)
	}
	in, err := postfixinst.Start(postfixinst.Options{
		Dir:          t.TempDir(),
		SMTPAddr:     fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t, "127.0.0.1")),
		Relayhost:    "[" + strings.Replace(relay, ":", "]:", 1),
		HeaderChecks: []string{`/^From:.*<vip@origin\.test>/ PREPEND X-Relay-Priority: 5`},
	})
	if err != nil {
		t.Fatalf("start postfix: %v", err)
	}
	t.Cleanup(func() {
		if err := in.Stop(); err != nil {
			t.Errorf("stop postfix: %v", err)
		}
		if t.Failed() {
			t.Logf("postfix log:\n%s", in.Log())
		}
	})
	return in
}

// TestPostfixInFront sends mail into Postfix and checks that sluice gets
// it from Postfix, applies the operator budget and the priority Postfix's
// header_checks set, delivers to the remote MXes, and bounces a 5xx back
// to the sender as a DSN.
func TestPostfixInFront(t *testing.T) {
	w := harness.NewWorld(t, "bigmail.test", "bigmail.test.de", "other.test", "origin.test")
	w.MX["other.test"].SetHooks(testmx.Hooks{Rcpt: func(to string, _ int) *smtp.SMTPError {
		if strings.HasPrefix(to, "nobody@") {
			return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"}
		}
		return nil
	}})
	cfg := w.Config(t.TempDir())
	cfg.Extra = fmt.Sprintf(`
[[operator]]
name = "bigmail"
domains = ["bigmail.test", "bigmail.test.de"]
quota = %d
window = "%s"
max_connections = 2
`, quota, window)
	d := harness.Start(t, cfg)
	pf := startPostfix(t, d.Addr())

	// Normal mail first (one through Postfix's sendmail, the rest over
	// SMTP); it spends the budget, so the rest waits in sluice.
	for i := range normalMsgs {
		send := submitSMTP
		if i == 0 {
			send = submitSendmail
		}
		send(t, pf, "alice@origin.test", rcptFor(i), fmt.Sprintf("n%d", i))
	}
	waitAccepted(t, d, "alice@origin.test", normalMsgs)
	for i := range vipMsgs {
		submitSMTP(t, pf, "vip@origin.test", rcptFor(i+normalMsgs), fmt.Sprintf("v%d", i))
	}
	vipQueued := waitAccepted(t, d, "vip@origin.test", vipMsgs)
	submitSMTP(t, pf, "alice@origin.test", "nobody@other.test", "bounce0")

	arrivals := waitArrivals(t, w, normalMsgs+vipMsgs)
	checkFromPostfix(t, d, pf, arrivals)
	checkBudgetAndPriority(t, arrivals, vipQueued)
	checkBounce(t, w)
}

func rcptFor(i int) string {
	if i%2 == 0 {
		return fmt.Sprintf("u%d@bigmail.test", i)
	}
	return fmt.Sprintf("u%d@bigmail.test.de", i)
}

func message(from, to, seq string) string {
	return fmt.Sprintf("From: <%s>\nTo: <%s>\nSubject: e2e %s\nMessage-ID: <%s@e2e.test>\nX-E2E-Seq: %s\n\nhello %s\n",
		from, to, seq, seq, seq, seq)
}

// submitSMTP hands one message to Postfix's smtpd.
func submitSMTP(t *testing.T, pf *postfixinst.Instance, from, to, seq string) {
	t.Helper()
	if _, err := harness.Send(pf.SMTPAddr, from, []string{to}, message(from, to, seq)); err != nil &&
		!strings.Contains(err.Error(), "queue ID") { // Postfix says "queued as X", without "Ok:"
		t.Fatalf("submit %s to postfix: %v", seq, err)
	}
}

// submitSendmail hands one message to the instance's sendmail command.
func submitSendmail(t *testing.T, pf *postfixinst.Instance, from, to, seq string) {
	t.Helper()
	bin, err := exec.LookPath("sendmail")
	if err != nil {
		bin = "/usr/sbin/sendmail"
	}
	cmd := exec.Command(bin, "-C", pf.ConfDir, "-f", from, "--", to)
	cmd.Env = append(os.Environ(), "MAIL_CONFIG="+pf.ConfDir)
	cmd.Stdin = strings.NewReader(message(from, to, seq))
	done := make(chan error, 1)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("sendmail: %v", err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("sendmail -C %s: %v: %s", pf.ConfDir, err, out.Bytes())
		}
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		t.Fatal("sendmail did not finish in 30s")
	}
}

// waitAccepted waits until sluice logged n accepted messages from sender
// and returns the time of the last one.
func waitAccepted(t *testing.T, d *harness.Daemon, sender string, n int) time.Time {
	t.Helper()
	var last time.Time
	ok := harness.Poll(e2eWait, func() bool {
		count := 0
		for _, r := range d.LogRecords("accepted") {
			if r["from"] == sender {
				count++
				last, _ = time.Parse(time.RFC3339Nano, harness.Str(r, "time"))
			}
		}
		return count >= n
	})
	if !ok {
		t.Fatalf("sluice did not accept %d messages from %s through Postfix within %v", n, sender, e2eWait)
	}
	return last
}

type arrival struct {
	seq  string
	at   time.Time
	data []byte
}

// waitArrivals waits until the operator's MXes received n messages.
func waitArrivals(t *testing.T, w *harness.World, n int) []arrival {
	t.Helper()
	var got []arrival
	deadline := time.After(e2eWait)
	for range 1000 { // bounded: each round waits for a message or the deadline
		// Take the notification channels before reading, so that a
		// message arriving in between still wakes this loop.
		one, two := w.MX["bigmail.test"].Notify(), w.MX["bigmail.test.de"].Notify()
		got = got[:0]
		for _, dom := range []string{"bigmail.test", "bigmail.test.de"} {
			for _, m := range w.MX[dom].Messages() {
				sm := seqHeader.FindSubmatch(m.Data)
				if sm == nil {
					t.Fatalf("message without X-E2E-Seq at %s:\n%s", dom, m.Data)
				}
				got = append(got, arrival{seq: string(sm[1]), at: m.Received, data: m.Data})
			}
		}
		if len(got) >= n {
			return got
		}
		select {
		case <-one:
		case <-two:
		case <-deadline:
			t.Fatalf("the operator's MXes received %d of %d messages within %v", len(got), n, e2eWait)
		}
	}
	t.Fatal("too many rounds waiting for arrivals")
	return nil
}

// checkFromPostfix: every message passed through Postfix (its Received
// header and sluice's naming Postfix's HELO), Postfix logged the relay to
// sluice, and sluice stripped the priority header before delivery.
func checkFromPostfix(t *testing.T, d *harness.Daemon, pf *postfixinst.Instance, got []arrival) {
	t.Helper()
	for _, a := range got {
		hdrs, _, _ := bytes.Cut(a.data, []byte("\r\n\r\n"))
		if !bytes.Contains(hdrs, []byte("Received: from postfix.test")) || !bytes.Contains(hdrs, []byte("by postfix.test (Postfix")) {
			t.Errorf("%s: headers do not show the path Postfix -> sluice:\n%s", a.seq, hdrs)
		}
		if bytes.Contains(bytes.ToLower(hdrs), []byte("x-relay-priority")) {
			t.Errorf("%s: the priority header left sluice", a.seq)
		}
	}
	if log := pf.Log(); !strings.Contains(log, "relay="+"127.0.0.1[127.0.0.1]:"+strings.Split(d.Addr(), ":")[1]) || !strings.Contains(log, "status=sent") {
		t.Errorf("postfix log shows no delivery to sluice at %s", d.Addr())
	}
	prio := map[string]int{}
	for _, r := range d.LogRecords("accepted") {
		prio[harness.Str(r, "from")+" "+harness.Str(r, "priority")]++
	}
	if prio["vip@origin.test 5"] != vipMsgs || prio["alice@origin.test 1"] != normalMsgs+1 {
		t.Errorf("priorities sluice accepted, by sender: %v; want %d vip at 5 and %d alice at 1", prio, vipMsgs, normalMsgs+1)
	}
}

// checkBudgetAndPriority: no 2s window got more than the quota at the
// remote, and from the first window that opened after all priority-5 mail
// was queued, priority-5 mail went before priority-1 mail.
func checkBudgetAndPriority(t *testing.T, got []arrival, vipQueued time.Time) {
	t.Helper()
	used := map[time.Time]int64{}
	after := scheduler.WindowAt(vipQueued, window, time.UTC).End
	var lastVIP, firstNormal time.Time
	for _, a := range got {
		win := scheduler.WindowAt(a.at, window, time.UTC).Start
		vip := strings.HasPrefix(a.seq, "v")
		cost := scheduler.CostMilli(1000)
		if vip {
			cost = scheduler.CostMilli(5000)
		}
		used[win] += cost
		if vip && win.After(lastVIP) {
			lastVIP = win
		}
		if !vip && !win.Before(after) && (firstNormal.IsZero() || win.Before(firstNormal)) {
			firstNormal = win
		}
	}
	var report []string
	for win, u := range used {
		report = append(report, fmt.Sprintf("%s=%d.%03d", win.Format("15:04:05"), u/1000, u%1000))
		if u > quota*1000 {
			t.Errorf("window %s got %d milli-units at the remote, over the quota of %d", win.Format("15:04:05"), u, quota)
		}
	}
	sort.Strings(report)
	t.Logf("units per window at the remote MXes: %s (all priority-5 mail queued by %s)",
		strings.Join(report, " "), vipQueued.Format("15:04:05.000"))
	if !firstNormal.IsZero() && firstNormal.Before(lastVIP) {
		t.Errorf("priority-1 mail went out in the window of %s, before priority-5 mail queued earlier (window %s)",
			firstNormal.Format("15:04:05"), lastVIP.Format("15:04:05"))
	}
}

// checkBounce: the 550 from other.test comes back to alice as a DSN.
func checkBounce(t *testing.T, w *harness.World) {
	t.Helper()
	b := w.MX["origin.test"].WaitMessages(t, 1, e2eWait)[0]
	if b.From != "" || len(b.To) != 1 || b.To[0] != "alice@origin.test" {
		t.Fatalf("bounce envelope: from %q to %v, want <> to alice@origin.test", b.From, b.To)
	}
	p, err := dsn.Parse(b.Data)
	if err != nil {
		t.Fatalf("bounce is not a DSN: %v\n%s", err, b.Data)
	}
	if len(p.Recipients) != 1 || p.Recipients[0].FinalRecipient != "nobody@other.test" ||
		p.Recipients[0].Status != "5.1.1" || p.Recipients[0].Action != "failed" {
		t.Errorf("DSN recipients: got %+v, want nobody@other.test failed 5.1.1", p.Recipients)
	}
	if !seqHeader.Match(b.Data) || !bytes.Contains(b.Data, []byte("bounce0")) {
		t.Errorf("the DSN does not return the original message's headers")
	}
}
