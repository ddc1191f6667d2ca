package smtpd

import (
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"testing/iotest"
	"testing/synctest"
	"time"
)

func FuzzStrictReader(f *testing.F) {
	f.Add([]byte("a\r\nb\r\n"), uint16(1000), uint16(100), false)
	f.Add([]byte("a\nb"), uint16(1000), uint16(100), true)
	f.Add([]byte("a\r.\r\n"), uint16(5), uint16(3), true)
	f.Add([]byte("\r\n\r\r\n"), uint16(2), uint16(10), false)
	f.Add([]byte(strings.Repeat("x", 40)+"\r\n"), uint16(10), uint16(1000), true)
	f.Fuzz(func(t *testing.T, in []byte, maxLine, maxBytes uint16, oneByte bool) {
		if maxLine < 2 {
			maxLine = 2
		}
		var src io.Reader = bytes.NewReader(in)
		if oneByte {
			src = iotest.OneByteReader(src)
		}
		out, err := io.ReadAll(newStrictReader(src, int(maxLine), int64(maxBytes)))
		if !bytes.HasPrefix(in, out) {
			t.Fatalf("output %q is not a prefix of the input %q", out, in)
		}
		if int64(len(out)) > int64(maxBytes) {
			t.Fatalf("output of %d bytes exceeds the cap %d", len(out), maxBytes)
		}
		for i, c := range out {
			switch {
			case c == '\r' && (i+1 >= len(out) || out[i+1] != '\n'):
				t.Fatalf("bare CR at %d in output %q", i, out)
			case c == '\n' && (i == 0 || out[i-1] != '\r'):
				t.Fatalf("bare LF at %d in output %q", i, out)
			}
		}
		for _, line := range bytes.SplitAfter(out, []byte("\n")) {
			if len(line) > int(maxLine) {
				t.Fatalf("line of %d bytes exceeds %d: %q", len(line), maxLine, line)
			}
		}
		if err == nil && !bytes.Equal(out, in) {
			t.Fatalf("no error but output %q differs from input %q", out, in)
		}
	})
}

func FuzzParsePriority(f *testing.F) {
	for _, s := range []string{"1", "5", "2.5", " 3 ", "0", "-1", "abc", "1e3", "NaN", "1.0001", "99999999999"} {
		f.Add(s, uint32(10000))
	}
	f.Fuzz(func(t *testing.T, v string, maxMilli uint32) {
		m, ok := ParsePriority(v, maxMilli)
		if !ok {
			if m != 0 {
				t.Fatalf("ParsePriority(%q, %d): not ok but milli %d", v, maxMilli, m)
			}
			return
		}
		if m < 1000 || m > maxMilli {
			t.Fatalf("ParsePriority(%q, %d) = %d, outside [1000, %d]", v, maxMilli, m, maxMilli)
		}
		if back, ok := ParsePriority(formatMilli(m), maxMilli); !ok || back != m {
			t.Fatalf("round trip of %d via %q: got %d, %v", m, formatMilli(m), back, ok)
		}
	})
}

// panicLog records log messages that report a recovered panic; go-smtp
// recovers panics in session methods and only logs them.
type panicLog struct {
	mu     sync.Mutex
	panics []string
}

func (p *panicLog) Enabled(context.Context, slog.Level) bool { return true }
func (p *panicLog) WithAttrs([]slog.Attr) slog.Handler       { return p }
func (p *panicLog) WithGroup(string) slog.Handler            { return p }
func (p *panicLog) Handle(_ context.Context, r slog.Record) error {
	if strings.Contains(r.Message, "panic") {
		p.mu.Lock()
		p.panics = append(p.panics, r.Message)
		p.mu.Unlock()
	}
	return nil
}

var (
	fuzzTLSOnce sync.Once
	fuzzTLS     *tls.Config
)

// FuzzSession feeds arbitrary bytes to a session over net.Pipe inside a
// synctest bubble, where the read timeouts pass in no real time. The
// session must not panic, must greet, and must end (by closing) on its own.
func FuzzSession(f *testing.F) {
	seeds := []string{
		"EHLO a.test\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<bounces+1@mx.test>\r\nDATA\r\nSubject: x\r\n\r\nhi\r\n.\r\nQUIT\r\n",
		"EHLO a\r\nMAIL FROM:<> RET=HDRS ENVID=x\r\nRCPT TO:<bounces+2@mx.test> NOTIFY=SUCCESS ORCPT=rfc822;a@b\r\nBDAT 4\r\nab\r\nBDAT 3 LAST\r\nc\r\n",
		"EHLO a\r\nMAIL FROM:<>\r\nRCPT TO:<bounces+3@mx.test>\r\nDATA\r\nx\n.\r\nMAIL FROM:<e@v.il>\r\n.\r\n",
		"EHLO a\r\nSTARTTLS\r\nNOOP\r\n",
		"HELO a\r\nMAIL FROM:<a\x00b@c.d>\r\nRCPT TO:<x@[1.2.3.4]>\r\nRSET\r\nBDAT 999999999 LAST\r\n",
		"EHLO a\r\nMAIL FROM:<>\r\nRCPT TO:<bounces+4@mx.test>\r\nBDAT 4\r\nab\r\rBDAT 2 LAST\r\nx\n",
		"\r\n\r\nEHLO\r\nAUTH PLAIN AGFAYg==\r\nVRFY x\r\nQUIT\r\n",
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		fuzzTLSOnce.Do(func() { fuzzTLS, _ = testTLS(t) })
		synctest.Test(t, func(t *testing.T) { runFuzzSession(t, in, fuzzTLS) })
	})
}

func runFuzzSession(t *testing.T, in []byte, tlsConf *tls.Config) {
	plog := &panicLog{}
	o := testOptions(t, &fakeEnqueuer{}, &fakeIntake{})
	o.Logger = slog.New(plog)
	o.MaxMessageBytes = 4096
	o.MaxRecipients = 5
	o.ReadTimeout = time.Second
	o.WriteTimeout = time.Second
	o.TLSConfig = tlsConf
	o.Admitter = fakeAdmitter{deny: map[string]bool{"bounces+9@mx.test": true}}
	srv, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	pl := newPipeListener()
	served := make(chan error, 1)
	go func() { served <- srv.Serve(pl) }()
	cli, ok := pl.dial()
	if !ok {
		t.Fatal("listener closed")
	}
	wrote := make(chan struct{})
	go func() {
		defer close(wrote)
		_, _ = cli.Write(in) // fails once the server closes; that is fine
	}()
	out, _ := io.ReadAll(cli) // returns when the server closes the connection
	_ = cli.Close()
	<-wrote
	if err := srv.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if err := <-served; err != nil {
		t.Errorf("Serve: %v", err)
	}
	if !bytes.HasPrefix(out, []byte("220 mx.test ESMTP")) {
		t.Errorf("no greeting; got %q", abbrev(string(out)))
	}
	if len(plog.panics) > 0 {
		t.Fatalf("session panicked: %q", plog.panics)
	}
}
