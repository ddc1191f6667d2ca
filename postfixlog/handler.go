// Package postfixlog is a log/slog handler that writes sluice's log in the
// layout of Postfix's mail log, so that pflogsumm and the other tools
// written for Postfix read it (log.format = "postfix").
//
// Each line is "Mmm dd hh:mm:ss HOST sluice/PROCESS[PID]: TEXT", the
// traditional syslog layout (RFC 3164 section 4.1.2) that Postfix writes
// through syslogd. The events that tools look for are written word for
// word as Postfix writes them:
//
//   - msg=accepted (smtpd) becomes two lines, as Postfix's smtpd and qmgr
//     write them: "ID: client=unknown[IP]" and "ID: from=<a>, size=N,
//     nrcpt=M (queue active)";
//   - msg=delivery (scheduler) becomes "ID: to=<r>, relay=host[ip]:port,
//     delay=D, delays=a/b/c/d, dsn=X.Y.Z, status=sent (reply)", and for an
//     expired recipient the qmgr line "ID: from=<s>, status=expired,
//     returned to sender" once per message;
//   - msg=rejected (smtpd) becomes "NOQUEUE: reject: RCPT from
//     unknown[IP]: 550 reason; from=<a> to=<b>".
//
// Every other record is written in a readable form: "ID: warning: text:
// key=value, key=value". The handler never adds anything the record does
// not carry (no message bodies, no credentials): what to log stays the
// caller's decision.
package postfixlog

import (
	"context"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Options configure a Handler.
type Options struct {
	// Level is the lowest level written; nil means Info.
	Level slog.Leveler
	// SyslogName is the program name before the slash; empty means
	// "sluice" (pflogsumm --syslog-name=sluice).
	SyslogName string
	// Hostname is the host field; empty means the short host name.
	Hostname string
	// PID is the process ID in brackets; zero means os.Getpid().
	PID int
	// RelayPort, if set, returns the port delivery used for an operator
	// key, so that relay=host[ip] can be written as Postfix does,
	// relay=host[ip]:port. Nil leaves the relay as the record has it.
	RelayPort func(operator string) int
	// Now is the clock for records without a time; nil means time.Now.
	Now func() time.Time
}

// Handler writes Postfix-style lines to one writer. It is safe for
// concurrent use; every record is one Write call.
type Handler struct {
	opts   Options
	shared *shared
	attrs  []field // pre-formatted attributes from WithAttrs
	prefix string  // group prefix for keys ("g." per WithGroup)
}

// shared is the state of a handler and all its children.
type shared struct {
	mu      sync.Mutex
	w       io.Writer
	expired [16]string // queue IDs whose expiry line was written, a ring
	next    int
}

// field is one attribute, flattened: group names joined with dots.
type field struct {
	key string
	val slog.Value
}

// New returns a handler writing to w.
func New(w io.Writer, o Options) *Handler {
	if o.Level == nil {
		o.Level = slog.LevelInfo
	}
	if o.SyslogName == "" {
		o.SyslogName = "sluice"
	}
	if o.Hostname == "" {
		o.Hostname = shortHostname()
	}
	if o.PID == 0 {
		o.PID = os.Getpid()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Handler{opts: o, shared: &shared{w: w}}
}

func shortHostname() string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		return "localhost"
	}
	if i := strings.IndexByte(h, '.'); i > 0 {
		h = h[:i]
	}
	return h
}

// Enabled reports whether records at level are written.
func (h *Handler) Enabled(_ context.Context, level slog.Level) bool {
	return level >= h.opts.Level.Level()
}

// WithAttrs returns a handler that adds attrs to every record.
func (h *Handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	if len(attrs) == 0 {
		return h
	}
	c := *h
	c.attrs = append(append([]field(nil), h.attrs...), flatten(h.prefix, attrs)...)
	return &c
}

// WithGroup returns a handler that qualifies later keys with name.
func (h *Handler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	c := *h
	c.prefix = h.prefix + name + "."
	return &c
}

// Handle writes the record as one or more lines.
func (h *Handler) Handle(_ context.Context, r slog.Record) error {
	fields := make([]field, 0, len(h.attrs)+r.NumAttrs())
	fields = append(fields, h.attrs...)
	r.Attrs(func(a slog.Attr) bool {
		fields = append(fields, flatten(h.prefix, []slog.Attr{a})...)
		return true
	})
	t := r.Time
	if t.IsZero() {
		t = h.opts.Now()
	}
	ev := event{h: h, level: r.Level, msg: r.Message, fields: fields}
	var b strings.Builder
	for _, ln := range ev.lines() {
		b.WriteString(t.Format(time.Stamp))
		b.WriteByte(' ')
		b.WriteString(h.opts.Hostname)
		b.WriteByte(' ')
		b.WriteString(h.opts.SyslogName)
		b.WriteByte('/')
		b.WriteString(ln.process)
		b.WriteByte('[')
		b.WriteString(strconv.Itoa(h.opts.PID))
		b.WriteString("]: ")
		b.WriteString(ln.text)
		b.WriteByte('\n')
	}
	h.shared.mu.Lock()
	defer h.shared.mu.Unlock()
	_, err := io.WriteString(h.shared.w, b.String())
	return err
}

// firstExpiry reports whether the message-level expiry line for id is
// still to be written, and records that it is being written now. Recipients
// of one message expire together, so a short ring of IDs is enough.
func (h *Handler) firstExpiry(id string) bool {
	s := h.shared
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, seen := range s.expired {
		if seen == id {
			return false
		}
	}
	s.expired[s.next] = id
	s.next = (s.next + 1) % len(s.expired)
	return true
}

// flatten resolves attrs and spreads groups into dotted keys; empty
// attributes are dropped, as slog's own handlers do.
func flatten(prefix string, attrs []slog.Attr) []field {
	var out []field
	for _, a := range attrs {
		v := a.Value.Resolve()
		if v.Kind() == slog.KindGroup {
			p := prefix
			if a.Key != "" {
				p += a.Key + "."
			}
			out = append(out, flatten(p, v.Group())...)
			continue
		}
		if a.Key == "" {
			continue
		}
		out = append(out, field{key: prefix + a.Key, val: v})
	}
	return out
}
