package harness

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// RequireEnv names the environment variable that turns a skip for want of
// a server (Postfix, root for tmpfs) into a failure; CI sets it to "1".
const RequireEnv = "SLUICE_REQUIRE_SERVERS"

// binPath is the binary Main built for this test process.
var binPath string

// Binary returns the path of the sluice binary built by Main.
func Binary() string { return binPath }

// Main builds the sluice binary into a temporary directory, runs the tests
// and removes the directory. Call it from TestMain:
//
//	func TestMain(m *testing.M) { os.Exit(harness.Main(m)) }
//
// Setting SLUICE_E2E_RACE=1 builds the binary with the race detector;
// SLUICE_TEST_BINARY=PATH uses that binary instead of building one.
func Main(m *testing.M) int {
	if p := os.Getenv("SLUICE_TEST_BINARY"); p != "" {
		binPath = p
		return m.Run()
	}
	dir, err := os.MkdirTemp("", "sluice-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "harness:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	binPath, err = Build(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "harness:", err)
		return 1
	}
	return m.Run()
}

// Build compiles ./cmd/sluice of the enclosing module into dir and returns
// the binary's path.
func Build(dir string) (string, error) {
	root, err := moduleRoot()
	if err != nil {
		return "", err
	}
	out := filepath.Join(dir, "sluice")
	args := []string{"build", "-o", out}
	if os.Getenv("SLUICE_E2E_RACE") == "1" {
		args = append(args, "-race")
	}
	cmd := exec.Command(goTool(), append(args, "./cmd/sluice")...)
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/sluice: %w\n%s", err, b)
	}
	return out, nil
}

// moduleRoot walks up from the working directory (a test runs in its
// package directory) to the directory holding go.mod.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for range 64 { // bounded: a path has far fewer components
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			break
		}
		dir = parent
	}
	return "", errors.New("no go.mod above the working directory")
}

// goTool is the go command: the one in PATH, else the usual install
// location (.ci/run puts /usr/local/go/bin in PATH).
func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return "/usr/local/go/bin/go"
}
