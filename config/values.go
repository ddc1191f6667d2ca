package config

import (
	"math"
	"strconv"
	"strings"
)

// sizeUnits are the suffixes a size string may carry, matched without
// regard to case: decimal (kB = 1000) and binary (KiB = 1024) multiples.
var sizeUnits = []struct {
	suffix string
	mult   int64
}{
	{"kib", 1 << 10}, {"mib", 1 << 20}, {"gib", 1 << 30},
	{"kb", 1000}, {"mb", 1000 * 1000}, {"gb", 1000 * 1000 * 1000},
	{"b", 1},
}

// size returns a size in bytes that must be greater than zero. It is an
// integer (10240000) or a string with a unit: "10MB" (10×1000²),
// "10MiB" (10×1024²); B, kB, MB, GB, KiB, MiB, GiB are known.
func (c *checker) size(key string, v any, def int64) int64 {
	var n int64
	switch x := v.(type) {
	case nil:
		return def
	case int64:
		n = x
	case string:
		var ok bool
		if n, ok = parseSize(x); !ok {
			c.errorf(key, "%q is not a size: use a number of bytes or a string such as \"10MB\" or \"10MiB\"", x)
			return def
		}
	default:
		c.errorf(key, "must be a number of bytes, not %s", tomlType(v))
		return def
	}
	if n <= 0 {
		c.errorf(key, "must be greater than 0, not %d", n)
		return def
	}
	return n
}

// parseSize parses "<digits><unit>" as described on size.
func parseSize(s string) (int64, bool) {
	lower := strings.ToLower(s)
	for _, u := range sizeUnits {
		num, found := strings.CutSuffix(lower, u.suffix)
		if !found {
			continue
		}
		if num == "" || strings.TrimLeft(num, "0123456789") != "" {
			return 0, false
		}
		n, err := strconv.ParseInt(num, 10, 64)
		if err != nil || n > math.MaxInt64/u.mult {
			return 0, false
		}
		return n * u.mult, true
	}
	return 0, false
}

// maxPriorityLimit bounds max_priority: priority N costs ceil(1000/N)
// milli-units, which is already the smallest cost, 1, at N = 1000.
const maxPriorityLimit = 1000

// maxPriority checks max_priority, a number from 1 to 1000 with at most
// three decimals, and returns it in milli-units (2.5 → 2500).
func (c *checker) maxPriority(key string, v any) uint32 {
	const def = 10 * 1000
	var text string
	var f float64
	switch x := v.(type) {
	case nil:
		return def
	case int64:
		text, f = strconv.FormatInt(x, 10), float64(x)
	case float64:
		// The shortest representation that reads back as x is what the
		// user wrote, up to equivalent spellings such as 2.50 or 25e-1.
		text, f = strconv.FormatFloat(x, 'f', -1, 64), x
	default:
		c.errorf(key, "must be a number such as 10 or 2.5, not %s", tomlType(v))
		return def
	}
	if !(f >= 1 && f <= maxPriorityLimit) { // also catches nan
		c.errorf(key, "must be from 1 to %d, not %s", maxPriorityLimit, text)
		return def
	}
	milli, ok := parseMilli(text)
	if !ok {
		c.errorf(key, "%s has more than 3 decimals", text)
		return def
	}
	return uint32(milli)
}

// parseMilli turns a plain non-negative decimal of at most three decimals
// ("10", "2.5") into thousandths. The caller has bounded its size.
func parseMilli(text string) (int64, bool) {
	whole, frac, _ := strings.Cut(text, ".")
	if len(frac) > 3 {
		return 0, false
	}
	w, err := strconv.ParseInt(whole, 10, 64)
	if err != nil {
		return 0, false
	}
	f := int64(0)
	if frac != "" {
		if f, err = strconv.ParseInt(frac+strings.Repeat("0", 3-len(frac)), 10, 64); err != nil {
			return 0, false
		}
	}
	return w*1000 + f, true
}
