// Package crash holds the kill -9 test: sluice runs as a child process,
// several SMTP clients push messages through it while the remote MX
// accepts, and the test kills it with SIGKILL at random moments and
// restarts it, then checks that every message that got a 250 reached the
// remote MX at least once or was bounced, and that no budget window was
// exceeded at the remote MX. It has no non-test code.
package crash
