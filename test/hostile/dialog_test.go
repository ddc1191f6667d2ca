package hostile

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sluice-mta/sluice/test/harness"
)

// untrustedIP is a loopback source address outside trusted_networks.
const untrustedIP = "127.0.0.9"

// smtpConf is the [smtp] table of a hostile-suite daemon: small limits so
// that the cases stay small.
func smtpConf(maxMessageBytes int, readTimeout time.Duration) string {
	return fmt.Sprintf(`trusted_networks = ["127.0.0.1/32"]
max_message_bytes = %d
max_recipients = 3
max_line_length = 1000
read_timeout = "%s"
`, maxMessageBytes, readTimeout)
}

// startHostile runs a daemon whose mail for example.com stays queued (its
// DNS answers SERVFAIL), so the queue can be inspected afterwards.
func startHostile(t *testing.T, smtpTable string) *harness.Daemon {
	t.Helper()
	w := harness.NewWorld(t, "sink.test")
	w.DNS.SetRcode("example.com", dns.RcodeServerFailure)
	cfg := w.Config(t.TempDir())
	cfg.SMTP = smtpTable
	return harness.Start(t, cfg)
}

// step sends raw bytes, then expects replies in order, each a prefix of
// the reply's last line; "closed" means the daemon must close the
// connection.
type step struct {
	send string
	want []string
}

func s(send string, want ...string) step { return step{send: send, want: want} }

type dialog struct {
	name   string
	from   string // client source address; "" = 127.0.0.1 (trusted)
	sender string // envelope sender the case uses: nothing from it may be queued unless queued > 0
	steps  []step
	queued int // messages from sender that must be in the queue afterwards
	rcpts  int // recipients the queued message must have (when queued = 1)
}

const (
	hdr   = "Subject: hostile\r\n\r\n"
	rcpt  = "RCPT TO:<rcpt@example.com>\r\n"
	noop  = "NOOP\r\n"
	okRep = "250 2.0.0"
)

func mail(sender string) string { return "MAIL FROM:<" + sender + ">\r\n" }

// txn opens a transaction for sender with one recipient.
func txn(sender string, steps ...step) []step {
	return append([]step{s(mail(sender), "250"), s(rcpt, "250")}, steps...)
}

// smuggled is what an attacker hides behind a fake end of data
// (CVE-2023-51764 family): a second transaction that must never run.
const smuggled = "MAIL FROM:<evil@evil.test>\r\nRCPT TO:<victim@example.com>\r\nDATA\r\n" +
	"Subject: smuggled\r\n\r\nsmuggled\r\n.\r\n"

func bdat(chunk string, last bool) string {
	l := ""
	if last {
		l = " LAST"
	}
	return fmt.Sprintf("BDAT %d%s\r\n%s", len(chunk), l, chunk)
}

func received(n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "Received: from h%d.example by h%d.example; Tue, 2 Jan 2024 00:00:00 +0000\r\n", i, i+1)
	}
	return b.String()
}

// TestHostileDialogs runs the dialog table against one daemon.
func TestHostileDialogs(t *testing.T) {
	d := startHostile(t, smtpConf(30000, 10*time.Second))
	runDialogs(t, d, hostileDialogs())
	queue, err := d.QueueList()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range queue {
		if m.Sender == "evil@evil.test" {
			t.Errorf("a smuggled message was queued: %+v", m)
		}
	}
}

func hostileDialogs() []dialog {
	long := strings.Repeat("a", 1500)
	big := strings.Repeat(strings.Repeat("b", 98)+"\r\n", 400) // 40000 bytes
	return []dialog{
		{name: "clean message is queued", sender: "clean@origin.test", queued: 1, rcpts: 1,
			steps: txn("clean@origin.test", s("DATA\r\n", "354"), s(hdr+"hello\r\n.\r\n", "250 2.0.0 Ok: queued as"), s(noop, okRep))},
		{name: "bare LF in DATA: 554 5.6.0, dialog in sync", sender: "lf@origin.test",
			steps: txn("lf@origin.test", s("DATA\r\n", "354"), s(hdr+"one\ntwo\r\n.\r\n", "554 5.6.0"), s(noop, okRep))},
		{name: "bare CR in DATA: 554 5.6.0, dialog in sync", sender: "cr@origin.test",
			steps: txn("cr@origin.test", s("DATA\r\n", "354"), s(hdr+"one\rtwo\r\n.\r\n", "554 5.6.0"), s(noop, okRep))},
		{name: "LF.CRLF smuggling in DATA: 554 5.6.0, nothing smuggled", sender: "lfdot@origin.test",
			steps: txn("lfdot@origin.test", s("DATA\r\n", "354"), s(hdr+"hi\n.\r\n"+smuggled, "554 5.6.0"), s(noop, okRep))},
		{name: "LF.LF smuggling in DATA: 554 5.6.0", sender: "lflf@origin.test",
			steps: txn("lflf@origin.test", s("DATA\r\n", "354"), s(hdr+"hi\n.\n"+smuggled, "554 5.6.0"), s(noop, okRep))},
		{name: "CR.CR smuggling in DATA: 554 5.6.0", sender: "crcr@origin.test",
			steps: txn("crcr@origin.test", s("DATA\r\n", "354"), s(hdr+"hi\r.\r"+smuggled, "554 5.6.0"), s(noop, okRep))},
		{name: "CR.CRLF smuggling in DATA: 554 5.6.0", sender: "crdot@origin.test",
			steps: txn("crdot@origin.test", s("DATA\r\n", "354"), s(hdr+"hi\r.\r\n"+smuggled, "554 5.6.0"), s(noop, okRep))},
		{name: "bare LF in BDAT: 554 5.6.0", sender: "bdatlf@origin.test",
			steps: txn("bdatlf@origin.test", s(bdat(hdr+"one\ntwo\r\n", true), "554 5.6.0"), s(noop, okRep))},
		{name: "bare CR in BDAT: 554 5.6.0", sender: "bdatcr@origin.test",
			steps: txn("bdatcr@origin.test", s(bdat(hdr+"one\rtwo\r\n", true), "554 5.6.0"), s(noop, okRep))},
		{name: "LF.CRLF smuggling in BDAT: 554 5.6.0", sender: "bdatdot@origin.test",
			steps: txn("bdatdot@origin.test", s(bdat(hdr+"hi\n.\r\n"+smuggled, true), "554 5.6.0"), s(noop, okRep))},
		{name: "BDAT before MAIL: 502 5.5.1", steps: []step{s(bdat("hello\r\n", true), "502 5.5.1"), s(noop, okRep)}},
		{name: "BDAT before RCPT: 502 5.5.1", sender: "bdatearly@origin.test",
			steps: []step{s(mail("bdatearly@origin.test"), "250"), s(bdat("hello\r\n", true), "502 5.5.1"), s(noop, okRep)}},
		{name: "command line over max_line_length: 500 5.4.0, closed",
			steps: []step{s("NOOP "+long+"\r\n", "500 5.4.0", "closed")}},
		{name: "DATA line over max_line_length: 500 5.6.0, closed", sender: "longline@origin.test",
			steps: txn("longline@origin.test", s("DATA\r\n", "354"), s(hdr+long+"\r\n.\r\n", "500 5.6.0", "closed"))},
		{name: "message over max_message_bytes: 552 5.3.4, nothing queued", sender: "big@origin.test",
			steps: txn("big@origin.test", s("DATA\r\n", "354"), s(hdr+big+".\r\n", "552 5.3.4"), s(noop, okRep))},
		{name: "fake terminators after the size cap: 552 5.3.4, dialog in sync", sender: "bigfake@origin.test",
			steps: txn("bigfake@origin.test", s("DATA\r\n", "354"), s(hdr+big+"\n.\n"+noop+"\r.\r"+noop+"x\r\n.\r\n", "552 5.3.4"), s(noop, okRep))},
		{name: "SIZE over max_message_bytes: 552 5.3.4 at MAIL", sender: "size@origin.test",
			steps: []step{s("MAIL FROM:<size@origin.test> SIZE=50000\r\n", "552 5.3.4"), s(noop, okRep)}},
		{name: "fourth recipient over max_recipients: 452 4.5.3, not 552; the three go", sender: "many@origin.test", queued: 1, rcpts: 3,
			steps: []step{s(mail("many@origin.test"), "250"), s("RCPT TO:<a@example.com>\r\n", "250"),
				s("RCPT TO:<b@example.com>\r\n", "250"), s("RCPT TO:<c@example.com>\r\n", "250"),
				s("RCPT TO:<d@example.com>\r\n", "452 4.5.3"), s("DATA\r\n", "354"), s(hdr+"x\r\n.\r\n", "250 2.0.0")}},
		{name: "relay from an untrusted address: 550 5.7.1", from: untrustedIP, sender: "relay@origin.test",
			steps: []step{s(mail("relay@origin.test"), "250"), s(rcpt, "550 5.7.1"), s(noop, okRep)}},
		{name: "relay with a VERP-looking address that is not ours: 550 5.7.1", from: untrustedIP, sender: "verp@origin.test",
			steps: []step{s(mail("verp@origin.test"), "250"), s("RCPT TO:<bounces+1234=example.com@other.test>\r\n", "550 5.7.1"),
				s("RCPT TO:<bounce+q1=x.test@relay.test.evil>\r\n", "550 5.7.1"), s(noop, okRep)}},
		{name: "51 Received headers: 554 5.4.6 mail loop", sender: "loop@origin.test",
			steps: txn("loop@origin.test", s("DATA\r\n", "354"), s(received(51)+hdr+"x\r\n.\r\n", "554 5.4.6"), s(noop, okRep))},
		{name: "control byte in MAIL: 501 5.1.7", steps: []step{s("MAIL FROM:<a\x01b@origin.test>\r\n", "501 5.1.7"), s(noop, okRep)}},
		{name: "control byte in RCPT: 501 5.1.3", sender: "ctl@origin.test",
			steps: []step{s(mail("ctl@origin.test"), "250"), s("RCPT TO:<a\x7fb@example.com>\r\n", "501 5.1.3"), s(noop, okRep)}},
		{name: "address literal in RCPT: 550 5.1.3", sender: "lit@origin.test",
			steps: []step{s(mail("lit@origin.test"), "250"), s("RCPT TO:<user@[127.0.0.1]>\r\n", "550 5.1.3"), s(rcpt, "250")}},
		{name: "address literal in MAIL: 553 5.1.7", steps: []step{s("MAIL FROM:<user@[192.0.2.1]>\r\n", "553 5.1.7"), s(noop, okRep)}},
		{name: "non-ASCII MAIL without SMTPUTF8: 553 5.6.7", steps: []step{s("MAIL FROM:<j\xc3\xb6rg@origin.test>\r\n", "553 5.6.7"), s(noop, okRep)}},
		{name: "non-ASCII RCPT without SMTPUTF8: 553 5.6.7", sender: "utf@origin.test",
			steps: []step{s(mail("utf@origin.test"), "250"), s("RCPT TO:<a@ex\xc3\xa4mple.com>\r\n", "553 5.6.7"), s(rcpt, "250")}},
		{name: "SMTPUTF8 parameter is not offered: 504 5.5.4", steps: []step{s("MAIL FROM:<a@origin.test> SMTPUTF8\r\n", "504 5.5.4"), s(noop, okRep)}},
	}
}

func runDialogs(t *testing.T, d *harness.Daemon, cases []dialog) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := harness.Dial(t, d.Addr(), tc.from)
			c.Hello()
			for i, st := range tc.steps {
				if st.send != "" {
					c.Send(st.send)
				}
				for _, w := range st.want {
					if w == "closed" {
						c.ExpectClosed(5 * time.Second)
						continue
					}
					lines, err := c.Reply(10 * time.Second)
					if got := lines[len(lines)-1]; err != nil || !strings.HasPrefix(got, w) {
						t.Fatalf("step %d (%q): got %q (err %v), want prefix %q", i, harness.Abbrev(st.send), got, err, w)
					}
				}
			}
			c.C.Close()
			if tc.sender != "" {
				checkQueued(t, d, tc)
			}
		})
	}
}

// checkQueued compares what the queue holds from the case's sender with
// what the case expects: nothing from a refused message, no truncated copy.
func checkQueued(t *testing.T, d *harness.Daemon, tc dialog) {
	t.Helper()
	msgs, err := d.QueueList()
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, m := range msgs {
		if m.Sender == tc.sender {
			ids = append(ids, m.QueueID)
		}
	}
	if len(ids) != tc.queued {
		t.Fatalf("queue holds %d messages from %s, want %d", len(ids), tc.sender, tc.queued)
	}
	if tc.queued == 1 {
		m, err := d.QueueShow(ids[0])
		if err != nil {
			t.Fatal(err)
		}
		if len(m.Recipients) != tc.rcpts {
			t.Errorf("queued message has %d recipients, want %d", len(m.Recipients), tc.rcpts)
		}
	}
}
