package gateway

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/p2pgrid/p2pgrid/gateway/config"
	"github.com/p2pgrid/p2pgrid/gateway/protocol"
	"github.com/p2pgrid/p2pgrid/market"
	"github.com/p2pgrid/p2pgrid/meter"
)

// Device is one meter or inverter the gateway polls.
type Device struct {
	Name string
	Role config.DeviceRole
	Poll time.Duration
	// Bus names the bus or connection the device is on (daemon.Devices
	// sets its URL). Devices with the same Bus are read one after another,
	// as one bus carries one request at a time; each bus is polled
	// independently of the others, so a slow inverter does not delay the
	// grid meter on another bus. Empty: a bus of its own.
	Bus string
	// Reader reads the device (a meter/profile or meter/sunspec device,
	// or a simulated one).
	Reader meter.Device
}

// failureReminder is how often a device that keeps failing is logged
// again, after the warning when it started failing.
const failureReminder = 5 * time.Minute

// readTimeout bounds one read of d: its poll period, but at least 2s.
func readTimeout(d *deviceState) time.Duration { return max(d.Poll, 2*time.Second) }

// deviceState is a device and what the gateway knows of it.
type deviceState struct {
	Device
	bus int // index into devices.buses

	// next is when the device is due; the Tick goroutine owns it.
	next time.Time
	// lastLogged is the start of the interval whose reading is in the
	// ledger; only takeReading (settle.go) touches it, on the Tick goroutine.
	lastLogged time.Time

	mu           sync.Mutex // guards the fields below: the worker writes, Health reads
	last         meter.Reading
	err          error
	failingSince time.Time // zero while the device answers
	reminded     time.Time // last log line about the failure
	powerShown   bool      // p2pgrid_meter_power_watts has a value for it

	// staleAlarm: AlarmMeterStale is open for this device; the Tick
	// goroutine owns it (checkMeters).
	staleAlarm bool
}

// staleAfter is how long a grid meter fails before AlarmMeterStale: a
// minute, or three polls if that is longer (a reading is fresh for three).
func staleAfter(d *deviceState) time.Duration { return max(time.Minute, 3*d.Poll) }

// checkMeters opens AlarmMeterStale when the grid meter has failed for
// staleAfter, and closes it when the meter answers again: while it is open
// the home cannot place orders or publish its metered figures.
func (g *Gateway) checkMeters(now time.Time) {
	for _, d := range g.devices.all {
		if d.Role != config.RoleGrid {
			continue
		}
		d.mu.Lock()
		since, err := d.failingSince, d.err
		d.mu.Unlock()
		switch failing := !since.IsZero() && now.Sub(since) >= staleAfter(d); {
		case failing && !d.staleAlarm:
			d.staleAlarm = true
			g.raise(protocol.Alarm{Interval: market.IntervalID(g.calendar.Start(now)), Kind: protocol.AlarmMeterStale,
				Detail: truncate(fmt.Sprintf("grid meter %q has not answered since %s: no orders and no metered figures until it does: %v",
					d.Name, since.UTC().Format(time.RFC3339), err), 300)})
		case !failing && d.staleAlarm && since.IsZero():
			d.staleAlarm = false
			g.closeAlarms(protocol.AlarmMeterStale)
		}
	}
}

// snapshot returns the device's last reading and last error.
func (d *deviceState) snapshot() (meter.Reading, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.last, d.err
}

// taken is a successful reading waiting to be applied on the Tick
// goroutine (forecast and meter).
type taken struct {
	d   *deviceState
	now time.Time
	r   meter.Reading
}

// devices is the gateway's device loop. Tick hands the due devices of each
// bus to a worker goroutine for that bus, unless one is still busy there
// (it never waits for a busy bus), and applies the readings the workers
// have taken since. Device state (last reading, error) is written by the
// workers under each device's lock and read by Health and telemetry; the
// forecast and meter see the readings on the Tick goroutine, in the order
// they were taken, as before.
type devices struct {
	all   []*deviceState
	buses [][]*deviceState // devices by bus, in configuration order
	sync  bool             // Options.SyncPolls

	wg    sync.WaitGroup // workers in flight
	mu    sync.Mutex     // guards busy and taken
	busy  []bool         // by bus: a worker is reading
	taken []taken
}

// addDevices sets up the device loop for ds and returns the poll period
// of the grid meter (0 if there is none).
func (g *Gateway) addDevices(ds []Device, syncPolls bool) time.Duration {
	g.devices = &devices{sync: syncPolls}
	byName := map[string]int{}
	var gridPoll time.Duration
	for _, d := range ds {
		if d.Poll <= 0 {
			d.Poll = config.DefaultPoll
		}
		p := &deviceState{Device: d}
		i, ok := byName[d.Bus]
		if !ok || d.Bus == "" {
			i = len(g.devices.buses)
			g.devices.buses = append(g.devices.buses, nil)
			byName[d.Bus] = i
		}
		p.bus = i
		g.devices.buses[i] = append(g.devices.buses[i], p)
		g.devices.all = append(g.devices.all, p)
		if d.Role == config.RoleGrid {
			gridPoll = d.Poll
		}
		// Exported from the start, so that rates and alerts work at once.
		g.metrics.reads.WithLabelValues(d.Name, "ok")
		g.metrics.reads.WithLabelValues(d.Name, "error")
		g.metrics.lastReading.WithLabelValues(d.Name).Set(0)
		g.metrics.readDuration.WithLabelValues(d.Name)
	}
	g.devices.busy = make([]bool, len(g.devices.buses))
	return gridPoll
}

// poll applies the readings taken since the last Tick, hands the devices
// due at now to their buses' workers, and hides the power of devices whose
// reading went stale. With Options.SyncPolls it waits for the reads it
// started and applies them too, so that a test's Tick sees its readings.
func (g *Gateway) poll(ctx context.Context, now time.Time) {
	ds := g.devices
	g.applyTaken(ctx)
	for i, bus := range ds.buses {
		var due []*deviceState
		for _, d := range bus {
			if !now.Before(d.next) {
				due = append(due, d)
			}
		}
		if len(due) == 0 {
			continue
		}
		ds.mu.Lock()
		busy := ds.busy[i]
		if !busy {
			ds.busy[i] = true
		}
		ds.mu.Unlock()
		if busy {
			continue // due again at the next Tick after the worker is done
		}
		for _, d := range due {
			d.next = now.Add(d.Poll)
		}
		ds.wg.Add(1)
		go func() {
			defer ds.wg.Done()
			for _, d := range due {
				g.read(ctx, now, d)
			}
			ds.mu.Lock()
			ds.busy[i] = false
			ds.mu.Unlock()
		}()
	}
	if ds.sync {
		ds.wg.Wait()
		g.applyTaken(ctx)
	}
	for _, d := range ds.all {
		d.mu.Lock()
		if d.powerShown && d.last.Fresh(now, d.Poll) != nil {
			// A stale power is not the power now: no value is better.
			g.metrics.power.DeleteLabelValues(d.Name)
			d.powerShown = false
		}
		d.mu.Unlock()
	}
}

// WaitPolls waits for the device reads in flight.
func (g *Gateway) WaitPolls() { g.devices.wg.Wait() }

// read reads one device on its bus's worker and records the outcome. The
// reading is stamped with the time its read began: the Tick's now, or the
// clock if it is later (a device behind a slow one on the same bus).
func (g *Gateway) read(ctx context.Context, now time.Time, d *deviceState) {
	if t := g.now(); t.After(now) {
		now = t
	}
	rctx, cancel := context.WithTimeout(ctx, readTimeout(d))
	began := time.Now()
	r, err := d.Reader.Read(rctx)
	g.metrics.readDuration.WithLabelValues(d.Name).Observe(time.Since(began).Seconds())
	cancel()
	if err != nil && ctx.Err() != nil {
		return // the gateway is stopping: not the device's fault
	}
	if err != nil {
		g.metrics.reads.WithLabelValues(d.Name, "error").Inc()
		d.mu.Lock()
		d.err = err
		first, remind := d.failingSince.IsZero(), now.Sub(d.reminded) >= failureReminder
		if first {
			d.failingSince = now
		}
		since := d.failingSince
		if first || remind {
			d.reminded = now
		}
		d.mu.Unlock()
		switch {
		case first:
			g.log.Warn("device read failed", "device", d.Name, "err", err)
		case remind:
			g.log.Warn("device still failing", "device", d.Name, "for", roundDown(now.Sub(since)), "err", err)
		default:
			g.log.Debug("device read failed", "device", d.Name, "err", err)
		}
		return
	}
	// The device's clock is ours: a reading is as old as our poll.
	r.Time = now
	d.mu.Lock()
	since := d.failingSince
	d.last, d.err, d.failingSince, d.reminded = r, nil, time.Time{}, time.Time{}
	if r.PowerW != nil {
		g.metrics.power.WithLabelValues(d.Name).Set(*r.PowerW)
		d.powerShown = true
	}
	d.mu.Unlock()
	g.metrics.reads.WithLabelValues(d.Name, "ok").Inc()
	g.metrics.lastReading.WithLabelValues(d.Name).Set(float64(now.UnixNano()) / 1e9)
	if !since.IsZero() {
		g.log.Info("device recovered", "device", d.Name, "down_for", roundDown(now.Sub(since)))
	}
	g.devices.mu.Lock()
	g.devices.taken = append(g.devices.taken, taken{d, now, r})
	g.devices.mu.Unlock()
}

// roundDown rounds a duration for people: to the second, or to the
// millisecond under a second.
func roundDown(d time.Duration) time.Duration {
	if d < time.Second {
		return d.Round(time.Millisecond)
	}
	return d.Round(time.Second)
}

// applyTaken hands the readings taken so far to the forecast and to takeReading,
// on the Tick goroutine.
func (g *Gateway) applyTaken(ctx context.Context) {
	g.devices.mu.Lock()
	ts := g.devices.taken
	g.devices.taken = nil
	g.devices.mu.Unlock()
	for _, t := range ts {
		if t.d.Role == config.RoleGrid && g.forecast != nil {
			g.forecast.Add(t.r)
		}
		g.takeReading(ctx, t.now, t.d, t.r)
	}
}

// deviceHealth is each device's state for /healthz: ok, stale, or the
// error of its last read.
func (g *Gateway) deviceHealth(now time.Time) (map[string]string, bool) {
	out := map[string]string{}
	ok := true
	for _, d := range g.devices.all {
		last, err := d.snapshot()
		switch {
		case last.Fresh(now, d.Poll) == nil:
			out[d.Name] = "ok"
		case err != nil:
			out[d.Name], ok = "error: "+err.Error(), false
		default:
			out[d.Name], ok = "stale", false
		}
	}
	return out, ok
}

func (g *Gateway) telemetry(ctx context.Context, now time.Time) {
	if !g.cfg.Telemetry.Enabled || now.Sub(g.lastTelem) < g.cfg.Telemetry.Every {
		return
	}
	t := protocol.Telemetry{Gateway: g.id, Time: now}
	any := false
	for _, d := range g.devices.all {
		last, _ := d.snapshot()
		if last.Fresh(now, d.Poll) != nil {
			continue
		}
		any = true
		switch d.Role {
		case config.RoleGrid:
			t.GridW, t.ImportWh, t.ExportWh = last.PowerW, last.ImportWh, last.ExportWh
		case config.RolePV:
			t.PVW = last.PowerW
		}
	}
	if !any {
		return
	}
	g.lastTelem = now
	payload, err := t.Encode()
	if err == nil {
		err = g.publish(ctx, g.topics.Telemetry(g.id), payload)
	}
	if err != nil {
		if ok, held := g.limit.allow("publish/telemetry", g.now()); ok {
			g.log.Warn("telemetry not published", "err", err, "similar_not_logged", held)
		}
	}
}
