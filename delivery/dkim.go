package delivery

import (
	"bufio"
	"bytes"
	"crypto"
	"fmt"
	"net/mail"
	"net/textproto"
	"strings"

	"github.com/emersion/go-msgauth/dkim"
)

// signedHeaders are the fields covered by our signatures (RFC 6376 section
// 5.4.1). Fields absent from a message are still listed, which keeps
// anyone from adding them later without breaking the signature (RFC 6376
// section 8.15).
var signedHeaders = []string{
	"From", "To", "Subject", "Date", "Message-ID", "Cc", "MIME-Version",
	"Content-Type", "Content-Transfer-Encoding", "Reply-To", "In-Reply-To", "References",
}

// sign prepends a DKIM-Signature when env asks for it and a key matches
// the domain of the From header. Without a matching key the body is sent
// as is; an error means a key matched but signing failed, and the caller
// must not send the message unsigned.
func (c *Client) sign(env Envelope, body []byte) ([]byte, error) {
	if !env.DKIM || len(c.o.DKIM) == 0 {
		return body, nil
	}
	domain, err := fromDomain(body)
	if err != nil {
		c.log.Debug("not signing: no usable From header", "from", env.From, "err", err)
		return body, nil
	}
	key, ok := c.dkimKey(domain)
	if !ok {
		c.log.Debug("not signing: no DKIM key for the From domain", "from", env.From, "domain", domain)
		return body, nil
	}
	sig, err := signature(key, body)
	if err != nil {
		return nil, fmt.Errorf("dkim sign for %s (selector %s): %w", key.Domain, key.Selector, err)
	}
	out := make([]byte, 0, len(sig)+len(body))
	return append(append(out, sig...), body...), nil
}

// dkimKey finds the key for domain (exact, case-insensitive match).
func (c *Client) dkimKey(domain string) (DKIMKey, bool) {
	for _, k := range c.o.DKIM {
		if strings.EqualFold(strings.TrimSuffix(k.Domain, "."), domain) {
			return k, true
		}
	}
	return DKIMKey{}, false
}

// signature returns the DKIM-Signature field, with its CRLF, for body:
// relaxed/relaxed canonicalization and SHA-256 (RFC 8301 section 3.1).
func signature(key DKIMKey, body []byte) (string, error) {
	s, err := dkim.NewSigner(&dkim.SignOptions{
		Domain:                 key.Domain,
		Selector:               key.Selector,
		Signer:                 key.Signer,
		Hash:                   crypto.SHA256,
		HeaderCanonicalization: dkim.CanonicalizationRelaxed,
		BodyCanonicalization:   dkim.CanonicalizationRelaxed,
		HeaderKeys:             signedHeaders,
	})
	if err != nil {
		return "", err
	}
	if _, err := s.Write(body); err != nil {
		_ = s.Close()
		return "", err
	}
	if err := s.Close(); err != nil {
		return "", err
	}
	return s.Signature(), nil
}

// fromDomain returns the lower-case domain of the single author address
// in the From header field (RFC 5322 section 3.6.2).
func fromDomain(body []byte) (string, error) {
	h, err := textproto.NewReader(bufio.NewReader(bytes.NewReader(body))).ReadMIMEHeader()
	from := h.Values("From")
	if len(from) != 1 {
		return "", fmt.Errorf("%d From fields (header read: %v)", len(from), err)
	}
	addrs, err := mail.ParseAddressList(from[0])
	if err != nil {
		return "", fmt.Errorf("parse From: %w", err)
	}
	at := strings.LastIndexByte(addrs[0].Address, '@')
	if at < 0 || at == len(addrs[0].Address)-1 {
		return "", fmt.Errorf("address %q in From has no domain", addrs[0].Address)
	}
	return strings.ToLower(strings.TrimSuffix(addrs[0].Address[at+1:], ".")), nil
}
