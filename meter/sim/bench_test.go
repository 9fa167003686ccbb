package sim

import (
	"context"
	"testing"

	"github.com/p2pgrid/p2pgrid/meter"
	"github.com/p2pgrid/p2pgrid/meter/profile"
	"github.com/p2pgrid/p2pgrid/meter/sunspec"
)

// BenchmarkPollTCP polls a simulated home's grid meter (SDM630 profile) and
// inverter (SunSpec 103) through the whole stack: Modbus TCP on loopback,
// the bus guard, decoding. Requests per poll come from the bus counters.
func BenchmarkPollTCP(b *testing.B) {
	s := frozenSim(b, 1)
	bs := openBus(b, serveTCP(b, s))
	ctx := context.Background()
	p, err := profile.Lookup(MeterProfile)
	if err != nil {
		b.Fatal(err)
	}
	inv, err := sunspec.Discover(ctx, bs, InverterUnit)
	if err != nil {
		b.Fatal(err)
	}
	for _, dev := range []struct {
		name string
		d    meter.Device
	}{{"sdm630", p.Device(bs, MeterUnit)}, {"sunspec103", inv}} {
		b.Run(dev.name, func(b *testing.B) {
			b.ReportAllocs()
			before := bs.Stats().Requests
			for b.Loop() {
				if _, err := dev.d.Read(ctx); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(bs.Stats().Requests-before)/float64(b.N), "requests/op")
		})
	}
}
