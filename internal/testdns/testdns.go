// Package testdns runs an in-process authoritative-style DNS server
// (github.com/miekg/dns) on loopback for tests.
//
// It serves A, AAAA, MX and TXT records that a test adds, answers NXDOMAIN for
// unknown names and NODATA for known names without records of the asked type,
// and can misbehave on purpose: fixed rcodes (SERVFAIL, REFUSED), slow or
// missing answers, and truncated UDP answers that force a TCP retry. It counts
// the queries it sees so that cache tests can assert on them.
//
// The server never touches the process-wide resolver and never reaches
// beyond 127.0.0.1. It is for tests only: it must not be imported by
// production code.
package testdns

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// defaultTTL is the TTL of answers until SetTTL changes it.
const defaultTTL = 300

// maxListenTries bounds the retries when the TCP port matching the random
// UDP port is already taken.
const maxListenTries = 20

// startTimeout bounds the wait for the servers to report they are serving.
const startTimeout = 5 * time.Second

// txtChunk is the longest character-string a TXT record may hold
// (RFC 1035 section 3.3: a length octet followed by up to 255 octets).
const txtChunk = 255

// Server is an in-process DNS server for tests. All methods are safe for
// concurrent use.
type Server struct {
	tb   testing.TB
	addr string
	udp  *dns.Server
	tcp  *dns.Server
	stop chan struct{}

	mu      sync.Mutex
	zone    map[string]*records
	rcode   map[string]int
	delay   map[string]time.Duration
	drop    map[string]bool
	truncU  map[string]bool
	ttl     uint32
	queries map[queryKey]int
}

// records holds what is known about one owner name.
type records struct {
	mx   []*dns.MX
	a    []netip.Addr
	aaaa []netip.Addr
	txt  [][]string
}

type queryKey struct {
	name  string
	qtype uint16
}

// Start runs a server on 127.0.0.1 with UDP and TCP on the same port. The
// server stops when the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	s := &Server{
		tb:      t,
		stop:    make(chan struct{}),
		zone:    make(map[string]*records),
		rcode:   make(map[string]int),
		delay:   make(map[string]time.Duration),
		drop:    make(map[string]bool),
		truncU:  make(map[string]bool),
		ttl:     defaultTTL,
		queries: make(map[queryKey]int),
	}
	pc, ln, err := listenPair()
	if err != nil {
		t.Fatalf("testdns: %v", err)
	}
	s.addr = pc.LocalAddr().String()
	if err := s.serve(pc, ln); err != nil {
		t.Fatalf("testdns: %v", err)
	}
	t.Cleanup(s.shutdown)
	return s
}

// listenPair binds UDP on a random port, then TCP on the same port. Another
// process may hold that TCP port, so it retries a bounded number of times.
func listenPair() (net.PacketConn, net.Listener, error) {
	var lastErr error
	for range maxListenTries {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			return nil, nil, fmt.Errorf("listen udp: %w", err)
		}
		ln, err := net.Listen("tcp", pc.LocalAddr().String())
		if err == nil {
			return pc, ln, nil
		}
		lastErr = err
		pc.Close()
	}
	return nil, nil, fmt.Errorf("listen tcp on the udp port after %d tries: %w", maxListenTries, lastErr)
}

// serve starts both servers and waits until they are serving.
func (s *Server) serve(pc net.PacketConn, ln net.Listener) error {
	started := make(chan struct{}, 2)
	notify := func() { started <- struct{}{} }
	s.udp = &dns.Server{PacketConn: pc, Handler: s, NotifyStartedFunc: notify}
	s.tcp = &dns.Server{Listener: ln, Handler: s, NotifyStartedFunc: notify}
	errs := make(chan error, 2)
	go func() { errs <- s.udp.ActivateAndServe() }()
	go func() { errs <- s.tcp.ActivateAndServe() }()
	timer := time.NewTimer(startTimeout)
	defer timer.Stop()
	for range 2 {
		select {
		case <-started:
		case err := <-errs:
			return fmt.Errorf("serve: %w", err)
		case <-timer.C:
			return fmt.Errorf("servers did not start within %v", startTimeout)
		}
	}
	return nil
}

// shutdown releases delayed handlers first, so that the servers' shutdown,
// which waits for handlers, cannot hang.
func (s *Server) shutdown() {
	close(s.stop)
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	_ = s.udp.ShutdownContext(ctx)
	_ = s.tcp.ShutdownContext(ctx)
}

// Addr returns "127.0.0.1:PORT", valid for both UDP and TCP.
func (s *Server) Addr() string { return s.addr }

// key canonicalises a name: lower case, fully qualified.
func key(name string) string {
	return dns.CanonicalName(name)
}

// entry returns the records for name, creating them. Callers hold s.mu.
func (s *Server) entry(name string) *records {
	k := key(name)
	r, ok := s.zone[k]
	if !ok {
		r = &records{}
		s.zone[k] = r
	}
	return r
}

// AddMX adds an MX record for domain pointing at host.
func (s *Server) AddMX(domain string, pref uint16, host string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.entry(domain)
	e.mx = append(e.mx, &dns.MX{Preference: pref, Mx: dns.Fqdn(host)})
}

// AddA adds an A or AAAA record for host, by the address family of ip. A
// malformed ip fails the test.
func (s *Server) AddA(host string, ip string) {
	addr, err := netip.ParseAddr(ip)
	if err != nil {
		s.tb.Errorf("testdns: AddA(%q, %q): %v", host, ip, err)
		return
	}
	addr = addr.Unmap()
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.entry(host)
	if addr.Is4() {
		e.a = append(e.a, addr)
		return
	}
	e.aaaa = append(e.aaaa, addr)
}

// AddTXT adds one TXT record for name. Values longer than 255 bytes are split
// into several character-strings, as DKIM keys published in DNS must be.
func (s *Server) AddTXT(name string, txt string) {
	var parts []string
	for len(txt) > txtChunk {
		parts = append(parts, txt[:txtChunk])
		txt = txt[txtChunk:]
	}
	parts = append(parts, txt)
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.entry(name)
	e.txt = append(e.txt, parts)
}

// SetNullMX replaces the MX records of domain with the null MX "MX 0 ."
// (RFC 7505 section 3).
func (s *Server) SetNullMX(domain string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.entry(domain)
	e.mx = []*dns.MX{{Preference: 0, Mx: "."}}
}

// SetRcode makes every query for name answer rcode, e.g. dns.RcodeNameError
// or dns.RcodeServerFailure. dns.RcodeSuccess restores normal answers.
func (s *Server) SetRcode(name string, rcode int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if rcode == dns.RcodeSuccess {
		delete(s.rcode, key(name))
		return
	}
	s.rcode[key(name)] = rcode
}

// SetDelay makes answers for name wait d. Zero removes the delay.
func (s *Server) SetDelay(name string, d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.delay[key(name)] = d
}

// SetDrop makes the server never answer queries for name.
func (s *Server) SetDrop(name string, drop bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.drop[key(name)] = drop
}

// SetTruncateUDP makes UDP answers for name carry the TC bit and no records,
// while TCP answers stay complete (RFC 7766 section 5).
func (s *Server) SetTruncateUDP(name string, on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.truncU[key(name)] = on
}

// SetTTL sets the TTL of all records and of the SOA in negative answers.
func (s *Server) SetTTL(ttl uint32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ttl = ttl
}

// Queries reports how many queries for name and qtype the server has seen,
// over UDP and TCP together.
func (s *Server) Queries(name string, qtype uint16) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.queries[queryKey{key(name), qtype}]
}

// String describes the server for test logs.
func (s *Server) String() string {
	return "testdns " + s.addr
}
