// Package redisbudget keeps operator budgets in Redis, so that several
// sluice relays spend one quota per operator and window between them.
//
// It owns the Redis side of the scheduler's budget store: the key layout,
// the Lua scripts that reserve and refund atomically, the client settings
// that keep a slow or silent Redis from stalling delivery, the clock check
// against Redis, and the policy for when Redis cannot be reached. It must
// not import other sluice packages: the scheduler declares the Budget
// interface that Store and Fallback implement, and never sees a Redis
// client.
//
// # Keys and units
//
// One string key per operator and window holds the milli-units used so far,
// as a decimal integer:
//
//	sluice:budget:{OPERATOR}:WINDOW_START_UNIX_SECONDS
//
// The braces are literal: they are a Redis Cluster hash tag, so that only
// the operator name is hashed and all of one operator's windows live in the
// same slot (Redis Cluster specification, "Hash tags"). A reservation only
// ever touches one key, so this is not needed for atomicity, but it keeps
// one operator on one shard and lets tooling scan an operator's windows on
// one node. Operator names may not contain '{' or '}'.
//
// Every reservation runs one Lua script: read the total, grant
// k = min(n, floor((quota-used)/cost)) units, INCRBY the key by k*cost, and
// set a relative EXPIRE of the window length plus a grace period (default
// one hour), so that old windows disappear by themselves. The TTL is
// relative on purpose: an absolute EXPIREAT computed from a relay's clock
// (or a test's fake clock) could delete a live window. Redis runs a script
// as one atomic step, with no other command in between (Redis
// documentation, "Scripting with Lua"), so relays can never over-grant
// between them. Redis Lua numbers are IEEE doubles, exact below 2^53;
// arguments above that are rejected, and no float reaches Go.
//
// # Failures
//
// Every call is bounded by Options.Timeout, both by a context deadline and
// by the client's dial, read, write and pool timeouts. The client never
// resends a command: a reply lost after Redis ran a script cannot be told
// from a request that never arrived, and running a refund twice would give
// back units the operator already saw. Every Redis failure wraps
// ErrUnavailable.
//
// Fallback wraps a Store (or any Budget) with the configured outage policy:
// "pause" grants nothing while Redis is down, so mail waits; "local_share"
// grants from the local store against quota/ExpectedRelays, so that relays
// cut off together still stay within the quota. See Fallback for the
// bookkeeping that keeps partial-window outages within the quota too.
//
// Redis is the only copy of the shared totals: run it with persistence
// (appendonly) or a restarted Redis forgets what the current window spent.
package redisbudget
