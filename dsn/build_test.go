package dsn

import (
	"bytes"
	"errors"
	"net/mail"
	"net/textproto"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestBuildReportKinds(t *testing.T) {
	delayed := func() *Report {
		r := newTestReport()
		r.WaitReason = "waiting for the operator's hourly budget, next window at 15:00 UTC"
		r.RetryUntil = testRetry
		r.Recipients[0] = Recipient{
			FinalRecipient: "bob@bigmail.example",
			Action:         ActionDelayed,
			Status:         "4.7.0",
			RemoteMTA:      "mx1.bigmail.example",
			DiagnosticCode: "421 4.7.0 too many messages, try later",
			LastAttempt:    testDate.Add(-time.Minute),
		}
		return r
	}
	delivered := func() *Report {
		r := newTestReport()
		r.Recipients[0] = Recipient{
			FinalRecipient: "bob@bigmail.example",
			Action:         ActionDelivered,
			RemoteMTA:      "mx1.bigmail.example",
			DiagnosticCode: "250 2.0.0 Ok: queued as 77",
		}
		return r
	}
	tests := []struct {
		name      string
		report    *Report
		subject   string
		fields    map[string]string // per-recipient field -> exact value
		absent    []string          // per-recipient fields that must not appear
		textHas   []string
		thirdType string
	}{
		{
			name:    "failed report",
			report:  newTestReport(),
			subject: SubjectFailed,
			fields: map[string]string{
				"Final-Recipient":   "rfc822; bob@bigmail.example",
				"Action":            "failed",
				"Status":            "5.1.1",
				"Remote-Mta":        "dns; mx1.bigmail.example",
				"Diagnostic-Code":   "smtp; 550 5.1.1 user unknown",
				"Last-Attempt-Date": "Mon, 02 Mar 2026 14:04:06 +0000",
			},
			absent: []string{"Will-Retry-Until", "Original-Recipient"},
			textHas: []string{
				"This is the mail system at host relay.example.net.",
				"I'm sorry to have to inform you that your message could not be delivered to one or more recipients.",
				"<bob@bigmail.example>: delivery failed, status 5.1.1",
				"status 5.1.1 host mx1.bigmail.example said: 550 5.1.1 user unknown",
				"The queue ID of your message was Q123.",
			},
			thirdType: "text/rfc822-headers",
		},
		{
			name:    "delayed report with wait reason and retry limit",
			report:  delayed(),
			subject: SubjectDelayed,
			fields: map[string]string{
				"Action":           "delayed",
				"Status":           "4.7.0",
				"Diagnostic-Code":  "smtp; 421 4.7.0 too many messages, try later",
				"Will-Retry-Until": "Fri, 06 Mar 2026 09:00:00 +0000",
			},
			textHas: []string{
				"Your message has not yet been delivered to one or more recipients.",
				"will keep trying until Fri, 06 Mar 2026 09:00:00 +0000.",
				"Reason: waiting for the operator's hourly budget, next window at 15:00 UTC",
				"<bob@bigmail.example>: delivery delayed, status 4.7.0",
			},
			thirdType: "text/rfc822-headers",
		},
		{
			name:    "delivered report with default status",
			report:  delivered(),
			subject: SubjectDelivered,
			fields: map[string]string{
				"Action":          "delivered",
				"Status":          "2.0.0",
				"Diagnostic-Code": "smtp; 250 2.0.0 Ok: queued as 77",
			},
			absent: []string{"Will-Retry-Until", "Last-Attempt-Date"},
			textHas: []string{
				"Your message was successfully delivered or relayed",
				"<bob@bigmail.example>: delivered, status 2.0.0",
			},
			thirdType: "text/rfc822-headers",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, h, parts := buildDissect(t, tc.report)
			checkLines(t, out)
			checkReportHeaders(t, h, tc.subject)
			if len(parts) != 3 {
				t.Fatalf("got %d parts, want 3", len(parts))
			}
			for i, want := range []string{"text/plain", "message/delivery-status", tc.thirdType} {
				if got := parts[i].mediaType(t); got != want {
					t.Errorf("part %d media type = %q, want %q", i, got, want)
				}
			}
			text := strings.Join(strings.Fields(string(parts[0].body)), " ")
			for _, s := range tc.textHas {
				if !strings.Contains(text, s) {
					t.Errorf("text part lacks %q; got:\n%s", s, text)
				}
			}
			groups := statusGroups(t, parts[1].body)
			if len(groups) != 2 {
				t.Fatalf("got %d delivery-status groups, want 2", len(groups))
			}
			checkPerMessage(t, groups[0])
			for k, want := range tc.fields {
				if got := groups[1].Get(k); got != want {
					t.Errorf("per-recipient %s = %q, want %q", k, got, want)
				}
			}
			for _, k := range tc.absent {
				if v, ok := groups[1][textproto.CanonicalMIMEHeaderKey(k)]; ok {
					t.Errorf("per-recipient %s = %q, want absent", k, v)
				}
			}
		})
	}
}

// checkReportHeaders checks the header section of a report built from
// newTestReport.
func checkReportHeaders(t *testing.T, h mail.Header, subject string) {
	t.Helper()
	want := map[string]string{
		"Subject":                   subject,
		"From":                      "Mail Delivery System <MAILER-DAEMON@relay.example.net>",
		"To":                        "<alice@sender.example>",
		"Date":                      "Mon, 02 Mar 2026 14:05:06 +0000",
		"Message-Id":                "<dsn.Q123@relay.example.net>",
		"Auto-Submitted":            "auto-replied",
		"Mime-Version":              "1.0",
		"Content-Transfer-Encoding": "7bit",
	}
	for k, v := range want {
		if got := h.Get(k); got != v {
			t.Errorf("header %s = %q, want %q", k, got, v)
		}
	}
}

// checkPerMessage checks the per-message fields of a report built from
// newTestReport.
func checkPerMessage(t *testing.T, g textproto.MIMEHeader) {
	t.Helper()
	checkField(t, g, "Reporting-MTA", "dns; relay.example.net")
	checkField(t, g, "Arrival-Date", "Sun, 01 Mar 2026 09:00:00 +0100")
	checkField(t, g, "X-Sluice-Queue-ID", "Q123")
	checkField(t, g, "Original-Envelope-Id", "")
}

func TestBuildReturnedOriginal(t *testing.T) {
	headers := testOriginal[:strings.Index(testOriginal, "\r\n\r\n")+2]
	tests := []struct {
		name     string
		ret      string
		action   Action
		max      int
		wantType string
		wantBody string
		notice   string
	}{
		{name: "default returns headers", ret: "", action: ActionFailed,
			wantType: "text/rfc822-headers", wantBody: headers},
		{name: "HDRS returns headers", ret: "HDRS", action: ActionFailed,
			wantType: "text/rfc822-headers", wantBody: headers},
		{name: "FULL returns the message", ret: "FULL", action: ActionFailed,
			wantType: "message/rfc822", wantBody: testOriginal},
		{name: "lower-case full is accepted", ret: "full", action: ActionFailed,
			wantType: "message/rfc822", wantBody: testOriginal},
		{name: "FULL on a delay report returns headers", ret: "FULL", action: ActionDelayed,
			wantType: "text/rfc822-headers", wantBody: headers},
		{name: "FULL on a success report returns headers", ret: "FULL", action: ActionDelivered,
			wantType: "text/rfc822-headers", wantBody: headers},
		{name: "FULL truncated at a line boundary", ret: "FULL", action: ActionFailed,
			max:      len(headers) + 2 + len("Line one of the body.\r\n") + 5,
			wantType: "message/rfc822", wantBody: headers + "\r\nLine one of the body.\r\n",
			notice: "The returned message was truncated to " + strconv.Itoa(len(headers)+2+23) + " bytes."},
		{name: "FULL smaller than headers keeps whole header lines", ret: "FULL", action: ActionFailed,
			max:      40,
			wantType: "message/rfc822", wantBody: "Return-Path: <alice@sender.example>\r\n\r\n",
			notice: "The returned message was truncated to 39 bytes."},
		{name: "HDRS larger than the limit is cut", ret: "HDRS", action: ActionFailed,
			max:      40,
			wantType: "text/rfc822-headers", wantBody: "Return-Path: <alice@sender.example>\r\n",
			notice: "The returned message headers were truncated to 37 bytes."},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newTestReport()
			r.Return = tc.ret
			r.MaxReturnBytes = tc.max
			r.Recipients[0].Action = tc.action
			r.Recipients[0].Status = ""
			out, _, parts := buildDissect(t, r)
			checkLines(t, out)
			if len(parts) != 3 {
				t.Fatalf("got %d parts, want 3", len(parts))
			}
			if got := parts[2].mediaType(t); got != tc.wantType {
				t.Errorf("third part type = %q, want %q", got, tc.wantType)
			}
			if got := string(parts[2].body); got != tc.wantBody {
				t.Errorf("third part body =\n%q\nwant\n%q", got, tc.wantBody)
			}
			text := strings.Join(strings.Fields(string(parts[0].body)), " ")
			if tc.notice != "" && !strings.Contains(text, tc.notice) {
				t.Errorf("text part lacks %q; got:\n%s", tc.notice, text)
			}
			if tc.notice == "" && strings.Contains(text, "truncated") {
				t.Errorf("text part mentions truncation; got:\n%s", text)
			}
		})
	}
}

func TestBuildWithoutOriginalHasTwoParts(t *testing.T) {
	r := newTestReport()
	r.Original = nil
	_, _, parts := buildDissect(t, r)
	if len(parts) != 2 {
		t.Fatalf("got %d parts, want 2", len(parts))
	}
	if !strings.Contains(string(parts[0].body), "could not be returned") {
		t.Errorf("text part does not say the content is missing:\n%s", parts[0].body)
	}
}

func TestBuildEnvIDAndORCPT(t *testing.T) {
	tests := []struct {
		name     string
		envID    string
		orcpt    string
		wantEnv  string // "" means absent
		wantOrig string // "" means absent
	}{
		{name: "both given", envID: "QQ314159", orcpt: "rfc822;Bob@BigMail.example",
			wantEnv: "QQ314159", wantOrig: "rfc822;Bob@BigMail.example"},
		{name: "neither given"},
		{name: "ORCPT without type is rfc822", orcpt: "bob@bigmail.example",
			wantOrig: "rfc822;bob@bigmail.example"},
		{name: "ORCPT of type utf-8 is encoded", orcpt: "utf-8;b\u00f6b@bigmail.example",
			wantOrig: `utf-8;b\x{F6}b@bigmail.example`},
		{name: "ENVID with CRLF is defused", envID: "id\r\nBcc: x@y",
			wantEnv: "id??Bcc: x@y"},
		{name: "blank ENVID is omitted", envID: "   "},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newTestReport()
			r.EnvID = tc.envID
			r.Recipients[0].OriginalRecipient = tc.orcpt
			_, _, parts := buildDissect(t, r)
			groups := statusGroups(t, parts[1].body)
			checkField(t, groups[0], "Original-Envelope-Id", tc.wantEnv)
			checkField(t, groups[1], "Original-Recipient", tc.wantOrig)
		})
	}
}

func checkField(t *testing.T, h textproto.MIMEHeader, name, want string) {
	t.Helper()
	got, ok := h[textproto.CanonicalMIMEHeaderKey(name)]
	switch {
	case want == "" && ok:
		t.Errorf("%s = %q, want absent", name, got)
	case want != "" && (!ok || len(got) != 1 || got[0] != want):
		t.Errorf("%s = %q, want [%q]", name, got, want)
	}
}

func TestBuildErrors(t *testing.T) {
	tests := []struct {
		name      string
		mutate    func(*Report)
		wantErr   error
		wantField string
	}{
		{name: "null sender", mutate: func(r *Report) { r.To = "" }, wantErr: ErrNullSender},
		{name: "null sender in brackets", mutate: func(r *Report) { r.To = " <> " }, wantErr: ErrNullSender},
		{name: "no recipients", mutate: func(r *Report) { r.Recipients = nil },
			wantErr: ErrInvalidReport, wantField: "Recipients"},
		{name: "unknown action", mutate: func(r *Report) { r.Recipients[0].Action = "bounced" },
			wantErr: ErrInvalidReport, wantField: "Recipients[0].Action"},
		{name: "malformed status", mutate: func(r *Report) { r.Recipients[0].Status = "550" },
			wantErr: ErrInvalidReport, wantField: "Recipients[0].Status"},
		{name: "status with leading zero", mutate: func(r *Report) { r.Recipients[0].Status = "5.01.1" },
			wantErr: ErrInvalidReport, wantField: "Recipients[0].Status"},
		{name: "status of class 3", mutate: func(r *Report) { r.Recipients[0].Status = "3.1.1" },
			wantErr: ErrInvalidReport, wantField: "Recipients[0].Status"},
		{name: "empty final recipient", mutate: func(r *Report) { r.Recipients[0].FinalRecipient = " " },
			wantErr: ErrInvalidReport, wantField: "Recipients[0].FinalRecipient"},
		{name: "zero date", mutate: func(r *Report) { r.Date = time.Time{} },
			wantErr: ErrInvalidReport, wantField: "Date"},
		{name: "message id without brackets", mutate: func(r *Report) { r.MessageID = "id@host" },
			wantErr: ErrInvalidReport, wantField: "MessageID"},
		{name: "message id with CRLF", mutate: func(r *Report) { r.MessageID = "<a\r\nb@host>" },
			wantErr: ErrInvalidReport, wantField: "MessageID"},
		{name: "empty reporting MTA", mutate: func(r *Report) { r.ReportingMTA = "\r\n" },
			wantErr: ErrInvalidReport, wantField: "ReportingMTA"},
		{name: "unknown RET", mutate: func(r *Report) { r.Return = "BODY" },
			wantErr: ErrInvalidReport, wantField: "Return"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newTestReport()
			tc.mutate(r)
			out, err := Build(r)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("Build error = %v, want %v", err, tc.wantErr)
			}
			if out != nil {
				t.Errorf("Build returned %d bytes with an error", len(out))
			}
			var fe *FieldError
			if tc.wantField != "" && (!errors.As(err, &fe) || fe.Field != tc.wantField) {
				t.Errorf("Build error = %v, want a FieldError for %s", err, tc.wantField)
			}
		})
	}
	t.Run("nil report", func(t *testing.T) {
		if _, err := Build(nil); !errors.Is(err, ErrInvalidReport) {
			t.Errorf("Build(nil) error = %v, want ErrInvalidReport", err)
		}
	})
}

func TestBuildDefaultStatus(t *testing.T) {
	tests := []struct {
		action Action
		want   string
	}{
		{ActionFailed, "5.0.0"},
		{ActionDelayed, "4.0.0"},
		{ActionDelivered, "2.0.0"},
		{ActionRelayed, "2.0.0"},
		{ActionExpanded, "2.0.0"},
	}
	for _, tc := range tests {
		t.Run(string(tc.action), func(t *testing.T) {
			r := newTestReport()
			r.Recipients[0].Action = tc.action
			r.Recipients[0].Status = ""
			_, _, parts := buildDissect(t, r)
			groups := statusGroups(t, parts[1].body)
			if got := groups[1].Get("Status"); got != tc.want {
				t.Errorf("Status = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestBuildDiagnosticType(t *testing.T) {
	tests := []struct {
		name string
		diag string
		want string
	}{
		{name: "SMTP reply", diag: "550 5.1.1 user unknown", want: "smtp; 550 5.1.1 user unknown"},
		{name: "multi-line SMTP reply", diag: "550-5.7.1 first\r\n550 5.7.1 second",
			want: "smtp; 550-5.7.1 first 550 5.7.1 second"},
		{name: "bare reply code", diag: "421", want: "smtp; 421"},
		{name: "local error", diag: "dial tcp 192.0.2.1:25: connection refused",
			want: "X-Sluice; dial tcp 192.0.2.1:25: connection refused"},
		{name: "number that is no reply code", diag: "5000 things", want: "X-Sluice; 5000 things"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newTestReport()
			r.Recipients[0].DiagnosticCode = tc.diag
			_, _, parts := buildDissect(t, r)
			groups := statusGroups(t, parts[1].body)
			if got := groups[1].Get("Diagnostic-Code"); got != tc.want {
				t.Errorf("Diagnostic-Code = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestBuildMixedOutcomes(t *testing.T) {
	r := newTestReport()
	r.Recipients = append(r.Recipients,
		Recipient{FinalRecipient: "carol@bigmail.example", Action: ActionDelivered},
		Recipient{FinalRecipient: "dave@bigmail.example", Action: ActionDelayed, WillRetryUntil: testRetry},
	)
	_, h, parts := buildDissect(t, r)
	if got := h.Get("Subject"); got != SubjectFailed {
		t.Errorf("Subject = %q, want %q", got, SubjectFailed)
	}
	groups := statusGroups(t, parts[1].body)
	if len(groups) != 4 {
		t.Fatalf("got %d groups, want 4", len(groups))
	}
	for i, want := range []string{"failed", "delivered", "delayed"} {
		if got := groups[i+1].Get("Action"); got != want {
			t.Errorf("recipient %d Action = %q, want %q", i, got, want)
		}
	}
	checkField(t, groups[3], "Will-Retry-Until", "Fri, 06 Mar 2026 09:00:00 +0000")
	checkField(t, groups[2], "Will-Retry-Until", "")
}

func TestBuildIsDeterministic(t *testing.T) {
	a, err := Build(newTestReport())
	if err != nil {
		t.Fatal(err)
	}
	b, err := Build(newTestReport())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Error("two builds of the same report differ")
	}
}

func TestBuildEightBitOriginal(t *testing.T) {
	tests := []struct {
		name     string
		original string
		want     string
	}{
		{name: "ASCII original", original: testOriginal, want: "7bit"},
		{name: "UTF-8 subject", original: "Subject: Gr\u00fc\u00dfe\r\n\r\nbody\r\n", want: "8bit"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newTestReport()
			r.Original = []byte(tc.original)
			_, h, parts := buildDissect(t, r)
			if got := h.Get("Content-Transfer-Encoding"); got != tc.want {
				t.Errorf("top Content-Transfer-Encoding = %q, want %q", got, tc.want)
			}
			if got := parts[2].header.Get("Content-Transfer-Encoding"); got != tc.want {
				t.Errorf("third part Content-Transfer-Encoding = %q, want %q", got, tc.want)
			}
			for i := 0; i < 2; i++ {
				if got := parts[i].header.Get("Content-Transfer-Encoding"); got != "7bit" {
					t.Errorf("part %d Content-Transfer-Encoding = %q, want 7bit", i, got)
				}
			}
		})
	}
}

func TestBuildNormalisesOriginal(t *testing.T) {
	long := strings.Repeat("x", 2500)
	r := newTestReport()
	r.Return = ReturnFull
	r.MaxReturnBytes = 1 << 20
	r.Original = []byte("Subject: " + long + "\nX-Bare: cr\rFrom: a@b\n\nbody\x00with nul\n" + long + "\rlast")
	out, _, parts := buildDissect(t, r)
	checkLines(t, out)
	body := string(parts[2].body)
	if strings.Contains(body, "\x00") {
		t.Error("NUL survived in the returned message")
	}
	if !strings.Contains(body, "body?with nul\r\n") {
		t.Errorf("NUL not replaced by '?': %q", body[:200])
	}
	if !strings.HasSuffix(body, "last\r\n") {
		t.Errorf("last line not CRLF-terminated: %q", body[len(body)-20:])
	}
	if !strings.Contains(body, "\r\n "+strings.Repeat("x", 10)) {
		t.Error("long header line not continued with a leading space")
	}
}
