package dsn

import "bytes"

// chunkBytes is where an over-long line of the original is broken, leaving
// room for the space that starts a header continuation line.
const chunkBytes = 990

// returned is the part of the original message that goes back to the sender.
type returned struct {
	header    []byte // header section, CRLF line endings, without the blank line
	body      []byte // body, CRLF line endings; empty unless the whole message returns
	size      int    // octets returned: header, blank line when full, body
	truncated bool   // something was left out to honour the limit
	eightBit  bool   // some octet is above 127
}

// prepareOriginal cuts the original message into what a report returns. The
// header section is always returned; with full also the body, both within
// limit octets and cut at a line boundary, so the sender gets whole lines.
//
// The result is normalised for safe transport whatever the input: every line
// ends in CRLF (bare LF and bare CR become CRLF), NUL becomes '?', and lines
// longer than RFC 5322's 998 octets are broken (with a leading space in the
// header section, so the break reads as folding, RFC 5322 section 2.2.3).
func prepareOriginal(msg []byte, full bool, limit int) returned {
	var r returned
	reserve := 0 // room for the blank line that precedes a returned body
	if full {
		reserve = 2
	}
	rest := msg
	inHeader := true
	for len(rest) > 0 {
		var line []byte
		line, rest = nextLine(rest)
		if inHeader && len(line) == 0 {
			inHeader = false
			if !full {
				break
			}
			continue
		}
		norm := normalizeLine(line, inHeader)
		if r.size+len(norm)+reserve > limit {
			r.truncated = true
			break
		}
		if inHeader {
			r.header = append(r.header, norm...)
		} else {
			r.body = append(r.body, norm...)
		}
		r.size = len(r.header) + len(r.body)
	}
	r.size += reserve
	r.eightBit = hasEightBit(r.header) || hasEightBit(r.body)
	return r
}

// nextLine returns the first line of b without its terminator (CRLF, LF or a
// lone CR) and what follows it.
func nextLine(b []byte) (line, rest []byte) {
	i := bytes.IndexAny(b, "\r\n")
	if i < 0 {
		return b, nil
	}
	if b[i] == '\r' && i+1 < len(b) && b[i+1] == '\n' {
		return b[:i], b[i+2:]
	}
	return b[:i], b[i+1:]
}

// normalizeLine returns line with NUL replaced and CRLF appended, broken into
// pieces of at most chunkBytes when it is too long.
func normalizeLine(line []byte, inHeader bool) []byte {
	out := make([]byte, 0, len(line)+2)
	for len(line) > chunkBytes {
		out = appendClean(out, line[:chunkBytes])
		out = append(out, '\r', '\n')
		if inHeader {
			out = append(out, ' ')
		}
		line = line[chunkBytes:]
	}
	out = appendClean(out, line)
	return append(out, '\r', '\n')
}

// appendClean appends b with NUL octets, which RFC 5322 section 4.1 lists
// among the obsolete and RFC 5321 forbids in mail data, replaced by '?'.
func appendClean(out, b []byte) []byte {
	start := len(out)
	out = append(out, b...)
	for i := start; i < len(out); i++ {
		if out[i] == 0 {
			out[i] = '?'
		}
	}
	return out
}

func hasEightBit(b []byte) bool {
	for _, c := range b {
		if c >= 0x80 {
			return true
		}
	}
	return false
}
