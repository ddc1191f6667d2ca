package config

import (
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// checker converts raw values into typed ones. Each method records an *Error
// naming the key (and, through the index, its line) for every problem, and
// returns the default in its place, so that checking always runs to the end.
type checker struct {
	file    string
	idx     *index
	baseDir string // relative paths in the file are resolved against it
	errs    []*Error
}

// add records a problem.
func (c *checker) add(e *Error) {
	e.File = c.file
	c.errs = append(c.errs, e)
}

// errorf records a problem with key.
func (c *checker) errorf(key, format string, args ...any) {
	c.add(&Error{Line: c.idx.line(key), Key: key, Msg: fmt.Sprintf(format, args...)})
}

// result returns the problems found, as *Errors, or nil.
func (c *checker) result() error {
	if len(c.errs) == 0 {
		return nil
	}
	sortErrors(c.errs)
	return &Errors{List: c.errs}
}

// tomlType names the TOML type of a decoded value, for messages.
func tomlType(v any) string {
	switch v.(type) {
	case string:
		return "a string"
	case int64:
		return "an integer"
	case float64:
		return "a float"
	case bool:
		return "a boolean"
	case []any:
		return "an array"
	case map[string]any:
		return "a table"
	default:
		return "a date or time"
	}
}

// str returns the string at key, or def. ok is false when the key is absent
// or not a string (then already reported).
func (c *checker) str(key string, v any, def string) (string, bool) {
	if v == nil {
		return def, false
	}
	s, isStr := v.(string)
	if !isStr {
		c.errorf(key, "must be a string, not %s", tomlType(v))
		return def, false
	}
	return s, true
}

// required reports a required key that is absent.
func (c *checker) required(key string, v any) {
	if v == nil {
		c.errorf(key, "is required")
	}
}

// boolean returns the boolean at key, or def.
func (c *checker) boolean(key string, v any, def bool) bool {
	if v == nil {
		return def
	}
	b, ok := v.(bool)
	if !ok {
		c.errorf(key, "must be true or false, not %s", tomlType(v))
		return def
	}
	return b
}

// integer returns the integer at key, or def when absent or invalid.
func (c *checker) integer(key string, v any, def int64) (int64, bool) {
	if v == nil {
		return def, false
	}
	n, ok := v.(int64)
	if !ok {
		c.errorf(key, "must be an integer, not %s", tomlType(v))
		return def, false
	}
	return n, true
}

// intRange returns the integer at key, which must lie in [lo, hi].
func (c *checker) intRange(key string, v any, def, lo, hi int64) int64 {
	n, ok := c.integer(key, v, def)
	if !ok {
		return def
	}
	if err := rangeError(n, lo, hi); err != "" {
		c.errorf(key, "%s", err)
		return def
	}
	return n
}

// rangeError says why n is outside [lo, hi], or "".
func rangeError(n, lo, hi int64) string {
	switch {
	case n < lo && lo == 1:
		return fmt.Sprintf("must be greater than 0, not %d", n)
	case n < lo:
		return fmt.Sprintf("must be at least %d, not %d", lo, n)
	case n > hi:
		return fmt.Sprintf("must be at most %d, not %d", hi, n)
	}
	return ""
}

// count returns a count that must be at least lo; counts are ints.
func (c *checker) count(key string, v any, def int, lo int64) int {
	return int(c.intRange(key, v, int64(def), lo, math.MaxInt32))
}

// enum returns the string at key, which must be one of allowed.
func (c *checker) enum(key string, v any, def string, allowed ...string) string {
	s, ok := c.str(key, v, def)
	if ok && !slices.Contains(allowed, s) {
		c.errorf(key, "must be one of %s, not %q", quoteList(allowed), s)
		return def
	}
	return s
}

// quoteList formats a list of allowed values for a message.
func quoteList(list []string) string {
	q := make([]string, len(list))
	for i, s := range list {
		q[i] = strconv.Quote(s)
	}
	return strings.Join(q, ", ")
}

// duration returns the duration at key, or def when absent or invalid.
func (c *checker) duration(key string, v any, def time.Duration) (time.Duration, bool) {
	if v == nil {
		return def, false
	}
	s, ok := v.(string)
	if !ok {
		c.errorf(key, "must be a duration string such as \"30s\", not %s", tomlType(v))
		return def, false
	}
	d, err := ParseDuration(s)
	if err != nil {
		c.errorf(key, "%v", err)
		return def, false
	}
	return time.Duration(d), true
}

// positive returns a duration at key that must be greater than zero.
func (c *checker) positive(key string, v any, def time.Duration) time.Duration {
	d, ok := c.duration(key, v, def)
	if ok && d <= 0 {
		c.errorf(key, "must be greater than 0")
		return def
	}
	return d
}

// strList returns the array of strings at key, or def. Bad elements are
// reported by their own path ("smtp.listen[1]") and left out.
func (c *checker) strList(key string, v any, def []string) ([]string, bool) {
	if v == nil {
		return def, false
	}
	arr, ok := v.([]any)
	if !ok {
		c.errorf(key, "must be an array of strings such as [\"a\", \"b\"], not %s", tomlType(v))
		return def, false
	}
	out := make([]string, 0, len(arr))
	for i, el := range arr {
		s, isStr := el.(string)
		if !isStr {
			c.errorf(elemPath(key, i), "must be a string, not %s", tomlType(el))
			continue
		}
		out = append(out, s)
	}
	return out, true
}

// filePath returns the file path at key resolved against the configuration
// file's directory, or def (resolved likewise) when absent. An empty string
// stays empty: the caller decides whether that is allowed.
func (c *checker) filePath(key string, v any, def string) string {
	p, _ := c.str(key, v, def)
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(c.baseDir, p)
}
