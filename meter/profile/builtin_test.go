package profile

import (
	"context"
	"io/fs"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/shopspring/decimal"

	"github.com/p2pgrid/p2pgrid/configs"
	"github.com/p2pgrid/p2pgrid/meter"
)

// reporter is what checkProfile needs of a *testing.T, *testing.F's T or
// a *rapid.T.
type reporter interface {
	Helper()
	Errorf(format string, args ...any)
	Fatalf(format string, args ...any)
}

// checkProfile checks what Parse promises of any profile it accepts, and
// that its plan reads every register once, within the Modbus limits, in
// as few requests as the merging rule allows.
func checkProfile(t reporter, p *Profile) {
	t.Helper()
	if !ValidName(p.Name) || (p.Kind != meter.KindMeter && p.Kind != meter.KindInverter) || len(p.Registers) == 0 {
		t.Fatalf("profile %q: bad header %+v", p.Name, p)
	}
	if p.MaxGap < 0 || p.MaxGap > MaxRequest-2 {
		t.Fatalf("profile %q: max_gap %d", p.Name, p.MaxGap)
	}
	for i, r := range p.Registers {
		if !r.Quantity.Valid() || r.Quantity.PerPhase() != (r.Phase != 0) || r.Phase < 0 || r.Phase > MaxPhase {
			t.Errorf("profile %q: register %d: point %s", p.Name, i+1, r.Point)
		}
		if !r.Type.Valid() || r.Width() == 0 || r.end() > 1<<16 || r.Unit != r.Quantity.Unit() || r.Scale.IsZero() {
			t.Errorf("profile %q: register %d (%s): %+v", p.Name, i+1, r.Point, r)
		}
		if _, err := rawBits(r.Encoding, r.WordOrder, make([]uint16, r.Width())); err != nil {
			t.Errorf("profile %q: register %d (%s): %v", p.Name, i+1, r.Point, err)
		}
		if err := checkAgainst(p.Registers[:i], r); err != nil {
			t.Errorf("profile %q: register %d: %v", p.Name, i+1, err)
		}
	}

	plan := p.Plan()
	if !reflect.DeepEqual(plan, p.Plan()) {
		t.Fatalf("profile %q: two plans differ", p.Name)
	}
	for i, q := range plan {
		if q.Count == 0 || q.Count > MaxRequest || q.end() > 1<<16 || !q.Type.Valid() {
			t.Errorf("profile %q: request %d: %s", p.Name, i, q)
		}
		if i == 0 {
			continue
		}
		prev := plan[i-1]
		switch {
		case prev.Type > q.Type || prev.Type == q.Type && prev.end() > int(q.Address):
			t.Errorf("profile %q: requests %s and %s out of order or overlapping", p.Name, prev, q)
		case prev.Type == q.Type && int(q.Address)-prev.end() <= p.MaxGap && q.end()-int(prev.Address) <= MaxRequest:
			t.Errorf("profile %q: requests %s and %s could be one", p.Name, prev, q)
		}
	}
	for i, r := range p.Registers {
		n := 0
		for _, q := range plan {
			if q.Type == r.Type && q.Address <= r.Address && r.end() <= q.end() {
				n++
			}
		}
		if n != 1 {
			t.Errorf("profile %q: register %d (%s) is in %d requests", p.Name, i+1, r.Point, n)
		}
	}
}

// builtinPlans are the requests each built-in profile must poll with.
var builtinPlans = map[string][]Request{
	"sdm630": {{Input, 0x0000, 18}, {Input, 0x0034, 24}},
	"sdm120": {{Input, 0x0000, 14}, {Input, 0x0046, 6}},
	"sdm72":  {{Input, 0x0000, 18}, {Input, 0x0034, 24}},
}

// TestBuiltinProfiles loads every file of configs.Devices on its own and
// through Builtin, and checks each: the profile invariants, its plan, its
// comments, and that an image built from values polls back to them.
func TestBuiltinProfiles(t *testing.T) {
	files, err := fs.Glob(configs.Devices, "devices/*")
	if err != nil {
		t.Fatal(err)
	}
	all, err := Builtin()
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != len(all) || len(files) < 3 {
		t.Fatalf("%d files in configs/devices, Builtin returns %d", len(files), len(all))
	}
	for _, file := range files {
		name, ok := strings.CutSuffix(strings.TrimPrefix(file, "devices/"), ".yaml")
		if !ok {
			t.Errorf("%s: not a .yaml file", file)
			continue
		}
		t.Run(name, func(t *testing.T) {
			data, err := fs.ReadFile(configs.Devices, file)
			if err != nil {
				t.Fatal(err)
			}
			p, err := Parse(name, data)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(p, all[name]) {
				t.Errorf("Builtin()[%q] differs from parsing %s", name, file)
			}
			checkProfile(t, p)

			want, ok := builtinPlans[name]
			if !ok {
				t.Fatalf("no expected plan for %s: add one to builtinPlans", name)
			}
			if got := p.Plan(); !reflect.DeepEqual(got, want) {
				t.Errorf("plan %v, want %v", got, want)
			}
			for _, q := range p.Plan() {
				if p.Manufacturer == "Eastron" && q.Count > 80 {
					t.Errorf("request %s is over Eastron's 40 parameters", q)
				}
			}

			// Fully commented: a header that says what the device is,
			// where the map comes from and the sign convention, and a
			// comment before every group of registers.
			text := string(data)
			for _, want := range []string{"# " + p.Manufacturer, "Register map:", "Sign conventions", p.Model} {
				if !strings.Contains(text, want) {
					t.Errorf("%s: the comments do not mention %q", file, want)
				}
			}
			lines := strings.Split(text, "\n")
			for i, l := range lines {
				if strings.HasPrefix(strings.TrimSpace(l), "- {") {
					j := i - 1
					for j > 0 && strings.HasPrefix(strings.TrimSpace(lines[j]), "- {") {
						j--
					}
					if !strings.HasPrefix(strings.TrimSpace(lines[j]), "#") {
						t.Errorf("%s:%d: register without a comment above its group", file, i+1)
					}
				}
			}

			// Every quantity the profile maps comes back from an image.
			vals := sampleValues(p)
			img, err := p.Image(vals)
			if err != nil {
				t.Fatal(err)
			}
			r, err := p.Device(newFakeBus(img), 1, WithClock(fixedClock)).Read(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if got := Values(r); !equalValues(got, vals) {
				t.Errorf("polled %v, want %v", got, vals)
			}
		})
	}
}

// sampleValues gives every point of p a value a float32 holds exactly to
// the decimal shown, and energy counters below 16,384 kWh.
func sampleValues(p *Profile) map[Point]decimal.Decimal {
	vals := map[Point]decimal.Decimal{}
	for _, pt := range p.Points() {
		var s string
		switch pt.Quantity {
		case PowerW:
			s = "-2738.25"
		case ImportWh:
			s = "12345678"
		case ExportWh:
			s = "987650"
		case FrequencyHz:
			s = "49.98"
		case VoltageV:
			s = []string{"230.1", "231.4", "229.8"}[pt.Phase-1]
		case CurrentA:
			s = []string{"5.12", "3.3", "0.87"}[pt.Phase-1]
		case PhasePowerW:
			s = []string{"-1540.5", "-1210.25", "12.5"}[pt.Phase-1]
		}
		vals[pt] = decimal.RequireFromString(s)
	}
	return vals
}

func equalValues(a, b map[Point]decimal.Decimal) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || !v.Equal(w) {
			return false
		}
	}
	return true
}

// TestSDM630PollRequests counts the requests of a full SDM630 poll.
func TestSDM630PollRequests(t *testing.T) {
	p := builtin(t, "sdm630")
	bus := newFakeBus(nil)
	r, err := p.Device(bus, 1, WithClock(fixedClock)).Read(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if bus.requests > 2 {
		t.Errorf("a full SDM630 poll took %d requests, want at most 2: %v", bus.requests, bus.log)
	}
	if !slices.Equal(bus.log, builtinPlans["sdm630"]) {
		t.Errorf("requests %v, want %v", bus.log, builtinPlans["sdm630"])
	}
	if r.PowerW == nil || len(r.VoltageV) != 3 || r.ImportWh == nil || r.ExportWh == nil || r.FrequencyHz == nil {
		t.Errorf("an all-zero SDM630 reads as missing values: %+v", r)
	}
}
