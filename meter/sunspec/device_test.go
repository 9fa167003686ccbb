package sunspec

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/p2pgrid/p2pgrid/meter"
)

// inverter103 is a plain three-phase inverter image.
func inverter103(t testing.TB, base uint16) []uint16 {
	return mustImage(t, base, Common("Acme Solar", "AS-5000", "SN-0042"),
		Block{ID: 103, Values: values("W", "3200", "WH", "12345678", "Hz", "50.01",
			"PhVphA", "230.1", "PhVphB", "231.2", "PhVphC", "229.9",
			"AphA", "4.64", "AphB", "4.62", "AphC", "4.66")})
}

func checkInverter103(t testing.TB, r meter.Reading) {
	t.Helper()
	if r.Kind != meter.KindInverter || r.Device != "sunspec" || !r.Time.Equal(fixedNow) {
		t.Errorf("kind %q device %q time %v", r.Kind, r.Device, r.Time)
	}
	if r.Manufacturer != "Acme Solar" || r.Model != "AS-5000" || r.Serial != "SN-0042" {
		t.Errorf("identity %q %q %q", r.Manufacturer, r.Model, r.Serial)
	}
	if !eqF(r.PowerW, 3200) || !eqI(r.ExportWh, 12345678) || r.ImportWh != nil || !eqF(r.FrequencyHz, 50.01) {
		t.Errorf("power %v export %v import %v hz %v", r.PowerW, r.ExportWh, r.ImportWh, r.FrequencyHz)
	}
	if len(r.VoltageV) != 3 || !eqF(r.VoltageV[0], 230.1) || !eqF(r.VoltageV[1], 231.2) || !eqF(r.VoltageV[2], 229.9) {
		t.Errorf("voltages %v", r.VoltageV)
	}
	if len(r.CurrentA) != 3 || !eqF(r.CurrentA[0], 4.64) || !eqF(r.CurrentA[2], 4.66) {
		t.Errorf("currents %v", r.CurrentA)
	}
	if r.PhasePowerW != nil {
		t.Errorf("an inverter has phase powers %v", r.PhasePowerW)
	}
}

func TestDiscoverAtEachBase(t *testing.T) {
	tests := []struct {
		name   string
		base   uint16
		setup  func(f *fakeRegs)
		probes []uint16 // marker reads, in order
	}{
		{"40000", 40000, func(f *fakeRegs) {}, []uint16{40000}},
		{"0 after exception at 40000", 0, func(f *fakeRegs) {}, []uint16{40000, 0}},
		{"0 after error at 40000", 0, func(f *fakeRegs) { f.fail[40000] = errors.New("i/o timeout") }, []uint16{40000, 0}},
		{"50000 after exception and garbage", 50000, func(f *fakeRegs) { f.load(0, 0x1234, 0x5678) }, []uint16{40000, 0, 50000}},
		{"50000 after half a marker", 50000, func(f *fakeRegs) { f.load(40000, 0x5375, 0) }, []uint16{40000, 0, 50000}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t).load(tt.base, inverter103(t, tt.base)...)
			tt.setup(f)
			d := discover(t, f, 7)
			if d.Base != tt.base || d.Unit != 7 {
				t.Fatalf("base %d unit %d, want %d 7", d.Base, d.Unit, tt.base)
			}
			var probes []uint16
			for _, c := range f.calls[:len(tt.probes)] {
				if c.count != 2 || c.unit != 7 {
					t.Fatalf("probe %+v", c)
				}
				probes = append(probes, c.addr)
			}
			if !slices.Equal(probes, tt.probes) {
				t.Fatalf("probed %v, want %v", probes, tt.probes)
			}
			want := []Model{{1, 66, tt.base + 4}, {103, 50, tt.base + 72}}
			if !slices.Equal(d.Models, want) || d.Source != want[1] || d.Kind != meter.KindInverter {
				t.Fatalf("models %v source %v kind %q", d.Models, d.Source, d.Kind)
			}
			r, err := d.Read(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if r.Unit != 7 {
				t.Fatalf("reading unit %d", r.Unit)
			}
			checkInverter103(t, r)
		})
	}
}

func TestDiscoverNotSunSpec(t *testing.T) {
	t.Run("nothing mapped", func(t *testing.T) {
		f := newFake(t)
		_, err := Discover(context.Background(), f, 1)
		if !errors.Is(err, ErrNotSunSpec) || !errors.Is(err, illegalAddress) {
			t.Fatalf("error %v, want ErrNotSunSpec wrapping the exception", err)
		}
		for _, s := range []string{"unit 1", "40000: modbus exception 2", "0: modbus exception 2", "50000: modbus exception 2"} {
			if !strings.Contains(err.Error(), s) {
				t.Errorf("error %q does not say %q", err, s)
			}
		}
		if len(f.calls) != 3 {
			t.Errorf("%d reads, want 3", len(f.calls))
		}
	})
	t.Run("zeros everywhere", func(t *testing.T) {
		f := newFake(t).load(0, 0, 0).load(40000, 0, 0).load(50000, 'S'<<8|'u', 'N'<<8|'S')
		_, err := Discover(context.Background(), f, 1)
		if !errors.Is(err, ErrNotSunSpec) || !strings.Contains(err.Error(), "40000: 0x0000 0x0000") || !strings.Contains(err.Error(), "50000: 0x5375 0x4e53") {
			t.Fatalf("error %v", err)
		}
	})
	t.Run("timeouts", func(t *testing.T) {
		timeout := errors.New("i/o timeout")
		f := newFake(t)
		for _, b := range bases {
			f.fail[b] = timeout
		}
		_, err := Discover(context.Background(), f, 1)
		if !errors.Is(err, ErrNotSunSpec) || !errors.Is(err, timeout) {
			t.Fatalf("error %v, want ErrNotSunSpec and the timeout", err)
		}
	})
}

func TestDiscoverCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	f := newFake(t).load(50000, inverter103(t, 50000)...)
	_, err := Discover(ctx, f, 1)
	if !errors.Is(err, context.Canceled) || errors.Is(err, ErrNotSunSpec) {
		t.Fatalf("error %v, want context.Canceled and not ErrNotSunSpec", err)
	}
	if len(f.calls) > 1 {
		t.Fatalf("%d reads after cancel", len(f.calls))
	}
}

// chain lays out a marker at base and then each model (ID, L, L registers
// of filler, or the given data), then an end marker unless noEnd.
type rawModel struct {
	id, l uint16
	data  []uint16
}

func chain(t testing.TB, base uint16, end bool, ms ...rawModel) *fakeRegs {
	f := newFake(t).load(base, marker[0], marker[1])
	addr := int(base) + 2
	for _, m := range ms {
		f.load(uint16(addr), m.id, m.l)
		data := m.data
		if data == nil {
			data = make([]uint16, min(int(m.l), 0xFFFF-addr-1))
			for i := range data {
				data[i] = 0xFFFF
			}
		}
		f.load(uint16(addr+2), data...)
		addr += 2 + int(m.l)
	}
	if end {
		f.load(uint16(addr), 0xFFFF, 0)
	}
	return f
}

func commonData(t testing.TB) []uint16 {
	return mustImage(t, 0, Common("Acme", "M", "S"))[4 : 4+66]
}

func TestChainWalk(t *testing.T) {
	inv := modelData(t, Block{ID: 103, Values: values("W", "1000", "WH", "5000")})
	mtr := modelData(t, Block{ID: 203, Values: values("W", "-700", "TotWhImp", "100", "TotWhExp", "200")})
	t.Run("skips unknown and vendor models", func(t *testing.T) {
		f := chain(t, 40000, true,
			rawModel{1, 66, commonData(t)},
			rawModel{120, 26, nil},  // nameplate: not read
			rawModel{64001, 5, nil}, // vendor
			rawModel{103, 50, inv},
			rawModel{160, 48, nil})
		d := discover(t, f, 1)
		want := []Model{{1, 66, 40004}, {120, 26, 40072}, {64001, 5, 40100}, {103, 50, 40107}, {160, 48, 40159}}
		if !slices.Equal(d.Models, want) || d.Source != want[3] {
			t.Fatalf("models %v source %v", d.Models, d.Source)
		}
		r, err := d.Read(context.Background())
		if err != nil || !eqF(r.PowerW, 1000) || !eqI(r.ExportWh, 5000) {
			t.Fatalf("read %+v %v", r, err)
		}
	})
	t.Run("first supported model wins", func(t *testing.T) {
		f := chain(t, 40000, true, rawModel{1, 66, commonData(t)}, rawModel{203, 105, mtr}, rawModel{103, 50, inv})
		d := discover(t, f, 1)
		if d.Source.ID != 203 || d.Kind != meter.KindMeter {
			t.Fatalf("source %v kind %q", d.Source, d.Kind)
		}
		r, err := d.Read(context.Background())
		if err != nil || r.Kind != meter.KindMeter || !eqF(r.PowerW, -700) || !eqI(r.ImportWh, 100) || !eqI(r.ExportWh, 200) {
			t.Fatalf("read %+v %v", r, err)
		}
	})
	t.Run("longer model than its definition", func(t *testing.T) {
		long := append(slices.Clone(inv), 1, 2, 3, 4, 5, 6, 7, 8, 9, 10)
		f := chain(t, 40000, true, rawModel{1, 66, commonData(t)}, rawModel{103, 60, long})
		d := discover(t, f, 1)
		n := len(f.calls)
		r, err := d.Read(context.Background())
		if err != nil || !eqF(r.PowerW, 1000) {
			t.Fatalf("read %+v %v", r, err)
		}
		if c := f.calls[n]; c.count != 50 || c.addr != d.Source.Address {
			t.Fatalf("read %+v, want 50 registers at %d", c, d.Source.Address)
		}
	})
	t.Run("short common model", func(t *testing.T) {
		f := chain(t, 40000, true, rawModel{1, 65, commonData(t)[:65]}, rawModel{103, 50, inv})
		d := discover(t, f, 1)
		if d.Manufacturer != "Acme" || d.Serial != "S" {
			t.Fatalf("identity %q %q", d.Manufacturer, d.Serial)
		}
		f = chain(t, 40000, true, rawModel{1, 20, commonData(t)[:20]}, rawModel{103, 50, inv})
		d = discover(t, f, 1)
		if d.Manufacturer != "Acme" || d.ModelName != "" || d.Serial != "" {
			t.Fatalf("identity %q %q %q", d.Manufacturer, d.ModelName, d.Serial)
		}
	})
	t.Run("64 models is the limit", func(t *testing.T) {
		ms := []rawModel{{1, 66, commonData(t)}, {103, 50, inv}}
		for len(ms) < MaxModels {
			ms = append(ms, rawModel{64002, 0, nil})
		}
		d := discover(t, chain(t, 0, true, ms...), 1)
		if len(d.Models) != MaxModels {
			t.Fatalf("%d models", len(d.Models))
		}
	})
}

func TestChainGarbage(t *testing.T) {
	tests := []struct {
		name string
		f    func(t *testing.T) *fakeRegs
		want string
		is   error
	}{
		{"wraps back to the start (a loop in 16 bits)", func(t *testing.T) *fakeRegs {
			// 40072 + 2 + L ≡ 40000 (mod 65536)
			return chain(t, 40000, false, rawModel{1, 66, commonData(t)}, rawModel{64100, 65464, nil})
		}, "model 64100 at 40070 with length 65464 runs past register 65535", ErrBadChain},
		{"runs past 65535", func(t *testing.T) *fakeRegs {
			return chain(t, 50000, false, rawModel{1, 66, commonData(t)}, rawModel{103, 50, nil}, rawModel{64100, 30000, nil})
		}, "runs past register 65535", ErrBadChain},
		{"ends exactly at 65535 with no room for the end marker", func(t *testing.T) *fakeRegs {
			return chain(t, 50000, false, rawModel{1, 66, commonData(t)}, rawModel{64100, 65536 - 50072, nil})
		}, "model header at 65536 runs past register 65535", ErrBadChain},
		{"no end marker, empty models", func(t *testing.T) *fakeRegs {
			ms := []rawModel{{1, 66, commonData(t)}}
			for range 100 {
				ms = append(ms, rawModel{0, 0, nil})
			}
			return chain(t, 40000, false, ms...)
		}, "more than 64 models, no end marker", ErrBadChain},
		{"first model not common", func(t *testing.T) *fakeRegs {
			return chain(t, 40000, true, rawModel{103, 50, nil})
		}, "first model at 40002 is 103, want the common model 1", ErrBadChain},
		{"no models", func(t *testing.T) *fakeRegs {
			return chain(t, 40000, true)
		}, "end marker right after the SunSpec marker", ErrBadChain},
		{"chain runs into unmapped registers", func(t *testing.T) *fakeRegs {
			return chain(t, 40000, false, rawModel{1, 66, commonData(t)}, rawModel{103, 50, nil})
		}, "unit 3: model header at 40122: modbus exception 2", illegalAddress},
		{"no readable model", func(t *testing.T) *fakeRegs {
			return chain(t, 40000, true, rawModel{1, 66, commonData(t)}, rawModel{120, 26, nil}, rawModel{64001, 2, nil})
		}, "unit 3: models 1, 120, 64001", ErrUnsupported},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := tt.f(t)
			f.budget = MaxModels + 10
			d, err := Discover(context.Background(), f, 3)
			if d != nil || !errors.Is(err, tt.is) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Discover = %v, %v; want an error wrapping %v containing %q", d, err, tt.is, tt.want)
			}
		})
	}
}

// Reading a discovered device takes exactly one request per poll: the
// model block with its scale factors.
func TestRequestsPerPoll(t *testing.T) {
	for _, tt := range []struct {
		name      string
		base      uint16
		block     Block
		discovery int // marker probes + headers + common
		count     uint16
	}{
		{"103 at 40000", 40000, Block{ID: 103, Values: values("W", "1")}, 1 + 3 + 1, 50},
		{"103 at 50000", 50000, Block{ID: 103, Values: values("W", "1")}, 3 + 3 + 1, 50},
		{"113", 40000, Block{ID: 113, Values: values("W", "1")}, 5, 60},
		{"203", 0, Block{ID: 203, Values: values("W", "1")}, 2 + 3 + 1, 105},
		{"213 (124 registers)", 40000, Block{ID: 213, Values: values("W", "1")}, 5, 124},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t).load(tt.base, mustImage(t, tt.base, Common("a", "b", "c"), tt.block)...)
			d := discover(t, f, 1)
			if len(f.calls) != tt.discovery {
				t.Fatalf("discovery took %d reads, want %d: %v", len(f.calls), tt.discovery, f.calls)
			}
			for poll := 1; poll <= 3; poll++ {
				n := len(f.calls)
				r, err := d.Read(context.Background())
				if err != nil || !eqF(r.PowerW, 1) {
					t.Fatalf("poll %d: %+v %v", poll, r, err)
				}
				got := f.calls[n:]
				if len(got) != 1 || got[0].addr != d.Source.Address || got[0].count != tt.count {
					t.Fatalf("poll %d: reads %v, want one of %d at %d", poll, got, tt.count, d.Source.Address)
				}
			}
		})
	}
}

// shortRegs answers every read with one register too few.
type shortRegs struct{ *fakeRegs }

func (s shortRegs) ReadHolding(ctx context.Context, unit uint8, addr, count uint16) ([]uint16, error) {
	regs, err := s.fakeRegs.ReadHolding(ctx, unit, addr, count)
	if err != nil || addr != 40072 {
		return regs, err
	}
	return regs[:len(regs)-1], nil
}

func TestReadErrors(t *testing.T) {
	t.Run("short answer", func(t *testing.T) {
		f := newFake(t).load(40000, inverter103(t, 40000)...)
		d, err := Discover(context.Background(), shortRegs{f}, 1)
		if err != nil {
			t.Fatal(err)
		}
		_, err = d.Read(context.Background())
		if !errors.Is(err, ErrBadData) || !strings.Contains(err.Error(), "asked for 50 registers at 40072, got 49") {
			t.Fatalf("error %v", err)
		}
	})
	t.Run("transport error", func(t *testing.T) {
		f := newFake(t).load(40000, inverter103(t, 40000)...)
		d := discover(t, f, 9)
		boom := errors.New("connection reset")
		f.fail[40072] = boom
		_, err := d.Read(context.Background())
		if !errors.Is(err, boom) || !strings.Contains(err.Error(), "unit 9: model 103 at 40072") {
			t.Fatalf("error %v", err)
		}
	})
	t.Run("bad scale factor names the unit", func(t *testing.T) {
		f := newFake(t).load(40000, inverter103(t, 40000)...)
		d := discover(t, f, 9)
		def, _ := Definition(103)
		sf, _ := def.Point("W_SF")
		f.mem[d.Source.Address+sf.Offset] = 12
		_, err := d.Read(context.Background())
		if !errors.Is(err, ErrBadData) || !strings.HasPrefix(err.Error(), "unit 9: model 103 point W: scale factor W_SF is 12") {
			t.Fatalf("error %v", err)
		}
	})
	t.Run("not discovered", func(t *testing.T) {
		if _, err := (&Device{}).Read(context.Background()); err == nil {
			t.Fatal("no error")
		}
	})
}

func TestReadDefaultClock(t *testing.T) {
	f := newFake(t).load(40000, inverter103(t, 40000)...)
	d, err := Discover(context.Background(), f, 1)
	if err != nil {
		t.Fatal(err)
	}
	r, err := d.Read(context.Background())
	if err != nil || r.Time.IsZero() || r.Fresh(r.Time, 1) != nil {
		t.Fatalf("time %v %v", r.Time, err)
	}
	d.Now = clock
	if r, _ := d.Read(context.Background()); !r.Time.Equal(fixedNow) {
		t.Fatalf("injected clock ignored: %v", r.Time)
	}
}

func ExampleDiscover() {
	regs, _ := Image(40000, Common("Acme Solar", "AS-5000", "SN-0042"),
		Block{ID: 103, Values: values("W", "3200", "WH", "12345678", "Hz", "50.01")})
	f := newFake(nil).load(40000, regs...)
	d, err := Discover(context.Background(), f, 1)
	if err != nil {
		fmt.Println(err)
		return
	}
	r, _ := d.Read(context.Background())
	fmt.Println(d.Manufacturer, d.ModelName, d.Kind, d.Source.ID, *r.PowerW, *r.ExportWh, *r.FrequencyHz)
	// Output: Acme Solar AS-5000 inverter 103 3200 12345678 50.01
}
