package smtpd

import (
	"net/netip"
	"strings"
	"time"
)

// receivedInfo is what goes into our Received field (RFC 5321 4.4).
type receivedInfo struct {
	helo     string     // as given by the client; sanitised here
	ip       netip.Addr // zero when unknown
	hostname string
	tls      bool
	id       string
	rcpt     string // the one recipient, or empty
	date     time.Time
}

// maxFoldedLine is where RFC 5322 2.1.1 asks lines to be folded.
const maxFoldedLine = 78

// received returns the Received field, folded, ending in CRLF:
//
//	Received: from HELO (rdns-not-done [IP])
//		by HOSTNAME (sluice) with ESMTPS id ID
//		for <rcpt>; date
//
// The "for" clause appears only for a single recipient, so that one
// recipient's copy does not reveal the others (RFC 5321 4.4 leaves it
// optional). The protocol is ESMTPS under TLS (RFC 3848); sluice offers no
// AUTH, so never ESMTPA.
func received(r receivedInfo) string {
	with := "ESMTP"
	if r.tls {
		with = "ESMTPS"
	}
	parts := []string{
		"Received: from " + sanitizeHelo(r.helo),
		"(rdns-not-done " + addressLiteral(r.ip) + ")",
		"by " + r.hostname,
		"(sluice)",
		"with " + with,
		"id " + r.id,
	}
	if r.rcpt != "" {
		parts = append(parts, "for <"+r.rcpt+">")
	}
	parts[len(parts)-1] += ";"
	parts = append(parts, r.date.Format(time.RFC1123Z))
	return fold(parts)
}

// fold joins parts with spaces, starting a continuation line (CRLF TAB)
// before any part that would take the line past 78 characters.
func fold(parts []string) string {
	var b strings.Builder
	lineLen := 0
	for i, p := range parts {
		switch {
		case i == 0:
		case lineLen+1+len(p) > maxFoldedLine:
			b.WriteString("\r\n\t")
			lineLen = 1
		default:
			b.WriteByte(' ')
			lineLen++
		}
		b.WriteString(p)
		lineLen += len(p)
	}
	b.WriteString("\r\n")
	return b.String()
}

// addressLiteral formats ip as an RFC 5321 4.1.3 address literal.
func addressLiteral(ip netip.Addr) string {
	switch {
	case !ip.IsValid():
		return "[unknown]"
	case ip.Is4():
		return "[" + ip.String() + "]"
	default:
		return "[IPv6:" + ip.String() + "]"
	}
}

// maxHeloLen bounds the HELO argument we repeat; a domain is at most 255
// octets (RFC 5321 4.5.3.1.2).
const maxHeloLen = 255

// sanitizeHelo keeps the characters of a domain or address literal and
// replaces any other by '_', so that a client cannot break out of the
// Received field's syntax (parentheses, semicolons) or inject bytes
// (go-smtp hands over the HELO argument unchecked, bare CR included).
func sanitizeHelo(h string) string {
	if len(h) > maxHeloLen {
		h = h[:maxHeloLen]
	}
	b := []byte(h)
	for i, c := range b {
		ok := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			strings.IndexByte("-._:[]", c) >= 0
		if !ok {
			b[i] = '_'
		}
	}
	if len(b) == 0 {
		return "unknown"
	}
	return string(b)
}
