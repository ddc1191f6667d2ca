package smtpd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime/debug"
	"slices"
	"strings"
	"sync"

	"github.com/emersion/go-smtp"
)

// ErrClosed is returned by Start and Serve after Close or Shutdown.
var ErrClosed = errors.New("smtpd: server closed")

// Server is sluice's inbound SMTP server: one go-smtp server per listener,
// sharing one connection cap and one acceptance policy.
type Server struct {
	opts Options
	log  *slog.Logger
	lim  *connLimiter

	// ctx is handed to Enqueue and Intake.Receive; Close cancels it.
	ctx    context.Context
	cancel context.CancelFunc

	mu        sync.Mutex
	servers   []*smtp.Server
	listeners []*limitListener
	closed    bool
	serving   sync.WaitGroup
}

// New validates o and returns a Server that is not yet listening.
func New(o Options) (*Server, error) {
	if err := o.validate(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		opts:   o,
		log:    o.Logger,
		ctx:    ctx,
		cancel: cancel,
	}
	s.lim = newConnLimiter(limiterConfig{
		max:          o.MaxConnections,
		hostname:     o.Hostname,
		writeTimeout: o.WriteTimeout,
		log:          o.Logger,
	})
	return s, nil
}

// newSMTPServer builds a go-smtp server carrying every limit from Options.
func (s *Server) newSMTPServer() *smtp.Server {
	srv := smtp.NewServer(backend{s: s})
	srv.Domain = s.opts.Hostname
	srv.MaxMessageBytes = s.opts.MaxMessageBytes
	srv.MaxRecipients = s.opts.MaxRecipients
	srv.MaxLineLength = s.opts.MaxLineLength
	srv.ReadTimeout = s.opts.ReadTimeout
	srv.WriteTimeout = s.opts.WriteTimeout
	srv.TLSConfig = s.opts.TLSConfig
	srv.EnableDSN = true       // RET, ENVID, NOTIFY, ORCPT are stored (RFC 3461)
	srv.EnableSMTPUTF8 = false // addresses are ASCII only (RFC 6531 3.7.4.1)
	srv.ErrorLog = errorLog{log: s.log}
	return srv
}

// register wraps l with the connection cap and records it and its go-smtp
// server, so that Close and Shutdown reach both.
func (s *Server) register(l net.Listener) (*smtp.Server, *limitListener, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, nil, ErrClosed
	}
	srv := s.newSMTPServer()
	wl := &limitListener{Listener: l, lim: s.lim}
	s.servers = append(s.servers, srv)
	s.listeners = append(s.listeners, wl)
	return srv, wl, nil
}

// Start listens on every Options.Listen address and serves each in its own
// goroutine. If one address fails, none stays open.
func (s *Server) Start() error {
	if len(s.opts.Listen) == 0 {
		return optErr("Listen", "no address to listen on")
	}
	var ls []net.Listener
	for _, addr := range s.opts.Listen {
		l, err := listenConfig.Listen(context.Background(), "tcp", addr)
		if err != nil {
			closeAll(ls)
			return fmt.Errorf("smtpd: listen on %s: %w", addr, err)
		}
		ls = append(ls, l)
	}
	for i, l := range ls {
		srv, wl, err := s.register(l)
		if err != nil {
			closeAll(ls[i:])
			return err
		}
		s.serving.Add(1)
		go s.serveLoop(srv, wl)
	}
	return nil
}

// listenConfig turns TCP keep-alive off for accepted connections: Go
// enables it by default at four setsockopt calls per connection, and
// with one connection per message that is measurable (docs/performance.md).
// A peer that vanishes is still cut off by ReadTimeout, which bounds every
// wait for a command and the whole DATA transfer.
var listenConfig = net.ListenConfig{KeepAlive: -1}

func closeAll(ls []net.Listener) {
	for _, l := range ls {
		_ = l.Close() // only undoing a partial Start
	}
}

// serveLoop runs one go-smtp server until Close; it is a worker goroutine
// and so recovers and logs instead of taking the process down.
func (s *Server) serveLoop(srv *smtp.Server, wl *limitListener) {
	defer s.serving.Done()
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("smtpd: panic in accept loop", "addr", wl.Addr().String(),
				"panic", fmt.Sprint(r), "stack", string(debug.Stack()))
		}
	}()
	if err := srv.Serve(wl); err != nil {
		s.log.Error("smtpd: listener failed", "addr", wl.Addr().String(), "err", err)
	}
}

// Serve serves connections from l until Close or Shutdown, then returns nil.
// Start uses the same path; Serve exists for tests and for callers that
// bring their own listener.
func (s *Server) Serve(l net.Listener) error {
	srv, wl, err := s.register(l)
	if err != nil {
		return err
	}
	if err := srv.Serve(wl); err != nil {
		return fmt.Errorf("smtpd: serve %s: %w", l.Addr(), err)
	}
	return nil
}

// Addrs returns the actual addresses of the listeners (after port 0).
func (s *Server) Addrs() []net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	addrs := make([]net.Addr, 0, len(s.listeners))
	for _, l := range s.listeners {
		addrs = append(addrs, l.Addr())
	}
	return addrs
}

// Close stops accepting and closes every connection at once. A session in
// the middle of Enqueue sees its context cancelled. Close is safe to call
// more than once.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	servers := slices.Clone(s.servers)
	listeners := slices.Clone(s.listeners)
	s.mu.Unlock()

	s.cancel()
	var errs []error
	for _, srv := range servers {
		if err := srv.Close(); err != nil && !isClosedErr(err) {
			errs = append(errs, err)
		}
	}
	for _, l := range listeners {
		if err := l.Close(); err != nil && !isClosedErr(err) {
			errs = append(errs, err)
		}
	}
	s.lim.closeAll()
	s.serving.Wait()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("smtpd: close: %w", err)
	}
	return nil
}

func isClosedErr(err error) bool {
	return errors.Is(err, smtp.ErrServerClosed) || errors.Is(err, net.ErrClosed)
}

// Shutdown stops accepting, closes idle connections at once, and lets
// sessions that are receiving a message body finish it (and get their
// reply) until ctx ends; then it closes whatever is left, as Close does.
// It returns ctx's error if ctx ended first.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	servers := slices.Clone(s.servers)
	s.mu.Unlock()

	// Drain before the listeners close, so that a connection accepted in
	// between is refused by the limiter rather than missed.
	s.lim.drain()
	errc := make(chan error, len(servers))
	for _, srv := range servers {
		go func() { errc <- srv.Shutdown(ctx) }()
	}
	var waitErr error
	for range servers {
		if err := <-errc; err != nil && !isClosedErr(err) && waitErr == nil {
			waitErr = err
		}
	}
	closeErr := s.Close()
	if waitErr != nil {
		return fmt.Errorf("smtpd: shutdown: %w", waitErr)
	}
	return closeErr
}

// errorLog adapts slog to go-smtp's Printf/Println logger, at Error level:
// go-smtp only reports unexpected failures (and recovered panics) there.
type errorLog struct{ log *slog.Logger }

func (e errorLog) Printf(format string, v ...any) {
	e.log.Error(strings.TrimSpace(fmt.Sprintf(format, v...)), "component", "go-smtp")
}

func (e errorLog) Println(v ...any) {
	e.log.Error(strings.TrimSpace(fmt.Sprintln(v...)), "component", "go-smtp")
}
