package testmx

import (
	"crypto/tls"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

const body = "From: a@example.org\r\nTo: b@example.com\r\nSubject: hi\r\n\r\nhello\r\n"

// dial opens a go-smtp client with short timeouts.
func dial(t *testing.T, addr string) *smtp.Client {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	c := smtp.NewClient(conn)
	c.CommandTimeout = 2 * time.Second
	c.SubmissionTimeout = 2 * time.Second
	t.Cleanup(func() { c.Close() })
	return c
}

// send greets and runs one transaction; it returns the first error.
func send(t *testing.T, c *smtp.Client, to ...string) error {
	t.Helper()
	if err := c.Hello("client.test"); err != nil {
		return err
	}
	return transaction(c, to...)
}

func transaction(c *smtp.Client, to ...string) error {
	if err := c.Mail("a@example.org", nil); err != nil {
		return err
	}
	for _, r := range to {
		if err := c.Rcpt(r, nil); err != nil {
			return err
		}
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := w.Write([]byte(body)); err != nil {
		return err
	}
	return w.Close()
}

func smtpCode(err error) int {
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		return se.Code
	}
	return 0
}

func TestClusterSharesPort(t *testing.T) {
	port, servers := StartCluster(t, "127.0.0.2", "127.0.0.3")
	if len(servers) != 2 {
		t.Fatalf("servers: got %d, want 2", len(servers))
	}
	for i, s := range servers {
		if s.Port() != port {
			t.Errorf("server %d port: got %d, want %d", i, s.Port(), port)
		}
		if err := send(t, dial(t, s.Addr()), "b@example.com"); err != nil {
			t.Fatalf("send to %s: %v", s.Addr(), err)
		}
		msgs := s.WaitMessages(t, 1, 5*time.Second)
		m := msgs[0]
		if m.From != "a@example.org" || len(m.To) != 1 || m.To[0] != "b@example.com" {
			t.Errorf("envelope: got %q -> %v, want a@example.org -> [b@example.com]", m.From, m.To)
		}
		if string(m.Data) != body || m.Helo != "client.test" || m.TLS {
			t.Errorf("message: got data %q helo %q tls %v", m.Data, m.Helo, m.TLS)
		}
		if !strings.HasPrefix(m.RemoteAddr, "127.0.0.1:") {
			t.Errorf("remote addr: got %q, want 127.0.0.1:*", m.RemoteAddr)
		}
	}
}

func TestHooks(t *testing.T) {
	tests := []struct {
		name     string
		hooks    Hooks
		wantCode int // 0: a non-SMTP error
		wantNil  bool
	}{
		{"greeting 421", Hooks{Greeting: func(n int) *smtp.SMTPError {
			return &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 7, 0}, Message: "too many\nconnections"}
		}}, 421, false},
		{"mail 550", Hooks{Mail: func(string, int) *smtp.SMTPError {
			return &smtp.SMTPError{Code: 550, Message: "no"}
		}}, 550, false},
		{"second rcpt 450", Hooks{Rcpt: func(_ string, n int) *smtp.SMTPError {
			if n == 2 {
				return &smtp.SMTPError{Code: 450, Message: "later"}
			}
			return nil
		}}, 450, false},
		{"data 554", Hooks{Data: func(Message, int) *smtp.SMTPError {
			return &smtp.SMTPError{Code: 554, Message: "spam"}
		}}, 554, false},
		{"drop after data", Hooks{DropAfterData: func(int) bool { return true }}, 0, false},
		{"drop mid data", Hooks{DropMidData: func(int) bool { return true }}, 0, false},
		{"accept", Hooks{}, 0, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := Start(t, "127.0.0.2", 0)
			s.SetHooks(tc.hooks)
			err := send(t, dial(t, s.Addr()), "b@example.com", "c@example.com")
			if tc.wantNil {
				if err != nil {
					t.Fatalf("send: got %v, want nil", err)
				}
				if got := len(s.Messages()); got != 1 {
					t.Errorf("messages: got %d, want 1", got)
				}
				return
			}
			if err == nil {
				t.Fatalf("send: got nil, want an error")
			}
			if got := smtpCode(err); got != tc.wantCode {
				t.Errorf("code: got %d (%v), want %d", got, err, tc.wantCode)
			}
			if got := len(s.Messages()); got != 0 {
				t.Errorf("messages: got %d, want 0", got)
			}
		})
	}
}

func TestStallData(t *testing.T) {
	s := Start(t, "127.0.0.2", 0)
	s.SetHooks(Hooks{StallData: 2 * time.Second})
	c := dial(t, s.Addr())
	c.SubmissionTimeout = 200 * time.Millisecond
	err := send(t, c, "b@example.com")
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("send: got %v, want a timeout", err)
	}
}

func TestGreetingCountsConnections(t *testing.T) {
	s := Start(t, "127.0.0.2", 0)
	s.SetHooks(Hooks{Greeting: func(n int) *smtp.SMTPError {
		if n == 1 {
			return &smtp.SMTPError{Code: 421, Message: "busy"}
		}
		return nil
	}})
	if err := send(t, dial(t, s.Addr()), "b@example.com"); smtpCode(err) != 421 {
		t.Fatalf("first connection: got %v, want 421", err)
	}
	if err := send(t, dial(t, s.Addr()), "b@example.com"); err != nil {
		t.Fatalf("second connection: got %v, want nil", err)
	}
	if got := s.Connections(); got != 2 {
		t.Errorf("connections: got %d, want 2", got)
	}
}

func TestTLSAndFeatures(t *testing.T) {
	s := Start(t, "127.0.0.2", 0)
	s.EnableTLS(SelfSignedCert(t, "mx.example.com", "127.0.0.2"))
	s.SetFeatures(Features{DSN: true})
	conn, err := net.DialTimeout("tcp", s.Addr(), 2*time.Second)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	c, err := smtp.NewClientStartTLS(conn, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatalf("starttls: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.Hello("client.test"); err != nil {
		t.Fatalf("hello after starttls: %v", err)
	}
	if ok, _ := c.Extension("DSN"); !ok {
		t.Errorf("DSN: got not advertised, want advertised")
	}
	if err := transaction(c, "b@example.com"); err != nil {
		t.Fatalf("send: %v", err)
	}
	if m := s.WaitMessages(t, 1, 5*time.Second)[0]; !m.TLS {
		t.Errorf("TLS: got false, want true")
	}
}

func TestNotify(t *testing.T) {
	s := Start(t, "127.0.0.2", 0)
	ch := s.Notify()
	c := dial(t, s.Addr())
	go func() { _ = send(t, c, "b@example.com") }()
	select {
	case <-ch:
	case <-time.After(5 * time.Second):
		t.Fatalf("notify: not closed within 5s")
	}
	if s.Notify() == ch {
		t.Errorf("notify: got the same channel after a message, want a new one")
	}
}

func TestDialog(t *testing.T) {
	r := StartRaw(t, "127.0.0.2", 0, Dialog("220 raw.test ESMTP", map[string]string{
		"EHLO": "502 5.5.1 no ehlo",
		"HELO": "250 raw.test",
		"MAIL": "250 2.1.0 ok",
		"RCPT": "250 2.1.5 ok",
		"DATA": "354 go",
		".":    "250-2.0.0 first\n250 2.0.0 second",
	}))
	if err := send(t, dial(t, r.Addr()), "b@example.com"); err != nil {
		t.Fatalf("send: %v", err)
	}
	if got := r.Connections(); got != 1 {
		t.Errorf("connections: got %d, want 1", got)
	}
}
