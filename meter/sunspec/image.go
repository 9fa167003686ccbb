package sunspec

import (
	"fmt"
	"math"
	"math/big"
	"slices"
	"strconv"

	"github.com/shopspring/decimal"
)

// Block is one model of a register image built by Image: its ID and the
// values of its points. A point named in none of the maps holds its type's
// not-implemented value, so a reader sees it as missing.
type Block struct {
	ID uint16
	// Values are numbers by point name, in the point's units (W, Wh, Hz, V,
	// A, ...), for numeric points. Image scales them: for an integer model
	// each value is divided by 10^sf of its scale-factor point and rounded
	// half away from zero; for a float32 model it is the nearest float32.
	//
	// A scale-factor point named here ("W_SF": -1) fixes that scale factor.
	// Otherwise Image picks it: the preferred exponent for the units (Hz
	// -2, V -1, A -2, Pct -1, C -1, anything else 0; so 103 gets W_SF=0,
	// WH_SF=0, Hz_SF=-2, V_SF=-1, A_SF=-2), raised one step at a time,
	// losing precision, until every value sharing it fits its type.
	Values map[string]decimal.Decimal
	// Strings are string points by name (Mn, Md, Opt, Vr, SN), at most two
	// bytes per register; shorter ones are padded with NULs.
	Strings map[string]string
	// Raw are register values written as they are, by point name, exactly
	// as many as the point's size: for not-implemented values, odd scale
	// factors or garbage on purpose.
	Raw map[string][]uint16
}

// Common returns the common model (1) block with the identity a reader
// reports as Manufacturer, ModelName and Serial.
func Common(manufacturer, model, serial string) Block {
	return Block{ID: 1, Strings: map[string]string{"Mn": manufacturer, "Md": model, "SN": serial}}
}

// Image lays out a SunSpec device's holding registers: the "SunS" marker
// at base, then each block as a model (ID, L, data; L from the model's
// definition), then the end marker (0xFFFF, 0). regs[i] is the register at
// base+i. The first block must be the common model 1; Discover and Read on
// the image give back the values, as scaled.
//
// For example, a three-phase inverter at 40000:
//
//	regs, err := sunspec.Image(40000,
//		sunspec.Common("p2pgrid", "sim-inverter", "SIM-0001"),
//		sunspec.Block{ID: 103, Values: map[string]decimal.Decimal{
//			"W":  decimal.NewFromInt(3200),      // W, producing
//			"WH": decimal.NewFromInt(12345678),  // Wh, lifetime
//			"Hz": decimal.RequireFromString("50.01"),
//			"PhVphA": decimal.RequireFromString("230.1"), // and B, C
//			"AphA":   decimal.RequireFromString("4.64"),  // and B, C
//		}},
//	)
//
// Image errors, naming the model and point, on an unknown model or point,
// a value that does not fit its type, or a value that would encode as its
// type's not-implemented value. Beware: an acc32 counter (WH, TotWhImp,
// TotWhExp) of 0 is SunSpec's "not implemented", so Image refuses it; a
// simulated counter must start above 0 Wh. For float32 models, counters
// above 2^24 Wh (16.7 MWh) lose whole-Wh resolution.
func Image(base uint16, blocks ...Block) ([]uint16, error) {
	if len(blocks) == 0 || blocks[0].ID != 1 {
		return nil, fmt.Errorf("sunspec image: the first block must be the common model 1")
	}
	regs := []uint16{marker[0], marker[1]}
	for i, b := range blocks {
		data, err := b.encode()
		if err != nil {
			return nil, fmt.Errorf("sunspec image: block %d: %w", i, err)
		}
		regs = append(regs, b.ID, uint16(len(data)))
		regs = append(regs, data...)
	}
	regs = append(regs, endID, 0)
	if int(base)+len(regs) > 0x10000 {
		return nil, fmt.Errorf("sunspec image: %d registers from %d run past register 65535", len(regs), base)
	}
	return regs, nil
}

// preferredSF is the scale factor Image tries first, by units.
var preferredSF = map[string]int{"Hz": -2, "V": -1, "A": -2, "Pct": -1, "C": -1}

func (b Block) encode() ([]uint16, error) {
	def := definitions[b.ID]
	if def == nil || b.ID == endID {
		return nil, fmt.Errorf("model %d: no definition", b.ID)
	}
	data := make([]uint16, def.Length)
	for _, p := range def.Points {
		copy(data[p.Offset:], notImplemented(p))
	}
	put := func(p Point, regs []uint16) { copy(data[p.Offset:p.Offset+p.Size], regs) }
	seen := map[string]string{}
	lookup := func(name, kind string) (Point, error) {
		p, ok := def.Point(name)
		if !ok {
			return p, fmt.Errorf("model %d has no point %q", b.ID, name)
		}
		if prev, dup := seen[name]; dup {
			return p, fmt.Errorf("model %d point %s: given in both %s and %s", b.ID, name, prev, kind)
		}
		seen[name] = kind
		return p, nil
	}

	for _, name := range sortedKeys(b.Raw) {
		p, err := lookup(name, "Raw")
		if err != nil {
			return nil, err
		}
		if len(b.Raw[name]) != int(p.Size) {
			return nil, fmt.Errorf("model %d point %s: %d raw registers, the point has %d", b.ID, name, len(b.Raw[name]), p.Size)
		}
		put(p, b.Raw[name])
	}
	for _, name := range sortedKeys(b.Strings) {
		p, err := lookup(name, "Strings")
		if err != nil {
			return nil, err
		}
		if p.Type != "string" {
			return nil, fmt.Errorf("model %d point %s: a %s, not a string", b.ID, name, p.Type)
		}
		s := b.Strings[name]
		if len(s) > 2*int(p.Size) {
			return nil, fmt.Errorf("model %d point %s: %q is longer than %d bytes", b.ID, name, s, 2*p.Size)
		}
		buf := make([]byte, 2*p.Size)
		copy(buf, s)
		for i := range int(p.Size) {
			data[int(p.Offset)+i] = uint16(buf[2*i])<<8 | uint16(buf[2*i+1])
		}
	}
	// Values: scale factors first (given, raw, or chosen), then the rest.
	scaled := map[string][]Point{} // scale-factor point -> points with values
	for _, name := range sortedKeys(b.Values) {
		p, err := lookup(name, "Values")
		if err != nil {
			return nil, err
		}
		if !isNumeric(p.Type) {
			return nil, fmt.Errorf("model %d point %s: a %s, not a number", b.ID, name, p.Type)
		}
		if p.SF != "" {
			scaled[p.SF] = append(scaled[p.SF], p)
		}
	}
	sfs := map[string]int{}
	for _, p := range def.Points {
		if p.Type != "sunssf" {
			continue
		}
		e, err := b.scaleFactor(p, scaled[p.Name])
		if err != nil {
			return nil, fmt.Errorf("model %d point %s: %w", b.ID, p.Name, err)
		}
		sfs[p.Name] = e
		if _, set := seen[p.Name]; !set || seen[p.Name] == "Values" {
			put(p, []uint16{uint16(int16(e))})
		}
	}
	for _, name := range sortedKeys(b.Values) {
		p, _ := def.Point(name)
		if p.Type == "sunssf" {
			continue
		}
		regs, err := encodeValue(p, b.Values[name], sfs[p.SF])
		if err != nil {
			return nil, fmt.Errorf("model %d point %s: %w", b.ID, name, err)
		}
		put(p, regs)
	}
	return data, nil
}

// scaleFactor returns the exponent of scale-factor point sf: as given in
// Values or Raw, or the first from the preferred one up at which every
// value of points (the points scaled by it) fits.
func (b Block) scaleFactor(sf Point, points []Point) (int, error) {
	if v, ok := b.Values[sf.Name]; ok {
		if !v.IsInteger() || v.LessThan(decimal.NewFromInt(minSF)) || v.GreaterThan(decimal.NewFromInt(maxSF)) {
			return 0, fmt.Errorf("scale factor %s is not a whole number in %d..%d", v, minSF, maxSF)
		}
		return int(v.IntPart()), b.check(points, int(v.IntPart()))
	}
	if raw, ok := b.Raw[sf.Name]; ok {
		e := int(int16(raw[0]))
		if len(points) > 0 && (e < minSF || e > maxSF) {
			return 0, fmt.Errorf("raw scale factor 0x%04x cannot scale values for %s", raw[0], points[0].Name)
		}
		return e, b.check(points, e)
	}
	if len(points) == 0 {
		return preferredSF[b.unitsScaledBy(sf.Name)], nil
	}
	var err error
	for e := preferredSF[points[0].Units]; e <= maxSF; e++ {
		if err = b.check(points, e); err == nil {
			return e, nil
		}
	}
	return 0, fmt.Errorf("no scale factor up to 10^%d fits: %w", maxSF, err)
}

// unitsScaledBy returns the units of the first point that sf scales.
func (b Block) unitsScaledBy(sf string) string {
	for _, p := range definitions[b.ID].Points {
		if p.SF == sf {
			return p.Units
		}
	}
	return ""
}

// check reports whether every value of points encodes at exponent e.
func (b Block) check(points []Point, e int) error {
	for _, p := range points {
		if _, err := encodeValue(p, b.Values[p.Name], e); err != nil {
			return fmt.Errorf("point %s: %w", p.Name, err)
		}
	}
	return nil
}

// encodeValue encodes v for point p; e is the exponent of p's scale factor
// (ignored for a point without one).
func encodeValue(p Point, v decimal.Decimal, e int) ([]uint16, error) {
	if p.Type == "float32" {
		f, err := strconv.ParseFloat(v.String(), 32)
		if err != nil || math.IsInf(f, 0) {
			return nil, fmt.Errorf("%s does not fit a float32", v)
		}
		u := math.Float32bits(float32(f))
		return []uint16{uint16(u >> 16), uint16(u)}, nil
	}
	if r, ok := intRanges[p.Type]; ok && r[0] >= 0 && v.IsNegative() {
		return nil, fmt.Errorf("%s is negative; a %s cannot hold it", v, p.Type)
	}
	q := v
	if p.SF != "" {
		q = v.Shift(int32(-e)).Round(0)
	} else if !v.IsInteger() {
		return nil, fmt.Errorf("%s is not a whole number (the point has no scale factor)", v)
	}
	return encodeInt(p.Type, q.BigInt(), v, e)
}

// intRanges are the values each integer type can carry; the type's
// not-implemented value is just outside (or, for accumulators, is 0).
var intRanges = map[string][2]int64{
	"int16": {-0x7FFF, 0x7FFF}, "sunssf": {minSF, maxSF},
	"uint16": {0, 0xFFFE}, "enum16": {0, 0xFFFE}, "bitfield16": {0, 0xFFFE},
	"acc16": {1, 0xFFFF}, "count": {1, 0xFFFF},
	"int32":  {-0x7FFFFFFF, 0x7FFFFFFF},
	"uint32": {0, 0xFFFFFFFE}, "enum32": {0, 0xFFFFFFFE}, "bitfield32": {0, 0xFFFFFFFE},
	"acc32": {1, 0xFFFFFFFF},
}

func encodeInt(typ string, q *big.Int, v decimal.Decimal, e int) ([]uint16, error) {
	r, ok := intRanges[typ]
	if !ok {
		return nil, fmt.Errorf("type %s is not an integer", typ)
	}
	if !q.IsInt64() || q.Int64() < r[0] || q.Int64() > r[1] {
		if q.Sign() == 0 && r[0] == 1 {
			return nil, fmt.Errorf("%s encodes as 0, which a %s reads as not implemented", v, typ)
		}
		return nil, fmt.Errorf("%s is %s at scale factor %d, outside the %s range %d..%d", v, q, e, typ, r[0], r[1])
	}
	n := q.Int64()
	if typeSizes[typ] == 2 {
		return []uint16{uint16(uint32(n) >> 16), uint16(n)}, nil
	}
	return []uint16{uint16(n)}, nil
}

// notImplemented returns the registers of p's not-implemented value.
func notImplemented(p Point) []uint16 {
	switch p.Type {
	case "int16", "sunssf", "pad":
		return []uint16{0x8000}
	case "uint16", "enum16", "bitfield16":
		return []uint16{0xFFFF}
	case "int32":
		return []uint16{0x8000, 0}
	case "uint32", "enum32", "bitfield32":
		return []uint16{0xFFFF, 0xFFFF}
	case "float32":
		return []uint16{0x7FC0, 0} // NaN
	}
	return make([]uint16, p.Size) // acc16, count, acc32, string: 0
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
