package delivery

import (
	"slices"
	"strings"

	"github.com/emersion/go-smtp"
)

// maxEnvIDLen is the longest ENVID allowed (RFC 3461 section 4.4).
const maxEnvIDLen = 100

// mailOptions builds the MAIL parameters. go-smtp sends the DSN ones only
// when the server advertises DSN (RFC 3461 section 4), so here they are
// only checked: a malformed value is dropped rather than failing the
// transaction, since DSN parameters are advisory for the next hop.
func (t *tx) mailOptions(size int) *smtp.MailOptions {
	o := &smtp.MailOptions{Size: int64(size), UTF8: t.needsUTF8()}
	switch strings.ToUpper(t.env.Ret) {
	case "FULL":
		o.Return = smtp.DSNReturnFull
	case "HDRS":
		o.Return = smtp.DSNReturnHeaders
	case "":
	default:
		t.cn.client.log.Debug("dropping malformed DSN RET", "ret", t.env.Ret)
	}
	if id := t.env.EnvID; id != "" {
		if len(id) <= maxEnvIDLen && isPrintableASCII(id) {
			o.EnvelopeID = id
		} else {
			t.cn.client.log.Debug("dropping malformed DSN ENVID")
		}
	}
	return o
}

// rcptOptions builds the RCPT parameters (RFC 3461 sections 4.1, 4.2).
func (t *tx) rcptOptions(r Rcpt) *smtp.RcptOptions {
	if len(r.Notify) == 0 && r.ORCPT == "" {
		return nil
	}
	o := &smtp.RcptOptions{}
	if n, ok := notifySet(r.Notify); ok {
		o.Notify = n
	} else {
		t.cn.client.log.Debug("dropping malformed DSN NOTIFY", "to", r.Addr, "notify", r.Notify)
	}
	if typ, addr, ok := orcpt(r.ORCPT); ok {
		o.OriginalRecipientType, o.OriginalRecipient = typ, addr
	} else if r.ORCPT != "" {
		t.cn.client.log.Debug("dropping malformed DSN ORCPT", "to", r.Addr)
	}
	return o
}

// notifySet validates NOTIFY: NEVER alone, or any of SUCCESS, FAILURE and
// DELAY, each at most once.
func notifySet(values []string) ([]smtp.DSNNotify, bool) {
	if len(values) == 0 {
		return nil, false
	}
	var out []smtp.DSNNotify
	for _, v := range values {
		n := smtp.DSNNotify(strings.ToUpper(strings.TrimSpace(v)))
		switch n {
		case smtp.DSNNotifyNever, smtp.DSNNotifySuccess, smtp.DSNNotifyFailure, smtp.DSNNotifyDelayed:
		default:
			return nil, false
		}
		if slices.Contains(out, n) {
			return nil, false
		}
		out = append(out, n)
	}
	if slices.Contains(out, smtp.DSNNotifyNever) && len(out) > 1 {
		return nil, false
	}
	return out, true
}

// orcpt parses "type;address". An rfc822 address that is not ASCII is
// sent as utf-8 (RFC 6533 section 3).
func orcpt(v string) (smtp.DSNAddressType, string, bool) {
	typ, addr, ok := strings.Cut(v, ";")
	if !ok || addr == "" || strings.ContainsAny(addr, "\r\n") {
		return "", "", false
	}
	switch strings.ToLower(strings.TrimSpace(typ)) {
	case "rfc822":
		if isPrintableASCII(addr) {
			return smtp.DSNAddressTypeRFC822, addr, true
		}
		return smtp.DSNAddressTypeUTF8, addr, true
	case "utf-8":
		return smtp.DSNAddressTypeUTF8, addr, true
	}
	return "", "", false
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] > 0x7f {
			return false
		}
	}
	return true
}

func isPrintableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}
