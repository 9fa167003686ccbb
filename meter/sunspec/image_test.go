package sunspec

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/p2pgrid/p2pgrid/meter"
)

func TestImageLayout(t *testing.T) {
	regs := inverter103(t, 40000)
	if len(regs) != 2+2+66+2+50+2 {
		t.Fatalf("%d registers", len(regs))
	}
	checks := []struct {
		at   int
		want uint16
		what string
	}{
		{0, 0x5375, "'Su'"}, {1, 0x6e53, "'nS'"},
		{2, 1, "common ID"}, {3, 66, "common L"},
		{4, 'A'<<8 | 'c', "Mn starts"},
		{70, 103, "103 ID"}, {71, 50, "103 L"},
		{122, 0xFFFF, "end ID"}, {123, 0, "end L"},
	}
	for _, c := range checks {
		if regs[c.at] != c.want {
			t.Errorf("%s: regs[%d] = %#04x, want %#04x", c.what, c.at, regs[c.at], c.want)
		}
	}
	// Scale factors as the simulator's author was promised, and a point
	// given no value holds its not-implemented value.
	def, _ := Definition(103)
	for name, want := range map[string]int16{"W_SF": 0, "WH_SF": 0, "Hz_SF": -2, "V_SF": -1, "A_SF": -2, "VA_SF": 0, "PF_SF": -1, "DCV_SF": -1} {
		p, _ := def.Point(name)
		if got := int16(regs[72+int(p.Offset)]); got != want {
			t.Errorf("%s = %d, want %d", name, got, want)
		}
	}
	for name, want := range map[string]uint16{"W": 3200, "Hz": 5001, "PhVphA": 2301, "AphA": 464, "VA": 0x8000, "DCA": 0xFFFF, "St": 0xFFFF} {
		p, _ := def.Point(name)
		if got := regs[72+int(p.Offset)]; got != want {
			t.Errorf("%s = %#04x, want %#04x", name, got, want)
		}
	}
}

// roundTrip lays the blocks out at base, discovers and reads them.
func roundTrip(t *testing.T, base uint16, b Block) (*Device, meter.Reading) {
	t.Helper()
	f := newFake(t).load(base, mustImage(t, base, Common("p2pgrid", fmt.Sprintf("sim model %d", b.ID), "SIM-0001"), b)...)
	d := discover(t, f, 2)
	r, err := d.Read(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return d, r
}

func jsonOf(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestImageRoundTrip(t *testing.T) {
	inv := values("W", "4321", "WH", "98765432", "Hz", "49.98",
		"PhVphA", "230.1", "PhVphB", "231.5", "PhVphC", "228.7",
		"AphA", "6.25", "AphB", "6.3", "AphC", "6.21")
	mtr := values("W", "-2500", "TotWhImp", "7654321", "TotWhExp", "1234567", "Hz", "50.02",
		"PhVphA", "229.4", "PhVphB", "230", "PhVphC", "231.1",
		"AphA", "-3.6", "AphB", "-3.75", "AphC", "-3.52",
		"WphA", "-800", "WphB", "-850", "WphC", "-850")
	tests := []struct {
		id   uint16
		vals map[string]string
		want string
	}{
		{103, nil, `{"time":"2025-06-01T12:00:00Z","device":"sunspec","unit":2,"kind":"inverter","manufacturer":"p2pgrid","model":"sim model 103","serial":"SIM-0001",` +
			`"power_w":4321,"export_wh":98765432,"frequency_hz":49.98,"voltage_v":[230.1,231.5,228.7],"current_a":[6.25,6.3,6.21]}`},
		{113, nil, `{"time":"2025-06-01T12:00:00Z","device":"sunspec","unit":2,"kind":"inverter","manufacturer":"p2pgrid","model":"sim model 113","serial":"SIM-0001",` +
			// float32 holds 98765432 as 98765432 (it is a multiple of 8)
			`"power_w":4321,"export_wh":98765432,"frequency_hz":49.98,"voltage_v":[230.1,231.5,228.7],"current_a":[6.25,6.3,6.21]}`},
		{203, nil, `{"time":"2025-06-01T12:00:00Z","device":"sunspec","unit":2,"kind":"meter","manufacturer":"p2pgrid","model":"sim model 203","serial":"SIM-0001",` +
			`"power_w":-2500,"import_wh":7654321,"export_wh":1234567,"frequency_hz":50.02,"voltage_v":[229.4,230,231.1],"current_a":[-3.6,-3.75,-3.52],"phase_power_w":[-800,-850,-850]}`},
		{213, nil, `{"time":"2025-06-01T12:00:00Z","device":"sunspec","unit":2,"kind":"meter","manufacturer":"p2pgrid","model":"sim model 213","serial":"SIM-0001",` +
			// float32 cannot hold 7654321 + fractions, but whole Wh below 2^24 it can
			`"power_w":-2500,"import_wh":7654321,"export_wh":1234567,"frequency_hz":50.02,"voltage_v":[229.4,230,231.1],"current_a":[-3.6,-3.75,-3.52],"phase_power_w":[-800,-850,-850]}`},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.id), func(t *testing.T) {
			v := inv
			if tt.id >= 200 {
				v = mtr
			}
			for _, base := range bases {
				d, r := roundTrip(t, base, Block{ID: tt.id, Values: v})
				if d.Source.ID != tt.id || d.Base != base {
					t.Fatalf("source %v base %d", d.Source, d.Base)
				}
				if got := jsonOf(t, r); got != tt.want {
					t.Fatalf("base %d:\n got %s\nwant %s", base, got, tt.want)
				}
			}
		})
	}
}

// Every readable model round-trips its readable points.
func TestImageRoundTripAllModels(t *testing.T) {
	for id, fm := range readable {
		vals := values("W", "-1500", "Hz", "60.01")
		for i, n := range fm.voltage {
			vals[n] = dec([]string{"120.1", "120.2", "120.3"}[i])
			vals[fm.current[i]] = dec([]string{"10.01", "10.02", "10.03"}[i])
		}
		for i, n := range fm.phasePower {
			vals[n] = dec([]string{"-500", "-400", "-600"}[i])
		}
		vals[fm.exportWh] = dec("424242")
		if fm.importWh != "" {
			vals[fm.importWh] = dec("131313")
		}
		_, r := roundTrip(t, 40000, Block{ID: id, Values: vals})
		ok := eqF(r.PowerW, -1500) && eqF(r.FrequencyHz, 60.01) && eqI(r.ExportWh, 424242) &&
			len(r.VoltageV) == len(fm.voltage) && eqF(r.VoltageV[len(fm.voltage)-1], []float64{120.1, 120.2, 120.3}[len(fm.voltage)-1]) &&
			eqF(r.CurrentA[0], 10.01) && len(r.PhasePowerW) == len(fm.phasePower) &&
			(fm.importWh == "") == (r.ImportWh == nil) && (r.ImportWh == nil || *r.ImportWh == 131313)
		if !ok {
			t.Errorf("model %d: %s", id, jsonOf(t, r))
		}
	}
}

func TestImageScaleFactorChoice(t *testing.T) {
	tests := []struct {
		name  string
		vals  map[string]string
		sf    string
		want  int16
		power float64
	}{
		{"fits at the preferred 0", map[string]string{"W": "32767"}, "W_SF", 0, 32767},
		{"too big for int16 at 0", map[string]string{"W": "40000"}, "W_SF", 1, 40000},
		{"rounds at the raised factor", map[string]string{"W": "123456"}, "W_SF", 1, 123460},
		{"negative too", map[string]string{"W": "-40004"}, "W_SF", 1, -40000},
		{"given", map[string]string{"W": "1234.5", "W_SF": "-1"}, "W_SF", -1, 1234.5},
		{"preferred rounds half away from zero", map[string]string{"W": "-2.5"}, "W_SF", 0, -3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vals := map[string]string{}
			for k, v := range tt.vals {
				vals[k] = v
			}
			b := Block{ID: 103, Values: values(flatten(vals)...)}
			data := modelData(t, b)
			def, _ := Definition(103)
			p, _ := def.Point(tt.sf)
			if got := int16(data[p.Offset]); got != tt.want {
				t.Fatalf("%s = %d, want %d", tt.sf, got, tt.want)
			}
			if r := decode(t, b); !eqF(r.PowerW, tt.power) {
				t.Fatalf("power %v, want %v", *r.PowerW, tt.power)
			}
		})
	}
	// A shared scale factor fits every value that uses it.
	b := Block{ID: 203, Values: values("W", "100", "WphA", "50000")}
	r := decode(t, b)
	if !eqF(r.PowerW, 100) || !eqF(r.PhasePowerW[0], 50000) {
		t.Fatalf("shared W_SF: %v %v", *r.PowerW, *r.PhasePowerW[0])
	}
}

func flatten(m map[string]string) []string {
	var out []string
	for k, v := range m {
		out = append(out, k, v)
	}
	return out
}

func TestImageErrors(t *testing.T) {
	tests := []struct {
		name   string
		base   uint16
		blocks []Block
		want   string
	}{
		{"no blocks", 0, nil, "first block must be the common model 1"},
		{"common not first", 0, []Block{{ID: 103}}, "first block must be the common model 1"},
		{"unknown model", 0, []Block{Common("a", "b", "c"), {ID: 120}}, "block 1: model 120: no definition"},
		{"unknown point", 0, []Block{Common("a", "b", "c"), {ID: 103, Values: values("Watts", "1")}}, `model 103 has no point "Watts"`},
		{"string too long", 0, []Block{Common(strings.Repeat("x", 33), "b", "c")}, "longer than 32 bytes"},
		{"number for a string", 0, []Block{{ID: 1, Values: values("Mn", "1")}}, "point Mn: a string, not a number"},
		{"string for a number", 0, []Block{Common("a", "b", "c"), {ID: 103, Strings: map[string]string{"W": "1"}}}, "point W: a int16, not a string"},
		{"fraction without a scale factor", 0, []Block{Common("a", "b", "c"), {ID: 103, Values: values("St", "4.5")}}, "point St: 4.5 is not a whole number"},
		{"zero accumulator", 0, []Block{Common("a", "b", "c"), {ID: 103, Values: values("WH", "0")}}, "0 encodes as 0, which a acc32 reads as not implemented"},
		{"negative unsigned", 0, []Block{Common("a", "b", "c"), {ID: 103, Values: values("Hz", "-50")}}, "point Hz_SF: no scale factor up to 10^10 fits: point Hz: -50 is negative; a uint16 cannot hold it"},
		{"too big even at 10^10", 0, []Block{Common("a", "b", "c"), {ID: 103, Values: values("W", "1e20")}}, "no scale factor up to 10^10 fits"},
		{"given scale factor too small", 0, []Block{Common("a", "b", "c"), {ID: 103, Values: values("W", "40000", "W_SF", "0")}}, "outside the int16 range"},
		{"scale factor out of range", 0, []Block{Common("a", "b", "c"), {ID: 103, Values: values("W_SF", "11")}}, "scale factor 11 is not a whole number in -10..10"},
		{"raw not-implemented scale factor with values", 0, []Block{Common("a", "b", "c"), {ID: 103, Values: values("W", "1"), Raw: map[string][]uint16{"W_SF": {0x8000}}}}, "raw scale factor 0x8000 cannot scale values for W"},
		{"raw wrong size", 0, []Block{Common("a", "b", "c"), {ID: 103, Raw: map[string][]uint16{"WH": {1}}}}, "1 raw registers, the point has 2"},
		{"twice", 0, []Block{Common("a", "b", "c"), {ID: 103, Values: values("W", "1"), Raw: map[string][]uint16{"W": {1}}}}, "given in both Raw and Values"},
		{"float too big", 0, []Block{Common("a", "b", "c"), {ID: 113, Values: values("W", "1e39")}}, "does not fit a float32"},
		{"past 65535", 65500, []Block{Common("a", "b", "c")}, "72 registers from 65500 run past register 65535"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			regs, err := Image(tt.base, tt.blocks...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Image = %d registers, %v; want an error containing %q", len(regs), err, tt.want)
			}
		})
	}
}

// Raw writes sentinels on purpose, and they read back as missing.
func TestImageRaw(t *testing.T) {
	_, r := roundTrip(t, 40000, Block{ID: 103,
		Values: values("Hz", "50"),
		Raw:    map[string][]uint16{"W": {0x8000}, "WH": {0, 0}, "V_SF": {0x8000}, "PhVphA": {2300}}})
	if r.PowerW != nil || r.ExportWh != nil || r.VoltageV != nil || !eqF(r.FrequencyHz, 50) {
		t.Fatalf("%s", jsonOf(t, r))
	}
}

// TestPymodbusImage checks the image TestPymodbusPeer serves against the
// device it stands for: testdata/pymodbus/registers.json was laid out from
// device.json by an encoder that shares nothing with this package (the
// Python one that served the test before), and Image must lay device.json
// out register for register the same.
func TestPymodbusImage(t *testing.T) {
	var device struct {
		Description string `json:"description"`
		Base        uint16 `json:"base"`
		Models      []struct {
			ID     uint16         `json:"id"`
			Points map[string]any `json:"points"`
		} `json:"models"`
	}
	readJSON(t, "testdata/pymodbus/device.json", &device)
	var blocks []Block
	for _, m := range device.Models {
		b := Block{ID: m.ID, Strings: map[string]string{}, Raw: map[string][]uint16{}}
		for name, v := range m.Points {
			p, ok := definitions[m.ID].Point(name)
			if !ok {
				t.Fatalf("device.json: model %d has no point %s", m.ID, name)
			}
			switch v := v.(type) {
			case string:
				b.Strings[name] = v
			case float64: // a register-level integer, as json reads it
				n := int64(v)
				if p.Size == 1 {
					b.Raw[name] = []uint16{uint16(n)}
				} else {
					b.Raw[name] = []uint16{uint16(uint32(n) >> 16), uint16(n)}
				}
			default:
				t.Fatalf("device.json: model %d point %s: %v", m.ID, name, v)
			}
		}
		// A point not listed is not implemented, scale factors too
		// (Image would choose those).
		for _, p := range definitions[m.ID].Points {
			if _, listed := m.Points[p.Name]; !listed && p.Type == "sunssf" {
				b.Raw[p.Name] = []uint16{0x8000}
			}
		}
		blocks = append(blocks, b)
	}
	regs, err := Image(device.Base, blocks...)
	if err != nil {
		t.Fatal(err)
	}
	var served struct {
		Description string            `json:"description"`
		Holding     map[string]string `json:"holding"`
	}
	readJSON(t, "testdata/pymodbus/registers.json", &served)
	if len(served.Holding) != len(regs) {
		t.Errorf("registers.json holds %d registers, Image lays out %d", len(served.Holding), len(regs))
	}
	for i, r := range regs {
		key := fmt.Sprintf("0x%04X", int(device.Base)+i)
		if want := fmt.Sprintf("0x%04X", r); served.Holding[key] != want {
			t.Errorf("register %s: registers.json has %q, Image %s", key, served.Holding[key], want)
		}
	}
}
