package dsn

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestImportsStayPure enforces the package contract: no other sluice
// package, nothing that does I/O or logs, no clock. Test files may do more.
func TestImportsStayPure(t *testing.T) {
	forbidden := []string{"github.com/sluice-mta/sluice", "os", "log", "log/slog", "net", "net/http", "time/tzdata"}
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		src, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(src), "time.Now(") {
			t.Errorf("%s reads the clock; dates must be arguments", name)
		}
		f, err := parser.ParseFile(fset, name, src, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			path, err := strconv.Unquote(imp.Path.Value)
			if err != nil {
				t.Fatal(err)
			}
			for _, bad := range forbidden {
				if path == bad || (strings.HasPrefix(path, bad+"/") && bad != "net") {
					t.Errorf("%s imports %q", name, path)
				}
			}
		}
	}
}
