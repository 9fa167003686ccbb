package profile

import (
	"fmt"
	"math"

	"github.com/shopspring/decimal"

	"github.com/p2pgrid/p2pgrid/meter"
)

// nanBits is the float32 quiet NaN a device serves for "no value".
const nanBits = 0x7FC00000

// Image returns the registers a device described by p serves when it
// measures values (in the units of a Reading: W, Wh, Hz, V, A), by
// register type and address. Each value is divided by its register's
// scale and encoded: a float32 takes the nearest float32, an integer
// encoding the nearest integer (half away from zero), as the device would
// round. A point of p absent from values is served as missing (a float32
// NaN, or the register's missing pattern); a register that has no way to
// say missing needs a value. Registers of p not in the image (the gaps a
// merged read spans) read 0 on the devices we know.
//
// The simulator builds its register images this way; Values turns a
// meter.Reading into values.
func (p *Profile) Image(values map[Point]decimal.Decimal) (map[RegType]map[uint16]uint16, error) {
	for pt := range values {
		if _, ok := p.Register(pt); !ok {
			return nil, fmt.Errorf("profile %q: no register for %s", p.Name, pt)
		}
	}
	img := map[RegType]map[uint16]uint16{}
	for i, r := range p.Registers {
		regs, err := imageRegisters(r, values)
		if err != nil {
			return nil, fmt.Errorf("profile %q: register %d (%s): %w", p.Name, i+1, r.Point, err)
		}
		if img[r.Type] == nil {
			img[r.Type] = map[uint16]uint16{}
		}
		for j, w := range regs {
			img[r.Type][r.Address+uint16(j)] = w
		}
	}
	return img, nil
}

func imageRegisters(r Register, values map[Point]decimal.Decimal) ([]uint16, error) {
	v, ok := values[r.Point]
	if !ok {
		switch {
		case r.Missing != nil:
			return fromBits(r.Encoding, r.WordOrder, *r.Missing)
		case r.Encoding == Float32:
			return fromBits(r.Encoding, r.WordOrder, nanBits)
		}
		return nil, fmt.Errorf("no value, and a %s without a missing pattern cannot say it has none", r.Encoding)
	}
	raw := v.DivRound(r.Scale, 16)
	if r.Encoding != Float32 {
		raw = raw.Round(0)
	}
	regs, err := Encode(r.Encoding, r.WordOrder, raw)
	if err != nil {
		return nil, fmt.Errorf("value %s %s: %w", v, r.Unit, err)
	}
	return regs, nil
}

// Values returns the values of r by point, for Image: every non-nil field
// and phase. A float64 becomes its shortest decimal (230.1 stays 230.1);
// NaN and infinities are left out, as missing.
func Values(r meter.Reading) map[Point]decimal.Decimal {
	vals := map[Point]decimal.Decimal{}
	putF := func(pt Point, f *float64) {
		if f != nil && !math.IsNaN(*f) && !math.IsInf(*f, 0) {
			vals[pt] = decimal.NewFromFloat(*f)
		}
	}
	putF(Point{Quantity: PowerW}, r.PowerW)
	putF(Point{Quantity: FrequencyHz}, r.FrequencyHz)
	if r.ImportWh != nil {
		vals[Point{Quantity: ImportWh}] = decimal.NewFromInt(*r.ImportWh)
	}
	if r.ExportWh != nil {
		vals[Point{Quantity: ExportWh}] = decimal.NewFromInt(*r.ExportWh)
	}
	for _, pp := range []struct {
		q  Quantity
		vs []*float64
	}{{VoltageV, r.VoltageV}, {CurrentA, r.CurrentA}, {PhasePowerW, r.PhasePowerW}} {
		for i, f := range pp.vs {
			putF(Point{Quantity: pp.q, Phase: i + 1}, f)
		}
	}
	return vals
}
