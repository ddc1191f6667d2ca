package dsn

import (
	"strings"
	"testing"
)

func TestPrepareOriginal(t *testing.T) {
	tests := []struct {
		name          string
		msg           string
		full          bool
		limit         int
		wantHeader    string
		wantBody      string
		wantSize      int
		wantTruncated bool
		wantEightBit  bool
	}{
		{name: "headers only", msg: "A: 1\r\nB: 2\r\n\r\nbody\r\n", limit: 1000,
			wantHeader: "A: 1\r\nB: 2\r\n", wantSize: 12},
		{name: "full message", msg: "A: 1\r\n\r\nbody\r\n", full: true, limit: 1000,
			wantHeader: "A: 1\r\n", wantBody: "body\r\n", wantSize: 14},
		{name: "bare LF becomes CRLF", msg: "A: 1\nB: 2\n\nx\ny", full: true, limit: 1000,
			wantHeader: "A: 1\r\nB: 2\r\n", wantBody: "x\r\ny\r\n", wantSize: 20},
		{name: "bare CR becomes CRLF", msg: "A: 1\rB: 2\r\n\r\nx", full: true, limit: 1000,
			wantHeader: "A: 1\r\nB: 2\r\n", wantBody: "x\r\n", wantSize: 17},
		{name: "no body separator", msg: "A: 1\r\nB: 2", full: true, limit: 1000,
			wantHeader: "A: 1\r\nB: 2\r\n", wantSize: 14},
		{name: "empty header section", msg: "\r\nbody", full: true, limit: 1000,
			wantBody: "body\r\n", wantSize: 8},
		{name: "body cut at a line boundary", msg: "A: 1\r\n\r\nline1\r\nline2\r\n", full: true, limit: 16,
			wantHeader: "A: 1\r\n", wantBody: "line1\r\n", wantSize: 15, wantTruncated: true},
		{name: "headers cut at a line boundary", msg: "A: 1\r\nB: 2\r\n\r\nx", limit: 7,
			wantHeader: "A: 1\r\n", wantSize: 6, wantTruncated: true},
		{name: "eight-bit octets noticed", msg: "S: \xc3\xa9\r\n\r\n", limit: 100,
			wantHeader: "S: \xc3\xa9\r\n", wantSize: 7, wantEightBit: true},
		{name: "eight-bit body ignored for headers", msg: "S: a\r\n\r\n\xff", limit: 100,
			wantHeader: "S: a\r\n", wantSize: 6},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := prepareOriginal([]byte(tc.msg), tc.full, tc.limit)
			if string(got.header) != tc.wantHeader || string(got.body) != tc.wantBody {
				t.Errorf("header, body = %q, %q; want %q, %q", got.header, got.body, tc.wantHeader, tc.wantBody)
			}
			if got.size != tc.wantSize || got.truncated != tc.wantTruncated || got.eightBit != tc.wantEightBit {
				t.Errorf("size, truncated, eightBit = %d, %v, %v; want %d, %v, %v",
					got.size, got.truncated, got.eightBit, tc.wantSize, tc.wantTruncated, tc.wantEightBit)
			}
			if got.size > tc.limit {
				t.Errorf("size %d exceeds limit %d", got.size, tc.limit)
			}
		})
	}
}

func TestNormalizeLineBreaksLongLines(t *testing.T) {
	line := []byte(strings.Repeat("a", 2*chunkBytes+10))
	tests := []struct {
		name     string
		inHeader bool
		prefix   string
	}{
		{name: "header continuation starts with a space", inHeader: true, prefix: " "},
		{name: "body line is just broken", inHeader: false, prefix: ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out := string(normalizeLine(line, tc.inHeader))
			parts := strings.Split(strings.TrimSuffix(out, "\r\n"), "\r\n")
			if len(parts) != 3 {
				t.Fatalf("got %d lines, want 3", len(parts))
			}
			for i, p := range parts {
				if len(p) > maxLineBytes {
					t.Errorf("line %d is %d octets", i, len(p))
				}
				if i > 0 && !strings.HasPrefix(p, tc.prefix+"a") {
					t.Errorf("line %d starts %q, want prefix %q", i, p[:2], tc.prefix)
				}
			}
		})
	}
}
