package delivery

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
	"testing"

	"github.com/emersion/go-smtp"
)

// timeoutErr is a net.Error that timed out.
type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

func TestClassify(t *testing.T) {
	tests := []struct {
		name string
		code int
		err  error
		want Status
	}{
		{"250 sent", 250, nil, StatusSent},
		{"251 sent", 251, nil, StatusSent},
		{"2xx wins over an error", 250, io.EOF, StatusSent},
		{"421 deferred", 421, nil, StatusDeferred},
		{"450 deferred", 450, nil, StatusDeferred},
		{"452 deferred", 452, nil, StatusDeferred},
		{"500 failed", 500, nil, StatusFailed},
		{"550 failed", 550, nil, StatusFailed},
		{"554 failed", 554, nil, StatusFailed},
		{"354 unexpected is deferred", 354, nil, StatusDeferred},
		{"no code no error is deferred", 0, nil, StatusDeferred},
		{"out of range code is deferred", 999, nil, StatusDeferred},
		{"smtp error 550 failed", 0, &smtp.SMTPError{Code: 550}, StatusFailed},
		{"wrapped smtp error 451 deferred", 0, fmt.Errorf("rcpt: %w", &smtp.SMTPError{Code: 451}), StatusDeferred},
		{"smtp error without code deferred", 0, &smtp.SMTPError{}, StatusDeferred},
		{"timeout deferred", 0, timeoutErr{}, StatusDeferred},
		{"deadline deferred", 0, os.ErrDeadlineExceeded, StatusDeferred},
		{"context deadline deferred", 0, context.DeadlineExceeded, StatusDeferred},
		{"connection refused deferred", 0, &net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}, StatusDeferred},
		{"connection reset deferred", 0, &net.OpError{Op: "read", Err: syscall.ECONNRESET}, StatusDeferred},
		{"io.EOF deferred", 0, io.EOF, StatusDeferred},
		{"unexpected EOF deferred", 0, io.ErrUnexpectedEOF, StatusDeferred},
		{"unknown error deferred", 0, errors.New("something odd"), StatusDeferred},
		{"permanent dns error failed", 0, errNXDomain("example.com"), StatusFailed},
		{"temporary dns error deferred", 0, errTemporary("example.com", io.EOF), StatusDeferred},
		{"permanent open error failed", 0, &Error{Msg: "loop"}, StatusFailed},
		{"temporary open error deferred", 0, &Error{Temporary: true}, StatusDeferred},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := Classify(tc.code, tc.err); got != tc.want {
				t.Errorf("Classify(%d, %v): got %v, want %v", tc.code, tc.err, got, tc.want)
			}
		})
	}
}

func TestReplyFromText(t *testing.T) {
	tests := []struct {
		name string
		code int
		msg  string
		want Reply
	}{
		{"enhanced code", 250, "2.0.0 Ok: queued as ABC", Reply{Code: 250, Enhanced: "2.0.0", Text: "Ok: queued as ABC"}},
		{"no enhanced code", 250, "Ok", Reply{Code: 250, Text: "Ok"}},
		{"multi-line with repeated code", 250, "2.0.0 first\n2.0.0 second", Reply{Code: 250, Enhanced: "2.0.0", Text: "first second"}},
		{"multi-line without codes", 220, "one\ntwo\nthree", Reply{Code: 220, Text: "one two three"}},
		{"control characters dropped", 250, "a\rb\x00c\td", Reply{Code: 250, Text: "abc d"}},
		{"not an enhanced code", 250, "2.0 almost", Reply{Code: 250, Text: "2.0 almost"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := replyFromText(tc.code, tc.msg); got != tc.want {
				t.Errorf("replyFromText(%d, %q): got %+v, want %+v", tc.code, tc.msg, got, tc.want)
			}
		})
	}
}

func TestReplyFromSMTPError(t *testing.T) {
	got := replyFromSMTPError(&smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such\nuser here"})
	want := Reply{Code: 550, Enhanced: "5.1.1", Text: "no such user here"}
	if got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

func TestReplyString(t *testing.T) {
	r := Reply{Code: 550, Enhanced: "5.1.1", Text: "no such user", RemoteHost: "mx.example.com", RemoteIP: "192.0.2.1"}
	if got, want := r.String(), "mx.example.com[192.0.2.1] said: 550 5.1.1 no such user"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}
