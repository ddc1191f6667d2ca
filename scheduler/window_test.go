package scheduler

import (
	"testing"
	"time"
)

func mustLoad(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatalf("LoadLocation(%q): %v", name, err)
	}
	return loc
}

func utc(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t.UTC()
}

func TestWindowAt(t *testing.T) {
	cases := []struct {
		name       string
		at         string
		length     time.Duration
		zone       string
		start, end string
	}{
		{"UTC hour mid", "2026-11-23T10:17:05Z", time.Hour, "UTC", "2026-11-23T10:00:00Z", "2026-11-23T11:00:00Z"},
		{"UTC hour exactly on boundary", "2026-11-23T11:00:00Z", time.Hour, "UTC", "2026-11-23T11:00:00Z", "2026-11-23T12:00:00Z"},
		{"UTC one second before boundary", "2026-11-23T10:59:59Z", time.Hour, "UTC", "2026-11-23T10:00:00Z", "2026-11-23T11:00:00Z"},
		{"UTC minute", "2026-11-23T10:17:05Z", time.Minute, "UTC", "2026-11-23T10:17:00Z", "2026-11-23T10:18:00Z"},
		{"UTC 2s", "2026-11-23T10:17:05Z", 2 * time.Second, "UTC", "2026-11-23T10:17:04Z", "2026-11-23T10:17:06Z"},
		{"UTC day", "2026-11-23T23:59:59Z", 24 * time.Hour, "UTC", "2026-11-23T00:00:00Z", "2026-11-24T00:00:00Z"},
		{"UTC 15m", "2026-11-23T10:44:59Z", 15 * time.Minute, "UTC", "2026-11-23T10:30:00Z", "2026-11-23T10:45:00Z"},
		{"Kolkata hour starts at :30 UTC", "2026-11-23T10:17:00Z", time.Hour, "Asia/Kolkata", "2026-11-23T09:30:00Z", "2026-11-23T10:30:00Z"},
		{"Kolkata hour after :30 UTC", "2026-11-23T10:31:00Z", time.Hour, "Asia/Kolkata", "2026-11-23T10:30:00Z", "2026-11-23T11:30:00Z"},
		{"Kolkata day", "2026-11-23T20:00:00Z", 24 * time.Hour, "Asia/Kolkata", "2026-11-23T18:30:00Z", "2026-11-24T18:30:00Z"},
		{"Kolkata minute", "2026-11-23T10:17:42Z", time.Minute, "Asia/Kolkata", "2026-11-23T10:17:00Z", "2026-11-23T10:18:00Z"},
		// Europe/Warsaw: CET (+1) to CEST (+2) at 2026-03-29 01:00 UTC
		// (02:00 local becomes 03:00); back at 2026-10-25 01:00 UTC (03:00 becomes 02:00).
		{"Warsaw hour before spring jump", "2026-03-29T00:30:00Z", time.Hour, "Europe/Warsaw", "2026-03-29T00:00:00Z", "2026-03-29T01:00:00Z"},
		{"Warsaw hour after spring jump", "2026-03-29T01:30:00Z", time.Hour, "Europe/Warsaw", "2026-03-29T01:00:00Z", "2026-03-29T02:00:00Z"},
		{"Warsaw day of spring jump is 23h", "2026-03-29T12:00:00Z", 24 * time.Hour, "Europe/Warsaw", "2026-03-28T23:00:00Z", "2026-03-29T22:00:00Z"},
		{"Warsaw day before spring jump, early", "2026-03-28T23:30:00Z", 24 * time.Hour, "Europe/Warsaw", "2026-03-28T23:00:00Z", "2026-03-29T22:00:00Z"},
		// The repeated 02:xx hour continues the same wall-clock slot: one budget.
		{"Warsaw first 02:xx hour in autumn", "2026-10-25T00:30:00Z", time.Hour, "Europe/Warsaw", "2026-10-25T00:00:00Z", "2026-10-25T02:00:00Z"},
		{"Warsaw second 02:xx hour in autumn", "2026-10-25T01:30:00Z", time.Hour, "Europe/Warsaw", "2026-10-25T00:00:00Z", "2026-10-25T02:00:00Z"},
		{"Warsaw 03:00 CET after the repeat", "2026-10-25T02:00:00Z", time.Hour, "Europe/Warsaw", "2026-10-25T02:00:00Z", "2026-10-25T03:00:00Z"},
		{"Warsaw minute inside the repeated hour", "2026-10-25T01:30:30Z", time.Minute, "Europe/Warsaw", "2026-10-25T01:30:00Z", "2026-10-25T01:31:00Z"},
		{"Warsaw day of autumn change is 25h", "2026-10-25T12:00:00Z", 24 * time.Hour, "Europe/Warsaw", "2026-10-24T22:00:00Z", "2026-10-25T23:00:00Z"},
		{"Warsaw 2h window across the spring gap", "2026-03-29T01:30:00Z", 2 * time.Hour, "Europe/Warsaw", "2026-03-29T01:00:00Z", "2026-03-29T02:00:00Z"},
		{"Warsaw 2h window before the spring gap", "2026-03-29T00:30:00Z", 2 * time.Hour, "Europe/Warsaw", "2026-03-28T23:00:00Z", "2026-03-29T01:00:00Z"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := WindowAt(utc(tc.at), tc.length, mustLoad(t, tc.zone))
			if !w.Start.Equal(utc(tc.start)) || !w.End.Equal(utc(tc.end)) {
				t.Errorf("WindowAt(%s, %v, %s) = [%s, %s), want [%s, %s)", tc.at, tc.length, tc.zone,
					w.Start.Format(time.RFC3339), w.End.Format(time.RFC3339), tc.start, tc.end)
			}
			if !w.Contains(utc(tc.at)) {
				t.Errorf("window does not contain %s", tc.at)
			}
		})
	}
}

// Consecutive windows tile time with no gap and no overlap, whatever the
// zone, across a whole year in every zone of interest.
func TestWindowsTileTheYear(t *testing.T) {
	for _, zone := range []string{"UTC", "Europe/Warsaw", "Asia/Kolkata", "America/New_York", "Australia/Lord_Howe"} {
		for _, length := range []time.Duration{time.Minute * 30, time.Hour, 3 * time.Hour, 24 * time.Hour} {
			loc := mustLoad(t, zone)
			at := utc("2026-01-01T00:00:00Z")
			w := WindowAt(at, length, loc)
			for i := 0; i < 20000 && at.Year() == 2026; i++ {
				next := WindowAt(w.End, length, loc)
				if !next.Start.Equal(w.End) {
					t.Fatalf("%s %v: window [%s, %s) is followed by [%s, %s)", zone, length, w.Start, w.End, next.Start, next.End)
				}
				if !next.End.After(next.Start) {
					t.Fatalf("%s %v: empty window at %s", zone, length, next.Start)
				}
				if d := next.End.Sub(next.Start); d > 2*length+time.Hour {
					t.Fatalf("%s %v: window [%s, %s) lasts %v", zone, length, next.Start, next.End, d)
				}
				// A time just before the end maps to the same window.
				if mid := WindowAt(next.End.Add(-time.Second), length, loc); !mid.Start.Equal(next.Start) {
					t.Fatalf("%s %v: %s maps to window starting %s, want %s", zone, length, next.End.Add(-time.Second), mid.Start, next.Start)
				}
				w, at = next, next.Start
			}
		}
	}
}
