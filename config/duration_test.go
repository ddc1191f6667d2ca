package config

import (
	"errors"
	"testing"
	"time"
)

func TestParseDuration(t *testing.T) {
	const day = 24 * time.Hour
	tests := []struct {
		in   string
		want time.Duration
	}{
		{"0", 0},
		{"0s", 0},
		{"90s", 90 * time.Second},
		{"5m", 5 * time.Minute},
		{"1h30m", 90 * time.Minute},
		{"2d", 2 * day},
		{"5d", 5 * day},
		{"1w", 7 * day},
		{"1d12h", 36 * time.Hour},
		{"1w2d3h4m5s", 9*day + 3*time.Hour + 4*time.Minute + 5*time.Second},
		{"200ms", 200 * time.Millisecond},
		{"1.5h", 90 * time.Minute},
		{"0.1s", 100 * time.Millisecond},
		{".5s", 500 * time.Millisecond},
		{"1500us", 1500 * time.Microsecond},
		{"3µs", 3 * time.Microsecond},
		{"7ns", 7},
		{"2562047h", 2562047 * time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseDuration(tt.in)
			if err != nil || time.Duration(got) != tt.want {
				t.Errorf("ParseDuration(%q) = %v, %v; want %v, nil", tt.in, time.Duration(got), err, tt.want)
			}
		})
	}
}

func TestParseDurationErrors(t *testing.T) {
	for _, in := range []string{
		"", "30", "00", "-5m", "+5m", "5", "h", "5x", "5M", "1 h", " 5s", "5s ", "1..5s", ".s", "1d-2h",
		"5mm", "1e3s", "9999999999999999999s", "106752d", "2562048h", "15251w",
	} {
		t.Run(in, func(t *testing.T) {
			got, err := ParseDuration(in)
			if err == nil {
				t.Fatalf("ParseDuration(%q) = %v, nil; want an error", in, time.Duration(got))
			}
			if !errors.Is(err, ErrDuration) {
				t.Errorf("ParseDuration(%q) error %v does not wrap ErrDuration", in, err)
			}
		})
	}
}

func TestDurationString(t *testing.T) {
	tests := []struct {
		in   time.Duration
		want string
	}{
		{0, "0s"},
		{90 * time.Second, "1m30s"},
		{90 * time.Minute, "1h30m"},
		{5 * 24 * time.Hour, "5d"},
		{36 * time.Hour, "1d12h"},
		{200 * time.Millisecond, "200ms"},
		{1500 * time.Millisecond, "1.5s"},
		{-5 * time.Second, "-5s"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := Duration(tt.in).String(); got != tt.want {
				t.Errorf("Duration(%v).String() = %q, want %q", tt.in, got, tt.want)
			}
			if tt.in < 0 {
				return
			}
			back, err := ParseDuration(tt.want)
			if err != nil || time.Duration(back) != tt.in {
				t.Errorf("ParseDuration(%q) = %v, %v; want %v (round trip)", tt.want, time.Duration(back), err, tt.in)
			}
		})
	}
}

func TestDurationText(t *testing.T) {
	var d Duration
	if err := d.UnmarshalText([]byte("1d12h")); err != nil || time.Duration(d) != 36*time.Hour {
		t.Errorf("UnmarshalText(1d12h) = %v, %v; want 36h, nil", time.Duration(d), err)
	}
	if err := d.UnmarshalText([]byte("30")); err == nil {
		t.Errorf("UnmarshalText(30) = nil error, want one (bare number)")
	}
	if time.Duration(d) != 36*time.Hour {
		t.Errorf("failed UnmarshalText changed the value to %v", time.Duration(d))
	}
	b, err := Duration(90 * time.Minute).MarshalText()
	if err != nil || string(b) != "1h30m" {
		t.Errorf("MarshalText = %q, %v; want \"1h30m\", nil", b, err)
	}
}
