package dsn

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/mail"
	"net/textproto"
	"testing"
	"time"
)

var (
	testDate    = time.Date(2026, 3, 2, 14, 5, 6, 0, time.UTC)
	testArrival = time.Date(2026, 3, 1, 9, 0, 0, 0, time.FixedZone("", 3600))
	testRetry   = time.Date(2026, 3, 6, 9, 0, 0, 0, time.UTC)
)

const testOriginal = "Return-Path: <alice@sender.example>\r\n" +
	"From: Alice <alice@sender.example>\r\n" +
	"To: bob@bigmail.example\r\n" +
	"Subject: Quarterly numbers\r\n" +
	"Message-ID: <q1@sender.example>\r\n" +
	"\r\n" +
	"Line one of the body.\r\n" +
	"Line two of the body.\r\n" +
	"Line three of the body.\r\n"

// newTestReport returns a valid failure report for one recipient.
func newTestReport() *Report {
	return &Report{
		ReportingMTA: "relay.example.net",
		From:         "MAILER-DAEMON@relay.example.net",
		To:           "alice@sender.example",
		Date:         testDate,
		MessageID:    "<dsn.Q123@relay.example.net>",
		QueueID:      "Q123",
		ArrivalDate:  testArrival,
		Original:     []byte(testOriginal),
		Recipients: []Recipient{{
			FinalRecipient: "bob@bigmail.example",
			Action:         ActionFailed,
			Status:         "5.1.1",
			RemoteMTA:      "mx1.bigmail.example",
			DiagnosticCode: "550 5.1.1 user unknown",
			LastAttempt:    testDate.Add(-time.Minute),
		}},
	}
}

// mimePart is one body part as mime/multipart sees it.
type mimePart struct {
	header textproto.MIMEHeader
	body   []byte
}

func (p mimePart) mediaType(t *testing.T) string {
	t.Helper()
	mt, _, err := mime.ParseMediaType(p.header.Get("Content-Type"))
	if err != nil {
		t.Fatalf("part Content-Type %q: %v", p.header.Get("Content-Type"), err)
	}
	return mt
}

// dissect reads a built report with net/mail and mime/multipart only, as an
// independent check on Build (and independent of Parse).
func dissect(t *testing.T, msg []byte) (mail.Header, []mimePart) {
	t.Helper()
	m, err := mail.ReadMessage(bytes.NewReader(msg))
	if err != nil {
		t.Fatalf("mail.ReadMessage: %v", err)
	}
	mt, params, err := mime.ParseMediaType(m.Header.Get("Content-Type"))
	if err != nil {
		t.Fatalf("top Content-Type: %v", err)
	}
	if mt != "multipart/report" || params["report-type"] != "delivery-status" {
		t.Fatalf("top media type = %q report-type %q, want multipart/report delivery-status", mt, params["report-type"])
	}
	mr := multipart.NewReader(m.Body, params["boundary"])
	var parts []mimePart
	for i := 0; i < 10; i++ {
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			return m.Header, parts
		}
		if err != nil {
			t.Fatalf("NextPart: %v", err)
		}
		body, err := io.ReadAll(p)
		if err != nil {
			t.Fatalf("read part: %v", err)
		}
		parts = append(parts, mimePart{header: p.Header, body: body})
	}
	t.Fatal("more than 10 parts")
	return nil, nil
}

// statusGroups reads a message/delivery-status body with net/textproto:
// the per-message group first, then one group per recipient.
func statusGroups(t *testing.T, body []byte) []textproto.MIMEHeader {
	t.Helper()
	tp := textproto.NewReader(bufio.NewReader(bytes.NewReader(body)))
	var groups []textproto.MIMEHeader
	for i := 0; i < 100; i++ {
		h, err := tp.ReadMIMEHeader()
		if len(h) > 0 {
			groups = append(groups, h)
		}
		if errors.Is(err, io.EOF) {
			return groups
		}
		if err != nil {
			t.Fatalf("delivery-status group %d: %v", i, err)
		}
	}
	t.Fatal("more than 100 groups")
	return nil
}

// buildDissect builds r and dissects the result.
func buildDissect(t *testing.T, r *Report) ([]byte, mail.Header, []mimePart) {
	t.Helper()
	out, err := Build(r)
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	h, parts := dissect(t, out)
	return out, h, parts
}

// checkLines fails unless every line of msg ends in CRLF and is at most
// 998 octets long (RFC 5322 section 2.1.1).
func checkLines(t *testing.T, msg []byte) {
	t.Helper()
	if err := lineError(msg); err != nil {
		t.Fatal(err)
	}
}

func lineError(msg []byte) error {
	rest := msg
	for n := 1; len(rest) > 0; n++ {
		i := bytes.IndexByte(rest, '\n')
		if i < 0 {
			return errors.New("last line has no CRLF")
		}
		line := rest[:i]
		if len(line) == 0 || line[len(line)-1] != '\r' {
			return fmt.Errorf("line %d ends in bare LF: %q", n, line)
		}
		line = line[:len(line)-1]
		if bytes.IndexByte(line, '\r') >= 0 {
			return fmt.Errorf("line %d has a bare CR: %q", n, line)
		}
		if len(line) > maxLineBytes {
			return fmt.Errorf("line %d is %d octets, want at most %d", n, len(line), maxLineBytes)
		}
		rest = rest[i+1:]
	}
	return nil
}
