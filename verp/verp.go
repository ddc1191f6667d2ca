// Package verp encodes and decodes sluice's VERP return paths (variable
// envelope return paths): one envelope sender per recipient, so that an
// asynchronous bounce, sent to that address days later, says exactly which
// message and recipient failed.
//
// The format, for an operator with envelope_from = "bounces@relay.example":
//
//	bounces+QUEUEID-INDEX-TAG=RCPTDOMAIN@relay.example
//
// QUEUEID is the queue ID, INDEX the recipient's position in the message,
// RCPTDOMAIN the recipient's domain (for humans reading logs; left out when
// the local part would pass the 64 octets RFC 5321 section 4.5.3.1.1
// allows), and TAG an HMAC of the rest under a secret key, so that nobody
// can forge a bounce that fails a recipient of someone else's mail.
// Matching ignores case: some relays fold local parts.
//
// The package is pure: the caller keeps the key.
package verp

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base32"
	"strconv"
	"strings"
)

// KeyBytes is the size of a key made by the caller (random).
const KeyBytes = 32

const tagChars = 8

var tagEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// Codec makes and checks return paths with one key.
type Codec struct{ key []byte }

// New returns a codec for key.
func New(key []byte) *Codec { return &Codec{key: append([]byte(nil), key...)} }

// Encode returns the return path for recipient index idx (address rcpt) of
// message queueID, based on the operator's envelope_from base.
func (c *Codec) Encode(base, queueID string, idx int, rcpt string) string {
	local, domain, ok := split(base)
	if !ok {
		return base
	}
	id := strings.ToUpper(queueID) + "-" + strconv.Itoa(idx)
	lp := local + "+" + id + "-" + c.tag(id)
	if _, rdom, ok := split(rcpt); ok && len(lp)+1+len(rdom) <= 64 {
		lp += "=" + strings.ToLower(rdom)
	}
	return lp + "@" + domain
}

// Decode checks that addr is a return path made by Encode from one of
// bases, and returns the queue ID and recipient index it names.
func (c *Codec) Decode(addr string, bases []string) (queueID string, idx int, ok bool) {
	local, domain, ok := split(addr)
	if !ok {
		return "", 0, false
	}
	for _, base := range bases {
		bl, bd, ok := split(base)
		if !ok || !strings.EqualFold(bd, domain) || len(local) <= len(bl)+1 ||
			!strings.EqualFold(local[:len(bl)], bl) || local[len(bl)] != '+' {
			continue
		}
		if id, i, ok := c.decodeExtension(local[len(bl)+1:]); ok {
			return id, i, true
		}
	}
	return "", 0, false
}

// decodeExtension parses "QUEUEID-INDEX-TAG[=domain]".
func (c *Codec) decodeExtension(ext string) (string, int, bool) {
	if i := strings.IndexByte(ext, '='); i >= 0 {
		ext = ext[:i]
	}
	parts := strings.Split(ext, "-")
	if len(parts) != 3 || parts[0] == "" {
		return "", 0, false
	}
	idx, err := strconv.Atoi(parts[1])
	if err != nil || idx < 0 || strconv.Itoa(idx) != parts[1] {
		return "", 0, false
	}
	id := strings.ToUpper(parts[0])
	if !hmac.Equal([]byte(strings.ToLower(parts[2])), []byte(c.tag(id+"-"+parts[1]))) {
		return "", 0, false
	}
	return id, idx, true
}

func (c *Codec) tag(s string) string {
	m := hmac.New(sha256.New, c.key)
	m.Write([]byte(s))
	return tagEncoding.EncodeToString(m.Sum(nil))[:tagChars]
}

func split(addr string) (local, domain string, ok bool) {
	i := strings.LastIndexByte(addr, '@')
	if i <= 0 || i == len(addr)-1 {
		return "", "", false
	}
	return addr[:i], addr[i+1:], true
}
