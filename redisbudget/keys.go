package redisbudget

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// keyPrefix starts every key this package writes.
const keyPrefix = "sluice:budget:"

// maxExact is the largest integer Redis Lua numbers (IEEE doubles) hold
// exactly; larger quotas or costs are refused rather than rounded.
const maxExact = 1 << 53

// Key returns the Redis key of operator op's window starting at start:
// "sluice:budget:{op}:UNIX_SECONDS". The braces are a Redis Cluster hash tag
// (see the package documentation). Windows are identified by their start in
// whole seconds, so windows must be at least a second apart.
func Key(op string, start time.Time) string {
	return keyPrefix + "{" + op + "}:" + strconv.FormatInt(start.Unix(), 10)
}

// checkOperator refuses names that would break the key layout: a brace
// would end the hash tag early or start a second one.
func checkOperator(op string) error {
	switch {
	case op == "":
		return fmt.Errorf("%w: empty operator name", ErrInvalidArgument)
	case strings.ContainsAny(op, "{}"):
		return fmt.Errorf("%w: operator name %q contains a brace", ErrInvalidArgument, op)
	}
	return nil
}

// checkReserve validates Reserve's arguments. A quota of zero or less is
// valid: it simply grants nothing.
func checkReserve(op string, length time.Duration, quotaMilli, costMilli int64, n int) error {
	if err := checkOperator(op); err != nil {
		return err
	}
	switch {
	case length <= 0:
		return fmt.Errorf("%w: window length %v", ErrInvalidArgument, length)
	case costMilli <= 0 || costMilli > maxExact:
		return fmt.Errorf("%w: cost %d milli", ErrInvalidArgument, costMilli)
	case n <= 0 || int64(n) > maxExact:
		return fmt.Errorf("%w: %d units", ErrInvalidArgument, n)
	case quotaMilli > maxExact:
		return fmt.Errorf("%w: quota %d milli is above 2^53", ErrInvalidArgument, quotaMilli)
	}
	return nil
}

// ttlSeconds is the key's lifetime after a reservation: the window's length
// plus grace, rounded up to whole seconds and at least one, since EXPIRE
// with zero deletes the key at once.
func ttlSeconds(length, grace time.Duration) int64 {
	d := length + grace
	s := int64(d / time.Second)
	if d%time.Second != 0 {
		s++
	}
	return max(s, 1)
}
