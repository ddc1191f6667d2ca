// Package smtpd is sluice's inbound SMTP side: a go-smtp server that accepts
// mail from trusted clients (Postfix handing over as relayhost) and from anyone
// for sluice's own addresses (VERP bounce returns), and hands each finished
// message to an Enqueuer.
//
// It owns the acceptance policy: connection cap, trusted networks and relay
// denial, address syntax, the strict line-ending check on DATA and BDAT bodies
// (RFC 5321 2.3.8), the mail-loop check, the priority header, and the Received
// field it prepends. It replies "250 ... queued as ID" only after the Enqueuer
// (and, for local recipients, the Intake) returned nil, and answers storage
// problems with a 4xx, never a 5xx.
//
// It must not deliver or schedule: it never imports scheduler or delivery, and
// it keeps no state beyond the SMTP transaction in progress.
package smtpd
