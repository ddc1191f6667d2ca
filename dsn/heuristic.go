package dsn

import (
	"bytes"
	"fmt"
	"regexp"
	"strings"
)

// maxMatches bounds the regular-expression matches examined in one text.
const maxMatches = 10000

var (
	// An SMTP reply code with an RFC 3463 enhanced code: "550 5.1.1" or
	// "550-5.1.1" (RFC 2034 section 4).
	reReplyEnhanced = regexp.MustCompile(`[45][0-9][0-9][ -][45]\.[0-9]{1,3}\.[0-9]{1,3}`)
	// An enhanced code alone.
	reEnhanced = regexp.MustCompile(`[45]\.[0-9]{1,3}\.[0-9]{1,3}`)
	// A bare reply code where replies are usually quoted: at the start of a
	// line, or after "said:", a parenthesis or a quote.
	reReply = regexp.MustCompile(`(?m)(?:^[ \t>]*|[:('"#][ \t]*)([45][0-9][0-9])[ -][^ \t\r\n]`)
	// A plausible mailbox: dot-atom local part (without the backquote) and
	// a domain of at least two labels.
	reAddress = regexp.MustCompile(`[A-Za-z0-9!#$%&'*+/=?^_{|}~.-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+`)
)

// copyMarkers start the returned copy of the original in plain-text bounces;
// what follows is the sender's own mail, not the report.
var copyMarkers = []string{
	"this is a copy of the message",
	"below this line is a copy of the message",
	"original message follows",
	"----- original message -----",
	"--- original message ---",
	"the headers of the original message",
	"original message headers",
}

// quotedHeaders start lines that quote header fields of the original, whose
// addresses are not failed recipients.
var quotedHeaders = []string{
	"from:", "to:", "cc:", "sender:", "reply-to:", "return-path:", "message-id:",
	"in-reply-to:", "references:", "received:", "dkim-signature:", "x-", "list-",
}

// heuristic scans a bounce without a usable delivery-status part for the
// first SMTP status and the addresses that failed. Addresses in exclude (the
// bounce's own header) and those of postmasters and mailer daemons are left
// out. base, when not nil, is a delivery-status part without recipients
// whose per-message fields are kept.
func heuristic(text []byte, exclude map[string]bool, base *Parsed) (*Parsed, error) {
	if len(text) > maxTextBytes {
		text = text[:maxTextBytes]
	}
	text = reportText(text)
	status, diag, ok := findStatus(text)
	if !ok {
		return nil, fmt.Errorf("%w: no SMTP status in the text", ErrNoReport)
	}
	p := &Parsed{Heuristic: true}
	if base != nil {
		p.ReportingMTA, p.EnvID = base.ReportingMTA, base.EnvID
	}
	action := string(ActionDelayed)
	if status[0] == '5' {
		action = string(ActionFailed)
	}
	rc := ParsedRecipient{Action: action, Status: status, DiagnosticCode: diag}
	for _, a := range findAddresses(text, exclude) {
		if len(p.Recipients) >= maxRecipients {
			break
		}
		rc.FinalRecipient = a
		p.Recipients = append(p.Recipients, rc)
	}
	if len(p.Recipients) == 0 {
		p.Recipients = append(p.Recipients, rc)
	}
	return p, nil
}

// reportText returns the text up to the returned copy of the original,
// without the lines that quote its header fields.
func reportText(text []byte) []byte {
	var out bytes.Buffer
	for len(text) > 0 {
		var line []byte
		line, text = nextLine(text)
		lower := strings.ToLower(strings.TrimSpace(string(line)))
		if hasAnyPrefix(lower, copyMarkers, true) {
			break
		}
		if hasAnyPrefix(lower, quotedHeaders, false) {
			continue
		}
		out.Write(line)
		out.WriteByte('\n')
	}
	return out.Bytes()
}

// hasAnyPrefix reports whether s starts with (or, with anywhere, contains)
// one of the markers.
func hasAnyPrefix(s string, markers []string, anywhere bool) bool {
	for _, m := range markers {
		if strings.HasPrefix(s, m) || (anywhere && strings.Contains(s, m)) {
			return true
		}
	}
	return false
}

// findStatus returns the first status in text: an enhanced code, preferably
// with its reply code, else a bare reply code; and the line holding it as
// the diagnostic.
func findStatus(text []byte) (status, diag string, ok bool) {
	for _, loc := range reReplyEnhanced.FindAllIndex(text, maxMatches) {
		if code := string(text[loc[0]+4 : loc[1]]); isolated(text, loc) && IsStatusCode(code) {
			return code, lineAt(text, loc[0]), true
		}
	}
	for _, loc := range reEnhanced.FindAllIndex(text, maxMatches) {
		if code := string(text[loc[0]:loc[1]]); isolated(text, loc) && IsStatusCode(code) {
			return code, lineAt(text, loc[0]), true
		}
	}
	if loc := reReply.FindSubmatchIndex(text); loc != nil {
		return string(text[loc[2]]) + ".0.0", lineAt(text, loc[2]), true
	}
	return "", "", false
}

// isolated reports whether the match at loc is a whole token, not part of a
// longer number or an IP address such as 10.5.1.1.
func isolated(text []byte, loc []int) bool {
	if s := loc[0]; s > 0 && (isDigit(text[s-1]) || text[s-1] == '.' || isLetter(text[s-1])) {
		return false
	}
	e := loc[1]
	if e < len(text) && isDigit(text[e]) {
		return false
	}
	return !(e+1 < len(text) && text[e] == '.' && isDigit(text[e+1]))
}

func isLetter(c byte) bool { return c|0x20 >= 'a' && c|0x20 <= 'z' }

// lineAt returns the cleaned line of text around offset i.
func lineAt(text []byte, i int) string {
	start := bytes.LastIndexByte(text[:i], '\n') + 1
	end := bytes.IndexByte(text[i:], '\n')
	if end < 0 {
		end = len(text)
	} else {
		end += i
	}
	return cleanText(string(text[start:end]), maxReasonBytes)
}

// findAddresses returns the distinct addresses in text, in order, leaving out
// those in exclude (lower case) and postmaster or mailer-daemon mailboxes.
func findAddresses(text []byte, exclude map[string]bool) []string {
	var out []string
	seen := make(map[string]bool)
	for _, m := range reAddress.FindAll(text, maxMatches) {
		a := strings.Trim(string(m), ".")
		key := strings.ToLower(a)
		local, _, _ := strings.Cut(key, "@")
		if a == "" || seen[key] || exclude[key] || local == "postmaster" || local == "mailer-daemon" {
			continue
		}
		seen[key] = true
		out = append(out, a)
		if len(out) >= maxRecipients {
			break
		}
	}
	return out
}
