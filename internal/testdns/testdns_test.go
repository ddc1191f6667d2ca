package testdns

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

func query(t *testing.T, s *Server, network, name string, qtype uint16, timeout time.Duration) (*dns.Msg, error) {
	t.Helper()
	c := &dns.Client{Net: network, Timeout: timeout}
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	r, _, err := c.ExchangeContext(context.Background(), m, s.Addr())
	return r, err
}

func mustQuery(t *testing.T, s *Server, network, name string, qtype uint16) *dns.Msg {
	t.Helper()
	r, err := query(t, s, network, name, qtype, 2*time.Second)
	if err != nil {
		t.Fatalf("query %s %s over %s: %v", name, dns.TypeToString[qtype], network, err)
	}
	return r
}

func TestAnswers(t *testing.T) {
	s := Start(t)
	s.AddMX("example.com", 10, "mx1.example.com")
	s.AddMX("Example.COM.", 20, "mx2.example.com.")
	s.AddA("mx1.example.com", "127.0.0.2")
	s.AddA("mx1.example.com", "::1")
	s.AddTXT("sel._domainkey.example.com", "v=DKIM1; p=abc")
	s.SetNullMX("null.example")
	tests := []struct {
		name      string
		qname     string
		qtype     uint16
		wantRcode int
		wantN     int
		wantText  string
	}{
		{"mx records, case-insensitive", "EXAMPLE.com", dns.TypeMX, dns.RcodeSuccess, 2, "mx2.example.com."},
		{"a record", "mx1.example.com.", dns.TypeA, dns.RcodeSuccess, 1, "127.0.0.2"},
		{"aaaa record", "mx1.example.com", dns.TypeAAAA, dns.RcodeSuccess, 1, "::1"},
		{"txt record", "sel._domainkey.example.com", dns.TypeTXT, dns.RcodeSuccess, 1, "v=DKIM1; p=abc"},
		{"known name without the type is nodata", "example.com", dns.TypeA, dns.RcodeSuccess, 0, ""},
		{"unknown name is nxdomain", "nope.example.com", dns.TypeMX, dns.RcodeNameError, 0, ""},
		{"null mx", "null.example", dns.TypeMX, dns.RcodeSuccess, 1, "MX\t0 ."},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := mustQuery(t, s, "udp", tc.qname, tc.qtype)
			if r.Rcode != tc.wantRcode {
				t.Errorf("rcode: got %s, want %s", dns.RcodeToString[r.Rcode], dns.RcodeToString[tc.wantRcode])
			}
			if len(r.Answer) != tc.wantN {
				t.Fatalf("answers: got %d (%v), want %d", len(r.Answer), r.Answer, tc.wantN)
			}
			if tc.wantN == 0 && len(r.Ns) != 1 {
				t.Errorf("negative answer authority: got %v, want one SOA", r.Ns)
			}
			if tc.wantText != "" && !strings.Contains(r.String(), tc.wantText) {
				t.Errorf("answer: got %v, want it to contain %q", r.Answer, tc.wantText)
			}
		})
	}
}

func TestLongTXTSplit(t *testing.T) {
	s := Start(t)
	long := strings.Repeat("k", 600)
	s.AddTXT("long.example", long)
	r := mustQuery(t, s, "tcp", "long.example", dns.TypeTXT)
	if len(r.Answer) != 1 {
		t.Fatalf("answers: got %d, want 1", len(r.Answer))
	}
	txt := r.Answer[0].(*dns.TXT).Txt
	if len(txt) != 3 || len(txt[0]) != 255 || strings.Join(txt, "") != long {
		t.Errorf("strings: got %d parts, want 3 parts of at most 255 joining to the value", len(txt))
	}
}

func TestRcodeAndTTL(t *testing.T) {
	s := Start(t)
	s.AddA("a.example", "127.0.0.1")
	s.SetTTL(42)
	r := mustQuery(t, s, "udp", "a.example", dns.TypeA)
	if got := r.Answer[0].Header().Ttl; got != 42 {
		t.Errorf("ttl: got %d, want 42", got)
	}
	s.SetRcode("a.example", dns.RcodeServerFailure)
	r = mustQuery(t, s, "udp", "a.example", dns.TypeA)
	if r.Rcode != dns.RcodeServerFailure {
		t.Errorf("rcode: got %s, want SERVFAIL", dns.RcodeToString[r.Rcode])
	}
	s.SetRcode("a.example", dns.RcodeSuccess)
	r = mustQuery(t, s, "udp", "a.example", dns.TypeA)
	if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
		t.Errorf("after reset: got %s with %d answers, want NOERROR with 1", dns.RcodeToString[r.Rcode], len(r.Answer))
	}
	if got := s.Queries("A.EXAMPLE.", dns.TypeA); got != 3 {
		t.Errorf("queries: got %d, want 3", got)
	}
}

func TestTruncateUDP(t *testing.T) {
	s := Start(t)
	s.AddMX("tc.example", 10, "mx.tc.example")
	s.SetTruncateUDP("tc.example", true)
	u := mustQuery(t, s, "udp", "tc.example", dns.TypeMX)
	if !u.Truncated || len(u.Answer) != 0 {
		t.Errorf("udp: got TC=%v with %d answers, want TC=true with 0", u.Truncated, len(u.Answer))
	}
	tc := mustQuery(t, s, "tcp", "tc.example", dns.TypeMX)
	if tc.Truncated || len(tc.Answer) != 1 {
		t.Errorf("tcp: got TC=%v with %d answers, want TC=false with 1", tc.Truncated, len(tc.Answer))
	}
}

func TestDelayAndDrop(t *testing.T) {
	s := Start(t)
	s.AddA("slow.example", "127.0.0.1")
	s.AddA("gone.example", "127.0.0.1")
	s.SetDelay("slow.example", 300*time.Millisecond)
	s.SetDrop("gone.example", true)
	tests := []struct {
		name        string
		qname       string
		timeout     time.Duration
		wantTimeout bool
	}{
		{"delay longer than timeout", "slow.example", 100 * time.Millisecond, true},
		{"delay shorter than timeout", "slow.example", 3 * time.Second, false},
		{"drop", "gone.example", 150 * time.Millisecond, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := query(t, s, "udp", tc.qname, dns.TypeA, tc.timeout)
			var ne net.Error
			gotTimeout := errors.As(err, &ne) && ne.Timeout()
			if gotTimeout != tc.wantTimeout {
				t.Errorf("timeout: got %v (err %v), want %v", gotTimeout, err, tc.wantTimeout)
			}
		})
	}
}
