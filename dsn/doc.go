// Package dsn builds RFC 3464 delivery status notifications and parses the
// ones other mail systems send back.
//
// Build turns a Report (what happened to which recipients of one queued
// message) into a complete RFC 5322 message: a multipart/report (RFC 6522)
// with a human-readable text/plain part, a message/delivery-status part and
// the returned original (headers only, or the full message when the sender
// asked for RET=FULL, RFC 3461 section 4.3). The caller queues it with the
// null envelope sender, so that a report can never cause another report.
//
// Every value that came from a client or a remote server (addresses, ENVID,
// remote replies, host names) is sanitised before it enters a header or a
// delivery-status field: control characters, CR and LF cannot reach the
// output, non-ASCII text becomes '?' (or RFC 6533 utf-8-addr-xtext for
// addresses), and long values are folded or truncated so no line exceeds the
// 998 octets of RFC 5322 section 2.1.1.
//
// Parse reads an inbound bounce: the message/delivery-status part of an
// RFC 3464 report when there is one, otherwise a best-effort scan of the
// plain text for an SMTP status and the failed addresses. It bounds its work
// on any input and never panics.
//
// The package is pure: no I/O, no clock (every date is an argument), no
// logging, and it imports no other sluice package.
package dsn
