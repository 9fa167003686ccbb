package profile

import (
	"context"
	"errors"
	"math"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"
)

func TestDeviceReadErrors(t *testing.T) {
	p := builtin(t, "sdm630")
	ctx := context.Background()

	bus := newFakeBus(nil)
	bus.err = errFakeBus
	_, err := p.Device(bus, 4).Read(ctx)
	if !errors.Is(err, errFakeBus) || !strings.Contains(err.Error(), `profile "sdm630" unit 4: read input 0x0000+18: fake bus: timeout`) {
		t.Errorf("bus error: %v", err)
	}
	if bus.requests != 1 {
		t.Errorf("%d requests after the first failed", bus.requests)
	}

	bus = newFakeBus(nil)
	bus.short = true
	if _, err := p.Device(bus, 4).Read(ctx); err == nil || !strings.Contains(err.Error(), "read input 0x0000+18: got 17 registers") {
		t.Errorf("short answer: %v", err)
	}

	// A counter no int64 holds is an error naming the register, not a
	// wrapped-around number.
	img, err := p.Image(map[Point]decimal.Decimal{})
	if err != nil {
		t.Fatal(err)
	}
	img[Input][0x0048], img[Input][0x0049] = 0x7F7F, 0xFFFF // 3.4e38 kWh
	_, err = p.Device(newFakeBus(img), 1).Read(ctx)
	if err == nil || !strings.Contains(err.Error(), `register 12 (import_wh) at input 0x0048: 340282350000000000000000000000000000000000 Wh does not fit an int64 counter`) {
		t.Errorf("huge counter: %v", err)
	}
}

func TestDeviceClockAndCopy(t *testing.T) {
	p := builtin(t, "sdm120")
	clock := goldenTime
	dev := p.Device(newFakeBus(nil), 9, WithClock(func() time.Time { clock = clock.Add(time.Second); return clock }))
	// The profile changing afterwards does not reach the device.
	p.Name, p.Registers = "changed", p.Registers[:1]
	for i := 1; i <= 2; i++ {
		r, err := dev.Read(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if want := goldenTime.Add(time.Duration(i) * time.Second); !r.Time.Equal(want) {
			t.Errorf("read %d at %v, want %v", i, r.Time, want)
		}
		if r.Device != "sdm120" || r.Unit != 9 || r.Kind != "meter" || r.ExportWh == nil {
			t.Errorf("read %d: %+v", i, r)
		}
	}
	// Without WithClock, the wall clock.
	r, err := builtin(t, "sdm120").Device(newFakeBus(nil), 1).Read(context.Background())
	if err != nil || time.Since(r.Time) > time.Minute {
		t.Errorf("default clock: %v, %v", r.Time, err)
	}
}

// TestImage checks the images Image builds: missing values, rounding,
// errors.
func TestImage(t *testing.T) {
	p, err := Lookup("testinv", filepath.Join("testdata", "inverter_integers"))
	if err != nil {
		t.Fatal(err)
	}
	d := decimal.RequireFromString
	img, err := p.Image(map[Point]decimal.Decimal{
		{Quantity: PowerW}:                d("-5"),
		{Quantity: ImportWh}:              d("1000.25"), // 2000.5 half-Wh -> 2001
		{Quantity: FrequencyHz}:           d("50.004"),  // 5000.4 cHz -> 5000
		{Quantity: VoltageV, Phase: 1}:    d("-0.05"),   // -0.5 dV -> -1
		{Quantity: PhasePowerW, Phase: 1}: d("1540.5"),  // scale -1
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		typ  RegType
		addr uint16
		want uint16
	}{
		{Holding, 100, 0xFFFB}, {Holding, 101, 0xFFFF}, // -5 in cdab
		{Holding, 102, 0xFFFF}, {Holding, 103, 0xFFFF}, // export: missing pattern
		{Holding, 104, 0x8813}, // 5000 = 0x1388 in badc
		{Holding, 110, 0x0000}, {Holding, 111, 2001},
		{Input, 0, 0xFFFF},                       // -1
		{Input, 1, 0x8000},                       // missing
		{Input, 10, 0xFFFF},                      // missing
		{Input, 20, 0x0090}, {Input, 21, 0xC0C4}, // -1540.5 in dcba
	} {
		if got := img[c.typ][c.addr]; got != c.want {
			t.Errorf("%s %d = 0x%04X, want 0x%04X", c.typ, c.addr, got, c.want)
		}
	}
	// A missing float32 is a NaN.
	sdm := builtin(t, "sdm630")
	img, err = sdm.Image(nil)
	if err != nil || img[Input][0x34] != 0x7FC0 || img[Input][0x35] != 0 {
		t.Errorf("missing float32: %04X %04X, %v", img[Input][0x34], img[Input][0x35], err)
	}

	for _, c := range []struct {
		p    *Profile
		vals map[Point]decimal.Decimal
		want string
	}{
		{sdm, map[Point]decimal.Decimal{{Quantity: VoltageV, Phase: 4}: d("1")}, `profile "sdm630": no register for voltage_v phase 4`},
		{sdm, map[Point]decimal.Decimal{{Quantity: PowerW}: d("1e39")}, `register 10 (power_w): value 1000000000000000000000000000000000000000 W: 1000000000000000000000000000000000000000 is out of the float32 range`},
		{p, map[Point]decimal.Decimal{{Quantity: PowerW}: d("1"), {Quantity: ImportWh}: d("1"), {Quantity: FrequencyHz}: d("700")}, `register 3 (frequency_hz): value 700 Hz: 70000 is out of the uint16 range`},
		{p, map[Point]decimal.Decimal{{Quantity: FrequencyHz}: d("50")}, `register 1 (power_w): no value, and a int32 without a missing pattern cannot say it has none`},
	} {
		if _, err := c.p.Image(c.vals); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Image: %v, want %q", err, c.want)
		}
	}
}

// FuzzPoll polls the built-in profiles and the test inverter over
// arbitrary register contents: a poll never panics, and fails only for an
// energy counter no int64 holds.
func FuzzPoll(f *testing.F) {
	f.Add([]byte{0x43, 0x66, 0x19, 0x9A}, uint8(0))
	f.Add([]byte{0x7F, 0xC0, 0, 0, 0xFF, 0x80, 0, 0}, uint8(3))
	f.Add([]byte{0x7F, 0x7F, 0xFF, 0xFF}, uint8(36))
	all, err := Builtin()
	if err != nil {
		f.Fatal(err)
	}
	inv, err := Lookup("testinv", filepath.Join("testdata", "inverter_integers"))
	if err != nil {
		f.Fatal(err)
	}
	profiles := []*Profile{all["sdm630"], all["sdm120"], all["sdm72"], inv}
	f.Fuzz(func(t *testing.T, data []byte, shift uint8) {
		for _, p := range profiles {
			bus := newFakeBus(nil)
			bus.record = false
			// Fill the planned registers with data, from a shifted start.
			i := int(shift)
			for _, q := range p.Plan() {
				for a := int(q.Address); a < q.end() && len(data) > 0; a++ {
					hi, lo := data[i%len(data)], data[(i+1)%len(data)]
					bus.tables[q.Type][a] = uint16(hi)<<8 | uint16(lo)
					i += 2
				}
			}
			r, err := p.Device(bus, 1, WithClock(fixedClock)).Read(context.Background())
			if err != nil {
				if !strings.Contains(err.Error(), "does not fit an int64 counter") {
					t.Fatalf("%s: %v", p.Name, err)
				}
				continue
			}
			for _, f := range append(append(append([]*float64{r.PowerW, r.FrequencyHz}, r.VoltageV...), r.CurrentA...), r.PhasePowerW...) {
				if f != nil && (math.IsNaN(*f) || math.IsInf(*f, 0)) {
					t.Fatalf("%s: NaN or Inf in %+v", p.Name, r)
				}
			}
		}
	})
}

// BenchmarkPoll polls an SDM630 over a fake bus that answers without
// allocating: what is left is the cost of planning's output, decoding and
// the reading itself.
func BenchmarkPoll(b *testing.B) {
	for _, name := range []string{"sdm630", "sdm120"} {
		b.Run(name, func(b *testing.B) {
			p := builtin(b, name)
			img, err := p.Image(sampleValues(p))
			if err != nil {
				b.Fatal(err)
			}
			bus := newFakeBus(img)
			bus.record = false
			dev := p.Device(bus, 1, WithClock(fixedClock))
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := dev.Read(ctx); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(bus.requests)/float64(b.N), "requests/op")
		})
	}
}
