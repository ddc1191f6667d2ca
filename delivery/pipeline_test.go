package delivery

import (
	"bufio"
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/sluice-mta/sluice/internal/testmx"
)

// batchServer answers EHLO at once, then reads MAIL, RCPT and DATA
// commands without replying until it has seen DATA, as only a pipelining
// client lets it (a client waiting for MAIL's reply would hang). replies
// maps a command verb (and "RCPT:addr") to its reply; the body's final
// reply is replies["."]. It records the batches it read.
type batchServer struct {
	mu      sync.Mutex
	batches [][]string
	replies map[string]string
}

func (b *batchServer) script(c net.Conn) {
	br := bufio.NewReader(c)
	write := func(s string) { c.Write([]byte(s + "\r\n")) }
	write("220 batch.test ESMTP")
	for range 20 {
		line, err := br.ReadString('\n')
		if err != nil {
			return
		}
		cmd := strings.ToUpper(strings.TrimSpace(line))
		switch {
		case strings.HasPrefix(cmd, "EHLO"):
			write("250-batch.test\r\n250-PIPELINING\r\n250-DSN\r\n250 SIZE 1000000")
			continue
		case cmd == "QUIT":
			write("221 bye")
			return
		}
		batch := []string{strings.TrimSpace(line)}
		for !strings.HasPrefix(strings.ToUpper(batch[len(batch)-1]), "DATA") {
			l, err := br.ReadString('\n')
			if err != nil {
				return
			}
			batch = append(batch, strings.TrimSpace(l))
		}
		b.mu.Lock()
		b.batches = append(b.batches, batch)
		b.mu.Unlock()
		var out []string
		for _, l := range batch {
			out = append(out, b.reply(l))
		}
		write(strings.Join(out, "\r\n"))
		if !strings.HasPrefix(out[len(out)-1], "354") {
			continue
		}
		for {
			l, err := br.ReadString('\n')
			if err != nil {
				return
			}
			if l == ".\r\n" {
				break
			}
		}
		write(b.reply("."))
	}
}

func (b *batchServer) reply(cmd string) string {
	verb, arg, _ := strings.Cut(cmd, " ")
	verb = strings.ToUpper(verb)
	if verb == "RCPT" {
		addr := arg[strings.Index(arg, "<")+1 : strings.Index(arg, ">")]
		if r, ok := b.replies["RCPT:"+addr]; ok {
			return r
		}
	}
	if r, ok := b.replies[verb]; ok {
		return r
	}
	switch verb {
	case "DATA":
		return "354 go ahead"
	case ".":
		return "250 2.0.0 queued"
	}
	return "250 2.1.0 ok"
}

func TestPipelinedTransactions(t *testing.T) {
	tests := []struct {
		name    string
		replies map[string]string
		rcpts   []string
		want    []Status
		wantTxt string
	}{
		{"all accepted in one batch", nil, []string{"a@batch.example", "b@batch.example"}, []Status{StatusSent, StatusSent}, "queued"},
		{"one recipient refused, one deferred", map[string]string{
			"RCPT:b@batch.example": "550 5.1.1 no such user", "RCPT:c@batch.example": "450 4.2.1 busy"},
			[]string{"a@batch.example", "b@batch.example", "c@batch.example"}, []Status{StatusSent, StatusFailed, StatusDeferred}, ""},
		{"MAIL refused: every recipient gets its reply", map[string]string{
			"MAIL": "550 5.7.1 sender blocked", "RCPT": "503 5.5.1 need MAIL", "DATA": "503 5.5.1 need RCPT"},
			[]string{"a@batch.example"}, []Status{StatusFailed}, "sender blocked"},
		{"no recipient accepted, DATA refused", map[string]string{"RCPT": "550 5.1.1 unknown", "DATA": "554 5.5.1 no valid recipients"},
			[]string{"a@batch.example"}, []Status{StatusFailed}, "unknown"},
		{"no recipient accepted, DATA 354 anyway", map[string]string{"RCPT": "550 5.1.1 unknown", ".": "554 5.5.1 empty"},
			[]string{"a@batch.example"}, []Status{StatusFailed}, "unknown"},
		{"final reply 452", map[string]string{".": "452 4.3.1 out of space"}, []string{"a@batch.example"}, []Status{StatusDeferred}, "out of space"},
		{"421 to RCPT ends the session", map[string]string{"RCPT": "421 4.7.0 too many"}, []string{"a@batch.example"}, []Status{StatusDeferred}, "too many"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newTestEnv(t, "127.0.0.2")
			srv := &batchServer{replies: tc.replies}
			raw := testmx.StartRaw(t, "127.0.0.3", e.port, srv.script)
			e.dns.AddMX("batch.example", 10, "batch.example")
			e.dns.AddA("batch.example", raw.IP())
			cn := e.open(t, Destination{Domain: "batch.example"})
			defer cn.Close()
			env := envelope(tc.rcpts...)
			env.Rcpts[0].Notify = []string{"SUCCESS", "FAILURE"}
			env.Rcpts[0].ORCPT = "rfc822;a+x@batch.example"
			res := cn.Send(testCtx(t), env, []byte(testBody))
			wantStatuses(t, res, tc.want...)
			if tc.wantTxt != "" && !strings.Contains(res[0].Reply.Text, tc.wantTxt) {
				t.Errorf("reply text %q lacks %q", res[0].Reply.Text, tc.wantTxt)
			}
			srv.mu.Lock()
			defer srv.mu.Unlock()
			if len(srv.batches) != 1 || len(srv.batches[0]) != len(tc.rcpts)+2 {
				t.Fatalf("batches = %q, want MAIL, the RCPTs and DATA in one", srv.batches)
			}
			if got := srv.batches[0][1]; !strings.Contains(got, "NOTIFY=SUCCESS,FAILURE") || !strings.Contains(got, "ORCPT=rfc822;a+2Bx@batch.example") {
				t.Errorf("RCPT line %q lacks the DSN parameters", got)
			}
		})
	}
}

// A second transaction on the same connection after a refused one starts
// with RSET, in the same batch.
func TestPipelinedResetBetweenTransactions(t *testing.T) {
	e := newTestEnv(t, "127.0.0.2")
	srv := &batchServer{replies: map[string]string{"DATA": "554 5.5.1 no"}}
	raw := testmx.StartRaw(t, "127.0.0.3", e.port, srv.script)
	e.dns.AddMX("batch.example", 10, "batch.example")
	e.dns.AddA("batch.example", raw.IP())
	cn := e.open(t, Destination{Domain: "batch.example"})
	defer cn.Close()
	wantStatuses(t, cn.Send(testCtx(t), envelope("a@batch.example"), []byte(testBody)), StatusFailed)
	srv.mu.Lock()
	srv.replies = nil
	srv.mu.Unlock()
	wantStatuses(t, cn.Send(testCtx(t), envelope("b@batch.example"), []byte(testBody)), StatusSent)
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if len(srv.batches) != 2 || srv.batches[1][0] != "RSET" {
		t.Errorf("batches = %q, want the second to start with RSET", srv.batches)
	}
	if raw.Connections() != 1 {
		t.Errorf("%d connections, want 1", raw.Connections())
	}
}

func TestXtext(t *testing.T) {
	for in, want := range map[string]string{"a@b": "a@b", "a+b=c": "a+2Bb+3Dc", "sp ace": "sp+20ace", "é": "+C3+A9"} {
		if got := xtext(in); got != want {
			t.Errorf("xtext(%q) = %q, want %q", in, got, want)
		}
	}
}
