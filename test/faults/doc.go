// Package faults injects faults around the sluice binary: DNS timeouts,
// SERVFAIL, truncated UDP answers and an MX that points back at sluice
// (from the in-process DNS server); remote MXes that drop the connection
// mid-DATA, answer 421 at the greeting or stall past the data timeout
// (testmx hooks); and a full disk (the queue on a small tmpfs). It has no
// non-test code.
//
// The clock fault of issue 6, a backward wall-clock step across a window
// boundary that must not grant a second budget for the same window, is
// covered by TestClockStepBackDoesNotRegrantWindow in scheduler, where
// the fake clock lives.
package faults
