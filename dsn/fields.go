package dsn

import (
	"bufio"
	"bytes"
	"net/textproto"
	"strings"
	"unicode/utf8"
)

// maxFieldsPerGroup bounds the fields kept from one group of a
// delivery-status part.
const maxFieldsPerGroup = 100

// field is one "Name: value" of a delivery-status part, unfolded.
type field struct {
	name  string // lower case
	value string
}

// group is a run of fields between blank lines (RFC 3464 section 2.1).
type group []field

func (g group) get(name string) (string, bool) {
	for _, f := range g {
		if f.name == name {
			return f.value, true
		}
	}
	return "", false
}

// isRecipient reports whether g holds per-recipient fields. Some MTAs omit
// the per-message group, so the first group is checked too.
func (g group) isRecipient() bool {
	for _, name := range []string{"final-recipient", "original-recipient", "action", "status"} {
		if _, ok := g.get(name); ok {
			return true
		}
	}
	return false
}

// readGroups splits a delivery-status body into its groups. The body uses
// header syntax (RFC 3464 section 2.1), so textproto unfolds continuation
// lines and accepts CRLF or bare LF. Lines without a colon are skipped.
func readGroups(data []byte) []group {
	tp := textproto.NewReader(bufio.NewReader(bytes.NewReader(data)))
	var groups []group
	var cur group
	for len(groups) <= maxRecipients {
		line, err := tp.ReadContinuedLine()
		if line == "" || err != nil {
			if len(cur) > 0 {
				groups = append(groups, cur)
				cur = nil
			}
			if err != nil {
				break
			}
			continue
		}
		name, value, ok := strings.Cut(line, ":")
		if !ok || len(cur) >= maxFieldsPerGroup {
			continue
		}
		cur = append(cur, field{
			name:  strings.ToLower(strings.TrimSpace(name)),
			value: cleanParsed(value),
		})
	}
	return groups
}

// parseStatus reads the per-message and per-recipient fields of a
// delivery-status body.
func parseStatus(data []byte) *Parsed {
	p := &Parsed{}
	for i, g := range readGroups(data) {
		if i == 0 {
			if v, ok := g.get("reporting-mta"); ok {
				p.ReportingMTA = mtaName(v)
			}
			if v, ok := g.get("original-envelope-id"); ok {
				p.EnvID = v
			}
		}
		if !g.isRecipient() {
			continue
		}
		if len(p.Recipients) >= maxRecipients {
			break
		}
		p.Recipients = append(p.Recipients, parseRecipient(g))
	}
	return p
}

func parseRecipient(g group) ParsedRecipient {
	var rc ParsedRecipient
	if v, ok := g.get("final-recipient"); ok {
		_, rc.FinalRecipient = parseAddress(v)
	}
	if v, ok := g.get("original-recipient"); ok {
		typ, addr := parseAddress(v)
		rc.OriginalRecipient = typ + ";" + addr
	}
	if v, ok := g.get("action"); ok {
		rc.Action = strings.ToLower(firstWord(v))
	}
	if v, ok := g.get("diagnostic-code"); ok {
		rc.DiagnosticCode = stripType(v)
	}
	if v, ok := g.get("remote-mta"); ok {
		rc.RemoteMTA = mtaName(v)
	}
	v, _ := g.get("status")
	rc.Status = deriveStatus(v, rc.DiagnosticCode, rc.Action)
	return rc
}

// parseAddress splits "type; address" (RFC 3464 section 2.3.2), removes the
// angle brackets some MTAs add, and decodes RFC 6533 utf-8-addr-xtext. A
// value without a type is taken as rfc822.
func parseAddress(v string) (typ, addr string) {
	typ, addr, ok := strings.Cut(v, ";")
	typ = strings.TrimSpace(typ)
	if !ok || !isAtom(typ) {
		typ, addr = "rfc822", v
	}
	addr = strings.TrimSpace(addr)
	if len(addr) >= 2 && addr[0] == '<' && addr[len(addr)-1] == '>' {
		addr = strings.TrimSpace(addr[1 : len(addr)-1])
	}
	if strings.EqualFold(typ, "utf-8") {
		addr = cleanParsed(decodeUTF8AddrXtext(addr))
	}
	return typ, addr
}

// stripType removes the leading "type;" of a diagnostic (RFC 3464 section
// 2.3.6), only when what precedes the semicolon is an atom: Exchange writes
// semicolons inside the reply text.
func stripType(v string) string {
	typ, rest, ok := strings.Cut(v, ";")
	if ok && isAtom(strings.TrimSpace(typ)) {
		return strings.TrimSpace(rest)
	}
	return v
}

// mtaName returns the name of "dns; mx.example.com (comment)".
func mtaName(v string) string {
	name := stripType(v)
	if i := strings.IndexByte(name, '('); i >= 0 {
		name = name[:i]
	}
	return strings.TrimSpace(name)
}

func isAtom(s string) bool {
	return s != "" && len(s) <= maxTypeBytes && cleanAtom(s) == s
}

func firstWord(s string) string {
	if f := strings.Fields(s); len(f) > 0 {
		return f[0]
	}
	return ""
}

// deriveStatus finds the RFC 3463 code of a recipient: in the Status field
// (which may carry a comment), else in the diagnostic, else the "undefined"
// code of the reply's class or of the action.
func deriveStatus(status, diag, action string) string {
	if c := findStatusCode(status); c != "" {
		return c
	}
	if c := findStatusCode(diag); c != "" {
		return c
	}
	if len(diag) >= 3 && (diag[0] == '4' || diag[0] == '5') && isDigit(diag[1]) && isDigit(diag[2]) {
		return diag[:1] + ".0.0"
	}
	if Action(action).isValid() {
		return Action(action).defaultStatus()
	}
	return ""
}

// findStatusCode returns the first word of s that is a status code.
func findStatusCode(s string) string {
	words := strings.FieldsFunc(s, func(r rune) bool { return !isDigit(byte(r)) && r != '.' || r >= utf8.RuneSelf })
	for _, w := range words {
		w = strings.TrimSuffix(w, ".")
		if IsStatusCode(w) {
			return w
		}
	}
	return ""
}

// cleanParsed makes a remote value safe to hand on: valid UTF-8, control
// characters as spaces, trimmed and bounded.
func cleanParsed(s string) string {
	s = strings.ToValidUTF8(s, "?")
	s = strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return ' '
		}
		return r
	}, s)
	s = strings.TrimSpace(s)
	if len(s) > maxValueBytes {
		s = s[:maxValueBytes]
		for len(s) > 0 && !utf8.ValidString(s) {
			s = s[:len(s)-1]
		}
	}
	return s
}
