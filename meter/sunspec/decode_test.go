package sunspec

import (
	"errors"
	"math"
	"math/big"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/p2pgrid/p2pgrid/meter"
)

// modelData returns the data registers of block b as Image lays them out
// (after a common model).
func modelData(t testing.TB, b Block) []uint16 {
	t.Helper()
	regs := mustImage(t, 40000, Common("m", "x", "1"), b)
	l := regs[3] // common model's L
	start := 2 + 2 + int(l)
	if regs[start] != b.ID {
		t.Fatalf("image: model %d at %d, want %d", regs[start], start, b.ID)
	}
	return regs[start+2 : start+2+int(regs[start+1])]
}

func decode(t testing.TB, b Block) meter.Reading {
	t.Helper()
	r, err := decodeReading(b.ID, modelData(t, b), false)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func decodeErr(t testing.TB, b Block) error {
	t.Helper()
	_, err := decodeReading(b.ID, modelData(t, b), false)
	if err == nil {
		t.Fatal("no error")
	}
	return err
}

func eqF(p *float64, want float64) bool { return p != nil && *p == want }
func eqI(p *int64, want int64) bool     { return p != nil && *p == want }

// Every not-implemented value is missing, and the same point with a real
// value (even 0) is present, so each assertion can fail.
func TestNotImplementedIsMissing(t *testing.T) {
	tests := []struct {
		name    string
		id      uint16
		point   string
		raw     []uint16
		present []uint16 // the same point with a real value
		field   func(meter.Reading) any
	}{
		{"int16 W 0x8000", 103, "W", []uint16{0x8000}, []uint16{0}, func(r meter.Reading) any { return r.PowerW }},
		{"uint16 Hz 0xFFFF", 103, "Hz", []uint16{0xFFFF}, []uint16{5000}, func(r meter.Reading) any { return r.FrequencyHz }},
		{"uint16 PhVphA 0xFFFF", 101, "PhVphA", []uint16{0xFFFF}, []uint16{0}, func(r meter.Reading) any { return r.VoltageV }},
		{"uint16 AphA 0xFFFF", 101, "AphA", []uint16{0xFFFF}, []uint16{0xFFFE}, func(r meter.Reading) any { return r.CurrentA }},
		{"acc32 WH 0", 103, "WH", []uint16{0, 0}, []uint16{0, 1}, func(r meter.Reading) any { return r.ExportWh }},
		{"acc32 TotWhImp 0", 203, "TotWhImp", []uint16{0, 0}, []uint16{1, 0}, func(r meter.Reading) any { return r.ImportWh }},
		{"acc32 TotWhExp 0", 201, "TotWhExp", []uint16{0, 0}, []uint16{0xFFFF, 0xFFFF}, func(r meter.Reading) any { return r.ExportWh }},
		{"int16 meter W 0x8000", 203, "W", []uint16{0x8000}, []uint16{0x8001}, func(r meter.Reading) any { return r.PowerW }},
		{"int16 meter WphA 0x8000", 201, "WphA", []uint16{0x8000}, []uint16{0}, func(r meter.Reading) any { return r.PhasePowerW }},
		{"int16 meter Hz 0x8000", 204, "Hz", []uint16{0x8000}, []uint16{5000}, func(r meter.Reading) any { return r.FrequencyHz }},
		{"sunssf W_SF 0x8000", 103, "W_SF", []uint16{0x8000}, []uint16{0}, func(r meter.Reading) any { return r.PowerW }},
		{"sunssf WH_SF 0x8000", 103, "WH_SF", []uint16{0x8000}, []uint16{0}, func(r meter.Reading) any { return r.ExportWh }},
		{"sunssf TotWh_SF 0x8000", 203, "TotWh_SF", []uint16{0x8000}, []uint16{0}, func(r meter.Reading) any { return r.ImportWh }},
		{"sunssf Hz_SF 0x8000 (optional in meters)", 203, "Hz_SF", []uint16{0x8000}, []uint16{0xFFFE}, func(r meter.Reading) any { return r.FrequencyHz }},
		{"sunssf V_SF 0x8000", 203, "V_SF", []uint16{0x8000}, []uint16{0xFFFF}, func(r meter.Reading) any { return r.VoltageV }},
		{"float32 W NaN", 113, "W", []uint16{0x7FC0, 0}, []uint16{0, 0}, func(r meter.Reading) any { return r.PowerW }},
		{"float32 W NaN other payload", 113, "W", []uint16{0xFFFF, 0xFFFF}, []uint16{0x8000, 0}, func(r meter.Reading) any { return r.PowerW }},
		{"float32 WH NaN", 113, "WH", []uint16{0x7F80, 1}, []uint16{0x3F80, 0}, func(r meter.Reading) any { return r.ExportWh }},
		{"float32 TotWhImp NaN", 213, "TotWhImp", []uint16{0x7FC0, 0}, []uint16{0, 0}, func(r meter.Reading) any { return r.ImportWh }},
		{"float32 Hz NaN", 211, "Hz", []uint16{0x7FC0, 0}, []uint16{0x4248, 0}, func(r meter.Reading) any { return r.FrequencyHz }},
	}
	isNil := func(v any) bool {
		switch v := v.(type) {
		case *float64:
			return v == nil
		case *int64:
			return v == nil
		case []*float64:
			return v == nil
		}
		panic("field type")
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := Block{ID: tt.id, Raw: fullRaw(t, tt.id)}
			base.Raw[tt.point] = tt.present
			if r := decode(t, base); isNil(tt.field(r)) {
				t.Fatalf("with %s = %04x the field is missing", tt.point, tt.present)
			}
			base.Raw[tt.point] = tt.raw
			if r := decode(t, base); !isNil(tt.field(r)) {
				t.Fatalf("with %s = %04x the field is %v, want missing", tt.point, tt.raw, tt.field(r))
			}
		})
	}
}

// fullRaw gives every point a plain implemented value: scale factors 0,
// 16-bit values 1, 32-bit values 1 (float32 1.0).
func fullRaw(t testing.TB, id uint16) map[string][]uint16 {
	def, _ := Definition(id)
	raw := map[string][]uint16{}
	for _, p := range def.Points {
		switch {
		case p.Type == "sunssf":
			raw[p.Name] = []uint16{0}
		case p.Type == "float32":
			raw[p.Name] = []uint16{0x3F80, 0}
		case p.Size == 1 && isNumeric(p.Type):
			raw[p.Name] = []uint16{1}
		case p.Size == 2 && isNumeric(p.Type):
			raw[p.Name] = []uint16{0, 1}
		}
	}
	return raw
}

// The sentinels of types no readable model uses yet, straight through
// rawValue.
func TestRawValueSentinels(t *testing.T) {
	tests := []struct {
		typ     string
		regs    []uint16
		missing bool
		want    string
	}{
		{"int16", []uint16{0x8000}, true, ""},
		{"int16", []uint16{0x8001}, false, "-32767"},
		{"int16", []uint16{0xFFFF}, false, "-1"},
		{"uint16", []uint16{0xFFFF}, true, ""},
		{"uint16", []uint16{0x8000}, false, "32768"},
		{"enum16", []uint16{0xFFFF}, true, ""},
		{"bitfield16", []uint16{0xFFFF}, true, ""},
		{"acc16", []uint16{0}, true, ""},
		{"acc16", []uint16{0xFFFF}, false, "65535"},
		{"count", []uint16{0}, true, ""},
		{"int32", []uint16{0x8000, 0}, true, ""},
		{"int32", []uint16{0x8000, 1}, false, "-2147483647"},
		{"int32", []uint16{0, 0}, false, "0"},
		{"uint32", []uint16{0xFFFF, 0xFFFF}, true, ""},
		{"uint32", []uint16{0xFFFF, 0xFFFE}, false, "4294967294"},
		{"uint32", []uint16{0, 0}, false, "0"},
		{"acc32", []uint16{0, 0}, true, ""},
		{"acc32", []uint16{0x0001, 0x0000}, false, "65536"},
		{"enum32", []uint16{0xFFFF, 0xFFFF}, true, ""},
		{"bitfield32", []uint16{0xFFFF, 0xFFFF}, true, ""},
		{"float32", []uint16{0x7FC0, 0}, true, ""},
		{"float32", []uint16{0x4366, 0x199A}, false, "230.1"},
		{"float32", []uint16{0x8000, 0}, false, "0"},
		{"sunssf", []uint16{0x8000}, true, ""},
		{"sunssf", []uint16{0xFFFE}, false, "-2"},
	}
	for _, tt := range tests {
		v, ok, err := rawValue(Point{Name: "X", Type: tt.typ, Size: uint16(len(tt.regs))}, tt.regs, false)
		if err != nil {
			t.Errorf("%s %04x: %v", tt.typ, tt.regs, err)
			continue
		}
		if ok == tt.missing || (ok && v.String() != tt.want) {
			t.Errorf("%s %04x = %s ok=%v, want %q missing=%v", tt.typ, tt.regs, v, ok, tt.want, tt.missing)
		}
	}
	if _, _, err := rawValue(Point{Type: "float32"}, []uint16{0x7F80, 0}, true); !errors.Is(err, ErrBadData) {
		t.Errorf("float32 +Inf: %v, want ErrBadData", err)
	}
	if _, _, err := rawValue(Point{Type: "string"}, []uint16{0}, true); err == nil {
		t.Error("a string decoded as a number")
	}
}

func TestScaleFactors(t *testing.T) {
	tests := []struct {
		name   string
		w, sf  uint16
		want   float64
		absent bool
		bad    string
	}{
		{"zero", 1234, 0, 1234, false, ""},
		{"negative", 1234, 0xFFFF, 123.4, false, ""},
		{"negative two", 5001, 0xFFFE, 50.01, false, ""},
		{"most negative", 1234, uint16(0xFFF6), 1.234e-7, false, ""},
		{"positive", 1234, 2, 123400, false, ""},
		{"most positive", 3, 10, 3e10, false, ""},
		{"negative value", 0xFFFF, 1, -10, false, ""},
		{"not implemented", 1234, 0x8000, 0, true, ""},
		{"too large", 1234, 11, 0, false, "scale factor W_SF is 11, outside -10..10"},
		{"too small", 1234, 0xFFF5, 0, false, "scale factor W_SF is -11, outside -10..10"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := Block{ID: 103, Raw: map[string][]uint16{"W": {tt.w}, "W_SF": {tt.sf}}}
			if tt.bad != "" {
				err := decodeErr(t, b)
				if !errors.Is(err, ErrBadData) || !strings.Contains(err.Error(), tt.bad) || !strings.Contains(err.Error(), "model 103 point W") {
					t.Fatalf("error %q, want ErrBadData naming %q", err, tt.bad)
				}
				return
			}
			r := decode(t, b)
			switch {
			case tt.absent && r.PowerW != nil:
				t.Fatalf("power %v, want missing", *r.PowerW)
			case !tt.absent && !eqF(r.PowerW, tt.want):
				t.Fatalf("power %v, want %v", r.PowerW, tt.want)
			}
		})
	}
}

func TestEnergyIsExact(t *testing.T) {
	tests := []struct {
		name   string
		id     uint16
		wh, sf []uint16
		want   int64
		bad    string
	}{
		{"sf 0", 103, []uint16{0x00BC, 0x614E}, []uint16{0}, 12345678, ""},
		{"sf 3", 103, []uint16{0x0001, 0xE240}, []uint16{3}, 123456000, ""},
		{"sf -1 rounds half up", 103, []uint16{0x0001, 0xE23F}, []uint16{0xFFFF}, 12346, ""}, // 12345.5
		{"sf -1 rounds down", 103, []uint16{0x0001, 0xE23E}, []uint16{0xFFFF}, 12345, ""},    // 12345.4
		{"sf -3 max", 103, []uint16{0xFFFF, 0xFFFF}, []uint16{0xFFFD}, 4294967, ""},
		{"sf 9 max fits int64", 103, []uint16{0xFFFF, 0xFFFF}, []uint16{9}, 4294967295000000000, ""},
		{"sf 10 max overflows int64", 103, []uint16{0xFFFF, 0xFFFF}, []uint16{10}, 0, "does not fit int64"},
		{"sf -10 of 1 rounds to 0", 103, []uint16{0, 1}, []uint16{0xFFF6}, 0, ""},
		{"float", 113, []uint16{0x4B3C, 0x614E}, nil, 12345678, ""},                                  // 12345678.0
		{"float above 2^24 keeps its exact value", 113, []uint16{0x4CBC, 0x614F}, nil, 98765432, ""}, // shortest decimal: 98765430
		{"float half up", 113, []uint16{0x4640, 0xE600}, nil, 12346, ""},                             // 12345.5
		{"float below half", 113, []uint16{0x4640, 0xE599}, nil, 12345, ""},
		{"float negative", 113, []uint16{0xC640, 0xE600}, nil, 0, "energy counter is negative"},
		{"float huge", 113, []uint16{0x7F7F, 0xFFFF}, nil, 0, "does not fit int64"},
		{"float inf", 113, []uint16{0x7F80, 0}, nil, 0, "float32 is +Inf"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw := map[string][]uint16{"WH": tt.wh}
			if tt.sf != nil {
				raw["WH_SF"] = tt.sf
			}
			b := Block{ID: tt.id, Raw: raw}
			if tt.bad != "" {
				err := decodeErr(t, b)
				if !errors.Is(err, ErrBadData) || !strings.Contains(err.Error(), tt.bad) || !strings.Contains(err.Error(), "point WH") {
					t.Fatalf("error %q, want ErrBadData with %q", err, tt.bad)
				}
				return
			}
			if r := decode(t, b); !eqI(r.ExportWh, tt.want) {
				t.Fatalf("export_wh %v, want %d", r.ExportWh, tt.want)
			}
		})
	}
}

// A float32 value becomes the shortest decimal that reads back as it, not
// the float32's binary expansion.
func TestFloatValuesAreShortestDecimal(t *testing.T) {
	r := decode(t, Block{ID: 113, Values: values("PhVphA", "230.1", "Hz", "49.99", "W", "-12.3")})
	if !eqF(r.VoltageV[0], 230.1) || !eqF(r.FrequencyHz, 49.99) || !eqF(r.PowerW, -12.3) {
		t.Fatalf("got V %v Hz %v W %v", *r.VoltageV[0], *r.FrequencyHz, *r.PowerW)
	}
	if float64(float32(230.1)) == 230.1 {
		t.Fatal("test premise: float32(230.1) widened is not 230.1")
	}
}

func TestPhases(t *testing.T) {
	for _, tt := range []struct {
		id     uint16
		phases int
		power  bool
	}{{101, 1, false}, {102, 2, false}, {103, 3, false}, {111, 1, false}, {112, 2, false}, {113, 3, false},
		{201, 1, true}, {202, 2, true}, {203, 3, true}, {204, 3, true}, {211, 1, true}, {212, 2, true}, {213, 3, true}, {214, 3, true}} {
		r := decode(t, Block{ID: tt.id, Raw: fullRaw(t, tt.id)})
		if len(r.VoltageV) != tt.phases || len(r.CurrentA) != tt.phases {
			t.Errorf("model %d: %d voltages, %d currents, want %d", tt.id, len(r.VoltageV), len(r.CurrentA), tt.phases)
		}
		if tt.power != (len(r.PhasePowerW) == tt.phases) || (!tt.power && r.PhasePowerW != nil) {
			t.Errorf("model %d: %d phase powers", tt.id, len(r.PhasePowerW))
		}
		want := meter.KindInverter
		if tt.power {
			want = meter.KindMeter
		}
		if r.Kind != want {
			t.Errorf("model %d: kind %q, want %q", tt.id, r.Kind, want)
		}
	}
}

// A model shorter than its definition (the device's L) decodes what is
// there; points past the end are missing.
func TestShortModel(t *testing.T) {
	data := modelData(t, Block{ID: 103, Values: values("W", "1500", "Hz", "50", "WH", "99")})
	def, _ := Definition(103)
	wh, _ := def.Point("WH")
	r, err := decodeReading(103, data[:wh.Offset+1], false) // cuts WH in half
	if err != nil {
		t.Fatal(err)
	}
	if !eqF(r.PowerW, 1500) || !eqF(r.FrequencyHz, 50) || r.ExportWh != nil {
		t.Fatalf("power %v hz %v export %v", r.PowerW, r.FrequencyHz, r.ExportWh)
	}
	if r, err := decodeReading(103, nil, false); err != nil || r.PowerW != nil || r.Kind != meter.KindInverter {
		t.Fatalf("empty model: %+v %v", r, err)
	}
}

func TestNegatePower(t *testing.T) {
	data := modelData(t, Block{ID: 203, Values: values("W", "-1200", "WphA", "-400", "WphB", "0", "TotWhImp", "10", "TotWhExp", "20")})
	r, err := decodeReading(203, data, true)
	if err != nil {
		t.Fatal(err)
	}
	if !eqF(r.PowerW, 1200) || !eqF(r.PhasePowerW[0], 400) || !eqF(r.PhasePowerW[1], 0) || math.Signbit(*r.PhasePowerW[1]) || r.PhasePowerW[2] != nil {
		t.Fatalf("negated: W %v phases %v", *r.PowerW, r.PhasePowerW)
	}
	if !eqI(r.ImportWh, 10) || !eqI(r.ExportWh, 20) {
		t.Fatalf("energy must not be swapped: import %v export %v", *r.ImportWh, *r.ExportWh)
	}
}

func TestStrings(t *testing.T) {
	def, _ := Definition(1)
	enc := func(s string, n int) []uint16 {
		b := make([]byte, 2*n)
		copy(b, s)
		out := make([]uint16, n)
		for i := range out {
			out[i] = uint16(b[2*i])<<8 | uint16(b[2*i+1])
		}
		return out
	}
	for _, tt := range []struct{ in, want string }{
		{"Fronius", "Fronius"},
		{"  SMA   ", "SMA"},
		{"ABC\x00garbage", "ABC"},
		{"", ""},
		{"0123456789abcdef0123456789abcdef", "0123456789abcdef0123456789abcdef"},
		{"bad\xff", "bad\uFFFD"},
	} {
		data := make([]uint16, def.Length)
		mn, _ := def.Point("Mn")
		copy(data[mn.Offset:], enc(tt.in, int(mn.Size)))
		got, err := block{def: definitions[1], data: data}.text("Mn")
		if err != nil || got != tt.want {
			t.Errorf("text(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func TestDecodeUnsupported(t *testing.T) {
	if _, err := decodeReading(1, make([]uint16, 66), false); !errors.Is(err, ErrUnsupported) {
		t.Fatalf("model 1: %v", err)
	}
}

// exactFloat32 is exact: compared as rationals with the float32 widened
// (float32 to float64 is exact).
func TestExactFloat32(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	cases := []uint32{0, 0x80000000, 1, 0x80000001, 0x007FFFFF, 0x00800000, 0x3F800000, 0x4366199A, 0x4CBC614F, 0x7F7FFFFF, 0xFF7FFFFF}
	for range 20000 {
		cases = append(cases, rng.Uint32())
	}
	for _, bits := range cases {
		f := math.Float32frombits(bits)
		if f != f || math.IsInf(float64(f), 0) {
			continue
		}
		want := new(big.Rat).SetFloat64(float64(f))
		if got := exactFloat32(f).Rat(); got.Cmp(want) != 0 {
			t.Fatalf("exactFloat32(%#08x) = %s, want %s", bits, got.FloatString(10), want.FloatString(10))
		}
	}
}
