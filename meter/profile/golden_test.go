package profile

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/p2pgrid/p2pgrid/internal/golden"
	"github.com/p2pgrid/p2pgrid/meter"
)

// imageFile is a golden case's image.json (see testdata/README.md).
type imageFile struct {
	Profile string            `json:"profile"`
	Unit    uint8             `json:"unit"`
	Comment string            `json:"comment"`
	Input   map[string]string `json:"input"`
	Holding map[string]string `json:"holding"`
}

// readImage reads the image.json of dir.
func readImage(t testing.TB, dir string) (imageFile, map[RegType]map[uint16]uint16) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "image.json"))
	if err != nil {
		t.Fatal(err)
	}
	var f imageFile
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		t.Fatalf("%s/image.json: %v", dir, err)
	}
	if f.Profile == "" || f.Comment == "" {
		t.Fatalf("%s/image.json: profile and comment are required", dir)
	}
	img := map[RegType]map[uint16]uint16{}
	for typ, table := range map[RegType]map[string]string{Input: f.Input, Holding: f.Holding} {
		img[typ] = map[uint16]uint16{}
		for a, v := range table {
			addr, err1 := strconv.ParseUint(a, 0, 16)
			val, err2 := strconv.ParseUint(v, 0, 16)
			if err1 != nil || err2 != nil {
				t.Fatalf("%s/image.json: %s %q: %q: want 16-bit hex numbers", dir, typ, a, v)
			}
			img[typ][uint16(addr)] = uint16(val)
		}
	}
	return f, img
}

// readingJSON is how a reading is written in expected.json.
func readingJSON(t testing.TB, v any) []byte {
	t.Helper()
	out, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return append(out, '\n')
}

// TestGolden polls each testdata/<case>/image.json through its profile
// and compares the reading with expected.json.
func TestGolden(t *testing.T) {
	for _, name := range golden.Cases(t, "testdata", "image.json", 8) {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join("testdata", name)
			f, img := readImage(t, dir)
			p, err := Lookup(f.Profile, dir)
			if err != nil {
				t.Fatal(err)
			}
			bus := newFakeBus(img)
			r, err := p.Device(bus, f.Unit, WithClock(fixedClock)).Read(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if want := len(p.Plan()); bus.requests != want {
				t.Errorf("%d requests, the plan has %d", bus.requests, want)
			}
			got := readingJSON(t, r)
			path := filepath.Join(dir, "expected.json")
			golden.Check(t, path, got)
		})
	}
}

// lossyCases are the golden cases whose reading does not determine their
// image: rounding to whole Wh, NaN for infinities, counters past float32's
// precision.
var lossyCases = map[string]string{
	"inverter_integers":      "1000.5 Wh rounds to 1001 Wh, which Image writes as 2002 half-Wh",
	"sdm630_energy_rounding": "0.5 Wh rounds to 1 Wh",
	"sdm630_large_counter":   "123456.789 kWh is not a float32",
	"sdm630_nan_inf":         "Image writes a missing value as NaN, never Inf",
}

// TestGoldenImagesMatchImage checks Image against the images computed in
// Python: the expected reading of each case (but the lossy ones) encodes
// back to exactly image.json.
func TestGoldenImagesMatchImage(t *testing.T) {
	checked := 0
	for _, name := range golden.Cases(t, "testdata", "image.json", 8) {
		if _, lossy := lossyCases[name]; lossy {
			continue
		}
		dir := filepath.Join("testdata", name)
		f, img := readImage(t, dir)
		p, err := Lookup(f.Profile, dir)
		if err != nil {
			t.Fatal(err)
		}
		data, err := os.ReadFile(filepath.Join(dir, "expected.json"))
		if err != nil {
			t.Fatal(err)
		}
		var want meter.Reading
		if err := json.Unmarshal(data, &want); err != nil {
			t.Fatal(err)
		}
		got, err := p.Image(Values(want))
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		for _, typ := range []RegType{Input, Holding} {
			for a, v := range img[typ] {
				if got[typ][a] != v {
					t.Errorf("%s: %s 0x%04X: Image gives 0x%04X, image.json has 0x%04X", name, typ, a, got[typ][a], v)
				}
			}
			if len(got[typ]) != len(img[typ]) {
				t.Errorf("%s: %s: Image has %d registers, image.json %d", name, typ, len(got[typ]), len(img[typ]))
			}
		}
		checked++
	}
	if checked < 5 {
		t.Fatalf("only %d cases checked", checked)
	}
}
