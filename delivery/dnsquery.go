package delivery

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/miekg/dns"
)

// ednsSize is the EDNS(0) UDP payload size we advertise: the value agreed
// at DNS Flag Day 2020 to avoid IP fragmentation.
const ednsSize = 1232

// RcodeError is a DNS answer whose rcode means the server could not answer
// (SERVFAIL, REFUSED, ...), as opposed to NOERROR and NXDOMAIN.
type RcodeError struct {
	Server string
	Rcode  int
}

func (e *RcodeError) Error() string {
	return fmt.Sprintf("server %s answered %s", e.Server, dns.RcodeToString[e.Rcode])
}

// errMismatch is an answer for a different question than we asked.
var errMismatch = errors.New("answer does not match the question")

// query asks each server in order until one gives a usable answer (NOERROR
// or NXDOMAIN). SERVFAIL, REFUSED, timeouts and network errors move on to
// the next server; when all fail, the last error is returned.
func (r *Resolver) query(ctx context.Context, name string, qtype uint16) (*dns.Msg, error) {
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	m.RecursionDesired = true
	m.SetEdns0(ednsSize, false)
	var lastErr error
	for _, srv := range r.servers {
		resp, err := r.exchange(ctx, m, srv)
		if err == nil {
			return resp, nil
		}
		lastErr = err
		r.log.Debug("dns query failed", "name", name, "type", dns.TypeToString[qtype], "server", srv, "err", err)
		if ctx.Err() != nil {
			break
		}
	}
	if lastErr == nil {
		lastErr = errors.New("no dns servers configured")
	}
	return nil, lastErr
}

// exchange runs one query against one server over UDP, and again over TCP
// when the UDP answer was truncated (RFC 7766 section 5; RFC 1035 section
// 4.2.1).
func (r *Resolver) exchange(ctx context.Context, m *dns.Msg, srv string) (*dns.Msg, error) {
	udp := &dns.Client{Net: "udp", Timeout: r.timeout, UDPSize: ednsSize}
	resp, _, err := udp.ExchangeContext(ctx, m, srv)
	if err == nil && resp.Truncated {
		tcp := &dns.Client{Net: "tcp", Timeout: r.timeout}
		resp, _, err = tcp.ExchangeContext(ctx, m, srv)
	}
	if err != nil {
		return nil, fmt.Errorf("query %s: %w", srv, err)
	}
	if !sameQuestion(m, resp) {
		return nil, fmt.Errorf("query %s: %w", srv, errMismatch)
	}
	switch resp.Rcode {
	case dns.RcodeSuccess, dns.RcodeNameError:
		return resp, nil
	}
	return nil, &RcodeError{Server: srv, Rcode: resp.Rcode}
}

// sameQuestion guards against answers to another question (the ID check in
// miekg/dns does not cover the question section).
func sameQuestion(q, a *dns.Msg) bool {
	if len(a.Question) != 1 {
		return false
	}
	want, got := q.Question[0], a.Question[0]
	return want.Qtype == got.Qtype && want.Qclass == got.Qclass && strings.EqualFold(want.Name, got.Name)
}
