package delivery

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/emersion/go-smtp"
)

// Enhanced status codes (RFC 3463) for transaction outcomes we decide.
const (
	enhBadSender = "5.1.7" // bad sender's mailbox address syntax
	enhBadRcpt   = "5.1.3" // bad destination mailbox address syntax
	enhNeedsUTF8 = "5.6.7" // RFC 6531 section 3.5: SMTPUTF8 not offered
)

// tx is one transaction: one result per recipient, in envelope order.
type tx struct {
	ctx     context.Context
	cn      *Conn
	env     Envelope
	results []Result
	done    []bool
}

// Send runs one transaction (MAIL, RCPT each, DATA) and returns one result
// per recipient in envelope order. It never returns an error: a failure is
// in each result. RCPT replies apply per recipient; the final reply after
// DATA applies to every accepted recipient. A 421 anywhere, a network
// error or a timeout defers all remaining recipients and makes the Conn
// unusable; when the connection drops after the final dot, the results are
// deferred with MaybeDelivered set. The context aborts the transaction by
// closing the connection.
func (cn *Conn) Send(ctx context.Context, env Envelope, body []byte) []Result {
	t := &tx{ctx: ctx, cn: cn, env: env, results: make([]Result, len(env.Rcpts)), done: make([]bool, len(env.Rcpts))}
	for i, r := range env.Rcpts {
		t.results[i] = Result{Rcpt: r.Addr, Status: StatusDeferred}
	}
	if len(env.Rcpts) == 0 {
		return t.results
	}
	if !cn.usable {
		t.settle(StatusDeferred, cn.reply(Reply{Enhanced: enhConnLost, Text: "connection not usable"}), ErrUnusable)
		return t.results
	}
	stop := context.AfterFunc(ctx, cn.abort)
	defer func() {
		if !stop() {
			cn.usable = false
		}
	}()
	signed, err := cn.client.sign(env, body)
	if err != nil {
		// Never send unsigned what should be signed; the error travels in
		// the results for the caller to log once.
		t.settle(StatusDeferred, Reply{Enhanced: enhLocalFailure, Text: "DKIM signing failed"}, err)
		return t.results
	}
	t.run(signed)
	return t.results
}

// run drives the transaction after the local checks.
func (t *tx) run(body []byte) {
	if t.pipelined() {
		if t.precheck() {
			t.runPipelined(body)
		}
		return
	}
	if t.cn.dirty {
		if err := t.cn.rset(); err != nil {
			t.fail(err)
			return
		}
	}
	if !t.precheck() || !t.mail(len(body)) {
		return
	}
	accepted := t.rcpts()
	if accepted == 0 {
		if t.cn.usable {
			_ = t.cn.rset()
		}
		return
	}
	t.data(body)
}

// set records the outcome for recipient i.
func (t *tx) set(i int, st Status, r Reply, err error) {
	t.results[i].Status, t.results[i].Reply, t.results[i].Err = st, r, err
	t.done[i] = true
}

// open returns the recipients without an outcome yet.
func (t *tx) open() []int {
	var out []int
	for i, d := range t.done {
		if !d {
			out = append(out, i)
		}
	}
	return out
}

// settle records one outcome for every recipient still open.
func (t *tx) settle(st Status, r Reply, err error) {
	for i := range t.results {
		if !t.done[i] {
			t.set(i, st, r, err)
		}
	}
}

// fail settles the open recipients after a failed command: by the reply
// when the server answered, else as a lost connection. A reply that is not
// an error class where an error was reported (e.g. 2xx to DATA) is a
// protocol error and defers.
func (t *tx) fail(err error) {
	var se *smtp.SMTPError
	if !errors.As(err, &se) {
		t.lost(err)
		return
	}
	st := Classify(se.Code, nil)
	if st == StatusSent {
		st = StatusDeferred
	}
	if se.Code == 421 {
		// RFC 5321 section 3.8: the server is closing the channel.
		t.cn.usable = false
	}
	t.settle(st, t.cn.reply(replyFromSMTPError(se)), nil)
}

// lost settles the open recipients after a network error or timeout.
func (t *tx) lost(err error) {
	t.cn.usable = false
	err = withCause(t.ctx, err)
	t.settle(StatusDeferred, t.cn.reply(Reply{Enhanced: enhConnLost, Text: "lost connection: " + oneLine(err.Error())}), err)
}

// precheck rejects what go-smtp would refuse locally (CR or LF in an
// address) and non-ASCII addresses the server cannot take.
func (t *tx) precheck() bool {
	if strings.ContainsAny(t.env.From, "\r\n") {
		t.settle(StatusFailed, Reply{Enhanced: enhBadSender, Text: "bad sender address syntax"}, nil)
		return false
	}
	for i, r := range t.env.Rcpts {
		if strings.ContainsAny(r.Addr, "\r\n") {
			t.set(i, StatusFailed, Reply{Enhanced: enhBadRcpt, Text: "bad recipient address syntax"}, nil)
		}
	}
	if len(t.open()) == 0 {
		return false
	}
	if t.needsUTF8() {
		if ok, _ := t.cn.sc.Extension("SMTPUTF8"); !ok {
			t.settle(StatusFailed, t.cn.reply(Reply{Enhanced: enhNeedsUTF8, Text: "SMTPUTF8 is required, but was not offered by host"}), nil)
			return false
		}
	}
	return true
}

func (t *tx) needsUTF8() bool {
	if !isASCII(t.env.From) {
		return true
	}
	for i, r := range t.env.Rcpts {
		if !t.done[i] && !isASCII(r.Addr) {
			return true
		}
	}
	return false
}

// mail sends MAIL FROM. Any 2xx starts the transaction (go-smtp insists
// on 250).
func (t *tx) mail(size int) bool {
	err := t.cn.sc.Mail(t.env.From, t.mailOptions(size))
	var se *smtp.SMTPError
	if err == nil || errors.As(err, &se) && se.Code/100 == 2 {
		t.cn.dirty = true
		return true
	}
	t.fail(err)
	return false
}

// rcpts sends RCPT TO for each open recipient and returns how many were
// accepted. A 421 or a lost connection ends the transaction.
func (t *tx) rcpts() int {
	var accepted int
	for i, r := range t.env.Rcpts {
		if t.done[i] {
			continue
		}
		t.results[i].RcptSent = true
		err := t.cn.sc.Rcpt(r.Addr, t.rcptOptions(r))
		if err == nil {
			accepted++
			continue
		}
		var se *smtp.SMTPError
		if !errors.As(err, &se) || se.Code == 421 {
			t.fail(err)
			return 0
		}
		if se.Code/100 == 2 {
			accepted++ // a positive reply go-smtp did not expect (not 25x)
			continue
		}
		code := se.Code
		if code == 552 {
			// RFC 5321 section 4.5.3.1.10: 552 to RCPT means too many
			// recipients and is to be treated as temporary (452).
			code = 452
		}
		t.set(i, Classify(code, nil), t.cn.reply(replyFromSMTPError(se)), nil)
	}
	return accepted
}

// data sends the body with a deadline over the whole transfer and waits
// (DataTimeout) for the final reply, which applies to every accepted
// recipient.
func (t *tx) data(body []byte) {
	w, err := t.cn.sc.Data()
	if err != nil {
		t.fail(err)
		return
	}
	nc := t.cn.nc
	_ = nc.SetDeadline(time.Now().Add(t.cn.client.o.DataTimeout))
	nc.writeFailed = false
	if _, err := w.Write(body); err != nil {
		t.lost(err)
		return
	}
	resp, err := w.CloseWithResponse()
	var se *smtp.SMTPError
	switch {
	case err == nil:
		t.cn.dirty = false
		t.settle(StatusSent, t.cn.reply(replyFromText(250, resp.StatusText)), nil)
	case errors.As(err, &se):
		t.cn.dirty = false
		t.fail(err)
	default:
		// Without a reply after the whole body left, the server may have
		// taken the message: a retry risks a duplicate (RFC 1047).
		open := t.open()
		maybe := !nc.writeFailed
		t.lost(fmt.Errorf("no reply after the body: %w", err))
		for _, i := range open {
			t.results[i].MaybeDelivered = maybe
		}
	}
}
