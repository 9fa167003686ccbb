package sim

import (
	"time"
)

// evW is the power a home's EV charger draws at t: on most local days
// (four in five, seeded) the car comes home between 17:00 and 20:00 and
// charges at EVChargeW until it has taken half to one and a half times
// EVDailyWh, into the night if it must.
func evW(spec HomeSpec, loc *time.Location, t time.Time) int64 {
	if spec.EVChargeW <= 0 || spec.EVDailyWh <= 0 {
		return 0
	}
	local := t.In(loc)
	y, m, d := local.Date()
	today := time.Date(y, m, d, 0, 0, 0, 0, loc)
	for _, day := range []time.Time{today, today.AddDate(0, 0, -1)} {
		key := uint64(day.Unix())
		if mix(spec.Seed, key, 0xe7)%5 == 0 {
			continue // not driven that day
		}
		arrive := day.Add(17*time.Hour + time.Duration(unit(mix(spec.Seed, key, 0xe8))*3*float64(time.Hour))).Truncate(time.Minute)
		needWh := float64(spec.EVDailyWh) * (0.5 + unit(mix(spec.Seed, key, 0xe9)))
		charge := time.Duration(needWh / float64(spec.EVChargeW) * float64(time.Hour))
		if !t.Before(arrive) && t.Before(arrive.Add(charge)) {
			return spec.EVChargeW
		}
	}
	return 0
}

// battery returns the battery's power over the step starting at
// stepStart (> 0 charging, < 0 discharging) for a home whose load less its
// solar is netW: self-consumption, charging from surplus and discharging to
// cover a deficit, within BatteryW and the energy stored. It is decided
// once per step, from the state of charge at the step's start, so however
// a step is split by polls the energy is the same. The caller holds h.mu.
func (h *Home) battery(stepStart time.Time, netW int64) int64 {
	if h.spec.BatteryWh <= 0 || h.spec.BatteryW <= 0 {
		return 0
	}
	if stepStart.Equal(h.battAt) {
		return h.battW
	}
	stepMs := step.Milliseconds()
	capWms := h.spec.BatteryWh * wmsPerWh
	var b int64
	if netW < 0 {
		b = min(-netW, h.spec.BatteryW, (capWms-h.battWms)/stepMs)
	} else {
		b = -min(netW, h.spec.BatteryW, h.battWms/stepMs)
	}
	h.battAt, h.battW = stepStart, b
	return b
}
