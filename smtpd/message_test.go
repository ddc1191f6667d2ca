package smtpd

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/sluice-mta/sluice/queue"
)

// sendMessage runs one transaction and returns the last reply.
func sendMessage(t *testing.T, addr, mailCmd string, rcptCmds []string, body string) string {
	t.Helper()
	c := dial(t, addr)
	c.hello()
	c.send(mailCmd)
	c.expect("250")
	for _, r := range rcptCmds {
		c.send(r)
		c.expect("250")
	}
	c.send("DATA\r\n")
	c.expect("354")
	c.send(body + ".\r\n")
	got, err := c.readReply()
	if err != nil {
		t.Fatalf("reply to DATA: %v", err)
	}
	return got
}

func onlyMessage(t *testing.T, ts *testServer) enqueued {
	t.Helper()
	msgs := ts.enq.all()
	if len(msgs) != 1 {
		t.Fatalf("enqueued: got %d messages, want 1", len(msgs))
	}
	return msgs[0]
}

func TestReceivedField(t *testing.T) {
	ts := newTestServer(t, nil)
	reply := sendMessage(t, ts.addr, mailOK, []string{rcptOK}, hdr+"hello\r\n")
	if want := "250 2.0.0 Ok: queued as Q000001"; reply != want {
		t.Fatalf("reply: got %q, want %q", reply, want)
	}
	m := onlyMessage(t, ts)
	body := string(m.body)
	field, rest, ok := strings.Cut(body, "\r\nSubject: test\r\n")
	if !ok {
		t.Fatalf("body does not keep the original header after Received: %q", body)
	}
	if rest != "\r\nhello\r\n" {
		t.Errorf("body after header: got %q, want %q", rest, "\r\nhello\r\n")
	}
	for _, line := range strings.Split(field, "\r\n") {
		if len(line) > maxFoldedLine {
			t.Errorf("Received line longer than %d: %q", maxFoldedLine, line)
		}
	}
	unfolded := strings.ReplaceAll(field, "\r\n\t", " ")
	want := "Received: from client.test (rdns-not-done [127.0.0.1]) by mx.test (sluice)" +
		" with ESMTP id Q000001 for <rcpt@example.com>; Tue, 02 Jan 2024 03:04:05 +0000"
	if unfolded != want {
		t.Errorf("Received:\n got %q\nwant %q", unfolded, want)
	}
	if m.msg.Size != int64(len(m.body)) {
		t.Errorf("Size: got %d, want %d", m.msg.Size, len(m.body))
	}
}

func TestReceivedOmitsForWithSeveralRecipients(t *testing.T) {
	ts := newTestServer(t, nil)
	sendMessage(t, ts.addr, mailOK, []string{rcptOK, "RCPT TO:<other@example.net>\r\n"}, hdr+"x\r\n")
	field, _, _ := strings.Cut(string(onlyMessage(t, ts).body), "\r\nSubject:")
	if strings.Contains(field, " for ") || !strings.Contains(field, "id Q000001;") {
		t.Errorf("Received with two recipients: got %q, want no for clause", field)
	}
}

func TestEnvelopeStored(t *testing.T) {
	ts := newTestServer(t, nil)
	sendMessage(t, ts.addr,
		"MAIL FROM:<Sender@Example.ORG> RET=HDRS ENVID=xyz BODY=8BITMIME\r\n",
		[]string{
			"RCPT TO:<c@d.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;a@b\r\n",
			"RCPT TO:<\"john doe\"@Example.COM> NOTIFY=NEVER\r\n",
			"RCPT TO:<c@d.test>\r\n", // duplicate: accepted, stored once
			"RCPT TO:<e@f.test>\r\n",
		}, hdr+"x\r\n")
	m := onlyMessage(t, ts).msg
	if m.From != "Sender@example.org" || m.Ret != "HDRS" || m.EnvID != "xyz" {
		t.Errorf("envelope: got From %q Ret %q EnvID %q, want Sender@example.org HDRS xyz", m.From, m.Ret, m.EnvID)
	}
	if m.ID != "Q000001" || m.Seq != 1 || !m.Arrival.Equal(testNow) {
		t.Errorf("identity: got ID %q Seq %d Arrival %v", m.ID, m.Seq, m.Arrival)
	}
	if m.ClientIP != "127.0.0.1" || m.ClientHelo != "client.test" || m.PriorityMilli != 1000 {
		t.Errorf("client: got IP %q HELO %q priority %d", m.ClientIP, m.ClientHelo, m.PriorityMilli)
	}
	want := []queue.Recipient{
		{Index: 0, Addr: "c@d.test", ORCPT: "rfc822;a@b", Notify: queue.NotifySuccess | queue.NotifyFailure, State: queue.StateQueued},
		{Index: 1, Addr: `"john doe"@example.com`, Notify: queue.NotifyNever, State: queue.StateQueued},
		{Index: 2, Addr: "e@f.test", State: queue.StateQueued},
	}
	if len(m.Recipients) != len(want) {
		t.Fatalf("recipients: got %+v, want %+v", m.Recipients, want)
	}
	for i := range want {
		if m.Recipients[i] != want[i] {
			t.Errorf("recipient %d: got %+v, want %+v", i, m.Recipients[i], want[i])
		}
	}
}

func TestNullSender(t *testing.T) {
	ts := newTestServer(t, nil)
	sendMessage(t, ts.addr, "MAIL FROM:<>\r\n", []string{rcptOK}, hdr+"x\r\n")
	if from := onlyMessage(t, ts).msg.From; from != "" {
		t.Errorf("From: got %q, want empty", from)
	}
}

func TestPriorityHeader(t *testing.T) {
	cases := []struct {
		name      string
		strip     bool
		header    string
		wantMilli uint32
		wantKept  bool // header still in the stored body
	}{
		{"integer priority", true, "X-Relay-Priority: 5\r\n", 5000, false},
		{"decimal priority", true, "X-Relay-Priority: 2.5\r\n", 2500, false},
		{"folded priority", true, "X-Relay-Priority:\r\n   3\r\n", 3000, false},
		{"lower case name", true, "x-relay-priority: 4\r\n", 4000, false},
		{"first of two counts, both stripped", true, "X-Relay-Priority: 6\r\nX-Relay-Priority: 9\r\n", 6000, false},
		{"malformed means 1", true, "X-Relay-Priority: 1e3\r\n", 1000, false},
		{"above max means 1", true, "X-Relay-Priority: 11\r\n", 1000, false},
		{"missing means 1", true, "", 1000, false},
		{"kept when not stripping", false, "X-Relay-Priority: 7\r\n", 7000, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ts := newTestServer(t, func(o *Options) { o.StripPriorityHeader = tc.strip })
			body := "From: a@example.org\r\n" + tc.header + "Subject: p\r\n\r\nX-Relay-Priority: 8 in the body\r\n"
			sendMessage(t, ts.addr, mailOK, []string{rcptOK}, body)
			m := onlyMessage(t, ts)
			if m.msg.PriorityMilli != tc.wantMilli {
				t.Errorf("PriorityMilli: got %d, want %d", m.msg.PriorityMilli, tc.wantMilli)
			}
			head, bodyPart, _ := strings.Cut(string(m.body), "\r\n\r\n")
			kept := strings.Contains(strings.ToLower(head), "x-relay-priority")
			if tc.header != "" && kept != tc.wantKept {
				t.Errorf("header kept: got %v, want %v; header section %q", kept, tc.wantKept, head)
			}
			if !tc.wantKept && strings.Contains(head, "\r\n   3") {
				t.Errorf("folded continuation line left behind: %q", head)
			}
			if !strings.Contains(head, "From: a@example.org\r\n") || !strings.HasSuffix(head, "Subject: p") {
				t.Errorf("other fields damaged: %q", head)
			}
			if bodyPart != "X-Relay-Priority: 8 in the body\r\n" {
				t.Errorf("body changed: got %q", bodyPart)
			}
		})
	}
}

func TestPriorityIgnoredAndStrippedFromUntrusted(t *testing.T) {
	ts := newTestServer(t, func(o *Options) {
		o.TrustedNetworks = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
		o.StripPriorityHeader = false
	})
	reply := sendMessage(t, ts.addr, "MAIL FROM:<>\r\n", []string{"RCPT TO:<bounces+77@mx.test>\r\n"},
		"X-Relay-Priority: 9\r\nSubject: bounce\r\n\r\nreport\r\n")
	if !strings.HasPrefix(reply, "250 2.0.0 Ok: queued as") {
		t.Fatalf("reply: got %q", reply)
	}
	calls := ts.intake.calls()
	if len(calls) != 1 {
		t.Fatalf("intake calls: got %d, want 1", len(calls))
	}
	got := calls[0]
	if got.from != "" || len(got.rcpts) != 1 || got.rcpts[0] != "bounces+77@mx.test" || got.client != "127.0.0.1" {
		t.Errorf("intake call: got from %q rcpts %q client %q", got.from, got.rcpts, got.client)
	}
	if strings.Contains(string(got.body), "X-Relay-Priority") {
		t.Errorf("priority header from an untrusted client reached the intake: %q", got.body)
	}
	if n := len(ts.enq.all()); n != 0 {
		t.Errorf("enqueued: got %d, want 0", n)
	}
}

func TestBDATBodyGetsFinalCRLF(t *testing.T) {
	ts := newTestServer(t, nil)
	c := dial(t, ts.addr)
	c.hello()
	c.send(mailOK + rcptOK)
	c.expect("250")
	c.expect("250")
	c.send(bdat("Subject: b\r\n\r\nno newline", true))
	c.expect("250 2.0.0 Ok: queued as")
	if body := string(onlyMessage(t, ts).body); !strings.HasSuffix(body, "\r\n\r\nno newline\r\n") {
		t.Errorf("body: got %q, want it to end in CRLF", body)
	}
}
