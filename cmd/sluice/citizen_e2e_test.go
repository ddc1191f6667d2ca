package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-msgauth/dkim"
	"github.com/emersion/go-smtp"
	"github.com/miekg/dns"

	"github.com/sluice-mta/sluice/admin"
	"github.com/sluice-mta/sluice/dsn"
	"github.com/sluice-mta/sluice/internal/testmx"
	"github.com/sluice-mta/sluice/scheduler"
)

// These tests cover issue 4: reacting to the operator's replies, per-RCPT
// reply handling, expiry and delay reports, NOTIFY, VERP, TLS and DKIM,
// with the whole daemon, the in-process DNS server and scripted MXes.

func TestEndToEnd421SuspendsOperator(t *testing.T) {
	w := newWorld(t, "bigmail.test")
	var refused atomic.Int32
	w.mx["bigmail.test"].SetHooks(testmx.Hooks{Greeting: func(n int) *smtp.SMTPError {
		if n == 1 {
			refused.Add(1)
			return &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 7, 0}, Message: "Too many connections from your IP, slow down"}
		}
		return nil
	}})
	r := startTestDaemon(t, t.TempDir(), w.daemonConfig(t.TempDir(), `
[[operator]]
name = "bigmail"
domains = ["bigmail.test"]
[[operator.response_rule]]
code = "421"
match = "(?i)too many connections"
action = "suspend"
duration = "3s"
`))
	start := time.Now()
	send(t, r.addr(), "alice@origin.test", []string{"a@bigmail.test"}, testMessage("alice@origin.test", "one"))
	// Wait for the 421 and for the scheduler to act on it (the MX sees the
	// refusal before the delivery's result is recorded), then queue more:
	// it must wait for the suspension.
	waitFor(t, 10*time.Second, func() bool { return refused.Load() == 1 })
	suspended := func() ([]scheduler.OperatorStatus, bool) {
		st, err := r.d.sched.Snapshot(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range st.Operators {
			if o.Key == "bigmail" && o.SuspendedUntil.After(time.Now()) && strings.Contains(o.SuspendReason, "421") {
				return st.Operators, true
			}
		}
		return st.Operators, false
	}
	for i := 0; ; i++ {
		ops, ok := suspended()
		if ok {
			break
		}
		if i == 250 {
			t.Fatalf("operator not suspended 5s after a 421 too many connections: %+v", ops)
		}
		time.Sleep(20 * time.Millisecond)
	}
	send(t, r.addr(), "alice@origin.test", []string{"b@bigmail.test"}, testMessage("alice@origin.test", "two"))
	got := w.mx["bigmail.test"].WaitMessages(t, 2, 20*time.Second)
	if el := got[0].Received.Sub(start); el < 3*time.Second {
		t.Errorf("first delivery %v after the 421, before the 3s suspension ended", el)
	}
}

func TestEndToEndPerRecipientReplies(t *testing.T) {
	w := newWorld(t, "one.test", "origin.test")
	var tries atomic.Int32
	w.mx["one.test"].SetHooks(testmx.Hooks{Rcpt: func(to string, n int) *smtp.SMTPError {
		if strings.HasPrefix(to, "busy@") && tries.Add(1) == 1 {
			return &smtp.SMTPError{Code: 450, EnhancedCode: smtp.EnhancedCode{4, 2, 1}, Message: "mailbox busy"}
		}
		return nil
	}})
	r := startTestDaemon(t, t.TempDir(), w.daemonConfig(t.TempDir(), ""))
	send(t, r.addr(), "alice@origin.test", []string{"a@one.test", "busy@one.test", "c@one.test"}, testMessage("alice@origin.test", "three"))
	got := w.mx["one.test"].WaitMessages(t, 2, 15*time.Second)
	if strings.Join(got[0].To, ",") != "a@one.test,c@one.test" || strings.Join(got[1].To, ",") != "busy@one.test" {
		t.Errorf("transactions: %v then %v; want a and c first, busy alone on retry", got[0].To, got[1].To)
	}
	waitQueueEmpty(t, r)
	if n := len(w.mx["origin.test"].Messages()); n != 0 {
		t.Errorf("%d reports for a temporary failure", n)
	}
}

func TestEndToEndDropAfterDataDefers(t *testing.T) {
	w := newWorld(t, "one.test")
	w.mx["one.test"].SetHooks(testmx.Hooks{DropAfterData: func(n int) bool { return n == 1 }})
	r := startTestDaemon(t, t.TempDir(), w.daemonConfig(t.TempDir(), ""))
	send(t, r.addr(), "alice@origin.test", []string{"a@one.test"}, testMessage("alice@origin.test", "dropped"))
	got := w.mx["one.test"].WaitMessages(t, 1, 15*time.Second)
	if got[0].To[0] != "a@one.test" {
		t.Fatalf("delivered to %v", got[0].To)
	}
	waitQueueEmpty(t, r)
}

func TestEndToEndExpiryAndDelayWarning(t *testing.T) {
	w := newWorld(t, "one.test", "origin.test")
	w.mx["one.test"].SetHooks(testmx.Hooks{Rcpt: func(string, int) *smtp.SMTPError {
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 4, 1}, Message: "no answer from host"}
	}})
	cfg := strings.Replace(w.daemonConfig(t.TempDir(), ""), `retry_schedule = ["1s"]`,
		"retry_schedule = [\"1s\"]\nmax_queue_lifetime = \"6s\"\ndelay_warning_after = \"2s\"", 1)
	r := startTestDaemon(t, t.TempDir(), cfg)
	send(t, r.addr(), "alice@origin.test", []string{"a@one.test"}, testMessage("alice@origin.test", "expire"))
	reps := w.mx["origin.test"].WaitMessages(t, 2, 20*time.Second)
	delayed, failed := mustParse(t, reps[0].Data), mustParse(t, reps[1].Data)
	if delayed.Recipients[0].Action != "delayed" || !strings.Contains(string(reps[0].Data), "no answer from host") {
		t.Errorf("first report is not the delay warning with the reason: %+v", delayed.Recipients)
	}
	if f := failed.Recipients[0]; f.Action != "failed" || f.Status != "4.4.7" || !strings.Contains(f.DiagnosticCode, "451 4.4.1 no answer from host") {
		t.Errorf("expiry report recipient = %+v", f)
	}
	waitQueueEmpty(t, r)
	if n := len(w.mx["origin.test"].Messages()); n != 2 {
		t.Errorf("%d reports, want one delay warning and one failure", n)
	}
}

func TestEndToEndNotifyNeverYieldsNothing(t *testing.T) {
	w := newWorld(t, "one.test", "origin.test")
	w.mx["one.test"].SetHooks(testmx.Hooks{Rcpt: func(string, int) *smtp.SMTPError {
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "unknown"}
	}})
	r := startTestDaemon(t, t.TempDir(), w.daemonConfig(t.TempDir(), ""))
	c, err := smtp.Dial(r.addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Hello("client.test")
	if err := c.Mail("alice@origin.test", nil); err != nil {
		t.Fatal(err)
	}
	if err := c.Rcpt("x@one.test", &smtp.RcptOptions{Notify: []smtp.DSNNotify{smtp.DSNNotifyNever}}); err != nil {
		t.Fatal(err)
	}
	wc, _ := c.Data()
	wc.Write([]byte("Subject: never\r\n\r\nbody\r\n"))
	if err := wc.Close(); err != nil {
		t.Fatal(err)
	}
	c.Quit()
	waitQueueEmpty(t, r)
	if n := len(w.mx["origin.test"].Messages()); n != 0 {
		t.Errorf("NOTIFY=NEVER produced %d reports", n)
	}
}

func TestEndToEndVERPLateBounce(t *testing.T) {
	w := newWorld(t, "bigmail.test", "origin.test")
	dir := t.TempDir()
	cfg := strings.Replace(w.daemonConfig(dir, `
[[operator]]
name = "bigmail"
domains = ["bigmail.test"]
envelope_from = "bounces@relay.test"
verp = true
`), `listen = ["127.0.0.1:0"]`, "listen = [\"127.0.0.1:0\"]\ntrusted_networks = [\"127.0.0.1/32\"]", 1)
	r := startTestDaemon(t, t.TempDir(), cfg)
	id := send(t, r.addr(), "alice@origin.test", []string{"bob@bigmail.test"}, testMessage("alice@origin.test", "verp"))
	got := w.mx["bigmail.test"].WaitMessages(t, 1, 10*time.Second)[0]
	path := got.From
	if !strings.HasPrefix(path, "bounces+") || !strings.HasSuffix(path, "@relay.test") {
		t.Fatalf("return path %q is not a VERP address", path)
	}
	waitQueueEmpty(t, r)
	// Days later bigmail's store bounces it, from an address we do not
	// trust for relaying (127.0.0.2): only our VERP address is open to it.
	bounce, err := dsn.Build(&dsn.Report{ReportingMTA: "store.bigmail.test", From: "MAILER-DAEMON@bigmail.test", To: path,
		Date: time.Now(), MessageID: "<late@bigmail.test>", ArrivalDate: time.Now(),
		Recipients: []dsn.Recipient{{FinalRecipient: "bob@bigmail.test", Action: dsn.ActionFailed, Status: "5.2.2", DiagnosticCode: "smtp; 552 5.2.2 over quota"}}})
	if err != nil {
		t.Fatal(err)
	}
	c := dialFrom(t, "127.0.0.2", r.addr())
	defer c.Close()
	c.Hello("mx.bigmail.test")
	if err := c.Mail("", nil); err != nil {
		t.Fatal(err)
	}
	var se *smtp.SMTPError
	if err := c.Rcpt("someone@elsewhere.test", nil); !errors.As(err, &se) || se.Code != 550 || se.EnhancedCode != (smtp.EnhancedCode{5, 7, 1}) {
		t.Errorf("relay from an untrusted client: %v, want 550 5.7.1", err)
	}
	if err := c.Rcpt("bounces+ABCDEF-0-aaaaaaaa@relay.test", nil); err == nil {
		t.Error("a forged VERP address was accepted")
	}
	if err := c.Rcpt(path, nil); err != nil {
		t.Fatalf("our VERP address refused: %v", err)
	}
	wc, _ := c.Data()
	wc.Write(bounce)
	if err := wc.Close(); err != nil {
		t.Fatalf("bounce not accepted: %v", err)
	}
	c.Quit()
	rep := w.mx["origin.test"].WaitMessages(t, 1, 10*time.Second)[0]
	p := mustParse(t, rep.Data)
	if rep.To[0] != "alice@origin.test" || p.Recipients[0].FinalRecipient != "bob@bigmail.test" || p.Recipients[0].Status != "5.2.2" {
		t.Errorf("report to %v: %+v", rep.To, p.Recipients)
	}
	// The bounce is kept for sluice queue show.
	d, err := admin.NewClient(r.cfg.Admin.Socket).Show(context.Background(), id)
	if err != nil {
		t.Fatalf("queue show of the delivered message: %v", err)
	}
	if !d.Completed || len(d.Returned) != 1 || d.Returned[0].Status != "5.2.2" || d.Returned[0].Client != "127.0.0.2" ||
		!strings.Contains(d.Returned[0].Report, "over quota") || d.Recipients[0].State != "returned" {
		t.Errorf("queue show = %+v", d)
	}
}

func TestEndToEndTLS(t *testing.T) {
	w := newWorld(t, "plain.test", "tls.test", "verified.test")
	cert := testmx.SelfSignedCert(t, "mx.tls.test", "mx.verified.test")
	w.mx["tls.test"].EnableTLS(cert)
	w.mx["verified.test"].EnableTLS(cert)
	r := startTestDaemon(t, t.TempDir(), w.daemonConfig(t.TempDir(), `
[[operator]]
name = "strict"
domains = ["plain.test", "verified.test"]
tls = "required"
tls_verify = true
`))
	send(t, r.addr(), "alice@origin.test", []string{"a@tls.test"}, testMessage("alice@origin.test", "tls"))
	if got := w.mx["tls.test"].WaitMessages(t, 1, 10*time.Second)[0]; !got.TLS {
		t.Error("opportunistic TLS: delivered in plain text although STARTTLS was offered")
	}
	id1 := send(t, r.addr(), "alice@origin.test", []string{"b@plain.test"}, testMessage("alice@origin.test", "no tls"))
	id2 := send(t, r.addr(), "alice@origin.test", []string{"c@verified.test"}, testMessage("alice@origin.test", "bad cert"))
	d1 := waitRecipientState(t, r, id1, "deferred", 10*time.Second)
	d2 := waitRecipientState(t, r, id2, "deferred", 10*time.Second)
	if !strings.Contains(strings.ToLower(d1.Recipients[0].LastReply), "starttls") {
		t.Errorf("TLS required without STARTTLS deferred with %q", d1.Recipients[0].LastReply)
	}
	if !strings.Contains(strings.ToLower(d2.Recipients[0].LastReply), "certificate") {
		t.Errorf("TLS verify with a self-signed certificate deferred with %q", d2.Recipients[0].LastReply)
	}
	if n := len(w.mx["plain.test"].Messages()) + len(w.mx["verified.test"].Messages()); n != 0 {
		t.Errorf("%d messages went out without the TLS required", n)
	}
}

func TestEndToEndDKIM(t *testing.T) {
	w := newWorld(t, "one.test")
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	keyDir := t.TempDir()
	keyFile := filepath.Join(keyDir, "origin.pem")
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600)
	w.dns.AddTXT("s1._domainkey.origin.test", "v=DKIM1; k=ed25519; p="+base64.StdEncoding.EncodeToString(priv.Public().(ed25519.PublicKey)))
	r := startTestDaemon(t, t.TempDir(), w.daemonConfig(t.TempDir(), fmt.Sprintf(`
[[dkim]]
domain = "origin.test"
selector = "s1"
private_key_file = %q
`, keyFile)))
	send(t, r.addr(), "alice@origin.test", []string{"a@one.test"}, "From: Alice <alice@origin.test>\nTo: <a@one.test>\nSubject: signed\nX-Relay-Priority: 3\n\nhello\n")
	got := w.mx["one.test"].WaitMessages(t, 1, 10*time.Second)[0]
	if strings.Contains(string(got.Data), "X-Relay-Priority") {
		t.Error("the priority header left the relay")
	}
	verifs, err := dkim.VerifyWithOptions(strings.NewReader(string(got.Data)), &dkim.VerifyOptions{LookupTXT: lookupTXTVia(w.dns.Addr())})
	if err != nil || len(verifs) != 1 || verifs[0].Err != nil || verifs[0].Domain != "origin.test" {
		t.Fatalf("DKIM verification: %+v, %v\n%s", verifs, err, got.Data)
	}
}

// lookupTXTVia queries the test DNS server, never the process resolver.
func lookupTXTVia(server string) func(string) ([]string, error) {
	return func(name string) ([]string, error) {
		m := new(dns.Msg)
		m.SetQuestion(dns.Fqdn(name), dns.TypeTXT)
		r, _, err := (&dns.Client{Net: "tcp", Timeout: 2 * time.Second}).Exchange(m, server)
		if err != nil {
			return nil, err
		}
		var out []string
		for _, rr := range r.Answer {
			if txt, ok := rr.(*dns.TXT); ok {
				out = append(out, strings.Join(txt.Txt, ""))
			}
		}
		return out, nil
	}
}

func mustParse(t *testing.T, b []byte) *dsn.Parsed {
	t.Helper()
	p, err := dsn.Parse(b)
	if err != nil {
		t.Fatalf("not a DSN: %v\n%s", err, b)
	}
	return p
}

// dialFrom opens an SMTP session from a chosen loopback address.
func dialFrom(t *testing.T, local, addr string) *smtp.Client {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}, Timeout: 5 * time.Second}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	return smtp.NewClient(conn)
}

// waitFor polls cond for up to timeout (observing another goroutine's
// effect that has no notification of its own).
func waitFor(t *testing.T, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for i := 0; i < 10000; i++ {
		if cond() {
			return
		}
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("condition not met in time")
}
