package sunspec

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/p2pgrid/p2pgrid/internal/golden"
	"github.com/p2pgrid/p2pgrid/meter"
)

// goldenImage is testdata/<case>/image.json: a device's holding registers
// as hex words, one or more segments, and how to poll it.
type goldenImage struct {
	Description string          `json:"description"`
	Unit        uint8           `json:"unit"`
	NegatePower bool            `json:"negate_power,omitempty"`
	Segments    []goldenSegment `json:"segments"`
}

type goldenSegment struct {
	Address uint16 `json:"address"`
	// Registers are space-separated 4-digit hex words; the strings are
	// concatenated (one per model row, for reading the diff).
	Registers []string `json:"registers"`
}

// goldenResult is testdata/<case>/expected.json.
type goldenResult struct {
	Device   *Device        `json:"device,omitempty"`
	Reading  *meter.Reading `json:"reading,omitempty"`
	Error    string         `json:"error,omitempty"`
	Requests struct {
		Discover int `json:"discover"`
		Read     int `json:"read"`
	} `json:"requests"`
}

func (s goldenSegment) words() ([]uint16, error) {
	var out []uint16
	for _, line := range s.Registers {
		for _, w := range strings.Fields(line) {
			if len(w) != 4 {
				return nil, fmt.Errorf("register %q: want 4 hex digits", w)
			}
			v, err := strconv.ParseUint(w, 16, 16)
			if err != nil {
				return nil, fmt.Errorf("register %q: %w", w, err)
			}
			out = append(out, uint16(v))
		}
	}
	return out, nil
}

// TestGolden discovers and reads every testdata/<case>/image.json and
// compares with expected.json; -update rewrites expected.json.
func TestGolden(t *testing.T) {
	for _, name := range golden.Cases(t, "testdata", "image.json", 10) {
		dir := filepath.Join("testdata", name)
		path := filepath.Join(dir, "image.json")
		t.Run(name, func(t *testing.T) {
			var img goldenImage
			readJSON(t, path, &img)
			if img.Description == "" {
				t.Fatal("image.json has no description")
			}
			f := newFake(t)
			f.budget = 3 + MaxModels + 3
			for _, s := range img.Segments {
				w, err := s.words()
				if err != nil {
					t.Fatal(err)
				}
				f.load(s.Address, w...)
			}
			got := run(f, img)
			b, err := json.MarshalIndent(got, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			b = append(b, '\n')
			want := filepath.Join(dir, "expected.json")
			golden.Check(t, want, b)
		})
	}
}

func run(f *fakeRegs, img goldenImage) goldenResult {
	var res goldenResult
	d, err := Discover(context.Background(), f, img.Unit)
	res.Requests.Discover = len(f.calls)
	if err != nil {
		res.Error = err.Error()
		return res
	}
	d.Now = clock
	d.NegatePower = img.NegatePower
	res.Device = d
	n := len(f.calls)
	r, err := d.Read(context.Background())
	res.Requests.Read = len(f.calls) - n
	if err != nil {
		res.Error = err.Error()
		return res
	}
	res.Reading = &r
	return res
}

func readJSON(t testing.TB, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}
