package dsn

import (
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

func readSample(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func toCRLF(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "\r\n", "\n"), "\n", "\r\n")
}

func TestParseSamples(t *testing.T) {
	tests := []struct {
		file string
		want *Parsed
	}{
		{file: "postfix.eml", want: &Parsed{
			ReportingMTA: "mx.example.net",
			Recipients: []ParsedRecipient{{
				FinalRecipient:    "alice@example.net",
				OriginalRecipient: "rfc822;alice@example.net",
				Action:            "failed",
				Status:            "5.1.1",
				DiagnosticCode:    "550 5.1.1 <alice@example.net>: Recipient address rejected: User unknown in virtual mailbox table",
				RemoteMTA:         "mailstore.example.net",
			}, {
				FinalRecipient:    "bob@example.net",
				OriginalRecipient: "rfc822;bob@example.net",
				Action:            "failed",
				Status:            "5.2.2",
				DiagnosticCode:    "552 5.2.2 <bob@example.net>: Mailbox full",
				RemoteMTA:         "mailstore.example.net",
			}},
		}},
		{file: "exchange.eml", want: &Parsed{
			ReportingMTA: "BN6PR11MB1234.namprd11.prod.outlook.example",
			Recipients: []ParsedRecipient{{
				FinalRecipient:    "jane.doe@contoso.example",
				OriginalRecipient: "rfc822;jane.doe@contoso.example",
				Action:            "failed",
				Status:            "5.1.10",
				DiagnosticCode:    "550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup",
			}},
		}},
		{file: "gmail.eml", want: &Parsed{
			ReportingMTA: "googlemail.example",
			Recipients: []ParsedRecipient{{
				FinalRecipient: "nobody@example.org",
				Action:         "failed",
				Status:         "5.1.1",
				DiagnosticCode: "550-5.1.1 The email account that you tried to reach does not exist. Please try " +
					"550-5.1.1 double-checking the recipient's email address for typos or " +
					"550 5.1.1 unnecessary spaces. For more information, go to " +
					"550 5.1.1  https://support.google.example/mail/?p=NoSuchUser a1si2b3c - gsmtp",
				RemoteMTA: "mx.example.org.",
			}},
		}},
		{file: "qmail.eml", want: &Parsed{
			Heuristic: true,
			Recipients: []ParsedRecipient{{
				FinalRecipient: "carol@example.org",
				Action:         "failed",
				Status:         "5.1.1",
				DiagnosticCode: "Remote host said: 550 5.1.1 <carol@example.org>... User unknown",
			}},
		}},
		{file: "delayed-plain.eml", want: &Parsed{
			Heuristic: true,
			Recipients: []ParsedRecipient{{
				FinalRecipient: "erin@legacy.example.com",
				Action:         "delayed",
				Status:         "4.0.0",
				DiagnosticCode: "421 Service temporarily unavailable, try again later",
			}},
		}},
	}
	for _, tc := range tests {
		raw := readSample(t, tc.file)
		for _, ending := range []struct {
			name string
			msg  string
		}{{"LF", strings.ReplaceAll(raw, "\r\n", "\n")}, {"CRLF", toCRLF(raw)}} {
			t.Run(tc.file+" with "+ending.name, func(t *testing.T) {
				got, err := Parse([]byte(ending.msg))
				if err != nil {
					t.Fatalf("Parse: %v", err)
				}
				if !reflect.DeepEqual(got, tc.want) {
					t.Errorf("Parse =\n%+v\nwant\n%+v", got, tc.want)
				}
			})
		}
	}
}

// reportWith wraps a delivery-status body in a minimal multipart/report.
func reportWith(statusType, statusHeaders, statusBody string) string {
	return toCRLF("From: MAILER-DAEMON@mx.example\n" +
		"To: bounce@relay.example\n" +
		"Subject: report\n" +
		"MIME-Version: 1.0\n" +
		"Content-Type: multipart/report; report-type=delivery-status; boundary=BB\n" +
		"\n" +
		"--BB\n" +
		"Content-Type: text/plain\n" +
		"\n" +
		"Something went wrong.\n" +
		"--BB\n" +
		"Content-Type: " + statusType + "\n" +
		statusHeaders +
		"\n" +
		statusBody +
		"\n--BB--\n")
}

func TestParseStructuredVariants(t *testing.T) {
	plain := "Reporting-MTA: dns; mx.example\n\nFinal-Recipient: rfc822; a@example.org\nAction: failed\nStatus: 5.1.1\n"
	tests := []struct {
		name string
		msg  string
		want []ParsedRecipient
		mta  string
		env  string
	}{
		{name: "base64 delivery-status part",
			msg: reportWith("message/delivery-status", "Content-Transfer-Encoding: base64\n",
				base64.StdEncoding.EncodeToString([]byte(plain))),
			mta:  "mx.example",
			want: []ParsedRecipient{{FinalRecipient: "a@example.org", Action: "failed", Status: "5.1.1"}}},
		{name: "no per-message group",
			msg:  reportWith("message/delivery-status", "", "Final-Recipient: rfc822; a@example.org\nAction: Failed\nStatus: 5.1.1"),
			want: []ParsedRecipient{{FinalRecipient: "a@example.org", Action: "failed", Status: "5.1.1"}}},
		{name: "status with comment, angle brackets, upper-case type",
			msg: reportWith("message/delivery-status", "",
				"Reporting-MTA: dns;mx.example\nOriginal-Envelope-Id: ENV-42\n\nFinal-Recipient: RFC822; <a@example.org>\nAction: failed\nStatus: 5.0.0 (permanent failure)"),
			mta: "mx.example", env: "ENV-42",
			want: []ParsedRecipient{{FinalRecipient: "a@example.org", Action: "failed", Status: "5.0.0"}}},
		{name: "status missing, taken from diagnostic",
			msg: reportWith("message/delivery-status", "",
				"Reporting-MTA: dns; mx.example\n\nFinal-Recipient: rfc822; a@example.org\nAction: failed\nDiagnostic-Code: smtp; 554 5.7.1 blocked"),
			mta: "mx.example",
			want: []ParsedRecipient{{FinalRecipient: "a@example.org", Action: "failed", Status: "5.7.1",
				DiagnosticCode: "554 5.7.1 blocked"}}},
		{name: "status missing, class from reply code",
			msg: reportWith("message/delivery-status", "",
				"Reporting-MTA: dns; mx.example\n\nFinal-Recipient: rfc822; a@example.org\nAction: delayed\nDiagnostic-Code: smtp; 451 try later"),
			mta: "mx.example",
			want: []ParsedRecipient{{FinalRecipient: "a@example.org", Action: "delayed", Status: "4.0.0",
				DiagnosticCode: "451 try later"}}},
		{name: "status missing, from action",
			msg: reportWith("message/delivery-status", "",
				"Reporting-MTA: dns; mx.example\n\nFinal-Recipient: rfc822; a@example.org\nAction: delivered"),
			mta:  "mx.example",
			want: []ParsedRecipient{{FinalRecipient: "a@example.org", Action: "delivered", Status: "2.0.0"}}},
		{name: "utf-8 xtext address decoded",
			msg: reportWith("message/delivery-status", "",
				"Reporting-MTA: dns; mx.example\n\nFinal-Recipient: utf-8; j\\x{F6}rg@example.org\nAction: failed\nStatus: 5.1.1"),
			mta:  "mx.example",
			want: []ParsedRecipient{{FinalRecipient: "j\u00f6rg@example.org", Action: "failed", Status: "5.1.1"}}},
		{name: "global delivery-status with raw UTF-8",
			msg: reportWith("message/global-delivery-status", "",
				"Reporting-MTA: dns; mx.example\n\nFinal-Recipient: utf-8; \u7528\u6237@example.org\nAction: failed\nStatus: 5.1.1"),
			mta:  "mx.example",
			want: []ParsedRecipient{{FinalRecipient: "\u7528\u6237@example.org", Action: "failed", Status: "5.1.1"}}},
		{name: "folded fields with tabs and blank lines between groups",
			msg: reportWith("message/delivery-status", "",
				"Reporting-MTA: dns;\n\tmx.example\n\n\n\nFinal-Recipient: rfc822;\n a@example.org\nAction: failed\nStatus: 5.2.2\nDiagnostic-Code: smtp; 552\n\tmailbox\n  full\n\n\nFinal-Recipient: rfc822; b@example.org\nAction: failed\nStatus: 5.1.1"),
			mta: "mx.example",
			want: []ParsedRecipient{
				{FinalRecipient: "a@example.org", Action: "failed", Status: "5.2.2", DiagnosticCode: "552 mailbox full"},
				{FinalRecipient: "b@example.org", Action: "failed", Status: "5.1.1"}}},
		{name: "control characters and invalid UTF-8 cleaned",
			msg: reportWith("message/delivery-status", "",
				"Reporting-MTA: dns; mx.example\n\nFinal-Recipient: rfc822; a@example.org\nAction: failed\nStatus: 5.1.1\nDiagnostic-Code: smtp; 550 bad\x00\x1b\xff thing"),
			mta: "mx.example",
			want: []ParsedRecipient{{FinalRecipient: "a@example.org", Action: "failed", Status: "5.1.1",
				DiagnosticCode: "550 bad  ? thing"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Parse([]byte(tc.msg))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			want := &Parsed{ReportingMTA: tc.mta, EnvID: tc.env, Recipients: tc.want}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("Parse =\n%+v\nwant\n%+v", got, want)
			}
		})
	}
}

func TestParseFallbacks(t *testing.T) {
	tests := []struct {
		name      string
		msg       string
		wantErr   bool
		heuristic bool
		rcpts     []string
		status    string
	}{
		{name: "report without delivery-status part uses the text",
			msg:       reportWith("text/plain", "", "<x@example.org>: host mx said: 550 5.1.1 no such user"),
			heuristic: true, rcpts: []string{"x@example.org"}, status: "5.1.1"},
		{name: "delivery-status without recipients, text without status",
			msg:     reportWith("message/delivery-status", "", "Reporting-MTA: dns; mx.example\n"),
			wantErr: true},
		{name: "bare text without header",
			msg:       "550 5.1.1 <x@example.org>: no such user\n",
			heuristic: true, rcpts: []string{"x@example.org"}, status: "5.1.1"},
		{name: "status without address gives one anonymous recipient",
			msg:       "Subject: failure\n\nThe remote said 550 5.7.1 relaying denied.\n",
			heuristic: true, rcpts: []string{""}, status: "5.7.1"},
		{name: "IP addresses are not status codes",
			msg:     "Subject: hi\n\nConnected to 10.5.1.1 and 192.4.2.10 fine.\n",
			wantErr: true},
		{name: "numbers in prose are not reply codes",
			msg:     "Subject: hi\n\nThe file has 550 lines.\n",
			wantErr: true},
		{name: "ordinary mail", msg: "Subject: hi\nFrom: a@b.example\n\nHello a@c.example, how are you?\n", wantErr: true},
		{name: "empty input", msg: "", wantErr: true},
		{name: "binary garbage", msg: "\x00\xff\xfe--\r\n\r\n\x01\x02", wantErr: true},
		{name: "multipart without boundary is read as text",
			msg:       "Content-Type: multipart/report\n\n<y@example.org>: 552 5.2.2 full\n",
			heuristic: true, rcpts: []string{"y@example.org"}, status: "5.2.2"},
		{name: "broken multipart",
			msg:     "Content-Type: multipart/report; boundary=ZZ\n\n--ZZ\nContent-Type: message/delivery-status\n\nFinal-Rec",
			wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Parse([]byte(tc.msg))
			if tc.wantErr {
				if !errors.Is(err, ErrNoReport) {
					t.Fatalf("Parse = %+v, %v; want ErrNoReport", got, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if got.Heuristic != tc.heuristic {
				t.Errorf("Heuristic = %v, want %v", got.Heuristic, tc.heuristic)
			}
			var rcpts []string
			for _, r := range got.Recipients {
				rcpts = append(rcpts, r.FinalRecipient)
				if r.Status != tc.status {
					t.Errorf("recipient %q Status = %q, want %q", r.FinalRecipient, r.Status, tc.status)
				}
			}
			if !reflect.DeepEqual(rcpts, tc.rcpts) {
				t.Errorf("recipients = %q, want %q", rcpts, tc.rcpts)
			}
		})
	}
}

func TestParseTruncatedReportKeepsWhatItRead(t *testing.T) {
	raw := toCRLF(readSample(t, "postfix.eml"))
	cut := strings.Index(raw, "Remote-MTA: dns; mailstore.example.net\r\nDiagnostic-Code: smtp; 552")
	got, err := Parse([]byte(raw[:cut]))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if len(got.Recipients) != 2 || got.Recipients[1].Status != "5.2.2" || got.Heuristic {
		t.Errorf("Parse of a truncated report = %+v, want two structured recipients", got)
	}
}

func TestParseBounds(t *testing.T) {
	t.Run("recipients capped", func(t *testing.T) {
		var b strings.Builder
		b.WriteString("Reporting-MTA: dns; mx.example\n")
		for i := 0; i < maxRecipients+50; i++ {
			b.WriteString("\nFinal-Recipient: rfc822; a@example.org\nAction: failed\nStatus: 5.1.1\n")
		}
		got, err := Parse([]byte(reportWith("message/delivery-status", "", b.String())))
		if err != nil {
			t.Fatalf("Parse: %v", err)
		}
		if len(got.Recipients) != maxRecipients {
			t.Errorf("got %d recipients, want %d", len(got.Recipients), maxRecipients)
		}
	})
	t.Run("nesting beyond the limit is not followed", func(t *testing.T) {
		if _, err := Parse([]byte(nestedReport(maxDepth + 1))); !errors.Is(err, ErrNoReport) {
			t.Errorf("Parse of a too deep report error = %v, want ErrNoReport", err)
		}
	})
	t.Run("nesting within the limit is followed", func(t *testing.T) {
		got, err := Parse([]byte(nestedReport(maxDepth)))
		if err != nil || len(got.Recipients) != 1 || got.Recipients[0].FinalRecipient != "deep@example.org" {
			t.Errorf("Parse = %+v, %v; want deep@example.org", got, err)
		}
	})
	t.Run("oversized input is cut, not rejected", func(t *testing.T) {
		msg := reportWith("message/delivery-status", "",
			"Final-Recipient: rfc822; a@example.org\nAction: failed\nStatus: 5.1.1\n") +
			strings.Repeat("x", maxParseBytes)
		got, err := Parse([]byte(msg))
		if err != nil || len(got.Recipients) != 1 {
			t.Errorf("Parse = %+v, %v; want one recipient", got, err)
		}
	})
}

// nestedReport puts a delivery-status part at the given depth of nested
// multiparts (the top level is depth 0).
func nestedReport(depth int) string {
	msg := "Content-Type: multipart/mixed; boundary=B0\n\n"
	for i := 1; i < depth; i++ {
		msg += "--B" + strconv.Itoa(i-1) + "\nContent-Type: multipart/mixed; boundary=B" + strconv.Itoa(i) + "\n\n"
	}
	return msg + "--B" + strconv.Itoa(depth-1) + "\nContent-Type: message/delivery-status\n\n" +
		"Final-Recipient: rfc822; deep@example.org\nAction: failed\nStatus: 5.1.1\n"
}
