package market

import (
	"strings"
	"testing"
	"time"
)

func FuzzParseInterval(f *testing.F) {
	for _, s := range []string{"2026-11-22T12:15Z", "2026-11-22T12:15", "2026-11-22T12:15:00Z", "2026-02-30T12:15Z", "0000-01-01T00:00Z", "2026-11-22t12:15z", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, id string) {
		start, err := ParseInterval(id)
		if err != nil {
			if !strings.Contains(err.Error(), "interval") {
				t.Fatalf("error does not say what it is about: %v", err)
			}
			return
		}
		if IntervalID(start) != id || start.Location() != time.UTC || start.Second() != 0 || start.Nanosecond() != 0 {
			t.Fatalf("accepted %q as %v, whose id is %q", id, start, IntervalID(start))
		}
	})
}
