package smtpd

import "testing"

func TestParsePriority(t *testing.T) {
	const max = 10000 // max_priority 10
	cases := []struct {
		in     string
		want   uint32
		wantOK bool
	}{
		{"1", 1000, true},
		{"5", 5000, true},
		{"2.5", 2500, true},
		{" 3 ", 3000, true},
		{"\t7\t", 7000, true},
		{"10", 10000, true},
		{"1.001", 1001, true},
		{"9.999", 9999, true},
		{"05", 5000, true},
		{"1.50", 1500, true},
		{"", 0, false},
		{"0", 0, false},
		{"0.999", 0, false},
		{"-1", 0, false},
		{"+5", 0, false},
		{"abc", 0, false},
		{"1e3", 0, false},
		{"NaN", 0, false},
		{"Inf", 0, false},
		{"99999999999999999999999", 0, false},
		{"10.001", 0, false},
		{"11", 0, false},
		{"2.5001", 0, false},
		{"5.", 0, false},
		{".5", 0, false},
		{"1,5", 0, false},
		{"1 5", 0, false},
		{"٣", 0, false},
	}
	for _, tc := range cases {
		t.Run(tc.in, func(t *testing.T) {
			got, ok := ParsePriority(tc.in, max)
			if got != tc.want || ok != tc.wantOK {
				t.Errorf("ParsePriority(%q, %d): got (%d, %v), want (%d, %v)", tc.in, max, got, ok, tc.want, tc.wantOK)
			}
		})
	}
}

func TestFormatMilli(t *testing.T) {
	cases := []struct {
		in   uint32
		want string
	}{{1000, "1"}, {2500, "2.5"}, {1001, "1.001"}, {10250, "10.25"}}
	for _, tc := range cases {
		t.Run(tc.want, func(t *testing.T) {
			if got := formatMilli(tc.in); got != tc.want {
				t.Errorf("formatMilli(%d): got %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}
