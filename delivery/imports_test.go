package delivery

import (
	"go/parser"
	"go/token"
	"os"
	"strconv"
	"strings"
	"testing"
)

// TestImports keeps the package within its role: delivery never touches
// the store or the scheduling layers, and test helpers stay out of the
// production build.
func TestImports(t *testing.T) {
	forbidden := []string{
		"go.etcd.io/bbolt",
		"github.com/sluice-mta/sluice/queue",
		"github.com/sluice-mta/sluice/scheduler",
		"github.com/sluice-mta/sluice/smtpd",
		"github.com/sluice-mta/sluice/internal/testdns",
		"github.com/sluice-mta/sluice/internal/testmx",
	}
	entries, err := os.ReadDir(".")
	if err != nil {
		t.Fatalf("read dir: %v", err)
	}
	fset := token.NewFileSet()
	for _, e := range entries {
		name := e.Name()
		if !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatalf("parse %s: %v", name, err)
		}
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			for _, bad := range forbidden {
				if path == bad || strings.HasPrefix(path, bad+"/") {
					t.Errorf("%s imports %s, want no import of %s", name, path, bad)
				}
			}
		}
	}
}
