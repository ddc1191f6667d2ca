package scheduler

import (
	"testing"
	"time"
)

func TestCostMilli(t *testing.T) {
	for _, tc := range []struct {
		name     string
		priority uint32
		want     int64
	}{
		{"N=1", 1000, 1000},
		{"N=2", 2000, 500},
		{"N=3 rounds up", 3000, 334},
		{"N=7 rounds up", 7000, 143},
		{"N=1.5", 1500, 667},
		{"N=10 (default max_priority)", 10000, 100},
		{"N=1000 (a large max_priority)", 1000000, 1},
		{"N=2.5", 2500, 400},
		{"below 1 counts as 1", 500, 1000},
		{"zero counts as 1", 0, 1000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := CostMilli(tc.priority); got != tc.want {
				t.Errorf("CostMilli(%d) = %d, want %d", tc.priority, got, tc.want)
			}
		})
	}
}

func TestEffectivePriority(t *testing.T) {
	arr := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name   string
		waited time.Duration
		aging  time.Duration
		want   int64
	}{
		{"aging off", 50 * time.Hour, 0, 1000},
		{"less than one interval", 119 * time.Minute, 2 * time.Hour, 1000},
		{"exactly one interval", 2 * time.Hour, 2 * time.Hour, 2000},
		{"five and a half intervals", 11*time.Hour + time.Minute, 2 * time.Hour, 6000},
		{"clock before arrival", -time.Hour, 2 * time.Hour, 1000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := EffectivePriorityMilli(1000, arr, arr.Add(tc.waited), tc.aging); got != tc.want {
				t.Errorf("EffectivePriorityMilli after %v with aging %v = %d, want %d", tc.waited, tc.aging, got, tc.want)
			}
		})
	}
}
