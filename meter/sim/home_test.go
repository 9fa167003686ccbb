package sim

import (
	"testing"
	"time"

	"pgregory.net/rapid"
)

var noon = time.Date(2026, 6, 21, 12, 0, 0, 0, time.UTC)

func testSpec() HomeSpec {
	return HomeSpec{Name: "h", Seed: 42, PVPeakW: 6000, BaseLoadW: 300, PeakLoadW: 1500,
		ImportWh: 1_000_000, ExportWh: 500_000, PVWh: 3_000_000, InverterModel: 103}
}

// The counters are the exact integral of the power the devices show: the
// sum over every step of its power times its length.
func TestCountersAreExactIntegral(t *testing.T) {
	spec := testSpec()
	start := noon.Add(-3 * time.Hour)
	h := NewHome(spec, start)
	end := start.Add(2 * time.Hour)
	got := h.At(end)

	var pvWms, impWms, expWms int64
	for at := start; at.Before(end); at = at.Add(step) {
		pv, load := h.power(at)
		pvWms += pv * 1000
		if g := load - pv; g > 0 {
			impWms += g * 1000
		} else {
			expWms -= g * 1000
		}
	}
	if got.PVWh != spec.PVWh+pvWms/wmsPerWh || got.ImportWh != spec.ImportWh+impWms/wmsPerWh ||
		got.ExportWh != spec.ExportWh+expWms/wmsPerWh {
		t.Errorf("counters pv %d imp %d exp %d, want %d %d %d", got.PVWh, got.ImportWh, got.ExportWh,
			spec.PVWh+pvWms/wmsPerWh, spec.ImportWh+impWms/wmsPerWh, spec.ExportWh+expWms/wmsPerWh)
	}
	if got.PVWh-spec.PVWh < 3000 { // two late-morning hours on a 6 kW array, clouds or not
		t.Errorf("only %d Wh of solar in two midday hours", got.PVWh-spec.PVWh)
	}
}

// However the time is chopped into polls, the counters come out the same.
func TestCountersIndependentOfPolling(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		start := noon.Add(time.Duration(rapid.Int64Range(-12, 12).Draw(t, "h")) * time.Hour)
		a, b := NewHome(testSpec(), start), NewHome(testSpec(), start)
		at := start
		for range rapid.IntRange(1, 50).Draw(t, "polls") {
			at = at.Add(time.Duration(rapid.Int64Range(0, 120_000).Draw(t, "ms")) * time.Millisecond)
			a.At(at)
		}
		sa, sb := a.At(at), b.At(at)
		if sa.PVWh != sb.PVWh || sa.ImportWh != sb.ImportWh || sa.ExportWh != sb.ExportWh {
			t.Fatalf("polled %+v, once %+v", sa, sb)
		}
	})
}

func TestCountersNeverGoBackwards(t *testing.T) {
	h := NewHome(testSpec(), noon)
	s1 := h.At(noon.Add(time.Hour))
	s2 := h.At(noon) // earlier: ignored
	if s2.Time != s1.Time || s2.ImportWh != s1.ImportWh || s2.PVWh != s1.PVWh {
		t.Errorf("went back: %v then %v", s1.Time, s2.Time)
	}
}

func TestSolarShape(t *testing.T) {
	spec := testSpec()
	night := time.Date(2026, 6, 21, 2, 0, 0, 0, time.UTC)
	if p := solarW(spec.Seed, spec.PVPeakW, night); p != 0 {
		t.Errorf("solar at 02:00: %d W", p)
	}
	var max int64
	for m := 0; m < 24*60; m++ {
		p := solarW(spec.Seed, spec.PVPeakW, night.Add(time.Duration(m)*time.Minute))
		if p < 0 || p > spec.PVPeakW {
			t.Fatalf("solar %d W outside [0, %d]", p, spec.PVPeakW)
		}
		max = max2(max, p)
	}
	if max < spec.PVPeakW/2 {
		t.Errorf("peak of the day %d W, want at least half of %d", max, spec.PVPeakW)
	}
	// Same seed, same curve; another seed, other clouds.
	day := func(seed uint64) []int64 {
		var ps []int64
		for m := 0; m < 12*60; m++ {
			ps = append(ps, solarW(seed, 5000, noon.Add(time.Duration(m-6*60)*time.Minute)))
		}
		return ps
	}
	first, again, otherSeed := day(1), day(1), day(2)
	other := 0
	for m := range first {
		if first[m] != again[m] {
			t.Fatal("not deterministic")
		}
		if first[m] != otherSeed[m] {
			other++
		}
	}
	if other == 0 {
		t.Error("two seeds gave the same clouds all day")
	}
}

func max2(a, b int64) int64 {
	if a > b {
		return a
	}
	return b
}

func TestLoadShape(t *testing.T) {
	spec := testSpec()
	night := time.Date(2026, 6, 21, 3, 0, 0, 0, time.UTC)
	evening := time.Date(2026, 6, 21, 19, 0, 0, 0, time.UTC)
	var n, e int64
	for m := 0; m < 60; m++ {
		n += loadW(spec.Seed, spec.BaseLoadW, spec.PeakLoadW, night.Add(time.Duration(m)*time.Minute))
		e += loadW(spec.Seed, spec.BaseLoadW, spec.PeakLoadW, evening.Add(time.Duration(m)*time.Minute))
	}
	if e < 2*n {
		t.Errorf("evening hour %d W·min not well above the night's %d", e, n)
	}
}

func TestDefaultHomesMixSellersAndBuyers(t *testing.T) {
	homes := DefaultHomes(6, 7)
	rich, none := 0, 0
	names := map[string]bool{}
	for _, h := range homes {
		names[h.Name] = true
		if h.PVPeakW >= 5000 {
			rich++
		}
		if h.PVPeakW == 0 {
			none++
		}
		if h.ImportWh >= 10_000_000 || h.PVWh >= 10_000_000 {
			t.Errorf("%s: counters beyond 10 MWh lose Wh in a float32 kWh register", h.Name)
		}
	}
	if rich < 2 || none < 1 || len(names) != 6 {
		t.Errorf("%d solar-rich, %d without solar, %d names: want a mix", rich, none, len(names))
	}
}

func TestSimClockAccelerates(t *testing.T) {
	wall := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	now := wall
	s, err := New(Options{Start: noon, Speed: 90, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	now = now.Add(10 * time.Second)
	if got := s.Now(); !got.Equal(noon.Add(15 * time.Minute)) {
		t.Errorf("after 10 s at 90x: %v, want %v", got, noon.Add(15*time.Minute))
	}
	now = now.Add(-5 * time.Second) // wall clock stepped back
	if got := s.Now(); got.Before(noon.Add(15 * time.Minute)) {
		t.Errorf("simulated time went back to %v", got)
	}
}
