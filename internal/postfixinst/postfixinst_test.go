package postfixinst

import (
	"errors"
	"fmt"
	"net/smtp"
	"os"
	"strings"
	"testing"
	"time"
)

// TestInstanceRelays starts an instance whose relayhost is a tiny recorder
// and checks that mail submitted over SMTP comes out with the header that
// header_checks prepends.
func TestInstanceRelays(t *testing.T) {
	if err := Check(); err != nil {
		if os.Getenv("SLUICE_REQUIRE_SERVERS") == "1" {
			t.Fatalf("SLUICE_REQUIRE_SERVERS=1 but %v", err)
		}
		t.Skip(err)
	}
	sink := startRecorder(t)
	port, err := FreePort()
	if err != nil {
		t.Fatal(err)
	}
	in, err := Start(Options{
		Dir: t.TempDir(), SMTPAddr: fmt.Sprintf("127.0.0.1:%d", port), Relayhost: "[127.0.0.1]:" + sink.port,
		HeaderChecks: []string{`/^From:.*vip@example\.org/ PREPEND X-Relay-Priority: 5`},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer in.Stop()
	msg := "From: <vip@example.org>\r\nTo: <x@dest.test>\r\nSubject: hi\r\n\r\nhello\r\n"
	if err := smtp.SendMail(in.SMTPAddr, nil, "vip@example.org", []string{"x@dest.test"}, []byte(msg)); err != nil {
		t.Fatal(err)
	}
	select {
	case got := <-sink.msgs:
		if !strings.Contains(got, "X-Relay-Priority: 5") {
			t.Errorf("relayed message lacks the prepended header:\n%s", got)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("nothing relayed in 30s; log:\n%s", in.Log())
	}
	if err := in.Stop(); err != nil {
		t.Error(err)
	}
	if err := Check(); errors.Is(err, ErrUnavailable) {
		t.Error("Check fails after a successful run")
	}
}
