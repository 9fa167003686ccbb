package profile

import (
	"fmt"
	"math"
	"math/bits"

	"github.com/shopspring/decimal"
)

// rawBits gathers the bits of a value from its registers in word order
// order: the 16 or 32 bits of the value, most significant first.
func rawBits(enc Encoding, order WordOrder, regs []uint16) (uint32, error) {
	w := enc.Width()
	if w == 0 {
		return 0, fmt.Errorf("unknown encoding %q", enc)
	}
	if len(regs) != w {
		return 0, fmt.Errorf("%s takes %d register(s), got %d", enc, w, len(regs))
	}
	if w == 1 {
		switch order {
		case ABCD:
			return uint32(regs[0]), nil
		case BADC:
			return uint32(bits.ReverseBytes16(regs[0])), nil
		case CDAB, DCBA:
			return 0, fmt.Errorf("word order %s needs two registers; a 16-bit %s is abcd or badc", order, enc)
		}
		return 0, fmt.Errorf("unknown word order %q", order)
	}
	var hi, lo uint16
	switch order {
	case ABCD:
		hi, lo = regs[0], regs[1]
	case CDAB:
		hi, lo = regs[1], regs[0]
	case BADC:
		hi, lo = bits.ReverseBytes16(regs[0]), bits.ReverseBytes16(regs[1])
	case DCBA:
		hi, lo = bits.ReverseBytes16(regs[1]), bits.ReverseBytes16(regs[0])
	default:
		return 0, fmt.Errorf("unknown word order %q", order)
	}
	return uint32(hi)<<16 | uint32(lo), nil
}

// fromBits is the inverse of rawBits: the registers holding v.
func fromBits(enc Encoding, order WordOrder, v uint32) ([]uint16, error) {
	switch enc.Width() {
	case 0:
		return nil, fmt.Errorf("unknown encoding %q", enc)
	case 1:
		switch order {
		case ABCD:
			return []uint16{uint16(v)}, nil
		case BADC:
			return []uint16{bits.ReverseBytes16(uint16(v))}, nil
		case CDAB, DCBA:
			return nil, fmt.Errorf("word order %s needs two registers; a 16-bit %s is abcd or badc", order, enc)
		}
		return nil, fmt.Errorf("unknown word order %q", order)
	}
	hi, lo := uint16(v>>16), uint16(v)
	switch order {
	case ABCD:
		return []uint16{hi, lo}, nil
	case CDAB:
		return []uint16{lo, hi}, nil
	case BADC:
		return []uint16{bits.ReverseBytes16(hi), bits.ReverseBytes16(lo)}, nil
	case DCBA:
		return []uint16{bits.ReverseBytes16(lo), bits.ReverseBytes16(hi)}, nil
	}
	return nil, fmt.Errorf("unknown word order %q", order)
}

// Decode returns the raw value (before scaling) that regs hold in
// encoding enc and word order order. ok is false for a float32 NaN or
// infinity, which devices use for "no value". A float32 becomes the
// shortest decimal that reads back as the same float32
// (strconv.FormatFloat(f, 'g', -1, 32)): 0x4366 0x199A is 230.1, not
// 230.1000061. The error is for an unknown encoding or word order, a
// 16-bit value in a word-swapped order, or a register count that does not
// fit the encoding.
func Decode(enc Encoding, order WordOrder, regs []uint16) (v decimal.Decimal, ok bool, err error) {
	b, err := rawBits(enc, order, regs)
	if err != nil {
		return decimal.Decimal{}, false, err
	}
	return decodeBits(enc, b)
}

func decodeBits(enc Encoding, b uint32) (decimal.Decimal, bool, error) {
	switch enc {
	case Int16:
		return decimal.NewFromInt(int64(int16(b))), true, nil
	case Uint16:
		return decimal.NewFromInt(int64(uint16(b))), true, nil
	case Int32:
		return decimal.NewFromInt(int64(int32(b))), true, nil
	case Uint32:
		return decimal.NewFromInt(int64(b)), true, nil
	case Float32:
		f := math.Float32frombits(b)
		if f != f || math.IsInf(float64(f), 0) {
			return decimal.Decimal{}, false, nil
		}
		// NewFromFloat32 is the shortest round-tripping decimal, the
		// same digits as strconv.FormatFloat(float64(f), 'g', -1, 32)
		// (TestFloat32ShortestDecimal checks it) without the string.
		return decimal.NewFromFloat32(f), true, nil
	}
	return decimal.Decimal{}, false, fmt.Errorf("unknown encoding %q", enc)
}

// Encoding ranges.
var (
	minInt16  = decimal.NewFromInt(math.MinInt16)
	maxInt16  = decimal.NewFromInt(math.MaxInt16)
	maxUint16 = decimal.NewFromInt(math.MaxUint16)
	minInt32  = decimal.NewFromInt(math.MinInt32)
	maxInt32  = decimal.NewFromInt(math.MaxInt32)
	maxUint32 = decimal.NewFromInt(math.MaxUint32)
)

// Encode returns the registers that hold v in encoding enc and word order
// order, the inverse of Decode. An integer encoding takes an integer in
// its range and nothing else; a float32 takes the float32 nearest to v
// (rounded once, from the exact decimal), so Decode(Encode(v)) is v
// whenever v came from Decode. A value beyond the float32 range is an
// error; a value too small for a float32 subnormal becomes 0.
func Encode(enc Encoding, order WordOrder, v decimal.Decimal) ([]uint16, error) {
	b, err := encodeBits(enc, v)
	if err != nil {
		return nil, err
	}
	return fromBits(enc, order, b)
}

func encodeBits(enc Encoding, v decimal.Decimal) (uint32, error) {
	var lo, hi decimal.Decimal
	switch enc {
	case Int16:
		lo, hi = minInt16, maxInt16
	case Uint16:
		lo, hi = decimal.Zero, maxUint16
	case Int32:
		lo, hi = minInt32, maxInt32
	case Uint32:
		lo, hi = decimal.Zero, maxUint32
	case Float32:
		return float32Bits(v)
	default:
		return 0, fmt.Errorf("unknown encoding %q", enc)
	}
	// Compare magnitudes through float64 first: Cmp and IsInteger would
	// materialise 10^exp for an absurd exponent.
	if f, _ := v.Float64(); math.Abs(f) > 1e10 {
		return 0, fmt.Errorf("%s is out of the %s range %s..%s", v, enc, lo, hi)
	}
	if !v.IsInteger() {
		return 0, fmt.Errorf("%s is not an integer, as %s needs", v, enc)
	}
	if v.LessThan(lo) || v.GreaterThan(hi) {
		return 0, fmt.Errorf("%s is out of the %s range %s..%s", v, enc, lo, hi)
	}
	i := v.IntPart()
	switch enc {
	case Int16:
		return uint32(uint16(int16(i))), nil
	case Int32:
		return uint32(int32(i)), nil
	}
	return uint32(i), nil
}

// float32Bits rounds v once, correctly, to the nearest float32.
func float32Bits(v decimal.Decimal) (uint32, error) {
	f64, _ := v.Float64() // safe for any exponent; used to bound v only
	switch a := math.Abs(f64); {
	case a == 0 || a < 1e-46: // under half the smallest subnormal (1.4e-45)
		return 0, nil
	case a > 4e38:
		return 0, fmt.Errorf("%s is out of the float32 range", v)
	}
	f, _ := v.Rat().Float32() // correctly rounded; ±Inf past MaxFloat32
	if math.IsInf(float64(f), 0) {
		return 0, fmt.Errorf("%s is out of the float32 range", v)
	}
	return math.Float32bits(f), nil
}
