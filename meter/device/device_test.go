package device

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/p2pgrid/p2pgrid/internal/testtool"
	"github.com/p2pgrid/p2pgrid/meter"
	"github.com/p2pgrid/p2pgrid/meter/bus"
	"github.com/p2pgrid/p2pgrid/meter/sim"
	"github.com/p2pgrid/p2pgrid/meter/sunspec"
)

// One constructor for both kinds, against the simulator: unit 1 is an
// SDM630 (a profile), unit 2 a SunSpec inverter.
func TestOpen(t *testing.T) {
	noon := time.Date(2026, 6, 21, 12, 0, 0, 0, time.UTC)
	s, err := sim.New(sim.Options{Homes: sim.DefaultHomes(1, 1), Start: noon, Now: func() time.Time { return noon }})
	if err != nil {
		t.Fatal(err)
	}
	l, err := s.ServeTCP(fmt.Sprintf("127.0.0.1:%d", testtool.FreePort(t)))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	b, err := bus.Open(l.URL, bus.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	clock := func() time.Time { return noon }
	for _, tc := range []struct {
		unit uint8
		name string
		kind meter.Kind
	}{{1, "sdm630", meter.KindMeter}, {2, SunSpec, meter.KindInverter}} {
		d, err := Open(b, tc.unit, tc.name, Options{Now: clock})
		if err != nil {
			t.Fatal(err)
		}
		r, err := d.Read(context.Background())
		if err != nil || r.Kind != tc.kind || r.PowerW == nil || !r.Time.Equal(noon) {
			t.Errorf("%s at unit %d: %+v %v", tc.name, tc.unit, r, err)
		}
		if _, lazy := d.(*sunspec.Lazy); lazy != (tc.name == SunSpec) {
			t.Errorf("%s: a %T", tc.name, d)
		}
	}
	for _, tc := range []struct {
		unit uint8
		name string
		want string
	}{{1, "sdm999", `profile "sdm999"`}, {0, "sdm630", "unit 0"}, {248, SunSpec, "unit 248"}} {
		if _, err := Open(b, tc.unit, tc.name, Options{}); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Open(%d, %q): %v, want an error with %q", tc.unit, tc.name, err, tc.want)
		}
	}
}
