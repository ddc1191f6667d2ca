// Package harness runs the real sluice binary as a child process for the
// tests under test/: the Postfix end-to-end test, the hostile input suite,
// fault injection and the kill -9 crash test.
//
// It builds the binary once per test package (Main, called from TestMain),
// writes configuration files, starts the daemon and waits for its
// "sluice started" log line, kills it with SIGKILL or stops it with SIGTERM,
// restarts it on the same data, and drives it the way users do: SMTP on its
// listen address and the admin CLI (sluice --config F queue list --json).
// A small world of fake remote MX servers (internal/testmx) and an
// in-process DNS server (internal/testdns) stands for the Internet, all on
// 127.0.0.0/8.
//
// Running the binary, not the daemon in-process, tests what users run and
// lets a test kill it mid-commit. The daemon's log goes to a file; a failed
// test gets its tail. Every wait is bounded. This package is for tests only.
package harness
