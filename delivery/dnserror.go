package delivery

import "fmt"

// Enhanced status codes (RFC 3463) used for DNS outcomes.
const (
	enhBadDestination = "5.1.2"  // domain does not exist
	enhNullMX         = "5.1.10" // RFC 7505 section 4.1
	enhNoRoute        = "5.4.4"  // unable to route
	enhDNSTemporary   = "4.4.3"  // directory server failure
)

// DNSError is a failed DNS lookup. Temporary failures (SERVFAIL, REFUSED,
// timeouts) are worth retrying; permanent ones (NXDOMAIN, null MX, no mail
// host) are not.
type DNSError struct {
	Domain    string
	Temporary bool
	Enhanced  string // RFC 3463 code for reports, e.g. "5.1.2"
	Msg       string
	Err       error // underlying cause, if any
}

func (e *DNSError) Error() string {
	s := fmt.Sprintf("dns lookup for %s: %s", e.Domain, e.Msg)
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns the underlying cause.
func (e *DNSError) Unwrap() error { return e.Err }

// IsTemporary reports whether a later retry may succeed.
func (e *DNSError) IsTemporary() bool { return e.Temporary }

func errNXDomain(domain string) *DNSError {
	return &DNSError{Domain: domain, Enhanced: enhBadDestination, Msg: "domain does not exist (NXDOMAIN)"}
}

func errNullMX(domain string) *DNSError {
	return &DNSError{Domain: domain, Enhanced: enhNullMX, Msg: "domain does not accept mail (null MX)"}
}

func errNoMailHost(domain string) *DNSError {
	return &DNSError{Domain: domain, Enhanced: enhNoRoute, Msg: "no mail host: no MX and no address records"}
}

func errHostNotFound(host string) *DNSError {
	return &DNSError{Domain: host, Enhanced: enhNoRoute, Msg: "host not found (NXDOMAIN)"}
}

func errNoAddress(host string) *DNSError {
	return &DNSError{Domain: host, Enhanced: enhNoRoute, Msg: "host has no address records"}
}

func errBadName(name string) *DNSError {
	return &DNSError{Domain: name, Enhanced: enhBadDestination, Msg: "invalid domain name"}
}

func errTemporary(domain string, err error) *DNSError {
	return &DNSError{Domain: domain, Temporary: true, Enhanced: enhDNSTemporary, Msg: "lookup failed", Err: err}
}
