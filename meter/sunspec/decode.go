package sunspec

import (
	"errors"
	"fmt"
	"math"
	"math/big"
	"strings"
	"unicode/utf8"

	"github.com/shopspring/decimal"

	"github.com/p2pgrid/p2pgrid/meter"
)

// ErrBadData says a device's registers do not decode: a scale factor
// outside -10..10, an infinite float, an energy counter that is negative or
// does not fit int64, a response of the wrong length.
var ErrBadData = errors.New("bad SunSpec data")

// Scale factors outside this range are not SunSpec (and 10^32767 would
// make nonsense of any value).
const minSF, maxSF = -10, 10

// block is the data registers of one model as read from a device: data[0]
// is the register at Model.Address. It may be shorter than the definition
// when the device's L is; points past its end are missing.
type block struct {
	def  *ModelDef
	data []uint16
}

// regs returns the registers of point p, or nil if the block ends before
// them.
func (b block) regs(p Point) []uint16 {
	end := int(p.Offset) + int(p.Size)
	if end > len(b.data) {
		return nil
	}
	return b.data[p.Offset:end]
}

// point returns the definition of the point called name; a missing point
// is a programming error in this package's field maps, caught by tests.
func (b block) point(name string) (Point, error) {
	p, ok := b.def.Point(name)
	if !ok {
		return Point{}, fmt.Errorf("model %d has no point %s", b.def.ID, name)
	}
	return p, nil
}

// value returns the point called name with its scale factor applied, as a
// decimal; ok is false when the point, or its scale factor, is not
// implemented or lies past the end of the block. A float32 becomes its
// exact binary value if exact, else the shortest decimal that reads back
// as the same float32 (see rawValue).
func (b block) value(name string, exact bool) (v decimal.Decimal, ok bool, err error) {
	p, err := b.point(name)
	if err != nil {
		return v, false, err
	}
	v, ok, err = rawValue(p, b.regs(p), exact)
	if err != nil || !ok {
		return v, ok, pointErr(b.def.ID, p.Name, err)
	}
	if p.SF == "" {
		return v, true, nil
	}
	sfp, err := b.point(p.SF)
	if err != nil {
		return v, false, err
	}
	sf, ok, err := rawValue(sfp, b.regs(sfp), true)
	if err != nil || !ok {
		return v, false, pointErr(b.def.ID, p.Name, err)
	}
	e := sf.IntPart()
	if e < minSF || e > maxSF {
		return v, false, fmt.Errorf("model %d point %s: scale factor %s is %d, outside %d..%d: %w",
			b.def.ID, p.Name, p.SF, e, minSF, maxSF, ErrBadData)
	}
	return v.Shift(int32(e)), true, nil
}

func pointErr(model uint16, name string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("model %d point %s: %w", model, name, err)
}

// rawValue decodes one numeric point before scaling. regs nil means the
// point is past the end of the block: missing. The not-implemented value
// of each type (SunSpec's "unimplemented" sentinels) is missing too.
//
// A float32 is decoded exactly if exact (energy counters: 98765432 stays
// 98765432), and otherwise as the shortest decimal that reads back as the
// same float32 (instantaneous values: 230.1, not 230.10000610351562; but
// 98765432 would become 98765430).
func rawValue(p Point, regs []uint16, exact bool) (decimal.Decimal, bool, error) {
	if regs == nil {
		return decimal.Decimal{}, false, nil
	}
	var u32 uint32
	if len(regs) == 2 {
		u32 = uint32(regs[0])<<16 | uint32(regs[1]) // high word first
	}
	switch p.Type {
	case "int16", "sunssf":
		if regs[0] == 0x8000 {
			return decimal.Decimal{}, false, nil
		}
		return decimal.NewFromInt(int64(int16(regs[0]))), true, nil
	case "uint16", "enum16", "bitfield16":
		if regs[0] == 0xFFFF {
			return decimal.Decimal{}, false, nil
		}
		return decimal.NewFromInt(int64(regs[0])), true, nil
	case "acc16", "count":
		if regs[0] == 0 {
			return decimal.Decimal{}, false, nil
		}
		return decimal.NewFromInt(int64(regs[0])), true, nil
	case "int32":
		if u32 == 0x80000000 {
			return decimal.Decimal{}, false, nil
		}
		return decimal.NewFromInt(int64(int32(u32))), true, nil
	case "uint32", "enum32", "bitfield32":
		if u32 == 0xFFFFFFFF {
			return decimal.Decimal{}, false, nil
		}
		return decimal.NewFromInt(int64(u32)), true, nil
	case "acc32":
		// An accumulator that reads 0 is "not implemented" in SunSpec.
		if u32 == 0 {
			return decimal.Decimal{}, false, nil
		}
		return decimal.NewFromInt(int64(u32)), true, nil
	case "float32":
		f := math.Float32frombits(u32)
		switch {
		case f != f: // NaN, any payload
			return decimal.Decimal{}, false, nil
		case math.IsInf(float64(f), 0):
			return decimal.Decimal{}, false, fmt.Errorf("float32 is %v: %w", f, ErrBadData)
		}
		if exact {
			return exactFloat32(f), true, nil
		}
		return decimal.NewFromFloat32(f), true, nil
	}
	return decimal.Decimal{}, false, fmt.Errorf("type %s is not a number", p.Type)
}

// exactFloat32 returns the exact value of a finite float32, mant × 2^e, in
// decimal: no float64 arithmetic.
func exactFloat32(f float32) decimal.Decimal {
	bits := math.Float32bits(f)
	exp := int(bits>>23) & 0xFF
	mant := int64(bits & 0x7FFFFF)
	if exp == 0 {
		exp = 1 // subnormal
	} else {
		mant |= 1 << 23
	}
	if bits>>31 != 0 {
		mant = -mant
	}
	e := exp - 127 - 23
	m := big.NewInt(mant)
	if e >= 0 {
		return decimal.NewFromBigInt(m.Lsh(m, uint(e)), 0)
	}
	// mant / 2^-e = mant × 5^-e / 10^-e
	five := new(big.Int).Exp(big.NewInt(5), big.NewInt(int64(-e)), nil)
	return decimal.NewFromBigInt(m.Mul(m, five), int32(e))
}

// float returns an instantaneous value as float64, nil when missing.
func (b block) float(name string) (*float64, error) {
	v, ok, err := b.value(name, false)
	if err != nil || !ok {
		return nil, err
	}
	f, _ := v.Float64()
	if math.IsInf(f, 0) {
		return nil, fmt.Errorf("model %d point %s: %s does not fit a float64: %w", b.def.ID, name, v, ErrBadData)
	}
	return &f, nil
}

// wh returns an energy counter in whole Wh, nil when missing. It is exact:
// value × 10^sf in decimal (or a float32's exact value), rounded half away
// from zero only when that leaves a fraction (a negative scale factor, or
// a float32 below 2^23).
func (b block) wh(name string) (*int64, error) {
	v, ok, err := b.value(name, true)
	if err != nil || !ok {
		return nil, err
	}
	if v.IsNegative() {
		return nil, fmt.Errorf("model %d point %s: energy counter is negative (%s Wh): %w", b.def.ID, name, v, ErrBadData)
	}
	r := v.Round(0).BigInt()
	if !r.IsInt64() {
		return nil, fmt.Errorf("model %d point %s: energy counter %s Wh does not fit int64: %w", b.def.ID, name, v, ErrBadData)
	}
	n := r.Int64()
	return &n, nil
}

// phases returns one float per point name, L1 first; nil if every one is
// missing.
func (b block) phases(names []string) ([]*float64, error) {
	out := make([]*float64, len(names))
	seen := false
	for i, name := range names {
		f, err := b.float(name)
		if err != nil {
			return nil, err
		}
		out[i] = f
		seen = seen || f != nil
	}
	if !seen {
		return nil, nil
	}
	return out, nil
}

// text decodes a string point: two bytes per register, high byte first,
// cut at the first NUL and trimmed of spaces. All-NUL is "" (SunSpec's
// not-implemented string).
func (b block) text(name string) (string, error) {
	p, err := b.point(name)
	if err != nil {
		return "", err
	}
	regs := b.regs(p)
	buf := make([]byte, 0, 2*len(regs))
	for _, r := range regs {
		buf = append(buf, byte(r>>8), byte(r))
	}
	if i := strings.IndexByte(string(buf), 0); i >= 0 {
		buf = buf[:i]
	}
	s := strings.TrimSpace(string(buf))
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	return s, nil
}

// fieldMap says which points of a model become which fields of a
// meter.Reading. Per-phase lists are L1 first.
type fieldMap struct {
	kind                          meter.Kind
	power, importWh, exportWh, hz string
	voltage, current, phasePower  []string
}

// phaseNames returns prefix+"A", prefix+"B", ... for n phases.
func phaseNames(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = prefix + string(rune('A'+i))
	}
	return out
}

func inverterFields(phases int) fieldMap {
	return fieldMap{
		kind:     meter.KindInverter,
		power:    "W",  // AC power, positive when producing
		exportWh: "WH", // lifetime AC energy produced
		hz:       "Hz",
		voltage:  phaseNames("PhVph", phases),
		current:  phaseNames("Aph", phases),
	}
}

func meterFields(phases int) fieldMap {
	return fieldMap{
		kind:       meter.KindMeter,
		power:      "W",
		importWh:   "TotWhImp",
		exportWh:   "TotWhExp",
		hz:         "Hz",
		voltage:    phaseNames("PhVph", phases),
		current:    phaseNames("Aph", phases),
		phasePower: phaseNames("Wph", phases),
	}
}

// readable maps each model Read understands to its fields. Split-phase
// models (102, 112, 202, 212) have two phases; delta meters (204, 214)
// have no neutral, so their line-to-neutral voltages are usually missing.
var readable = map[uint16]fieldMap{
	101: inverterFields(1), 102: inverterFields(2), 103: inverterFields(3),
	111: inverterFields(1), 112: inverterFields(2), 113: inverterFields(3),
	201: meterFields(1), 202: meterFields(2), 203: meterFields(3), 204: meterFields(3),
	211: meterFields(1), 212: meterFields(2), 213: meterFields(3), 214: meterFields(3),
}

// decodeReading decodes the data registers of a readable model into the
// measurement fields of a reading (no time, device or identity). negate
// flips the sign of power_w and phase_power_w.
func decodeReading(id uint16, data []uint16, negate bool) (meter.Reading, error) {
	fm, ok := readable[id]
	def := definitions[id]
	if !ok || def == nil {
		return meter.Reading{}, fmt.Errorf("model %d: %w", id, ErrUnsupported)
	}
	b := block{def: def, data: data}
	r := meter.Reading{Kind: fm.kind}
	var err error
	if r.PowerW, err = b.float(fm.power); err != nil {
		return meter.Reading{}, err
	}
	if fm.importWh != "" {
		if r.ImportWh, err = b.wh(fm.importWh); err != nil {
			return meter.Reading{}, err
		}
	}
	if r.ExportWh, err = b.wh(fm.exportWh); err != nil {
		return meter.Reading{}, err
	}
	if r.FrequencyHz, err = b.float(fm.hz); err != nil {
		return meter.Reading{}, err
	}
	if r.VoltageV, err = b.phases(fm.voltage); err != nil {
		return meter.Reading{}, err
	}
	if r.CurrentA, err = b.phases(fm.current); err != nil {
		return meter.Reading{}, err
	}
	if r.PhasePowerW, err = b.phases(fm.phasePower); err != nil {
		return meter.Reading{}, err
	}
	if negate {
		neg(r.PowerW)
		for _, p := range r.PhasePowerW {
			neg(p)
		}
	}
	return r, nil
}

func neg(f *float64) {
	if f != nil && *f != 0 {
		*f = -*f
	}
}
