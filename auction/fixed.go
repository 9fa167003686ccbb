package auction

import (
	"errors"
	"fmt"
	"math/big"
	"math/bits"
	"strconv"

	"github.com/shopspring/decimal"
)

// maxNumberLen bounds the text of one number. Anything longer is rejected
// before any arithmetic, so a number with thousands of digits costs nothing.
const maxNumberLen = 64

// maxDecimals bounds the market's resolutions so that 10^decimals and the
// limits scaled by it stay far inside int64.
const maxDecimals = 9

var pow10 = [...]uint64{
	1, 10, 100, 1000, 10000, 100000, 1000000, 10000000, 100000000,
	1000000000, 10000000000, 100000000000, 1000000000000, 10000000000000,
	100000000000000, 1000000000000000, 10000000000000000,
	100000000000000000, 1000000000000000000, 10000000000000000000,
}

// Errors that parseFixed wraps; callers branch on them with errors.Is.
var (
	errSyntax    = errors.New("not a decimal number")
	errPrecision = errors.New("too many decimals")
	// ErrOutOfRange is wrapped by every error for a number beyond the
	// market's limits (an order's kWh or price, or a rule).
	ErrOutOfRange = errors.New("out of range")
)

// parseFixed parses s (a string, or the bytes of one), a decimal number in JSON syntax (optional '-', digits,
// optional fraction, optional exponent), as an exact multiple of 10^-scale and
// returns that multiple. It fails when s is not such a number, when it has
// more decimals than scale allows (trailing zeros do not count), or when its
// magnitude exceeds limit (a count of 10^-scale).
func parseFixed[T ~string | ~[]byte](s T, scale int, limit int64) (int64, error) {
	if len(s) == 0 {
		return 0, fmt.Errorf("%w: empty", errSyntax)
	}
	if len(s) > maxNumberLen {
		return 0, fmt.Errorf("%w: %d characters (at most %d)", ErrOutOfRange, len(s), maxNumberLen)
	}
	var digits [maxNumberLen]byte // significant digits, leading zeros dropped
	nd, frac, i := 0, 0, 0
	neg := s[0] == '-'
	if neg {
		i++
	}
	intStart := i
	for ; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
		if nd > 0 || s[i] != '0' {
			digits[nd] = s[i]
			nd++
		}
	}
	if i == intStart {
		return 0, fmt.Errorf("%w: %q", errSyntax, s)
	}
	if i < len(s) && s[i] == '.' {
		i++
		fracStart := i
		for ; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
			frac++
			if nd > 0 || s[i] != '0' {
				digits[nd] = s[i]
				nd++
			}
		}
		if i == fracStart {
			return 0, fmt.Errorf("%w: %q", errSyntax, s)
		}
	}
	exp := 0
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		expNeg := false
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			expNeg = s[i] == '-'
			i++
		}
		expStart := i
		for ; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
			if exp <= 1000 { // beyond that only zero fits; stop growing
				exp = exp*10 + int(s[i]-'0')
			}
		}
		if i == expStart {
			return 0, fmt.Errorf("%w: %q", errSyntax, s)
		}
		if expNeg {
			exp = -exp
		}
	}
	if i != len(s) {
		return 0, fmt.Errorf("%w: %q", errSyntax, s)
	}
	if nd == 0 {
		return 0, nil
	}
	// value = digits * 10^(exp-frac); we want value * 10^scale.
	shift := exp - frac + scale
	if shift < 0 {
		for k := 0; k < -shift; k++ {
			if nd == 0 || digits[nd-1] != '0' {
				return 0, fmt.Errorf("%w: %q has more than %d", errPrecision, s, scale)
			}
			nd--
		}
		shift = 0
	}
	if nd+shift > 19 {
		return 0, fmt.Errorf("%w: %q", ErrOutOfRange, s)
	}
	var v uint64
	for _, d := range digits[:nd] {
		v = v*10 + uint64(d-'0')
	}
	v *= pow10[shift] // nd+shift <= 19 digits fits in uint64
	if v > uint64(limit) {
		return 0, fmt.Errorf("%w: %q exceeds the limit %s", ErrOutOfRange, s, formatFixed(limit, scale))
	}
	if neg {
		return -int64(v), nil
	}
	return int64(v), nil
}

// appendFixed appends v * 10^-scale in its shortest exact decimal form:
// no exponent, no trailing zeros after the point, "0" for zero.
func appendFixed(dst []byte, v int64, scale int) []byte {
	if scale == 0 {
		return strconv.AppendInt(dst, v, 10)
	}
	var u uint64
	if v < 0 {
		dst = append(dst, '-')
		u = uint64(-(v + 1)) + 1 // -MinInt64 without overflow
	} else {
		u = uint64(v)
	}
	p := pow10[scale]
	dst = strconv.AppendUint(dst, u/p, 10)
	f := u % p
	if f == 0 {
		return dst
	}
	var buf [20]byte
	n := scale
	for f%10 == 0 {
		f /= 10
		n--
	}
	for k := n - 1; k >= 0; k-- {
		buf[k] = byte('0' + f%10)
		f /= 10
	}
	dst = append(dst, '.')
	return append(dst, buf[:n]...)
}

func formatFixed(v int64, scale int) string {
	return string(appendFixed(nil, v, scale))
}

// fixedToDecimal converts a count of 10^-scale into a decimal.
func fixedToDecimal(v int64, scale int) decimal.Decimal {
	return decimal.New(v, -int32(scale))
}

// decimalToFixed converts d into a count of 10^-scale, failing when d has
// more decimals than scale or does not fit in int64.
func decimalToFixed(d decimal.Decimal, scale int) (int64, error) {
	s := d.Shift(int32(scale))
	if !s.IsInteger() {
		return 0, fmt.Errorf("%w: %s has more than %d", errPrecision, d, scale)
	}
	b := s.BigInt()
	if !b.IsInt64() {
		return 0, fmt.Errorf("%w: %s", ErrOutOfRange, d)
	}
	return b.Int64(), nil
}

// int128 is a signed 128-bit integer, enough for sums of int64 products
// (price ticks times quanta) over any book that fits in memory.
type int128 struct {
	hi int64
	lo uint64
}

// mul128 returns a*b exactly.
func mul128(a, b int64) int128 {
	neg := (a < 0) != (b < 0)
	hi, lo := bits.Mul64(absU64(a), absU64(b))
	r := int128{hi: int64(hi), lo: lo}
	if neg {
		r = r.neg()
	}
	return r
}

func absU64(a int64) uint64 {
	if a < 0 {
		return uint64(-(a + 1)) + 1
	}
	return uint64(a)
}

func (x int128) neg() int128 {
	lo, borrow := bits.Sub64(0, x.lo, 0)
	hi := -x.hi - int64(borrow)
	return int128{hi: hi, lo: lo}
}

func (x int128) add(y int128) int128 {
	lo, carry := bits.Add64(x.lo, y.lo, 0)
	return int128{hi: x.hi + y.hi + int64(carry), lo: lo}
}

func (x int128) sub(y int128) int128 { return x.add(y.neg()) }

// decimal returns x * 10^-scale.
func (x int128) decimal(scale int) decimal.Decimal {
	b := new(big.Int).SetInt64(x.hi)
	b.Lsh(b, 64)
	b.Add(b, new(big.Int).SetUint64(x.lo))
	return decimal.NewFromBigInt(b, -int32(scale))
}
