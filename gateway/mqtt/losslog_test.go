package mqtt

import (
	"testing"
	"time"
)

func TestLossLogCountsWithinTheWindow(t *testing.T) {
	var l lossLog
	t0 := time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)
	if n := l.since(t0.Add(-time.Hour)); n != 0 {
		t.Fatalf("empty log: %d", n)
	}
	for i := range maxLosses + 10 {
		l.add(t0.Add(time.Duration(i) * time.Second))
	}
	last := t0.Add(time.Duration(maxLosses+9) * time.Second)
	for _, tc := range []struct {
		after time.Time
		want  int
	}{
		{last, 0},                         // strictly after
		{last.Add(-time.Second), 1},       // the last one
		{last.Add(-10 * time.Second), 10}, // the last ten
		{t0.Add(-time.Hour), maxLosses},   // at most maxLosses are kept
	} {
		if n := l.since(tc.after); n != tc.want {
			t.Errorf("since(%s) = %d, want %d", tc.after.Format(time.TimeOnly), n, tc.want)
		}
	}
}
