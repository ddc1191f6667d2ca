// Package testmx runs fake remote MX servers (github.com/emersion/go-smtp) on
// loopback addresses for tests, recording every message they accept.
//
// sluice delivers to one configured port on every MX host, so a test that
// needs several MX hosts starts a cluster: one server per loopback address
// (127.0.0.2, 127.0.0.3, ...) all on the same port. Each server can be
// scripted with Hooks to fail per command and per attempt (421 at greeting,
// 5xx/4xx at MAIL, RCPT or after DATA, a dropped connection mid-body or
// after the final dot, a stalled final reply), in the spirit of maddy's
// unreliable target. StartRaw serves hand-written dialogs for peers too
// broken for go-smtp to imitate.
//
// Recording is guarded by a mutex and every wait is bounded. This package
// is for tests only.
package testmx

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

// maxClusterTries bounds the attempts to find a port free on every address.
const maxClusterTries = 20

// maxMessageBytes is what the fake servers accept; it is large so that tests
// can send big bodies, but not unlimited.
const maxMessageBytes = 64 << 20

// ioTimeout bounds every read and write of the fake servers, so that an
// abandoned connection cannot keep a goroutine alive for long.
const ioTimeout = 30 * time.Second

// Message is one message a server accepted (answered 250 after DATA).
type Message struct {
	From       string
	To         []string
	Data       []byte
	RemoteAddr string
	TLS        bool
	Helo       string
	MailOpts   smtp.MailOptions
	RcptOpts   []smtp.RcptOptions
	Received   time.Time
}

// Hooks script a server. All fields are optional; each function returns nil
// to accept. n counts the calls of that kind since SetHooks, starting at 1:
// Greeting counts connections, Mail and Rcpt count commands, and Data,
// DropAfterData and DropMidData count DATA transactions.
type Hooks struct {
	// Greeting, when it returns an error, replies it instead of the 220
	// greeting and closes the connection (e.g. 421 too many connections).
	Greeting func(n int) *smtp.SMTPError
	Mail     func(from string, n int) *smtp.SMTPError
	Rcpt     func(to string, n int) *smtp.SMTPError
	// Data runs after the body was read; an error is the final reply.
	Data func(msg Message, n int) *smtp.SMTPError
	// DropAfterData reads the body fully, then closes without a reply.
	DropAfterData func(n int) bool
	// DropMidData closes the connection while the body is arriving.
	DropMidData func(n int) bool
	// StallData waits this long before answering the final dot; the wait
	// ends early when the server stops.
	StallData time.Duration
}

// Features selects the ESMTP extensions a server advertises besides the
// go-smtp defaults (PIPELINING, 8BITMIME, ENHANCEDSTATUSCODES, CHUNKING,
// SIZE). The zero value adds none.
type Features struct {
	DSN           bool // RFC 3461
	SMTPUTF8      bool // RFC 6531
	MaxRecipients int  // LIMITS RCPTMAX (RFC 9422); 0 = no limit
}

// Server is one fake MX on one loopback address.
type Server struct {
	tb   testing.TB
	ln   net.Listener
	ip   string
	stop chan struct{}
	done chan struct{} // closed when the accept loop has ended

	mu       sync.Mutex
	msgs     []Message
	notify   chan struct{}
	hooks    Hooks
	counts   map[string]int
	tlsCfg   *tls.Config
	features Features
	conns    int
	servers  map[serverKey]*backendServer
	logOff   bool
}

// serverKey selects the go-smtp server that handles a new connection: one
// per combination of settings, so that changing a setting never races with
// connections being served.
type serverKey struct {
	tls      bool
	features Features
}

type backendServer struct {
	srv *smtp.Server
	ln  *chanListener
}

// Start runs a fake MX on ip:port (port 0 = any). It stops when the test
// ends.
func Start(t testing.TB, ip string, port int) *Server {
	t.Helper()
	s, err := listen(t, ip, port)
	if err != nil {
		t.Fatalf("testmx: %v", err)
	}
	s.start()
	return s
}

// StartCluster runs one fake MX on each of ips, all on the same port, and
// returns that port. It binds the first on a random port and the others on
// that port; when another process holds the port on one of the addresses it
// closes them all and tries again, a bounded number of times.
func StartCluster(t testing.TB, ips ...string) (port int, servers []*Server) {
	t.Helper()
	if len(ips) == 0 {
		t.Fatalf("testmx: StartCluster needs at least one address")
	}
	var lastErr error
	for range maxClusterTries {
		servers, lastErr = listenCluster(t, ips)
		if lastErr == nil {
			for _, s := range servers {
				s.start()
			}
			return servers[0].Port(), servers
		}
	}
	t.Fatalf("testmx: no common port for %v after %d tries: %v", ips, maxClusterTries, lastErr)
	return 0, nil
}

func listenCluster(t testing.TB, ips []string) ([]*Server, error) {
	first, err := listen(t, ips[0], 0)
	if err != nil {
		return nil, err
	}
	servers := []*Server{first}
	for _, ip := range ips[1:] {
		s, err := listen(t, ip, first.Port())
		if err != nil {
			for _, s := range servers {
				s.ln.Close()
			}
			return nil, err
		}
		servers = append(servers, s)
	}
	return servers, nil
}

func listen(t testing.TB, ip string, port int) (*Server, error) {
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(port)))
	if err != nil {
		return nil, fmt.Errorf("listen on %s port %d: %w", ip, port, err)
	}
	return &Server{
		tb:      t,
		ln:      ln,
		ip:      ip,
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
		notify:  make(chan struct{}),
		counts:  make(map[string]int),
		servers: make(map[serverKey]*backendServer),
	}, nil
}

func (s *Server) start() {
	go s.acceptLoop()
	s.tb.Cleanup(s.shutdown)
}

// acceptLoop owns the real listener. It answers scripted greeting failures
// itself, because a go-smtp server always greets with 220, and hands every
// other connection to the go-smtp server for the current settings.
func (s *Server) acceptLoop() {
	defer close(s.done)
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		if rej := s.greetingReject(); rej != nil {
			go rejectConn(c, rej)
			continue
		}
		if !s.backend().ln.deliver(c, s.stop) {
			c.Close()
		}
	}
}

// greetingReject counts the connection and runs the Greeting hook.
func (s *Server) greetingReject() *smtp.SMTPError {
	s.mu.Lock()
	s.conns++
	s.counts["greeting"]++
	n, h := s.counts["greeting"], s.hooks.Greeting
	s.mu.Unlock()
	if h == nil {
		return nil
	}
	return h(n)
}

// rejectConn writes e as the greeting and closes: RFC 5321 section 3.1
// lets a server refuse service with 554, or 421 for a temporary reason.
func rejectConn(c net.Conn, e *smtp.SMTPError) {
	defer c.Close()
	_ = c.SetWriteDeadline(time.Now().Add(ioTimeout))
	_, _ = c.Write([]byte(formatReply(e)))
}

// formatReply renders e as a (possibly multi-line) SMTP reply.
func formatReply(e *smtp.SMTPError) string {
	lines := strings.Split(e.Message, "\n")
	var b strings.Builder
	for i, l := range lines {
		sep := "-"
		if i == len(lines)-1 {
			sep = " "
		}
		if e.EnhancedCode != smtp.EnhancedCodeNotSet && e.EnhancedCode != smtp.NoEnhancedCode {
			ec := e.EnhancedCode
			l = fmt.Sprintf("%d.%d.%d %s", ec[0], ec[1], ec[2], l)
		}
		fmt.Fprintf(&b, "%d%s%s\r\n", e.Code, sep, l)
	}
	return b.String()
}

// backend returns the go-smtp server for the current settings, starting it
// on first use.
func (s *Server) backend() *backendServer {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := serverKey{tls: s.tlsCfg != nil, features: s.features}
	if b, ok := s.servers[k]; ok {
		return b
	}
	srv := smtp.NewServer(smtp.BackendFunc(s.newSession))
	srv.Domain = "testmx-" + s.ip
	srv.MaxMessageBytes = maxMessageBytes
	srv.MaxRecipients = k.features.MaxRecipients
	srv.ReadTimeout = ioTimeout
	srv.WriteTimeout = ioTimeout
	srv.EnableDSN = k.features.DSN
	srv.EnableSMTPUTF8 = k.features.SMTPUTF8
	srv.TLSConfig = s.tlsCfg
	srv.ErrorLog = testLogger{s}
	b := &backendServer{srv: srv, ln: newChanListener(s.ln.Addr())}
	s.servers[k] = b
	go func() { _ = srv.Serve(b.ln) }()
	return b
}

// shutdown stops accepting, closes every connection and silences logging,
// since testing.T must not be used once the test has completed.
func (s *Server) shutdown() {
	close(s.stop)
	s.ln.Close()
	<-s.done
	s.mu.Lock()
	servers := s.servers
	s.logOff = true
	s.mu.Unlock()
	for _, b := range servers {
		b.srv.Close()
	}
}

// logf logs to the test unless the test has ended.
func (s *Server) logf(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.logOff {
		s.tb.Logf("testmx %s: %s", s.ip, fmt.Sprintf(format, args...))
	}
}

// testLogger adapts go-smtp's error log to the test log.
type testLogger struct{ s *Server }

func (l testLogger) Printf(format string, v ...any) { l.s.logf(format, v...) }
func (l testLogger) Println(v ...any)               { l.s.logf("%s", fmt.Sprintln(v...)) }

// Addr returns "IP:PORT".
func (s *Server) Addr() string { return s.ln.Addr().String() }

// IP returns the address the server listens on.
func (s *Server) IP() string { return s.ip }

// Port returns the port the server listens on.
func (s *Server) Port() int { return s.ln.Addr().(*net.TCPAddr).Port }

// SetHooks replaces the script and restarts its counters.
func (s *Server) SetHooks(h Hooks) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hooks = h
	s.counts = make(map[string]int)
}

// EnableTLS makes new connections offer STARTTLS with cert.
func (s *Server) EnableTLS(cert tls.Certificate) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tlsCfg = &tls.Config{Certificates: []tls.Certificate{cert}}
}

// SetFeatures selects the extensions advertised to new connections.
func (s *Server) SetFeatures(f Features) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.features = f
}

// Connections reports how many connections were accepted, including the
// ones rejected at greeting.
func (s *Server) Connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conns
}

// Messages returns copies of the messages accepted so far.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return copyMessages(s.msgs)
}

// Notify returns a channel that is closed when the next message is
// accepted; each accepted message closes it and installs a new one.
func (s *Server) Notify() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.notify
}

// WaitMessages waits until at least n messages were accepted and returns
// them; it fails the test if that takes longer than timeout. Call it from
// the test goroutine.
func (s *Server) WaitMessages(t testing.TB, n int, timeout time.Duration) []Message {
	t.Helper()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		s.mu.Lock()
		if len(s.msgs) >= n {
			out := copyMessages(s.msgs)
			s.mu.Unlock()
			return out
		}
		got, ch := len(s.msgs), s.notify
		s.mu.Unlock()
		select {
		case <-ch:
		case <-timer.C:
			t.Fatalf("testmx %s: got %d messages within %v, want %d", s.ip, got, timeout, n)
			return nil
		}
	}
}

// record stores an accepted message and wakes the waiters.
func (s *Server) record(m Message) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.msgs = append(s.msgs, m)
	close(s.notify)
	s.notify = make(chan struct{})
}

// next counts one call of kind and returns the count and the hooks.
func (s *Server) next(kind string) (int, Hooks) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.counts[kind]++
	return s.counts[kind], s.hooks
}

func copyMessages(in []Message) []Message {
	out := make([]Message, len(in))
	for i, m := range in {
		m.To = append([]string(nil), m.To...)
		m.Data = append([]byte(nil), m.Data...)
		m.RcptOpts = append([]smtp.RcptOptions(nil), m.RcptOpts...)
		out[i] = m
	}
	return out
}

// chanListener is a net.Listener fed by the accept loop, so that one real
// listener can serve several go-smtp servers.
type chanListener struct {
	addr  net.Addr
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func newChanListener(addr net.Addr) *chanListener {
	return &chanListener{addr: addr, conns: make(chan net.Conn), done: make(chan struct{})}
}

// deliver hands c to Accept; false when the listener or the server stopped.
func (l *chanListener) deliver(c net.Conn, stop <-chan struct{}) bool {
	select {
	case l.conns <- c:
		return true
	case <-l.done:
		return false
	case <-stop:
		return false
	}
}

func (l *chanListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *chanListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *chanListener) Addr() net.Addr { return l.addr }

// errDropped is returned to go-smtp after a scripted drop; the connection
// is already closed so the client never sees it.
var errDropped = errors.New("testmx: connection dropped by script")
