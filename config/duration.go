package config

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Duration is a time.Duration written in a configuration file as a string
// such as "90s", "5m", "1h30m", "2d" or "1w". On top of Go's units (ns, us,
// µs, ms, s, m, h) it accepts d (24h) and w (7d), and units combine as in
// "1d12h". A bare number is not a duration, except "0", which means zero.
// Negative durations are rejected: nothing in sluice waits a negative time.
type Duration time.Duration

// ErrDuration is wrapped by every error ParseDuration returns.
var ErrDuration = errors.New("invalid duration")

// durationUnits maps a unit suffix to its length.
var durationUnits = map[string]time.Duration{
	"ns": time.Nanosecond,
	"us": time.Microsecond,
	"µs": time.Microsecond, // U+00B5 micro sign
	"μs": time.Microsecond, // U+03BC Greek mu
	"ms": time.Millisecond,
	"s":  time.Second,
	"m":  time.Minute,
	"h":  time.Hour,
	"d":  24 * time.Hour,
	"w":  7 * 24 * time.Hour,
}

// ParseDuration parses a duration string as described on Duration.
func ParseDuration(s string) (Duration, error) {
	if s == "0" {
		return 0, nil
	}
	if s == "" {
		return 0, fmt.Errorf("%w: empty string", ErrDuration)
	}
	if s[0] == '-' {
		return 0, fmt.Errorf("%w: %q is negative", ErrDuration, s)
	}
	var total time.Duration
	for rest := s; rest != ""; {
		d, tail, err := parseDurationTerm(rest)
		if err != nil {
			return 0, fmt.Errorf("%w: %q: %w", ErrDuration, s, err)
		}
		if total > math.MaxInt64-d {
			return 0, fmt.Errorf("%w: %q is too large", ErrDuration, s)
		}
		total += d
		rest = tail
	}
	return Duration(total), nil
}

// parseDurationTerm parses one "<number><unit>" term off the front of s,
// where number is digits with an optional fraction ("1.5h").
func parseDurationTerm(s string) (time.Duration, string, error) {
	i := 0
	for i < len(s) && (s[i] >= '0' && s[i] <= '9' || s[i] == '.') {
		i++
	}
	num := s[:i]
	j := i
	for j < len(s) && !(s[j] >= '0' && s[j] <= '9' || s[j] == '.') {
		j++
	}
	unitName := s[i:j]
	if num == "" || num == "." {
		return 0, "", fmt.Errorf("expected a number before %q", unitName)
	}
	if unitName == "" {
		return 0, "", fmt.Errorf("missing unit after %q (use s, m, h, d or w)", num)
	}
	unit, ok := durationUnits[unitName]
	if !ok {
		return 0, "", fmt.Errorf("unknown unit %q (use ms, s, m, h, d or w)", unitName)
	}
	d, err := scaleDecimal(num, unit)
	if err != nil {
		return 0, "", err
	}
	return d, s[j:], nil
}

// scaleDecimal returns num*unit for a decimal string num ("12", "1.5"),
// computed in integers so that "0.1s" is exactly 100ms.
func scaleDecimal(num string, unit time.Duration) (time.Duration, error) {
	whole, frac, hasDot := strings.Cut(num, ".")
	if strings.Contains(frac, ".") || (hasDot && whole == "" && frac == "") {
		return 0, fmt.Errorf("malformed number %q", num)
	}
	var d time.Duration
	if whole != "" {
		w, err := strconv.ParseInt(whole, 10, 64)
		if err != nil || w > math.MaxInt64/int64(unit) {
			return 0, fmt.Errorf("%q is too large", num)
		}
		d = time.Duration(w) * unit
	}
	// Digits beyond the unit's nanosecond resolution are dropped.
	scale := unit
	for _, c := range frac {
		scale /= 10
		if scale == 0 {
			break
		}
		d += time.Duration(c-'0') * scale
	}
	if d < 0 {
		return 0, fmt.Errorf("%q is too large", num)
	}
	return d, nil
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := ParseDuration(string(b))
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// MarshalText implements encoding.TextMarshaler; the text parses back to d.
func (d Duration) MarshalText() ([]byte, error) {
	return []byte(d.String()), nil
}

// String formats d compactly in the units of the configuration file:
// "5d", "1h30m", "90s" is "1m30s", sub-second values as Go does ("200ms").
func (d Duration) String() string {
	td := time.Duration(d)
	switch {
	case td == 0:
		return "0s"
	case td < 0, td%time.Second != 0:
		return td.String()
	}
	var b strings.Builder
	for _, u := range []struct {
		name string
		len  time.Duration
	}{{"d", 24 * time.Hour}, {"h", time.Hour}, {"m", time.Minute}, {"s", time.Second}} {
		if n := td / u.len; n > 0 {
			b.WriteString(strconv.FormatInt(int64(n), 10))
			b.WriteString(u.name)
			td -= n * u.len
		}
	}
	return b.String()
}
