package profile

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/shopspring/decimal"
	"pgregory.net/rapid"

	"github.com/p2pgrid/p2pgrid/meter"
)

// planProfile builds a profile of registers at the given addresses
// ("i12" is a float32 input at 12, "h7s" a uint16 holding at 7).
func planProfile(maxGap int, specs ...string) *Profile {
	p := &Profile{Name: "plan", Kind: meter.KindMeter, MaxGap: maxGap}
	qs := []Quantity{VoltageV, CurrentA, PhasePowerW}
	for i, s := range specs {
		typ := Input
		if s[0] == 'h' {
			typ = Holding
		}
		enc := Float32
		if strings.HasSuffix(s, "s") {
			enc, s = Uint16, strings.TrimSuffix(s, "s")
		}
		var addr uint16
		fmt.Sscan(s[1:], &addr)
		p.Registers = append(p.Registers, Register{
			Point: Point{Quantity: qs[i%3], Phase: i/3 + 1}, Type: typ, Address: addr,
			Encoding: enc, WordOrder: ABCD, Scale: decimal.NewFromInt(1), Unit: qs[i%3].Unit(),
		})
	}
	return p
}

func TestPlan(t *testing.T) {
	for _, c := range []struct {
		name   string
		maxGap int
		regs   []string
		want   []Request
	}{
		{"one register", 16, []string{"i0"}, []Request{{Input, 0, 2}}},
		{"adjacent", 0, []string{"i0", "i2", "i4"}, []Request{{Input, 0, 6}}},
		{"gap of max_gap merges", 16, []string{"i0", "i18"}, []Request{{Input, 0, 20}}},
		{"gap over max_gap splits", 16, []string{"i0", "i19"}, []Request{{Input, 0, 2}, {Input, 19, 2}}},
		{"max_gap 0 splits any gap", 0, []string{"i0", "i3s"}, []Request{{Input, 0, 2}, {Input, 3, 1}}},
		{"file order does not matter", 16, []string{"i40", "i0", "i20", "i2"}, []Request{{Input, 0, 22}, {Input, 40, 2}}},
		{"types never merge; holding first", 16, []string{"i0", "h0", "h2s"}, []Request{{Holding, 0, 3}, {Input, 0, 2}}},
		{"125 registers at most", 123, []string{"i0", "i123", "i125s"}, []Request{{Input, 0, 125}, {Input, 125, 1}}},
		{"exactly 125", 123, []string{"i0", "i123"}, []Request{{Input, 0, 125}}},
		{"top of the address space", 16, []string{"i65534", "i65530"}, []Request{{Input, 65530, 6}}},
		{"16-bit and 32-bit", 1, []string{"h10s", "h12", "h15s"}, []Request{{Holding, 10, 6}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := planProfile(c.maxGap, c.regs...)
			if got := p.Plan(); !reflect.DeepEqual(got, c.want) {
				t.Errorf("plan %v, want %v", got, c.want)
			}
			checkProfile(t, p)
		})
	}
}

// TestPlanProperty checks checkProfile's plan invariants on random
// profiles: every register read once, at most 125 per request, no two
// requests that could be one.
func TestPlanProperty(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		p := &Profile{Name: "rand", Kind: meter.KindInverter, MaxGap: rapid.IntRange(0, MaxRequest-2).Draw(t, "max_gap")}
		n := rapid.IntRange(1, 9).Draw(t, "n")
		qs := []Quantity{VoltageV, CurrentA, PhasePowerW}
		for i := range n {
			enc := rapid.SampledFrom(Encodings()).Draw(t, "enc")
			r := Register{
				Point:    Point{Quantity: qs[i%3], Phase: i/3 + 1},
				Type:     rapid.SampledFrom([]RegType{Input, Holding}).Draw(t, "type"),
				Address:  uint16(rapid.IntRange(0, 1<<16-enc.Width()).Draw(t, "addr")),
				Encoding: enc, WordOrder: ABCD, Scale: decimal.NewFromInt(1), Unit: qs[i%3].Unit(),
			}
			if checkAgainst(p.Registers, r) == nil {
				p.Registers = append(p.Registers, r)
			}
		}
		checkProfile(t, p)
	})
}
