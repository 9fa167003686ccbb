package forecast

import (
	"errors"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/p2pgrid/p2pgrid/meter"
)

var t0 = time.Date(2026, 6, 21, 12, 0, 0, 0, time.UTC)

func rules() Rules {
	return Rules{Interval: 15 * time.Minute, Poll: 10 * time.Second,
		SafetyFactor: decimal.RequireFromString("0.8"), MinTradeWh: 100}
}

func reading(at time.Duration, imp, exp int64) meter.Reading {
	return meter.Reading{Time: t0.Add(at), Kind: meter.KindMeter, ImportWh: meter.Wh(imp), ExportWh: meter.Wh(exp)}
}

func TestSurplusBecomesSell(t *testing.T) {
	f, _ := New(rules())
	// 5 minutes exporting 3 kW steadily: 250 Wh; import unchanged.
	for s := 0; s <= 300; s += 10 {
		f.Add(reading(time.Duration(s)*time.Second, 1000, 5000+int64(s)*3000/3600))
	}
	fc, err := f.At(t0.Add(300 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	// net 250 Wh over 300 s -> 750 Wh per 15 min -> x0.8 = 600 Wh.
	if !fc.Sell() || fc.Wh != 600 || fc.NetWh != 250 {
		t.Errorf("forecast %+v, want sell 600 Wh from 250 Wh net", fc)
	}
}

func TestDeficitBecomesBuyAndTruncates(t *testing.T) {
	f, _ := New(rules())
	f.Add(reading(0, 1000, 5000))
	f.Add(reading(7*time.Minute, 1000+333, 5000)) // 333 Wh imported in 7 min
	fc, err := f.At(t0.Add(7 * time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	// 333 * 15/7 = 713.571... * 0.8 = 570.857 -> 570 (towards zero), buy.
	if fc.Sell() || fc.Wh != -570 || fc.Qty() != 570 {
		t.Errorf("forecast %+v, want buy 570 Wh", fc)
	}
}

func TestNoForecastFromBadReadings(t *testing.T) {
	for _, tc := range []struct {
		name string
		add  []meter.Reading
		now  time.Duration
		want error
	}{
		{"none", nil, 0, ErrNoReadings},
		{"stale", []meter.Reading{reading(0, 0, 0), reading(6*time.Minute, 0, 500)}, 7 * time.Minute, meter.ErrStale},
		{"short", []meter.Reading{reading(0, 0, 0), reading(time.Minute, 0, 500)}, time.Minute, ErrShortHistory},
		{"reset", []meter.Reading{reading(0, 9000, 0), reading(6*time.Minute, 10, 500)}, 6 * time.Minute, ErrCounterReset},
		{"small", []meter.Reading{reading(0, 0, 0), reading(6*time.Minute, 0, 30)}, 6 * time.Minute, ErrBelowMinimum},
		{"balanced", []meter.Reading{reading(0, 0, 0), reading(6*time.Minute, 400, 400)}, 6 * time.Minute, ErrBelowMinimum},
		// A meter with counters only: a restart still waits for MinSpan.
		{"restart without power", []meter.Reading{reading(0, 0, 0), reading(2*time.Minute, 0, 500)}, 2 * time.Minute, ErrShortHistory},
		// A reset in the first minutes is refused like any other.
		{"reset first interval", []meter.Reading{powered(0, 9000, 0, 500), powered(2*time.Minute, 10, 0, 500)}, 2 * time.Minute, ErrCounterReset},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, _ := New(rules())
			for _, r := range tc.add {
				f.Add(r)
			}
			fc, err := f.At(t0.Add(tc.now))
			if !errors.Is(err, tc.want) {
				t.Errorf("forecast %+v, error %v; want %v", fc, err, tc.want)
			}
		})
	}
}

func TestWindowKeepsOneInterval(t *testing.T) {
	f, _ := New(rules())
	// An hour of importing, then 15 minutes of exporting: only the last
	// interval counts.
	f.Add(reading(0, 0, 0))
	f.Add(reading(time.Hour, 4000, 0))
	for m := 61; m <= 75; m++ {
		f.Add(reading(time.Duration(m)*time.Minute, 4000, int64(m-60)*100))
	}
	fc, err := f.At(t0.Add(75 * time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if !fc.Sell() || fc.NetWh != 1500 || fc.Window != 15*time.Minute {
		t.Errorf("forecast %+v, want a sell over the last 15 minutes (1500 Wh net)", fc)
	}
}

func TestCapAndIgnoredReadings(t *testing.T) {
	r := rules()
	r.MaxOrderWh = 200
	f, _ := New(r)
	f.Add(reading(0, 0, 0))
	f.Add(meter.Reading{Time: t0.Add(time.Minute), PowerW: meter.F(100)}) // no counters: ignored
	f.Add(reading(6*time.Minute, 0, 5000))
	f.Add(reading(5*time.Minute, 0, 0)) // out of order: dropped
	fc, err := f.At(t0.Add(6 * time.Minute))
	if err != nil || fc.Wh != 200 || fc.Readings != 2 {
		t.Errorf("forecast %+v, %v; want 200 Wh capped from 2 readings", fc, err)
	}
}

func TestBadRules(t *testing.T) {
	r := rules()
	r.SafetyFactor = decimal.RequireFromString("1.5")
	if _, err := New(r); err == nil {
		t.Error("safety factor 1.5 accepted")
	}
}

// History says how far the readings are from a forecast: the span held
// and the span needed, a third of the interval by default; At agrees.
func TestHistory(t *testing.T) {
	f, _ := New(rules())
	if have, need := f.History(); have != 0 || need != 5*time.Minute {
		t.Fatalf("no readings: History %v of %v, want 0 of 5m", have, need)
	}
	f.Add(reading(0, 1000, 5000))
	f.Add(reading(3*time.Minute, 1000, 5200))
	if have, _ := f.History(); have != 3*time.Minute {
		t.Errorf("readings over 3 minutes: History %v", have)
	}
	if _, err := f.At(t0.Add(3 * time.Minute)); !errors.Is(err, ErrShortHistory) {
		t.Errorf("At with 3 of 5 minutes: %v, want ErrShortHistory", err)
	}
	f.Add(reading(5*time.Minute, 1000, 5400))
	if have, need := f.History(); have < need {
		t.Errorf("readings over 5 minutes: History %v of %v", have, need)
	}
	if _, err := f.At(t0.Add(5 * time.Minute)); err != nil {
		t.Errorf("At with 5 of 5 minutes: %v", err)
	}
}

func powered(at time.Duration, imp, exp int64, w float64) meter.Reading {
	r := reading(at, imp, exp)
	r.PowerW = meter.F(w)
	return r
}

// A clear-sky ramp: the export rises from 1.2 kW to 2.1 kW over 5 minutes,
// read each minute. The counters say 130 Wh in 5 minutes; the last minute's
// power says 2010 W; the forecast is halfway between, times 0.8.
func TestRampFollowsTrend(t *testing.T) {
	f, _ := New(rules())
	exp := int64(0)
	for m := 0; m <= 5; m++ {
		w := 1200 + float64(m)*180 // export W: 1200, 1380, ... 2100
		f.Add(powered(time.Duration(m)*time.Minute, 0, exp, -w))
		exp += int64(w / 60) // 20, 23, 26, 29, 32 Wh a minute
	}
	fc, err := f.At(t0.Add(5 * time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	// Counters: 130 Wh in 5 min -> 390 Wh per interval. Power now (the
	// readings at 4 and 5 min): 2010 W, 502.5 -> 502 Wh per interval.
	// (390+502)/2 = 446; x0.8 = 356.8 -> 356. Persistence alone: 312.
	if fc.NetWh != 130 || fc.Wh != 356 {
		t.Errorf("forecast %+v, want 356 Wh from 130 Wh net", fc)
	}
}

// A cloud in the last minute: 3 kW of export falls to 0 (the home imports
// 600 W); persistence alone would offer 600 Wh, the trend halves the bet.
func TestCloudPullsTheOfferDown(t *testing.T) {
	f, _ := New(rules())
	f.Add(powered(0, 1000, 5000, -3000))
	f.Add(powered(4*time.Minute, 1000, 5200, -3000))
	f.Add(powered(5*time.Minute, 1010, 5200, 600))
	fc, err := f.At(t0.Add(5 * time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	// Counters: 190 Wh in 5 min -> 570 per interval. Power now (4..5 min):
	// mean of -3000 and 600 = -1200 W, an export of 300 Wh per interval.
	// (570+300)/2 = 435; x0.8 = 348.
	if fc.Wh != 348 {
		t.Errorf("forecast %+v, want 348 Wh", fc)
	}
}

// A gateway that has just started orders from its first minute of power
// readings, with the safety factor scaled by the minute's share of MinSpan.
func TestFirstIntervalOrdersFromPower(t *testing.T) {
	f, _ := New(rules())
	f.Add(powered(0, 0, 0, 4000))
	f.Add(powered(30*time.Second, 33, 0, 4000))
	if _, err := f.At(t0.Add(30 * time.Second)); !errors.Is(err, ErrShortHistory) {
		t.Fatalf("30 s of readings: %v, want ErrShortHistory", err)
	}
	if have, need := f.History(); have != 30*time.Second || need != time.Minute {
		t.Errorf("History %v of %v, want 30s of 1m", have, need)
	}
	f.Add(powered(time.Minute, 67, 0, 4600))
	fc, err := f.At(t0.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	// Mean 4200 W imported: 1050 Wh per interval; the factor 0.8 x 1/5 =
	// 0.16: 168 Wh, a buy.
	if fc.Wh != -168 {
		t.Errorf("forecast %+v, want a buy of 168 Wh", fc)
	}
}

// days feeds readings every 5 minutes for n days from midnight of t0's day,
// the home exporting 1000 Wh from 12:15 to 12:30 each day and nothing else;
// a reset day has its counters restart from 0 at 12:20.
func days(f *Forecaster, n int, resetDay int) (exp int64) {
	midnight := t0.Truncate(24 * time.Hour)
	for d := range n {
		for m := 0; m < 24*60; m += 5 {
			at := midnight.Add(time.Duration(d)*24*time.Hour + time.Duration(m)*time.Minute)
			if m > 12*60+15 && m <= 12*60+30 {
				exp += 1000 / 3
				if m == 12*60+30 {
					exp++ // 333 + 333 + 334
				}
			}
			if d == resetDay && m == 12*60+20 {
				exp = 0
			}
			f.Add(meter.Reading{Time: at, Kind: meter.KindMeter, ImportWh: meter.Wh(0), ExportWh: meter.Wh(exp)})
		}
	}
	return exp
}

// The same time of day over the days before: with a flat window (persistence
// says 0) the order for 12:15 rests on the 1000 Wh of the days before, weighed
// by HistoryWeight (0.25) x the days held over HistoryDays.
func TestTimeOfDayHistory(t *testing.T) {
	for _, c := range []struct {
		days, reset int
		want        int64
	}{
		{3, -1, 85},  // 1000 x 0.25 x 3/7 = 107.14 -> 107; x0.8 = 85.6 -> 85 (below the minimum)
		{7, -1, 200}, // (1-0.25) x 0 + 0.25 x 1000 = 250; x0.8 = 200
		{9, -1, 200}, // the ring keeps the last 7: the same
		{7, 3, 171},  // the reset day is not recorded: 6 days, 0.25 x 6/7 x 1000 = 214.28 -> 214; x0.8 = 171.2 -> 171
	} {
		f, _ := New(rules())
		exp := days(f, c.days, c.reset)
		next := t0.Truncate(24 * time.Hour).Add(time.Duration(c.days) * 24 * time.Hour)
		for m := 0; m <= 12*60+7; m++ { // the next day, flat, read each minute to 12:07
			f.Add(meter.Reading{Time: next.Add(time.Duration(m) * time.Minute), Kind: meter.KindMeter, ImportWh: meter.Wh(0), ExportWh: meter.Wh(exp)})
		}
		fc, _ := f.At(next.Add(12*time.Hour + 7*time.Minute))
		if fc.Wh != c.want || fc.NetWh != 0 {
			t.Errorf("%d days (reset on day %d): forecast %+v, want %d Wh from a flat window", c.days, c.reset, fc, c.want)
		}
		if len(f.days) != 96 {
			t.Errorf("%d slots, want 96", len(f.days))
		}
	}
}
