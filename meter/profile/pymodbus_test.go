package profile

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/p2pgrid/p2pgrid/internal/testtool"
	"github.com/p2pgrid/p2pgrid/meter/bus"
	"github.com/p2pgrid/p2pgrid/meter/metertest"
)

// TestPymodbusSDM630 polls an SDM630 image served by a Modbus TCP server
// this project did not write, Debian's pymodbus 3.0
// (metertest.StartPymodbus), through meter/bus's real client, and
// checks the reading against the golden expected.json that TestGolden
// reaches through the fake bus.
func TestPymodbusSDM630(t *testing.T) {
	testtool.Integration(t)
	dir := filepath.Join("testdata", "pymodbus")
	port := testtool.FreePort(t)
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	out := metertest.StartPymodbus(t, metertest.Pymodbus{Port: port, Image: filepath.Join(dir, "image.json")})

	b, err := bus.Open("tcp://"+addr, bus.Options{Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// pymodbus serves wire address 0 from the first value (zero_mode):
	// the image's 0x0000 is 0x4366, the high word of 230.1.
	regs, err := b.ReadInput(ctx, 1, 0, 1)
	if err != nil || len(regs) != 1 || regs[0] != 0x4366 {
		t.Fatalf("input register 0 = %04X, %v; want 4366 (an off-by-one in the server's addressing?)\n%s", regs, err, out.String())
	}

	f, _ := readImage(t, dir)
	p, err := Lookup(f.Profile)
	if err != nil {
		t.Fatal(err)
	}
	before := b.Stats().Requests
	r, err := p.Device(b, f.Unit, WithClock(fixedClock)).Read(ctx)
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if n, want := b.Stats().Requests-before, uint64(len(p.Plan())); n != want {
		t.Errorf("the poll made %d requests, the plan has %d", n, want)
	}
	got := readingJSON(t, r)
	want, err := os.ReadFile(filepath.Join(dir, "expected.json"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("reading through pymodbus differs from %s/expected.json\n got: %s\nwant: %s", dir, got, want)
	}
}
