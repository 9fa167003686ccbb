package settlement

import (
	"math"
	"strings"
	"testing"
)

func TestCounterDelta(t *testing.T) {
	const w32 = int64(1) << 32
	const kwhRoll = int64(100_000_000) // 10^8 Wh: a five-digit kWh register
	cases := []struct {
		name            string
		prev, cur, wrap int64
		delta           int64
		ok              bool
		reason          string // substring; "" means reason must be empty
	}{
		{"increase", 100, 250, 0, 150, true, ""},
		{"no change", 5, 5, w32, 0, true, ""},
		{"increase near top", w32 - 10, w32 - 1, w32, 9, true, ""},
		{"largest increase", 0, math.MaxInt64, 0, math.MaxInt64, true, ""},
		{"32-bit wrap", w32 - 100, 50, w32, 150, true, "wrapped around at 4294967296 (from 4294967196 to 50)"},
		{"kWh rollover", kwhRoll - 10, 20, kwhRoll, 30, true, "wrapped around at 100000000"},
		{"wrap to zero", kwhRoll - 1, 0, kwhRoll, 1, true, "wrapped"},
		// window = 10^8/1000 = 100000: a wrap counting exactly that is a
		// wrap, one more is a reset.
		{"wrap at the window edge", kwhRoll - 60_000, 40_000, kwhRoll, 100_000, true, "wrapped"},
		{"just beyond the window", kwhRoll - 60_000, 40_001, kwhRoll, 0, false,
			"counter reset: went down from 99940000 to 40001 (a wrap at 100000000 would mean 100001 counted, beyond the wrap window 100000)"},
		{"reset mid-range", 2_000_000, 100, w32, 0, false, "counter reset: went down from 2000000 to 100"},
		{"reset to zero", 123_456, 0, kwhRoll, 0, false, "counter reset"},
		{"decrease, never wraps", 1000, 10, 0, 0, false, "counter reset: went down from 1000 to 10 and does not wrap"},
		{"tiny range wraps by one", 9, 0, 10, 1, true, "wrapped"},
		{"tiny range: two is a reset", 9, 1, 10, 0, false, "counter reset"},
		{"wrap at MaxInt64", math.MaxInt64 - 1, 0, math.MaxInt64, 1, true, "wrapped"},
		{"negative previous", -1, 5, 0, 0, false, "negative reading (previous -1, current 5)"},
		{"negative current", 5, -1, w32, 0, false, "negative reading"},
		{"reading at wrapAt", w32, 5, w32, 0, false, "reading beyond the counter's range [0, 4294967296)"},
		{"current beyond wrapAt", 5, w32 + 5, w32, 0, false, "beyond the counter's range"},
		{"negative wrapAt", 1, 2, -1, 0, false, "wrap point -1 is negative"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d, ok, reason := CounterDelta(c.prev, c.cur, c.wrap)
			if d != c.delta || ok != c.ok {
				t.Errorf("CounterDelta(%d, %d, %d) = %d, %v (%q); want %d, %v", c.prev, c.cur, c.wrap, d, ok, reason, c.delta, c.ok)
			}
			if c.reason == "" && reason != "" || !strings.Contains(reason, c.reason) {
				t.Errorf("reason %q, want %q", reason, c.reason)
			}
		})
	}
}
