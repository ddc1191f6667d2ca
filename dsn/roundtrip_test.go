package dsn

import (
	"net/textproto"
	"reflect"
	"strings"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	longDiag := "550-5.7.1 " + strings.Repeat("this reply goes on and on ", 40) + "end"
	tests := []struct {
		name   string
		mutate func(*Report)
	}{
		{name: "one failed recipient", mutate: func(*Report) {}},
		{name: "ENVID and ORCPT on several recipients", mutate: func(r *Report) {
			r.EnvID = "ENV-2026-0001"
			r.Recipients[0].OriginalRecipient = "rfc822;Bob@BigMail.example"
			r.Recipients = append(r.Recipients, Recipient{
				FinalRecipient: "carol@bigmail.example", OriginalRecipient: "rfc822;carol@bigmail.example",
				Action: ActionFailed, Status: "5.2.2", RemoteMTA: "mx2.bigmail.example",
				DiagnosticCode: "552 5.2.2 mailbox full",
			})
		}},
		{name: "delayed with retry limit", mutate: func(r *Report) {
			r.RetryUntil = testRetry
			r.WaitReason = "waiting for the hourly budget"
			r.Recipients[0].Action = ActionDelayed
			r.Recipients[0].Status = "4.7.0"
			r.Recipients[0].DiagnosticCode = "421 4.7.0 slow down"
		}},
		{name: "delivered without diagnostic", mutate: func(r *Report) {
			r.Recipients[0] = Recipient{FinalRecipient: "bob@bigmail.example", Action: ActionRelayed}
		}},
		{name: "long multi-line diagnostic", mutate: func(r *Report) {
			r.Recipients[0].DiagnosticCode = strings.ReplaceAll(longDiag, "on and", "on\r\n550-5.7.1 and")
		}},
		{name: "internationalised addresses", mutate: func(r *Report) {
			r.Recipients[0].FinalRecipient = "j\u00f6rg@b\u00fccher.example"
			r.Recipients[0].OriginalRecipient = "utf-8;J\u00f6rg@b\u00fccher.example"
		}},
		{name: "hostile values", mutate: func(r *Report) {
			r.Recipients[0].DiagnosticCode = "550 no\r\nBcc: victim@example.org\r\n\r\n--boundary"
			r.Recipients[0].RemoteMTA = "mx\r\nX-Evil: 1"
			r.EnvID = "env\r\nX-Evil: 2"
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newTestReport()
			tc.mutate(r)
			out, _, parts := buildDissect(t, r)
			checkLines(t, out)
			checkIndependently(t, r, statusGroups(t, parts[1].body))

			got, err := Parse(out)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			want := expectedParse(r)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("Parse(Build(r)) =\n%+v\nwant\n%+v", got, want)
			}
		})
	}
}

// checkIndependently compares the delivery-status fields, as net/textproto
// reads them, with the report.
func checkIndependently(t *testing.T, r *Report, groups []textproto.MIMEHeader) {
	t.Helper()
	if len(groups) != len(r.Recipients)+1 {
		t.Fatalf("got %d groups, want %d", len(groups), len(r.Recipients)+1)
	}
	checkField(t, groups[0], "Reporting-MTA", "dns; "+r.ReportingMTA)
	checkField(t, groups[0], "Original-Envelope-Id", cleanASCII(r.EnvID, maxEnvIDBytes))
	for i, rc := range r.Recipients {
		g := groups[i+1]
		typ, addr := addressField("rfc822", rc.FinalRecipient)
		checkField(t, g, "Final-Recipient", typ+"; "+addr)
		checkField(t, g, "Action", string(rc.Action))
		checkField(t, g, "Status", rc.status())
		if diag := cleanText(rc.DiagnosticCode, maxDiagBytes); diag != "" {
			checkField(t, g, "Diagnostic-Code", diagnosticType(diag)+"; "+diag)
		}
		if host := cleanWord(rc.RemoteMTA, maxHostBytes); host != "" {
			checkField(t, g, "Remote-MTA", "dns; "+host)
		}
	}
}

// expectedParse is what Parse should read back from Build(r).
func expectedParse(r *Report) *Parsed {
	p := &Parsed{ReportingMTA: r.ReportingMTA, EnvID: strings.TrimSpace(cleanASCII(r.EnvID, maxEnvIDBytes))}
	for _, rc := range r.Recipients {
		pr := ParsedRecipient{
			FinalRecipient: rc.FinalRecipient,
			Action:         string(rc.Action),
			Status:         rc.status(),
			DiagnosticCode: cleanText(rc.DiagnosticCode, maxDiagBytes),
			RemoteMTA:      cleanWord(rc.RemoteMTA, maxHostBytes),
		}
		if rc.OriginalRecipient != "" {
			typ, addr := splitORCPT(rc.OriginalRecipient)
			pr.OriginalRecipient = typ + ";" + addr
		}
		p.Recipients = append(p.Recipients, pr)
	}
	return p
}
