package smtpd

import (
	"bytes"
)

// maxReceived is the most Received fields a message may arrive with. RFC
// 5321 6.3 asks for a hop limit to break loops and says 100 is a suitable
// one; Postfix (hopcount_limit) and we use 50.
const maxReceived = 50

// span is a byte range [start, end) of a message.
type span struct{ start, end int }

// headerScan is what sluice needs from a header section (RFC 5322 2.2):
// the number of Received fields, the first priority field's value, and
// where every priority field lies so that they can be removed.
type headerScan struct {
	received int
	priority []byte // unfolded value of the first priority field
	found    bool
	fields   []span // every priority field, continuation lines included

	name       []byte // priority field name
	inField    bool   // a field has started (continuations are allowed)
	inPriority bool   // the current field is a priority field
	first      bool   // the current field is the first priority field
}

// scanHeader reads the header section of body, whose lines all end in CRLF.
// The section ends at the first empty line; it also ends, conservatively,
// at the first line that is neither a field nor a continuation, so that
// nothing past it is ever taken for a header.
func scanHeader(body []byte, priorityName string) headerScan {
	h := headerScan{name: []byte(priorityName)}
	for off := 0; off < len(body); {
		end := len(body)
		if i := bytes.IndexByte(body[off:], '\n'); i >= 0 {
			end = off + i + 1
		}
		if !h.line(body[off:end], span{start: off, end: end}) {
			break
		}
		off = end
	}
	return h
}

// line takes one header line at sp and reports whether the header goes on.
func (h *headerScan) line(raw []byte, sp span) bool {
	line := bytes.TrimSuffix(raw, crlf)
	switch {
	case len(line) == 0:
		return false
	case line[0] == ' ' || line[0] == '\t':
		if !h.inField {
			return false
		}
		if h.inPriority {
			h.fields[len(h.fields)-1].end = sp.end
			if h.first {
				// Unfolding removes only the CRLF (RFC 5322 2.2.3).
				h.priority = append(h.priority, line...)
			}
		}
		return true
	}
	name, value, ok := splitField(line)
	if !ok {
		return false
	}
	h.inField = true
	h.inPriority = bytes.EqualFold(name, h.name)
	if bytes.EqualFold(name, []byte("Received")) {
		h.received++
	}
	if h.inPriority {
		h.fields = append(h.fields, sp)
		h.first = !h.found
		if h.first {
			h.found = true
			h.priority = append([]byte(nil), value...)
		}
	}
	return true
}

// splitField splits "Name: value". The name is printable ASCII without
// colon; white space before the colon is tolerated (RFC 5322 4.5.8).
func splitField(line []byte) (name, value []byte, ok bool) {
	colon := bytes.IndexByte(line, ':')
	if colon <= 0 {
		return nil, nil, false
	}
	name = bytes.TrimRight(line[:colon], " \t")
	if len(name) == 0 {
		return nil, nil, false
	}
	for _, c := range name {
		if c < 33 || c > 126 {
			return nil, nil, false
		}
	}
	return name, line[colon+1:], true
}

// without returns prefix followed by body with the given ascending,
// disjoint spans removed, in a new slice of exactly that size.
func without(prefix string, body []byte, spans []span) []byte {
	size := len(prefix) + len(body)
	for _, sp := range spans {
		size -= sp.end - sp.start
	}
	out := make([]byte, 0, size)
	out = append(out, prefix...)
	prev := 0
	for _, sp := range spans {
		out = append(out, body[prev:sp.start]...)
		prev = sp.end
	}
	return append(out, body[prev:]...)
}
