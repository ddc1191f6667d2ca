package queue

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

const crashChildEnv = "SLUICE_QUEUE_CRASH_CHILD"

func TestMain(m *testing.M) {
	if path := os.Getenv(crashChildEnv); path != "" {
		crashChild(path)
		return
	}
	os.Exit(m.Run())
}

// crashChild is the child side of TestKillNineKeepsCommits: it writes as
// fast as it can and prints a line after every write that returned nil,
// until it is killed.
func crashChild(path string) {
	s, err := Open(Options{Path: path, FileBodyBytes: 1024})
	if err != nil {
		fmt.Println("open-error", err)
		os.Exit(3)
	}
	ctx := context.Background()
	w := t0.Truncate(time.Hour)
	out := bufio.NewWriter(os.Stdout)
	for i := 0; ; i++ {
		seq, id := s.NewID()
		m := &Message{ID: id, Seq: seq, From: "s@example.org", Arrival: t0,
			Recipients: []Recipient{{Addr: fmt.Sprintf("r%d@example.net", i)}}}
		body := []byte(strings.Repeat("y", 100+i%3*1000))
		if err := s.Enqueue(ctx, m, body); err != nil {
			fmt.Fprintln(out, "error", err)
			out.Flush()
			os.Exit(4)
		}
		g, err := s.Reserve(ctx, "bigmail", w, time.Hour, 1<<40, 1000, 1)
		if err != nil || g != 1 {
			fmt.Fprintln(out, "error reserve", g, err)
			out.Flush()
			os.Exit(4)
		}
		fmt.Fprintf(out, "ok %d %d\n", m.Seq, len(body))
		out.Flush()
	}
}

// TestKillNineKeepsCommits kills a writer with SIGKILL at an arbitrary
// moment, several times, and checks that everything it was told is
// committed is there after reopening: messages, bodies and budget usage.
func TestKillNineKeepsCommits(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	path := filepath.Join(t.TempDir(), "q.db")
	committed := map[uint64]int{}
	for round := range 4 {
		cmd := exec.Command(os.Args[0])
		cmd.Env = append(os.Environ(), crashChildEnv+"="+path)
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(stdout)
		killAt := 50 + round*37
		n := 0
		deadline := time.Now().Add(30 * time.Second)
		for sc.Scan() && time.Now().Before(deadline) {
			f := strings.Fields(sc.Text())
			if len(f) != 3 || f[0] != "ok" {
				t.Fatalf("child said %q", sc.Text())
			}
			seq, _ := strconv.ParseUint(f[1], 10, 64)
			size, _ := strconv.Atoi(f[2])
			committed[seq] = size
			if n++; n == killAt {
				cmd.Process.Kill()
				break
			}
		}
		cmd.Wait()
		if n < killAt {
			t.Fatalf("round %d: child stopped after %d writes", round, n)
		}
	}
	s := newTestStore(t, Options{Path: path, FileBodyBytes: 1024})
	for seq, size := range committed {
		b, err := s.Body(seq)
		if err != nil || len(b) != size {
			t.Errorf("message %s: body %d bytes, %v; want %d", FormatID(seq), len(b), err, size)
		}
	}
	used, err := s.Used(context.Background(), "bigmail", t0.Truncate(time.Hour))
	if err != nil || used < int64(len(committed))*1000 {
		t.Errorf("usage after kills = %d, %v; want at least %d", used, err, len(committed)*1000)
	}
	msgs, _, _ := s.Count()
	t.Logf("after 4 kills: %d acknowledged writes found among %d stored messages, usage %d milli", len(committed), msgs, used)
}
