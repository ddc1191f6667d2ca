// Package queue is sluice's durable mail queue: a bbolt file holding every
// accepted message, one record per recipient with its delivery state, message
// bodies, and the budget units each operator used per window.
//
// The failure model: a message is accepted (the client sees 250) only after
// its envelope, recipients and body are committed with fsync. It leaves the
// queue only when every recipient is sent or failed, in the same transaction
// that records the last result (and that queues any bounce it causes), so a
// crash at any moment either keeps a recipient pending, and so delivers it at
// least once more, or has already recorded its outcome. Recipient updates
// before a delivery attempt (attempt count, next attempt time, budget
// reservation) are committed before the attempt starts, so a crash can neither
// make the scheduler retry in a hot loop nor spend a window's budget twice.
//
// Writes from concurrent callers share commits: a single committer goroutine
// runs every pending change in one bbolt transaction, committed with fsync
// (bbolt syncs the data pages, then the meta page). Enqueue starts a commit
// at once; Apply (delivery results, attempts, administrative changes) may
// wait a few milliseconds for an Enqueue to share one with while mail is
// being accepted, which halves the commits per relayed message. Either way
// a call returns only once its change is on disk.
//
// The package knows no SMTP, DNS or TOML; callers pass the current time in.
// Records are binary with a leading schema version; unknown versions are an
// error, never silently skipped.
package queue
