package gateway

import (
	"context"
	"crypto/ed25519"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/p2pgrid/p2pgrid/gateway/config"
	"github.com/p2pgrid/p2pgrid/gateway/gatewaytest"
	"github.com/p2pgrid/p2pgrid/gateway/protocol"
	"github.com/p2pgrid/p2pgrid/meter"
)

// fakeMeter is a device a test drives: it fails while fail is set, and
// while hold is open each Read waits for it to close (or for its context).
// Every Read is signalled on reads, if set.
type fakeMeter struct {
	mu    sync.Mutex
	fail  bool
	hold  chan struct{}
	n     int
	power float64
	reads chan string
	name  string
}

func (f *fakeMeter) Read(ctx context.Context) (meter.Reading, error) {
	f.mu.Lock()
	f.n++
	hold, fail, power := f.hold, f.fail, f.power
	f.mu.Unlock()
	if f.reads != nil {
		f.reads <- f.name
	}
	if hold != nil {
		select {
		case <-hold:
		case <-ctx.Done():
			return meter.Reading{}, ctx.Err()
		}
	}
	if fail {
		return meter.Reading{}, errors.New("modbus tcp://10.0.0.2:502 unit 1: timeout")
	}
	return meter.Reading{Kind: meter.KindMeter, PowerW: meter.F(power), ImportWh: meter.Wh(1000), ExportWh: meter.Wh(2000)}, nil
}

func (f *fakeMeter) set(fn func(f *fakeMeter)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

func (f *fakeMeter) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.n
}

// logRecords keeps every log record.
type logRecords struct {
	mu  sync.Mutex
	all []slog.Record
}

func (l *logRecords) Enabled(context.Context, slog.Level) bool { return true }
func (l *logRecords) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.all = append(l.all, r.Clone())
	return nil
}
func (l *logRecords) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *logRecords) WithGroup(string) slog.Handler      { return l }

// find returns the records with message msg at level, as "k=v ..." text.
func (l *logRecords) find(level slog.Level, msg string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, r := range l.all {
		if r.Level == level && r.Message == msg {
			var b strings.Builder
			r.Attrs(func(a slog.Attr) bool { b.WriteString(a.String() + " "); return true })
			out = append(out, b.String())
		}
	}
	return out
}

// clock is a hand-moved clock, safe for concurrent use.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// deviceGateway is a gateway with the given devices and no neighbours.
func deviceGateway(t *testing.T, devs []Device, sync bool, logs *logRecords, clk *clock) (*Gateway, *prometheus.Registry) {
	t.Helper()
	roster, err := protocol.NewRoster("c1", []protocol.Member{
		{ID: "home1", PublicKey: testKey("home1").Public().(ed25519.PublicKey)},
		{ID: "operator", PublicKey: testKey("operator").Public().(ed25519.PublicKey), Clearer: true}})
	if err != nil {
		t.Fatal(err)
	}
	if logs == nil {
		logs = &logRecords{}
	}
	reg := prometheus.NewRegistry()
	g, err := New(Options{Config: testConfig("home1", config.ClearerNone), Key: testKey("home1"), Roster: roster,
		MQTT: gatewaytest.NewHub().Client("home1"), Devices: devs, Now: clk.now, Logger: slog.New(logs),
		Registry: reg, SyncPolls: sync})
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Start(); err != nil {
		t.Fatal(err)
	}
	return g, reg
}

// waitRead waits for the next read of a device named name.
func waitRead(t *testing.T, reads chan string, name string) {
	t.Helper()
	timeout := time.After(5 * time.Second)
	for {
		select {
		case n := <-reads:
			if n == name {
				return
			}
		case <-timeout:
			t.Fatalf("no read of %s within 5 s", name)
		}
	}
}

// A slow device on one bus does not delay the grid meter on another; a
// device on the slow device's bus waits for it (one bus, one queue), and
// Tick waits for neither.
func TestPollBusesIndependently(t *testing.T) {
	reads := make(chan string, 100)
	grid := &fakeMeter{name: "grid", reads: reads, power: 500}
	pv := &fakeMeter{name: "pv", reads: reads, hold: make(chan struct{})}
	pv2 := &fakeMeter{name: "pv2", reads: reads}
	clk := &clock{t: t0}
	g, _ := deviceGateway(t, []Device{
		{Name: "grid", Role: config.RoleGrid, Poll: time.Second, Bus: "tcp://10.0.0.1:502", Reader: grid},
		{Name: "pv", Role: config.RolePV, Poll: time.Second, Bus: "tcp://10.0.0.2:502", Reader: pv},
		{Name: "pv2", Role: config.RolePV, Poll: time.Second, Bus: "tcp://10.0.0.2:502", Reader: pv2},
	}, false, nil, clk)
	defer g.WaitPolls()
	defer close(pv.hold)

	for i := range 5 {
		now := t0.Add(time.Duration(i) * time.Second)
		clk.set(now)
		start := time.Now()
		g.Tick(context.Background(), now)
		if d := time.Since(start); d > 500*time.Millisecond {
			t.Fatalf("tick %d took %s: it waited for a device", i, d)
		}
		waitRead(t, reads, "grid")
		for idle := false; !idle; time.Sleep(time.Millisecond) { // the grid's worker is done
			g.devices.mu.Lock()
			idle = !g.devices.busy[0]
			g.devices.mu.Unlock()
		}
	}
	if n := grid.count(); n != 5 {
		t.Errorf("grid read %d times in 5 ticks, want 5", n)
	}
	if n := pv.count(); n != 1 {
		t.Errorf("the stuck pv was read %d times, want once (its bus is busy)", n)
	}
	if n := pv2.count(); n != 0 {
		t.Errorf("pv2, behind pv on the same bus, was read %d times while pv holds the bus", n)
	}
	if h := g.Health(); h.Devices["grid"] != "ok" {
		t.Errorf("health %+v", h)
	}
}

// Health runs on the HTTP goroutine while the loop polls: device state has
// its own lock (run with -race).
func TestHealthWhilePolling(t *testing.T) {
	clk := &clock{t: t0}
	m := &fakeMeter{power: 100}
	g, _ := deviceGateway(t, []Device{{Name: "grid", Role: config.RoleGrid, Poll: time.Second, Reader: m}}, false, nil, clk)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 200 {
			g.Health()
		}
	}()
	for i := range 50 {
		now := t0.Add(time.Duration(i) * time.Second)
		clk.set(now)
		m.set(func(f *fakeMeter) { f.fail = i%7 == 3 })
		g.Tick(context.Background(), now)
		g.WaitPolls()
	}
	<-done
	g.WaitPolls()
	g.Tick(context.Background(), t0.Add(50*time.Second))
	g.WaitPolls()
	if h := g.Health(); h.Devices["grid"] != "ok" || h.Status == "" {
		t.Errorf("health %+v", h)
	}
}

// A dead meter is logged when it starts failing, reminded about every 5
// minutes, and logged once when it recovers, with how long it was down.
// Its power gauge goes when the reading goes stale; the timestamp of its
// last reading stays.
func TestDeviceFailureLogsAndMetrics(t *testing.T) {
	logs := &logRecords{}
	clk := &clock{t: t0}
	m := &fakeMeter{power: -1500}
	g, reg := deviceGateway(t, []Device{{Name: "grid", Role: config.RoleGrid, Poll: 5 * time.Second, Reader: m}}, true, logs, clk)

	// From the start, before any poll.
	if got := testutil.ToFloat64(g.metrics.reads.WithLabelValues("grid", "error")); got != 0 {
		t.Errorf("reads error %v", got)
	}
	if n, err := testutil.GatherAndCount(reg, "p2pgrid_meter_last_reading_timestamp_seconds", "p2pgrid_meter_reads_total",
		"p2pgrid_meter_read_duration_seconds", "p2pgrid_orders_placed_total"); err != nil || n != 6 {
		t.Errorf("%d series at start (%v), want last_reading, reads{ok,error} and read_duration for grid, orders placed{buy,sell}", n, err)
	}

	tick := func(at time.Duration) {
		now := t0.Add(at)
		clk.set(now)
		g.Tick(context.Background(), now)
	}
	tick(0)
	if got := testutil.ToFloat64(g.metrics.power.WithLabelValues("grid")); got != -1500 {
		t.Errorf("power %v", got)
	}
	if got := testutil.ToFloat64(g.metrics.lastReading.WithLabelValues("grid")); got != float64(t0.Unix()) {
		t.Errorf("last reading timestamp %v, want %d", got, t0.Unix())
	}
	if n := readDurations(t, reg, "grid"); n != 1 {
		t.Errorf("read duration observed %d times after one poll", n)
	}

	m.set(func(f *fakeMeter) { f.fail = true })
	at := 5 * time.Second
	for ; at <= 11*time.Minute; at += 5 * time.Second {
		tick(at)
	}
	warns := logs.find(slog.LevelWarn, "device read failed")
	reminders := logs.find(slog.LevelWarn, "device still failing")
	if len(warns) != 1 || !strings.Contains(warns[0], "timeout") {
		t.Errorf("warnings when it started failing: %q, want one with the error", warns)
	}
	if len(reminders) != 2 || !strings.Contains(reminders[0], "for=5m0s") || !strings.Contains(reminders[1], "for=10m0s") {
		t.Errorf("reminders over 11 minutes: %q, want at 5 and 10 minutes", reminders)
	}
	if n, _ := testutil.GatherAndCount(reg, "p2pgrid_meter_power_watts"); n != 0 {
		t.Errorf("a stale power is still exported (%d series)", n)
	}
	if got := testutil.ToFloat64(g.metrics.lastReading.WithLabelValues("grid")); got != float64(t0.Unix()) {
		t.Errorf("last reading timestamp %v, want still %d", got, t0.Unix())
	}
	if h := g.Health(); h.Status != "degraded" || !strings.Contains(h.Devices["grid"], "error: ") {
		t.Errorf("health %+v", h)
	}

	m.set(func(f *fakeMeter) { f.fail = false })
	tick(at)
	tick(at + 5*time.Second)
	rec := logs.find(slog.LevelInfo, "device recovered")
	if len(rec) != 1 || !strings.Contains(rec[0], "down_for=11m0s") {
		t.Errorf("recovery logs %q, want one, down_for=11m0s", rec)
	}
	if got := testutil.ToFloat64(g.metrics.power.WithLabelValues("grid")); got != -1500 {
		t.Errorf("power after recovery %v", got)
	}
	if got := testutil.ToFloat64(g.metrics.reads.WithLabelValues("grid", "error")); got != float64(11*12) {
		t.Errorf("failed reads %v, want %d", got, 11*12)
	}
	if n := readDurations(t, reg, "grid"); n != 1+11*12+2 {
		t.Errorf("read duration observed %d times, want every poll, failed ones included (%d)", n, 1+11*12+2)
	}
}

// A grid meter that dies before the order window: "no order" is logged and
// counted once for the interval, not at every tick with the reading's age.
func TestDeadMeterSkipsTheOrderOnce(t *testing.T) {
	logs := &logRecords{}
	clk := &clock{t: t0}
	m := &fakeMeter{power: -1500}
	g, _ := deviceGateway(t, []Device{{Name: "grid", Role: config.RoleGrid, Poll: time.Second, Reader: m}}, true, logs, clk)
	for at := time.Duration(0); at < 13*time.Minute; at += time.Second {
		if at == 4*time.Minute {
			m.set(func(f *fakeMeter) { f.fail = true })
		}
		now := t0.Add(at)
		clk.set(now)
		g.Tick(context.Background(), now)
	}
	if got := logs.find(slog.LevelDebug, "no order"); len(got) != 1 || !strings.Contains(got[0], "stale") {
		t.Errorf("no-order logs: %d, want one about the stale reading: %q", len(got), got[:min(len(got), 3)])
	}
	if got := counter(t, g, "p2pgrid_orders_skipped_total", "stale"); got != 1 {
		t.Errorf("skipped (stale) counted %v times, want once", got)
	}
	if got := logs.find(slog.LevelWarn, "device read failed"); len(got) != 1 {
		t.Errorf("%d warnings, want one", len(got))
	}
}

// readDurations is the sample count of a device's read duration histogram.
func readDurations(t *testing.T, reg *prometheus.Registry, device string) uint64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "p2pgrid_meter_read_duration_seconds" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "device" && l.GetValue() == device {
					return m.GetHistogram().GetSampleCount()
				}
			}
		}
	}
	t.Fatalf("no read duration for %s", device)
	return 0
}

// A read cut short because the gateway is stopping is not a device failure.
func TestPollStoppingIsNotAFailure(t *testing.T) {
	logs := &logRecords{}
	clk := &clock{t: t0}
	m := &fakeMeter{hold: make(chan struct{})}
	defer close(m.hold)
	g, _ := deviceGateway(t, []Device{{Name: "grid", Role: config.RoleGrid, Poll: time.Second, Reader: m}}, false, logs, clk)
	ctx, cancel := context.WithCancel(context.Background())
	g.Tick(ctx, t0)
	cancel()
	g.WaitPolls()
	if n := len(logs.find(slog.LevelWarn, "device read failed")); n != 0 || testutil.ToFloat64(g.metrics.reads.WithLabelValues("grid", "error")) != 0 {
		t.Errorf("a read cancelled at shutdown was logged (%d) or counted as a failure", n)
	}
}

// A device read behind a slow one on its bus is stamped with when its own
// read began, not with the Tick that queued it.
func TestPollStampsEachRead(t *testing.T) {
	clk := &clock{t: t0}
	slow := &fakeMeter{hold: make(chan struct{})}
	next := &fakeMeter{power: 7}
	g, _ := deviceGateway(t, []Device{
		{Name: "pv", Role: config.RolePV, Poll: time.Second, Bus: "rtu:///dev/ttyUSB0", Reader: slow},
		{Name: "grid", Role: config.RoleGrid, Poll: time.Second, Bus: "rtu:///dev/ttyUSB0", Reader: next},
	}, false, nil, clk)
	g.Tick(context.Background(), t0)
	for slow.count() == 0 {
		time.Sleep(time.Millisecond)
	}
	clk.set(t0.Add(1500 * time.Millisecond))
	close(slow.hold)
	g.WaitPolls()
	if r, err := g.devices.all[1].snapshot(); err != nil || !r.Time.Equal(t0.Add(1500*time.Millisecond)) {
		t.Errorf("grid reading at %v (%v), want when its read began, t0+1.5s", r.Time, err)
	}
	if r, _ := g.devices.all[0].snapshot(); !r.Time.Equal(t0) {
		t.Errorf("pv reading at %v, want t0", r.Time)
	}
}
