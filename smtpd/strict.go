package smtpd

import (
	"bufio"
	"errors"
	"io"
)

// Errors of the strict body reader. RFC 5321 2.3.8 says CR and LF must only
// occur together as CRLF, and a receiver that accepts a lone one invites
// SMTP smuggling (CVE-2023-51764 and kin): the next hop may see a message
// end where we saw none.
var (
	errBareCR      = errors.New("smtpd: bare CR in message body")
	errBareLF      = errors.New("smtpd: bare LF in message body")
	errLineTooLong = errors.New("smtpd: message line too long")
	errTooBig      = errors.New("smtpd: message too big")
)

// strictReader passes a message body through only while every CR is
// followed by LF, every LF is preceded by CR, no line (with its CRLF) is
// longer than maxLine and the total stays within maxBytes. On a violation
// it returns what came before and then the error, and never reads its
// source again. It holds nothing back: a CR is released only after the
// following LF has been seen, so no bare CR ever leaves it.
//
// It checks the byte stream, not chunks, so a CRLF split across two BDAT
// chunks (RFC 3030) passes and a CR ending one chunk before a non-LF fails.
type strictReader struct {
	r        *bufio.Reader
	maxLine  int   // longest line including CRLF
	maxBytes int64 // longest body
	lineLen  int   // bytes on the current line, CR included
	total    int64
	prevCR   bool
	err      error
}

func newStrictReader(r io.Reader, maxLine int, maxBytes int64) *strictReader {
	return &strictReader{r: bufio.NewReaderSize(r, 16<<10), maxLine: maxLine, maxBytes: maxBytes}
}

// Read implements io.Reader. Source errors, such as go-smtp's size cap or a
// timeout, come through unchanged: swallowing one would accept a truncated
// message.
func (s *strictReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) && s.err == nil {
		c, err := s.r.ReadByte()
		if err != nil {
			s.err = err
			break
		}
		if err := s.check(c); err != nil {
			s.err = err
			break
		}
		p[n] = c
		n++
	}
	if n > 0 {
		return n, nil
	}
	return 0, s.err
}

// check decides whether c may be passed on.
func (s *strictReader) check(c byte) error {
	switch c {
	case '\r':
		next, err := s.r.Peek(1)
		if err != nil && err != io.EOF {
			return err
		}
		if err == io.EOF || next[0] != '\n' {
			return errBareCR
		}
	case '\n':
		if !s.prevCR {
			return errBareLF
		}
	}
	s.prevCR = c == '\r'
	need := int64(1)
	if c == '\r' {
		need = 2 // a CR goes out only with room for its LF
	}
	if s.total+need > s.maxBytes {
		return errTooBig
	}
	s.total++
	if c == '\n' {
		s.lineLen = 0
		return nil
	}
	// The LF still to come makes the line one byte longer than lineLen.
	if s.lineLen++; s.lineLen+1 > s.maxLine {
		return errLineTooLong
	}
	return nil
}
