package profile

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/shopspring/decimal"

	"github.com/p2pgrid/p2pgrid/meter"
)

// validProfile is a small profile the error cases below break one line
// of at a time.
const validProfile = `name: t
kind: meter
manufacturer: Test
model: T1
registers:
  - {quantity: voltage_v, phase: 1, type: input, address: 0x0000, encoding: float32, word_order: abcd, scale: 1, unit: V}
  - {quantity: voltage_v, phase: 2, type: input, address: 0x0002, encoding: float32, word_order: abcd, scale: 1, unit: V}
  - {quantity: power_w, type: holding, address: 10, encoding: int16, scale: -0.1, unit: W, missing: 0x8000}
`

func TestParseValid(t *testing.T) {
	p, err := Parse("t", []byte(validProfile))
	if err != nil {
		t.Fatal(err)
	}
	if p.Name != "t" || p.Kind != meter.KindMeter || p.Manufacturer != "Test" || p.Model != "T1" || p.MaxGap != DefaultMaxGap {
		t.Errorf("header: %+v", p)
	}
	if len(p.Registers) != 3 {
		t.Fatalf("%d registers", len(p.Registers))
	}
	r := p.Registers[2]
	if r.Point != (Point{Quantity: PowerW}) || r.Type != Holding || r.Address != 10 || r.Encoding != Int16 ||
		r.WordOrder != ABCD || r.Scale.String() != "-0.1" || r.Unit != "W" || r.Missing == nil || *r.Missing != 0x8000 {
		t.Errorf("register 3: %+v", r)
	}
	if got := p.Registers[1].Point.String(); got != "voltage_v phase 2" {
		t.Errorf("point: %s", got)
	}
}

// TestParseErrors breaks validProfile in every way Parse must catch and
// checks that the error names the profile, the register and the fault.
func TestParseErrors(t *testing.T) {
	const reg2 = "  - {quantity: voltage_v, phase: 2, type: input, address: 0x0002, encoding: float32, word_order: abcd, scale: 1, unit: V}\n"
	withReg2 := func(line string) string { return strings.Replace(validProfile, reg2, line+"\n", 1) }
	for _, c := range []struct {
		name, file, data, want string
	}{
		{"address out of range", "t", withReg2("  - {quantity: voltage_v, phase: 2, type: input, address: 70000, encoding: float32, unit: V}"),
			`profile "t": register 2 (voltage_v phase 2): address 70000 out of range 0..65535`},
		{"negative address", "t", withReg2("  - {quantity: voltage_v, phase: 2, type: input, address: -1, encoding: float32, unit: V}"),
			`profile "t": register 2 (voltage_v phase 2): address -1 out of range`},
		{"32-bit at the last address", "t", withReg2("  - {quantity: voltage_v, phase: 2, type: input, address: 0xFFFF, encoding: float32, unit: V}"),
			`register 2 (voltage_v phase 2): address 65535 out of range: a float32 takes registers 65535-65536`},
		{"address as string", "t", withReg2("  - {quantity: voltage_v, phase: 2, type: input, address: \"2\", encoding: float32, unit: V}"),
			`register 2 (voltage_v phase 2): address: line 7: "2" is not an integer`},
		{"unknown register key", "t", withReg2("  - {quantity: voltage_v, phase: 2, type: input, address: 2, encoding: float32, unit: V, scal: 1}"),
			`profile "t": register 2 (voltage_v phase 2): line 7: unknown key "scal"`},
		{"unknown top key", "t", "maxgap: 3\n" + validProfile, `profile "t": line 1: unknown key "maxgap"`},
		{"repeated key", "t", withReg2("  - {quantity: voltage_v, phase: 2, type: input, type: input, address: 2, encoding: float32, unit: V}"),
			`register 2 (voltage_v phase 2): line 7: key "type" given twice`},
		{"unknown quantity", "t", withReg2("  - {quantity: voltage, phase: 2, type: input, address: 2, encoding: float32, unit: V}"),
			`register 2 (voltage phase 2): unknown quantity "voltage"`},
		{"missing phase", "t", withReg2("  - {quantity: current_a, type: input, address: 2, encoding: float32, unit: A}"),
			`register 2 (current_a): current_a needs a phase (1..3)`},
		{"phase 4", "t", withReg2("  - {quantity: current_a, phase: 4, type: input, address: 2, encoding: float32, unit: A}"),
			`register 2 (current_a phase 4): phase 4 out of range 1..3`},
		{"phase where none belongs", "t", withReg2("  - {quantity: frequency_hz, phase: 1, type: input, address: 2, encoding: float32, unit: Hz}"),
			`register 2 (frequency_hz phase 1): frequency_hz has no phase`},
		{"unknown type", "t", withReg2("  - {quantity: voltage_v, phase: 2, type: coil, address: 2, encoding: float32, unit: V}"),
			`register 2 (voltage_v phase 2): unknown type "coil"`},
		{"unknown encoding", "t", withReg2("  - {quantity: voltage_v, phase: 2, type: input, address: 2, encoding: float64, unit: V}"),
			`register 2 (voltage_v phase 2): unknown encoding "float64"`},
		{"unknown word order", "t", withReg2("  - {quantity: voltage_v, phase: 2, type: input, address: 2, encoding: float32, word_order: big, unit: V}"),
			`register 2 (voltage_v phase 2): unknown word_order "big"`},
		{"word swap of a 16-bit value", "t", withReg2("  - {quantity: voltage_v, phase: 2, type: input, address: 2, encoding: uint16, word_order: cdab, unit: V}"),
			`register 2 (voltage_v phase 2): word_order cdab swaps words, and a uint16 has one`},
		{"wrong unit", "t", withReg2("  - {quantity: voltage_v, phase: 2, type: input, address: 2, encoding: float32, unit: kV}"),
			`register 2 (voltage_v phase 2): unit "kV": voltage_v is in V after scaling`},
		{"no unit", "t", withReg2("  - {quantity: voltage_v, phase: 2, type: input, address: 2, encoding: float32}"),
			`register 2 (voltage_v phase 2): unit is missing`},
		{"zero scale", "t", withReg2("  - {quantity: voltage_v, phase: 2, type: input, address: 2, encoding: float32, scale: 0, unit: V}"),
			`register 2 (voltage_v phase 2): scale: line 7: scale 0 would erase every value`},
		{"scale not a number", "t", withReg2("  - {quantity: voltage_v, phase: 2, type: input, address: 2, encoding: float32, scale: ten, unit: V}"),
			`register 2 (voltage_v phase 2): scale: line 7: "ten" is not a decimal number`},
		{"negative energy scale", "t", withReg2("  - {quantity: import_wh, type: input, address: 2, encoding: float32, scale: -1000, unit: Wh}"),
			`register 2 (import_wh): scale -1000: an energy counter needs a positive scale`},
		{"missing out of range", "t", withReg2("  - {quantity: voltage_v, phase: 2, type: input, address: 2, encoding: int16, unit: V, missing: 0x10000}"),
			`register 2 (voltage_v phase 2): missing 65536 out of range for a int16`},
		{"point mapped twice", "t", withReg2("  - {quantity: voltage_v, phase: 1, type: input, address: 4, encoding: float32, unit: V}"),
			`register 2 (voltage_v phase 1): voltage_v phase 1 is already mapped by register 1`},
		{"overlapping registers", "t", withReg2("  - {quantity: voltage_v, phase: 2, type: input, address: 1, encoding: float32, unit: V}"),
			`register 2 (voltage_v phase 2): input registers 0x0001-0x0002 overlap register 1 (voltage_v phase 1) at 0x0000-0x0001`},
		{"register not a mapping", "t", withReg2("  - voltage"), `register 2 (no quantity): line 7: a register is a mapping`},
		{"name differs from file", "sdm630", validProfile, `profile "sdm630": name "t" differs from the file name sdm630.yaml`},
		{"bad kind", "t", strings.Replace(validProfile, "kind: meter", "kind: battery", 1), `profile "t": kind "battery": want meter or inverter`},
		{"no kind", "t", strings.Replace(validProfile, "kind: meter\n", "", 1), `profile "t": kind is missing`},
		{"numeric model", "t", strings.Replace(validProfile, "model: T1", "model: 630", 1), `profile "t": model: line 4: 630 is not a string (quote it)`},
		{"max_gap too large", "t", "max_gap: 200\n" + validProfile, `profile "t": max_gap 200 out of range 0..123`},
		{"no registers", "t", "name: t\nkind: meter\nmanufacturer: a\nmodel: b\nregisters: []\n", `profile "t": line 5: registers must be a non-empty list`},
		{"empty file", "t", "", `profile "t": empty file`},
		{"not a mapping", "t", "- a\n- b\n", `profile "t": line 1: a profile is a mapping`},
		{"bad YAML", "t", "name: [t\n", `profile "t": yaml:`},
		{"invalid file name", "../etc/passwd", validProfile, `profile "../etc/passwd": invalid name`},
	} {
		t.Run(c.name, func(t *testing.T) {
			p, err := Parse(c.file, []byte(c.data))
			if err == nil {
				t.Fatalf("no error; parsed %+v", p)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %q\n does not contain %q", err, c.want)
			}
		})
	}
}

func TestParseAliases(t *testing.T) {
	data := `name: t
kind: meter
manufacturer: Test
model: T1
registers:
  - &l1 {quantity: voltage_v, phase: 1, type: input, address: 0, encoding: float32, unit: V}
  - *l1
`
	if _, err := Parse("t", []byte(data)); err == nil || !strings.Contains(err.Error(), "register 2 (voltage_v phase 1): voltage_v phase 1 is already mapped by register 1") {
		t.Errorf("an aliased register: %v", err)
	}
	data = strings.Replace(data, "  - *l1\n", "  - {quantity: current_a, phase: 1, type: input, address: 2, encoding: &f float32, unit: A}\n  - {quantity: current_a, phase: 2, type: input, address: 4, encoding: *f, unit: A}\n", 1)
	p, err := Parse("t", []byte(data))
	if err != nil {
		t.Fatal(err)
	}
	if p.Registers[2].Encoding != Float32 {
		t.Errorf("aliased encoding: %+v", p.Registers[2])
	}
}

func TestParseScaleIsExact(t *testing.T) {
	for in, want := range map[string]string{"0.1": "0.1", "1000": "1000", "-1": "-1", "1e3": "1000", "0.001": "0.001", "0x10": "16"} {
		data := strings.Replace(validProfile, "scale: -0.1", "scale: "+in, 1)
		p, err := Parse("t", []byte(data))
		if err != nil {
			t.Fatalf("scale %s: %v", in, err)
		}
		if got := p.Registers[2].Scale; !got.Equal(decimal.RequireFromString(want)) {
			t.Errorf("scale %s: got %s, want %s", in, got, want)
		}
	}
}

func TestLoadAndLookup(t *testing.T) {
	// Load reads name.yaml and names the file in its errors.
	fsys := fstest.MapFS{"t.yaml": {Data: []byte(validProfile)}, "bad.yaml": {Data: []byte("name: bad\n")}}
	if _, err := Load(fsys, "t"); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(fsys, "missing"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load missing: %v", err)
	}

	// A user's directory comes before the built-in profiles.
	dir := t.TempDir()
	own := strings.NewReplacer("name: t", "name: sdm630", "model: T1", "model: my own").Replace(validProfile)
	if err := os.WriteFile(filepath.Join(dir, "sdm630.yaml"), []byte(own), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "house.yaml"), []byte(strings.Replace(validProfile, "name: t", "name: house", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	empty := t.TempDir()
	p, err := Lookup("sdm630", empty, dir)
	if err != nil {
		t.Fatal(err)
	}
	if p.Model != "my own" {
		t.Errorf("Lookup sdm630 found the built-in one, not %s/sdm630.yaml", dir)
	}
	if p, err := Lookup("sdm120", dir); err != nil || p.Model != "SDM120" {
		t.Errorf("Lookup sdm120: %v, %v", p, err)
	}

	// An unknown name lists every name there is.
	_, err = Lookup("sdm999", dir)
	if !errors.Is(err, ErrUnknownProfile) {
		t.Fatalf("Lookup sdm999: %v", err)
	}
	if want := "known profiles: house, sdm120, sdm630, sdm72"; !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not list %q", err, want)
	}

	// A user's broken file is an error naming the file, never skipped for
	// the built-in profile.
	if err := os.WriteFile(filepath.Join(dir, "sdm72.yaml"), []byte("name: sdm72\nkind: meter\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = Lookup("sdm72", dir)
	if err == nil || !strings.Contains(err.Error(), `profile "sdm72" (`+filepath.Join(dir, "sdm72.yaml")+`): manufacturer is missing`) {
		t.Errorf("broken user profile: %v", err)
	}

	// Names are file names, not paths.
	if _, err := Lookup("../sdm630", dir); err == nil || !strings.Contains(err.Error(), "invalid name") {
		t.Errorf("Lookup ../sdm630: %v", err)
	}
}

// FuzzParse feeds arbitrary YAML to Parse: it must never panic, and a
// profile it accepts must satisfy what Parse promises.
func FuzzParse(f *testing.F) {
	f.Add([]byte(validProfile))
	for _, n := range []string{"sdm630", "sdm120", "sdm72"} {
		data, err := fs.ReadFile(builtinFS(), n+".yaml")
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("name: t\nkind: meter\nmanufacturer: a\nmodel: b\nmax_gap: 0\nregisters:\n  - {quantity: power_w, type: holding, address: 65534, encoding: uint32, unit: W, missing: -1}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Parse("t", data)
		if err != nil {
			if !strings.HasPrefix(err.Error(), `profile "t": `) {
				t.Fatalf("error does not name the profile: %v", err)
			}
			return
		}
		checkProfile(t, p)
	})
}
