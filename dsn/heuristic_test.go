package dsn

import (
	"reflect"
	"testing"
)

func TestFindStatus(t *testing.T) {
	tests := []struct {
		name       string
		text       string
		wantStatus string
		wantDiag   string
		wantOK     bool
	}{
		{name: "reply with enhanced code", text: "x\nhost said: 550 5.1.1 unknown\ny",
			wantStatus: "5.1.1", wantDiag: "host said: 550 5.1.1 unknown", wantOK: true},
		{name: "continuation reply", text: "550-5.7.1 blocked", wantStatus: "5.7.1", wantDiag: "550-5.7.1 blocked", wantOK: true},
		{name: "enhanced code before a bare reply", text: "421 later\nStatus 4.4.7", wantStatus: "4.4.7",
			wantDiag: "Status 4.4.7", wantOK: true},
		{name: "enhanced code at sentence end", text: "failed with 5.2.2.", wantStatus: "5.2.2",
			wantDiag: "failed with 5.2.2.", wantOK: true},
		{name: "bare reply code after said", text: "host said: 554 rejected", wantStatus: "5.0.0",
			wantDiag: "host said: 554 rejected", wantOK: true},
		{name: "quoted reply code", text: "returned '452 too many'", wantStatus: "4.0.0",
			wantDiag: "returned '452 too many'", wantOK: true},
		{name: "IP address is not a code", text: "from 10.5.1.1 and 172.16.4.2.1", wantOK: false},
		{name: "version number inside a word", text: "v5.1.1", wantOK: false},
		{name: "success code ignored", text: "250 2.0.0 ok", wantOK: false},
		{name: "number in prose", text: "we sent 450 messages", wantOK: false},
		{name: "leading zeros rejected", text: "550 5.01.1 x", wantStatus: "5.0.0", wantDiag: "550 5.01.1 x", wantOK: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, diag, ok := findStatus([]byte(tc.text))
			if status != tc.wantStatus || diag != tc.wantDiag || ok != tc.wantOK {
				t.Errorf("findStatus(%q) = %q, %q, %v; want %q, %q, %v",
					tc.text, status, diag, ok, tc.wantStatus, tc.wantDiag, tc.wantOK)
			}
		})
	}
}

func TestFindAddresses(t *testing.T) {
	tests := []struct {
		name    string
		text    string
		exclude map[string]bool
		want    []string
	}{
		{name: "angle brackets and mailto duplicates", text: "<a@x.example>: no\njane@y.example<mailto:jane@y.example>",
			want: []string{"a@x.example", "jane@y.example"}},
		{name: "case-insensitive duplicates", text: "A@X.example a@x.example", want: []string{"A@X.example"}},
		{name: "our own VERP address excluded", text: "to bounce+1@relay.example and b@x.example",
			exclude: map[string]bool{"bounce+1@relay.example": true}, want: []string{"b@x.example"}},
		{name: "postmaster and mailer-daemon excluded", text: "postmaster@x.example MAILER-DAEMON@x.example c@x.example",
			want: []string{"c@x.example"}},
		{name: "trailing dot trimmed", text: "write to d@x.example.", want: []string{"d@x.example"}},
		{name: "single-label domain ignored", text: "root@localhost", want: nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := findAddresses([]byte(tc.text), tc.exclude); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("findAddresses(%q) = %q, want %q", tc.text, got, tc.want)
			}
		})
	}
}

func TestReportTextStopsAtReturnedCopy(t *testing.T) {
	text := "<a@x.example>: 550 5.1.1 unknown\n" +
		"Message-ID: <id@x.example>\n" +
		"--- Below this line is a copy of the message.\n" +
		"To: b@x.example\n552 5.2.2 full\n"
	want := "<a@x.example>: 550 5.1.1 unknown\n"
	if got := string(reportText([]byte(text))); got != want {
		t.Errorf("reportText = %q, want %q", got, want)
	}
}

func TestHeuristicKeepsPerMessageFields(t *testing.T) {
	msg := reportWith("message/delivery-status", "",
		"Reporting-MTA: dns; mx.example\nOriginal-Envelope-Id: E1\n")
	msg = msg[:len(msg)-len("\r\n--BB--\r\n")] + "\r\n--BB\r\nContent-Type: text/plain\r\n\r\n<z@example.org>: 550 5.1.1 gone\r\n--BB--\r\n"
	got, err := Parse([]byte(msg))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	want := &Parsed{ReportingMTA: "mx.example", EnvID: "E1", Heuristic: true, Recipients: []ParsedRecipient{{
		FinalRecipient: "z@example.org", Action: "failed", Status: "5.1.1",
		DiagnosticCode: "<z@example.org>: 550 5.1.1 gone",
	}}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Parse =\n%+v\nwant\n%+v", got, want)
	}
}
