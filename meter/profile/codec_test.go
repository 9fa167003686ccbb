package profile

import (
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/shopspring/decimal"
	"pgregory.net/rapid"
)

// decodeCases are hand-computed: the value's bytes a b c d (a most
// significant) laid out in each word order.
var decodeCases = []struct {
	name  string
	enc   Encoding
	order WordOrder
	regs  []uint16
	want  string // "" for no value (ok false)
}{
	// int16 -123 = 0xFF85; uint16 65413 is the same bits.
	{"int16 ab", Int16, ABCD, []uint16{0xFF85}, "-123"},
	{"int16 ba", Int16, BADC, []uint16{0x85FF}, "-123"},
	{"int16 max", Int16, ABCD, []uint16{0x7FFF}, "32767"},
	{"int16 min", Int16, ABCD, []uint16{0x8000}, "-32768"},
	{"uint16 ab", Uint16, ABCD, []uint16{0xFF85}, "65413"},
	{"uint16 ba", Uint16, BADC, []uint16{0x85FF}, "65413"},
	{"uint16 zero", Uint16, ABCD, []uint16{0x0000}, "0"},
	// int32 -123456789 = 0xF8A432EB.
	{"int32 abcd", Int32, ABCD, []uint16{0xF8A4, 0x32EB}, "-123456789"},
	{"int32 cdab", Int32, CDAB, []uint16{0x32EB, 0xF8A4}, "-123456789"},
	{"int32 badc", Int32, BADC, []uint16{0xA4F8, 0xEB32}, "-123456789"},
	{"int32 dcba", Int32, DCBA, []uint16{0xEB32, 0xA4F8}, "-123456789"},
	{"int32 min", Int32, ABCD, []uint16{0x8000, 0x0000}, "-2147483648"},
	// uint32 3000000000 = 0xB2D05E00.
	{"uint32 abcd", Uint32, ABCD, []uint16{0xB2D0, 0x5E00}, "3000000000"},
	{"uint32 cdab", Uint32, CDAB, []uint16{0x5E00, 0xB2D0}, "3000000000"},
	{"uint32 badc", Uint32, BADC, []uint16{0xD0B2, 0x005E}, "3000000000"},
	{"uint32 dcba", Uint32, DCBA, []uint16{0x005E, 0xD0B2}, "3000000000"},
	{"uint32 max", Uint32, ABCD, []uint16{0xFFFF, 0xFFFF}, "4294967295"},
	// float32 -1540.5 = 0xC4C09000.
	{"float32 abcd", Float32, ABCD, []uint16{0xC4C0, 0x9000}, "-1540.5"},
	{"float32 cdab", Float32, CDAB, []uint16{0x9000, 0xC4C0}, "-1540.5"},
	{"float32 badc", Float32, BADC, []uint16{0xC0C4, 0x0090}, "-1540.5"},
	{"float32 dcba", Float32, DCBA, []uint16{0x0090, 0xC0C4}, "-1540.5"},
	// float32 230.1 is 0x4366199A = 230.100006103515625 exactly; its
	// shortest decimal is 230.1.
	{"float32 230.1", Float32, ABCD, []uint16{0x4366, 0x199A}, "230.1"},
	{"float32 0.1", Float32, ABCD, []uint16{0x3DCC, 0xCCCD}, "0.1"},
	{"float32 50.02", Float32, ABCD, []uint16{0x4248, 0x147B}, "50.02"},
	{"float32 2^24", Float32, ABCD, []uint16{0x4B80, 0x0000}, "16777216"},
	{"float32 max", Float32, ABCD, []uint16{0x7F7F, 0xFFFF}, "340282350000000000000000000000000000000"},
	{"float32 smallest subnormal", Float32, ABCD, []uint16{0x0000, 0x0001}, "0.000000000000000000000000000000000000000000001"},
	{"float32 +0", Float32, ABCD, []uint16{0x0000, 0x0000}, "0"},
	{"float32 -0", Float32, ABCD, []uint16{0x8000, 0x0000}, "0"},
	{"float32 NaN", Float32, ABCD, []uint16{0x7FC0, 0x0000}, ""},
	{"float32 NaN cdab", Float32, CDAB, []uint16{0x0000, 0x7FC0}, ""},
	{"float32 signalling NaN", Float32, ABCD, []uint16{0x7F80, 0x0001}, ""},
	{"float32 all ones NaN", Float32, ABCD, []uint16{0xFFFF, 0xFFFF}, ""},
	{"float32 +Inf", Float32, ABCD, []uint16{0x7F80, 0x0000}, ""},
	{"float32 -Inf", Float32, ABCD, []uint16{0xFF80, 0x0000}, ""},
	{"float32 -Inf dcba", Float32, DCBA, []uint16{0x0000, 0x80FF}, ""},
}

func TestDecode(t *testing.T) {
	covered := map[string]bool{}
	for _, c := range decodeCases {
		t.Run(c.name, func(t *testing.T) {
			v, ok, err := Decode(c.enc, c.order, c.regs)
			if err != nil {
				t.Fatal(err)
			}
			if c.want == "" {
				if ok {
					t.Fatalf("got %s, want no value", v)
				}
				return
			}
			if !ok || v.String() != c.want {
				t.Fatalf("got %s (ok %v), want %s", v, ok, c.want)
			}
			// Encode is the inverse, bit for bit (but -0, which a
			// decimal cannot hold).
			if c.name == "float32 -0" {
				return
			}
			regs, err := Encode(c.enc, c.order, v)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(regs, c.regs) {
				t.Fatalf("Encode(%s) = %04X, want %04X", v, regs, c.regs)
			}
		})
		covered[string(c.enc)+" "+string(c.order)] = true
	}
	for _, e := range Encodings() {
		for _, o := range WordOrders() {
			if e.Width() == 1 && (o == CDAB || o == DCBA) {
				continue
			}
			if !covered[string(e)+" "+string(o)] {
				t.Errorf("no decode case for %s %s", e, o)
			}
		}
	}
}

func TestDecodeErrors(t *testing.T) {
	for _, c := range []struct {
		enc   Encoding
		order WordOrder
		regs  []uint16
		want  string
	}{
		{Float32, ABCD, []uint16{0x4366}, "float32 takes 2 register(s), got 1"},
		{Float32, ABCD, []uint16{1, 2, 3}, "float32 takes 2 register(s), got 3"},
		{Int16, ABCD, nil, "int16 takes 1 register(s), got 0"},
		{Uint16, ABCD, []uint16{1, 2}, "uint16 takes 1 register(s), got 2"},
		{Int16, CDAB, []uint16{1}, "word order cdab needs two registers"},
		{Uint16, DCBA, []uint16{1}, "word order dcba needs two registers"},
		{Int32, "bacd", []uint16{1, 2}, `unknown word order "bacd"`},
		{Int16, "", []uint16{1}, `unknown word order ""`},
		{"float64", ABCD, []uint16{1, 2, 3, 4}, `unknown encoding "float64"`},
	} {
		_, ok, err := Decode(c.enc, c.order, c.regs)
		if err == nil || ok || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Decode(%s, %s, %04X) = ok %v, %v; want error %q", c.enc, c.order, c.regs, ok, err, c.want)
		}
	}
}

func TestEncodeErrors(t *testing.T) {
	d := decimal.RequireFromString
	for _, c := range []struct {
		enc  Encoding
		v    decimal.Decimal
		want string
	}{
		{Int16, d("32768"), "out of the int16 range -32768..32767"},
		{Int16, d("-32769"), "out of the int16 range"},
		{Uint16, d("-1"), "out of the uint16 range 0..65535"},
		{Uint16, d("65536"), "out of the uint16 range"},
		{Int32, d("2147483648"), "out of the int32 range"},
		{Uint32, d("4294967296"), "out of the uint32 range"},
		{Uint32, d("1e300"), "out of the uint32 range"},
		{Int16, d("1.5"), "1.5 is not an integer"},
		{Float32, d("3.5e38"), "out of the float32 range"},
		{Float32, d("-1e39"), "out of the float32 range"},
		{Float32, d("1e1000"), "out of the float32 range"},
		{"float64", d("1"), `unknown encoding "float64"`},
	} {
		if regs, err := Encode(c.enc, ABCD, c.v); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Encode(%s, %s) = %04X, %v; want error %q", c.enc, c.v, regs, err, c.want)
		}
	}
	if _, err := Encode(Int16, DCBA, decimal.NewFromInt(1)); err == nil {
		t.Error("Encode int16 in dcba: no error")
	}
	// The float32 edges: the largest float32 and values that round to
	// it, and values too small for a subnormal.
	for in, want := range map[string]uint32{
		"340282346638528859811704183484516925440": 0x7F7FFFFF,
		"3.4028235e38":          0x7F7FFFFF,
		"1e-46":                 0,
		"-1e-50":                0,
		"1.401298464324817e-45": 1,
		"230.1":                 0x4366199A,
		"-1540.5":               0xC4C09000,
	} {
		regs, err := Encode(Float32, ABCD, d(in))
		if err != nil {
			t.Errorf("Encode float32 %s: %v", in, err)
			continue
		}
		if got := uint32(regs[0])<<16 | uint32(regs[1]); got != want {
			t.Errorf("Encode float32 %s = 0x%08X, want 0x%08X", in, got, want)
		}
	}
}

// TestFloat32ShortestDecimal checks that decoding a float32 gives the
// digits of strconv.FormatFloat(f, 'g', -1, 32), the shortest decimal that
// reads back as f, for every float32 rapid draws.
func TestFloat32ShortestDecimal(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		b := rapid.Uint32().Draw(t, "bits")
		f := math.Float32frombits(b)
		v, ok, err := Decode(Float32, ABCD, []uint16{uint16(b >> 16), uint16(b)})
		if err != nil {
			t.Fatal(err)
		}
		if f != f || math.IsInf(float64(f), 0) {
			if ok {
				t.Fatalf("0x%08X: got %s for a NaN or Inf", b, v)
			}
			return
		}
		want := decimal.RequireFromString(strconv.FormatFloat(float64(f), 'g', -1, 32))
		if !ok || !v.Equal(want) {
			t.Fatalf("0x%08X: got %s, want %s", b, v, want)
		}
	})
}

// TestRoundTripProperty: every value Decode returns encodes back to
// registers that decode to it (and to the same bits, but for -0), and
// every integer in an encoding's range survives Encode then Decode.
func TestRoundTripProperty(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		enc := rapid.SampledFrom(Encodings()).Draw(t, "enc")
		orders := WordOrders()
		if enc.Width() == 1 {
			orders = []WordOrder{ABCD, BADC}
		}
		order := rapid.SampledFrom(orders).Draw(t, "order")
		regs := rapid.SliceOfN(rapid.Uint16(), enc.Width(), enc.Width()).Draw(t, "regs")

		v, ok, err := Decode(enc, order, regs)
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			back, err := Encode(enc, order, v)
			if err != nil {
				t.Fatalf("Encode(%s): %v", v, err)
			}
			v2, ok2, err := Decode(enc, order, back)
			if err != nil || !ok2 || !v2.Equal(v) {
				t.Fatalf("%04X -> %s -> %04X -> %s", regs, v, back, v2)
			}
			if !slices.Equal(back, regs) && !v.IsZero() {
				t.Fatalf("%04X -> %s -> %04X: bits changed", regs, v, back)
			}
		} else if enc != Float32 {
			t.Fatalf("%s %04X: no value", enc, regs)
		}

		if enc != Float32 {
			lo, hi := int64(0), int64(math.MaxUint16)
			switch enc {
			case Int16:
				lo, hi = math.MinInt16, math.MaxInt16
			case Int32:
				lo, hi = math.MinInt32, math.MaxInt32
			case Uint32:
				hi = math.MaxUint32
			}
			i := rapid.Int64Range(lo, hi).Draw(t, "int")
			regs, err := Encode(enc, order, decimal.NewFromInt(i))
			if err != nil {
				t.Fatal(err)
			}
			if v, ok, err := Decode(enc, order, regs); err != nil || !ok || v.IntPart() != i {
				t.Fatalf("%d -> %04X -> %s", i, regs, v)
			}
			if _, err := Encode(enc, order, decimal.NewFromInt(hi+1)); err == nil {
				t.Fatalf("%s took %d", enc, hi+1)
			}
		}
	})
}

// FuzzDecode decodes arbitrary registers in every encoding and word order
// (and unknown ones): it must never panic, must fail exactly when the
// register count or order does not fit, and whatever it decodes must
// encode back to the same value.
func FuzzDecode(f *testing.F) {
	for _, c := range decodeCases {
		var b []byte
		for _, r := range c.regs {
			b = append(b, byte(r>>8), byte(r))
		}
		f.Add(uint8(slices.Index(Encodings(), c.enc)), uint8(slices.Index(WordOrders(), c.order)), b)
	}
	f.Add(uint8(9), uint8(9), []byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, e, o uint8, data []byte) {
		encs, orders := Encodings(), WordOrders()
		enc, order := Encoding("bogus"), WordOrder("bogus")
		if int(e) < len(encs) {
			enc = encs[e]
		}
		if int(o) < len(orders) {
			order = orders[o]
		}
		regs := make([]uint16, len(data)/2)
		for i := range regs {
			regs[i] = uint16(data[2*i])<<8 | uint16(data[2*i+1])
		}
		v, ok, err := Decode(enc, order, regs)
		fits := enc.Width() > 0 && enc.Width() == len(regs) && order != "bogus" && (enc.Width() == 2 || order == ABCD || order == BADC)
		if (err == nil) != fits {
			t.Fatalf("Decode(%s, %s, %04X): err %v", enc, order, regs, err)
		}
		if err != nil || !ok {
			return
		}
		back, err := Encode(enc, order, v)
		if err != nil {
			t.Fatalf("Encode(%s): %v", v, err)
		}
		if v2, ok2, err := Decode(enc, order, back); err != nil || !ok2 || !v2.Equal(v) {
			t.Fatalf("%04X -> %s -> %04X -> %s", regs, v, back, v2)
		}
		if !slices.Equal(back, regs) && !v.IsZero() {
			t.Fatalf("%04X -> %s -> %04X: bits changed", regs, v, back)
		}
	})
}
