package config

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"
)

// FuzzParse feeds arbitrary bytes to Parse: it must never panic, and must
// return either a config or an *Errors whose every entry has a message and a
// line inside the document.
func FuzzParse(f *testing.F) {
	// The example with every setting enabled and the explanations removed:
	// it reaches every key while staying small, which keeps minimisation of
	// new inputs quick.
	if example, err := os.ReadFile(examplePath); err == nil {
		var settings []string
		for line := range strings.SplitSeq(string(commentedSetting.ReplaceAll(example, []byte("$1"))), "\n") {
			if line != "" && !strings.HasPrefix(line, "#") {
				settings = append(settings, line)
			}
		}
		f.Add([]byte(strings.Join(settings, "\n")))
	}
	for _, s := range []string{
		"",
		doc(`hostname = "a.example"`, `[smtp]`, `listn = 1`),
		operatorDoc(`window = "7m"`, `[[operator.response_rule]]`, `match = "(["`),
		doc(`operator = [{name = "a", domains = ["a.com"], bad = 1}]`),
		doc(`[default]`, `response_rule = [{code = "4.7.*", action = "suspend", duration = "1h"}]`),
		doc(`smtp = 5`), doc(`[[smtp]]`), doc(`[operator]`, `name = "x"`),
		doc(`[smtp]`, `max_priority = 2.5005`, `max_message_bytes = "10MiB"`),
		doc(`a.b.c = [[1, [2]], {x = {y = 3}}]`),
		"[[route]]\ndomains = [\"*\"]\nrelay = \"[::1]:25\"\n",
		"\xff\xfe[",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse(data, "fuzz.toml")
		if err == nil {
			if cfg == nil {
				t.Fatal("Parse returned nil config and nil error")
			}
			return
		}
		var list *Errors
		if !errors.As(err, &list) || len(list.List) == 0 {
			t.Fatalf("Parse error %v (%T) is not a non-empty *Errors", err, err)
		}
		lines := strings.Count(string(data), "\n") + 1
		for _, e := range list.List {
			if e.Msg == "" || e.Line < 0 || e.Line > lines || e.File != "fuzz.toml" {
				t.Errorf("bad error entry %+v (document has %d lines)", e, lines)
			}
		}
	})
}

// FuzzParseDuration checks that ParseDuration never panics, never returns a
// negative duration, and that String output parses back to the same value.
func FuzzParseDuration(f *testing.F) {
	for _, s := range []string{"0", "90s", "1h30m", "5d", "1w", "1d12h", "200ms", "1.5h", ".5s", "-1s", "9223372036s", "1e3s", "µs"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDuration(s)
		if err != nil {
			return
		}
		if d < 0 {
			t.Fatalf("ParseDuration(%q) = %v, negative", s, time.Duration(d))
		}
		back, err := ParseDuration(d.String())
		if err != nil || back != d {
			t.Fatalf("ParseDuration(%q) = %v; String %q parses to %v, %v", s, time.Duration(d), d.String(), time.Duration(back), err)
		}
	})
}
