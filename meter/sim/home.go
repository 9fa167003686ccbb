package sim

import (
	"fmt"
	"math"
	"sync"
	"time"
)

// HomeSpec describes one simulated home.
type HomeSpec struct {
	Name      string
	Seed      uint64
	PVPeakW   int64 // inverter peak AC output; 0 = no solar
	BaseLoadW int64 // always-on consumption
	PeakLoadW int64 // extra consumption at the evening peak
	// Initial energy counters, Wh: meters and inverters are not new.
	ImportWh, ExportWh, PVWh int64
	// InverterModel is the SunSpec inverter model: 103 (integer + scale
	// factors) or 113 (float32).
	InverterModel uint16

	// Model picks the curves: "" the demo's (a sine-arch sun, BaseLoadW
	// and PeakLoadW), ModelH0 the H0 load profile for AnnualKWh in local
	// time Zone and clear-sky solar for Latitude and Longitude (h0.go,
	// solar.go).
	Model               string
	AnnualKWh           int64
	Latitude, Longitude float64        // degrees, north and east positive
	Zone                *time.Location // nil: UTC
	// A battery of BatteryWh, charging and discharging at up to BatteryW
	// for self-consumption (0: none); it starts a fifth full.
	BatteryWh, BatteryW int64
	// An EV charger drawing EVChargeW in the evening, about EVDailyWh a
	// day (0: none).
	EVChargeW, EVDailyWh int64
}

// ModelH0 is HomeSpec.Model for the H0 load profile and clear-sky solar.
const ModelH0 = "h0"

// step is the granularity of simulated time: power is constant over one
// step, so counters are the exact integral of the power the registers show.
const step = time.Second

// Home is a simulated home's state. It is safe for concurrent use.
type Home struct {
	spec HomeSpec

	mu sync.Mutex
	at time.Time // simulated time the counters are integrated to
	// energy in W·ms since start; exact integrals of whole-watt power held
	// over whole milliseconds
	pvWms, importWms, exportWms int64
	// the battery: its charge in W·ms, and its power over the step
	// starting at battAt
	battWms int64
	battAt  time.Time
	battW   int64
}

// NewHome returns a home whose counters start at start (simulated time).
func NewHome(spec HomeSpec, start time.Time) *Home {
	return &Home{spec: spec, at: start, battWms: spec.BatteryWh * wmsPerWh / 5}
}

// Spec returns the home's description.
func (h *Home) Spec() HomeSpec { return h.spec }

// State is what a home's devices show at one moment.
type State struct {
	Time     time.Time
	PVW      int64 // inverter output, W (>= 0)
	LoadW    int64 // household consumption, W
	GridW    int64 // LoadW - PVW + BatteryW: > 0 importing, < 0 exporting
	BatteryW int64 // > 0 charging, < 0 discharging
	// BatteryWh is the energy stored in the battery.
	BatteryWh int64
	PVWh      int64 // inverter lifetime production counter
	ImportWh  int64 // grid meter import counter
	ExportWh  int64 // grid meter export counter

	VoltageV    [3]float64
	CurrentA    [3]float64
	PhasePowerW [3]float64
	FrequencyHz float64
	// Inverter AC side (single line to line-neutral of phase A for 103).
	PVCurrentA float64
}

// power returns PV and load in whole watts at simulated time t.
func (h *Home) power(t time.Time) (pv, load int64) {
	if s := h.spec; s.Model == ModelH0 {
		loc := s.Zone
		if loc == nil {
			loc = time.UTC
		}
		return pvW(s.Seed, s.PVPeakW, s.Latitude, s.Longitude, t),
			h0LoadW(s.Seed, s.AnnualKWh, loc, t) + evW(s, loc, t)
	}
	return solarW(h.spec.Seed, h.spec.PVPeakW, t),
		loadW(h.spec.Seed, h.spec.BaseLoadW, h.spec.PeakLoadW, t)
}

// At integrates the counters up to simulated time t (never backwards) and
// returns the state there.
func (h *Home) At(t time.Time) State {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.advance(t)
	return h.state()
}

// advance integrates power from h.at to t: whole steps, then the part of a
// step left over, each at the power of the step's start.
func (h *Home) advance(t time.Time) {
	for h.at.Before(t) {
		stepStart := h.at.Truncate(step)
		next := stepStart.Add(step)
		if next.After(t) {
			next = t
		}
		ms := next.Sub(h.at).Milliseconds()
		if ms == 0 { // less than a millisecond left: keep it for later
			return
		}
		end := h.at.Add(time.Duration(ms) * time.Millisecond)
		pv, load := h.power(stepStart)
		b := h.battery(stepStart, load-pv)
		h.pvWms += pv * ms
		h.battWms += b * ms
		if grid := load - pv + b; grid > 0 {
			h.importWms += grid * ms
		} else {
			h.exportWms += -grid * ms
		}
		h.at = end
	}
}

// wmsPerWh is W·ms in one Wh.
const wmsPerWh = 3_600_000

func (h *Home) state() State {
	t := h.at
	pv, load := h.power(t.Truncate(step))
	b := h.battery(t.Truncate(step), load-pv)
	grid := load - pv + b
	s := State{
		Time: t, PVW: pv, LoadW: load, GridW: grid, BatteryW: b, BatteryWh: h.battWms / wmsPerWh,
		PVWh:     h.spec.PVWh + h.pvWms/wmsPerWh,
		ImportWh: h.spec.ImportWh + h.importWms/wmsPerWh,
		ExportWh: h.spec.ExportWh + h.exportWms/wmsPerWh,
	}
	// Voltages wobble a little around 230 V, frequency around 50 Hz; grid
	// power is split over the phases 40/35/25.
	split := [3]float64{0.40, 0.35, 0.25}
	sec := uint64(t.Unix())
	for p := range 3 {
		v := 230 + 4*(unit(mix(h.spec.Seed, sec, uint64(p)))-0.5)
		s.VoltageV[p] = math.Round(v*10) / 10
		pp := float64(grid) * split[p]
		s.PhasePowerW[p] = math.Round(pp*10) / 10
		s.CurrentA[p] = math.Round(math.Abs(pp)/s.VoltageV[p]*100) / 100
	}
	s.FrequencyHz = math.Round((50+0.1*(unit(mix(h.spec.Seed, sec/10, 0xf))-0.5))*100) / 100
	s.PVCurrentA = math.Round(float64(pv)/s.VoltageV[0]*100) / 100
	return s
}

// DefaultHomes returns n homes, a mix of solar-rich homes that sell and
// consuming homes that buy, seeded from seed.
func DefaultHomes(n int, seed uint64) []HomeSpec {
	homes := make([]HomeSpec, n)
	for i := range homes {
		r := func(k uint64) float64 { return unit(mix(seed, uint64(i), k)) }
		h := HomeSpec{
			Name:          fmt.Sprintf("home%d", i+1),
			Seed:          mix(seed, uint64(i), 0x5eed),
			BaseLoadW:     200 + int64(300*r(1)),
			PeakLoadW:     1000 + int64(1500*r(2)),
			ImportWh:      1_000_000 + int64(4_000_000*r(3)),
			ExportWh:      100_000 + int64(2_000_000*r(4)),
			InverterModel: 103,
		}
		if i%2 == 0 { // solar-rich
			h.PVPeakW = 5000 + int64(3000*r(5))
		} else if i%3 == 1 { // some small panels
			h.PVPeakW = 800 + int64(700*r(6))
		}
		if i%4 == 2 {
			h.InverterModel = 113
		}
		h.PVWh = h.ExportWh + 2_000_000 + int64(3_000_000*r(7))
		homes[i] = h
	}
	return homes
}
