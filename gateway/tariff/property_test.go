package tariff

import (
	"testing"
	"time"

	"github.com/shopspring/decimal"
	"pgregory.net/rapid"

	"github.com/p2pgrid/p2pgrid/market"
)

// For any clearings and rules: the slots cover the horizon from the
// current interval, contiguous and aligned; a slot with a clearing is
// valued by it exactly; every estimate lies between the cheapest and the
// dearest value its history can give (an uncleared interval counting as
// retail), and a slot without history is retail.
func TestSlotsProperties(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		iv := time.Duration(rapid.SampledFrom([]int{5, 7, 15, 30, 60}).Draw(t, "minutes")) * time.Minute
		r := Rules{
			Calendar: market.Calendar{Interval: iv},
			Retail:   decimal.New(int64(rapid.IntRange(0, 500_000).Draw(t, "retail")), -6),
			Fee:      decimal.New(int64(rapid.IntRange(0, 50_000).Draw(t, "fee")), -6),
			Horizon:  time.Duration(rapid.IntRange(1, 48*60).Draw(t, "horizon_min")) * time.Minute,
			Days:     rapid.IntRange(1, 5).Draw(t, "days"),
		}
		now := time.Date(2026, 12, 3, 0, 0, 0, 0, time.UTC).Add(time.Duration(rapid.IntRange(0, 86_399).Draw(t, "now_s")) * time.Second)
		from := r.Calendar.Start(now)
		var known []Clearing
		byStart := map[int64]Clearing{}
		for range rapid.IntRange(0, 60).Draw(t, "clearings") {
			start := from.Add(time.Duration(rapid.IntRange(-6*24*60, 24*60).Draw(t, "at_min")) * time.Minute)
			c := Clearing{Start: r.Calendar.Start(start), Cleared: rapid.Bool().Draw(t, "cleared"),
				Price: decimal.New(int64(rapid.IntRange(-50_000, 400_000).Draw(t, "price")), -6)}
			known = append(known, c)
			byStart[c.Start.Unix()] = c
		}
		slots, err := Slots(now, r, known)
		if err != nil {
			t.Fatal(err)
		}
		if want := int((r.Horizon + iv - 1) / iv); len(slots) != want {
			t.Fatalf("%d slots, want %d", len(slots), want)
		}
		paid := func(c Clearing) decimal.Decimal {
			if c.Cleared {
				return c.Price.Add(r.Fee)
			}
			return r.Retail
		}
		for i, s := range slots {
			if want := from.Add(time.Duration(i) * iv); !s.Start.Equal(want) || !s.End.Equal(want.Add(iv)) {
				t.Fatalf("slot %d: %v-%v, want from %v", i, s.Start, s.End, want)
			}
			if c, ok := byStart[s.Start.Unix()]; ok {
				if !s.Value.Equal(paid(c)) {
					t.Fatalf("slot %d: %s, its clearing gives %s", i, s.Value, paid(c))
				}
				continue
			}
			var lo, hi *decimal.Decimal
			n := 0
			for d := 1; d <= r.Days; d++ {
				if c, ok := byStart[r.Calendar.Start(s.Start.Add(-time.Duration(d)*24*time.Hour)).Unix()]; ok {
					v := paid(c)
					if lo == nil || v.LessThan(*lo) {
						lo = &v
					}
					if hi == nil || v.GreaterThan(*hi) {
						hi = &v
					}
					n++
				}
			}
			switch {
			case n == 0 && (s.Source != SourceRetail || !s.Value.Equal(r.Retail)):
				t.Fatalf("slot %d without history: %s (%s), want retail %s", i, s.Value, s.Source, r.Retail)
			case n > 0 && (s.Source != SourceEstimate || s.Samples != n || s.Value.LessThan(*lo) || s.Value.GreaterThan(*hi)):
				t.Fatalf("slot %d: %s (%s, %d samples), want an estimate of %d within [%s, %s]", i, s.Value, s.Source, s.Samples, n, lo, hi)
			}
		}
	})
}
