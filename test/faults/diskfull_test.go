package faults

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/emersion/go-smtp"

	"github.com/sluice-mta/sluice/internal/testmx"
	"github.com/sluice-mta/sluice/test/harness"
)

// tmpfsBytes is the size of the filesystem holding the queue: room for the
// store and a few messages, small enough to fill in a moment.
const tmpfsBytes = 16 << 20

// mountTmpfs mounts a tmpfs of size bytes on a new directory and unmounts
// it when the test ends (after everything registered later, such as the
// daemon, has stopped). Without root the test is skipped; with root a
// failing mount fails the test under SLUICE_REQUIRE_SERVERS=1.
func mountTmpfs(t *testing.T, size int) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs needs root")
	}
	dir := filepath.Join(t.TempDir(), "queue")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%d", size), "tmpfs", dir).CombinedOutput()
	if err != nil {
		msg := fmt.Sprintf("mount tmpfs on %s: %v: %s", dir, err, out)
		if os.Getenv(harness.RequireEnv) == "1" {
			t.Fatalf("%s=1 but %s", harness.RequireEnv, msg)
		}
		t.Skip(msg)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
			_ = exec.Command("umount", "-l", dir).Run()
		}
	})
	return dir
}

// fill writes path until the filesystem is full, then fsyncs it.
func fill(t *testing.T, path string, size int) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, chunk := range []int{64 << 10, 4 << 10, 512, 1} {
		buf := make([]byte, chunk)
		for range size/chunk + 1 { // bounded: the filesystem holds at most size bytes
			if _, err := f.Write(buf); err != nil {
				if !errors.Is(err, syscall.ENOSPC) {
					t.Fatalf("filling %s: %v", path, err)
				}
				break
			}
		}
	}
	_ = f.Sync()
}

// TestDiskFull puts the queue on a small tmpfs and fills it: new mail gets
// 452 4.3.1, mail already queued still delivers, a restart finds the queue
// intact, and acceptance resumes when space returns.
func TestDiskFull(t *testing.T) {
	dataDir := mountTmpfs(t, tmpfsBytes)
	w := harness.NewWorld(t, "dest.test", "origin.test")
	mx := w.MX["dest.test"]
	mx.SetHooks(testmx.Hooks{Greeting: func(int) *smtp.SMTPError {
		return &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 3, 2}, Message: "not yet"}
	}})
	cfg := w.Config(t.TempDir())
	cfg.DataDir = dataDir
	d := harness.Start(t, cfg)

	const queued = 5
	var rcpts []string
	for i := range queued {
		to := fmt.Sprintf("before%d@dest.test", i)
		rcpts = append(rcpts, to)
		if _, err := harness.Send(d.Addr(), "alice@origin.test", []string{to}, fmt.Sprintf("Subject: before %d\n\n%s", i, strings.Repeat(strings.Repeat("x", 99)+"\n", 20))); err != nil {
			t.Fatalf("send before the disk is full: %v", err)
		}
	}
	for _, to := range rcpts {
		if _, err := d.WaitDelivery(to, "deferred", faultWait); err != nil {
			t.Fatal(err)
		}
	}

	filler := filepath.Join(dataDir, "filler")
	fill(t, filler, tmpfsBytes)
	for _, size := range []int{100 << 10, 300 << 10} { // inline in bbolt; a body file of its own
		_, err := harness.Send(d.Addr(), "alice@origin.test", []string{"full@dest.test"},
			"Subject: disk full\n\n"+strings.Repeat(strings.Repeat("y", 99)+"\n", size/100))
		var se *smtp.SMTPError
		if !errors.As(err, &se) || se.Code != 452 || se.EnhancedCode != (smtp.EnhancedCode{4, 3, 1}) {
			t.Errorf("%d-byte message on a full disk: got %v, want 452 4.3.1", size, err)
		}
	}

	// The remote accepts now; the queued mail must go out with the disk
	// still full.
	mx.SetHooks(testmx.Hooks{})
	mx.WaitMessages(t, queued, faultWait)
	if _, ok := d.WaitQueueEmpty(faultWait); !ok {
		t.Errorf("queue not empty on a full disk after the remote accepted everything%s", d.Tail())
	}

	// Nothing corrupted: a restart opens the store and finds nothing pending.
	d.Stop()
	d.Restart()
	if left, ok := d.WaitQueueEmpty(faultWait); !ok {
		t.Errorf("after restart the queue holds %d messages, want 0", len(left))
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	if _, err := harness.Send(d.Addr(), "alice@origin.test", []string{"after@dest.test"}, "Subject: space again\n\nbody\n"); err != nil {
		t.Fatalf("send after space returned: %v", err)
	}
	if _, err := d.WaitDelivery("after@dest.test", "sent", faultWait); err != nil {
		t.Fatal(err)
	}
	if n := len(mx.Messages()); n != queued+1 {
		t.Errorf("dest.test received %d messages, want %d (no duplicates, nothing from the refused ones)", n, queued+1)
	}
	if n := len(w.MX["origin.test"].Messages()); n != 0 {
		t.Errorf("sender got %d bounces, want none", n)
	}
}
