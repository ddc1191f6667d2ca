// Package config turns sluice's TOML configuration file into typed,
// defaulted and validated structs.
//
// Load reads a file; Parse takes bytes. Either returns a *Config that is
// ready to use, or an *Errors listing every problem at once, each naming its
// key and line:
//
//	config: sluice.toml: line 12: unknown key "smtp.listn"
//	config: sluice.toml: line 40: operator[1].window: "7m" does not divide a day
//
// A key that is absent but wrong (a missing required key, a default that
// does not fit) is reported with the line of its table header when there is
// one.
//
// Durations are strings such as "90s", "1h30m", "5d" or "1w" (see Duration);
// a bare number is an error. Sizes in bytes are integers, or strings such as
// "10MB" and "10MiB". Relative paths (data_dir, admin.socket,
// smtp.tls_cert_file, smtp.tls_key_file, dkim.private_key_file) are resolved
// against the directory of the configuration file, not the working
// directory.
//
// The package imports no other sluice package. Its only I/O is reading the
// file and, as validation, the files it names: the TLS certificate pair and
// the DKIM keys, which are loaded and kept (SMTP.TLSCertificate,
// DKIM.Signer). It never creates, writes or connects to anything.
package config
