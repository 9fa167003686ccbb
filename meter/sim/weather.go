package sim

import (
	"math"
	"time"
)

// The curves below are physical models, not money: float64 is fine here.
// Everything is a pure function of (seed, simulated time), so a home's
// power at a given moment is the same however often, or in whatever order,
// it is asked for.

// Daylight hours of the clear-sky curve, in simulated local time.
const (
	sunrise = 6*time.Hour + 30*time.Minute
	sunset  = 19*time.Hour + 30*time.Minute
)

// clearSky returns the fraction (0..1) of peak solar output at time t: a
// sine arch from sunrise to sunset, sharpened towards noon.
func clearSky(t time.Time) float64 {
	d := sinceMidnight(t)
	if d <= sunrise || d >= sunset {
		return 0
	}
	x := float64(d-sunrise) / float64(sunset-sunrise)
	return math.Pow(math.Sin(math.Pi*x), 1.3)
}

// cloudWindow is how long one cloud state lasts before the next one.
const cloudWindow = 10 * time.Minute

// cloudCover returns how much of the clear-sky output passing clouds take
// away at t (0 = clear, up to 0.85), interpolated linearly between windows
// so that output changes smoothly.
func cloudCover(seed uint64, t time.Time) float64 {
	w := t.UnixNano() / int64(cloudWindow)
	frac := float64(t.UnixNano()%int64(cloudWindow)) / float64(cloudWindow)
	a, b := windowCover(seed, w), windowCover(seed, w+1)
	return a + (b-a)*frac
}

func windowCover(seed uint64, w int64) float64 {
	h := mix(seed, uint64(w), 0xc10d)
	if h%100 >= 35 { // 35% of windows have a cloud
		return 0
	}
	return 0.2 + 0.65*unit(mix(h, 1, 2))
}

// solarW returns the inverter's AC output at t in whole watts.
func solarW(seed uint64, peakW int64, t time.Time) int64 {
	if peakW <= 0 {
		return 0
	}
	p := float64(peakW) * clearSky(t) * (1 - cloudCover(seed, t))
	return int64(math.Round(p))
}

// loadW returns the household's consumption at t in whole watts: a base
// load, a morning and an evening peak, and appliances (kettle, oven,
// washing machine) switched on in some 5-minute windows.
func loadW(seed uint64, baseW, peakW int64, t time.Time) int64 {
	d := sinceMidnight(t).Hours()
	shape := bump(d, 7.5, 1.0)*0.6 + bump(d, 19.0, 2.0)
	p := float64(baseW) + float64(peakW)*shape
	w := t.Unix() / 300
	if h := mix(seed, uint64(w), 0xa991); h%100 < 12 {
		p += []float64{2000, 1200, 800}[h%3]
	}
	p *= 0.9 + 0.2*unit(mix(seed, uint64(t.Unix()/60), 0x10ad)) // minute-to-minute wobble
	return int64(math.Round(p))
}

// bump is a smooth peak of height 1 at center hours, half-width w hours.
func bump(hours, center, w float64) float64 {
	x := (hours - center) / w
	return math.Exp(-x * x)
}

func sinceMidnight(t time.Time) time.Duration {
	y, m, d := t.Date()
	return t.Sub(time.Date(y, m, d, 0, 0, 0, 0, t.Location()))
}

// mix hashes its inputs (splitmix64 finaliser): a seeded, stateless source
// of randomness.
func mix(a, b, c uint64) uint64 {
	z := a*0x9e3779b97f4a7c15 ^ b*0xbf58476d1ce4e5b9 ^ c*0x94d049bb133111eb
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// unit maps a hash to [0, 1).
func unit(h uint64) float64 { return float64(h>>11) / (1 << 53) }
