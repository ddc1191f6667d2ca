package delivery

import (
	"errors"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sluice-mta/sluice/internal/testdns"
)

func hosts(mxs []MX) []string {
	var out []string
	for _, m := range mxs {
		out = append(out, m.Host)
	}
	return out
}

func TestLookupMX(t *testing.T) {
	d := testdns.Start(t)
	d.AddMX("sorted.example", 30, "c.sorted.example")
	d.AddMX("sorted.example", 10, "A.sorted.example.")
	d.AddMX("sorted.example", 20, "b.sorted.example")
	d.AddA("implicit.example", "192.0.2.1")
	d.AddTXT("noaddr.example", "v=spf1 -all")
	d.SetNullMX("null.example")
	d.AddMX("servfail.example", 10, "mx.servfail.example")
	d.SetRcode("servfail.example", dns.RcodeServerFailure)
	d.AddMX("refused.example", 10, "mx.refused.example")
	d.SetRcode("refused.example", dns.RcodeRefused)
	d.AddMX("tc.example", 10, "mx.tc.example")
	d.SetTruncateUDP("tc.example", true)
	r := newTestResolver(t, d)
	tests := []struct {
		name         string
		domain       string
		want         []string
		wantEnhanced string
		wantTemp     bool
	}{
		{"sorted by preference, names canonical", "Sorted.Example.", []string{"a.sorted.example", "b.sorted.example", "c.sorted.example"}, "", false},
		{"implicit mx", "implicit.example", []string{"implicit.example"}, "", false},
		{"no mx and no address", "noaddr.example", nil, "5.4.4", false},
		{"null mx", "null.example", nil, "5.1.10", false},
		{"nxdomain", "nowhere.example", nil, "5.1.2", false},
		{"servfail", "servfail.example", nil, "4.4.3", true},
		{"refused", "refused.example", nil, "4.4.3", true},
		{"truncated udp retried over tcp", "tc.example", []string{"mx.tc.example"}, "", false},
		{"address literal", "[192.0.2.7]", []string{"[192.0.2.7]"}, "", false},
		{"invalid name", "bad..example", nil, "5.1.2", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := r.LookupMX(testCtx(t), tc.domain)
			if tc.wantEnhanced == "" {
				if err != nil {
					t.Fatalf("LookupMX(%q): got error %v, want %v", tc.domain, err, tc.want)
				}
				if !slices.Equal(hosts(got), tc.want) {
					t.Errorf("LookupMX(%q): got %v, want %v", tc.domain, hosts(got), tc.want)
				}
				return
			}
			var de *DNSError
			if !errors.As(err, &de) {
				t.Fatalf("LookupMX(%q): got %v, %v; want a *DNSError", tc.domain, got, err)
			}
			if de.Enhanced != tc.wantEnhanced || de.IsTemporary() != tc.wantTemp {
				t.Errorf("LookupMX(%q): got %s temporary=%v (%v), want %s temporary=%v",
					tc.domain, de.Enhanced, de.IsTemporary(), de, tc.wantEnhanced, tc.wantTemp)
			}
		})
	}
}

func TestLookupMXTruncatedUsesTCP(t *testing.T) {
	d := testdns.Start(t)
	d.AddMX("tc.example", 10, "mx.tc.example")
	d.SetTruncateUDP("tc.example", true)
	r := newTestResolver(t, d)
	if _, err := r.LookupMX(testCtx(t), "tc.example"); err != nil {
		t.Fatalf("LookupMX: %v", err)
	}
	// One UDP query answered with TC, then the same query over TCP.
	if got := d.Queries("tc.example", dns.TypeMX); got != 2 {
		t.Errorf("queries: got %d, want 2 (udp then tcp)", got)
	}
}

func TestLookupMXTimeout(t *testing.T) {
	d := testdns.Start(t)
	d.AddMX("slow.example", 10, "mx.slow.example")
	d.SetDelay("slow.example", 2*time.Second)
	r, err := NewResolver(ResolverOptions{Servers: []string{d.Addr()}, Timeout: 150 * time.Millisecond, Logger: newTestLogger(t)})
	if err != nil {
		t.Fatalf("NewResolver: %v", err)
	}
	start := time.Now()
	_, err = r.LookupMX(testCtx(t), "slow.example")
	var de *DNSError
	if !errors.As(err, &de) || !de.IsTemporary() {
		t.Fatalf("LookupMX: got %v, want a temporary *DNSError", err)
	}
	if el := time.Since(start); el > time.Second {
		t.Errorf("elapsed: got %v, want about the 150ms timeout", el)
	}
}

func TestServersTriedInOrder(t *testing.T) {
	bad, good := testdns.Start(t), testdns.Start(t)
	bad.AddMX("example.com", 10, "mx.example.com")
	bad.SetRcode("example.com", dns.RcodeServerFailure)
	good.AddMX("example.com", 10, "mx.example.com")
	r := newTestResolver(t, bad, good)
	got, err := r.LookupMX(testCtx(t), "example.com")
	if err != nil || len(got) != 1 || got[0].Host != "mx.example.com" {
		t.Fatalf("LookupMX: got %v, %v; want [mx.example.com]", got, err)
	}
	if b, g := bad.Queries("example.com", dns.TypeMX), good.Queries("example.com", dns.TypeMX); b != 1 || g != 1 {
		t.Errorf("queries: got bad=%d good=%d, want 1 and 1", b, g)
	}
}

func TestEqualPreferencesShuffled(t *testing.T) {
	d := testdns.Start(t)
	d.AddMX("example.com", 10, "a.example.com")
	d.AddMX("example.com", 10, "b.example.com")
	d.AddMX("example.com", 5, "first.example.com")
	d.AddMX("example.com", 20, "last.example.com")
	r, err := NewResolver(ResolverOptions{
		Servers: []string{d.Addr()},
		Logger:  newTestLogger(t),
		Rand:    rand.New(rand.NewPCG(1, 2)),
	})
	if err != nil {
		t.Fatalf("NewResolver: %v", err)
	}
	seen := map[string]bool{}
	for i := 0; i < 200 && len(seen) < 2; i++ {
		got, err := r.LookupMX(testCtx(t), "example.com")
		if err != nil {
			t.Fatalf("LookupMX: %v", err)
		}
		h := hosts(got)
		if len(h) != 4 || h[0] != "first.example.com" || h[3] != "last.example.com" {
			t.Fatalf("order: got %v, want first, the two 10s, last", h)
		}
		seen[strings.Join(h[1:3], ",")] = true
	}
	if len(seen) != 2 {
		t.Errorf("orders of equal preferences: got %v, want both", seen)
	}
	if got := d.Queries("example.com", dns.TypeMX); got != 1 {
		t.Errorf("queries: got %d, want 1 (the rest from cache)", got)
	}
}

func TestCacheTTL(t *testing.T) {
	tests := []struct {
		name   string
		domain string
		qtype  uint16
		setup  func(d *testdns.Server)
	}{
		{"positive answer", "example.com", dns.TypeMX, func(d *testdns.Server) { d.AddMX("example.com", 10, "mx.example.com") }},
		{"nxdomain (RFC 2308)", "gone.example", dns.TypeMX, func(*testdns.Server) {}},
		{"nodata", "nomx.example", dns.TypeMX, func(d *testdns.Server) {
			d.AddTXT("nomx.example", "x")
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := testdns.Start(t)
			d.SetTTL(60)
			tc.setup(d)
			clock := &fakeClock{now: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)}
			r, err := NewResolver(ResolverOptions{Servers: []string{d.Addr()}, Logger: newTestLogger(t), Now: clock.Now})
			if err != nil {
				t.Fatalf("NewResolver: %v", err)
			}
			lookup := func() { _, _ = r.LookupMX(testCtx(t), tc.domain) }
			lookup()
			clock.Advance(59 * time.Second)
			lookup()
			if got := d.Queries(tc.domain, tc.qtype); got != 1 {
				t.Errorf("queries within the TTL: got %d, want 1", got)
			}
			clock.Advance(2 * time.Second)
			lookup()
			if got := d.Queries(tc.domain, tc.qtype); got != 2 {
				t.Errorf("queries after the TTL: got %d, want 2", got)
			}
		})
	}
}

func TestCacheTTLCapped(t *testing.T) {
	d := testdns.Start(t)
	d.SetTTL(7 * 24 * 3600)
	d.AddMX("example.com", 10, "mx.example.com")
	clock := &fakeClock{now: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)}
	r, err := NewResolver(ResolverOptions{Servers: []string{d.Addr()}, Logger: newTestLogger(t), Now: clock.Now})
	if err != nil {
		t.Fatalf("NewResolver: %v", err)
	}
	_, _ = r.LookupMX(testCtx(t), "example.com")
	clock.Advance(maxCacheTTL + time.Second)
	_, _ = r.LookupMX(testCtx(t), "example.com")
	if got := d.Queries("example.com", dns.TypeMX); got != 2 {
		t.Errorf("queries: got %d, want 2 (a week's TTL capped at %v)", got, maxCacheTTL)
	}
}

func TestTemporaryFailureNotCached(t *testing.T) {
	d := testdns.Start(t)
	d.AddMX("example.com", 10, "mx.example.com")
	d.SetRcode("example.com", dns.RcodeServerFailure)
	r := newTestResolver(t, d)
	if _, err := r.LookupMX(testCtx(t), "example.com"); err == nil {
		t.Fatalf("LookupMX during SERVFAIL: got nil error, want one")
	}
	d.SetRcode("example.com", dns.RcodeSuccess)
	if got, err := r.LookupMX(testCtx(t), "example.com"); err != nil || len(got) != 1 {
		t.Errorf("LookupMX after recovery: got %v, %v; want one MX", got, err)
	}
}

func TestLookupAddrs(t *testing.T) {
	d := testdns.Start(t)
	d.AddA("dual.example", "2001:db8::1")
	d.AddA("dual.example", "192.0.2.1")
	d.AddA("dual.example", "192.0.2.2")
	d.AddTXT("noaddr.example", "x")
	d.AddA("half.example", "192.0.2.3")
	r := newTestResolver(t, d)
	tests := []struct {
		name         string
		host         string
		want         []string
		wantEnhanced string
		wantTemp     bool
	}{
		{"ipv4 then ipv6", "dual.example", []string{"192.0.2.1", "192.0.2.2", "2001:db8::1"}, "", false},
		{"ip address", "192.0.2.9", []string{"192.0.2.9"}, "", false},
		{"address literal", "[IPv6:2001:db8::2]", []string{"2001:db8::2"}, "", false},
		{"only ipv4", "half.example", []string{"192.0.2.3"}, "", false},
		{"nxdomain", "nowhere.example", nil, "5.4.4", false},
		{"nodata", "noaddr.example", nil, "5.4.4", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := r.LookupAddrs(testCtx(t), tc.host)
			var gotS []string
			for _, a := range got {
				gotS = append(gotS, a.String())
			}
			if tc.wantEnhanced == "" {
				if err != nil || !slices.Equal(gotS, tc.want) {
					t.Errorf("LookupAddrs(%q): got %v, %v; want %v", tc.host, gotS, err, tc.want)
				}
				return
			}
			var de *DNSError
			if !errors.As(err, &de) || de.Enhanced != tc.wantEnhanced || de.Temporary != tc.wantTemp {
				t.Errorf("LookupAddrs(%q): got %v, %v; want *DNSError %s temporary=%v", tc.host, gotS, err, tc.wantEnhanced, tc.wantTemp)
			}
		})
	}
}

func TestLookupAddrsServfail(t *testing.T) {
	d := testdns.Start(t)
	d.AddA("mx.example", "192.0.2.1")
	d.SetRcode("mx.example", dns.RcodeServerFailure)
	r := newTestResolver(t, d)
	_, err := r.LookupAddrs(testCtx(t), "mx.example")
	var de *DNSError
	if !errors.As(err, &de) || !de.Temporary || de.Enhanced != "4.4.3" {
		t.Errorf("got %v, want a temporary *DNSError 4.4.3", err)
	}
}

func TestParseLiteral(t *testing.T) {
	tests := []struct {
		in   string
		want string
		ok   bool
	}{
		{"[192.0.2.1]", "192.0.2.1", true},
		{"[IPv6:2001:db8::1]", "2001:db8::1", true},
		{"[ipv6:::1]", "::1", true},
		{"[2001:db8::1]", "", false},
		{"[IPv6:192.0.2.1]", "", false},
		{"192.0.2.1", "", false},
		{"[example.com]", "", false},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, ok := parseLiteral(tc.in)
			if ok != tc.ok || (ok && got != netip.MustParseAddr(tc.want)) {
				t.Errorf("parseLiteral(%q): got %v, %v; want %v, %v", tc.in, got, ok, tc.want, tc.ok)
			}
		})
	}
}
