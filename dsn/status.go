package dsn

import "strings"

// QueueIDField is the per-message extension field (RFC 3464 section 2.4,
// "X-" plus the MTA's name) that carries the original message's queue ID.
const QueueIDField = "X-Sluice-Queue-ID"

// statusPart writes the message/delivery-status body: the per-message fields
// (RFC 3464 section 2.2), then, each after a blank line, one group of
// per-recipient fields (section 2.3). Fields appear in the order of the
// section 2.1 grammar, so extension fields come last in the per-message group.
func statusPart(r *Report) string {
	var b strings.Builder
	if envID := cleanASCII(r.EnvID, maxEnvIDBytes); strings.TrimSpace(envID) != "" {
		// RFC 3461 section 6.3 (a): the ENVID, xtext-decoded. It is an
		// identifier, so it is written unfolded: the limit keeps it short.
		b.WriteString("Original-Envelope-Id: " + envID + "\r\n")
	}
	b.WriteString("Reporting-MTA: dns; " + cleanWord(r.ReportingMTA, maxHostBytes) + "\r\n")
	if !r.ArrivalDate.IsZero() {
		b.WriteString("Arrival-Date: " + formatDate(r.ArrivalDate) + "\r\n")
	}
	if qid := cleanWord(r.QueueID, maxHostBytes); qid != "" {
		b.WriteString(QueueIDField + ": " + qid + "\r\n")
	}
	for i := range r.Recipients {
		b.WriteString("\r\n")
		writeRecipientFields(&b, r, &r.Recipients[i])
	}
	return b.String()
}

func writeRecipientFields(b *strings.Builder, r *Report, rc *Recipient) {
	if rc.OriginalRecipient != "" {
		// RFC 3461 section 6.3 (d): present exactly when ORCPT was given.
		typ, addr := splitORCPT(rc.OriginalRecipient)
		typ, addr = addressField(typ, addr)
		b.WriteString("Original-Recipient: " + typ + ";" + addr + "\r\n")
	}
	typ, addr := addressField("rfc822", rc.FinalRecipient)
	b.WriteString("Final-Recipient: " + typ + "; " + addr + "\r\n")
	b.WriteString("Action: " + string(rc.Action) + "\r\n")
	b.WriteString("Status: " + rc.status() + "\r\n")
	if host := cleanWord(rc.RemoteMTA, maxHostBytes); host != "" {
		b.WriteString("Remote-MTA: dns; " + host + "\r\n")
	}
	if diag := cleanText(rc.DiagnosticCode, maxDiagBytes); diag != "" {
		writeField(b, "Diagnostic-Code", diagnosticType(diag)+"; "+diag)
	}
	if !rc.LastAttempt.IsZero() {
		b.WriteString("Last-Attempt-Date: " + formatDate(rc.LastAttempt) + "\r\n")
	}
	if rc.Action == ActionDelayed {
		// RFC 3464 section 2.3.9: only delay reports carry Will-Retry-Until.
		until := rc.WillRetryUntil
		if until.IsZero() {
			until = r.RetryUntil
		}
		if !until.IsZero() {
			b.WriteString("Will-Retry-Until: " + formatDate(until) + "\r\n")
		}
	}
}

// splitORCPT splits "type;address" (RFC 3461 section 4.2). A value without
// a type is taken as an rfc822 address.
func splitORCPT(v string) (typ, addr string) {
	typ, addr, ok := strings.Cut(v, ";")
	if !ok || cleanAtom(typ) == "" {
		return "rfc822", v
	}
	return typ, addr
}

// diagnosticType names the kind of a diagnostic (RFC 3464 section 2.3.6):
// "smtp" for a reply that starts with an SMTP reply code (RFC 5321 section
// 4.2), else our own extension type for locally made text such as a
// connection error.
func diagnosticType(diag string) string {
	if len(diag) >= 3 && diag[0] >= '2' && diag[0] <= '5' &&
		isDigit(diag[1]) && isDigit(diag[2]) && (len(diag) == 3 || diag[3] == ' ' || diag[3] == '-') {
		return "smtp"
	}
	return "X-Sluice"
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
