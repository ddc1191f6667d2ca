package dsn

import (
	"strings"
	"testing"
)

func TestCleanText(t *testing.T) {
	tests := []struct {
		name string
		in   string
		max  int
		want string
	}{
		{name: "plain text unchanged", in: "550 5.1.1 user unknown", max: 100, want: "550 5.1.1 user unknown"},
		{name: "CRLF becomes one space", in: "a\r\nb", max: 100, want: "a b"},
		{name: "controls and runs of space shrink", in: " a\x00\t\x7f  b\x1b ", max: 100, want: "a b"},
		{name: "non-ASCII becomes question marks", in: "gr\u00fc\u00dfe", max: 100, want: "gr??e"},
		{name: "invalid UTF-8 becomes question marks", in: "a\xff\xfeb", max: 100, want: "a??b"},
		{name: "long text is cut with an ellipsis", in: "abcdefghij", max: 8, want: "abcde..."},
		{name: "cut does not end in a space", in: "abcd efghij", max: 8, want: "abcd..."},
		{name: "empty stays empty", in: "\r\n", max: 10, want: ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := cleanText(tc.in, tc.max); got != tc.want {
				t.Errorf("cleanText(%q, %d) = %q, want %q", tc.in, tc.max, got, tc.want)
			}
		})
	}
}

func TestCleanWordAndASCII(t *testing.T) {
	tests := []struct {
		name      string
		in        string
		wantWord  string
		wantASCII string
	}{
		{name: "host name", in: "mx1.example.com", wantWord: "mx1.example.com", wantASCII: "mx1.example.com"},
		{name: "inner space", in: "a b", wantWord: "a?b", wantASCII: "a b"},
		{name: "CRLF", in: "a\r\nb", wantWord: "a??b", wantASCII: "a??b"},
		{name: "UTF-8 rune is one mark", in: "\u00e9", wantWord: "?", wantASCII: "?"},
		{name: "surrounding space trimmed for words", in: " x ", wantWord: "x", wantASCII: " x "},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := cleanWord(tc.in, 100); got != tc.wantWord {
				t.Errorf("cleanWord(%q) = %q, want %q", tc.in, got, tc.wantWord)
			}
			if got := cleanASCII(tc.in, 100); got != tc.wantASCII {
				t.Errorf("cleanASCII(%q) = %q, want %q", tc.in, got, tc.wantASCII)
			}
		})
	}
}

func TestAddressField(t *testing.T) {
	tests := []struct {
		name     string
		typ      string
		addr     string
		wantType string
		wantAddr string
	}{
		{name: "ASCII rfc822", typ: "rfc822", addr: "bob@example.com", wantType: "rfc822", wantAddr: "bob@example.com"},
		{name: "quoted local part keeps its space", typ: "rfc822", addr: `"bob smith"@example.com`,
			wantType: "rfc822", wantAddr: `"bob smith"@example.com`},
		{name: "empty type defaults to rfc822", typ: "", addr: "a@b", wantType: "rfc822", wantAddr: "a@b"},
		{name: "UTF-8 address switches to utf-8 xtext", typ: "rfc822", addr: "j\u00f6rg@b\u00fccher.example",
			wantType: "utf-8", wantAddr: `j\x{F6}rg@b\x{FC}cher.example`},
		{name: "utf-8 type encodes specials", typ: "utf-8", addr: "a+b=c\\d e@x",
			wantType: "utf-8", wantAddr: `a\x{2B}b\x{3D}c\x{5C}d\x{20}e@x`},
		{name: "CRLF in ASCII address", typ: "rfc822", addr: "a\r\nb@x", wantType: "rfc822", wantAddr: "a??b@x"},
		{name: "invalid UTF-8", typ: "rfc822", addr: "a\xffb@x", wantType: "rfc822", wantAddr: "a?b@x"},
		{name: "type loses odd characters", typ: "rfc 822\r\n", addr: "a@b", wantType: "rfc822", wantAddr: "a@b"},
		{name: "emoji beyond the BMP", typ: "rfc822", addr: "\U0001F600@x", wantType: "utf-8", wantAddr: `\x{1F600}@x`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			gotType, gotAddr := addressField(tc.typ, tc.addr)
			if gotType != tc.wantType || gotAddr != tc.wantAddr {
				t.Errorf("addressField(%q, %q) = %q, %q; want %q, %q",
					tc.typ, tc.addr, gotType, gotAddr, tc.wantType, tc.wantAddr)
			}
		})
	}
}

func TestUTF8AddrXtextRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		addr string
	}{
		{name: "ASCII", addr: "plain@example.com"},
		{name: "Latin", addr: "j\u00f6rg@b\u00fccher.example"},
		{name: "CJK", addr: "\u7528\u6237@\u4f8b\u5b50.\u5e7f\u544a"},
		{name: "specials", addr: `a+b=c\d e@x`},
		{name: "astral", addr: "\U0001F600@x"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			enc := encodeUTF8AddrXtext(tc.addr, maxAddrBytes)
			if !isPrintableASCII(enc) || strings.Contains(enc, " ") {
				t.Errorf("encoding %q is not visible ASCII", enc)
			}
			if got := decodeUTF8AddrXtext(enc); got != tc.addr {
				t.Errorf("decode(encode(%q)) = %q", tc.addr, got)
			}
		})
	}
}

func TestDecodeUTF8AddrXtextKeepsMalformed(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{in: `a\x{}b`, want: `a\x{}b`},
		{in: `a\x{ZZ}b`, want: `a\x{ZZ}b`},
		{in: `a\x{D800}b`, want: `a\x{D800}b`}, // a surrogate is no character
		{in: `a\x{41`, want: `a\x{41`},
		{in: `\x{1234567}`, want: `\x{1234567}`},
		{in: "raw \u00fc stays", want: "raw \u00fc stays"},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			if got := decodeUTF8AddrXtext(tc.in); got != tc.want {
				t.Errorf("decode(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestEncodeUTF8AddrXtextStopsAtEscape(t *testing.T) {
	got := encodeUTF8AddrXtext(strings.Repeat("\u00fc", 10), 13)
	if want := `\x{FC}\x{FC}`; got != want {
		t.Errorf("encode with max 13 = %q, want %q", got, want)
	}
}

func TestWriteField(t *testing.T) {
	long := strings.Repeat("w ", 100)
	tests := []struct {
		name      string
		value     string
		wantLines int
		maxLine   int
	}{
		{name: "short value one line", value: "smtp; 550 no", wantLines: 1, maxLine: foldWidth},
		{name: "long text folded", value: long, wantLines: 3, maxLine: foldWidth},
		{name: "huge word split", value: strings.Repeat("x", 2500), wantLines: 3, maxLine: maxLineBytes},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var b strings.Builder
			writeField(&b, "Diagnostic-Code", tc.value)
			out := b.String()
			if !strings.HasSuffix(out, "\r\n") {
				t.Fatalf("field does not end in CRLF: %q", out)
			}
			lines := strings.Split(strings.TrimSuffix(out, "\r\n"), "\r\n")
			if len(lines) != tc.wantLines {
				t.Errorf("got %d lines, want %d: %q", len(lines), tc.wantLines, out)
			}
			for i, l := range lines {
				if len(l) > tc.maxLine {
					t.Errorf("line %d is %d octets, want at most %d", i, len(l), tc.maxLine)
				}
				if i > 0 && !strings.HasPrefix(l, " ") {
					t.Errorf("continuation line %d does not start with a space: %q", i, l)
				}
			}
			unfolded := strings.ReplaceAll(out, "\r\n ", " ")
			if want := "Diagnostic-Code: " + strings.TrimSpace(tc.value) + "\r\n"; tc.name != "huge word split" && unfolded != want {
				t.Errorf("unfolded = %q, want %q", unfolded, want)
			}
		})
	}
}

func TestWrapText(t *testing.T) {
	tests := []struct {
		name   string
		text   string
		width  int
		first  string
		indent string
		want   []string
	}{
		{name: "fits", text: "a b c", width: 10, want: []string{"a b c"}},
		{name: "wraps with indent", text: "aaa bbb ccc", width: 7, indent: "  ",
			want: []string{"aaa bbb", "  ccc"}},
		{name: "first prefix", text: "aaa bbb", width: 7, first: "> ", indent: "> ",
			want: []string{"> aaa", "> bbb"}},
		{name: "empty text gives no lines", text: "  ", width: 7, want: nil},
		{name: "long word alone on its line", text: "a " + strings.Repeat("x", 12) + " b", width: 5,
			want: []string{"a", strings.Repeat("x", 12), "b"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := wrapText(tc.text, tc.width, tc.first, tc.indent)
			if strings.Join(got, "|") != strings.Join(tc.want, "|") || len(got) != len(tc.want) {
				t.Errorf("wrapText = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestIsStatusCode(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{"2.0.0", true}, {"4.7.0", true}, {"5.1.1", true}, {"5.1.10", true}, {"5.999.999", true},
		{"3.1.1", false}, {"5.01.1", false}, {"5.1.01", false}, {"5.1", false}, {"5.1.1.1", false},
		{"5..1", false}, {"5.1.1000", false}, {"", false}, {"550", false}, {"5.a.1", false}, {" 5.1.1", false},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			if got := IsStatusCode(tc.in); got != tc.want {
				t.Errorf("IsStatusCode(%q) = %v, want %v", tc.in, got, tc.want)
			}
		})
	}
}
