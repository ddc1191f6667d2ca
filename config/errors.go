package config

import (
	"fmt"
	"sort"
	"strings"
)

// Messages of the errors that carry the key in quotes rather than as a prefix,
// because the key is what is wrong.
const (
	msgUnknownKey   = "unknown key"
	msgUnknownTable = "unknown table"
)

// Error is one problem found in a configuration file.
type Error struct {
	// File is the name given to Parse, or the path given to Load.
	File string
	// Line is the 1-based line of the key, or of its table header when the
	// key is absent; 0 when not known.
	Line int
	// Key is the key's path with array indices, such as "smtp.listen" or
	// "operator[1].window"; empty for errors about the document as a whole.
	Key string
	// Msg says what is wrong.
	Msg string
}

// Error formats the problem as
// `config: FILE: line N: KEY: MSG`, leaving out what is unknown; an unknown
// key reads `config: FILE: line N: unknown key "KEY"`. Control characters
// (from quoted keys or values echoed in messages) are escaped, so that the
// text is always one line.
func (e *Error) Error() string {
	return escapeControls(e.text())
}

// text is Error before escaping.
func (e *Error) text() string {
	var b strings.Builder
	b.WriteString("config: ")
	if e.File != "" {
		b.WriteString(e.File)
		b.WriteString(": ")
	}
	if e.Line > 0 {
		fmt.Fprintf(&b, "line %d: ", e.Line)
	}
	switch {
	case e.Key == "":
		b.WriteString(e.Msg)
	case e.Msg == msgUnknownKey || e.Msg == msgUnknownTable:
		fmt.Fprintf(&b, "%s %q", e.Msg, e.Key)
	default:
		fmt.Fprintf(&b, "%s: %s", e.Key, e.Msg)
	}
	return b.String()
}

// escapeControls writes control characters as \xNN.
func escapeControls(s string) string {
	if !strings.ContainsFunc(s, isControl) {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		if isControl(r) {
			fmt.Fprintf(&b, "\\x%02x", r)
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

// Errors is every problem found in one configuration file, in line order.
// Parse and Load return it (as error) when the file is not usable.
type Errors struct {
	List []*Error
}

// Error prints one problem per line.
func (e *Errors) Error() string {
	lines := make([]string, len(e.List))
	for i, err := range e.List {
		lines[i] = err.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap returns the individual problems, so that errors.As finds an *Error.
func (e *Errors) Unwrap() []error {
	errs := make([]error, len(e.List))
	for i, err := range e.List {
		errs[i] = err
	}
	return errs
}

// sortErrors orders problems by line, keeping the order of discovery within
// a line; problems without a line come last.
func sortErrors(list []*Error) {
	sort.SliceStable(list, func(i, j int) bool {
		li, lj := list[i].Line, list[j].Line
		if li == 0 || lj == 0 {
			return lj == 0 && li != 0
		}
		return li < lj
	})
}
