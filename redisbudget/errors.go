package redisbudget

import "errors"

// ErrUnavailable is wrapped by every error caused by Redis: refused or
// timed-out connections, missing replies, and error replies. Callers keep
// mail waiting (or fall back, see Fallback) rather than guess a budget.
var ErrUnavailable = errors.New("redis budget store unavailable")

// ErrInvalidArgument is wrapped when a call's arguments cannot describe a
// reservation: an empty operator or one with a hash-tag brace, a cost or
// count below one, or a number too large for Redis Lua to hold exactly. It
// is a caller's bug, not an outage.
var ErrInvalidArgument = errors.New("invalid budget argument")

// ErrBadURL is wrapped when Options.URL cannot be used. Its messages never
// repeat the URL, which may hold a password.
var ErrBadURL = errors.New("bad redis url")
