package testmx

import (
	"bufio"
	"net"
	"net/textproto"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// rawCloseWait bounds how long cleanup waits for scripts to return after
// their connections were closed.
const rawCloseWait = 5 * time.Second

// maxDialogLines bounds the commands one Dialog connection serves.
const maxDialogLines = 1000

// RawServer runs a hand-written script per connection, for peers that
// misbehave in ways a go-smtp server cannot (bad greetings, broken replies,
// refused EHLO).
type RawServer struct {
	ln net.Listener
	ip string
	wg sync.WaitGroup

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	n      int
	closed bool
}

// StartRaw listens on ip:port (port 0 = any) and runs script on each
// connection in its own goroutine, closing the connection when script
// returns. It stops when the test ends; scripts must return once their
// connection is closed.
func StartRaw(t testing.TB, ip string, port int, script func(c net.Conn)) *RawServer {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(port)))
	if err != nil {
		t.Fatalf("testmx: raw listen on %s port %d: %v", ip, port, err)
	}
	r := &RawServer{ln: ln, ip: ip, conns: make(map[net.Conn]struct{})}
	r.wg.Add(1)
	go r.acceptLoop(script)
	t.Cleanup(func() { r.shutdown(t) })
	return r
}

func (r *RawServer) acceptLoop(script func(net.Conn)) {
	defer r.wg.Done()
	for {
		c, err := r.ln.Accept()
		if err != nil {
			return
		}
		r.mu.Lock()
		if r.closed {
			r.mu.Unlock()
			c.Close()
			return
		}
		r.conns[c] = struct{}{}
		r.n++
		r.wg.Add(1)
		r.mu.Unlock()
		go r.run(c, script)
	}
}

func (r *RawServer) run(c net.Conn, script func(net.Conn)) {
	defer r.wg.Done()
	defer func() {
		r.mu.Lock()
		delete(r.conns, c)
		r.mu.Unlock()
		c.Close()
	}()
	script(c)
}

func (r *RawServer) shutdown(t testing.TB) {
	r.ln.Close()
	r.mu.Lock()
	r.closed = true
	for c := range r.conns {
		c.Close()
	}
	r.mu.Unlock()
	done := make(chan struct{})
	go func() { r.wg.Wait(); close(done) }()
	timer := time.NewTimer(rawCloseWait)
	defer timer.Stop()
	select {
	case <-done:
	case <-timer.C:
		t.Errorf("testmx: raw scripts on %s still running %v after close", r.ip, rawCloseWait)
	}
}

// Addr returns "IP:PORT".
func (r *RawServer) Addr() string { return r.ln.Addr().String() }

// IP returns the address the server listens on.
func (r *RawServer) IP() string { return r.ip }

// Port returns the port the server listens on.
func (r *RawServer) Port() int { return r.ln.Addr().(*net.TCPAddr).Port }

// Connections reports how many connections were accepted.
func (r *RawServer) Connections() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.n
}

// Dialog returns a script in the style of chasquid's command-to-reply map:
// it sends greeting, then answers each command by its verb ("EHLO", "MAIL",
// "RCPT", "DATA", ...) from replies. After a 354 reply to DATA it reads the
// body and answers it with replies["."]. A reply may span lines separated
// by "\n"; CRLF is added. An empty reply closes the connection without
// answering. Unlisted verbs get "502 5.5.1", QUIT gets "221" and ends, and
// an unlisted "." gets "250 2.0.0".
func Dialog(greeting string, replies map[string]string) func(net.Conn) {
	return func(c net.Conn) {
		_ = c.SetDeadline(time.Now().Add(ioTimeout))
		tr := textproto.NewReader(bufio.NewReader(c))
		if greeting == "" || !writeReply(c, greeting) {
			return
		}
		for range maxDialogLines {
			line, err := tr.ReadLine()
			if err != nil {
				return
			}
			verb, _, _ := strings.Cut(line, " ")
			verb = strings.ToUpper(verb)
			reply, ok := replies[verb]
			if !ok {
				reply = defaultReply(verb)
			}
			if reply == "" || !writeReply(c, reply) || verb == "QUIT" {
				return
			}
			if verb == "DATA" && strings.HasPrefix(reply, "354") && !dialogBody(c, tr, replies) {
				return
			}
		}
	}
}

func defaultReply(verb string) string {
	switch verb {
	case "QUIT":
		return "221 2.0.0 bye"
	case ".":
		return "250 2.0.0 ok"
	}
	return "502 5.5.1 not scripted"
}

// dialogBody reads a DATA body up to the dot line and answers it.
func dialogBody(c net.Conn, tr *textproto.Reader, replies map[string]string) bool {
	if _, err := tr.ReadDotBytes(); err != nil {
		return false
	}
	reply, ok := replies["."]
	if !ok {
		reply = defaultReply(".")
	}
	return reply != "" && writeReply(c, reply)
}

// writeReply writes reply with CRLF line ends.
func writeReply(c net.Conn, reply string) bool {
	lines := strings.Split(strings.TrimRight(reply, "\r\n"), "\n")
	for i, l := range lines {
		lines[i] = strings.TrimSuffix(l, "\r")
	}
	_, err := c.Write([]byte(strings.Join(lines, "\r\n") + "\r\n"))
	return err == nil
}
