package device

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/p2pgrid/p2pgrid/meter"
	"github.com/p2pgrid/p2pgrid/meter/bus"
	"github.com/p2pgrid/p2pgrid/meter/metertest"
	"github.com/p2pgrid/p2pgrid/meter/sunspec"
)

// Over a real bus, with its timeouts and retries: looking at 40000 and 0
// takes longer than one poll's deadline, yet polls find the inverter, and
// discovery ran once (each base asked once per attempt, not once per poll).
func TestSunSpecAtALaterBaseBehindTimeouts(t *testing.T) {
	// An inverter whose SunSpec image is at 50000 only: reads at 40000 and
	// 0 get no reply at all (as on devices that drop requests to unmapped
	// blocks), and every reply takes 20ms.
	regs, err := sunspec.Image(50000, sunspec.Common("Slow Solar", "SS-1", "SN-7"),
		sunspec.Block{ID: 103, Values: map[string]decimal.Decimal{"W": decimal.NewFromInt(2100), "WH": decimal.NewFromInt(777)}})
	if err != nil {
		t.Fatal(err)
	}
	d := metertest.NewTCP(t)
	d.SetHolding(1, 50000, regs...)
	d.Silence(1, 40000, 0)
	d.SetDelay(20 * time.Millisecond)
	b, err := bus.Open(d.URL(), bus.Options{Timeout: 200 * time.Millisecond, Backoff: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	dev, err := Open(b, 1, SunSpec, Options{})
	if err != nil {
		t.Fatal(err)
	}
	const pollDeadline = 300 * time.Millisecond // what a poll allows one read
	var r meter.Reading
	polls := 0
	for deadline := time.Now().Add(10 * time.Second); ; polls++ {
		ctx, cancel := context.WithTimeout(context.Background(), pollDeadline)
		r, err = dev.Read(ctx)
		cancel()
		if err == nil {
			break
		}
		if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "discovery still running") {
			t.Fatalf("poll %d: %v", polls, err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("not found after %d polls", polls)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if r.Kind != meter.KindInverter || r.PowerW == nil || *r.PowerW != 2100 || r.Manufacturer != "Slow Solar" {
		t.Errorf("reading %+v", r)
	}
	if polls < 2 {
		t.Errorf("found after %d polls: discovery was not longer than a poll", polls)
	}
	attempts := 1 + bus.DefaultRetries
	if a, z, f := d.Asked(1, 40000), d.Asked(1, 0), d.Asked(1, 50000); a != attempts || z != attempts || f != 1 {
		t.Errorf("marker reads at 40000, 0, 50000: %d, %d, %d; want %d, %d, 1: one discovery", a, z, f, attempts, attempts)
	}
}
