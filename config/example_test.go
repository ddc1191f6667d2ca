package config

import (
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"testing"
)

const examplePath = "../config.example.toml"

// TestExampleLoads checks that config.example.toml runs as is.
func TestExampleLoads(t *testing.T) {
	cfg, err := Load(examplePath)
	if err != nil {
		t.Fatalf("Load(%s):\n%v", examplePath, err)
	}
	dataDir, err := filepath.Abs("../data")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Hostname != "localhost" || cfg.DataDir != dataDir || !slices.Equal(cfg.SMTP.Listen, []string{"127.0.0.1:2525"}) {
		t.Errorf("hostname, data_dir, listen = %q, %q, %q; want \"localhost\", %q, [127.0.0.1:2525]",
			cfg.Hostname, cfg.DataDir, cfg.SMTP.Listen, dataDir)
	}
	if len(cfg.Operators) != 0 || len(cfg.Routes) != 0 || len(cfg.DKIM) != 0 {
		t.Errorf("the example enables operators, routes or DKIM; they should be commented out")
	}
}

// commentedSetting matches a setting left out in the example: "#" directly
// followed by a key or a [table] (explanations start with "# ").
var commentedSetting = regexp.MustCompile(`(?m)^#([a-z\[])`)

// uncommentedExample returns the example with every commented setting
// enabled, written to a temporary directory together with the TLS and DKIM
// files it names.
func uncommentedExample(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(examplePath)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	writeTLSPair(t, dir, "tls/cert.pem", "tls/key.pem")
	writeEd25519Key(t, dir, "dkim/example.com.pem")
	path := filepath.Join(dir, "sluice.toml")
	if err := os.WriteFile(path, commentedSetting.ReplaceAll(data, []byte("$1")), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestExampleUncommented checks that every commented setting in the example
// is valid, so that uncommenting one never breaks a working file.
func TestExampleUncommented(t *testing.T) {
	cfg, err := Load(uncommentedExample(t))
	if err != nil {
		t.Fatalf("the example with every setting uncommented does not load:\n%v", err)
	}
	op, ok := cfg.OperatorFor("bigmail.fr")
	if !ok || op.Name != "bigmail" || op.Quota != 10000 || op.Window.String() != "1h0m0s" || len(op.ResponseRules) != 1 {
		t.Errorf("OperatorFor(bigmail.fr) = %+v, %v; want the bigmail example with quota 10000, window 1h and a rule", op, ok)
	}
	if cfg.QuotaStore.Backend != BackendRedis || cfg.SMTP.TLSCertificate == nil || len(cfg.DKIM) != 1 || len(cfg.Routes) != 1 {
		t.Errorf("uncommented example: backend %q, TLS %v, %d DKIM keys, %d routes; want redis, a certificate, 1, 1",
			cfg.QuotaStore.Backend, cfg.SMTP.TLSCertificate != nil, len(cfg.DKIM), len(cfg.Routes))
	}
}

// schemaKeys lists the key paths of the raw schema, without array indices,
// by walking the toml tags. A struct type is walked once, at its first
// place: the limit keys are documented once, under [[operator]], and apply
// to [default] and [[route]] as well.
func schemaKeys(t reflect.Type, prefix string, seen map[reflect.Type]bool, out []string) []string {
	for i := range t.NumField() {
		f := t.Field(i)
		if f.Anonymous {
			if !seen[f.Type] {
				seen[f.Type] = true
				out = schemaKeys(f.Type, prefix, seen, out)
			}
			continue
		}
		key := childPath(prefix, f.Tag.Get("toml"))
		out = append(out, key)
		ft := f.Type
		if ft.Kind() == reflect.Slice {
			ft = ft.Elem()
		}
		if ft.Kind() == reflect.Struct && !seen[ft] {
			seen[ft] = true
			out = schemaKeys(ft, key, seen, out)
		}
	}
	return out
}

// TestExampleDocumentsEveryKey fails when a key of the schema is missing
// from config.example.toml (enabled or commented out).
func TestExampleDocumentsEveryKey(t *testing.T) {
	data, err := os.ReadFile(uncommentedExample(t))
	if err != nil {
		t.Fatal(err)
	}
	idx, perr := buildIndex(data)
	if perr != nil {
		t.Fatal(perr)
	}
	present := map[string]bool{}
	for p := range idx.lines {
		present[stripIndices(p)] = true
	}
	keys := schemaKeys(reflect.TypeFor[rawConfig](), "", map[reflect.Type]bool{}, nil)
	if len(keys) < 80 {
		t.Fatalf("schema walk found only %d keys: %v", len(keys), keys)
	}
	for _, k := range keys {
		if !present[k] {
			t.Errorf("key %q is not documented in %s", k, examplePath)
		}
	}
}
