// Package scheduler decides what is sent when. It owns the budgets of the
// mailbox operators (a quota of recipients per clock-aligned window), the
// priority order of ready mail, per-operator concurrency and pacing, retry
// backoff, expiry, and the dispatch loop that hands transactions to
// delivery workers.
//
// The model:
//   - Every pending recipient is in exactly one place: the waiting heap
//     (not before its next attempt time), an operator's ready queue, a
//     transaction in flight, or a domain waiting for its operator to be
//     known (an MX lookup for mx_patterns).
//   - An operator's ready queue is ordered by effective priority, then age.
//     A transaction takes one message's recipients at one domain.
//   - Budget units are reserved, and the attempt is recorded in the store,
//     before the first RCPT is sent; a crash can therefore never grant an
//     operator more than its quota in a window, nor make the loop retry a
//     recipient at once.
//   - Waiting for budget is not an attempt: the recipient stays ready and
//     the loop wakes exactly when the next window opens (after the guard).
//
// Decisions use the injected clock only. The loop sleeps until the earliest
// of: the next due retry, an operator becoming sendable again (window,
// guard band, rate delay, suspension), an idle connection to close, the
// periodic expiry sweep, a kick from new mail, a finished transaction, an
// admin command or shutdown. It never polls.
//
// The scheduler speaks no SMTP and touches no bbolt: it uses the small
// interfaces declared in this package, which the daemon wires to queue,
// delivery and the budget store.
package scheduler
