package delivery

import (
	"bufio"
	"bytes"
	"net/textproto"
)

// writeData writes body as DATA content (RFC 5321 section 4.5.2): a period
// that starts a line is doubled and the content ends with CRLF "." CRLF;
// then it flushes w. The output is byte for byte what textproto's
// DotWriter produces, but a body whose line ends are all CRLF (every body
// the inbound strict reader accepted) is copied in runs between the lines
// that start with a period instead of a byte at a time, so a 50 KB body is
// a handful of copies and one or two writes. Any other body (a bare CR or
// LF, or no final CRLF, as a report built here might have) goes through
// the DotWriter itself.
func writeData(w *bufio.Writer, body []byte) error {
	if !cleanCRLF(body) {
		dw := textproto.NewWriter(w).DotWriter()
		if _, err := dw.Write(body); err != nil {
			return err
		}
		return dw.Close()
	}
	start := 0
	if body[0] == '.' {
		w.WriteByte('.')
	}
	for i := 0; ; {
		j := bytes.Index(body[i:], lfDot)
		if j < 0 {
			break
		}
		dot := i + j + 1
		w.Write(body[start:dot])
		w.WriteByte('.')
		start, i = dot, dot
	}
	w.Write(body[start:])
	w.Write(dotCRLF)
	return w.Flush()
}

var (
	lfDot   = []byte("\n.")
	dotCRLF = []byte(".\r\n")
)

// cleanCRLF reports whether body is not empty, ends with CRLF, and has no
// CR or LF outside a CRLF pair.
func cleanCRLF(body []byte) bool {
	n := len(body)
	if n < 2 || body[n-2] != '\r' || body[n-1] != '\n' {
		return false
	}
	lfs := 0
	for i := 0; ; {
		j := bytes.IndexByte(body[i:], '\n')
		if j < 0 {
			break
		}
		lf := i + j
		if lf == 0 || body[lf-1] != '\r' {
			return false
		}
		lfs++
		i = lf + 1
	}
	// Every LF has its own CR just before it; with as many CRs as LFs in
	// all, there is no other CR.
	return bytes.Count(body, []byte{'\r'}) == lfs
}
