package sunspec

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/shopspring/decimal"
)

// exception is a Modbus exception as a fake device answers it.
type exception uint8

func (e exception) Error() string { return fmt.Sprintf("modbus exception %d", uint8(e)) }

const illegalAddress exception = 2

type readCall struct {
	unit        uint8
	addr, count uint16
}

// fakeRegs is an in-memory device: mapped holding registers answer, an
// unmapped one makes the whole read an illegal-address exception (as
// pymodbus does), and every request is recorded. fail makes reads starting
// at an address fail; budget, if set, fails the test past that many reads
// (a chain walk that does not stop).
type fakeRegs struct {
	t      testing.TB
	mem    map[uint16]uint16
	fail   map[uint16]error
	calls  []readCall
	budget int
}

func newFake(t testing.TB) *fakeRegs {
	return &fakeRegs{t: t, mem: map[uint16]uint16{}, fail: map[uint16]error{}}
}

// load maps regs at addr, addr+1, ...
func (f *fakeRegs) load(addr uint16, regs ...uint16) *fakeRegs {
	for i, v := range regs {
		a := int(addr) + i
		if a > 0xFFFF {
			f.t.Fatalf("fake image runs past 65535")
		}
		f.mem[uint16(a)] = v
	}
	return f
}

func (f *fakeRegs) ReadHolding(ctx context.Context, unit uint8, addr, count uint16) ([]uint16, error) {
	f.calls = append(f.calls, readCall{unit, addr, count})
	if f.budget > 0 && len(f.calls) > f.budget {
		f.t.Fatalf("more than %d reads: %v", f.budget, f.calls[len(f.calls)-5:])
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if count == 0 || count > MaxRead {
		return nil, exception(3) // illegal data value
	}
	if err := f.fail[addr]; err != nil {
		return nil, err
	}
	out := make([]uint16, count)
	for i := range out {
		a := int(addr) + i
		v, ok := f.mem[uint16(a)]
		if a > 0xFFFF || !ok {
			return nil, illegalAddress
		}
		out[i] = v
	}
	return out, nil
}

// fixedNow is the clock of every test reading.
var fixedNow = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

func clock() time.Time { return fixedNow }

func dec(s string) decimal.Decimal { return decimal.RequireFromString(s) }

// values builds Block.Values from name, value pairs.
func values(kv ...string) map[string]decimal.Decimal {
	m := map[string]decimal.Decimal{}
	for i := 0; i < len(kv); i += 2 {
		m[kv[i]] = dec(kv[i+1])
	}
	return m
}

func mustImage(t testing.TB, base uint16, blocks ...Block) []uint16 {
	t.Helper()
	regs, err := Image(base, blocks...)
	if err != nil {
		t.Fatal(err)
	}
	return regs
}

// discover runs Discover on f and fails the test on error.
func discover(t testing.TB, f *fakeRegs, unit uint8) *Device {
	t.Helper()
	d, err := Discover(context.Background(), f, unit)
	if err != nil {
		t.Fatal(err)
	}
	d.Now = clock
	return d
}
