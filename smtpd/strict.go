package smtpd

import (
	"bytes"
	"errors"
	"io"
	"sync"
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

// strictChunk is how much the strict reader asks its source for at a time.
const strictChunk = 4 << 10

// maxEmptyReads bounds reads that return neither data nor an error, as
// bufio does, so a broken source cannot spin the reader forever.
const maxEmptyReads = 100

// strictBufs recycles the readers' buffers: one per message otherwise, and
// all of them garbage a moment later.
var strictBufs = sync.Pool{New: func() any { return new([strictChunk]byte) }}

// strictReader passes a message body through only while every CR is
// followed by LF, every LF is preceded by CR, no line (with its CRLF) is
// longer than maxLine and the total stays within maxBytes. On a violation
// it returns what came before and then the error, and never reads its
// source again. It holds nothing back that it has checked: a CR is
// released only after the following LF has been seen, so no bare CR ever
// leaves it.
//
// It checks the byte stream, not chunks, so a CRLF split across two BDAT
// chunks (RFC 3030) passes and a CR ending one chunk before a non-LF fails.
// Bytes are checked in chunks of strictChunk in one tight loop: the body
// of every message passes through here.
type strictReader struct {
	src      io.Reader
	buf      *[strictChunk]byte // nil once released
	off, end int                // buf[off:end] is read but not yet passed on
	srcErr   error              // the source's error, due after buf[off:end]
	maxLine  int                // longest line including CRLF
	maxBytes int64              // longest body
	lineLen  int                // bytes on the current line, CR included
	total    int64
	prevCR   bool
	err      error
}

func newStrictReader(r io.Reader, maxLine int, maxBytes int64) *strictReader {
	return &strictReader{src: r, buf: strictBufs.Get().(*[strictChunk]byte), maxLine: maxLine, maxBytes: maxBytes}
}

// release returns the reader's buffer for reuse; the reader must not be
// read again.
func (s *strictReader) release() {
	if s.buf != nil {
		strictBufs.Put(s.buf)
		s.buf = nil
	}
	if s.err == nil {
		s.err = io.ErrClosedPipe
	}
}

// Read implements io.Reader. Source errors, such as go-smtp's size cap or a
// timeout, come through unchanged: swallowing one would accept a truncated
// message.
func (s *strictReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) && s.err == nil {
		k, err := s.scan(p[n:])
		n += k
		if err == errNeedMore {
			if n > 0 {
				break // return what is ready rather than wait for the source
			}
			s.fill()
			continue
		}
		s.err = err
	}
	if n > 0 {
		return n, nil
	}
	return 0, s.err
}

// errNeedMore is scan asking for more input: it has nothing it may pass
// on yet (an empty buffer, or a CR whose next byte is still unread).
var errNeedMore = errors.New("smtpd: strict reader needs more input")

// fill reads more from the source behind what is pending, moving that to
// the front of the buffer first.
func (s *strictReader) fill() {
	if s.srcErr != nil {
		return
	}
	if s.off > 0 {
		s.end = copy(s.buf[:], s.buf[s.off:s.end])
		s.off = 0
	}
	for range maxEmptyReads {
		k, err := s.src.Read(s.buf[s.end:])
		s.end += k
		if err != nil {
			s.srcErr = err
		}
		if k > 0 || err != nil {
			return
		}
	}
	s.srcErr = io.ErrNoProgress
}

// scan checks pending bytes and copies those that pass into dst. It stops
// at the first violation and returns it after the bytes before it; once
// the source is done and nothing is pending it returns the source's error.
func (s *strictReader) scan(dst []byte) (int, error) {
	src := s.buf[s.off:s.end]
	lim := min(len(src), len(dst))
	k := 0
	var err error
	for k < lim {
		// Most bytes are neither CR nor LF: pass them in runs.
		if n := plainRun(src[k:lim]); n > 0 {
			m := s.countRun(n)
			k += copy(dst[k:], src[k:k+m])
			if m < n {
				err = s.runLimit()
				break
			}
			continue
		}
		c := src[k]
		if err = s.checkEOL(src, k); err != nil {
			break
		}
		if err = s.count(c); err != nil {
			break
		}
		dst[k] = c
		k++
	}
	s.off += k
	if err == nil && k == 0 && len(dst) > 0 {
		err = errNeedMore
		if s.srcErr != nil {
			err = s.srcErr
		}
	}
	return k, err
}

// plainRun returns how many bytes at the start of b are neither CR nor LF.
func plainRun(b []byte) int {
	n := len(b)
	if i := bytes.IndexByte(b, '\r'); i >= 0 {
		n = i
	}
	if i := bytes.IndexByte(b[:n], '\n'); i >= 0 {
		n = i
	}
	return n
}

// countRun applies the limits to a run of n bytes that are neither CR nor
// LF, as count would one by one, and returns how many of them may pass.
// When that is fewer than n, runLimit says which limit stopped the run.
func (s *strictReader) countRun(n int) int {
	m := min(int64(n), s.maxBytes-s.total, int64(s.maxLine-1-s.lineLen))
	m = max(m, 0)
	if m > 0 {
		s.total += m
		s.lineLen += int(m)
		s.prevCR = false
	}
	return int(m)
}

// runLimit is the error for the byte countRun stopped at: the size cap if
// it is reached there (count checks it first), else the line length.
func (s *strictReader) runLimit() error {
	if s.total+1 > s.maxBytes {
		return errTooBig
	}
	return errLineTooLong
}

// checkEOL decides whether the CR or LF at src[i] may be passed on: a CR
// only when the next byte is known to be LF, an LF only after a CR.
func (s *strictReader) checkEOL(src []byte, i int) error {
	if src[i] == '\n' {
		if !s.prevCR {
			return errBareLF
		}
		return nil
	}
	switch {
	case i+1 < len(src):
		if src[i+1] != '\n' {
			return errBareCR
		}
		return nil
	case s.srcErr == nil:
		return errNeedMore
	case s.srcErr == io.EOF:
		return errBareCR
	default:
		return s.srcErr
	}
}

// count applies the size and line limits to c, which is about to pass.
func (s *strictReader) count(c byte) error {
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
