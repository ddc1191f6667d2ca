package dsn

import (
	"bytes"
	"errors"
	"net/mail"
	"net/textproto"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"
)

// reportHeaders is the exact header section Build writes: any other name
// would be an injected field.
var reportHeaders = map[string]bool{
	"From": true, "To": true, "Subject": true, "Date": true, "Message-Id": true,
	"Auto-Submitted": true, "Mime-Version": true, "Content-Type": true,
	"Content-Transfer-Encoding": true,
}

var perMessageFields = map[string]bool{
	"Original-Envelope-Id": true, "Reporting-Mta": true, "Arrival-Date": true, "X-Sluice-Queue-Id": true,
}

var perRecipientFields = map[string]bool{
	"Original-Recipient": true, "Final-Recipient": true, "Action": true, "Status": true,
	"Remote-Mta": true, "Diagnostic-Code": true, "Last-Attempt-Date": true, "Will-Retry-Until": true,
}

var fuzzActions = []Action{ActionFailed, ActionDelayed, ActionDelivered, ActionRelayed, ActionExpanded}

func FuzzBuild(f *testing.F) {
	f.Add("550 5.1.1 user unknown", "mx.example.com", "bob@example.org", "rfc822;bob@example.org",
		"ENV1", "alice@example.com", "budget spent", "Q1", []byte(testOriginal), uint8(0), true)
	f.Add("421 4.7.0\r\nBcc: victim@example.org", "mx\r\nX-Evil: 1", "a\r\nTo: x@y", "rfc822;\r\n\r\nx",
		"id\r\n\r\n--", "a@b\r\nSubject: pwned", "\x00\r\n.\r\n", "Q\r\n2", []byte("Subject: x\n\nbody\r.\n"), uint8(1), false)
	f.Add(strings.Repeat("x", 3000), strings.Repeat("m", 300), strings.Repeat("\u00fc", 400), "utf-8;\u00fc@x",
		strings.Repeat("e", 200), strings.Repeat("t", 2000), strings.Repeat("w ", 800), "", []byte(strings.Repeat("h", 5000)), uint8(2), true)
	f.Add("", "", "\xff\xfe@\x00", ";", "\xff", "<>", "", "", []byte(nil), uint8(3), true)
	f.Add("250 ok", "", "x@y", "", "", "s@x", "", "", []byte("\r\n\r\n--=_sluice_\r\n"), uint8(4), true)

	f.Fuzz(func(t *testing.T, diag, remote, final, orcpt, envID, to, reason, queueID string,
		original []byte, action uint8, full bool) {
		r := newTestReport()
		r.To = to
		r.EnvID = envID
		r.QueueID = queueID
		r.WaitReason = reason
		r.RetryUntil = testRetry
		r.Original = original
		if full {
			r.Return = ReturnFull
		}
		r.Recipients[0] = Recipient{
			FinalRecipient: final, OriginalRecipient: orcpt,
			Action: fuzzActions[int(action)%len(fuzzActions)], RemoteMTA: remote, DiagnosticCode: diag,
		}
		r.Recipients = append(r.Recipients, Recipient{
			FinalRecipient: "fixed@example.org", Action: ActionFailed, RemoteMTA: remote, DiagnosticCode: diag,
		})
		out, err := Build(r)
		if err != nil {
			if errors.Is(err, ErrNullSender) || errors.Is(err, ErrInvalidReport) {
				return
			}
			t.Fatalf("Build: unexpected error %v", err)
		}
		checkBuilt(t, out, len(r.Recipients))
	})
}

// checkBuilt holds the properties every built report has, whatever went in.
func checkBuilt(t *testing.T, out []byte, recipients int) {
	t.Helper()
	if err := lineError(out); err != nil {
		t.Fatal(err)
	}
	end := bytes.Index(out, []byte("\r\n\r\n"))
	if end < 0 {
		t.Fatal("no end of header section")
	}
	if hasEightBit(out[:end]) {
		t.Error("8-bit octet in the header section")
	}
	h, parts := dissect(t, out)
	for k, v := range h {
		if !reportHeaders[k] || len(v) != 1 {
			t.Errorf("header %q = %q: injected or repeated field", k, v)
		}
	}
	if len(h) != len(reportHeaders) {
		t.Errorf("got %d header fields, want %d", len(h), len(reportHeaders))
	}
	if len(parts) < 2 || len(parts) > 3 {
		t.Fatalf("got %d parts, want 2 or 3", len(parts))
	}
	for i := 0; i < 2; i++ {
		if hasEightBit(parts[i].body) {
			t.Errorf("part %d holds 8-bit octets", i)
		}
	}
	groups := statusGroups(t, parts[1].body)
	if len(groups) != recipients+1 {
		t.Fatalf("got %d delivery-status groups, want %d", len(groups), recipients+1)
	}
	checkFieldNames(t, groups[0], perMessageFields)
	for _, g := range groups[1:] {
		checkFieldNames(t, g, perRecipientFields)
	}
	p, err := Parse(out)
	if err != nil {
		t.Fatalf("Parse(Build()): %v", err)
	}
	if len(p.Recipients) != recipients || p.Heuristic {
		t.Errorf("Parse found %d recipients (heuristic %v), want %d", len(p.Recipients), p.Heuristic, recipients)
	}
}

func checkFieldNames(t *testing.T, h textproto.MIMEHeader, allowed map[string]bool) {
	t.Helper()
	for k, v := range h {
		if !allowed[k] || len(v) != 1 {
			t.Errorf("delivery-status field %q = %q: injected or repeated", k, v)
		}
	}
}

func FuzzParse(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.eml"))
	if err != nil {
		f.Fatal(err)
	}
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		f.Add([]byte(toCRLF(string(b))))
	}
	if built, err := Build(newTestReport()); err == nil {
		f.Add(built)
	}
	f.Add([]byte(""))
	f.Add([]byte("550 5.1.1 <a@b.example> no\n"))
	f.Add([]byte(nestedReport(3)))
	f.Add([]byte(reportWith("message/delivery-status", "Content-Transfer-Encoding: base64\n", "!!!")))

	f.Fuzz(func(t *testing.T, msg []byte) {
		p, err := Parse(msg)
		if err != nil {
			if !errors.Is(err, ErrNoReport) {
				t.Fatalf("Parse error %v does not wrap ErrNoReport", err)
			}
			return
		}
		if len(p.Recipients) == 0 || len(p.Recipients) > maxRecipients {
			t.Fatalf("got %d recipients, want 1 to %d", len(p.Recipients), maxRecipients)
		}
		checkParsedValue(t, p.ReportingMTA)
		checkParsedValue(t, p.EnvID)
		for _, r := range p.Recipients {
			for _, v := range []string{r.FinalRecipient, r.OriginalRecipient, r.Action, r.Status, r.DiagnosticCode, r.RemoteMTA} {
				checkParsedValue(t, v)
			}
			if r.Status != "" && !IsStatusCode(r.Status) {
				t.Errorf("Status %q is not a status code", r.Status)
			}
		}
	})
}

func checkParsedValue(t *testing.T, v string) {
	t.Helper()
	if !utf8.ValidString(v) {
		t.Errorf("value %q is not valid UTF-8", v)
	}
	if len(v) > 2*maxValueBytes+1 {
		t.Errorf("value of %d bytes exceeds the bound", len(v))
	}
	for _, r := range v {
		if r < ' ' || r == 0x7f {
			t.Errorf("value %q holds control character %U", v, r)
			return
		}
	}
}

// TestBuildHeaderInjection makes sure that what net/mail reads
// back as the report's header is exactly what Build meant to write, for a
// To address crafted to smuggle in a field.
func TestBuildHeaderInjection(t *testing.T) {
	tests := []struct {
		name string
		to   string
		from string
		want string
	}{
		{name: "CRLF and Bcc in To", to: "a@b\r\nBcc: victim@example.org", want: "<a@b??Bcc:?victim@example.org>"},
		{name: "bare LF in To", to: "a@b\nX-Evil: 1", want: "<a@b?X-Evil:?1>"},
		{name: "angle brackets in To", to: "<a@b>>, <c@d>", want: "<a@b??,??c@d>"},
		{name: "From with CRLF", to: "a@b", from: "daemon@x\r\nSubject: y", want: "<a@b>"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newTestReport()
			r.To = tc.to
			r.From = tc.from
			out, err := Build(r)
			if err != nil {
				t.Fatal(err)
			}
			checkBuilt(t, out, 1)
			m, err := mail.ReadMessage(bytes.NewReader(out))
			if err != nil {
				t.Fatal(err)
			}
			if got := m.Header.Get("To"); got != tc.want {
				t.Errorf("To = %q, want %q", got, tc.want)
			}
			if got := m.Header.Get("Subject"); got != SubjectFailed {
				t.Errorf("Subject = %q, want %q", got, SubjectFailed)
			}
		})
	}
}
