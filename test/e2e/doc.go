// Package e2e runs a real Postfix in front of the sluice binary: Postfix's
// relayhost is sluice, a header_checks rule prepends the priority header
// for one sender, and sluice delivers to fake remote MXes under an
// operator budget. The test is skipped when Postfix cannot run here and
// fails instead when SLUICE_REQUIRE_SERVERS=1 (CI). It has no non-test code.
package e2e
