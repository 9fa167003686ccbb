package sim

import (
	"context"
	"fmt"
	"math"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/p2pgrid/p2pgrid/internal/testtool"
	"github.com/p2pgrid/p2pgrid/meter"
	"github.com/p2pgrid/p2pgrid/meter/bus"
	"github.com/p2pgrid/p2pgrid/meter/profile"
	"github.com/p2pgrid/p2pgrid/meter/sunspec"
)

// frozenSim is a simulation whose clock stands still at noon, so that every
// client sees the same values.
func frozenSim(t testing.TB, homes int) *Sim {
	t.Helper()
	wall := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s, err := New(Options{Homes: DefaultHomes(homes, 3), Start: noon, Speed: 1, Now: func() time.Time { return wall }})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func serveTCP(t testing.TB, s *Sim, homes ...int) string {
	t.Helper()
	addr := fmt.Sprintf("127.0.0.1:%d", testtool.FreePort(t))
	l, err := s.ServeTCP(addr, homes...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l.URL
}

func openBus(t testing.TB, url string) *bus.Bus {
	t.Helper()
	b, err := bus.Open(url, bus.Options{Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// The meter and the inverter of a home read back, through the real Modbus
// client and the same profile and SunSpec code a gateway uses, as the
// home's state.
func TestReadSimulatedHome(t *testing.T) {
	s := frozenSim(t, 1)
	b := openBus(t, serveTCP(t, s))
	ctx := context.Background()
	want := s.Homes()[0].At(s.Now())

	p, err := profile.Lookup(MeterProfile)
	if err != nil {
		t.Fatal(err)
	}
	m, err := p.Device(b, MeterUnit).Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if *m.PowerW != float64(want.GridW) || *m.ImportWh != want.ImportWh || *m.ExportWh != want.ExportWh ||
		*m.FrequencyHz != want.FrequencyHz || len(m.VoltageV) != 3 || *m.VoltageV[1] != want.VoltageV[1] {
		t.Errorf("meter reads %s, home state %+v", js(m), want)
	}

	d, err := sunspec.Discover(ctx, b, InverterUnit)
	if err != nil {
		t.Fatal(err)
	}
	inv, err := d.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if inv.Kind != meter.KindInverter || *inv.PowerW != float64(want.PVW) || *inv.ExportWh != want.PVWh ||
		inv.Serial != "SIM-home1" || inv.Model != "sim-inverter-103" {
		t.Errorf("inverter reads %s, home state %+v", js(inv), want)
	}
}

// Every home on one port, by unit id, with both inverter models.
func TestSharedPortUnits(t *testing.T) {
	s := frozenSim(t, 3) // home3 (index 2) has a model 113 inverter
	b := openBus(t, serveTCP(t, s))
	ctx := context.Background()
	for i, h := range s.Homes() {
		d, err := sunspec.Discover(ctx, b, SharedInverterUnit(i))
		if err != nil {
			t.Fatalf("home %d: %v", i, err)
		}
		r, err := d.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		st := h.At(s.Now())
		if *r.ExportWh != st.PVWh || r.Model != fmt.Sprintf("sim-inverter-%d", h.Spec().InverterModel) {
			t.Errorf("home %d inverter: %s, want %d Wh from model %d", i, js(r), st.PVWh, h.Spec().InverterModel)
		}
	}
	if _, err := b.ReadInput(ctx, 99, 0, 2); err == nil {
		t.Error("unit 99 answered")
	}
}

// mbpoll, a Modbus client this project did not write, reads the simulated
// SDM630 and sees the same registers, and the same float values, as our
// reader.
func TestMbpollReadsSimulator(t *testing.T) {
	testtool.Integration(t)
	mbpoll := testtool.Require(t, "mbpoll", "apt-get install mbpoll")
	s := frozenSim(t, 1)
	url := serveTCP(t, s)
	port := strings.TrimPrefix(url, "tcp://127.0.0.1:")
	b := openBus(t, url)
	ctx := context.Background()

	run := func(args ...string) map[int]string {
		t.Helper()
		args = append([]string{"-m", "tcp", "-p", port, "-a", "1", "-0", "-1"}, args...)
		out, err := exec.Command(mbpoll, append(args, "127.0.0.1")...).CombinedOutput()
		if err != nil {
			t.Fatalf("mbpoll %v: %v\n%s", args, err, out)
		}
		vals := map[int]string{}
		for _, m := range regexp.MustCompile(`(?m)^\[(\d+)\]:\s+(\S+)`).FindAllStringSubmatch(string(out), -1) {
			n, _ := strconv.Atoi(m[1])
			vals[n] = m[2]
		}
		return vals
	}

	// Raw registers: identical to what our client reads.
	raw := run("-t", "3:hex", "-r", "0", "-c", "76")
	ours, err := b.ReadInput(ctx, MeterUnit, 0, 76)
	if err != nil {
		t.Fatal(err)
	}
	if len(raw) != 76 {
		t.Fatalf("mbpoll returned %d registers, want 76", len(raw))
	}
	for i, v := range ours {
		if raw[i] != fmt.Sprintf("0x%04X", v) {
			t.Errorf("register %d: mbpoll %s, ours 0x%04X", i, raw[i], v)
		}
	}

	// Floats: mbpoll's reading of each SDM630 value (big-endian words)
	// equals ours to the 6 significant digits mbpoll prints.
	p, _ := profile.Lookup(MeterProfile)
	r, err := p.Device(b, MeterUnit).Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	floats := run("-t", "3:float", "-B", "-r", "0", "-c", "38")
	want := map[int]float64{
		0: *r.VoltageV[0], 2: *r.VoltageV[1], 4: *r.VoltageV[2], 6: *r.CurrentA[0], 12: *r.PhasePowerW[0],
		52: *r.PowerW, 70: *r.FrequencyHz, 72: float64(*r.ImportWh) / 1000, 74: float64(*r.ExportWh) / 1000,
	}
	for addr, w := range want {
		got, err := strconv.ParseFloat(floats[addr], 64)
		if err != nil {
			t.Errorf("mbpoll value at %d: %q", addr, floats[addr])
			continue
		}
		if math.Abs(got-w) > 5e-6*math.Max(1, math.Abs(w)) {
			t.Errorf("register %d: mbpoll reads %g, our reader %g", addr, got, w)
		}
	}
}

// Modbus RTU over a socat pty pair: the simulator serves one end, our RTU
// client reads the other.
func TestRTUOverPty(t *testing.T) {
	testtool.Integration(t)
	a, z := testtool.PtyPair(t, t.TempDir())

	s := frozenSim(t, 2)
	l, err := s.ServeRTU(a, RTUOptions{Baud: 19200})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	b := openBus(t, "rtu://"+z+"?baud=19200")
	ctx := context.Background()
	p, _ := profile.Lookup(MeterProfile)
	for i, h := range s.Homes() {
		r, err := p.Device(b, SharedMeterUnit(i)).Read(ctx)
		if err != nil {
			t.Fatalf("home %d meter over RTU: %v", i, err)
		}
		if st := h.At(s.Now()); *r.ImportWh != st.ImportWh || *r.PowerW != float64(st.GridW) {
			t.Errorf("home %d: read %s, state %+v", i, js(r), st)
		}
		d, err := sunspec.Discover(ctx, b, SharedInverterUnit(i))
		if err != nil {
			t.Fatalf("home %d inverter over RTU: %v", i, err)
		}
		if d.Serial != "SIM-"+h.Spec().Name {
			t.Errorf("home %d: serial %q", i, d.Serial)
		}
	}
}

func js(r meter.Reading) string {
	return fmt.Sprintf("%+v", r)
}
