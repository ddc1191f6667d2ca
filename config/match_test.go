package config

import (
	"regexp"
	"testing"
	"time"
)

func TestOperatorFor(t *testing.T) {
	cfg := mustParse(t, doc(
		`hostname = "relay.example"`,
		`[[operator]]`,
		`name = "bigmail"`,
		`domains = ["bigmail.com", "bigmail.de", "*.bigmail.com"]`,
		`[[operator]]`,
		`name = "corp"`,
		`domains = ["*.corp.bigmail.com", "special.bigmail.com"]`,
		`[[operator]]`,
		`name = "mxonly"`,
		`mx_patterns = ["*.mx.hosted.example"]`,
	))
	tests := []struct {
		domain string
		want   string // "" = no operator
	}{
		{"bigmail.com", "bigmail"},
		{"BIGMAIL.COM.", "bigmail"},
		{"bigmail.de", "bigmail"},
		{"x.bigmail.com", "bigmail"},
		{"a.b.bigmail.com", "bigmail"},
		{"special.bigmail.com", "corp"},   // exact beats a wildcard
		{"eu.corp.bigmail.com", "corp"},   // longest wildcard wins
		{"a.eu.corp.bigmail.com", "corp"}, // at any depth
		{"corp.bigmail.com", "bigmail"},   // *.corp... does not match corp... itself
		{"xbigmail.com", ""},              // a suffix is not a subdomain
		{"bigmail.fr", ""},
		{"sub.bigmail.de", ""},    // bigmail.de has no wildcard
		{"mx.hosted.example", ""}, // mx_patterns are not domains
		{"", ""},
	}
	for _, tt := range tests {
		t.Run(tt.domain, func(t *testing.T) {
			op, ok := cfg.OperatorFor(tt.domain)
			got := ""
			if ok {
				got = op.Name
			}
			if got != tt.want || ok != (tt.want != "") {
				t.Errorf("OperatorFor(%q) = %q, %v; want %q", tt.domain, got, ok, tt.want)
			}
		})
	}
}

func TestOperatorForMX(t *testing.T) {
	cfg := mustParse(t, doc(
		`hostname = "relay.example"`,
		`[[operator]]`,
		`name = "bigmail"`,
		`mx_patterns = ["*.bigmail.net", "mx?.bigmail-dns.example"]`,
		`[[operator]]`,
		`name = "inbound"`,
		`mx_patterns = ["*.inbound.bigmail.net"]`,
	))
	tests := []struct {
		host string
		want string
	}{
		{"mx1.bigmail.net", "bigmail"},
		{"MX1.BigMail.NET.", "bigmail"},
		{"a.b.bigmail.net", "bigmail"},
		{"eu.inbound.bigmail.net", "inbound"}, // the longer pattern wins
		{"mx7.bigmail-dns.example", "bigmail"},
		{"mx10.bigmail-dns.example", ""}, // ? is one character
		{"bigmail.net", ""},
		{"mx.other.example", ""},
	}
	for _, tt := range tests {
		t.Run(tt.host, func(t *testing.T) {
			op, ok := cfg.OperatorForMX(tt.host)
			got := ""
			if ok {
				got = op.Name
			}
			if got != tt.want || ok != (tt.want != "") {
				t.Errorf("OperatorForMX(%q) = %q, %v; want %q", tt.host, got, ok, tt.want)
			}
		})
	}
}

func TestRouteFor(t *testing.T) {
	cfg := mustParse(t, doc(
		`hostname = "relay.example"`,
		`[[route]]`,
		`domains = ["*"]`,
		`relay = "catchall.example:25"`,
		`[[route]]`,
		`domains = ["*.partner.example", "partner.example"]`,
		`relay = "partner-gw.example:25"`,
		`[[route]]`,
		`domains = ["*.eu.partner.example"]`,
		`relay = "[192.0.2.5]:2525"`,
	))
	tests := []struct {
		domain string
		want   string // relay
	}{
		{"partner.example", "partner-gw.example:25"},
		{"Partner.Example.", "partner-gw.example:25"},
		{"x.partner.example", "partner-gw.example:25"},
		{"x.eu.partner.example", "[192.0.2.5]:2525"},
		{"eu.partner.example", "partner-gw.example:25"},
		{"elsewhere.example", "catchall.example:25"},
	}
	for _, tt := range tests {
		t.Run(tt.domain, func(t *testing.T) {
			rt, ok := cfg.RouteFor(tt.domain)
			if !ok || rt.Relay != tt.want {
				t.Errorf("RouteFor(%q) = %+v, %v; want relay %q", tt.domain, rt, ok, tt.want)
			}
		})
	}
	none := mustParse(t, doc(`hostname = "relay.example"`, `[[route]]`, `domains = ["a.example"]`, `relay = "gw.example:25"`))
	if rt, ok := none.RouteFor("b.example"); ok {
		t.Errorf("RouteFor(b.example) without a catch-all = %+v, true; want no route", rt)
	}
}

func TestResponseRuleMatches(t *testing.T) {
	tests := []struct {
		name     string
		rule     ResponseRule
		code     int
		enhanced string
		text     string
		want     bool
	}{
		{"basic code", ResponseRule{Code: "421"}, 421, "4.7.0", "try later", true},
		{"other basic code", ResponseRule{Code: "421"}, 451, "4.7.0", "try later", false},
		{"enhanced glob", ResponseRule{Code: "4.7.*"}, 451, "4.7.28", "rate limited", true},
		{"enhanced glob misses", ResponseRule{Code: "4.7.*"}, 451, "4.4.1", "x", false},
		{"question mark", ResponseRule{Code: "45?"}, 452, "", "x", true},
		{"question mark is one digit", ResponseRule{Code: "45?"}, 421, "4.5.0", "x", false},
		{"text only", ResponseRule{Match: regexp.MustCompile(`(?i)too many`)}, 550, "5.7.1", "Too many messages", true},
		{"text misses", ResponseRule{Match: regexp.MustCompile(`(?i)too many`)}, 421, "", "busy", false},
		{"both must match", ResponseRule{Code: "421", Match: regexp.MustCompile(`rate`)}, 421, "", "busy", false},
		{"both match", ResponseRule{Code: "421", Match: regexp.MustCompile(`rate`)}, 421, "", "rate limit", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.rule.Matches(tt.code, tt.enhanced, tt.text); got != tt.want {
				t.Errorf("Matches(%d, %q, %q) = %v, want %v", tt.code, tt.enhanced, tt.text, got, tt.want)
			}
		})
	}
}

func TestRetryAfter(t *testing.T) {
	d := Delivery{RetrySchedule: []time.Duration{time.Minute, 5 * time.Minute, time.Hour}}
	tests := []struct {
		attempt int
		want    time.Duration
	}{{0, time.Minute}, {1, time.Minute}, {2, 5 * time.Minute}, {3, time.Hour}, {4, time.Hour}, {100, time.Hour}}
	for _, tt := range tests {
		if got := d.RetryAfter(tt.attempt); got != tt.want {
			t.Errorf("RetryAfter(%d) = %v, want %v", tt.attempt, got, tt.want)
		}
	}
	if got := (&Delivery{}).RetryAfter(1); got != 0 {
		t.Errorf("RetryAfter with no schedule = %v, want 0", got)
	}
}
