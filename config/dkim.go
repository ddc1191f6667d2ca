package config

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
)

// minRSABits is the smallest RSA key a DKIM signer may use (RFC 8301
// section 3.2: signers MUST use at least 1024 bits, SHOULD use 2048).
const minRSABits = 1024

// dkims checks every [[dkim]].
func (c *checker) dkims(raws []rawDKIM) []DKIM {
	out := make([]DKIM, 0, len(raws))
	seen := map[string]string{} // selector._domainkey.domain → key of first use
	for i := range raws {
		r := &raws[i]
		p := elemPath("dkim", i)
		k := func(name string) string { return childPath(p, name) }
		d := DKIM{}
		d.Domain = c.dkimName(k("domain"), r.Domain)
		d.Selector = c.dkimName(k("selector"), r.Selector)
		name := d.Selector + "._domainkey." + d.Domain
		if prev, dup := seen[name]; dup && d.Domain != "" && d.Selector != "" {
			c.errorf(k("selector"), "%s is already configured (%s, line %d)", name, parentPath(prev), c.idx.line(prev))
		}
		seen[name] = k("selector")
		c.required(k("private_key_file"), r.PrivateKeyFile)
		d.PrivateKeyFile = c.filePath(k("private_key_file"), r.PrivateKeyFile, "")
		if d.PrivateKeyFile != "" {
			signer, err := loadSigner(d.PrivateKeyFile)
			if err != nil {
				c.errorf(k("private_key_file"), "%s: %v", d.PrivateKeyFile, err)
			}
			d.Signer = signer
		} else if r.PrivateKeyFile != nil {
			c.errorf(k("private_key_file"), "must not be empty")
		}
		out = append(out, d)
	}
	return out
}

// dkimName checks a required domain or selector: both are sub-domain
// sequences (RFC 6376 section 3.1), compared in lower case.
func (c *checker) dkimName(key string, v any) string {
	c.required(key, v)
	s, ok := c.str(key, v, "")
	if !ok {
		return s
	}
	s = normalizeDomain(s)
	if err := checkDomain(s); err != nil {
		c.errorf(key, "%q is not a valid name: it %v", s, err)
	}
	return s
}

// loadSigner reads a PEM private key: RSA in PKCS#1 or PKCS#8 form
// (RFC 6376), or Ed25519 in PKCS#8 form (RFC 8463).
func loadSigner(file string) (crypto.Signer, error) {
	data, err := readSmallFile(file)
	if err != nil {
		return nil, fmt.Errorf("cannot read the key: %w", err)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("no PEM block found")
	}
	var key any
	switch block.Type {
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("PEM block %q is not an unencrypted RSA or PKCS#8 private key", block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("cannot parse the key: %w", err)
	}
	return checkSigner(key)
}

// checkSigner accepts the key types DKIM signs with.
func checkSigner(key any) (crypto.Signer, error) {
	switch k := key.(type) {
	case *rsa.PrivateKey:
		if bits := k.N.BitLen(); bits < minRSABits {
			return nil, fmt.Errorf("RSA key has %d bits; RFC 8301 requires at least %d", bits, minRSABits)
		}
		return k, nil
	case ed25519.PrivateKey:
		return k, nil
	default:
		return nil, fmt.Errorf("%s keys cannot sign DKIM: use RSA or Ed25519", strings.TrimPrefix(fmt.Sprintf("%T", key), "*"))
	}
}
