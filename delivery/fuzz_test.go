package delivery

import (
	"bytes"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// checkOneLine fails if s could break a log line or a header field.
func checkOneLine(t *testing.T, what, s string) {
	t.Helper()
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			t.Fatalf("%s %q contains control character %U", what, s, r)
		}
	}
}

func FuzzReplyText(f *testing.F) {
	f.Add(250, "2.0.0 Ok: queued as ABC")
	f.Add(550, "5.1.1 no such user\n5.1.1 really")
	f.Add(421, "first\n4.7.0 last")
	f.Add(250, "2.0.0")
	f.Add(0, "\r\n\x00\x7f")
	f.Fuzz(func(t *testing.T, code int, msg string) {
		r := replyFromText(code, msg)
		checkOneLine(t, "text", r.Text)
		if r.Enhanced != "" && !enhancedRe.MatchString(r.Enhanced) {
			t.Fatalf("enhanced %q is not an RFC 3463 code", r.Enhanced)
		}
	})
}

// scriptConn is a net.Conn that reads a fixed reply and discards writes.
type scriptConn struct {
	net.Conn
	r io.Reader
}

func (c *scriptConn) Read(p []byte) (int, error)  { return c.r.Read(p) }
func (c *scriptConn) Write(p []byte) (int, error) { return len(p), nil }

func FuzzRawReply(f *testing.F) {
	f.Add([]byte("220 2.0.0 ready\r\n"))
	f.Add([]byte("220-first\r\n220 second\r\n"))
	f.Add([]byte("454 4.7.0 no\r\ntrailing garbage"))
	f.Add([]byte("22"))
	f.Add([]byte("abc def\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := rawCommand(&scriptConn{r: bytes.NewReader(data)}, "STARTTLS")
		if err != nil {
			return
		}
		if r.Code < 100 || r.Code > 599 {
			t.Fatalf("code %d out of range", r.Code)
		}
		checkOneLine(t, "text", r.Text)
	})
}

func FuzzParseAnswer(f *testing.F) {
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	seed := func(rrs ...string) []byte {
		m := new(dns.Msg)
		m.SetQuestion("example.com.", dns.TypeMX)
		for _, s := range rrs {
			rr, err := dns.NewRR(s)
			if err != nil {
				f.Fatalf("seed %q: %v", s, err)
			}
			m.Answer = append(m.Answer, rr)
		}
		b, err := m.Pack()
		if err != nil {
			f.Fatalf("pack: %v", err)
		}
		return b
	}
	f.Add(seed("example.com. 300 IN MX 10 MX.example.com."))
	f.Add(seed("example.com. 300 IN CNAME alias.example.net.", "alias.example.net. 60 IN MX 0 ."))
	f.Add(seed("example.com. 300 IN A 192.0.2.1", "example.com. 300 IN AAAA 2001:db8::1"))
	f.Add(seed())
	f.Fuzz(func(t *testing.T, data []byte) {
		m := new(dns.Msg)
		if err := m.Unpack(data); err != nil {
			return
		}
		for _, qtype := range []uint16{dns.TypeMX, dns.TypeA, dns.TypeAAAA} {
			e := parseAnswer("example.com.", qtype, m, now)
			if e.expires.Before(now) || e.expires.After(now.Add(maxCacheTTL)) {
				t.Fatalf("expires %v outside [now, now+%v]", e.expires, maxCacheTTL)
			}
			for _, mx := range e.mx {
				if mx.Host != strings.ToLower(mx.Host) || (mx.Host != "." && strings.HasSuffix(mx.Host, ".")) {
					t.Fatalf("host %q not canonical", mx.Host)
				}
			}
		}
	})
}

func FuzzFromDomain(f *testing.F) {
	f.Add([]byte("From: A <a@example.org>\r\n\r\nbody"))
	f.Add([]byte("From: a@b@c\r\n\r\n"))
	f.Add([]byte("From: =?utf-8?q?x?= <a@example.org>\r\n\r\n"))
	f.Add([]byte("From:\r\n\r\n"))
	f.Fuzz(func(t *testing.T, body []byte) {
		d, err := fromDomain(body)
		if err != nil {
			return
		}
		if d == "" || d != strings.ToLower(d) || strings.Contains(d, "@") {
			t.Fatalf("domain %q: want non-empty, lower case, without @", d)
		}
	})
}
