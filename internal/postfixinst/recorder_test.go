package postfixinst

import (
	"bufio"
	"net"
	"strings"
	"testing"
)

// recorder is a minimal SMTP server that hands each message body to msgs.
type recorder struct {
	port string
	msgs chan string
}

func startRecorder(t *testing.T) *recorder {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	_, port, _ := net.SplitHostPort(l.Addr().String())
	r := &recorder{port: port, msgs: make(chan string, 10)}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go r.serve(c)
		}
	}()
	return r
}

func (r *recorder) serve(c net.Conn) {
	defer c.Close()
	br := bufio.NewReader(c)
	c.Write([]byte("220 recorder ESMTP\r\n"))
	for i := 0; i < 100; i++ {
		line, err := br.ReadString('\n')
		if err != nil {
			return
		}
		cmd := strings.ToUpper(strings.TrimSpace(line))
		switch {
		case strings.HasPrefix(cmd, "EHLO"), strings.HasPrefix(cmd, "HELO"):
			c.Write([]byte("250 recorder\r\n"))
		case cmd == "DATA":
			c.Write([]byte("354 go on\r\n"))
			var b strings.Builder
			for j := 0; j < 100000; j++ {
				l, err := br.ReadString('\n')
				if err != nil {
					return
				}
				if l == ".\r\n" {
					break
				}
				b.WriteString(l)
			}
			r.msgs <- b.String()
			c.Write([]byte("250 ok\r\n"))
		case cmd == "QUIT":
			c.Write([]byte("221 bye\r\n"))
			return
		default:
			c.Write([]byte("250 ok\r\n"))
		}
	}
}
