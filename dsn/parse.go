package dsn

import (
	"bytes"
	"encoding/base64"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"net/textproto"
	"strings"
)

// Bounds on the work Parse does for one message, whatever its content.
const (
	maxParseBytes  = 4 << 20   // octets of the message looked at; the rest is ignored
	maxParts       = 100       // MIME parts visited
	maxDepth       = 8         // multipart nesting followed
	maxRecipients  = 1000      // recipients returned
	maxStatusBytes = 256 << 10 // octets read from a delivery-status part
	maxTextBytes   = 256 << 10 // octets of text the heuristic scans
	maxValueBytes  = 4000      // octets kept of one field value
)

// ErrNoReport means the message holds no delivery status: no
// message/delivery-status part with a recipient, and no SMTP status in its
// text.
var ErrNoReport = errors.New("dsn: no delivery status found")

// Parsed is what Parse found in an inbound bounce. Values come from a remote
// system: they are trimmed, valid UTF-8 and free of control characters, but
// otherwise as the remote wrote them.
type Parsed struct {
	ReportingMTA string // Reporting-MTA without its "dns;" type
	EnvID        string // Original-Envelope-Id
	Recipients   []ParsedRecipient
	// Heuristic is true when no delivery-status part was usable and the
	// result was guessed from plain text.
	Heuristic bool
}

// ParsedRecipient is one per-recipient group of a report.
type ParsedRecipient struct {
	FinalRecipient    string // address without its type; utf-8-addr-xtext is decoded
	OriginalRecipient string // "type;address", as Report's OriginalRecipient
	Action            string // lower case: failed, delayed, delivered, relayed, expanded
	Status            string // RFC 3463 code; derived from the diagnostic or action if absent
	DiagnosticCode    string // the diagnostic without its "smtp;" type
	RemoteMTA         string // Remote-MTA without its type and comments
}

// Parse reads an inbound delivery status notification. It prefers the
// message/delivery-status (or RFC 6533 message/global-delivery-status) part
// of an RFC 3464 report, found at any depth of a multipart structure. Without
// one it scans the plain text for the first SMTP status and the addresses
// that failed, and sets Heuristic; a heuristic result may have a single
// recipient with no address when the text names none.
//
// Parse accepts CRLF or bare LF line endings, folded fields,
// quoted-printable and base64 parts, and truncated messages. It looks at the
// first 4 MiB only, visits at most 100 parts nested at most 8 deep, and
// returns at most 1000 recipients. It never panics; it returns ErrNoReport
// (possibly wrapped) when it finds nothing.
func Parse(msg []byte) (*Parsed, error) {
	if len(msg) > maxParseBytes {
		msg = msg[:maxParseBytes]
	}
	m, err := mail.ReadMessage(bytes.NewReader(msg))
	if err != nil || !validFieldNames(m.Header) {
		// No usable header section: perhaps a bare text bounce.
		return heuristic(msg, nil, nil)
	}
	w := &walker{}
	w.walk(textproto.MIMEHeader(m.Header), m.Body, 0)
	if w.status != nil && len(w.status.Recipients) > 0 {
		return w.status, nil
	}
	return heuristic(w.text.Bytes(), headerAddresses(m.Header), w.status)
}

// walker visits the MIME tree of a bounce.
type walker struct {
	parts  int
	status *Parsed      // the first delivery-status part seen
	text   bytes.Buffer // text/plain content, for the heuristic
}

func (w *walker) walk(h textproto.MIMEHeader, body io.Reader, depth int) {
	if w.parts >= maxParts || depth > maxDepth {
		return
	}
	w.parts++
	mediaType, params, err := mime.ParseMediaType(h.Get("Content-Type"))
	if err != nil && mediaType == "" {
		mediaType = "text/plain" // RFC 2045 section 5.2 default
	}
	body = decodeTransfer(h.Get("Content-Transfer-Encoding"), body)
	switch {
	case strings.HasPrefix(mediaType, "multipart/") && params["boundary"] != "":
		w.walkMultipart(params["boundary"], body, depth)
	case mediaType == "message/delivery-status" || mediaType == "message/global-delivery-status":
		p := parseStatus(readCapped(body, maxStatusBytes))
		if w.status == nil || (len(w.status.Recipients) == 0 && len(p.Recipients) > 0) {
			w.status = p
		}
	case mediaType == "text/plain" || strings.HasPrefix(mediaType, "multipart/"):
		if room := maxTextBytes - w.text.Len(); room > 0 {
			w.text.Write(readCapped(body, int64(room)))
			w.text.WriteByte('\n')
		}
	}
}

func (w *walker) walkMultipart(boundary string, body io.Reader, depth int) {
	mr := multipart.NewReader(body, boundary)
	for w.parts < maxParts {
		// NextPart decodes quoted-printable parts itself. An error means the
		// end, or a structure too broken to follow: keep what was found.
		p, err := mr.NextPart()
		if err != nil {
			return
		}
		w.walk(p.Header, p, depth+1)
	}
}

// decodeTransfer undoes a Content-Transfer-Encoding (RFC 2045 section 6).
// Decoding errors end the data early rather than failing the parse.
func decodeTransfer(cte string, r io.Reader) io.Reader {
	switch strings.ToLower(strings.TrimSpace(cte)) {
	case "base64":
		return base64.NewDecoder(base64.StdEncoding, r)
	case "quoted-printable":
		return quotedprintable.NewReader(r)
	}
	return r
}

// readCapped reads at most n octets; a read error just ends the data.
func readCapped(r io.Reader, n int64) []byte {
	b, _ := io.ReadAll(io.LimitReader(r, n))
	return b
}

// headerAddresses lists the addresses in the bounce's own header (its From,
// To, Return-Path...): the heuristic must not take them for failed
// recipients, since one of them is our own VERP address.
func headerAddresses(h mail.Header) map[string]bool {
	seen := make(map[string]bool)
	for _, k := range []string{"From", "To", "Cc", "Reply-To", "Sender", "Return-Path", "Delivered-To"} {
		for _, v := range h[k] {
			for _, a := range findAddresses([]byte(v), nil) {
				seen[strings.ToLower(a)] = true
			}
		}
	}
	return seen
}

// validFieldNames reports whether every field name is made of the visible
// ASCII characters RFC 5322 section 3.6.8 allows. net/mail accepts names
// with spaces, so a text that merely starts with "550 5.1.1 <a@b>: ..."
// would otherwise pass for a header section.
func validFieldNames(h mail.Header) bool {
	for k := range h {
		if k == "" {
			return false
		}
		for i := 0; i < len(k); i++ {
			if k[i] <= ' ' || k[i] >= 0x7f || k[i] == ':' {
				return false
			}
		}
	}
	return true
}
