package sim

import (
	"fmt"

	"github.com/shopspring/decimal"

	"github.com/p2pgrid/p2pgrid/meter"
	"github.com/p2pgrid/p2pgrid/meter/profile"
	"github.com/p2pgrid/p2pgrid/meter/sunspec"
)

// sunspecBase is where the simulated inverters put their SunSpec map.
const sunspecBase = 40000

// MeterProfile is the register map of the simulated grid meters.
const MeterProfile = "sdm630"

// meterDevice returns the grid meter of a home: the SDM630 map (from its
// device profile) showing the home's grid flow.
func meterDevice(p *profile.Profile) device {
	return func(s State) (*image, error) {
		ph := func(v [3]float64) []*float64 { return []*float64{meter.F(v[0]), meter.F(v[1]), meter.F(v[2])} }
		r := meter.Reading{
			PowerW:      meter.F(float64(s.GridW)),
			ImportWh:    meter.Wh(s.ImportWh),
			ExportWh:    meter.Wh(s.ExportWh),
			FrequencyHz: meter.F(s.FrequencyHz),
			VoltageV:    ph(s.VoltageV),
			CurrentA:    ph(s.CurrentA),
			PhasePowerW: ph(s.PhasePowerW),
		}
		regs, err := p.Image(profile.Values(r))
		if err != nil {
			return nil, err
		}
		im := &image{}
		for t, rt := range map[profile.RegType]regType{profile.Holding: holdingRegs, profile.Input: inputRegs} {
			for addr, v := range regs[t] {
				im.set(rt, addr, v)
			}
		}
		return im, nil
	}
}

// inverterDevice returns the solar inverter of a home: SunSpec common
// model 1 and inverter model 103 (or 113) at 40000.
func inverterDevice(h *Home) device {
	spec := h.Spec()
	serial := fmt.Sprintf("SIM-%s", spec.Name)
	return func(s State) (*image, error) {
		d := decimal.NewFromFloat
		vals := map[string]decimal.Decimal{
			"W":      decimal.NewFromInt(s.PVW),
			"WH":     decimal.NewFromInt(s.PVWh),
			"Hz":     d(s.FrequencyHz),
			"A":      d(s.PVCurrentA),
			"AphA":   d(s.PVCurrentA / 3),
			"AphB":   d(s.PVCurrentA / 3),
			"AphC":   d(s.PVCurrentA / 3),
			"PhVphA": d(s.VoltageV[0]),
			"PhVphB": d(s.VoltageV[1]),
			"PhVphC": d(s.VoltageV[2]),
		}
		for k, v := range vals { // keep the simulated values on the register grid
			vals[k] = v.Round(2)
		}
		regs, err := sunspec.Image(sunspecBase,
			sunspec.Common("p2pgrid", fmt.Sprintf("sim-inverter-%d", spec.InverterModel), serial),
			sunspec.Block{ID: spec.InverterModel, Values: vals})
		if err != nil {
			return nil, err
		}
		im := &image{}
		im.set(holdingRegs, sunspecBase, regs...)
		return im, nil
	}
}
