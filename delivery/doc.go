// Package delivery finds where mail for a domain goes and hands it over by
// SMTP.
//
// It owns MX resolution with miekg/dns against configurable servers (RFC
// 5321 section 5.1, implicit MX, RFC 7505 null MX, RFC 2308 negative
// caching), choosing and dialing MX hosts (mail-loop and private-address
// checks), the STARTTLS policy (RFC 3207; opportunistic per RFC 7435 or
// required, optionally verified), SMTP client sessions over go-smtp, DKIM
// signing with go-msgauth (RFC 6376), and the classification of every
// outcome into sent, deferred or failed per recipient.
//
// Failure model: Open returns a *DNSError when the recipient domain cannot
// be resolved and an *Error when no MX host gave a usable session; both say
// whether the failure is temporary. Conn.Send never returns an error: it
// returns one Result per recipient, 2xx sent, 5xx failed, and everything
// else (4xx, timeouts, network errors, local errors) deferred, keeping the
// remote reply for the caller's rules and reports. A connection lost after
// the final dot is deferred with MaybeDelivered set, since the remote may
// have taken responsibility for the message (RFC 5321 section 6.1; RFC
// 1047).
//
// The package must not touch the queue or bbolt, nor decide when to retry:
// timing, budgets and bounces belong to the scheduler and dsn packages.
package delivery
