package verp

import (
	"strings"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	c := New([]byte("0123456789abcdef0123456789abcdef"))
	bases := []string{"other@x.example", "bounces@relay.example"}
	for _, tc := range []struct {
		name, rcpt string
		idx        int
		withDomain bool
	}{
		{"short domain", "bob@bigmail.com", 3, true},
		{"long domain left out", "bob@" + strings.Repeat("a", 50) + ".example", 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := c.Encode("bounces@relay.example", "660E88F40D8F0", tc.idx, tc.rcpt)
			local := a[:strings.LastIndexByte(a, '@')]
			if len(local) > 64 {
				t.Errorf("local part of %q is %d octets, over 64", a, len(local))
			}
			if got := strings.Contains(a, "="); got != tc.withDomain {
				t.Errorf("%q: recipient domain present = %v, want %v", a, got, tc.withDomain)
			}
			for _, variant := range []string{a, strings.ToUpper(a), strings.ToLower(a)} {
				id, idx, ok := c.Decode(variant, bases)
				if !ok || id != "660E88F40D8F0" || idx != tc.idx {
					t.Errorf("Decode(%q) = %q, %d, %v", variant, id, idx, ok)
				}
			}
		})
	}
}

func TestRejectsForgeries(t *testing.T) {
	c := New([]byte("key one"))
	other := New([]byte("key two"))
	good := c.Encode("bounces@relay.example", "ABC123", 1, "x@y.example")
	bases := []string{"bounces@relay.example"}
	for _, tc := range []struct{ name, addr string }{
		{"another key", other.Encode("bounces@relay.example", "ABC123", 1, "x@y.example")},
		{"other index", strings.Replace(good, "-1-", "-2-", 1)},
		{"other queue ID", strings.Replace(good, "ABC123", "ABC124", 1)},
		{"other domain", strings.Replace(good, "@relay.example", "@evil.example", 1)},
		{"other base", strings.Replace(good, "bounces+", "postmaster+", 1)},
		{"no extension", "bounces@relay.example"},
		{"index with sign", strings.Replace(good, "-1-", "-+1-", 1)},
		{"garbage", "bounces+--@relay.example"},
		{"no at", "bounces+ABC123-1-aaaaaaaa"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if id, idx, ok := c.Decode(tc.addr, bases); ok {
				t.Errorf("Decode(%q) accepted: %q %d", tc.addr, id, idx)
			}
		})
	}
}

func FuzzDecode(f *testing.F) {
	c := New([]byte("k"))
	f.Add(c.Encode("b@r.example", "ABC", 0, "x@y"))
	f.Add("b+@r.example")
	f.Add("")
	f.Fuzz(func(t *testing.T, addr string) {
		id, idx, ok := c.Decode(addr, []string{"b@r.example"})
		if ok {
			if back := c.Encode("b@r.example", id, idx, "x@y"); !strings.EqualFold(strings.SplitN(back, "=", 2)[0], strings.SplitN(strings.SplitN(addr, "@", 2)[0], "=", 2)[0]) {
				t.Fatalf("accepted %q, which does not re-encode (%q)", addr, back)
			}
		}
	})
}
