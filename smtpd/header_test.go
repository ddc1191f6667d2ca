package smtpd

import (
	"testing"
)

func TestScanHeader(t *testing.T) {
	cases := []struct {
		name         string
		in           string
		wantReceived int
		wantPrio     string
		wantFound    bool
		wantStripped string
	}{
		{name: "no header section", in: "\r\nbody\r\n", wantStripped: "\r\nbody\r\n"},
		{name: "plain", in: "Received: a\r\nReceived: b\r\nSubject: s\r\n\r\nReceived: body\r\n",
			wantReceived: 2, wantStripped: "Received: a\r\nReceived: b\r\nSubject: s\r\n\r\nReceived: body\r\n"},
		{name: "case-insensitive names", in: "RECEIVED: a\r\nreceived : b\r\nP: 5\r\n\r\n",
			wantReceived: 2, wantPrio: " 5", wantFound: true, wantStripped: "RECEIVED: a\r\nreceived : b\r\n\r\n"},
		{name: "folded priority", in: "A: 1\r\nP:\r\n\t2.5\r\n  \r\nB: 2\r\n\r\nx\r\n",
			wantPrio: "\t2.5  ", wantFound: true, wantStripped: "A: 1\r\nB: 2\r\n\r\nx\r\n"},
		{name: "two priority fields", in: "p: 3\r\nA: 1\r\nP: 4\r\n more\r\n\r\n",
			wantPrio: " 3", wantFound: true, wantStripped: "A: 1\r\n\r\n"},
		{name: "priority in body untouched", in: "A: 1\r\n\r\nP: 9\r\n", wantStripped: "A: 1\r\n\r\nP: 9\r\n"},
		{name: "non-field line ends the header", in: "A: 1\r\nnot a field\r\nP: 9\r\n\r\n",
			wantStripped: "A: 1\r\nnot a field\r\nP: 9\r\n\r\n"},
		{name: "leading continuation ends the header", in: " P: 9\r\nP: 9\r\n\r\n",
			wantStripped: " P: 9\r\nP: 9\r\n\r\n"},
		{name: "prefix of the name is another field", in: "P-Other: 1\r\nPX: 2\r\n\r\n",
			wantStripped: "P-Other: 1\r\nPX: 2\r\n\r\n"},
		{name: "header without body", in: "P: 2\r\nReceived: x\r\n", wantReceived: 1,
			wantPrio: " 2", wantFound: true, wantStripped: "Received: x\r\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := scanHeader([]byte(tc.in), "P")
			if h.received != tc.wantReceived {
				t.Errorf("received: got %d, want %d", h.received, tc.wantReceived)
			}
			if h.found != tc.wantFound || string(h.priority) != tc.wantPrio {
				t.Errorf("priority: got %q (found %v), want %q (found %v)", h.priority, h.found, tc.wantPrio, tc.wantFound)
			}
			if got := string(without("", []byte(tc.in), h.fields)); got != tc.wantStripped {
				t.Errorf("stripped: got %q, want %q", got, tc.wantStripped)
			}
		})
	}
}
