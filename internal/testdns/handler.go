package testdns

import (
	"net"
	"time"

	"github.com/miekg/dns"
)

// plan is what the handler decided to do with one query, taken under the
// lock so that a query sees one consistent state.
type plan struct {
	drop  bool
	delay time.Duration
	reply *dns.Msg
}

// ServeDNS answers one query. It implements dns.Handler.
func (s *Server) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	if len(req.Question) != 1 {
		m := new(dns.Msg)
		m.SetRcode(req, dns.RcodeFormatError)
		_ = w.WriteMsg(m)
		return
	}
	p := s.plan(req, isUDP(w))
	if p.drop {
		return
	}
	if p.delay > 0 {
		timer := time.NewTimer(p.delay)
		defer timer.Stop()
		select {
		case <-timer.C:
		case <-s.stop:
			return
		}
	}
	_ = w.WriteMsg(p.reply)
}

func isUDP(w dns.ResponseWriter) bool {
	_, ok := w.LocalAddr().(*net.UDPAddr)
	return ok
}

// plan counts the query and builds its reply.
func (s *Server) plan(req *dns.Msg, udp bool) plan {
	q := req.Question[0]
	name := key(q.Name)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.queries[queryKey{name, q.Qtype}]++
	p := plan{drop: s.drop[name], delay: s.delay[name]}
	m := new(dns.Msg)
	m.SetReply(req)
	m.Authoritative = true
	m.RecursionAvailable = true
	if rc, ok := s.rcode[name]; ok {
		m.Rcode = rc
		p.reply = m
		return p
	}
	s.answer(m, name, q.Qtype)
	size := dns.MinMsgSize
	if opt := req.IsEdns0(); opt != nil {
		m.SetEdns0(opt.UDPSize(), false)
		size = int(opt.UDPSize())
	}
	switch {
	case udp && s.truncU[name]:
		m.Truncated = true
		m.Answer, m.Ns = nil, nil
	case udp:
		// A real server truncates what does not fit (RFC 1035 section
		// 4.2.1, RFC 6891 section 6.2.5); long DKIM keys can hit this.
		m.Truncate(size)
	}
	p.reply = m
	return p
}

// answer fills m for a known name, or makes it NXDOMAIN. Negative answers
// carry an SOA so resolvers can cache them (RFC 2308 section 3). Callers
// hold s.mu.
func (s *Server) answer(m *dns.Msg, name string, qtype uint16) {
	e, ok := s.zone[name]
	if !ok {
		m.Rcode = dns.RcodeNameError
		m.Ns = []dns.RR{s.soa(name)}
		return
	}
	m.Answer = s.rrs(e, name, qtype)
	if len(m.Answer) == 0 {
		m.Ns = []dns.RR{s.soa(name)}
	}
}

// rrs returns the records of e for qtype. Callers hold s.mu.
func (s *Server) rrs(e *records, name string, qtype uint16) []dns.RR {
	var out []dns.RR
	switch qtype {
	case dns.TypeMX:
		for _, mx := range e.mx {
			out = append(out, &dns.MX{Hdr: s.hdr(name, dns.TypeMX), Preference: mx.Preference, Mx: mx.Mx})
		}
	case dns.TypeA:
		for _, a := range e.a {
			out = append(out, &dns.A{Hdr: s.hdr(name, dns.TypeA), A: net.IP(a.AsSlice())})
		}
	case dns.TypeAAAA:
		for _, a := range e.aaaa {
			out = append(out, &dns.AAAA{Hdr: s.hdr(name, dns.TypeAAAA), AAAA: net.IP(a.AsSlice())})
		}
	case dns.TypeTXT:
		for _, txt := range e.txt {
			out = append(out, &dns.TXT{Hdr: s.hdr(name, dns.TypeTXT), Txt: append([]string(nil), txt...)})
		}
	}
	return out
}

func (s *Server) hdr(name string, rrtype uint16) dns.RR_Header {
	return dns.RR_Header{Name: name, Rrtype: rrtype, Class: dns.ClassINET, Ttl: s.ttl}
}

// soa is the SOA of negative answers; its MINIMUM equals the TTL, so the
// negative caching time (RFC 2308 section 5) follows SetTTL.
func (s *Server) soa(name string) dns.RR {
	return &dns.SOA{
		Hdr:     s.hdr(name, dns.TypeSOA),
		Ns:      "ns.testdns.",
		Mbox:    "hostmaster.testdns.",
		Serial:  1,
		Refresh: 3600,
		Retry:   600,
		Expire:  86400,
		Minttl:  s.ttl,
	}
}
