package testclock

import (
	"strconv"
	"testing"
	"time"
)

func TestNowIsSharedAcrossClocks(t *testing.T) {
	epoch := time.Date(2026, 11, 22, 16, 0, 0, 0, time.UTC)
	origin := time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)
	wall := origin.Add(10 * time.Second)
	a, err := Parse(epoch.Format(time.RFC3339), strconv.FormatInt(origin.UnixNano(), 10), 6, "")
	if err != nil {
		t.Fatal(err)
	}
	b, err := Parse(epoch.Format(time.RFC3339), strconv.FormatInt(origin.UnixNano(), 10), 6, "5s")
	if err != nil {
		t.Fatal(err)
	}
	a.Wall = func() time.Time { return wall }
	b.Wall = a.Wall
	if got, want := a.Now(), epoch.Add(time.Minute); !got.Equal(want) {
		t.Errorf("10 s at speed 6: %s, want %s", got, want)
	}
	if got, want := b.Now().Sub(a.Now()), 5*time.Second; got != want {
		t.Errorf("skew: %s, want %s", got, want)
	}
	if got := a.Real(time.Minute); got != 10*time.Second {
		t.Errorf("Real(1m) at speed 6: %s", got)
	}
}

func TestParseRefuses(t *testing.T) {
	for _, c := range []struct {
		epoch, origin string
		speed         float64
		skew          string
	}{
		{"yesterday", "0", 1, ""},
		{"2026-11-22T16:00:00Z", "noon", 1, ""},
		{"2026-11-22T16:00:00Z", "0", 0, ""},
		{"2026-11-22T16:00:00Z", "0", -2, ""},
		{"2026-11-22T16:00:00Z", "0", 1, "5"},
	} {
		if _, err := Parse(c.epoch, c.origin, c.speed, c.skew); err == nil {
			t.Errorf("Parse(%q, %q, %v, %q) accepted", c.epoch, c.origin, c.speed, c.skew)
		}
	}
}
