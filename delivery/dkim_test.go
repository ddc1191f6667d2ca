package delivery

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-msgauth/dkim"
	"github.com/miekg/dns"

	"github.com/sluice-mta/sluice/internal/testdns"
)

// lookupTXT queries the test DNS server over TCP, never the process
// resolver.
func lookupTXT(t *testing.T, d *testdns.Server) func(string) ([]string, error) {
	return func(name string) ([]string, error) {
		m := new(dns.Msg)
		m.SetQuestion(dns.Fqdn(name), dns.TypeTXT)
		c := &dns.Client{Net: "tcp", Timeout: 2 * time.Second}
		r, _, err := c.ExchangeContext(context.Background(), m, d.Addr())
		if err != nil {
			return nil, err
		}
		var out []string
		for _, rr := range r.Answer {
			if txt, ok := rr.(*dns.TXT); ok {
				out = append(out, strings.Join(txt.Txt, ""))
			}
		}
		return out, nil
	}
}

// publish puts the public key of s in DNS as RFC 6376 section 3.6.1 (RSA)
// or RFC 8463 section 4.2 (Ed25519) describe.
func publish(t *testing.T, d *testdns.Server, domain, selector string, s crypto.Signer) {
	t.Helper()
	var rec string
	switch pub := s.Public().(type) {
	case *rsa.PublicKey:
		der, err := x509.MarshalPKIXPublicKey(pub)
		if err != nil {
			t.Fatalf("marshal key: %v", err)
		}
		rec = "v=DKIM1; k=rsa; p=" + base64.StdEncoding.EncodeToString(der)
	case ed25519.PublicKey:
		rec = "v=DKIM1; k=ed25519; p=" + base64.StdEncoding.EncodeToString(pub)
	}
	d.AddTXT(selector+"._domainkey."+domain, rec)
}

func TestDKIMSignAndVerify(t *testing.T) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatalf("rsa key: %v", err)
	}
	_, edKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatalf("ed25519 key: %v", err)
	}
	tests := []struct {
		name   string
		signer crypto.Signer
	}{
		{"rsa-sha256", rsaKey},
		{"ed25519-sha256", edKey},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newTestEnv(t, "127.0.0.2")
			publish(t, e.dns, "example.org", "s1", tc.signer)
			e.opts.DKIM = []DKIMKey{
				{Domain: "other.example", Selector: "x", Signer: tc.signer},
				{Domain: "Example.ORG", Selector: "s1", Signer: tc.signer},
			}
			cn := e.open(t, Destination{})
			env := envelope("a@example.com")
			env.DKIM = true
			wantStatuses(t, cn.Send(testCtx(t), env, []byte(testBody)), StatusSent)
			data := e.mx[0].WaitMessages(t, 1, testTimeout)[0].Data
			if !bytes.HasPrefix(data, []byte("DKIM-Signature:")) || !bytes.HasSuffix(data, []byte(testBody)) {
				t.Fatalf("message: got %q, want a DKIM-Signature prepended to the body", data)
			}
			vs, err := dkim.VerifyWithOptions(bytes.NewReader(data), &dkim.VerifyOptions{LookupTXT: lookupTXT(t, e.dns)})
			if err != nil || len(vs) != 1 {
				t.Fatalf("verify: got %v, %v; want one verification", vs, err)
			}
			if vs[0].Err != nil || vs[0].Domain != "Example.ORG" {
				t.Errorf("verification: got domain %q err %v, want Example.ORG and no error", vs[0].Domain, vs[0].Err)
			}
			sig := string(data[:len(data)-len(testBody)])
			for _, tag := range []string{"c=relaxed/relaxed", "-sha256", "d=Example.ORG", "s=s1"} {
				if !strings.Contains(sig, tag) {
					t.Errorf("signature: got %q, want it to contain %q", sig, tag)
				}
			}
		})
	}
}

func TestDKIMNotSigned(t *testing.T) {
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	tests := []struct {
		name string
		keys []DKIMKey
		sign bool
		body string
	}{
		{"envelope does not ask", []DKIMKey{{Domain: "example.org", Selector: "s", Signer: key}}, false, testBody},
		{"no key for the From domain", []DKIMKey{{Domain: "sub.example.org", Selector: "s", Signer: key}}, true, testBody},
		{"no From header", []DKIMKey{{Domain: "example.org", Selector: "s", Signer: key}}, true, "Subject: x\r\n\r\nbody\r\n"},
		{"two From fields", []DKIMKey{{Domain: "example.org", Selector: "s", Signer: key}}, true,
			"From: a@example.org\r\nFrom: b@example.org\r\n\r\nbody\r\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newTestEnv(t, "127.0.0.2")
			e.opts.DKIM = tc.keys
			cn := e.open(t, Destination{})
			env := envelope("a@example.com")
			env.DKIM = tc.sign
			wantStatuses(t, cn.Send(testCtx(t), env, []byte(tc.body)), StatusSent)
			if got := e.mx[0].WaitMessages(t, 1, testTimeout)[0].Data; string(got) != tc.body {
				t.Errorf("message: got %q, want the body unsigned", got)
			}
		})
	}
}

// failingSigner has a valid public key but cannot sign.
type failingSigner struct{ ed25519.PublicKey }

func (f failingSigner) Public() crypto.PublicKey { return f.PublicKey }
func (failingSigner) Sign(io.Reader, []byte, crypto.SignerOpts) ([]byte, error) {
	return nil, errors.New("hsm unavailable")
}

func TestDKIMFailureDefers(t *testing.T) {
	pub, _, _ := ed25519.GenerateKey(rand.Reader)
	e := newTestEnv(t, "127.0.0.2")
	e.opts.DKIM = []DKIMKey{{Domain: "example.org", Selector: "s", Signer: failingSigner{pub}}}
	cn := e.open(t, Destination{})
	env := envelope("a@example.com")
	env.DKIM = true
	res := cn.Send(testCtx(t), env, []byte(testBody))
	wantStatuses(t, res, StatusDeferred)
	if res[0].Err == nil || !strings.Contains(res[0].Err.Error(), "hsm unavailable") {
		t.Errorf("err: got %v, want the signing error", res[0].Err)
	}
	if !cn.Usable() {
		t.Errorf("usable: got false, want true (nothing was sent)")
	}
	wantStatuses(t, cn.Send(testCtx(t), envelope("b@example.com"), []byte(testBody)), StatusSent)
	if msgs := e.mx[0].WaitMessages(t, 1, testTimeout); len(msgs) != 1 || msgs[0].To[0] != "b@example.com" {
		t.Errorf("messages: got %d, want only the unsigned-by-request one", len(msgs))
	}
}

func TestFromDomain(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		want    string
		wantErr bool
	}{
		{"plain", "From: a@Example.ORG\r\n\r\n", "example.org", false},
		{"display name", "From: \"A, B\" <a@example.org>\r\n\r\n", "example.org", false},
		{"folded", "From: A\r\n <a@example.org>\r\nTo: x@y\r\n\r\n", "example.org", false},
		{"case-insensitive field", "FROM: a@example.org\r\n\r\n", "example.org", false},
		{"missing", "To: a@example.org\r\n\r\n", "", true},
		{"no domain", "From: undisclosed\r\n\r\n", "", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := fromDomain([]byte(tc.body))
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Errorf("fromDomain: got %q, %v; want %q (error %v)", got, err, tc.want, tc.wantErr)
			}
		})
	}
}
