package config

import (
	"testing"
)

func TestIndexLines(t *testing.T) {
	d := doc(
		`hostname = "a.example"`,           // 1
		`smtp.listen = [`,                  // 2
		`  "127.0.0.1:25",`,                // 3
		`  "[::1]:25",`,                    // 4
		`]`,                                // 5
		`[[operator]]`,                     // 6
		`name = "a"`,                       // 7
		`[[operator.response_rule]]`,       // 8
		`code = "421"`,                     // 9
		`[[operator]]`,                     // 10
		`name = "b"`,                       // 11
		`[[operator.response_rule]]`,       // 12
		`[[operator.response_rule]]`,       // 13
		`match = "x"`,                      // 14
		`[default]`,                        // 15
		`response_rule = [{code = "421"},`, // 16
		`  {code = "5.7.1", match = "y"}]`, // 17
		`"quoted key" = 1`,                 // 18
	)
	x, err := buildIndex([]byte(d))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		path string
		want int
	}{
		{"hostname", 1},
		{"smtp", 2},
		{"smtp.listen", 2},
		{"smtp.listen[0]", 3},
		{"smtp.listen[1]", 4},
		{"operator", 6},
		{"operator[0]", 6},
		{"operator[0].name", 7},
		{"operator[0].response_rule[0]", 8},
		{"operator[0].response_rule[0].code", 9},
		{"operator[1]", 10},
		{"operator[1].name", 11},
		{"operator[1].response_rule[0]", 12},
		{"operator[1].response_rule[1].match", 14},
		{"default.response_rule[0].code", 16},
		{"default.response_rule[1]", 17},
		{"default.response_rule[1].match", 17},
		{"default.quoted key", 18},
		// Absent keys take the line of their table header, or none.
		{"operator[1].window", 10},
		{"operator[1].response_rule[1].action", 13},
		{"smtp.read_timeout", 2},
		{"dns.timeout", 0},
		{"data_dir", 0},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			if got := x.line(tt.path); got != tt.want {
				t.Errorf("line(%q) = %d, want %d", tt.path, got, tt.want)
			}
		})
	}
}

func TestIndexSyntaxErrorLine(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		want int
	}{
		{"unclosed table", doc(`a = 1`, `[smtp`), 2},
		{"missing value at end", "a = 1\nb =", 2},
		{"bad escape", doc(`a = 1`, `b = 2`, `c = "\q"`), 3},
		{"unterminated array", doc(`a = [`, `1,`), 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := buildIndex([]byte(tt.doc))
			if err == nil || err.Line != tt.want {
				t.Errorf("buildIndex error = %+v, want one on line %d", err, tt.want)
			}
		})
	}
}

func TestPaths(t *testing.T) {
	tests := []struct {
		name, got, want string
	}{
		{"child of root", childPath("", "smtp"), "smtp"},
		{"child", childPath("operator[1]", "window"), "operator[1].window"},
		{"element", elemPath("smtp.listen", 2), "smtp.listen[2]"},
		{"parent of key", parentPath("operator[1].window"), "operator[1]"},
		{"parent of element", parentPath("operator[1]"), "operator"},
		{"parent of top", parentPath("hostname"), ""},
		{"strip indices", stripIndices("operator[1].response_rule[0].match"), "operator.response_rule.match"},
		{"strip unclosed", stripIndices("a[1"), "a"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Errorf("got %q, want %q", tt.got, tt.want)
			}
		})
	}
}
