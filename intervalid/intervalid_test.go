package intervalid

import (
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	start := time.Date(2026, 11, 22, 12, 15, 0, 0, time.UTC)
	if got := Format(start.Add(37 * time.Second).In(time.FixedZone("CET", 3600))); got != "2026-11-22T12:15Z" {
		t.Fatalf("Format = %q, want 2026-11-22T12:15Z", got)
	}
	if got, err := Parse("2026-11-22T12:15Z"); err != nil || !got.Equal(start) || got.Location() != time.UTC {
		t.Fatalf("Parse = %v, %v; want %v in UTC", got, err, start)
	}
	for _, bad := range []string{"", "2026-11-22T12:15:00Z", "2026-11-22T13:15+01:00", "2026-11-22 12:15Z", "2026-11-22T12:15z"} {
		if _, err := Parse(bad); err == nil {
			t.Errorf("Parse(%q) accepted a name that is not an id", bad)
		}
	}
}

func TestParseLoose(t *testing.T) {
	start := time.Date(2026, 11, 22, 12, 15, 0, 0, time.UTC)
	for _, name := range []string{"2026-11-22T12:15Z", "2026-11-22T12:15:00Z", "2026-11-22T13:15+01:00", "2026-11-22T12:15:00.000Z"} {
		if got, err := ParseLoose(name); err != nil || !got.Equal(start) {
			t.Errorf("ParseLoose(%q) = %v, %v; want %v", name, got, err, start)
		}
	}
	for _, bad := range []string{"", "yesterday", "2026-11-22", "2026-11-22T12Z"} {
		if _, err := ParseLoose(bad); err == nil {
			t.Errorf("ParseLoose(%q) accepted it", bad)
		}
	}
}
