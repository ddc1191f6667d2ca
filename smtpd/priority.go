package smtpd

import (
	"strconv"
	"strings"
)

// ParsePriority parses a priority header value: a number from 1 up to
// maxMilli/1000, with at most three decimals ("1", "5", "2.5", " 3 "). It
// returns the priority times 1000, or ok=false for anything else (empty,
// "0", "-1", "abc", "1e3", "NaN", out of range, too many decimals), in
// which case the caller uses priority 1. Integer milli-units keep quota
// accounting free of floating-point drift.
func ParsePriority(v string, maxMilli uint32) (milli uint32, ok bool) {
	v = strings.Trim(v, " \t")
	intPart, frac, hasDot := strings.Cut(v, ".")
	if intPart == "" || hasDot && (frac == "" || len(frac) > 3) {
		return 0, false
	}
	var n uint64
	for i := 0; i < len(intPart); i++ {
		c := intPart[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + uint64(c-'0')
		if n > uint64(maxMilli) { // already too big, and no overflow later
			return 0, false
		}
	}
	n *= 1000
	scale := uint64(100)
	for i := 0; i < len(frac); i++ {
		c := frac[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n += uint64(c-'0') * scale
		scale /= 10
	}
	if n < 1000 || n > uint64(maxMilli) {
		return 0, false
	}
	return uint32(n), true
}

// formatMilli renders a milli value as a decimal ("2.5" for 2500).
func formatMilli(m uint32) string {
	s := strconv.FormatUint(uint64(m/1000), 10)
	frac := m % 1000
	if frac == 0 {
		return s
	}
	f := []byte{byte('0' + frac/100), byte('0' + frac/10%10), byte('0' + frac%10)}
	return s + "." + strings.TrimRight(string(f), "0")
}
