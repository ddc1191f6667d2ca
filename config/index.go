package config

import (
	"errors"
	"sort"
	"strconv"
	"strings"

	"github.com/pelletier/go-toml/v2/unstable"
)

// index maps every key path present in a document to its line, so that
// validation errors, which work on decoded values, can still name a line.
//
// Paths are written as in error messages: table and key names joined by dots,
// array elements as "[i]" ("operator[1].response_rule[0].match",
// "smtp.listen[2]"). Table headers are recorded too, which is what names a
// line for a key that is absent from its table.
type index struct {
	lines     map[string]int   // path → line of first appearance
	byLine    map[int][]string // line → paths recorded at it
	arrays    map[string]int   // array-of-tables path → elements so far
	tables    map[string]bool  // paths named by a [table] or [[array]] header
	lineStart []int            // offsets of '\n' bytes, for offset → line
}

// childPath returns the path of key name inside table path p.
func childPath(p, name string) string {
	if p == "" {
		return name
	}
	return p + "." + name
}

// elemPath returns the path of element i of array p.
func elemPath(p string, i int) string {
	return p + "[" + strconv.Itoa(i) + "]"
}

// parentPath strips the last key or index from p ("" at the top).
func parentPath(p string) string {
	i := strings.LastIndexAny(p, ".[")
	if i < 0 {
		return ""
	}
	return p[:i]
}

// buildIndex parses data once with go-toml's parser. A syntax error is
// returned as an *Error with its line.
func buildIndex(data []byte) (*index, *Error) {
	x := &index{
		lines:  map[string]int{},
		byLine: map[int][]string{},
		arrays: map[string]int{},
		tables: map[string]bool{},
	}
	for i, c := range data {
		if c == '\n' {
			x.lineStart = append(x.lineStart, i)
		}
	}
	var p unstable.Parser
	p.Reset(data)
	table := ""
	for p.NextExpression() {
		e := p.Expression()
		switch e.Kind {
		case unstable.Table, unstable.ArrayTable:
			table = x.header(e)
		case unstable.KeyValue:
			x.keyValue(table, e)
		default:
		}
	}
	if err := p.Error(); err != nil {
		return nil, x.syntaxError(data, err)
	}
	return x, nil
}

// syntaxError turns a parser error into an *Error with the line of the
// offending bytes, which are a subslice of data.
func (x *index) syntaxError(data []byte, err error) *Error {
	e := &Error{Msg: "invalid TOML: " + err.Error()}
	var perr *unstable.ParserError
	if errors.As(err, &perr) && perr.Highlight != nil {
		if off := cap(data) - cap(perr.Highlight); off >= 0 && off <= len(data) {
			e.Line = x.lineAt(off)
		}
	}
	return e
}

// lineAt returns the 1-based line of byte offset off.
func (x *index) lineAt(off int) int {
	return sort.SearchInts(x.lineStart, off) + 1
}

// record notes the first line at which path appears, and that it appears
// at line (a duplicate key appears twice; go-toml reports the second).
func (x *index) record(path string, line int) {
	if _, ok := x.lines[path]; !ok {
		x.lines[path] = line
	}
	x.byLine[line] = append(x.byLine[line], path)
}

// keyOf returns the parts of a node's (possibly dotted) key and the line of
// its first part.
func (x *index) keyOf(n *unstable.Node) ([]string, int) {
	var parts []string
	line := 0
	it := n.Key()
	for it.Next() {
		k := it.Node()
		if line == 0 {
			line = x.lineAt(int(k.Raw.Offset))
		}
		parts = append(parts, string(k.Data))
	}
	return parts, line
}

// header resolves a [table] or [[array]] header to its path. Parts of the
// header naming an array of tables refer to its latest element (TOML 1.0,
// "Array of Tables"); the last part of an [[array]] header opens a new one.
func (x *index) header(e *unstable.Node) string {
	parts, line := x.keyOf(e)
	path := ""
	for i, part := range parts {
		path = childPath(path, part)
		n, isArray := x.arrays[path]
		switch {
		case i == len(parts)-1 && e.Kind == unstable.ArrayTable:
			x.record(path, line)
			x.arrays[path] = n + 1
			path = elemPath(path, n)
		case isArray && n > 0:
			path = elemPath(path, n-1)
		}
		x.record(path, line)
		x.tables[path] = true
	}
	return path
}

// keyValue records a key-value expression inside table, and what its value
// holds: array elements and inline-table keys get paths of their own.
func (x *index) keyValue(table string, kv *unstable.Node) {
	parts, line := x.keyOf(kv)
	path := table
	for _, part := range parts {
		path = childPath(path, part)
		x.record(path, line)
	}
	x.value(path, kv.Value(), line)
}

// value records the elements of an array or inline table found at path.
func (x *index) value(path string, v *unstable.Node, line int) {
	switch v.Kind {
	case unstable.Array:
		i := 0
		for it := v.Children(); it.Next(); {
			n := it.Node()
			if n.Kind == unstable.Comment {
				continue
			}
			el, elLine := elemPath(path, i), line
			if n.Kind != unstable.Array {
				elLine = x.lineAt(int(n.Raw.Offset))
			}
			x.record(el, elLine)
			x.value(el, n, elLine)
			i++
		}
	case unstable.InlineTable:
		for it := v.Children(); it.Next(); {
			if n := it.Node(); n.Kind == unstable.KeyValue {
				x.keyValue(path, n)
			}
		}
	default:
	}
}

// has reports whether path appears in the document.
func (x *index) has(path string) bool {
	_, ok := x.lines[path]
	return ok
}

// line returns the line of path or, when path is absent, of its nearest
// present ancestor (its table header); 0 when none is present.
func (x *index) line(path string) int {
	for p := path; p != ""; p = parentPath(p) {
		if l, ok := x.lines[p]; ok {
			return l
		}
	}
	return 0
}

// find returns the path with indices of the key go-toml reports as key at
// line: go-toml names keys without array indices, and inside an inline table
// only relative to that table.
func (x *index) find(key []string, line int) string {
	want := strings.Join(key, ".")
	var suffix string
	for _, p := range x.byLine[line] {
		if strings.HasSuffix(p, "]") {
			continue // an array element or table, never a key go-toml names
		}
		plain := stripIndices(p)
		if plain == want {
			return p
		}
		if suffix == "" && strings.HasSuffix(plain, "."+want) {
			suffix = p
		}
	}
	if suffix != "" {
		return suffix
	}
	return want
}

// stripIndices removes the "[i]" parts of a path.
func stripIndices(p string) string {
	var b strings.Builder
	for {
		i := strings.IndexByte(p, '[')
		if i < 0 {
			b.WriteString(p)
			return b.String()
		}
		b.WriteString(p[:i])
		j := strings.IndexByte(p[i:], ']')
		if j < 0 {
			return b.String()
		}
		p = p[i+j+1:]
	}
}
