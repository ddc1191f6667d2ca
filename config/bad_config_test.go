package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// doc joins lines with "\n", so that argument N is line N of the document.
func doc(lines ...string) string {
	return strings.Join(lines, "\n") + "\n"
}

// operatorDoc is a valid operator table starting at line 1, with extra lines
// from line 4 on.
func operatorDoc(extra ...string) string {
	return doc(append([]string{`[[operator]]`, `name = "bigmail"`, `domains = ["bigmail.com"]`}, extra...)...)
}

// TestBadConfigs checks that each broken file fails with an error naming the
// key and its line (chasquid's bad-configs suite is the model).
func TestBadConfigs(t *testing.T) {
	dir := t.TempDir()
	missingKey := filepath.Join(dir, "no-such-key.pem")
	garbageKey := filepath.Join(dir, "garbage.pem")
	if err := os.WriteFile(garbageKey, []byte("not a key\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	hugeKey := filepath.Join(dir, "huge.pem")
	if err := os.WriteFile(hugeKey, make([]byte, maxKeyFileBytes+1), 0o600); err != nil {
		t.Fatal(err)
	}
	longDir := "/" + strings.Repeat("d", 120)
	tests := []struct {
		name string
		doc  string
		want []string // substrings the error must contain
	}{
		{"unknown top-level key", doc(`hostnme = "x"`), []string{`line 1: unknown key "hostnme"`}},
		{"unknown key in smtp", doc(`[smtp]`, `listn = ["127.0.0.1:25"]`), []string{`line 2: unknown key "smtp.listn"`}},
		{"unknown key in operator", operatorDoc(`quotta = 5`), []string{`line 4: unknown key "operator[0].quotta"`}},
		{"unknown key in second operator", operatorDoc(`[[operator]]`, `name = "b"`, `domains = ["b.com"]`, `windw = "1h"`),
			[]string{`line 7: unknown key "operator[1].windw"`}},
		{"unknown key in response rule", operatorDoc(`[[operator.response_rule]]`, `code = "421"`, `actoin = "suspend"`),
			[]string{`line 6: unknown key "operator[0].response_rule[0].actoin"`}},
		{"unknown key in inline operator", doc(`operator = [{name = "a", domains = ["a.com"], bad = 1}]`),
			[]string{`line 1: unknown key "operator[0].bad"`}},
		{"unknown table", doc(`[smpt]`, `listen = []`), []string{`line 1: unknown table "smpt"`}},
		{"syntax error", doc(`hostname = "a"`, `[smtp`), []string{"line 2: invalid TOML"}},
		{"duplicate key", doc(`hostname = "a.example"`, `hostname = "b.example"`), []string{"line 2: hostname: ", "already defined"}},
		{"table given as a value", doc(`smtp = 5`), []string{"line 1: smtp: must be a table ([smtp])"}},
		{"array of tables where a table belongs", doc(`[[smtp]]`), []string{"line 1: smtp: must be a table"}},
		{"bad duration", doc(`[smtp]`, `read_timeout = "5x"`), []string{`line 2: smtp.read_timeout: `, `unknown unit "x"`}},
		{"bare number for a duration", doc(`[dns]`, `timeout = 30`),
			[]string{`line 2: dns.timeout: must be a duration string such as "30s", not an integer`}},
		{"negative duration", doc(`shutdown_timeout = "-5s"`), []string{`line 1: shutdown_timeout: `, "negative"}},
		{"zero shutdown_timeout", doc(`shutdown_timeout = "0s"`), []string{"line 1: shutdown_timeout: must be greater than 0"}},
		{"zero max_message_bytes", doc(`[smtp]`, `max_message_bytes = 0`), []string{"line 2: smtp.max_message_bytes: must be greater than 0"}},
		{"bad size string", doc(`[smtp]`, `max_message_bytes = "10XB"`), []string{`line 2: smtp.max_message_bytes: "10XB" is not a size`}},
		{"float size", doc(`[smtp]`, `max_message_bytes = 1.5`), []string{`line 2: smtp.max_message_bytes: must be a number of bytes, not a float`}},
		{"zero max_recipients", doc(`[smtp]`, `max_recipients = 0`), []string{"line 2: smtp.max_recipients: must be greater than 0"}},
		{"string for an integer", doc(`[smtp]`, `max_recipients = "10"`), []string{"line 2: smtp.max_recipients: must be an integer, not a string"}},
		{"zero max_line_length", doc(`[smtp]`, `max_line_length = 0`), []string{"line 2: smtp.max_line_length: must be at least 1000, not 0"}},
		{"short max_line_length", doc(`[smtp]`, `max_line_length = 998`), []string{"line 2: smtp.max_line_length: must be at least 1000"}},
		{"zero read_timeout", doc(`[smtp]`, `read_timeout = "0s"`), []string{"line 2: smtp.read_timeout: must be greater than 0"}},
		{"zero smtp max_connections", doc(`[smtp]`, `max_connections = 0`), []string{"line 2: smtp.max_connections: must be greater than 0"}},
		{"listen without port", doc(`[smtp]`, `listen = ["127.0.0.1:25", "localhost"]`), []string{`line 2: smtp.listen[1]: "localhost" is not host:port`}},
		{"listen not a list", doc(`[smtp]`, `listen = "127.0.0.1:25"`), []string{`line 2: smtp.listen: must be an array of strings`}},
		{"listen element on its own line", doc(`[smtp]`, `listen = [`, `  "127.0.0.1:25",`, `  7,`, `]`),
			[]string{`line 4: smtp.listen[1]: must be a string, not an integer`}},
		{"empty listen", doc(`[smtp]`, `listen = []`), []string{`line 2: smtp.listen: must list at least one address`}},
		{"bad CIDR", doc(`[smtp]`, `trusted_networks = ["10.0.0.0/33"]`), []string{`line 2: smtp.trusted_networks[0]: "10.0.0.0/33" is neither a CIDR prefix nor an IP address`}},
		{"bad header name", doc(`[smtp]`, `priority_header = "X Priority"`), []string{`line 2: smtp.priority_header: "X Priority" is not a header field name`}},
		{"max_priority below 1", doc(`[smtp]`, `max_priority = 0.5`), []string{`line 2: smtp.max_priority: must be from 1 to 1000, not 0.5`}},
		{"max_priority with 4 decimals", doc(`[smtp]`, `max_priority = 2.5005`), []string{`line 2: smtp.max_priority: 2.5005 has more than 3 decimals`}},
		{"max_priority as a string", doc(`[smtp]`, `max_priority = "10"`), []string{`line 2: smtp.max_priority: must be a number`}},
		{"max_priority nan", doc(`[smtp]`, `max_priority = nan`), []string{`line 2: smtp.max_priority: must be from 1 to 1000`}},
		{"tls cert without key", doc(`[smtp]`, `tls_cert_file = "cert.pem"`), []string{`line 1: smtp.tls_key_file: is required when tls_cert_file is set`}},
		{"tls pair that does not load", doc(`[smtp]`, `tls_cert_file = "`+garbageKey+`"`, `tls_key_file = "`+garbageKey+`"`),
			[]string{`line 2: smtp.tls_cert_file: cannot load the pair ` + garbageKey}},
		{"dns server name", doc(`[dns]`, `servers = ["dns.example:53"]`), []string{`line 2: dns.servers[0]: "dns.example:53" must be ip:port`}},
		{"delivery port zero", doc(`[delivery]`, `port = 0`), []string{`line 2: delivery.port: must be greater than 0, not 0`}},
		{"delivery port too big", doc(`[delivery]`, `port = 65536`), []string{`line 2: delivery.port: must be at most 65535`}},
		{"bad helo", doc(`[delivery]`, `helo = "-bad-.example"`), []string{`line 2: delivery.helo: "-bad-.example" is not a valid domain name`}},
		{"empty retry_schedule", doc(`[delivery]`, `retry_schedule = []`), []string{`line 2: delivery.retry_schedule: must list at least one duration`}},
		{"zero retry", doc(`[delivery]`, `retry_schedule = ["5m", "0s"]`), []string{`line 2: delivery.retry_schedule[1]: must be greater than 0`}},
		{"bare number in retry_schedule", doc(`[delivery]`, `retry_schedule = [300]`), []string{`line 2: delivery.retry_schedule[0]: must be a string`}},
		{"delay warning after lifetime", doc(`[delivery]`, `max_queue_lifetime = "1d"`, `delay_warning_after = "1d"`),
			[]string{`line 3: delivery.delay_warning_after: must be shorter than max_queue_lifetime (1d)`}},
		{"bad hostname", doc(`hostname = "bad_host"`), []string{`line 1: hostname: "bad_host" is not a valid domain name`}},
		{"bad bounce from", doc(`[bounce]`, `from = "postmaster"`), []string{`line 2: bounce.from: "postmaster" is not an address`}},
		{"zero max_returned_bytes", doc(`[bounce]`, `max_returned_bytes = 0`), []string{`line 2: bounce.max_returned_bytes: must be greater than 0`}},
		{"socket path too long", doc(`data_dir = "`+longDir+`"`, `[admin]`), []string{`line 2: admin.socket: `, "unix socket path may have at most"}},
		{"bad metrics_listen", doc(`[admin]`, `metrics_listen = "9125"`), []string{`line 2: admin.metrics_listen: "9125" is not host:port`}},
		{"unknown log format", doc(`[log]`, `format = "xml"`), []string{`line 2: log.format: must be one of "logfmt", "json", "postfix", not "xml"`}},
		{"unknown log level", doc(`[log]`, `level = "verbose"`), []string{`line 2: log.level: must be one of`}},
		{"redis without redis_url", doc(`[quota_store]`, `backend = "redis"`), []string{`line 1: quota_store.redis_url: is required when backend is "redis"`}},
		{"redis_url with a bad scheme hides the password", doc(`[quota_store]`, `backend = "redis"`, `redis_url = "http://u:s3cret@host/"`),
			[]string{`line 3: quota_store.redis_url: must use the redis, rediss, unix`}},
		{"redis_url without host", doc(`[quota_store]`, `backend = "redis"`, `redis_url = "redis:///0"`), []string{`line 3: quota_store.redis_url: has no host`}},
		{"zero expected_relays", doc(`[quota_store]`, `expected_relays = 0`), []string{`line 2: quota_store.expected_relays: must be greater than 0`}},
		{"window not dividing a day", operatorDoc(`window = "7m"`), []string{`line 4: operator[0].window: "7m" does not divide a day`}},
		{"window under a second", operatorDoc(`window = "500ms"`), []string{`line 4: operator[0].window: "500ms" must be at least 1s`}},
		{"window of fractional seconds", operatorDoc(`window = "1.5s"`), []string{`line 4: operator[0].window: "1.5s" must be a whole number of seconds`}},
		{"window longer than a day", operatorDoc(`window = "2d"`), []string{`line 4: operator[0].window: "2d" does not divide a day`}},
		{"window_guard too big", operatorDoc(`window = "4s"`, `window_guard = "1s"`),
			[]string{`line 5: operator[0].window_guard: 1s must be under a quarter of the window (4s)`}},
		{"bad timezone", operatorDoc(`timezone = "Mars/Olympus_Mons"`), []string{`line 4: operator[0].timezone: "Mars/Olympus_Mons" is not a known time zone`}},
		{"priority_aging under a second", doc(`[default]`, `priority_aging = "10ms"`), []string{`line 2: default.priority_aging: must be 0 (off) or at least 1s`}},
		{"negative quota", doc(`[default]`, `quota = -1`), []string{`line 2: default.quota: must be at least 0, not -1`}},
		{"bad tls policy", doc(`[default]`, `tls = "always"`), []string{`line 2: default.tls: must be one of "opportunistic", "required"`}},
		{"verp without envelope_from", operatorDoc(`verp = true`), []string{`line 4: operator[0].verp: requires envelope_from`}},
		{"bad envelope_from", operatorDoc(`envelope_from = "a@@b"`), []string{`line 4: operator[0].envelope_from: "a@@b"`}},
		{"newline in a bad regexp stays on one line", operatorDoc(`[[operator.response_rule]]`, `match = "a\n("`, `action = "suspend"`, `duration = "1h"`),
			[]string{`line 5: operator[0].response_rule[0].match: is not a valid regular expression`, `a\x0a(`}},
		{"bad regexp in response_rule", operatorDoc(`[[operator.response_rule]]`, `match = "(["`, `action = "suspend"`, `duration = "1h"`),
			[]string{`line 5: operator[0].response_rule[0].match: is not a valid regular expression`}},
		{"response_rule without match or code", operatorDoc(`[[operator.response_rule]]`, `action = "suspend"`, `duration = "1h"`),
			[]string{`line 4: operator[0].response_rule[0]: needs match, code or both`}},
		{"response_rule without action", operatorDoc(`[[operator.response_rule]]`, `code = "421"`, `duration = "1h"`),
			[]string{`line 4: operator[0].response_rule[0].action: is required`}},
		{"response_rule bad code glob", doc(`[[default.response_rule]]`, `code = "4xx"`, `action = "throttle"`, `duration = "5m"`),
			[]string{`line 2: default.response_rule[0].code: "4xx" may only hold digits`}},
		{"response_rule zero duration", doc(`[[default.response_rule]]`, `code = "421"`, `action = "throttle"`, `duration = "0"`),
			[]string{`line 4: default.response_rule[0].duration: must be greater than 0`}},
		{"duplicate domain in two operators", operatorDoc(`[[operator]]`, `name = "other"`, `domains = ["x.example", "BigMail.com."]`),
			[]string{`line 6: operator[1].domains[1]: "bigmail.com" is listed by both operator "other" and operator "bigmail" (operator[0].domains[0], line 3)`}},
		{"duplicate wildcard in two operators", doc(`[[operator]]`, `name = "a"`, `domains = ["*.mail.example"]`, `[[operator]]`, `name = "b"`, `domains = ["*.mail.example"]`),
			[]string{`line 6: operator[1].domains[0]: "*.mail.example" is listed by both operator "b" and operator "a"`}},
		{"duplicate operator name", operatorDoc(`[[operator]]`, `name = "bigmail"`, `domains = ["other.example"]`),
			[]string{`line 5: operator[1].name: "bigmail" is already the name of operator[0] (line 2)`}},
		{"operator named default", doc(`[[operator]]`, `name = "default"`, `domains = ["a.example"]`), []string{`line 2: operator[0].name: "default" is reserved`}},
		{"operator name in capitals", doc(`[[operator]]`, `name = "BigMail"`, `domains = ["a.example"]`), []string{`line 2: operator[0].name: "BigMail" may only use`}},
		{"operator without name", doc(`[[operator]]`, `domains = ["a.example"]`), []string{`line 1: operator[0].name: is required`}},
		{"operator without domains", doc(`[[operator]]`, `name = "a"`), []string{`line 1: operator[0].domains: is required unless mx_patterns is set`}},
		{"operator with star domain", doc(`[[operator]]`, `name = "a"`, `domains = ["*"]`), []string{`line 3: operator[0].domains[0]: "*" matches everything`}},
		{"operator with bad domain", doc(`[[operator]]`, `name = "a"`, `domains = ["a..example"]`), []string{`line 3: operator[0].domains[0]: "a..example" is not a domain name`}},
		{"bad mx pattern", doc(`[[operator]]`, `name = "a"`, `mx_patterns = ["mx[1].example"]`), []string{`line 3: operator[0].mx_patterns[0]: "mx[1].example" is not a host-name glob`}},
		{"route without relay", doc(`[[route]]`, `domains = ["*"]`), []string{`line 1: route[0].relay: is required`}},
		{"route without domains", doc(`[[route]]`, `relay = "smarthost.example:25"`), []string{`line 1: route[0].domains: is required`}},
		{"route with bad relay", doc(`[[route]]`, `domains = ["*"]`, `relay = "smarthost.example"`), []string{`line 3: route[0].relay: "smarthost.example" is not host:port`}},
		{"route with relay port 0", doc(`[[route]]`, `domains = ["*"]`, `relay = "[192.0.2.1]:0"`), []string{`line 3: route[0].relay: "[192.0.2.1]:0" has an invalid port`}},
		{"two catch-all routes", doc(`[[route]]`, `domains = ["*"]`, `relay = "a.example:25"`, `[[route]]`, `domains = ["*"]`, `relay = "b.example:25"`),
			[]string{`line 5: route[1].domains[0]: "*" is listed by both route[1] and route[0]`}},
		{"dkim with unreadable key file", doc(`[[dkim]]`, `domain = "example.com"`, `selector = "s1"`, `private_key_file = "`+missingKey+`"`),
			[]string{`line 4: dkim[0].private_key_file: ` + missingKey + `: cannot read the key`}},
		{"dkim with garbage key file", doc(`[[dkim]]`, `domain = "example.com"`, `selector = "s1"`, `private_key_file = "`+garbageKey+`"`),
			[]string{`line 4: dkim[0].private_key_file: ` + garbageKey + `: no PEM block found`}},
		{"dkim key file that is a directory", doc(`[[dkim]]`, `domain = "example.com"`, `selector = "s1"`, `private_key_file = "`+dir+`"`),
			[]string{`line 4: dkim[0].private_key_file: ` + dir + `: cannot read the key: not a regular file`}},
		{"dkim key file too large", doc(`[[dkim]]`, `domain = "example.com"`, `selector = "s1"`, `private_key_file = "`+hugeKey+`"`),
			[]string{`line 4: dkim[0].private_key_file: ` + hugeKey + `: cannot read the key: larger than`}},
		{"tls key that is a directory", doc(`[smtp]`, `tls_cert_file = "`+garbageKey+`"`, `tls_key_file = "`+dir+`"`),
			[]string{`line 2: smtp.tls_cert_file: cannot load the pair`, dir + `: not a regular file`}},
		{"dkim with empty key path", doc(`[[dkim]]`, `domain = "example.com"`, `selector = "s1"`, `private_key_file = ""`),
			[]string{`line 4: dkim[0].private_key_file: must not be empty`}},
		{"dkim with bad domain", doc(`[[dkim]]`, `domain = "exa mple.com"`, `selector = "s1"`, `private_key_file = "`+garbageKey+`"`),
			[]string{`line 2: dkim[0].domain: "exa mple.com" is not a valid name: it has an invalid character ' '`}},
		{"hostname not a string", doc(`hostname = 42`), []string{`line 1: hostname: must be a string, not an integer`}},
		{"hostname with a long label", doc(`hostname = "` + strings.Repeat("a", 64) + `.example"`), []string{`line 1: hostname: `, "label longer than 63 bytes"}},
		{"hostname too long", doc(`hostname = "` + strings.Repeat("abcdefghi.", 26) + `example"`), []string{`line 1: hostname: `, "more than 253"}},
		{"hostname with an empty label", doc(`hostname = "a..example"`), []string{`line 1: hostname: `, "has an empty label"}},
		{"boolean as a string", doc(`[smtp]`, `strip_priority_header = "yes"`), []string{`line 2: smtp.strip_priority_header: must be true or false, not a string`}},
		{"date as a value", doc(`[smtp]`, `priority_header = 2024-01-01`), []string{`line 2: smtp.priority_header: must be a string, not a date or time`}},
		{"table as a value", doc(`[smtp]`, `read_timeout = {a = 1}`), []string{`line 2: smtp.read_timeout: must be a duration string such as "30s", not a table`}},
		{"listen twice", doc(`[smtp]`, `listen = ["127.0.0.1:25", "127.0.0.1:25"]`), []string{`line 2: smtp.listen[1]: "127.0.0.1:25" is listed twice`}},
		{"listen on a bad host", doc(`[smtp]`, `listen = ["bad_host:25"]`), []string{`line 2: smtp.listen[0]: "bad_host:25": host "bad_host" is neither an IP address nor a name`}},
		{"address with a long local part", doc(`[bounce]`, `from = "`+strings.Repeat("x", 65)+`@relay.example"`), []string{`line 2: bounce.from: `, "local part is 65 bytes long"}},
		{"address with an empty atom", doc(`[bounce]`, `from = "a..b@relay.example"`), []string{`line 2: bounce.from: "a..b@relay.example" local part is empty or has an empty atom`}},
		{"address with a bad domain", doc(`[bounce]`, `from = "a@"`), []string{`line 2: bounce.from: "a@" domain is empty`}},
		{"address with a space", doc(`[bounce]`, `from = "a b@relay.example"`), []string{`line 2: bounce.from: "a b@relay.example" local part has an invalid character ' '`}},
		{"empty header name", doc(`[smtp]`, `priority_header = ""`), []string{`line 2: smtp.priority_header: "" is not a header field name: it is empty`}},
		{"empty timezone", doc(`[default]`, `timezone = ""`), []string{`line 2: default.timezone: must not be empty`}},
		{"domains key twice", operatorDoc(`domains = ["a.example", "b.example"]`), []string{`line 4: operator[0].domains: key domains is already defined`}},
		{"same domain twice in one operator", doc(`[[operator]]`, `name = "a"`, `domains = ["a.example", "A.example"]`),
			[]string{`line 3: operator[0].domains[1]: "a.example" is listed twice by operator "a" (also operator[0].domains[0], line 3)`}},
		{"route with an empty domain list", doc(`[[route]]`, `domains = []`, `relay = "gw.example:25"`), []string{`line 2: route[0].domains: must list at least one domain`}},
		{"route relay without host", doc(`[[route]]`, `domains = ["*"]`, `relay = ":25"`), []string{`line 3: route[0].relay: ":25" has no host`}},
		{"dkim without selector", doc(`[[dkim]]`, `domain = "example.com"`, `private_key_file = "`+garbageKey+`"`), []string{`line 1: dkim[0].selector: is required`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Parse([]byte(tt.doc), "test.toml")
			if err == nil {
				t.Fatalf("Parse succeeded (%+v), want an error containing %q", cfg, tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not contain %q; got:\n%v", w, err)
				}
			}
			var list *Errors
			if !errors.As(err, &list) {
				t.Fatalf("error is %T, want *Errors", err)
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Errorf("error repeats a password from redis_url:\n%v", err)
			}
		})
	}
}

// TestAllProblemsReported checks that problems are collected, not just the
// first, and come back in line order with file, key and line set.
func TestAllProblemsReported(t *testing.T) {
	d := doc(
		`hostname = "relay.example"`,
		`[smtp]`,
		`max_recipients = 0`,
		`listn = 1`,
		`[[operator]]`,
		`name = "a"`,
		`domains = ["a.example"]`,
		`window = "7m"`,
		`[log]`,
		`format = "xml"`,
	)
	_, err := Parse([]byte(d), "sluice.toml")
	var list *Errors
	if !errors.As(err, &list) {
		t.Fatalf("Parse error = %v (%T), want *Errors", err, err)
	}
	want := []struct {
		line int
		key  string
	}{{3, "smtp.max_recipients"}, {4, "smtp.listn"}, {8, "operator[0].window"}, {10, "log.format"}}
	if len(list.List) != len(want) {
		t.Fatalf("got %d errors, want %d:\n%v", len(list.List), len(want), err)
	}
	for i, w := range want {
		got := list.List[i]
		if got.Line != w.line || got.Key != w.key || got.File != "sluice.toml" {
			t.Errorf("error %d = {File:%q Line:%d Key:%q}, want {File:\"sluice.toml\" Line:%d Key:%q}",
				i, got.File, got.Line, got.Key, w.line, w.key)
		}
	}
	if got, wantLines := strings.Count(err.Error(), "\n")+1, len(want); got != wantLines {
		t.Errorf("Error() has %d lines, want %d:\n%v", got, wantLines, err)
	}
	var one *Error
	if !errors.As(err, &one) || one.Key != "smtp.max_recipients" {
		t.Errorf("errors.As(*Error) = %v, want the first problem", one)
	}
}

// TestErrorFormat checks the printed form of each kind of *Error.
func TestErrorFormat(t *testing.T) {
	tests := []struct {
		name string
		err  *Error
		want string
	}{
		{"full", &Error{File: "a.toml", Line: 40, Key: "operator[1].window", Msg: `"7m" does not divide a day`},
			`config: a.toml: line 40: operator[1].window: "7m" does not divide a day`},
		{"unknown key", &Error{Line: 12, Key: "smtp.listn", Msg: msgUnknownKey}, `config: line 12: unknown key "smtp.listn"`},
		{"no line", &Error{File: "a.toml", Key: "hostname", Msg: "is bad"}, `config: a.toml: hostname: is bad`},
		{"no key", &Error{Line: 2, Msg: "invalid TOML: x"}, `config: line 2: invalid TOML: x`},
		{"control characters", &Error{Line: 3, Key: "a\nb", Msg: "bad\r\nvalue\x7f"}, `config: line 3: a\x0ab: bad\x0d\x0avalue\x7f`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.err.Error(); got != tt.want {
				t.Errorf("Error() = %q, want %q", got, tt.want)
			}
		})
	}
}
