package delivery

import (
	"context"
	"errors"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/miekg/dns"

	"github.com/sluice-mta/sluice/internal/testmx"
)

func smtpErr(code int, enh smtp.EnhancedCode, msg string) *smtp.SMTPError {
	return &smtp.SMTPError{Code: code, EnhancedCode: enh, Message: msg}
}

func TestSendPerRecipient(t *testing.T) {
	e := newTestEnv(t, "127.0.0.2")
	e.mx[0].SetHooks(testmx.Hooks{Rcpt: func(to string, _ int) *smtp.SMTPError {
		switch to {
		case "unknown@example.com":
			return smtpErr(550, smtp.EnhancedCode{5, 1, 1}, "no such user")
		case "full@example.com":
			return smtpErr(450, smtp.EnhancedCode{4, 2, 2}, "mailbox full")
		}
		return nil
	}})
	cn := e.open(t, Destination{})
	res := cn.Send(testCtx(t), envelope("ok@example.com", "unknown@example.com", "full@example.com"), []byte(testBody))
	wantStatuses(t, res, StatusSent, StatusFailed, StatusDeferred)
	if r := res[1].Reply; r.Code != 550 || r.Enhanced != "5.1.1" || r.Text != "no such user" || r.RemoteHost != "mx1.example.com" || r.RemoteIP != "127.0.0.2" {
		t.Errorf("failed reply: got %+v, want 550 5.1.1 no such user from mx1.example.com[127.0.0.2]", r)
	}
	if r := res[0].Reply; r.Code != 250 || r.Enhanced != "2.0.0" {
		t.Errorf("sent reply: got %+v, want 250 2.0.0", r)
	}
	msgs := e.mx[0].WaitMessages(t, 1, testTimeout)
	if got := msgs[0].To; len(got) != 1 || got[0] != "ok@example.com" {
		t.Errorf("delivered to: got %v, want [ok@example.com]", got)
	}
	if string(msgs[0].Data) != testBody || msgs[0].Helo != "sluice.test" {
		t.Errorf("message: got helo %q data %q, want sluice.test and the body unchanged", msgs[0].Helo, msgs[0].Data)
	}
	if !cn.Usable() {
		t.Errorf("usable: got false, want true")
	}
}

func TestGreeting421MovesToNextMX(t *testing.T) {
	e := newTestEnv(t, "127.0.0.2", "127.0.0.3")
	e.mx[0].SetHooks(testmx.Hooks{Greeting: func(int) *smtp.SMTPError {
		return smtpErr(421, smtp.EnhancedCode{4, 7, 0}, "too many connections")
	}})
	cn := e.open(t, Destination{})
	if cn.RemoteHost() != "mx2.example.com" || cn.RemoteIP() != "127.0.0.3" {
		t.Errorf("remote: got %s[%s], want mx2.example.com[127.0.0.3]", cn.RemoteHost(), cn.RemoteIP())
	}
	wantStatuses(t, cn.Send(testCtx(t), envelope("a@example.com"), []byte(testBody)), StatusSent)
	e.mx[1].WaitMessages(t, 1, testTimeout)
	if got := e.mx[0].Connections(); got != 1 {
		t.Errorf("connections to mx1: got %d, want 1", got)
	}
}

func TestAllHostsFailCarriesLastReply(t *testing.T) {
	e := newTestEnv(t, "127.0.0.2", "127.0.0.3")
	for _, s := range e.mx {
		s.SetHooks(testmx.Hooks{Greeting: func(int) *smtp.SMTPError {
			return smtpErr(421, smtp.EnhancedCode{4, 7, 0}, "too many connections\nfrom your IP")
		}})
	}
	_, err := e.client().Open(testCtx(t), Destination{Domain: "example.com"})
	var oe *Error
	if !errors.As(err, &oe) {
		t.Fatalf("Open: got %v, want *Error", err)
	}
	r := oe.Reply
	if !oe.IsTemporary() || r.Code != 421 || r.Enhanced != "4.7.0" || r.Text != "too many connections from your IP" || r.RemoteHost != "mx2.example.com" {
		t.Errorf("error: got temporary=%v reply %+v, want temporary 421 4.7.0 from mx2 with joined text", oe.IsTemporary(), r)
	}
}

func TestPermanentGreetingOnEveryHost(t *testing.T) {
	e := newTestEnv(t, "127.0.0.2")
	e.mx[0].SetHooks(testmx.Hooks{Greeting: func(int) *smtp.SMTPError {
		return smtpErr(554, smtp.EnhancedCode{5, 7, 1}, "go away")
	}})
	_, err := e.client().Open(testCtx(t), Destination{Domain: "example.com"})
	var oe *Error
	if !errors.As(err, &oe) || oe.IsTemporary() || oe.Reply.Code != 554 {
		t.Errorf("Open: got %v, want a permanent *Error with 554", err)
	}
}

func TestMaxMXHosts(t *testing.T) {
	e := newTestEnv(t, "127.0.0.2", "127.0.0.3", "127.0.0.4")
	for _, s := range e.mx {
		s.SetHooks(testmx.Hooks{Greeting: func(int) *smtp.SMTPError { return smtpErr(421, smtp.EnhancedCode{}, "busy") }})
	}
	e.opts.MaxMXHosts = 2
	if _, err := e.client().Open(testCtx(t), Destination{Domain: "example.com"}); err == nil {
		t.Fatalf("Open: got nil error, want one")
	}
	for i, want := range []int{1, 1, 0} {
		if got := e.mx[i].Connections(); got != want {
			t.Errorf("connections to mx%d: got %d, want %d", i+1, got, want)
		}
	}
}

func TestConnectFailureTriesNextAddress(t *testing.T) {
	e := newTestEnv(t, "127.0.0.2")
	e.dns.AddA("multi.example.com", "127.0.0.99") // nothing listens there
	e.dns.AddA("multi.example.com", "127.0.0.2")
	e.dns.AddMX("multi.example", 10, "multi.example.com")
	cn := e.open(t, Destination{Domain: "multi.example"})
	if cn.RemoteIP() != "127.0.0.2" {
		t.Errorf("remote ip: got %s, want 127.0.0.2", cn.RemoteIP())
	}
}

func TestDropAfterFinalDot(t *testing.T) {
	e := newTestEnv(t, "127.0.0.2")
	e.mx[0].SetHooks(testmx.Hooks{DropAfterData: func(int) bool { return true }})
	cn := e.open(t, Destination{})
	res := cn.Send(testCtx(t), envelope("a@example.com", "b@example.com"), []byte(testBody))
	wantStatuses(t, res, StatusDeferred, StatusDeferred)
	for _, r := range res {
		if !r.MaybeDelivered || r.Err == nil {
			t.Errorf("%s: got MaybeDelivered=%v err=%v, want true and an error", r.Rcpt, r.MaybeDelivered, r.Err)
		}
	}
	if cn.Usable() {
		t.Errorf("usable: got true, want false")
	}
}

func TestDropMidData(t *testing.T) {
	e := newTestEnv(t, "127.0.0.2")
	e.mx[0].SetHooks(testmx.Hooks{DropMidData: func(int) bool { return true }})
	cn := e.open(t, Destination{})
	// A body much larger than socket buffers, so the drop hits the writes.
	body := testBody + strings.Repeat(strings.Repeat("x", 998)+"\r\n", 16<<10)
	res := cn.Send(testCtx(t), envelope("a@example.com"), []byte(body))
	wantStatuses(t, res, StatusDeferred)
	if res[0].MaybeDelivered {
		t.Errorf("MaybeDelivered: got true, want false (the body never fully left)")
	}
	if cn.Usable() {
		t.Errorf("usable: got true, want false")
	}
}

func TestStallPastDataTimeout(t *testing.T) {
	e := newTestEnv(t, "127.0.0.2")
	e.mx[0].SetHooks(testmx.Hooks{StallData: 5 * time.Second})
	e.opts.DataTimeout = 300 * time.Millisecond
	cn := e.open(t, Destination{})
	start := time.Now()
	res := cn.Send(testCtx(t), envelope("a@example.com"), []byte(testBody))
	wantStatuses(t, res, StatusDeferred)
	if el := time.Since(start); el > 3*time.Second {
		t.Errorf("elapsed: got %v, want about the 300ms DataTimeout", el)
	}
	if !res[0].MaybeDelivered {
		t.Errorf("MaybeDelivered: got false, want true (the body left, the reply did not come)")
	}
}

func TestContextCancelAbortsSend(t *testing.T) {
	e := newTestEnv(t, "127.0.0.2")
	e.mx[0].SetHooks(testmx.Hooks{StallData: 5 * time.Second})
	cn := e.open(t, Destination{})
	ctx, cancel := context.WithTimeout(testCtx(t), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	res := cn.Send(ctx, envelope("a@example.com"), []byte(testBody))
	wantStatuses(t, res, StatusDeferred)
	if el := time.Since(start); el > 3*time.Second {
		t.Errorf("elapsed: got %v, want about the 200ms context deadline", el)
	}
	if !errors.Is(res[0].Err, context.DeadlineExceeded) {
		t.Errorf("err: got %v, want it to wrap context.DeadlineExceeded", res[0].Err)
	}
	if cn.Usable() {
		t.Errorf("usable: got true, want false")
	}
}

func TestConnectionReuse(t *testing.T) {
	e := newTestEnv(t, "127.0.0.2")
	e.mx[0].SetHooks(testmx.Hooks{Rcpt: func(to string, _ int) *smtp.SMTPError {
		if strings.HasPrefix(to, "reject") {
			return smtpErr(550, smtp.EnhancedCode{5, 1, 1}, "no")
		}
		return nil
	}})
	cn := e.open(t, Destination{})
	wantStatuses(t, cn.Send(testCtx(t), envelope("a@example.com"), []byte(testBody)), StatusSent)
	// No recipient accepted: the transaction is reset, the connection stays.
	wantStatuses(t, cn.Send(testCtx(t), envelope("reject@example.com"), []byte(testBody)), StatusFailed)
	wantStatuses(t, cn.Send(testCtx(t), envelope("b@example.com"), []byte(testBody)), StatusSent)
	msgs := e.mx[0].WaitMessages(t, 2, testTimeout)
	if msgs[1].To[0] != "b@example.com" {
		t.Errorf("second message to: got %v, want [b@example.com]", msgs[1].To)
	}
	if got := e.mx[0].Connections(); got != 1 {
		t.Errorf("connections: got %d, want 1", got)
	}
	if err := cn.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if err := cn.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	res := cn.Send(testCtx(t), envelope("c@example.com"), []byte(testBody))
	if wantStatuses(t, res, StatusDeferred); !errors.Is(res[0].Err, ErrUnusable) {
		t.Errorf("send after close: got %v, want ErrUnusable", res[0].Err)
	}
}

func TestReplyCodes(t *testing.T) {
	tests := []struct {
		name       string
		hooks      testmx.Hooks
		want       []Status
		wantUsable bool
		wantText   string
	}{
		{"mail 550 fails all", testmx.Hooks{Mail: func(string, int) *smtp.SMTPError {
			return smtpErr(550, smtp.EnhancedCode{5, 7, 1}, "sender rejected")
		}}, []Status{StatusFailed, StatusFailed}, true, "sender rejected"},
		{"mail 451 defers all", testmx.Hooks{Mail: func(string, int) *smtp.SMTPError {
			return smtpErr(451, smtp.EnhancedCode{4, 3, 0}, "try later")
		}}, []Status{StatusDeferred, StatusDeferred}, true, "try later"},
		{"rcpt 421 defers the rest", testmx.Hooks{Rcpt: func(_ string, n int) *smtp.SMTPError {
			if n == 2 {
				return smtpErr(421, smtp.EnhancedCode{4, 7, 0}, "too many messages")
			}
			return nil
		}}, []Status{StatusDeferred, StatusDeferred, StatusDeferred}, false, "too many messages"},
		{"rcpt 552 is temporary", testmx.Hooks{Rcpt: func(_ string, n int) *smtp.SMTPError {
			if n == 2 {
				return smtpErr(552, smtp.EnhancedCode{5, 5, 3}, "too many recipients")
			}
			return nil
		}}, []Status{StatusSent, StatusDeferred}, true, ""},
		{"data 554 fails accepted", testmx.Hooks{Data: func(testmx.Message, int) *smtp.SMTPError {
			return smtpErr(554, smtp.EnhancedCode{5, 7, 1}, "spam\ndetected here")
		}}, []Status{StatusFailed, StatusFailed}, true, "spam detected here"},
		{"data 421 defers and closes", testmx.Hooks{Data: func(testmx.Message, int) *smtp.SMTPError {
			return smtpErr(421, smtp.EnhancedCode{4, 7, 0}, "rate limited")
		}}, []Status{StatusDeferred, StatusDeferred}, false, "rate limited"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newTestEnv(t, "127.0.0.2")
			e.mx[0].SetHooks(tc.hooks)
			cn := e.open(t, Destination{})
			rcpts := []string{"a@example.com", "b@example.com", "c@example.com"}[:len(tc.want)]
			res := cn.Send(testCtx(t), envelope(rcpts...), []byte(testBody))
			wantStatuses(t, res, tc.want...)
			if cn.Usable() != tc.wantUsable {
				t.Errorf("usable: got %v, want %v", cn.Usable(), tc.wantUsable)
			}
			if tc.wantText != "" && res[len(res)-1].Reply.Text != tc.wantText {
				t.Errorf("reply text: got %q, want %q", res[len(res)-1].Reply.Text, tc.wantText)
			}
		})
	}
}

func TestDSNParameters(t *testing.T) {
	tests := []struct {
		name    string
		dsn     bool
		wantRet smtp.DSNReturn
		wantID  string
		wantN   int
	}{
		{"advertised: passed", true, smtp.DSNReturnHeaders, "env-1", 2},
		{"not advertised: omitted", false, "", "", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newTestEnv(t, "127.0.0.2")
			e.mx[0].SetFeatures(testmx.Features{DSN: tc.dsn})
			cn := e.open(t, Destination{})
			env := Envelope{From: "sender@example.org", Ret: "hdrs", EnvID: "env-1", Rcpts: []Rcpt{{
				Addr: "a@example.com", Notify: []string{"SUCCESS", "failure"}, ORCPT: "rfc822;orig@example.com",
			}}}
			wantStatuses(t, cn.Send(testCtx(t), env, []byte(testBody)), StatusSent)
			m := e.mx[0].WaitMessages(t, 1, testTimeout)[0]
			if m.MailOpts.Return != tc.wantRet || m.MailOpts.EnvelopeID != tc.wantID {
				t.Errorf("MAIL params: got RET=%q ENVID=%q, want %q %q", m.MailOpts.Return, m.MailOpts.EnvelopeID, tc.wantRet, tc.wantID)
			}
			ro := m.RcptOpts[0]
			if len(ro.Notify) != tc.wantN {
				t.Errorf("NOTIFY: got %v, want %d values", ro.Notify, tc.wantN)
			}
			if tc.dsn && (ro.OriginalRecipient != "orig@example.com" || ro.OriginalRecipientType != smtp.DSNAddressTypeRFC822) {
				t.Errorf("ORCPT: got %s;%s, want rfc822;orig@example.com", ro.OriginalRecipientType, ro.OriginalRecipient)
			}
		})
	}
}

func TestSMTPUTF8Required(t *testing.T) {
	e := newTestEnv(t, "127.0.0.2")
	cn := e.open(t, Destination{})
	res := cn.Send(testCtx(t), envelope("jürgen@example.com"), []byte(testBody))
	wantStatuses(t, res, StatusFailed)
	if res[0].Reply.Enhanced != "5.6.7" {
		t.Errorf("enhanced: got %q, want 5.6.7", res[0].Reply.Enhanced)
	}
	e.mx[0].SetFeatures(testmx.Features{SMTPUTF8: true})
	cn2 := e.open(t, Destination{})
	wantStatuses(t, cn2.Send(testCtx(t), envelope("jürgen@example.com"), []byte(testBody)), StatusSent)
}

func TestLoopAndPrivateAddresses(t *testing.T) {
	tests := []struct {
		name         string
		setup        func(e *testEnv)
		wantEnhanced string // "" = delivered
		wantHost     string
	}{
		{"mx resolves to own address", func(e *testEnv) {
			e.opts.OwnAddrs = []netip.AddrPort{netip.AddrPortFrom(netip.MustParseAddr("127.0.0.2"), uint16(e.port))}
		}, "5.4.6", ""},
		{"own address on another port is not a loop", func(e *testEnv) {
			e.opts.OwnAddrs = []netip.AddrPort{netip.AddrPortFrom(netip.MustParseAddr("127.0.0.2"), uint16(e.port+1))}
		}, "", "mx1.example.com"},
		{"own mx with higher preference is dropped", func(e *testEnv) {
			e.opts.OwnAddrs = []netip.AddrPort{netip.AddrPortFrom(netip.MustParseAddr("127.0.0.3"), uint16(e.port))}
		}, "", "mx1.example.com"},
		{"private mx refused", func(e *testEnv) {
			e.opts.AllowPrivateMX = false
		}, "5.4.4", ""},
		{"private mx allowed", func(*testEnv) {}, "", "mx1.example.com"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newTestEnv(t, "127.0.0.2", "127.0.0.3")
			tc.setup(e)
			cn, err := e.client().Open(testCtx(t), Destination{Domain: "example.com"})
			if tc.wantEnhanced == "" {
				if err != nil {
					t.Fatalf("Open: %v", err)
				}
				defer cn.Close()
				if cn.RemoteHost() != tc.wantHost {
					t.Errorf("host: got %s, want %s", cn.RemoteHost(), tc.wantHost)
				}
				return
			}
			var oe *Error
			if !errors.As(err, &oe) || oe.IsTemporary() || oe.Reply.Enhanced != tc.wantEnhanced {
				t.Fatalf("Open: got %v, want a permanent *Error %s", err, tc.wantEnhanced)
			}
			if Classify(0, err) != StatusFailed {
				t.Errorf("Classify: got %v, want failed", Classify(0, err))
			}
			if n := e.mx[0].Connections() + e.mx[1].Connections(); n != 0 {
				t.Errorf("connections: got %d, want 0", n)
			}
		})
	}
}

func TestDNSErrorsFromOpen(t *testing.T) {
	e := newTestEnv(t, "127.0.0.2")
	e.dns.SetNullMX("null.example")
	_, err := e.client().Open(testCtx(t), Destination{Domain: "null.example"})
	var de *DNSError
	if !errors.As(err, &de) || de.Enhanced != "5.1.10" || de.IsTemporary() {
		t.Errorf("null MX: got %v, want a permanent *DNSError 5.1.10", err)
	}
	e.dns.AddMX("dangling.example", 10, "missing.example")
	_, err = e.client().Open(testCtx(t), Destination{Domain: "dangling.example"})
	var oe *Error
	if !errors.As(err, &oe) || oe.IsTemporary() || !errors.As(err, &de) {
		t.Errorf("MX host without address: got %v, want a permanent *Error wrapping a *DNSError", err)
	}
}

func TestRelay(t *testing.T) {
	e := newTestEnv(t, "127.0.0.2", "127.0.0.3")
	e.dns.AddA("smarthost.example", "127.0.0.3")
	tests := []struct {
		name   string
		relay  string
		wantIP string
	}{
		{"ip literal", "[127.0.0.2]:" + strconv.Itoa(e.port), "127.0.0.2"},
		{"host name", "smarthost.example:" + strconv.Itoa(e.port), "127.0.0.3"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e.opts.AllowPrivateMX = false // relays are trusted configuration
			cn := e.open(t, Destination{Domain: "elsewhere.example", Relay: tc.relay})
			if cn.RemoteIP() != tc.wantIP {
				t.Errorf("remote ip: got %s, want %s", cn.RemoteIP(), tc.wantIP)
			}
		})
	}
	if got := e.dns.Queries("elsewhere.example", dns.TypeMX); got != 0 {
		t.Errorf("MX queries for the relayed domain: got %d, want 0", got)
	}
}

func TestBadAddressSyntax(t *testing.T) {
	e := newTestEnv(t, "127.0.0.2")
	cn := e.open(t, Destination{})
	res := cn.Send(testCtx(t), envelope("a@example.com", "b\r\nRSET@example.com"), []byte(testBody))
	wantStatuses(t, res, StatusSent, StatusFailed)
	if res[1].Reply.Enhanced != "5.1.3" {
		t.Errorf("enhanced: got %q, want 5.1.3", res[1].Reply.Enhanced)
	}
	bad := envelope("c@example.com")
	bad.From = "x\n@example.org"
	wantStatuses(t, cn.Send(testCtx(t), bad, []byte(testBody)), StatusFailed)
	if got := len(e.mx[0].WaitMessages(t, 1, testTimeout)); got != 1 {
		t.Errorf("messages: got %d, want 1", got)
	}
}

func TestMXHostLookupFailureSkipsHost(t *testing.T) {
	e := newTestEnv(t, "127.0.0.2", "127.0.0.3")
	e.dns.SetRcode(mxName(0), dns.RcodeServerFailure)
	cn := e.open(t, Destination{})
	if cn.RemoteHost() != "mx2.example.com" {
		t.Errorf("host: got %s, want mx2.example.com", cn.RemoteHost())
	}
	e.dns.SetRcode(mxName(1), dns.RcodeServerFailure)
	_, err := New(Options{Resolver: newTestResolver(t, e.dns), Port: e.port, AllowPrivateMX: true}).
		Open(testCtx(t), Destination{Domain: "example.com"})
	var oe *Error
	if !errors.As(err, &oe) || !oe.IsTemporary() || oe.Reply.Enhanced != "4.4.3" {
		t.Errorf("Open with every MX host unresolvable: got %v, want a temporary *Error 4.4.3", err)
	}
}
