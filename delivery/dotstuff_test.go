package delivery

import (
	"bufio"
	"bytes"
	"net/textproto"
	"strconv"
	"strings"
	"testing"
)

// dotWriterOutput is what textproto's DotWriter makes of body.
func dotWriterOutput(t testing.TB, body []byte) []byte {
	var out bytes.Buffer
	w := bufio.NewWriter(&out)
	dw := textproto.NewWriter(w).DotWriter()
	if _, err := dw.Write(body); err != nil {
		t.Fatal(err)
	}
	if err := dw.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

func writeDataOutput(t testing.TB, body []byte) []byte {
	var out bytes.Buffer
	w := bufio.NewWriterSize(&out, 64) // small, so long runs bypass the buffer
	if err := writeData(w, body); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

func TestWriteData(t *testing.T) {
	long := strings.Repeat("x", 300)
	for _, tc := range []struct{ name, in, want string }{
		{"plain", "a\r\nb\r\n", "a\r\nb\r\n.\r\n"},
		{"leading dot", ".a\r\n", "..a\r\n.\r\n"},
		{"dot lines", "a\r\n.\r\n..b\r\n.\r\n", "a\r\n..\r\n...b\r\n..\r\n.\r\n"},
		{"long run", long + "\r\n." + long + "\r\n", long + "\r\n.." + long + "\r\n.\r\n"},
		{"no final CRLF", "a\r\nb", "a\r\nb\r\n.\r\n"},
		{"bare LF", "a\nb\r\n", "a\r\nb\r\n.\r\n"},
		{"bare CR", "a\rb\r\n", "a\rb\r\n.\r\n"},
		{"empty", "", "\r\n.\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := writeDataOutput(t, []byte(tc.in))
			if string(got) != tc.want {
				t.Errorf("writeData(%q) = %q, want %q", tc.in, got, tc.want)
			}
			if ref := dotWriterOutput(t, []byte(tc.in)); !bytes.Equal(got, ref) {
				t.Errorf("writeData(%q) = %q, textproto gives %q", tc.in, got, ref)
			}
		})
	}
}

// FuzzWriteDataMatchesDotWriter: writeData's output is textproto
// DotWriter's for every body.
func FuzzWriteDataMatchesDotWriter(f *testing.F) {
	for _, s := range []string{"a\r\n", ".\r\n", "a\r\n.b\r\n", "\r\n\r\n.", "a\n.b", "\r.\r\n", "\r\r\n", ""} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		got, want := writeDataOutput(t, body), dotWriterOutput(t, body)
		if !bytes.Equal(got, want) {
			t.Fatalf("writeData(%q) = %q, textproto gives %q", body, got, want)
		}
	})
}

func BenchmarkWriteData(b *testing.B) {
	line := strings.Repeat("y", 76) + "\r\n"
	for _, size := range []int{2 << 10, 50 << 10} {
		body := []byte(strings.Repeat(line, size/len(line)) + ".dot\r\n")
		for _, impl := range []struct {
			name string
			fn   func(*bufio.Writer, []byte) error
		}{
			{"writeData", writeData},
			{"DotWriter", func(w *bufio.Writer, p []byte) error {
				dw := textproto.NewWriter(w).DotWriter()
				dw.Write(p)
				return dw.Close()
			}},
		} {
			b.Run(impl.name+"/"+strconv.Itoa(size>>10)+"KiB", func(b *testing.B) {
				w := bufio.NewWriter(discard{})
				b.SetBytes(int64(len(body)))
				for b.Loop() {
					if err := impl.fn(w, body); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
