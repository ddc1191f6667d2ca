package dsn

import (
	"strconv"
	"strings"
	"time"
)

// textWidth is where the human-readable part wraps its paragraphs.
const textWidth = 72

// humanPart writes the first part of the report (RFC 6522 section 3): plain
// words for the sender, modelled on the tone of Postfix's bounce messages.
// Everything in it is clean ASCII, so the part is 7bit.
func humanPart(r *Report, ret returned) string {
	host := cleanWord(r.ReportingMTA, maxHostBytes)
	var paras []string
	paras = append(paras, "This is the mail system at host "+host+".")
	paras = append(paras, introduction(r)...)
	if qid := cleanWord(r.QueueID, maxHostBytes); qid != "" {
		paras = append(paras, "The queue ID of your message was "+qid+".")
	}
	if n := truncationNotice(r, ret); n != "" {
		paras = append(paras, n)
	}

	var b strings.Builder
	for _, p := range paras {
		writeLines(&b, wrapText(p, textWidth, "", ""))
		b.WriteString("\r\n")
	}
	b.WriteString("                   The mail system\r\n")
	for i := range r.Recipients {
		b.WriteString("\r\n")
		writeLines(&b, recipientLines(&r.Recipients[i]))
	}
	return b.String()
}

// introduction explains the report's kind: RFC 3464 section 1 wants a
// human-readable explanation first, for senders whose user agent shows no
// more than that.
func introduction(r *Report) []string {
	switch r.kind() {
	case ActionFailed:
		return []string{
			"I'm sorry to have to inform you that your message could not be " +
				"delivered to one or more recipients. " + returnedSentence(r),
			"For further assistance, please send mail to the postmaster of this " +
				"host. If you do so, please include this problem report.",
		}
	case ActionDelayed:
		paras := []string{
			"This is a warning only. You do not need to resend your message.",
			"Your message has not yet been delivered to one or more recipients. " +
				retrySentence(r),
		}
		if reason := cleanText(r.WaitReason, maxReasonBytes); reason != "" {
			paras = append(paras, "Reason: "+reason)
		}
		return paras
	}
	return []string{
		"Your message was successfully delivered or relayed to the " +
			"recipients listed below. If a recipient's mail system relays it " +
			"further, you may still receive reports from that system.",
	}
}

func returnedSentence(r *Report) string {
	if len(r.Original) == 0 {
		return "Its content could not be returned."
	}
	if r.returnsFull() {
		return "It is attached below."
	}
	return "Its headers are attached below."
}

// retrySentence says until when delivery goes on: the report's RetryUntil,
// else the latest Will-Retry-Until of its delayed recipients.
func retrySentence(r *Report) string {
	until := r.RetryUntil
	for _, rc := range r.Recipients {
		if rc.Action == ActionDelayed && rc.WillRetryUntil.After(until) {
			until = rc.WillRetryUntil
		}
	}
	if until.IsZero() {
		return "The mail system will keep trying to deliver it."
	}
	return "The mail system will keep trying until " + formatDate(until) + "."
}

func truncationNotice(r *Report, ret returned) string {
	if !ret.truncated {
		return ""
	}
	n := strconv.Itoa(ret.size)
	if r.returnsFull() {
		return "The returned message was truncated to " + n + " bytes."
	}
	return "The returned message headers were truncated to " + n + " bytes."
}

// recipientLines describes one recipient: the address and its outcome on
// the first line, the remote host and its reply indented below.
func recipientLines(rc *Recipient) []string {
	_, addr := addressField("rfc822", rc.FinalRecipient)
	head := "<" + addr + ">: " + outcome(rc.Action) + ", status " + rc.status()
	lines := wrapText(head, textWidth, "", "    ")

	diag := cleanText(rc.DiagnosticCode, maxDiagBytes)
	host := cleanWord(rc.RemoteMTA, maxHostBytes)
	var detail string
	switch {
	case host != "" && diag != "":
		detail = "host " + host + " said: " + diag
	case host != "":
		detail = "remote host " + host
	default:
		detail = diag
	}
	if detail != "" {
		lines = append(lines, wrapText(detail, textWidth, "    ", "    ")...)
	}
	return lines
}

func outcome(a Action) string {
	switch a {
	case ActionFailed:
		return "delivery failed"
	case ActionDelayed:
		return "delivery delayed"
	case ActionRelayed:
		return "relayed"
	case ActionExpanded:
		return "delivered and expanded"
	}
	return "delivered"
}

func writeLines(b *strings.Builder, lines []string) {
	for _, l := range lines {
		b.WriteString(l)
		b.WriteString("\r\n")
	}
}

// formatDate writes t as an RFC 5322 section 3.3 date-time with a numeric
// zone, as RFC 3464 sections 2.2.5 and 2.3.7 require.
func formatDate(t time.Time) string {
	return t.Format(time.RFC1123Z)
}
