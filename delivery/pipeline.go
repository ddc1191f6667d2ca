package delivery

import (
	"bufio"
	"errors"
	"fmt"
	"net/textproto"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-smtp"
)

// Command pipelining (RFC 2920). go-smtp's client sends one command and
// waits for its reply; when the server offers PIPELINING, sluice writes
// MAIL, every RCPT and DATA in one go and then reads the replies in order,
// which saves two round trips (and their system calls) per message. The
// session is still opened by go-smtp (greeting, EHLO, STARTTLS); after that
// its reader holds no unread bytes, so the transaction can run on our own
// reader and writer over the same connection, and go-smtp's QUIT works
// afterwards because every reply has been read.

// pipelined reports whether this transaction can use pipelining: the
// server offers it, and nothing needs what only go-smtp's client formats
// (SMTPUTF8, UTF-8 original recipients).
func (t *tx) pipelined() bool {
	if ok, _ := t.cn.sc.Extension("PIPELINING"); !ok || t.needsUTF8() {
		return false
	}
	for _, r := range t.env.Rcpts {
		if typ, _, ok := orcpt(r.ORCPT); ok && typ != smtp.DSNAddressTypeRFC822 {
			return false
		}
	}
	return true
}

// pipe returns the connection's textproto stream for pipelined commands.
func (cn *Conn) pipe() *textproto.Conn {
	if cn.tp == nil {
		cn.tp = textproto.NewConn(cn.nc)
	}
	return cn.tp
}

// runPipelined is run for a server that offers PIPELINING.
func (t *tx) runPipelined(body []byte) {
	tp := t.cn.pipe()
	_ = t.cn.nc.SetDeadline(time.Now().Add(t.cn.client.o.CommandTimeout))
	open := t.open()
	var cmds []string
	if t.cn.dirty {
		cmds = append(cmds, "RSET")
	}
	cmds = append(cmds, t.mailLine(len(body)))
	for _, i := range open {
		cmds = append(cmds, t.rcptLine(t.env.Rcpts[i]))
	}
	cmds = append(cmds, "DATA")
	if err := writeLines(tp.W, cmds); err != nil {
		t.lost(err)
		return
	}
	for _, i := range open {
		t.results[i].RcptSent = true
	}
	t.cn.dirty = true // until the transaction ends cleanly
	if cmds[0] == "RSET" {
		if code, msg, err := tp.ReadResponse(0); err != nil || code/100 != 2 {
			t.pipeFailed(code, msg, err)
			t.cn.usable = false // out of step with the server: start afresh
			return
		}
	}
	if code, msg, err := tp.ReadResponse(0); err != nil || code/100 != 2 {
		t.pipeFailed(code, msg, err) // MAIL refused: the replies to RCPT and DATA follow
		t.drain(tp, len(open)+1)
		return
	}
	accepted, ok := t.readRcptReplies(tp, open)
	if !ok {
		return
	}
	t.finishPipelined(tp, body, accepted)
}

// writeLines sends commands in one write.
func writeLines(w *bufio.Writer, lines []string) error {
	for _, l := range lines {
		w.WriteString(l)
		w.WriteString("\r\n")
	}
	return w.Flush()
}

// readRcptReplies reads one reply per recipient sent; it reports false
// when the transaction ended (a 421 or a lost connection).
func (t *tx) readRcptReplies(tp *textproto.Conn, open []int) (int, bool) {
	accepted := 0
	for _, i := range open {
		code, msg, err := tp.ReadResponse(0)
		switch {
		case err != nil && !isProtocolError(err):
			t.lost(err)
			return 0, false
		case code == 421:
			t.pipeFailed(code, msg, nil)
			return 0, false
		case code/100 == 2:
			accepted++
		default:
			if code == 552 {
				code = 452 // RFC 5321 section 4.5.3.1.10: too many recipients
			}
			t.set(i, Classify(code, nil), t.cn.reply(replyFromText(code, msg)), nil)
		}
	}
	return accepted, true
}

// finishPipelined reads the reply to DATA and sends the body if it may.
func (t *tx) finishPipelined(tp *textproto.Conn, body []byte, accepted int) {
	code, msg, err := tp.ReadResponse(0)
	if err != nil && !isProtocolError(err) {
		t.lost(err)
		return
	}
	if code != 354 {
		// DATA refused (with no recipient accepted, RFC 2920 section 3.1
		// expects 554): MAIL's transaction stays open until the next RSET.
		if accepted > 0 || code == 421 {
			t.pipeFailed(code, msg, nil)
		}
		return
	}
	if accepted == 0 {
		// The server took DATA although no recipient was accepted: end
		// the empty message, which it must refuse.
		t.endEmptyData(tp)
		return
	}
	t.sendBody(tp, body)
}

// endEmptyData sends the lone dot that closes a DATA nobody should have
// accepted, and reads (and ignores) the reply.
func (t *tx) endEmptyData(tp *textproto.Conn) {
	if err := writeLines(tp.W, []string{"."}); err != nil {
		t.cn.usable = false
		return
	}
	if _, _, err := tp.ReadResponse(0); err != nil && !isProtocolError(err) {
		t.cn.usable = false
		return
	}
	t.cn.dirty = false
}

// sendBody writes the dot-stuffed body and reads the final reply, which
// applies to every accepted recipient.
func (t *tx) sendBody(tp *textproto.Conn, body []byte) {
	nc := t.cn.nc
	_ = nc.SetDeadline(time.Now().Add(t.cn.client.o.DataTimeout))
	nc.writeFailed = false
	if err := writeData(tp.W, body); err != nil {
		t.lost(err)
		return
	}
	code, msg, err := tp.ReadResponse(0)
	switch {
	case err != nil && !isProtocolError(err):
		open := t.open()
		maybe := !nc.writeFailed
		t.lost(fmt.Errorf("no reply after the body: %w", err))
		for _, i := range open {
			t.results[i].MaybeDelivered = maybe
		}
	case code/100 == 2:
		t.cn.dirty = false
		t.settle(StatusSent, t.cn.reply(replyFromText(code, msg)), nil)
	default:
		t.cn.dirty = false
		t.pipeFailed(code, msg, nil)
	}
}

// pipeFailed settles the open recipients by a reply, or as lost when
// there was none.
func (t *tx) pipeFailed(code int, msg string, err error) {
	if err != nil && !isProtocolError(err) {
		t.lost(err)
		return
	}
	r := replyFromText(code, msg)
	ec := smtp.EnhancedCode{}
	if parts := strings.Split(r.Enhanced, "."); len(parts) == 3 {
		for i, p := range parts {
			ec[i], _ = strconv.Atoi(p)
		}
	}
	t.fail(&smtp.SMTPError{Code: code, EnhancedCode: ec, Message: r.Text})
}

// drain reads n pipelined replies that no longer matter; if the last (to
// DATA) opened a message anyway, it is ended empty.
func (t *tx) drain(tp *textproto.Conn, n int) {
	for i := range n {
		code, _, err := tp.ReadResponse(0)
		if err != nil && !isProtocolError(err) {
			t.cn.usable = false
			return
		}
		if i == n-1 && code == 354 {
			t.endEmptyData(tp)
		}
	}
}

// isProtocolError tells a reply that is not what was hoped for (which
// textproto also reports as an error) from a broken connection.
func isProtocolError(err error) bool {
	var te *textproto.Error
	var pe textproto.ProtocolError
	return errors.As(err, &te) || errors.As(err, &pe)
}

// mailLine formats MAIL FROM as go-smtp would, with the parameters the
// server offers (RFC 1652 BODY, RFC 1870 SIZE, RFC 3461 RET and ENVID).
func (t *tx) mailLine(size int) string {
	var b strings.Builder
	b.WriteString("MAIL FROM:<" + t.env.From + ">")
	if ok, _ := t.cn.sc.Extension("8BITMIME"); ok {
		b.WriteString(" BODY=8BITMIME")
	}
	if ok, _ := t.cn.sc.Extension("SIZE"); ok && size > 0 {
		b.WriteString(" SIZE=" + strconv.Itoa(size))
	}
	if ok, _ := t.cn.sc.Extension("DSN"); ok {
		o := t.mailOptions(size)
		if o.Return != "" {
			b.WriteString(" RET=" + string(o.Return))
		}
		if o.EnvelopeID != "" {
			b.WriteString(" ENVID=" + xtext(o.EnvelopeID))
		}
	}
	return b.String()
}

// rcptLine formats RCPT TO with the DSN parameters when offered.
func (t *tx) rcptLine(r Rcpt) string {
	line := "RCPT TO:<" + r.Addr + ">"
	if ok, _ := t.cn.sc.Extension("DSN"); !ok {
		return line
	}
	o := t.rcptOptions(r)
	if o == nil {
		return line
	}
	if len(o.Notify) > 0 {
		ns := make([]string, len(o.Notify))
		for i, n := range o.Notify {
			ns[i] = string(n)
		}
		line += " NOTIFY=" + strings.Join(ns, ",")
	}
	if o.OriginalRecipient != "" {
		line += " ORCPT=rfc822;" + xtext(o.OriginalRecipient)
	}
	return line
}

// xtext encodes a DSN parameter value (RFC 3461 section 4): printable
// ASCII other than '+' and '=' as is, everything else as +XX.
func xtext(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= '!' && c <= '~' && c != '+' && c != '=' {
			b.WriteByte(c)
			continue
		}
		fmt.Fprintf(&b, "+%02X", c)
	}
	return b.String()
}
