// Package hostile is the hostile-input suite run against the sluice
// binary over real TCP on loopback: SMTP smuggling in DATA and BDAT,
// plaintext pipelined after STARTTLS, out-of-order BDAT, over-long lines,
// oversized messages, too many recipients, relay attempts, mail loops,
// malformed addresses, idle and trickling clients, a storm of connections
// and malformed priority headers. Every case states the reply it expects
// and whether the next command still works or the connection closes. The
// same cases at the package level, with fakes, are smtpd's dialog tests;
// these show that the daemon users run, with its configuration file, its
// queue and its admin CLI, behaves the same. It has no non-test code.
package hostile
