package auction

import (
	"bytes"
	"errors"
	"math"
	"math/big"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/shopspring/decimal"
)

// fuzzMarkets are the markets FuzzDecodeBook decodes and clears under.
var fuzzMarkets = func() []*Market {
	dec := decimal.RequireFromString
	ptr := func(d decimal.Decimal) *decimal.Decimal { return &d }
	var ms []*Market
	for _, edit := range []func(*Rules){
		func(*Rules) {}, // the defaults
		func(r *Rules) { r.Fee, r.K = dec("0.01"), dec("0.25") },
		func(r *Rules) {
			r.QtyDecimals, r.PriceDecimals, r.K = 0, 2, dec("1")
			r.PriceFloor, r.PriceCap = ptr(dec("-1")), ptr(dec("1"))
		},
		func(r *Rules) {
			r.QtyDecimals, r.PriceDecimals, r.K, r.Fee = 9, 9, dec("0"), dec("0.000000001")
			r.MaxOrderKWh, r.MaxAbsPrice = dec("1000"), dec("1000")
		},
	} {
		r := DefaultRules()
		edit(&r)
		m, err := NewMarket(r)
		if err != nil {
			panic(err)
		}
		ms = append(ms, m)
	}
	return ms
}()

func FuzzDecodeBook(f *testing.F) {
	// Every golden book, valid or not.
	books, err := filepath.Glob("testdata/*/book.json")
	if err != nil || len(books) == 0 {
		f.Fatalf("no golden books: %v", err)
	}
	for _, name := range books {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data, uint8(0))
		f.Add(data, uint8(1))
	}
	o := func(id, side, kwh, price string) string { return jsonOrder(id, side, kwh, price) }
	for _, s := range []string{
		jsonBook(o("a", "sell", `1`, `0.1`), o("b", "buy", `2`, `0.2`)),
		jsonBook(o("a", "sell", `"1"`, `"1e-1"`), o("b", "buy", `2e0`, `"0.20"`), o("c", "buy", `1.5E+0`, `-0.3`)),
		jsonBook(o("a", "sell", `1`, `1`), o("b", "sell", `1`, `1`), o("c", "buy", `1`, `1`)),
		jsonBook(o("a", "sell", `0.001`, `-1000000`), o("b", "buy", `1000000000`, `1000000`)),
		jsonBook(o("a", "sell", `7`, `0.1`), o("b", "sell", `3`, `0.1`), o("c", "buy", `5`, `0.3`), o("d", "buy", `5`, `0.3`)),
		jsonBook(o("a", "sell", `1`, `1`), o("a", "buy", `1`, `1`)),
		jsonBook(o("a", "sell", `0`, `1`)),
		jsonBook(o("a", "sell", `1`, `1e999`)),
		jsonBook(o("a", "sell", `"00012.50"`, `"-0"`)),
		`{"orders":[]}`,
		`{"orders":null}`,
		`{"orders":[{}]}`,
		`{"orders":[{"id":"a","participant":"p","side":"buy","kwh":true,"price":1}]}`,
		`{"orders":[{"id":"a","participant":"p","side":"buy","KWH":1,"price":1,"kwh":2}]}`,
		`{"orders":[]} {}`,
		`{"orders":[]`,
		`[1,2,3]`,
		`"orders"`,
		``,
		`{"interval":"a b","orders":[]}`,
		"\xff\xfe{",
		`{"orders":[{"id":"\u0061","participant":"\ud800","side":"s\u0065ll","kwh":"1","price":"1"}]}`,
	} {
		f.Add([]byte(s), uint8(0))
		f.Add([]byte(s), uint8(2))
		f.Add([]byte(s), uint8(3))
	}

	f.Fuzz(func(t *testing.T, data []byte, which uint8) {
		m := fuzzMarkets[int(which)%len(fuzzMarkets)]
		b, err := m.DecodeBook(bytes.NewReader(data))
		if err != nil {
			if !reflect.DeepEqual(b, Book{}) {
				t.Fatalf("error %v with a non-zero book %+v", err, b)
			}
			var oe *OrderError
			if errors.As(err, &oe) && (!errors.Is(err, ErrInvalidOrder) || oe.Index < 0) {
				t.Fatalf("malformed OrderError %+v", oe)
			}
			return
		}
		if b.Orders == nil {
			t.Fatal("nil orders accepted")
		}
		for i, o := range b.Orders {
			if err := m.CheckOrder(o); err != nil {
				t.Fatalf("order %d decoded but fails CheckOrder: %v", i, err)
			}
		}
		if err := m.CheckBook(b); err != nil {
			t.Fatalf("book decoded but fails CheckBook: %v", err)
		}

		// EncodeBook is read back as the same book, and is a fixed point.
		enc := m.EncodeBook(b)
		b2, err := m.DecodeBook(bytes.NewReader(enc))
		if err != nil {
			t.Fatalf("DecodeBook(EncodeBook(b)): %v\n%s", err, enc)
		}
		if !reflect.DeepEqual(b, b2) {
			t.Fatalf("round trip changed the book:\n%+v\n%+v", b, b2)
		}
		if enc2 := m.EncodeBook(b2); !bytes.Equal(enc, enc2) {
			t.Fatalf("EncodeBook not stable:\n%s%s", enc, enc2)
		}

		// Clear succeeds, obeys the rule, and ignores the order of the book.
		res, err := m.Clear(b)
		if err != nil {
			t.Fatalf("Clear of a decoded book: %v", err)
		}
		js, err := res.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		checkClearing(t, m, b, res)
		rev := Book{Interval: b.Interval, Orders: slices.Clone(b.Orders)}
		slices.Reverse(rev.Orders)
		res2, err := m.Clear(rev)
		if err != nil {
			t.Fatalf("Clear of the reversed book: %v", err)
		}
		js2, err := res2.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(js, js2) {
			t.Fatalf("reversing the orders changes the result:\n%s\n%s", js, js2)
		}
	})
}

// jsonDecimal is the number syntax parseFixed accepts: JSON's, except that
// leading zeros are allowed.
var jsonDecimal = regexp.MustCompile(`^-?[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?$`)

// exactValue returns the value of s, which matches jsonDecimal, with
// math/big. For exponents too large to expand it reports big=true and, if
// the digits are all zero, the value 0.
func exactValue(t *testing.T, s string) (v *big.Rat, huge bool) {
	mant, exp, hasExp := strings.Cut(strings.ToLower(s), "e")
	if hasExp {
		e, ok := new(big.Int).SetString(exp, 10)
		if !ok {
			t.Fatalf("exponent of %q", s)
		}
		if e.CmpAbs(big.NewInt(400)) > 0 {
			if strings.Trim(mant, "-0.") == "" {
				return new(big.Rat), true
			}
			return nil, true
		}
	}
	v, ok := new(big.Rat).SetString(s)
	if !ok {
		t.Fatalf("big.Rat cannot parse %q", s)
	}
	return v, false
}

func FuzzParseFixed(f *testing.F) {
	for _, s := range []string{
		"0", "-0", "1", "-1.5", "0.001", "1.500", "1.0001", "007", "-007.50",
		"1e3", "1E+3", "1e-3", "10e-4", "1e-4", "0e1000", "0e100000", "1e1000", "1e-1000",
		"9223372036854775807", "9223372036854775808", "-9223372036854775808",
		"18446744073709551616", "9999999999999999999", "1e19", "1e18",
		"9223372036.854775807", "1000000000.001", "0.0000000000000000001e19",
		"", "-", ".5", "5.", "+1", "1e", "1e+", "1.2.3", " 1", "0x10", "1_000", "NaN",
		strings.Repeat("9", 64), strings.Repeat("9", 65), "1." + strings.Repeat("0", 62),
	} {
		for _, scale := range []uint8{0, 3, 6, 9} {
			f.Add(s, scale, int64(math.MaxInt64))
			f.Add(s, scale, int64(1e12))
		}
	}
	f.Fuzz(func(t *testing.T, s string, scale uint8, limit int64) {
		sc := int(scale) % (maxDecimals + 1)
		if limit < 0 {
			limit = -(limit + 1)
		}
		v, err := parseFixed(s, sc, limit)
		if err == nil {
			if v > limit || v < -limit {
				t.Fatalf("parseFixed(%q, %d, %d) = %d, beyond the limit", s, sc, limit, v)
			}
			text := appendFixed(nil, v, sc)
			if back, err := parseFixed(string(text), sc, limit); err != nil || back != v {
				t.Fatalf("parseFixed(%q) = %d, formats as %q, which parses as %d, %v", s, v, text, back, err)
			}
		} else {
			if v != 0 {
				t.Fatalf("parseFixed(%q): error %v with value %d", s, err, v)
			}
			if !errors.Is(err, errSyntax) && !errors.Is(err, errPrecision) && !errors.Is(err, ErrOutOfRange) {
				t.Fatalf("parseFixed(%q): error %v wraps none of the sentinels", s, err)
			}
		}

		if len(s) > maxNumberLen {
			if !errors.Is(err, ErrOutOfRange) {
				t.Fatalf("parseFixed of %d characters: %d, %v; want ErrOutOfRange", len(s), v, err)
			}
			return
		}
		if !jsonDecimal.MatchString(s) {
			// Usually errSyntax, but an over-long exponent is reported as
			// out of range before the rest is read.
			if err == nil {
				t.Fatalf("parseFixed(%q) = %d, want an error", s, v)
			}
			return
		}

		// The exact value, by math/big, must be accepted exactly when it is a
		// multiple of 10^-scale within the limit.
		want, _ := exactValue(t, s)
		if want == nil { // nonzero with a huge exponent: too big or too fine
			if err == nil {
				t.Fatalf("parseFixed(%q) = %d, want an error", s, v)
			}
			return
		}
		scaled := new(big.Rat).Mul(want, new(big.Rat).SetInt(new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(sc)), nil)))
		if !scaled.IsInt() {
			if err == nil {
				t.Fatalf("parseFixed(%q, %d) = %d, but %s is not a multiple of 10^-%d", s, sc, v, want.RatString(), sc)
			}
			return
		}
		n := scaled.Num()
		if n.CmpAbs(big.NewInt(limit)) > 0 {
			if !errors.Is(err, ErrOutOfRange) {
				t.Fatalf("parseFixed(%q, %d, %d) = %d, %v; want ErrOutOfRange", s, sc, limit, v, err)
			}
			return
		}
		if err != nil || v != n.Int64() {
			t.Fatalf("parseFixed(%q, %d, %d) = %d, %v; want %s", s, sc, limit, v, err, n)
		}
	})
}
