package sim

import (
	"math"
	"time"
)

// The solar output of ModelH0 homes: the sun's position for the home's
// latitude and longitude at the moment (declination and equation of time
// of the day of the year), the Haurwitz clear-sky model of global
// horizontal irradiance from it, and seeded clouds whose cloudiness is
// drawn per day, by season.

// sunCosZenith is the cosine of the sun's zenith angle at t (UTC) seen
// from lat, lon (degrees, north and east positive); <= 0 when the sun is
// down.
func sunCosZenith(lat, lon float64, t time.Time) float64 {
	t = t.UTC()
	n := float64(t.YearDay())
	g := 2 * math.Pi / 365 * (n - 1 + (float64(t.Hour())-12)/24)
	// Declination and equation of time (minutes), NOAA's Fourier series.
	decl := 0.006918 - 0.399912*math.Cos(g) + 0.070257*math.Sin(g) - 0.006758*math.Cos(2*g) +
		0.000907*math.Sin(2*g) - 0.002697*math.Cos(3*g) + 0.00148*math.Sin(3*g)
	eot := 229.18 * (0.000075 + 0.001868*math.Cos(g) - 0.032077*math.Sin(g) - 0.014615*math.Cos(2*g) - 0.040849*math.Sin(2*g))
	minutes := float64(t.Hour()*60+t.Minute()) + float64(t.Second())/60
	solar := minutes + eot + 4*lon // true solar time, minutes
	hourAngle := (solar/4 - 180) * math.Pi / 180
	phi := lat * math.Pi / 180
	return math.Sin(phi)*math.Sin(decl) + math.Cos(phi)*math.Cos(decl)*math.Cos(hourAngle)
}

// clearSkyGHI is the Haurwitz model's global horizontal irradiance, W/m²,
// for the cosine of the zenith angle.
func clearSkyGHI(cosZ float64) float64 {
	if cosZ <= 0.01 {
		return 0
	}
	return 1098 * cosZ * math.Exp(-0.057/cosZ)
}

// dayCloudiness is the share (0..1) of the day's cloud windows that have a
// cloud: seeded per UTC day, lower in summer (0 to 0.6) than in the
// transition seasons (0.1 to 0.8) and in winter (0.3 to 1).
func dayCloudiness(seed uint64, t time.Time) float64 {
	day := uint64(t.UTC().Unix() / 86400)
	u := unit(mix(seed, day, 0xc1a55))
	switch h0Season(t.UTC()) {
	case summer:
		return 0.6 * u
	case transition:
		return 0.1 + 0.7*u
	}
	return 0.3 + 0.7*u
}

// skyCover is how much of the clear-sky output clouds take away at t (0
// to 0.8), interpolated between cloud windows.
func skyCover(seed uint64, t time.Time) float64 {
	w := t.UnixNano() / int64(cloudWindow)
	frac := float64(t.UnixNano()%int64(cloudWindow)) / float64(cloudWindow)
	cover := func(w int64) float64 {
		at := time.Unix(0, w*int64(cloudWindow))
		h := mix(seed, uint64(w), 0x5c1d)
		if unit(h) >= dayCloudiness(seed, at) {
			return 0
		}
		return 0.3 + 0.5*unit(mix(h, 3, 4))
	}
	a, b := cover(w), cover(w+1)
	return a + (b-a)*frac
}

// pvW is a ModelH0 home's inverter output at t, whole watts: peakW at
// 1000 W/m² of clear-sky irradiance, less the clouds.
func pvW(seed uint64, peakW int64, lat, lon float64, t time.Time) int64 {
	if peakW <= 0 {
		return 0
	}
	ghi := clearSkyGHI(sunCosZenith(lat, lon, t))
	if ghi == 0 {
		return 0
	}
	return int64(math.Round(float64(peakW) * ghi / 1000 * (1 - skyCover(seed, t))))
}
