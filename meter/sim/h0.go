package sim

import (
	"math"
	"sync"
	"time"
)

// The household load of ModelH0 homes is shaped like the BDEW H0 standard
// load profile: a day shape for each season (winter 1 Nov to 20 Mar,
// summer 15 May to 14 Sep, transition the rest) and day type (workday,
// Saturday, Sunday), multiplied by BDEW's dynamisation polynomial of the
// day of the year, and scaled so that a year of it is the home's annual
// consumption. The hourly values below are our own approximation of the
// published shape (night trough, morning rise, a midday peak on weekends,
// the evening peak higher in winter), not the profile's table; minute to
// minute, appliances switching make it wobble around it.

// Seasons and day types of the H0 profile.
type season int

const (
	winter season = iota
	transition
	summer
)

type dayType int

const (
	workday dayType = iota
	saturday
	sunday
)

// h0Shape is the relative consumption in each hour of the day (arbitrary
// units; only the ratios matter) by season and day type. Transition days
// are the mean of winter and summer.
var h0Shape = [3][3][24]float64{
	winter: {
		workday:  {85, 70, 62, 58, 57, 60, 80, 115, 135, 140, 145, 155, 170, 160, 145, 140, 150, 185, 225, 240, 225, 195, 160, 115},
		saturday: {95, 78, 68, 62, 60, 60, 68, 90, 130, 165, 180, 190, 200, 185, 160, 150, 160, 190, 220, 230, 215, 190, 165, 125},
		sunday:   {100, 82, 70, 63, 60, 58, 62, 75, 110, 155, 185, 215, 230, 200, 165, 150, 155, 185, 215, 225, 210, 185, 155, 115},
	},
	summer: {
		workday:  {85, 70, 62, 58, 57, 60, 78, 105, 115, 118, 122, 130, 145, 138, 125, 118, 120, 135, 150, 155, 158, 165, 150, 110},
		saturday: {92, 76, 66, 60, 58, 58, 64, 82, 112, 140, 152, 160, 170, 158, 138, 128, 130, 142, 152, 155, 158, 162, 150, 118},
		sunday:   {98, 80, 68, 62, 58, 56, 58, 68, 95, 130, 158, 182, 195, 170, 142, 128, 128, 138, 150, 155, 158, 160, 145, 110},
	},
}

func init() {
	for d := range h0Shape[transition] {
		for h := range h0Shape[transition][d] {
			h0Shape[transition][d][h] = (h0Shape[winter][d][h] + h0Shape[summer][d][h]) / 2
		}
	}
}

// h0Season is the H0 season of a local date.
func h0Season(t time.Time) season {
	md := int(t.Month())*100 + t.Day()
	switch {
	case md >= 1101 || md <= 320:
		return winter
	case md >= 515 && md <= 914:
		return summer
	}
	return transition
}

func h0DayType(t time.Time) dayType {
	switch t.Weekday() {
	case time.Saturday:
		return saturday
	case time.Sunday:
		return sunday
	}
	return workday
}

// dynamisation is BDEW's factor for the H0 profile on day n of the year
// (1 on 1 January): about 1.24 in January, 0.79 in July.
func dynamisation(n int) float64 {
	t := float64(n)
	return -3.92e-10*t*t*t*t + 3.2e-7*t*t*t - 7.02e-5*t*t + 2.1e-3*t + 1.24
}

// h0Relative is the unscaled H0 power at local time t: the day's shape,
// interpolated linearly between the middles of the hours, times the
// dynamisation of the day.
func h0Relative(t time.Time) float64 {
	y, m, d := t.Date()
	midnight := time.Date(y, m, d, 0, 0, 0, 0, t.Location())
	hours := t.Sub(midnight).Hours() - 0.5
	at := func(day time.Time, h int) float64 {
		return h0Shape[h0Season(day)][h0DayType(day)][h] * dynamisation(day.YearDay())
	}
	h := int(math.Floor(hours))
	frac := hours - float64(h)
	var a, b float64
	switch {
	case h < 0: // before 00:30: from yesterday's last hour
		a, b = at(midnight.AddDate(0, 0, -1), 23), at(midnight, 0)
	case h >= 23: // after 23:30: towards tomorrow's first hour
		a, b = at(midnight, 23), at(midnight.AddDate(0, 0, 1), 0)
	default:
		a, b = at(midnight, h), at(midnight, h+1)
	}
	return a + (b-a)*frac
}

// h0Scale converts h0Relative to watts for 1 kWh of annual consumption:
// the inverse of the year's integral of h0Relative (in h, hourly values),
// over a year of 365 days. Computed once.
var h0Scale = sync.OnceValue(func() float64 {
	var sum float64 // relative · hours, hour by hour
	day := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	for range 365 * 24 * 4 {
		sum += h0Relative(day.Add(7*time.Minute+30*time.Second)) * 0.25
		day = day.Add(15 * time.Minute)
	}
	return 1000 / sum // W per (relative unit) per kWh/a
})

// h0LoadW is a ModelH0 home's household consumption at t, whole watts: the
// H0 shape for annualKWh in the home's local time, wobbling by appliances
// switching (a seeded factor per 5 minutes, 0.6 to 1.4, mean 1).
func h0LoadW(seed uint64, annualKWh int64, loc *time.Location, t time.Time) int64 {
	p := h0Relative(t.In(loc)) * h0Scale() * float64(annualKWh)
	p *= 0.6 + 0.8*unit(mix(seed, uint64(t.Unix()/300), 0x40ad))
	return int64(math.Round(p))
}

// H0Homes returns n ModelH0 homes at lat, lon in local time zone (nil:
// UTC), seeded from seed: annual consumption 2,000 to 5,000 kWh; every
// other home (the first, third, ...) with 4 to 9 kWp of solar and every
// sixth one with 1 to 2 kWp; a battery of 5 to 10 kWh in every fourth
// home with solar (the first, fifth, ...); an EV in every fifth home (the
// fourth, ninth, ...), at 3.7 or 11 kW.
func H0Homes(n int, seed uint64, lat, lon float64, zone *time.Location) []HomeSpec {
	homes := DefaultHomes(n, seed) // names, seeds, counters, inverter models
	for i := range homes {
		r := func(k uint64) float64 { return unit(mix(seed, uint64(i), 0x400+k)) }
		h := &homes[i]
		h.Model, h.Latitude, h.Longitude, h.Zone = ModelH0, lat, lon, zone
		h.BaseLoadW, h.PeakLoadW = 0, 0
		h.AnnualKWh = 2000 + int64(3000*r(1))
		h.PVPeakW = 0
		switch {
		case i%2 == 0:
			h.PVPeakW = 4000 + int64(5000*r(2))
		case i%6 == 1:
			h.PVPeakW = 1000 + int64(1000*r(3))
		}
		if i%4 == 0 {
			h.BatteryWh = 5000 + int64(5000*r(4))
			h.BatteryW = h.BatteryWh / 2
		}
		if i%5 == 3 {
			h.EVChargeW, h.EVDailyWh = 3700, 6000+int64(6000*r(5))
			if r(6) < 0.5 {
				h.EVChargeW = 11000
			}
		}
	}
	return homes
}
