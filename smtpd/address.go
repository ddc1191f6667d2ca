package smtpd

import (
	"errors"
	"fmt"
	"strings"

	"github.com/emersion/go-smtp"
)

// go-smtp's path parser is permissive: the local part may hold control
// bytes and 8-bit bytes, the domain is whatever runs up to '>', and a
// quoted local part comes back with its quotes removed. checkAddress
// applies RFC 5321 4.1.2 itself and returns the address in a canonical
// form that is safe to send on in RCPT TO or MAIL FROM.

// addrRole says which command an address came with; it picks the enhanced
// code (RFC 3463 X.1.7 for the sender, X.1.3 for a recipient).
type addrRole int

const (
	roleSender addrRole = iota
	roleRecipient
)

func (r addrRole) badSyntax() smtp.EnhancedCode {
	if r == roleSender {
		return smtp.EnhancedCode{5, 1, 7}
	}
	return smtp.EnhancedCode{5, 1, 3}
}

// maxAddrLen is the longest address: a path is at most 256 octets including
// the angle brackets (RFC 5321 4.5.3.1.3).
const maxAddrLen = 254

// checkAddress validates a non-empty address from MAIL or RCPT and returns
// its canonical form: domain in lower case, local part as a dot-string when
// it is one and as a quoted-string otherwise.
func checkAddress(addr string, role addrRole) (string, *smtp.SMTPError) {
	if rerr := checkAddressBytes(addr, role); rerr != nil {
		return "", rerr
	}
	if len(addr) > maxAddrLen {
		return "", &smtp.SMTPError{Code: 501, EnhancedCode: role.badSyntax(),
			Message: "Path too long, see RFC 5321 4.5.3.1.3"}
	}
	at := strings.LastIndexByte(addr, '@')
	if at <= 0 {
		return "", &smtp.SMTPError{Code: 553, EnhancedCode: role.badSyntax(),
			Message: "Bad address syntax"}
	}
	local, domain := addr[:at], addr[at+1:]
	if strings.HasPrefix(domain, "[") {
		// We relay by domain name only: an address literal names no MX and
		// no operator budget, and a bounce to one could not be delivered.
		code := 550
		if role == roleSender {
			code = 553
		}
		return "", &smtp.SMTPError{Code: code, EnhancedCode: role.badSyntax(),
			Message: "Address literals are not accepted, use a domain name"}
	}
	if err := validDomain(domain); err != nil {
		return "", &smtp.SMTPError{Code: 553, EnhancedCode: role.badSyntax(),
			Message: "Bad address syntax: domain " + err.Error()}
	}
	return canonicalLocal(local) + "@" + strings.ToLower(domain), nil
}

// checkAddressBytes refuses control characters (a bare CR in a command
// line reaches us, as do NUL and DEL) and 8-bit bytes.
func checkAddressBytes(addr string, role addrRole) *smtp.SMTPError {
	for i := 0; i < len(addr); i++ {
		if c := addr[i]; c < 0x20 || c == 0x7f {
			return &smtp.SMTPError{Code: 501, EnhancedCode: role.badSyntax(),
				Message: "Control characters are not allowed in addresses"}
		}
	}
	for i := 0; i < len(addr); i++ {
		if addr[i] >= 0x80 {
			// RFC 6531 3.7.4.1: without SMTPUTF8 (which we do not offer),
			// a non-ASCII address gets 553 5.6.7.
			return &smtp.SMTPError{Code: 553, EnhancedCode: smtp.EnhancedCode{5, 6, 7},
				Message: "Non-ASCII addresses are not permitted without SMTPUTF8"}
		}
	}
	return nil
}

// canonicalLocal returns local as a dot-string if it is one, else as a
// quoted-string (RFC 5321 4.1.2). local holds printable ASCII only.
func canonicalLocal(local string) string {
	if isDotString(local) {
		return local
	}
	var b strings.Builder
	b.Grow(len(local) + 4)
	b.WriteByte('"')
	for i := 0; i < len(local); i++ {
		c := local[i]
		if c == '"' || c == '\\' {
			b.WriteByte('\\') // quoted-pairSMTP
		}
		b.WriteByte(c)
	}
	b.WriteByte('"')
	return b.String()
}

// isDotString reports whether s is Atom *("." Atom) (RFC 5321 4.1.2).
func isDotString(s string) bool {
	if s == "" {
		return false
	}
	for _, atom := range strings.Split(s, ".") {
		if atom == "" {
			return false
		}
		for i := 0; i < len(atom); i++ {
			if !isAtext(atom[i]) {
				return false
			}
		}
	}
	return true
}

// isAtext reports whether c is RFC 5322 3.2.3 atext.
func isAtext(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-/=?^_`{|}~", c) >= 0
}

var errEmptyDomain = errors.New("is empty")

// validDomain checks RFC 5321 4.1.2 Domain: dot-separated labels of letters,
// digits and inner hyphens, each at most 63 octets, 255 in all
// (RFC 5321 4.5.3.1.2).
func validDomain(d string) error {
	if d == "" {
		return errEmptyDomain
	}
	if len(d) > 255 {
		return errors.New("is longer than 255 octets")
	}
	for _, label := range strings.Split(d, ".") {
		if err := validLabel(label); err != nil {
			return err
		}
	}
	return nil
}

func validLabel(label string) error {
	if label == "" {
		return errors.New("has an empty label")
	}
	if len(label) > 63 {
		return errors.New("has a label longer than 63 octets")
	}
	if label[0] == '-' || label[len(label)-1] == '-' {
		return fmt.Errorf("has label %q starting or ending with a hyphen", label)
	}
	for i := 0; i < len(label); i++ {
		c := label[i]
		ok := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-'
		if !ok {
			return fmt.Errorf("has a character %q outside letters, digits and hyphen", c)
		}
	}
	return nil
}
