package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// checkDomain reports why s is not a domain name in the LDH syntax of
// RFC 1035 section 2.3.1 as relaxed by RFC 1123 section 2.1 (labels may start
// with a digit): labels of 1 to 63 letters, digits and hyphens, not starting
// or ending with a hyphen, 253 octets in all. Internationalised names must be
// written as A-labels ("xn--..."), which is what travels in SMTP without
// SMTPUTF8.
func checkDomain(s string) error {
	if s == "" {
		return errors.New("is empty")
	}
	if len(s) > 253 {
		return fmt.Errorf("is %d bytes long, more than 253", len(s))
	}
	for label := range strings.SplitSeq(s, ".") {
		if err := checkLabel(label); err != nil {
			return err
		}
	}
	return nil
}

// checkLabel checks one label of a domain name.
func checkLabel(l string) error {
	switch {
	case l == "":
		return errors.New("has an empty label")
	case len(l) > 63:
		return fmt.Errorf("has a label longer than 63 bytes")
	case l[0] == '-' || l[len(l)-1] == '-':
		return fmt.Errorf("has label %q starting or ending with a hyphen", l)
	}
	for i := 0; i < len(l); i++ {
		c := l[i]
		if !isLetterDigit(c) && c != '-' {
			return fmt.Errorf("has an invalid character %q (write internationalised names as xn-- A-labels)", c)
		}
	}
	return nil
}

func isLetterDigit(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// normalizeDomain lowercases a domain and drops one trailing dot, the form
// in which domains are compared.
func normalizeDomain(s string) string {
	return strings.ToLower(strings.TrimSuffix(s, "."))
}

// atext is the set of RFC 5322 section 3.2.3 atext characters besides
// letters and digits.
const atextSpecials = "!#$%&'*+-/=?^_`{|}~"

// checkMailbox reports why s is not an address usable as an envelope
// sender: a Dot-string local part (RFC 5321 section 4.1.2) of at most 64
// octets (section 4.5.3.1.1), "@", and a domain name. Quoted local parts
// and address literals are not accepted.
func checkMailbox(s string) error {
	at := strings.LastIndexByte(s, '@')
	if at < 0 {
		return errors.New("is not an address (local@domain)")
	}
	local, domain := s[:at], s[at+1:]
	if err := checkDotString(local); err != nil {
		return fmt.Errorf("local part %w", err)
	}
	if err := checkDomain(domain); err != nil {
		return fmt.Errorf("domain %w", err)
	}
	return nil
}

// checkDotString checks an RFC 5321 Dot-string: atoms of atext joined by
// single dots.
func checkDotString(s string) error {
	if len(s) > 64 {
		return fmt.Errorf("is %d bytes long, more than 64", len(s))
	}
	for atom := range strings.SplitSeq(s, ".") {
		if atom == "" {
			return errors.New("is empty or has an empty atom")
		}
		for i := 0; i < len(atom); i++ {
			if c := atom[i]; !isLetterDigit(c) && !strings.ContainsRune(atextSpecials, rune(c)) {
				return fmt.Errorf("has an invalid character %q", c)
			}
		}
	}
	return nil
}

// checkFieldName reports why s is not a header field name: printable
// US-ASCII except colon (RFC 5322 section 3.6.8).
func checkFieldName(s string) error {
	if s == "" {
		return errors.New("is empty")
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 33 || c > 126 || c == ':' {
			return fmt.Errorf("has an invalid character %q", c)
		}
	}
	return nil
}

// checkHostPort reports why s is not host:port with a numeric port. The
// host may be empty (all addresses), a name, or an IP ("[::1]:25").
// minPort is 0 for listeners (port 0 picks a free port) and 1 for peers.
func checkHostPort(s string, minPort int) (host string, err error) {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return "", fmt.Errorf("%q is not host:port", s)
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < minPort || n > 65535 {
		return "", fmt.Errorf("%q has an invalid port %q (want %d to 65535)", s, port, minPort)
	}
	if host == "" {
		return "", nil
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return host, nil
	}
	if err := checkDomain(strings.TrimSuffix(host, ".")); err != nil {
		return "", fmt.Errorf("%q: host %q is neither an IP address nor a name: it %w", s, host, err)
	}
	return host, nil
}

// checkOperatorName reports why s is not an operator name: [a-z0-9_.-]+,
// a form that is safe in logs, metrics labels and CLI arguments.
func checkOperatorName(s string) error {
	if s == "" {
		return errors.New("must not be empty")
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-') {
			return fmt.Errorf("%q may only use a-z, 0-9, '_', '.' and '-'", s)
		}
	}
	if s == "default" {
		return errors.New(`"default" is reserved for the [default] table`)
	}
	return nil
}
