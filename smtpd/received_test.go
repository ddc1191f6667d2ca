package smtpd

import (
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestReceived(t *testing.T) {
	date := time.Date(2024, 5, 6, 7, 8, 9, 0, time.FixedZone("", 2*3600))
	base := receivedInfo{helo: "client.test", ip: netip.MustParseAddr("192.0.2.7"),
		hostname: "mx.test", id: "ABC", date: date}
	cases := []struct {
		name string
		mod  func(*receivedInfo)
		want string // unfolded
	}{
		{"plain", func(*receivedInfo) {},
			"Received: from client.test (rdns-not-done [192.0.2.7]) by mx.test (sluice) with ESMTP id ABC; Mon, 06 May 2024 07:08:09 +0200"},
		{"tls and one recipient", func(r *receivedInfo) { r.tls = true; r.rcpt = "a@b.test" },
			"Received: from client.test (rdns-not-done [192.0.2.7]) by mx.test (sluice) with ESMTPS id ABC for <a@b.test>; Mon, 06 May 2024 07:08:09 +0200"},
		{"IPv6 literal", func(r *receivedInfo) { r.ip = netip.MustParseAddr("2001:db8::1") },
			"Received: from client.test (rdns-not-done [IPv6:2001:db8::1]) by mx.test (sluice) with ESMTP id ABC; Mon, 06 May 2024 07:08:09 +0200"},
		{"unknown IP", func(r *receivedInfo) { r.ip = netip.Addr{} },
			"Received: from client.test (rdns-not-done [unknown]) by mx.test (sluice) with ESMTP id ABC; Mon, 06 May 2024 07:08:09 +0200"},
		{"hostile HELO is defused", func(r *receivedInfo) { r.helo = "x(y);\rz" },
			"Received: from x_y___z (rdns-not-done [192.0.2.7]) by mx.test (sluice) with ESMTP id ABC; Mon, 06 May 2024 07:08:09 +0200"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := base
			tc.mod(&r)
			got := received(r)
			if !strings.HasSuffix(got, "\r\n") {
				t.Fatalf("field does not end in CRLF: %q", got)
			}
			for _, line := range strings.Split(strings.TrimSuffix(got, "\r\n"), "\r\n") {
				if len(line) > maxFoldedLine {
					t.Errorf("line longer than %d: %q", maxFoldedLine, line)
				}
			}
			if u := strings.ReplaceAll(strings.TrimSuffix(got, "\r\n"), "\r\n\t", " "); u != tc.want {
				t.Errorf("unfolded:\n got %q\nwant %q", u, tc.want)
			}
		})
	}
}

func TestReceivedLongHELOStaysBounded(t *testing.T) {
	r := receivedInfo{helo: strings.Repeat("h", 5000), hostname: "mx.test", id: "X", date: time.Unix(0, 0).UTC()}
	got := received(r)
	for _, line := range strings.Split(got, "\r\n") {
		if len(line) > 998 { // RFC 5322 2.1.1 hard limit
			t.Fatalf("line of %d octets", len(line))
		}
	}
}
