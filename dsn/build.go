package dsn

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"mime/multipart"
	"net/textproto"
	"strconv"
	"strings"
)

// Subjects of the three kinds of report.
const (
	SubjectFailed    = "Undelivered Mail Returned to Sender"
	SubjectDelayed   = "Delayed Mail (still being retried)"
	SubjectDelivered = "Successful Mail Delivery Report"
)

// fromName is the display name of the report's From header.
const fromName = "Mail Delivery System"

// maxBoundaryTries bounds the search for a boundary that occurs in no part.
const maxBoundaryTries = 100

// errNoBoundary is returned if every candidate boundary occurs in the
// content, which takes a deliberately crafted original and then some luck.
var errNoBoundary = errors.New("dsn: no usable MIME boundary")

// part is one body part of the report.
type part struct {
	header textproto.MIMEHeader
	body   []byte
}

// Build returns the report as a complete RFC 5322 message with CRLF line
// endings, to be queued with the null envelope sender (RFC 5321 section
// 4.5.5). It is a multipart/report (RFC 6522) with report-type
// delivery-status holding a text/plain explanation, the
// message/delivery-status part (RFC 3464) and, when r.Original is not empty,
// the returned original: message/rfc822 for a failure report with RET=FULL,
// text/rfc822-headers otherwise.
//
// The header section and the first two parts are 7-bit ASCII with lines of
// at most 998 octets whatever the input. The returned original keeps its
// octets (with NUL replaced and lines normalised, see prepareOriginal); when
// it holds 8-bit data its part and the whole message are labelled 8bit.
//
// Build fails with ErrNullSender when r.To is the null path and with a
// *FieldError for a missing or malformed field.
func Build(r *Report) ([]byte, error) {
	if r == nil {
		return nil, &FieldError{Field: "Report", Reason: "nil"}
	}
	if err := r.validate(); err != nil {
		return nil, err
	}
	ret := prepareOriginal(r.Original, r.returnsFull(), r.maxReturnBytes())
	parts := []part{
		{header: partHeader("text/plain; charset=us-ascii", "Notification", false),
			body: []byte(humanPart(r, ret))},
		{header: partHeader("message/delivery-status", "Delivery report", false),
			body: []byte(statusPart(r))},
	}
	if len(r.Original) > 0 {
		parts = append(parts, originalPart(r, ret))
	}
	boundary, err := chooseBoundary(r, parts)
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	writeHeader(&out, r, boundary, ret.eightBit)
	out.WriteString("This is a MIME-encapsulated message.\r\n\r\n")
	mw := multipart.NewWriter(&out)
	if err := mw.SetBoundary(boundary); err != nil {
		return nil, fmt.Errorf("dsn: set boundary: %w", err)
	}
	for _, p := range parts {
		w, err := mw.CreatePart(p.header)
		if err != nil {
			return nil, fmt.Errorf("dsn: create part: %w", err)
		}
		// Writes to a bytes.Buffer cannot fail.
		_, _ = w.Write(p.body)
	}
	if err := mw.Close(); err != nil {
		return nil, fmt.Errorf("dsn: close multipart: %w", err)
	}
	return out.Bytes(), nil
}

func partHeader(contentType, description string, eightBit bool) textproto.MIMEHeader {
	cte := "7bit"
	if eightBit {
		cte = "8bit"
	}
	return textproto.MIMEHeader{
		"Content-Type":              {contentType},
		"Content-Description":       {description},
		"Content-Transfer-Encoding": {cte},
	}
}

// originalPart returns the original, or its header section. A truncated
// full return stays message/rfc822 (the original's headers and the first
// whole lines of its body): a reader still sees a message, and the
// human-readable part says it was cut.
func originalPart(r *Report, ret returned) part {
	if r.returnsFull() {
		body := make([]byte, 0, ret.size)
		body = append(body, ret.header...)
		body = append(body, '\r', '\n')
		body = append(body, ret.body...)
		return part{header: partHeader("message/rfc822", "Returned message", ret.eightBit), body: body}
	}
	return part{header: partHeader("text/rfc822-headers", "Returned message headers", ret.eightBit),
		body: ret.header}
}

// writeHeader writes the report's header section. Every value is either
// ours or sanitised, so no input can add or split a header field.
func writeHeader(out *bytes.Buffer, r *Report, boundary string, eightBit bool) {
	var b strings.Builder
	from := r.From
	if strings.TrimSpace(from) == "" {
		from = "MAILER-DAEMON@" + cleanWord(r.ReportingMTA, maxHostBytes)
	}
	writeField(&b, "From", fromName+" <"+headerAddress(from)+">")
	writeField(&b, "To", "<"+headerAddress(r.To)+">")
	writeField(&b, "Subject", subject(r.kind()))
	writeField(&b, "Date", formatDate(r.Date))
	writeField(&b, "Message-ID", r.MessageID)
	// RFC 3834 section 5: a report is an automatic response.
	writeField(&b, "Auto-Submitted", "auto-replied")
	writeField(&b, "MIME-Version", "1.0")
	writeField(&b, "Content-Type", `multipart/report; report-type=delivery-status; boundary="`+boundary+`"`)
	cte := "7bit"
	if eightBit {
		// RFC 2045 section 6.4: a multipart is labelled with the widest
		// encoding of its parts.
		cte = "8bit"
	}
	writeField(&b, "Content-Transfer-Encoding", cte)
	b.WriteString("\r\n")
	out.WriteString(b.String())
}

// headerAddress makes an address safe inside <> in a header: no spaces,
// controls or non-ASCII, no angle brackets, bounded length.
func headerAddress(addr string) string {
	a := strings.TrimSpace(addr)
	a = strings.TrimPrefix(a, "<")
	a = strings.TrimSuffix(a, ">")
	a = cleanWord(a, maxAddrBytes)
	return strings.NewReplacer("<", "?", ">", "?").Replace(a)
}

func subject(kind Action) string {
	switch kind {
	case ActionFailed:
		return SubjectFailed
	case ActionDelayed:
		return SubjectDelayed
	}
	return SubjectDelivered
}

// chooseBoundary derives a boundary from the report's content, so Build is
// deterministic, and makes sure that no part contains it (RFC 2046 section
// 5.1.1). "=_" cannot occur in quoted-printable text, which makes a clash
// with the original's own MIME structure even less likely.
func chooseBoundary(r *Report, parts []part) (string, error) {
	h := sha256.New()
	h.Write([]byte(r.MessageID))
	for _, p := range parts {
		h.Write(p.body)
	}
	base := "=_sluice_" + hex.EncodeToString(h.Sum(nil))[:32]
	for i := 0; i < maxBoundaryTries; i++ {
		b := base
		if i > 0 {
			b += "_" + strconv.Itoa(i)
		}
		if !boundaryClashes(b, parts) {
			return b, nil
		}
	}
	return "", errNoBoundary
}

func boundaryClashes(boundary string, parts []part) bool {
	delim := []byte("--" + boundary)
	for _, p := range parts {
		if bytes.Contains(p.body, delim) {
			return true
		}
	}
	return false
}
