package profile

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

// fakeBus is a device that serves a register image, every register not in
// it reading 0, and counts the requests. It does not allocate per read.
type fakeBus struct {
	tables   map[RegType][]uint16 // 65536 registers each
	requests int
	log      []Request // the requests, if record
	record   bool
	err      error // returned by every read, if set
	short    bool  // answer one register too few
}

func newFakeBus(img map[RegType]map[uint16]uint16) *fakeBus {
	f := &fakeBus{tables: map[RegType][]uint16{Input: make([]uint16, 1<<16), Holding: make([]uint16, 1<<16)}, record: true}
	for t, regs := range img {
		for a, v := range regs {
			f.tables[t][a] = v
		}
	}
	return f
}

func (f *fakeBus) read(t RegType, addr, count uint16) ([]uint16, error) {
	f.requests++
	if f.record {
		f.log = append(f.log, Request{Type: t, Address: addr, Count: count})
	}
	if f.err != nil {
		return nil, f.err
	}
	if count == 0 || count > MaxRequest || int(addr)+int(count) > 1<<16 {
		return nil, fmt.Errorf("fake: illegal data address %s %d+%d", t, addr, count)
	}
	regs := f.tables[t][addr : int(addr)+int(count)]
	if f.short {
		regs = regs[:len(regs)-1]
	}
	return regs, nil
}

func (f *fakeBus) ReadHolding(_ context.Context, _ uint8, addr, count uint16) ([]uint16, error) {
	return f.read(Holding, addr, count)
}

func (f *fakeBus) ReadInput(_ context.Context, _ uint8, addr, count uint16) ([]uint16, error) {
	return f.read(Input, addr, count)
}

var _ Registers = (*fakeBus)(nil)

// goldenTime stamps every reading of the tests.
var goldenTime = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

func fixedClock() time.Time { return goldenTime }

// builtin returns the built-in profile name, failing t if it is missing.
func builtin(t testing.TB, name string) *Profile {
	t.Helper()
	all, err := Builtin()
	if err != nil {
		t.Fatal(err)
	}
	p, ok := all[name]
	if !ok {
		t.Fatalf("no built-in profile %q", name)
	}
	return p
}

var errFakeBus = errors.New("fake bus: timeout")
