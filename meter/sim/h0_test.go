package sim

import (
	"math"
	"testing"
	"time"
)

var berlin = time.FixedZone("CET", 3600)

// loadWh integrates a load curve over a local day, minute by minute.
func loadWh(f func(time.Time) int64, day time.Time) float64 {
	var wh float64
	for t := day; t.Before(day.AddDate(0, 0, 1)); t = t.Add(time.Minute) {
		wh += float64(f(t)) / 60
	}
	return wh
}

// A year of the H0 shape is the annual consumption (before the wobble):
// h0Scale makes it so, within the quarter-hour sampling.
func TestH0YearIsAnnualConsumption(t *testing.T) {
	var kwh float64
	day := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for range 365 * 24 {
		kwh += h0Relative(day.Add(30*time.Minute)) * h0Scale() / 1000
		day = day.Add(time.Hour)
	}
	if math.Abs(kwh-1) > 0.005 {
		t.Errorf("a year of the H0 shape for 1 kWh/a is %.4f kWh", kwh)
	}
}

// A day's consumption is within 0.6 and 1.5 times the annual mean day,
// more in winter than in summer, and the evening is busier than the
// night.
func TestH0DayEnergy(t *testing.T) {
	const annual = 3650 // 10 kWh on the mean day
	spec := HomeSpec{Seed: 9, AnnualKWh: annual}
	f := func(tm time.Time) int64 { return h0LoadW(spec.Seed, annual, berlin, tm) }
	days := map[string]time.Time{
		"summer workday":      time.Date(2026, 7, 8, 0, 0, 0, 0, berlin),
		"summer sunday":       time.Date(2026, 7, 12, 0, 0, 0, 0, berlin),
		"transition saturday": time.Date(2026, 4, 18, 0, 0, 0, 0, berlin),
		"winter workday":      time.Date(2026, 1, 14, 0, 0, 0, 0, berlin),
		"winter sunday":       time.Date(2026, 1, 18, 0, 0, 0, 0, berlin),
	}
	got := map[string]float64{}
	for name, day := range days {
		got[name] = loadWh(f, day)
		if got[name] < 6000 || got[name] > 15000 {
			t.Errorf("%s: %.0f Wh, want 6,000 to 15,000 (mean day 10,000)", name, got[name])
		}
		night, evening := f(day.Add(3*time.Hour)), f(day.Add(19*time.Hour))
		if evening <= night {
			t.Errorf("%s: %d W at 19:00, not more than %d W at 03:00", name, evening, night)
		}
	}
	if got["winter workday"] <= got["summer workday"]*1.2 {
		t.Errorf("winter workday %.0f Wh, summer workday %.0f Wh: want winter at least 20%% more", got["winter workday"], got["summer workday"])
	}
	if h0Season(time.Date(2026, 3, 20, 0, 0, 0, 0, time.UTC)) != winter || h0Season(time.Date(2026, 3, 21, 0, 0, 0, 0, time.UTC)) != transition ||
		h0Season(time.Date(2026, 5, 15, 0, 0, 0, 0, time.UTC)) != summer || h0Season(time.Date(2026, 9, 15, 0, 0, 0, 0, time.UTC)) != transition {
		t.Error("season boundaries are not 21 March, 15 May, 15 September")
	}
}

// Solar output is zero at night, peaks within half an hour of solar noon,
// and a clear day's energy per kWp is about what the latitude gives a
// horizontal panel: 6 to 9.5 kWh at midsummer at 52 N, 0.4 to 2 at
// midwinter.
func TestClearSkyShape(t *testing.T) {
	const lat, lon = 52.5, 13.4 // solar noon about 11:06 UTC
	for _, c := range []struct {
		day      time.Time
		min, max float64
	}{
		{time.Date(2026, 6, 21, 0, 0, 0, 0, time.UTC), 6000, 9500},
		{time.Date(2026, 12, 21, 0, 0, 0, 0, time.UTC), 400, 2000},
		{time.Date(2026, 3, 21, 0, 0, 0, 0, time.UTC), 3000, 6000},
	} {
		var wh, peak float64
		var peakAt time.Time
		for tm := c.day; tm.Before(c.day.AddDate(0, 0, 1)); tm = tm.Add(time.Minute) {
			w := clearSkyGHI(sunCosZenith(lat, lon, tm)) // W per kWp, clear
			wh += w / 60
			if w > peak {
				peak, peakAt = w, tm
			}
		}
		noon := c.day.Add(12*time.Hour - time.Duration(lon/15*float64(time.Hour)))
		if d := peakAt.Sub(noon); d < -30*time.Minute || d > 30*time.Minute {
			t.Errorf("%s: peak at %s, want within 30 min of %s", c.day.Format("Jan 2"), peakAt.Format("15:04"), noon.Format("15:04"))
		}
		if wh < c.min || wh > c.max {
			t.Errorf("%s: %.0f Wh per kWp on a clear day, want %.0f to %.0f", c.day.Format("Jan 2"), wh, c.min, c.max)
		}
		for _, night := range []time.Duration{0, 90 * time.Minute, 23 * time.Hour} {
			if w := pvW(1, 5000, lat, lon, c.day.Add(night)); w != 0 {
				t.Errorf("%s: %d W at %s UTC", c.day.Format("Jan 2"), w, c.day.Add(night).Format("15:04"))
			}
		}
	}
}

// dayStates reads a home every 30 s over a day.
func dayStates(spec HomeSpec, day time.Time) []State {
	h := NewHome(spec, day)
	var out []State
	for tm := day; tm.Before(day.AddDate(0, 0, 1)); tm = tm.Add(30 * time.Second) {
		out = append(out, h.At(tm))
	}
	return out
}

// The same seed gives the same day, reading for reading; another seed
// another one.
func TestH0HomesDeterministic(t *testing.T) {
	day := time.Date(2026, 6, 10, 0, 0, 0, 0, time.UTC)
	a, b, c := H0Homes(6, 7, 52.5, 13.4, berlin), H0Homes(6, 7, 52.5, 13.4, berlin), H0Homes(6, 8, 52.5, 13.4, berlin)
	for i := range a {
		sa, sb, sc := dayStates(a[i], day), dayStates(b[i], day), dayStates(c[i], day)
		same, other := true, true
		for j := range sa {
			same = same && sa[j] == sb[j]
			other = other && sa[j].LoadW == sc[j].LoadW
		}
		if !same {
			t.Errorf("%s: seed 7 twice gives two days", a[i].Name)
		}
		if other {
			t.Errorf("%s: seeds 7 and 8 give the same loads", a[i].Name)
		}
	}
}

// The battery stays within its capacity, charges from surplus, and lets
// the home export less and import less than without it; the EV draws its
// power only in the evening and night.
func TestBatteryAndEV(t *testing.T) {
	day := time.Date(2026, 6, 10, 0, 0, 0, 0, berlin)
	spec := HomeSpec{Name: "b", Seed: 3, Model: ModelH0, AnnualKWh: 4000, PVPeakW: 8000, Latitude: 52.5, Longitude: 13.4,
		Zone: berlin, BatteryWh: 8000, BatteryW: 4000, InverterModel: 103}
	plain := spec
	plain.BatteryWh, plain.BatteryW = 0, 0
	with, without := dayStates(spec, day), dayStates(plain, day)
	charged := false
	for _, s := range with {
		if s.BatteryWh < 0 || s.BatteryWh > spec.BatteryWh || s.BatteryW > spec.BatteryW || s.BatteryW < -spec.BatteryW {
			t.Fatalf("%s: battery %d Wh at %d W, capacity %d Wh, %d W", s.Time.Format("15:04"), s.BatteryWh, s.BatteryW, spec.BatteryWh, spec.BatteryW)
		}
		charged = charged || s.BatteryW > 0
	}
	last, lastPlain := with[len(with)-1], without[len(without)-1]
	if !charged || last.ExportWh >= lastPlain.ExportWh || last.ImportWh >= lastPlain.ImportWh {
		t.Errorf("with a battery: export %d, import %d Wh; without: %d, %d (charged: %v)",
			last.ExportWh, last.ImportWh, lastPlain.ExportWh, lastPlain.ImportWh, charged)
	}

	ev := HomeSpec{Seed: 11, EVChargeW: 11000, EVDailyWh: 10000}
	var drawn int64
	for tm := day; tm.Before(day.AddDate(0, 0, 7)); tm = tm.Add(time.Minute) {
		w := evW(ev, berlin, tm)
		if h := tm.In(berlin).Hour(); w != 0 && h >= 4 && h < 17 {
			t.Fatalf("EV charging at %s", tm.In(berlin).Format("Mon 15:04"))
		}
		drawn += w
	}
	if kwh := drawn / 60 / 1000; kwh < 20 || kwh > 110 {
		t.Errorf("EV took %d kWh in a week, want 20 to 110 (about 10 a day, four days in five)", kwh)
	}
}
