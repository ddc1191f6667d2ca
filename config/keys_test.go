package config

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// testRSAKey is generated once: RSA key generation is slow under -race.
var testRSAKey = sync.OnceValues(func() (*rsa.PrivateKey, error) {
	return rsa.GenerateKey(rand.Reader, 2048)
})

// writePEM writes one PEM block to dir/name, creating directories.
func writePEM(t *testing.T, dir, name, blockType string, der []byte) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: blockType, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// writeEd25519Key writes a PKCS#8 Ed25519 key to dir/name.
func writeEd25519Key(t *testing.T, dir, name string) string {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return writePEM(t, dir, name, "PRIVATE KEY", der)
}

// writeTLSPair writes a self-signed certificate and its key to dir/cert
// and dir/key.
func writeTLSPair(t *testing.T, dir, cert, key string) {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "relay.example"},
		DNSNames:     []string{"relay.example"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	writePEM(t, dir, cert, "CERTIFICATE", der)
	writePEM(t, dir, key, "PRIVATE KEY", keyDER)
}

func TestDKIMKeys(t *testing.T) {
	dir := t.TempDir()
	rsaKey, err := testRSAKey()
	if err != nil {
		t.Fatal(err)
	}
	pkcs8RSA, err := x509.MarshalPKCS8PrivateKey(rsaKey)
	if err != nil {
		t.Fatal(err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecDER, err := x509.MarshalPKCS8PrivateKey(ecKey)
	if err != nil {
		t.Fatal(err)
	}
	small, err := filepath.Abs("testdata/rsa512.pem")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		file    string
		wantErr string // "" = the key loads
	}{
		{"rsa pkcs1", writePEM(t, dir, "rsa1.pem", "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(rsaKey)), ""},
		{"rsa pkcs8", writePEM(t, dir, "rsa8.pem", "PRIVATE KEY", pkcs8RSA), ""},
		{"ed25519 pkcs8", writeEd25519Key(t, dir, "ed.pem"), ""},
		{"ecdsa", writePEM(t, dir, "ec.pem", "PRIVATE KEY", ecDER), "ecdsa.PrivateKey keys cannot sign DKIM"},
		{"rsa 512 bits", small, "RSA key has 512 bits; RFC 8301 requires at least 1024"},
		{"encrypted", writePEM(t, dir, "enc.pem", "ENCRYPTED PRIVATE KEY", []byte{1, 2}), `PEM block "ENCRYPTED PRIVATE KEY" is not`},
		{"corrupt pkcs8", writePEM(t, dir, "bad8.pem", "PRIVATE KEY", []byte{1, 2, 3}), "cannot parse the key"},
		{"certificate", writePEM(t, dir, "cert.pem", "CERTIFICATE", []byte{1}), `PEM block "CERTIFICATE" is not`},
		{"directory", dir, "cannot read the key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := doc(`hostname = "relay.example"`, `[[dkim]]`, `domain = "Example.COM"`, `selector = "s1"`, `private_key_file = "`+tt.file+`"`)
			cfg, err := Parse([]byte(d), filepath.Join(dir, "sluice.toml"))
			if tt.wantErr != "" {
				want := "line 5: dkim[0].private_key_file: " + tt.file + ": "
				if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Parse error = %v, want %q and %q", err, want, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			k := cfg.DKIM[0]
			if k.Domain != "example.com" || k.Selector != "s1" || k.PrivateKeyFile != tt.file || k.Signer == nil {
				t.Errorf("DKIM = %+v, want example.com, s1, %s and a signer", k, tt.file)
			}
			var opts crypto.SignerOpts = crypto.SHA256
			if _, isEd := k.Signer.(ed25519.PrivateKey); isEd {
				opts = crypto.Hash(0) // Ed25519 signs the message itself
			}
			if _, err := k.Signer.Sign(rand.Reader, make([]byte, 32), opts); err != nil {
				t.Errorf("the signer cannot sign: %v", err)
			}
		})
	}
}

func TestDKIMRelativePathAndDuplicates(t *testing.T) {
	dir := t.TempDir()
	writeEd25519Key(t, dir, "keys/ed.pem")
	d := doc(
		`hostname = "relay.example"`,
		`[[dkim]]`,
		`domain = "example.com"`,
		`selector = "s1"`,
		`private_key_file = "keys/ed.pem"`,
	)
	path := filepath.Join(dir, "sluice.toml")
	if err := os.WriteFile(path, []byte(d), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(dir, "keys/ed.pem"); cfg.DKIM[0].PrivateKeyFile != want {
		t.Errorf("PrivateKeyFile = %q, want %q", cfg.DKIM[0].PrivateKeyFile, want)
	}
	dup := d + doc(`[[dkim]]`, `domain = "EXAMPLE.com"`, `selector = "s1"`, `private_key_file = "keys/ed.pem"`)
	_, err = Parse([]byte(dup), path)
	if want := `line 8: dkim[1].selector: s1._domainkey.example.com is already configured (dkim[0], line 4)`; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("duplicate key error = %v, want %q", err, want)
	}
}

func TestTLSPair(t *testing.T) {
	dir := t.TempDir()
	writeTLSPair(t, dir, "tls/cert.pem", "tls/key.pem")
	d := doc(`hostname = "relay.example"`, `[smtp]`, `tls_cert_file = "tls/cert.pem"`, `tls_key_file = "tls/key.pem"`)
	cfg, err := Parse([]byte(d), filepath.Join(dir, "sluice.toml"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.SMTP.TLSCertificate == nil || cfg.SMTP.TLSCertFile != filepath.Join(dir, "tls/cert.pem") {
		t.Errorf("TLS = %q, %v; want the resolved path and a certificate", cfg.SMTP.TLSCertFile, cfg.SMTP.TLSCertificate)
	}
	swapped := doc(`hostname = "relay.example"`, `[smtp]`, `tls_cert_file = "tls/key.pem"`, `tls_key_file = "tls/cert.pem"`)
	if _, err := Parse([]byte(swapped), filepath.Join(dir, "sluice.toml")); err == nil || !strings.Contains(err.Error(), "line 3: smtp.tls_cert_file: cannot load the pair") {
		t.Errorf("swapped pair error = %v, want a load error on line 3", err)
	}
}
