package profile

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/shopspring/decimal"

	"github.com/p2pgrid/p2pgrid/meter"
)

// Registers is what a Profile needs from a Modbus bus: reading holding and
// input registers of one unit (meter/bus.Bus satisfies it). A read returns
// exactly count registers or an error.
type Registers interface {
	ReadHolding(ctx context.Context, unit uint8, addr, count uint16) ([]uint16, error)
	ReadInput(ctx context.Context, unit uint8, addr, count uint16) ([]uint16, error)
}

// Option configures Device.
type Option func(*device)

// WithClock makes the device stamp readings with now() instead of
// time.Now(): a simulated clock, or a fixed one in tests.
func WithClock(now func() time.Time) Option {
	return func(d *device) { d.now = now }
}

// Device returns the device p describes at unit on r. Each Read polls
// p.Plan() in order and decodes one meter.Reading, stamped with the time
// the poll began (WithClock to choose the clock). A Read error names the
// profile, the unit and the request or register that failed; a value the
// device does not have (float32 NaN or infinity, or the register's
// missing pattern) is a nil field, never a zero. Device keeps its own copy
// of the plan: later changes to p do not reach it.
func (p *Profile) Device(r Registers, unit uint8, opts ...Option) meter.Device {
	reqs, in := p.plan()
	d := &device{
		name: p.Name, kind: p.Kind, unit: unit, bus: r, now: time.Now,
		reqs:   reqs,
		fields: make([]field, len(p.Registers)),
	}
	for _, o := range opts {
		o(d)
	}
	for i, reg := range p.Registers {
		f := field{
			reg: reg,
			req: in[i],
			off: int(reg.Address) - int(reqs[in[i]].Address),
			one: reg.Scale.Equal(decimal.NewFromInt(1)),
		}
		switch {
		case reg.Quantity.Energy():
		case reg.Quantity.PerPhase():
			d.nFloat++
			d.phases[phaseIndex(reg.Quantity)] = max(d.phases[phaseIndex(reg.Quantity)], reg.Phase)
		default:
			d.nFloat++
		}
		d.fields[i] = f
	}
	return d
}

// phaseIndex orders the per-phase quantities in device.phases.
func phaseIndex(q Quantity) int {
	switch q {
	case VoltageV:
		return 0
	case CurrentA:
		return 1
	}
	return 2 // PhasePowerW
}

type device struct {
	name string
	kind meter.Kind
	unit uint8
	bus  Registers
	now  func() time.Time

	reqs   []Request
	fields []field
	nFloat int
	phases [3]int // highest phase of voltage_v, current_a, phase_power_w
}

var _ meter.Device = (*device)(nil)

// field is one register of the device and where it is in the poll.
type field struct {
	reg Register
	req int  // index in device.reqs
	off int  // offset in that request's registers
	one bool // scale is exactly 1
}

// Read polls the device once.
func (d *device) Read(ctx context.Context) (meter.Reading, error) {
	t := d.now()
	var small [4][]uint16
	answers := small[:0]
	if len(d.reqs) > len(small) {
		answers = make([][]uint16, 0, len(d.reqs))
	}
	for _, q := range d.reqs {
		var regs []uint16
		var err error
		if q.Type == Holding {
			regs, err = d.bus.ReadHolding(ctx, d.unit, q.Address, q.Count)
		} else {
			regs, err = d.bus.ReadInput(ctx, d.unit, q.Address, q.Count)
		}
		if err != nil {
			return meter.Reading{}, fmt.Errorf("profile %q unit %d: read %s: %w", d.name, d.unit, q, err)
		}
		if len(regs) != int(q.Count) {
			return meter.Reading{}, fmt.Errorf("profile %q unit %d: read %s: got %d registers", d.name, d.unit, q, len(regs))
		}
		answers = append(answers, regs)
	}

	r := meter.Reading{Time: t, Device: d.name, Unit: d.unit, Kind: d.kind}
	floats := make([]float64, 0, d.nFloat) // one allocation behind every *float64
	var perPhase [3][]*float64
	if n := d.phases[0] + d.phases[1] + d.phases[2]; n > 0 {
		all := make([]*float64, n)
		for i, k := range d.phases {
			perPhase[i], all = all[:k:k], all[k:]
		}
	}
	r.VoltageV, r.CurrentA, r.PhasePowerW = perPhase[0], perPhase[1], perPhase[2]

	for i := range d.fields {
		f := &d.fields[i]
		regs := answers[f.req][f.off : f.off+f.reg.Width()]
		v, ok, err := decodeRegister(f, regs)
		if err != nil {
			return meter.Reading{}, fmt.Errorf("profile %q unit %d: register %d (%s) at %s 0x%04X: %w",
				d.name, d.unit, i+1, f.reg.Point, f.reg.Type, f.reg.Address, err)
		}
		if !ok {
			continue // missing: the field stays nil
		}
		if f.reg.Quantity.Energy() {
			wh, err := energyWh(v)
			if err != nil {
				return meter.Reading{}, fmt.Errorf("profile %q unit %d: register %d (%s) at %s 0x%04X: %w",
					d.name, d.unit, i+1, f.reg.Point, f.reg.Type, f.reg.Address, err)
			}
			if f.reg.Quantity == ImportWh {
				r.ImportWh = &wh
			} else {
				r.ExportWh = &wh
			}
			continue
		}
		fv, _ := v.Float64()
		floats = append(floats, fv)
		ptr := &floats[len(floats)-1]
		switch f.reg.Quantity {
		case PowerW:
			r.PowerW = ptr
		case FrequencyHz:
			r.FrequencyHz = ptr
		default:
			perPhase[phaseIndex(f.reg.Quantity)][f.reg.Phase-1] = ptr
		}
	}
	return r, nil
}

// decodeRegister returns the scaled value of f from its registers; ok is
// false for a missing value.
func decodeRegister(f *field, regs []uint16) (v decimal.Decimal, ok bool, err error) {
	b, err := rawBits(f.reg.Encoding, f.reg.WordOrder, regs)
	if err != nil {
		return v, false, err
	}
	if f.reg.Missing != nil && b == *f.reg.Missing {
		return v, false, nil
	}
	v, ok, err = decodeBits(f.reg.Encoding, b)
	if err != nil || !ok {
		return v, false, err
	}
	if !f.one {
		v = v.Mul(f.reg.Scale)
	}
	return v, true, nil
}

var (
	minInt64 = decimal.NewFromInt(math.MinInt64)
	maxInt64 = decimal.NewFromInt(math.MaxInt64)
)

// energyWh rounds a scaled energy value once, half away from zero, to
// whole Wh.
func energyWh(v decimal.Decimal) (int64, error) {
	if f, _ := v.Float64(); math.Abs(f) > 9.3e18 {
		return 0, fmt.Errorf("%s Wh does not fit an int64 counter", v)
	}
	w := v.Round(0)
	if w.LessThan(minInt64) || w.GreaterThan(maxInt64) {
		return 0, fmt.Errorf("%s Wh does not fit an int64 counter", v)
	}
	return w.IntPart(), nil
}
