package smtpd

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"testing"
	"testing/iotest"
)

// refStrictReader is the first, byte-at-a-time strict reader, kept as the
// reference the chunked one must agree with: same bytes out, same error.
type refStrictReader struct {
	r        *bufio.Reader
	maxLine  int
	maxBytes int64
	lineLen  int
	total    int64
	prevCR   bool
	err      error
}

func (s *refStrictReader) Read(p []byte) (int, error) {
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

func (s *refStrictReader) check(c byte) error {
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
		need = 2
	}
	if s.total+need > s.maxBytes {
		return errTooBig
	}
	s.total++
	if c == '\n' {
		s.lineLen = 0
		return nil
	}
	if s.lineLen++; s.lineLen+1 > s.maxLine {
		return errLineTooLong
	}
	return nil
}

// strictSource builds the source of a differential run: the input, read
// whole or a byte at a time, then ending in EOF or in errCap.
func strictSource(in []byte, oneByte, capErr bool) io.Reader {
	var src io.Reader = bytes.NewReader(in)
	if capErr {
		src = io.MultiReader(src, iotest.ErrReader(errStrictCap))
	}
	if oneByte {
		src = iotest.OneByteReader(src)
	}
	return src
}

var errStrictCap = errors.New("size cap from the source")

// compareStrict runs both readers over the same input and reports any
// difference in output or error.
func compareStrict(t *testing.T, in []byte, maxLine int, maxBytes int64, oneByte, capErr bool) {
	t.Helper()
	got := newStrictReader(strictSource(in, oneByte, capErr), maxLine, maxBytes)
	gotOut, gotErr := io.ReadAll(got)
	got.release()
	ref := &refStrictReader{r: bufio.NewReader(strictSource(in, oneByte, capErr)), maxLine: maxLine, maxBytes: maxBytes}
	wantOut, wantErr := io.ReadAll(ref)
	if !bytes.Equal(gotOut, wantOut) || !errors.Is(gotErr, wantErr) || !errors.Is(wantErr, gotErr) {
		t.Fatalf("input %q (maxLine %d, maxBytes %d, oneByte %v, capErr %v):\n got %q, %v\nwant %q, %v",
			in, maxLine, maxBytes, oneByte, capErr, gotOut, gotErr, wantOut, wantErr)
	}
}

func TestStrictReaderMatchesReference(t *testing.T) {
	long := bytes.Repeat([]byte("0123456789abcdef\r\n"), 1000) // longer than a chunk
	cases := []struct {
		name     string
		in       []byte
		maxLine  int
		maxBytes int64
	}{
		{name: "long clean body", in: long, maxLine: 1000, maxBytes: 1 << 20},
		{name: "bare LF after a chunk", in: append(append([]byte{}, long...), "x\ny"...), maxLine: 1000, maxBytes: 1 << 20},
		{name: "bare CR at a chunk edge", in: append(bytes.Repeat([]byte("a"), strictChunk-1), "\rb\r\n"...), maxLine: 1 << 20, maxBytes: 1 << 20},
		{name: "CRLF across a chunk edge", in: append(bytes.Repeat([]byte("a"), strictChunk-1), "\r\nb\r\n"...), maxLine: 1 << 20, maxBytes: 1 << 20},
		{name: "cap inside a long body", in: long, maxLine: 1000, maxBytes: 5000},
		{name: "line limit inside a long body", in: append(append([]byte{}, long...), bytes.Repeat([]byte("z"), 50)...), maxLine: 40, maxBytes: 1 << 20},
		{name: "CR at the very end", in: []byte("abc\r"), maxLine: 1000, maxBytes: 1000},
		{name: "empty", in: nil, maxLine: 1000, maxBytes: 1000},
	}
	for _, tc := range cases {
		for _, oneByte := range []bool{false, true} {
			for _, capErr := range []bool{false, true} {
				t.Run(tc.name, func(t *testing.T) {
					compareStrict(t, tc.in, tc.maxLine, tc.maxBytes, oneByte, capErr)
				})
			}
		}
	}
}

func TestStrictReaderReturnsWithoutWaiting(t *testing.T) {
	// A source that has given one line and would block: the line comes
	// out of the first Read instead of waiting for more.
	pr, pw := io.Pipe()
	defer pw.Close()
	go func() { _, _ = pw.Write([]byte("hello\r\n")) }()
	r := newStrictReader(pr, 1000, 1<<20)
	defer r.release()
	buf := make([]byte, 64)
	n, err := r.Read(buf)
	if err != nil || string(buf[:n]) != "hello\r\n" {
		t.Fatalf("Read: got %q, %v; want %q, nil", buf[:n], err, "hello\r\n")
	}
}

func FuzzStrictReaderMatchesReference(f *testing.F) {
	f.Add([]byte("a\r\nb\r\n"), uint16(1000), uint16(100), false, false)
	f.Add([]byte("a\nb"), uint16(1000), uint16(100), true, true)
	f.Add([]byte("a\r.\r\n"), uint16(5), uint16(3), true, false)
	f.Add([]byte("ab\r"), uint16(5), uint16(30), false, true)
	f.Add(bytes.Repeat([]byte("x\r\n"), 2000), uint16(10), uint16(6000), false, false)
	f.Fuzz(func(t *testing.T, in []byte, maxLine, maxBytes uint16, oneByte, capErr bool) {
		if maxLine < 2 {
			maxLine = 2
		}
		compareStrict(t, in, int(maxLine), int64(maxBytes), oneByte, capErr)
	})
}
