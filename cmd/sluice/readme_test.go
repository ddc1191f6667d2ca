package main

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/sluice-mta/sluice/config"
)

// TestReadmeExamplesLoad checks that every TOML example in README.md is a
// configuration that sluice config check accepts (with data_dir added, and
// DKIM key paths pointed at a real key).
func TestReadmeExamplesLoad(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)```toml\n(.*?)```").FindAllStringSubmatch(string(readme), -1)
	if len(blocks) < 6 {
		t.Fatalf("found %d TOML examples in README.md, expected the documented ones", len(blocks))
	}
	dir := t.TempDir()
	key := writeTestKey(t, dir)
	keyPath := regexp.MustCompile(`private_key_file = "[^"]*"`)
	for i, b := range blocks {
		text := "data_dir = \"" + dir + "\"\n" + keyPath.ReplaceAllString(b[1], `private_key_file = "`+key+`"`)
		if _, err := config.Parse([]byte(text), filepath.Join(dir, "readme.toml")); err != nil {
			t.Errorf("README example %d does not pass config check: %v\n%s", i+1, err, strings.TrimSpace(b[1]))
		}
	}
}

func writeTestKey(t *testing.T, dir string) string {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "dkim.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
