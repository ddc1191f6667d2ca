package delivery

import (
	"bufio"
	"crypto/x509"
	"errors"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-mta/sluice/internal/testmx"
)

func TestSTARTTLSOpportunistic(t *testing.T) {
	e := newTestEnv(t, "127.0.0.2")
	e.mx[0].EnableTLS(testmx.SelfSignedCert(t, "other.example"))
	cn := e.open(t, Destination{})
	if cn.TLSVersion() == "" {
		t.Errorf("TLSVersion: got empty, want a version")
	}
	wantStatuses(t, cn.Send(testCtx(t), envelope("a@example.com"), []byte(testBody)), StatusSent)
	m := e.mx[0].WaitMessages(t, 1, testTimeout)[0]
	if !m.TLS || m.Helo != "sluice.test" {
		t.Errorf("message: got TLS=%v helo=%q, want TLS and our EHLO name after STARTTLS", m.TLS, m.Helo)
	}
	// Reuse over TLS, after a reset.
	wantStatuses(t, cn.Send(testCtx(t), envelope("b@example.com"), []byte(testBody)), StatusSent)
	if got := e.mx[0].Connections(); got != 1 {
		t.Errorf("connections: got %d, want 1", got)
	}
}

func TestSTARTTLSPolicyFailures(t *testing.T) {
	tests := []struct {
		name     string
		cert     []string // nil: STARTTLS not offered
		dest     Destination
		wantText string
	}{
		{"required but not offered", nil, Destination{TLS: TLSRequired},
			"TLS required but mx1.example.com does not offer STARTTLS"},
		{"required and verified, self-signed", []string{"mx1.example.com"}, Destination{TLS: TLSRequired, TLSVerify: true},
			"certificate"},
		{"verify implies required", []string{"mx1.example.com"}, Destination{TLSVerify: true},
			"certificate"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newTestEnv(t, "127.0.0.2")
			if tc.cert != nil {
				e.mx[0].EnableTLS(testmx.SelfSignedCert(t, tc.cert...))
			}
			tc.dest.Domain = "example.com"
			_, err := e.client().Open(testCtx(t), tc.dest)
			var oe *Error
			if !errors.As(err, &oe) || !oe.IsTemporary() {
				t.Fatalf("Open: got %v, want a temporary *Error", err)
			}
			if !strings.Contains(err.Error(), tc.wantText) {
				t.Errorf("error: got %q, want it to contain %q", err, tc.wantText)
			}
			if got := e.mx[0].Connections(); got != 1 {
				t.Errorf("connections: got %d, want 1 (no plaintext retry)", got)
			}
			if len(e.mx[0].Messages()) != 0 {
				t.Errorf("messages: got some, want none")
			}
		})
	}
}

func TestSTARTTLSVerified(t *testing.T) {
	e := newTestEnv(t, "127.0.0.2")
	cert := testmx.SelfSignedCert(t, "mx1.example.com")
	e.mx[0].EnableTLS(cert)
	pool := x509.NewCertPool()
	pool.AddCert(cert.Leaf)
	e.opts.TLSRootCAs = pool
	cn := e.open(t, Destination{TLS: TLSRequired, TLSVerify: true})
	if cn.TLSVersion() == "" {
		t.Errorf("TLSVersion: got empty, want a version")
	}
}

// brokenTLS offers STARTTLS and then answers the handshake with garbage.
func brokenTLS(c net.Conn) {
	_ = c.SetDeadline(time.Now().Add(testTimeout))
	r := bufio.NewReader(c)
	steps := []struct{ expect, reply string }{
		{"", "220 broken.test ESMTP"},
		{"EHLO", "250-broken.test\r\n250 STARTTLS"},
		{"STARTTLS", "220 2.0.0 go ahead\r\nthis is not TLS"},
	}
	for _, s := range steps {
		if s.expect != "" {
			line, err := r.ReadString('\n')
			if err != nil || !strings.HasPrefix(strings.ToUpper(line), s.expect) {
				return
			}
		}
		if _, err := c.Write([]byte(s.reply + "\r\n")); err != nil {
			return
		}
	}
}

var tlsDialog = map[string]string{
	"EHLO":     "250-plain.test\n250 STARTTLS",
	"STARTTLS": "454 4.7.0 TLS not available",
	"MAIL":     "250 2.1.0 ok",
	"RCPT":     "250 2.1.5 ok",
	"DATA":     "354 go",
	".":        "250 2.0.0 queued",
}

func TestSTARTTLSFailureFallsBackToPlain(t *testing.T) {
	tests := []struct {
		name        string
		first       func(net.Conn)
		dest        Destination
		wantSent    bool
		wantConns   int
		wantEnhance string
	}{
		{"handshake failure, opportunistic", brokenTLS, Destination{}, true, 2, ""},
		{"454 to STARTTLS, opportunistic", testmx.Dialog("220 x", tlsDialog), Destination{}, true, 2, ""},
		{"handshake failure, required", brokenTLS, Destination{TLS: TLSRequired}, false, 1, "4.7.5"},
		{"454 to STARTTLS, required", testmx.Dialog("220 x", tlsDialog), Destination{TLS: TLSRequired}, false, 1, "4.7.0"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newTestEnv(t, "127.0.0.2")
			var n atomic.Int32
			raw := testmx.StartRaw(t, "127.0.0.3", e.port, func(c net.Conn) {
				if n.Add(1) == 1 {
					tc.first(c)
					return
				}
				testmx.Dialog("220 plain.test ESMTP", tlsDialog)(c)
			})
			e.dns.AddMX("raw.example", 10, "raw.example")
			e.dns.AddA("raw.example", raw.IP())
			tc.dest.Domain = "raw.example"
			cn, err := e.client().Open(testCtx(t), tc.dest)
			if got := raw.Connections(); got != tc.wantConns {
				t.Errorf("connections: got %d, want %d", got, tc.wantConns)
			}
			if !tc.wantSent {
				var oe *Error
				if !errors.As(err, &oe) || !oe.IsTemporary() || oe.Reply.Enhanced != tc.wantEnhance {
					t.Fatalf("Open: got %v, want a temporary *Error %s", err, tc.wantEnhance)
				}
				return
			}
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			defer cn.Close()
			if cn.TLSVersion() != "" {
				t.Errorf("TLSVersion: got %q, want plain", cn.TLSVersion())
			}
			wantStatuses(t, cn.Send(testCtx(t), envelope("a@raw.example"), []byte(testBody)), StatusSent)
		})
	}
}

func TestHELOFallback(t *testing.T) {
	tests := []struct {
		name     string
		ehlo     string
		wantOpen bool
		wantCode int
	}{
		{"502 to EHLO falls back to HELO", "502 5.5.1 command not implemented", true, 0},
		{"500 to EHLO falls back to HELO", "500 5.5.2 syntax error", true, 0},
		{"550 to EHLO refuses the host", "550 5.7.1 go away", false, 550},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newTestEnv(t, "127.0.0.2")
			raw := testmx.StartRaw(t, "127.0.0.3", e.port, testmx.Dialog("220 old.test SMTP", map[string]string{
				"EHLO": tc.ehlo,
				"HELO": "250 old.test",
				"MAIL": "250 ok",
				"RCPT": "250 ok",
				"DATA": "354 go",
			}))
			e.dns.AddMX("old.example", 10, "old.example")
			e.dns.AddA("old.example", raw.IP())
			cn, err := e.client().Open(testCtx(t), Destination{Domain: "old.example"})
			if !tc.wantOpen {
				var oe *Error
				if !errors.As(err, &oe) || oe.Reply.Code != tc.wantCode {
					t.Fatalf("Open: got %v, want *Error with %d", err, tc.wantCode)
				}
				return
			}
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			defer cn.Close()
			res := cn.Send(testCtx(t), envelope("a@old.example"), []byte(testBody))
			wantStatuses(t, res, StatusSent)
			if res[0].Reply.Text != "ok" {
				t.Errorf("reply text: got %q, want ok", res[0].Reply.Text)
			}
		})
	}
}
