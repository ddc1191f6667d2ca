package delivery

import (
	"slices"
	"testing"

	"github.com/emersion/go-smtp"
)

func TestNotifySet(t *testing.T) {
	tests := []struct {
		name string
		in   []string
		want []smtp.DSNNotify
		ok   bool
	}{
		{"never", []string{"NEVER"}, []smtp.DSNNotify{smtp.DSNNotifyNever}, true},
		{"combination, any case", []string{"success", " Delay "}, []smtp.DSNNotify{smtp.DSNNotifySuccess, smtp.DSNNotifyDelayed}, true},
		{"never with others", []string{"NEVER", "FAILURE"}, nil, false},
		{"duplicate", []string{"FAILURE", "failure"}, nil, false},
		{"unknown", []string{"SOMETIMES"}, nil, false},
		{"empty", nil, nil, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := notifySet(tc.in)
			if ok != tc.ok || !slices.Equal(got, tc.want) {
				t.Errorf("notifySet(%q): got %v, %v; want %v, %v", tc.in, got, ok, tc.want, tc.ok)
			}
		})
	}
}

func TestORCPT(t *testing.T) {
	tests := []struct {
		in       string
		wantType smtp.DSNAddressType
		wantAddr string
		ok       bool
	}{
		{"rfc822;a@example.com", smtp.DSNAddressTypeRFC822, "a@example.com", true},
		{"RFC822;a@example.com", smtp.DSNAddressTypeRFC822, "a@example.com", true},
		{"rfc822;jürgen@example.com", smtp.DSNAddressTypeUTF8, "jürgen@example.com", true},
		{"utf-8;jürgen@example.com", smtp.DSNAddressTypeUTF8, "jürgen@example.com", true},
		{"x400;whatever", "", "", false},
		{"a@example.com", "", "", false},
		{"rfc822;", "", "", false},
		{"rfc822;a\r\n@example.com", "", "", false},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			typ, addr, ok := orcpt(tc.in)
			if typ != tc.wantType || addr != tc.wantAddr || ok != tc.ok {
				t.Errorf("orcpt(%q): got %q %q %v, want %q %q %v", tc.in, typ, addr, ok, tc.wantType, tc.wantAddr, tc.ok)
			}
		})
	}
}

func TestSplitRelay(t *testing.T) {
	tests := []struct {
		in       string
		wantHost string
		wantPort int
		wantErr  bool
	}{
		{"smtp.example.com:587", "smtp.example.com", 587, false},
		{"[192.0.2.1]:2525", "192.0.2.1", 2525, false},
		{"[2001:db8::1]:25", "2001:db8::1", 25, false},
		{"[smtp.example.com]", "smtp.example.com", 25, false},
		{"smtp.example.com", "smtp.example.com", 25, false},
		{"smtp.example.com:0", "", 0, true},
		{"smtp.example.com:smtp", "", 0, true},
		{":25", "", 0, true},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			host, port, err := splitRelay(tc.in, 25)
			if host != tc.wantHost || port != tc.wantPort || (err != nil) != tc.wantErr {
				t.Errorf("splitRelay(%q): got %q %d %v, want %q %d error=%v", tc.in, host, port, err, tc.wantHost, tc.wantPort, tc.wantErr)
			}
		})
	}
}
