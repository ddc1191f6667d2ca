package delivery

// SupportsDSN reports whether the server advertised DSN (RFC 3461), so
// that NOTIFY and ORCPT were passed on and the next hop, not sluice, owes
// the sender any success report (RFC 3461 section 5.2.2).
func (cn *Conn) SupportsDSN() bool {
	if cn.sc == nil {
		return false
	}
	ok, _ := cn.sc.Extension("DSN")
	return ok
}
