package smtpd

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"testing/iotest"

	"github.com/emersion/go-smtp"
)

func TestStrictReader(t *testing.T) {
	capErr := errors.New("size cap from go-smtp")
	cases := []struct {
		name    string
		in      string
		srcErr  error // returned by the source after in
		maxLine int
		max     int64
		wantOut string
		wantErr error
	}{
		{name: "clean", in: "a\r\nb\r\n", wantOut: "a\r\nb\r\n"},
		{name: "empty", in: "", wantOut: ""},
		{name: "bare LF", in: "a\r\nb\nc\r\n", wantOut: "a\r\nb", wantErr: errBareLF},
		{name: "bare LF first", in: "\n", wantOut: "", wantErr: errBareLF},
		{name: "bare CR", in: "a\rb\r\n", wantOut: "a", wantErr: errBareCR},
		{name: "CR CR LF", in: "a\r\r\n", wantOut: "a", wantErr: errBareCR},
		{name: "CR at end", in: "a\r\nb\r", wantOut: "a\r\nb", wantErr: errBareCR},
		{name: "LF dot CRLF", in: "a\n.\r\n", wantOut: "a", wantErr: errBareLF},
		{name: "line at limit", in: "12345678\r\n", maxLine: 10, wantOut: "12345678\r\n"},
		{name: "line over limit", in: "123456789\r\n", maxLine: 10, wantOut: "123456789", wantErr: errLineTooLong},
		{name: "size at cap", in: "ab\r\n", max: 4, wantOut: "ab\r\n"},
		{name: "size over cap", in: "abcd\r\n", max: 4, wantOut: "abcd", wantErr: errTooBig},
		{name: "cap between CR and LF", in: "abc\r\n", max: 4, wantOut: "abc", wantErr: errTooBig},
		{name: "source error passes through", in: "ab\r\n", srcErr: capErr, wantOut: "ab\r\n", wantErr: capErr},
		{name: "source error right after CR", in: "ab\r", srcErr: smtp.ErrDataTooLarge, wantOut: "ab", wantErr: smtp.ErrDataTooLarge},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.maxLine == 0 {
				tc.maxLine = 1000
			}
			if tc.max == 0 {
				tc.max = 1 << 20
			}
			var src io.Reader = bytes.NewReader([]byte(tc.in))
			if tc.srcErr != nil {
				src = io.MultiReader(src, iotest.ErrReader(tc.srcErr))
			}
			// One byte at a time: a CR and its LF arrive in separate reads.
			r := newStrictReader(iotest.OneByteReader(src), tc.maxLine, tc.max)
			out, err := io.ReadAll(r)
			if string(out) != tc.wantOut {
				t.Errorf("output: got %q, want %q", out, tc.wantOut)
			}
			if !errors.Is(err, tc.wantErr) {
				t.Errorf("error: got %v, want %v", err, tc.wantErr)
			}
		})
	}
}

func TestStrictReaderStopsReading(t *testing.T) {
	src := bytes.NewReader([]byte("a\nmore data that must stay unread"))
	r := newStrictReader(iotest.OneByteReader(src), 1000, 1<<20)
	if _, err := io.ReadAll(r); !errors.Is(err, errBareLF) {
		t.Fatalf("error: got %v, want errBareLF", err)
	}
	if _, err := r.Read(make([]byte, 10)); !errors.Is(err, errBareLF) {
		t.Errorf("second read: got %v, want errBareLF again", err)
	}
}
