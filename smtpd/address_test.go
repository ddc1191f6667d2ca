package smtpd

import (
	"fmt"
	"strings"
	"testing"
)

func TestCheckAddress(t *testing.T) {
	cases := []struct {
		name     string
		in       string
		role     addrRole
		want     string
		wantCode int
		wantEnh  string
	}{
		{name: "plain", in: "a.b+c@Example.COM", role: roleRecipient, want: "a.b+c@example.com"},
		{name: "local part case kept", in: "John@x.test", role: roleSender, want: "John@x.test"},
		{name: "unquoted space is requoted", in: "john doe@x.test", role: roleRecipient, want: `"john doe"@x.test`},
		{name: "quote and backslash escaped", in: `a"b\c@x.test`, role: roleRecipient, want: `"a\"b\\c"@x.test`},
		{name: "double dot is requoted", in: "a..b@x.test", role: roleRecipient, want: `"a..b"@x.test`},
		{name: "at sign in local part", in: "a@b@x.test", role: roleRecipient, want: `"a@b"@x.test`},
		{name: "control byte sender", in: "a\x00b@x.test", role: roleSender, wantCode: 501, wantEnh: "5.1.7"},
		{name: "DEL recipient", in: "a\x7f@x.test", role: roleRecipient, wantCode: 501, wantEnh: "5.1.3"},
		{name: "non-ASCII", in: "jörg@x.test", role: roleRecipient, wantCode: 553, wantEnh: "5.6.7"},
		{name: "address literal recipient", in: "a@[192.0.2.1]", role: roleRecipient, wantCode: 550, wantEnh: "5.1.3"},
		{name: "IPv6 literal recipient", in: "a@[IPv6:::1]", role: roleRecipient, wantCode: 550, wantEnh: "5.1.3"},
		{name: "address literal sender", in: "a@[192.0.2.1]", role: roleSender, wantCode: 553, wantEnh: "5.1.7"},
		{name: "underscore in domain", in: "a@x_y.test", role: roleRecipient, wantCode: 553, wantEnh: "5.1.3"},
		{name: "trailing dot", in: "a@x.test.", role: roleRecipient, wantCode: 553, wantEnh: "5.1.3"},
		{name: "hyphen at label end", in: "a@x-.test", role: roleRecipient, wantCode: 553, wantEnh: "5.1.3"},
		{name: "no domain", in: "a@", role: roleRecipient, wantCode: 553, wantEnh: "5.1.3"},
		{name: "no at", in: "a", role: roleSender, wantCode: 553, wantEnh: "5.1.7"},
		{name: "too long", in: strings.Repeat("a", 250) + "@x.test", role: roleRecipient, wantCode: 501, wantEnh: "5.1.3"},
		{name: "label too long", in: "a@" + strings.Repeat("x", 64) + ".test", role: roleRecipient, wantCode: 553, wantEnh: "5.1.3"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, rerr := checkAddress(tc.in, tc.role)
			if tc.wantCode == 0 {
				if rerr != nil || got != tc.want {
					t.Fatalf("checkAddress(%q): got %q, %v; want %q", tc.in, got, rerr, tc.want)
				}
				return
			}
			if rerr == nil {
				t.Fatalf("checkAddress(%q): got %q, want error %d %s", tc.in, got, tc.wantCode, tc.wantEnh)
			}
			enh := rerr.EnhancedCode
			gotEnh := fmt.Sprintf("%d.%d.%d", enh[0], enh[1], enh[2])
			if rerr.Code != tc.wantCode || gotEnh != tc.wantEnh {
				t.Errorf("checkAddress(%q): got %d %s, want %d %s", tc.in, rerr.Code, gotEnh, tc.wantCode, tc.wantEnh)
			}
		})
	}
}
