package e2e

import (
	"os"
	"testing"

	"github.com/sluice-mta/sluice/test/harness"
)

func TestMain(m *testing.M) { os.Exit(harness.Main(m)) }
