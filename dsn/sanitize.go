package dsn

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// Limits on what untrusted values may put into one field. Together with
// folding they keep every output line within the 998 octets of RFC 5322
// section 2.1.1.
const (
	maxLineBytes   = 998
	foldWidth      = 76   // RFC 5322 section 2.1.1: lines SHOULD stay under 78
	maxWordBytes   = 900  // a longer word is split to honour maxLineBytes
	maxHostBytes   = 255  // RFC 1035 section 2.3.4 caps names at 255 octets
	maxAddrBytes   = 900  // an encoded address; RFC 5321 allows 256, be generous
	maxTypeBytes   = 32   // address-type and diagnostic-type atoms
	maxEnvIDBytes  = 100  // RFC 3461 section 4.4: ENVID is at most 100 characters
	maxDiagBytes   = 4000 // one multi-line remote reply, joined
	maxReasonBytes = 1000
)

// cleanText makes free text from a client or a remote server fit for a
// header or a DSN field: every control character (CR, LF, NUL, TAB, DEL...)
// becomes a space, runs of spaces shrink to one, anything outside ASCII
// (including invalid UTF-8) becomes '?', and the result is cut to max bytes
// with a trailing "..." when it was longer.
func cleanText(s string, max int) string {
	var b strings.Builder
	pending := false
	for _, r := range s {
		switch {
		case r <= ' ' || r == 0x7f:
			pending = b.Len() > 0
			continue
		case r >= utf8.RuneSelf:
			r = '?'
		}
		if pending {
			b.WriteByte(' ')
			pending = false
		}
		b.WriteByte(byte(r))
		if b.Len() > max {
			return truncateEllipsis(b.String(), max)
		}
	}
	return b.String()
}

func truncateEllipsis(s string, max int) string {
	if len(s) <= max {
		return s
	}
	if max <= 3 {
		return s[:max]
	}
	return strings.TrimRight(s[:max-3], " ") + "..."
}

// cleanWord keeps only visible ASCII (no spaces): host names, queue IDs,
// address types. Anything else becomes '?'; the result is cut to max bytes.
func cleanWord(s string, max int) string {
	return mapASCII(strings.TrimSpace(s), max, func(c byte) bool { return c > ' ' && c < 0x7f })
}

// cleanASCII keeps printable ASCII including the space, for values that must
// be reported as given (RFC 3464 section 2.3.2 wants the address "exactly"
// as received, and RFC 3464 section 2.2.1 the ENVID with its case and
// spelling). Anything else becomes '?'; the result is cut to max bytes.
func cleanASCII(s string, max int) string {
	return mapASCII(s, max, func(c byte) bool { return c >= ' ' && c < 0x7f })
}

func mapASCII(s string, max int, keep func(byte) bool) string {
	var b strings.Builder
	for _, r := range s {
		if b.Len() >= max {
			break
		}
		if r < utf8.RuneSelf && keep(byte(r)) {
			b.WriteByte(byte(r))
		} else {
			b.WriteByte('?')
		}
	}
	return b.String()
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

func isPrintableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < ' ' || s[i] >= 0x7f {
			return false
		}
	}
	return true
}

// addressField returns the address-type and the generic-address to write for
// an address of type typ (RFC 3464 sections 2.3.1 and 2.3.2). Printable
// ASCII goes out as given. An internationalised address (or any address of
// type utf-8) is written as the utf-8-addr-xtext of RFC 6533 section 3,
// which keeps the field 7-bit and loses nothing. Anything else (invalid
// UTF-8, control characters in an ASCII address) is reported with '?' in
// place of the bad characters, as RFC 3464 section 2.3.2 allows for
// characters "not allowed in a DSN field".
func addressField(typ, addr string) (string, string) {
	typ = cleanAtom(typ)
	if typ == "" {
		typ = "rfc822"
	}
	addr = strings.TrimSpace(addr)
	switch {
	case strings.EqualFold(typ, "utf-8") && utf8.ValidString(addr):
		return typ, encodeUTF8AddrXtext(addr, maxAddrBytes)
	case isPrintableASCII(addr):
		return typ, truncate(addr, maxAddrBytes)
	case utf8.ValidString(addr) && !isASCII(addr):
		return "utf-8", encodeUTF8AddrXtext(addr, maxAddrBytes)
	}
	return typ, cleanASCII(addr, maxAddrBytes)
}

// cleanAtom keeps the characters an address-type or diagnostic-type atom
// (RFC 3464 section 2.1.2) plausibly uses.
func cleanAtom(s string) string {
	s = strings.TrimSpace(s)
	var b strings.Builder
	for i := 0; i < len(s) && b.Len() < maxTypeBytes; i++ {
		c := s[i]
		if c == '-' || c == '.' || c == '_' || (c >= '0' && c <= '9') ||
			(c|0x20 >= 'a' && c|0x20 <= 'z') {
			b.WriteByte(c)
		}
	}
	return b.String()
}

func truncate(s string, max int) string {
	if len(s) > max {
		return s[:max]
	}
	return s
}

// encodeUTF8AddrXtext writes addr as RFC 6533 section 3 utf-8-addr-xtext:
// QCHAR (visible ASCII except '+', '=' and '\') as itself, every other
// character as \x{HEX}. Output is cut at a character boundary before max.
func encodeUTF8AddrXtext(addr string, max int) string {
	var b strings.Builder
	for _, r := range addr {
		var piece string
		if r > ' ' && r < 0x7f && r != '+' && r != '=' && r != '\\' {
			piece = string(r)
		} else {
			piece = fmt.Sprintf(`\x{%02X}`, r)
		}
		if b.Len()+len(piece) > max {
			break
		}
		b.WriteString(piece)
	}
	return b.String()
}

// decodeUTF8AddrXtext reverses encodeUTF8AddrXtext. It also accepts the
// raw UTF-8 utf-8-address form of RFC 6533, so malformed escapes are kept
// as they are rather than rejected.
func decodeUTF8AddrXtext(s string) string {
	var b strings.Builder
	for len(s) > 0 {
		i := strings.Index(s, `\x{`)
		if i < 0 {
			b.WriteString(s)
			break
		}
		b.WriteString(s[:i])
		s = s[i:]
		end := strings.IndexByte(s, '}')
		r, ok := parseHexPoint(s, end)
		if !ok {
			b.WriteString(s[:3])
			s = s[3:]
			continue
		}
		b.WriteRune(r)
		s = s[end+1:]
	}
	return b.String()
}

// parseHexPoint reads the 2 to 6 hex digits between `\x{` and s[end].
func parseHexPoint(s string, end int) (rune, bool) {
	if end < 5 || end > 9 {
		return 0, false
	}
	var r rune
	for _, c := range []byte(s[3:end]) {
		var d byte
		switch {
		case c >= '0' && c <= '9':
			d = c - '0'
		case c|0x20 >= 'a' && c|0x20 <= 'f':
			d = (c | 0x20) - 'a' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(d)
	}
	return r, utf8.ValidRune(r)
}

// writeField writes "Name: value" CRLF with value folded at spaces
// (RFC 5322 section 2.2.3) so lines stay near foldWidth. value must already
// be clean (see cleanText): single spaces, no control characters. A word
// longer than maxWordBytes is split, so no line can exceed maxLineBytes.
func writeField(b *strings.Builder, name, value string) {
	b.WriteString(name)
	b.WriteByte(':')
	lineLen := len(name) + 1
	first := true
	emit := func(w string) {
		if !first && lineLen+1+len(w) > foldWidth {
			b.WriteString("\r\n")
			lineLen = 0
		}
		b.WriteByte(' ')
		b.WriteString(w)
		lineLen += 1 + len(w)
		first = false
	}
	for _, w := range strings.Split(value, " ") {
		for len(w) > maxWordBytes {
			emit(w[:maxWordBytes])
			w = w[maxWordBytes:]
		}
		if w != "" {
			emit(w)
		}
	}
	b.WriteString("\r\n")
}

// wrapText breaks clean text into lines of about width bytes. The first
// line starts with first, the others with indent. Like writeField it splits
// words longer than maxWordBytes, so no line can exceed maxLineBytes.
func wrapText(text string, width int, first, indent string) []string {
	var lines []string
	cur := first
	words := 0
	emit := func(w string) {
		switch {
		case words == 0:
			cur += w
		case len(cur)+1+len(w) > width:
			lines = append(lines, cur)
			cur = indent + w
		default:
			cur += " " + w
		}
		words++
	}
	for _, w := range strings.Fields(text) {
		for len(w) > maxWordBytes {
			emit(w[:maxWordBytes])
			w = w[maxWordBytes:]
		}
		emit(w)
	}
	if words > 0 {
		lines = append(lines, cur)
	}
	return lines
}
