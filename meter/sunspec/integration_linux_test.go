package sunspec

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/p2pgrid/p2pgrid/internal/testtool"
	"github.com/p2pgrid/p2pgrid/meter"
	"github.com/p2pgrid/p2pgrid/meter/bus"
	"github.com/p2pgrid/p2pgrid/meter/metertest"
)

// countingRegs counts the requests that reach the real bus.
type countingRegs struct {
	r Registers
	n int
}

func (c *countingRegs) ReadHolding(ctx context.Context, unit uint8, addr, count uint16) ([]uint16, error) {
	c.n++
	return c.r.ReadHolding(ctx, unit, addr, count)
}

// TestPymodbusPeer discovers and reads a SunSpec inverter served by a
// Modbus peer we did not write (Debian's pymodbus 3.0.0, through
// metertest.StartPymodbus), over Modbus TCP through meter/bus. The image,
// testdata/pymodbus/registers.json, was laid out from the model JSON by an
// encoder this package does not share (see TestPymodbusImage); every
// register outside it is an exception 2.
func TestPymodbusPeer(t *testing.T) {
	testtool.Integration(t)
	port := testtool.FreePort(t)
	stderr := metertest.StartPymodbus(t, metertest.Pymodbus{Port: port, Image: "testdata/pymodbus/registers.json", Sparse: true})

	b, err := bus.Open(fmt.Sprintf("tcp://127.0.0.1:%d?timeout=1s", port), bus.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	// The server is ready (StartPymodbus waited for it): the marker answers.
	marker, err := b.ReadHolding(ctx, 1, 40000, 2)
	if err != nil {
		t.Fatalf("pymodbus server not answering on port %d: %v\n%s", port, err, stderr.String())
	}
	if marker[0] != 0x5375 || marker[1] != 0x6e53 {
		t.Fatalf("marker %04x", marker)
	}

	regs := &countingRegs{r: b}
	d, err := Discover(ctx, regs, 1)
	if err != nil {
		t.Fatalf("Discover: %v\n%s", err, stderr.String())
	}
	if d.Base != 40000 || len(d.Models) != 2 || d.Source != (Model{ID: 103, Length: 50, Address: 40072}) {
		t.Fatalf("device %+v", d)
	}
	if regs.n != 5 {
		t.Errorf("discovery took %d requests, want 5", regs.n)
	}
	d.Now = clock

	var want meter.Reading
	readJSON(t, "testdata/pymodbus/expected.json", &want)
	wantJSON := jsonOf(t, want)
	for poll := 1; poll <= 2; poll++ {
		n := regs.n
		r, err := d.Read(ctx)
		if err != nil {
			t.Fatalf("poll %d: %v\n%s", poll, err, stderr.String())
		}
		if got := jsonOf(t, r); got != wantJSON {
			t.Fatalf("poll %d:\n got %s\nwant %s", poll, got, wantJSON)
		}
		if regs.n-n != 1 {
			t.Errorf("poll %d took %d requests, want 1", poll, regs.n-n)
		}
	}

	// The end of the image is the end: one register further is an
	// exception from the peer, and the chain walk stopped before it.
	if _, err := b.ReadHolding(ctx, 1, 40000+124, 1); err == nil {
		t.Error("pymodbus answered past the image; the test would not catch an overrun")
	}
	var exc *bus.ExceptionError
	if _, err := b.ReadHolding(ctx, 1, 0, 2); !errors.As(err, &exc) {
		t.Errorf("base 0: %v, want a Modbus exception", err)
	}
}
