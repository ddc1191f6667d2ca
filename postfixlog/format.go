package postfixlog

import (
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"
)

// line is one output line: the process name after "sluice/" and the text
// after "]: ".
type line struct {
	process string
	text    string
}

// event is one record being formatted.
type event struct {
	h      *Handler
	level  slog.Level
	msg    string
	fields []field
}

// get returns the last value given for key (a record attribute overrides
// one from WithAttrs), as text without control characters.
func (e *event) get(key string) string {
	for i := len(e.fields) - 1; i >= 0; i-- {
		if e.fields[i].key == key {
			return clean(valueString(e.fields[i].val))
		}
	}
	return ""
}

// lines formats the record. Events with a Postfix counterpart are written
// as Postfix writes them when they carry the fields that need; anything
// else, or an event missing a field, is written in the generic form.
func (e *event) lines() []line {
	if e.level == slog.LevelInfo {
		switch e.msg {
		case "delivery":
			if ls, ok := e.delivery(); ok {
				return ls
			}
		case "accepted":
			if ls, ok := e.accepted(); ok {
				return ls
			}
		case "rejected":
			if l, ok := e.rejected(); ok {
				return []line{l}
			}
		}
	}
	return []line{e.generic()}
}

// delivery writes one recipient's attempt as Postfix's smtp(8) does:
// "ID: to=<r>, relay=h[ip]:port, delay=D, delays=a/b/c/d, dsn=X, status=S (text)".
func (e *event) delivery() ([]line, bool) {
	id, to, status := e.get("queue_id"), e.get("to"), word(e.get("status"))
	if id == "" || to == "" || status == "" {
		return nil, false
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s: to=<%s>", id, addr(to))
	if orig := e.get("orig_to"); orig != "" {
		fmt.Fprintf(&b, ", orig_to=<%s>", addr(origAddr(orig)))
	}
	relay := word(e.get("relay"))
	if relay == "" {
		relay = "none"
	}
	fmt.Fprintf(&b, ", relay=%s, delay=%s", e.withPort(relay), orDefault(word(e.get("delay")), "0"))
	if d := word(e.get("delays")); d != "" {
		fmt.Fprintf(&b, ", delays=%s", d)
	}
	if d := word(e.get("dsn")); d != "" {
		fmt.Fprintf(&b, ", dsn=%s", d)
	}
	reply := e.get("reply")
	if status == "expired" {
		// Postfix's qmgr writes "status=expired, returned to sender" once
		// per message; the recipient line keeps the address greppable.
		b.WriteString(", status=expired, returned to sender")
		if reply != "" {
			fmt.Fprintf(&b, " (%s)", reply)
		}
		out := []line{{process: "qmgr", text: b.String()}}
		if e.h.firstExpiry(id) {
			msgLine := line{process: "qmgr", text: fmt.Sprintf("%s: from=<%s>, status=expired, returned to sender", id, addr(e.get("from")))}
			out = append([]line{msgLine}, out...)
		}
		return out, true
	}
	fmt.Fprintf(&b, ", status=%s (%s)", status, explain(status, relay, reply))
	return []line{{process: "smtp", text: b.String()}}, true
}

// withPort appends the delivery port to "host[ip]", which is how Postfix
// writes the relay field.
func (e *event) withPort(relay string) string {
	if relay == "none" || e.h.opts.RelayPort == nil || !strings.HasSuffix(relay, "]") {
		return relay
	}
	if p := e.h.opts.RelayPort(e.get("operator")); p > 0 {
		return relay + ":" + strconv.Itoa(p)
	}
	return relay
}

// explain is the parenthesised text after the status: the remote reply
// as "host h[ip] said: ..." for a refusal, as Postfix writes it, the reply
// itself when sent, or a local diagnosis.
func explain(status, relay, reply string) string {
	switch {
	case reply == "":
		return status
	case status != "sent" && relay != "none" && isReplyCode(reply):
		return "host " + relay + " said: " + reply
	}
	return reply
}

// isReplyCode reports whether s starts with an SMTP reply code (RFC 5321
// section 4.2: three digits, the first 2 to 5).
func isReplyCode(s string) bool {
	return len(s) >= 4 && s[0] >= '2' && s[0] <= '5' && isDigit(s[1]) && isDigit(s[2]) && s[3] == ' '
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// accepted writes a committed message as Postfix's smtpd and qmgr do.
func (e *event) accepted() ([]line, bool) {
	id, size := e.get("queue_id"), word(e.get("size"))
	if id == "" || size == "" {
		return nil, false
	}
	var out []line
	if ip := word(e.get("remote_ip")); ip != "" {
		out = append(out, line{process: "smtpd", text: fmt.Sprintf("%s: client=unknown[%s]", id, ip)})
	}
	text := fmt.Sprintf("%s: from=<%s>, size=%s, nrcpt=%s", id, addr(e.get("from")), size, orDefault(word(e.get("nrcpt")), "0"))
	if p := word(e.get("priority")); p != "" {
		text += ", priority=" + p
	}
	out = append(out, line{process: "qmgr", text: text + " (queue active)"})
	return out, true
}

// rejected writes a refused command as Postfix's smtpd does:
// "NOQUEUE: reject: RCPT from unknown[ip]: 550 text; from=<a> to=<b>".
func (e *event) rejected() (line, bool) {
	stage, code := word(e.get("stage")), word(e.get("code"))
	if stage == "" || code == "" {
		return line{}, false
	}
	id := orDefault(e.get("queue_id"), "NOQUEUE")
	ip := orDefault(word(e.get("remote_ip")), "unknown")
	text := fmt.Sprintf("%s: reject: %s from unknown[%s]: %s %s", id, strings.ToUpper(stage), ip, code, e.get("reason"))
	var env []string
	if f := e.get("from"); f != "" {
		env = append(env, "from=<"+addr(unquote(f))+">")
	}
	if t := e.get("to"); t != "" {
		env = append(env, "to=<"+addr(unquote(t))+">")
	}
	if len(env) > 0 {
		text += "; " + strings.Join(env, " ")
	}
	return line{process: "smtpd", text: text}, true
}

// generic writes any other record readably:
// "ID: warning: message: key=value, key=value".
func (e *event) generic() line {
	var b strings.Builder
	if id := e.get("queue_id"); id != "" {
		b.WriteString(id + ": ")
	}
	switch {
	case e.level >= slog.LevelError:
		b.WriteString("error: ")
	case e.level >= slog.LevelWarn:
		b.WriteString("warning: ")
	case e.level < slog.LevelInfo:
		b.WriteString("debug: ")
	}
	b.WriteString(clean(e.msg))
	sep := ": "
	for _, f := range e.fields {
		if f.key == "queue_id" || f.key == "component" {
			continue
		}
		b.WriteString(sep)
		b.WriteString(clean(f.key))
		b.WriteByte('=')
		b.WriteString(quoteIfNeeded(clean(valueString(f.val))))
		sep = ", "
	}
	return line{process: orDefault(word(e.get("component")), "main"), text: b.String()}
}

func valueString(v slog.Value) string {
	switch v.Kind() {
	case slog.KindTime:
		return v.Time().Format(time.RFC3339)
	case slog.KindDuration:
		return v.Duration().String()
	case slog.KindAny:
		if err, ok := v.Any().(error); ok {
			return err.Error()
		}
	}
	return v.String()
}

// clean replaces control characters, so that no value can end the line or
// forge another one.
func clean(s string) string {
	if strings.IndexFunc(s, isControl) < 0 {
		return s
	}
	return strings.Map(func(r rune) rune {
		if isControl(r) {
			return ' '
		}
		return r
	}, s)
}

func isControl(r rune) bool {
	return r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == 0x2028 || r == 0x2029
}

// word keeps a value that must be one token (status, relay, delays) one
// token.
func word(s string) string { return strings.ReplaceAll(s, " ", "_") }

// addr keeps an address inside its angle brackets.
func addr(s string) string {
	return strings.NewReplacer("<", "?", ">", "?").Replace(s)
}

// origAddr strips the RFC 3461 address type from an ORCPT ("rfc822;a@b").
func origAddr(s string) string {
	if i := strings.IndexByte(s, ';'); i >= 0 && strings.EqualFold(s[:i], "rfc822") {
		return s[i+1:]
	}
	return s
}

// unquote undoes the quoting smtpd applies to client-supplied values it
// could not parse.
func unquote(s string) string {
	if u, err := strconv.Unquote(s); err == nil {
		return clean(u)
	}
	return s
}

func quoteIfNeeded(s string) string {
	if s == "" || strings.ContainsAny(s, " ,=\"") {
		return strconv.Quote(s)
	}
	return s
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
