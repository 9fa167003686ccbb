// Package soak runs a whole community for many intervals on one machine
// and measures it: memory per gateway and of the clearer, CPU per
// interval, and the time from gate closure to the result at every
// gateway.
//
// Every home is a real gateway.Gateway on its own gateway/mqtt client (a
// real MQTT connection to the broker the caller names), with a fake grid
// meter and a real ledger on disk. The homes share one process and one
// clock, moved by hand in steps (an accelerated clock that waits for the
// messages a real interval has minutes for). The primary clearer runs in
// a process of its own (ServeClearer), driven over its standard input, so
// that its memory is measured apart from the homes'.
//
// The community (its keys, roster and configurations) is laid out by
// internal/neighbourhood/community. It uses only the exported API of
// package gateway. It knows nothing of
// how the broker is started: the tests (soak_test.go) start Mosquitto.
package soak

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/shopspring/decimal"

	"github.com/p2pgrid/p2pgrid/gateway"
	"github.com/p2pgrid/p2pgrid/gateway/clearing"
	"github.com/p2pgrid/p2pgrid/gateway/config"
	"github.com/p2pgrid/p2pgrid/gateway/mqtt"
	"github.com/p2pgrid/p2pgrid/gateway/protocol"
	"github.com/p2pgrid/p2pgrid/internal/neighbourhood/community"
	"github.com/p2pgrid/p2pgrid/market"
	"github.com/p2pgrid/p2pgrid/meter"
	"github.com/p2pgrid/p2pgrid/settlement"
	"github.com/p2pgrid/p2pgrid/settlement/ledger"
)

// Community is the soak community's id; ClearerID the primary clearer's
// gateway id (the shipped Mosquitto ACL's clearer).
const (
	Community = "soak"
	ClearerID = community.Operator
)

// T0 is when the soak's clock starts: an interval boundary.
var T0 = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

// HomeID is the gateway id of home i (0-based).
func HomeID(i int) string { return fmt.Sprintf("home%03d", i) }

// Password is gateway id's MQTT password.
func Password(id string) string { return "pw-" + id }

// layout is the primary clearer (ClearerID) and homes gateways, and
// their roster. Each key is derived from the gateway's id, so that the
// homes' process and the clearer's agree on the roster without exchanging
// keys. Each configuration is community.Layout's (the defaults:
// 15-minute intervals, gate closure 2 minutes before delivery, telemetry
// every 10 s; a price floor and cap) with a selling and a buying price.
func layout(homes int) ([]community.Member, *protocol.Roster, error) {
	c := community.Layout{ID: Community, Key: community.SeededKeys("p2pgrid soak"),
		Configure: func(_ int, cfg *config.Config) {
			sell, buy := decimal.RequireFromString("0.08"), decimal.RequireFromString("0.25")
			cfg.Policy.MinSellPrice, cfg.Policy.MaxBuyPrice = &sell, &buy
		}}
	for i := range homes {
		c.Homes = append(c.Homes, HomeID(i))
	}
	return c.Build()
}

// Clock is the shared accelerated clock.
type Clock struct{ ns atomic.Int64 }

// Now returns the clock's time.
func (c *Clock) Now() time.Time { return time.Unix(0, c.ns.Load()).UTC() }

// Set moves the clock.
func (c *Clock) Set(t time.Time) { c.ns.Store(t.UnixNano()) }

// Meter is a fake grid meter whose counters move at a steady net power on
// the shared clock.
type Meter struct {
	ExportW int64 // > 0 exporting, < 0 importing
	Clock   *Clock
}

var _ meter.Device = (*Meter)(nil)

// Read returns the counters at the clock's time.
func (m *Meter) Read(context.Context) (meter.Reading, error) {
	secs := m.Clock.Now().Sub(T0).Seconds()
	imp, exp := int64(1_000_000), int64(500_000)
	if m.ExportW > 0 {
		exp += int64(float64(m.ExportW) * secs / 3600)
	} else {
		imp += int64(float64(-m.ExportW) * secs / 3600)
	}
	return meter.Reading{Kind: meter.KindMeter, PowerW: meter.F(float64(-m.ExportW)), ImportWh: meter.Wh(imp), ExportWh: meter.Wh(exp)}, nil
}

// tap is a gateway's MQTT client with a look at every message it delivers
// to the gateway. Embedding keeps the client's optional interfaces
// (gateway.StatusPublisher, gateway.ConnectionLosses) visible.
type tap struct {
	*mqtt.Client
	seen func(topic string, payload []byte)
}

func (t *tap) Subscribe(filter string, h func(topic string, payload []byte)) error {
	return t.Client.Subscribe(filter, func(topic string, payload []byte) {
		t.seen(topic, payload)
		h(topic, payload)
	})
}

// connect opens gateway id's MQTT connection, with its status as will.
func connect(broker, id string) (*mqtt.Client, error) {
	topics, err := protocol.NewTopics(Community)
	if err != nil {
		return nil, err
	}
	online, err := (&protocol.Status{Gateway: id, State: protocol.StateOnline, Version: "soak", Time: T0}).Encode()
	if err != nil {
		return nil, err
	}
	offline, err := (&protocol.Status{Gateway: id, State: protocol.StateOffline, Version: "soak", Time: T0}).Encode()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	return mqtt.Connect(ctx, mqtt.Options{Broker: broker, ClientID: id, Username: id, Password: Password(id),
		WillTopic: topics.Status(id), WillPayload: offline, OnlineTopic: topics.Status(id), OnlinePayload: online})
}

// Usage is a process's memory and CPU.
type Usage struct {
	HeapInuse uint64        // bytes of heap in use just after a GC
	RSS       uint64        // resident set size, bytes (Linux; 0 elsewhere)
	CPU       time.Duration // user + system time so far
}

// Measure collects garbage and measures this process.
func Measure() Usage {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	u := Usage{HeapInuse: ms.HeapInuse, RSS: rss()}
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		u.CPU = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	return u
}

// rss reads VmRSS from /proc/self/status.
func rss() uint64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// Clearer is the primary clearer as the homes' process sees it.
type Clearer interface {
	// Tick moves the clearer's clock to now and runs its Tick.
	Tick(now time.Time) error
	// Await waits until the clearer has received n messages of kind
	// (protocol.KindOrders or protocol.KindMetered) about interval.
	Await(kind, interval string, n int) error
	// Usage measures the clearer's process.
	Usage() (Usage, error)
}

// ServeClearer runs the primary clearer of a community of homes gateways
// on broker, in this process, on a clock that in moves: it answers each
// line of in on out, until in ends.
//
//	tick UNIXNANO            -> ok
//	await KIND INTERVAL N    -> ok | error TEXT
//	usage                    -> usage HEAPINUSE RSS CPUNANOS
//
// It prints "ready" once connected and subscribed.
func ServeClearer(broker string, homes int, dir string, in io.Reader, out io.Writer) error {
	members, roster, err := layout(homes)
	if err != nil {
		return err
	}
	operator := members[0]
	c, err := connect(broker, ClearerID)
	if err != nil {
		return err
	}
	defer c.Close()
	led, err := ledger.Open(filepath.Join(dir, "ledger"), gateway.LedgerOptions(operator.Config, nil))
	if err != nil {
		return err
	}
	defer led.Close()
	var clock Clock
	clock.Set(T0)
	var mu sync.Mutex
	counts := map[string]int{} // kind/interval -> messages received
	seen := func(topic string, payload []byte) {
		kind, _, _, err := protocol.ParseTopic(topic)
		if err != nil {
			return
		}
		var interval string
		switch kind {
		case protocol.KindOrders:
			if m, err := protocol.DecodeOrder(payload); err == nil {
				interval = m.Interval
			}
		case protocol.KindMetered:
			if m, err := protocol.DecodeMetered(payload); err == nil {
				interval = m.Interval
			}
		}
		if interval != "" {
			mu.Lock()
			counts[kind+"/"+interval]++
			mu.Unlock()
		}
	}
	g, err := gateway.New(gateway.Options{Config: operator.Config, Key: operator.Key, Roster: roster,
		MQTT: &tap{Client: c, seen: seen}, Ledger: led, Now: clock.Now, StateDir: dir, SyncPolls: true})
	if err != nil {
		return err
	}
	if err := g.Start(); err != nil {
		return err
	}
	fmt.Fprintln(out, "ready")
	sc := bufio.NewScanner(in)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		switch {
		case len(f) == 2 && f[0] == "tick":
			ns, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil {
				return err
			}
			clock.Set(time.Unix(0, ns))
			g.Tick(context.Background(), clock.Now())
			fmt.Fprintln(out, "ok")
		case len(f) == 4 && f[0] == "await":
			n, _ := strconv.Atoi(f[3])
			deadline := time.Now().Add(2 * time.Minute)
			for {
				mu.Lock()
				got := counts[f[1]+"/"+f[2]]
				mu.Unlock()
				if got >= n {
					fmt.Fprintln(out, "ok")
					break
				}
				if time.Now().After(deadline) {
					fmt.Fprintf(out, "error %d of %d %s messages about %s after 2m\n", got, n, f[1], f[2])
					break
				}
				time.Sleep(5 * time.Millisecond)
			}
		case len(f) == 1 && f[0] == "usage":
			u := Measure()
			fmt.Fprintf(out, "usage %d %d %d\n", u.HeapInuse, u.RSS, u.CPU.Nanoseconds())
		default:
			return fmt.Errorf("soak clearer: bad command %q", sc.Text())
		}
	}
	return sc.Err()
}

// PipeClearer talks to a ServeClearer over its standard input and output.
type PipeClearer struct {
	in  io.Writer
	out *bufio.Scanner
}

// NewPipeClearer waits for the clearer's "ready" on out.
func NewPipeClearer(in io.Writer, out io.Reader) (*PipeClearer, error) {
	p := &PipeClearer{in: in, out: bufio.NewScanner(out)}
	line, err := p.line()
	if err != nil {
		return nil, err
	}
	if line != "ready" {
		return nil, fmt.Errorf("soak clearer: %q, want ready", line)
	}
	return p, nil
}

func (p *PipeClearer) line() (string, error) {
	if !p.out.Scan() {
		if err := p.out.Err(); err != nil {
			return "", err
		}
		return "", errors.New("soak clearer: exited")
	}
	return p.out.Text(), nil
}

func (p *PipeClearer) ask(format string, a ...any) (string, error) {
	if _, err := fmt.Fprintf(p.in, format+"\n", a...); err != nil {
		return "", err
	}
	line, err := p.line()
	if err != nil {
		return "", err
	}
	if rest, ok := strings.CutPrefix(line, "error "); ok {
		return "", errors.New("soak clearer: " + rest)
	}
	return line, nil
}

// Tick implements Clearer.
func (p *PipeClearer) Tick(now time.Time) error {
	_, err := p.ask("tick %d", now.UnixNano())
	return err
}

// Await implements Clearer.
func (p *PipeClearer) Await(kind, interval string, n int) error {
	_, err := p.ask("await %s %s %d", kind, interval, n)
	return err
}

// Usage implements Clearer.
func (p *PipeClearer) Usage() (Usage, error) {
	line, err := p.ask("usage")
	if err != nil {
		return Usage{}, err
	}
	var u Usage
	var cpu int64
	if _, err := fmt.Sscanf(line, "usage %d %d %d", &u.HeapInuse, &u.RSS, &cpu); err != nil {
		return Usage{}, fmt.Errorf("soak clearer: %q: %w", line, err)
	}
	u.CPU = time.Duration(cpu)
	return u, nil
}

// Options are a soak run.
type Options struct {
	Broker    string
	Homes     int
	Intervals int           // delivery intervals traded
	Step      time.Duration // clock step; default 5 s, the default poll
	Dir       string        // the homes' ledgers and state
	Clearer   Clearer
	Progress  io.Writer // a line per interval; nil: none
	// Parallel is how many homes tick at once; default 8.
	Parallel int
}

// Sample is a measurement after a settled interval.
type Sample struct {
	Interval      int    // delivery intervals traded so far
	Homes         Usage  // the homes' process
	Clearer       Usage  // the clearer's process
	LedgerRecords uint64 // records in each home's ledger (the same in every one)
}

// HeapPerHome is the homes' process heap in use divided by the homes.
func (s Sample) HeapPerHome(homes int) uint64 { return s.Homes.HeapInuse / uint64(homes) }

// Interval is one delivery interval's figures.
type Interval struct {
	ID          string
	Orders      int             // orders the homes placed
	ToResult    []time.Duration // gate closure (the clearer's tick) to the result's arrival, per home
	ToVerified  []time.Duration // gate closure to the home's verification
	Failed      map[string]error
	CPUHomes    time.Duration // CPU of the homes' process over this interval
	CPUClearer  time.Duration
	Wall        time.Duration // wall time of the interval
	Settled     int           // homes that recorded the settlement of the interval before
	SettledWant int
}

// Report is a whole run.
type Report struct {
	Homes     int
	Intervals []Interval
	Samples   []Sample // after the first settled interval, every 10 intervals, and at the end
	Wall      time.Duration
}

// home is one home's gateway and what the soak saw of it.
type home struct {
	id     string
	g      *gateway.Gateway
	client *mqtt.Client
	led    *ledger.Ledger

	mu       sync.Mutex
	arrived  map[string]time.Time // result topic -> first arrival
	verified map[string]time.Time
	errs     map[string]error
	settled  map[string]bool
}

func (h *home) seen(topic string, _ []byte) {
	if !strings.Contains(topic, "/"+protocol.KindResult+"/") {
		return
	}
	now := time.Now()
	h.mu.Lock()
	if _, ok := h.arrived[topic]; !ok {
		h.arrived[topic] = now
	}
	h.mu.Unlock()
}

var _ gateway.Observer = (*home)(nil)

// Verified notes when the home verified interval, and what failed.
func (h *home) Verified(_, interval string, _ *clearing.Verdict, err error) {
	now := time.Now()
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.verified[interval]; !ok {
		h.verified[interval] = now
	}
	if err != nil {
		h.errs[interval] = err
	}
}

// Sealed implements gateway.Observer: a home does not clear.
func (h *home) Sealed(string, *clearing.Sealed) {}

// Settled notes that the home recorded the settlement of an interval.
func (h *home) Settled(_ string, s *settlement.IntervalSettlement) {
	h.mu.Lock()
	h.settled[s.Interval] = true
	h.mu.Unlock()
}

// Run runs the soak and reports it; an error means it could not go on
// (a connection, a timeout), not a figure out of bounds: the caller
// judges the report.
func Run(o Options) (*Report, error) {
	if o.Step == 0 {
		o.Step = config.DefaultPoll
	}
	if o.Parallel == 0 {
		o.Parallel = 8
	}
	progress := o.Progress
	if progress == nil {
		progress = io.Discard
	}
	members, roster, err := layout(o.Homes)
	if err != nil {
		return nil, err
	}
	topics, err := protocol.NewTopics(Community)
	if err != nil {
		return nil, err
	}
	var clock Clock
	clock.Set(T0)
	homes := make([]*home, o.Homes)
	defer func() {
		for _, h := range homes {
			if h != nil {
				h.client.Close()
				h.led.Close()
			}
		}
	}()
	fmt.Fprintf(progress, "soak: connecting %d homes to %s\n", o.Homes, o.Broker)
	for i := range homes {
		id := HomeID(i)
		h := &home{id: id, arrived: map[string]time.Time{}, verified: map[string]time.Time{}, errs: map[string]error{}, settled: map[string]bool{}}
		if h.client, err = connect(o.Broker, id); err != nil {
			return nil, fmt.Errorf("%s: %w", id, err)
		}
		dir := filepath.Join(o.Dir, id)
		if h.led, err = ledger.Open(filepath.Join(dir, "ledger"), gateway.LedgerOptions(members[i+1].Config, nil)); err != nil {
			return nil, err
		}
		// Sellers of 0.5-4 kW and buyers of 0.5-3 kW, in turn.
		w := int64(500 + (i*700)%3500)
		if i%2 == 1 {
			w = -int64(500 + (i*300)%2500)
		}
		devs := []gateway.Device{{Name: "grid", Role: config.RoleGrid, Poll: o.Step, Reader: &Meter{ExportW: w, Clock: &clock}}}
		h.g, err = gateway.New(gateway.Options{Config: members[i+1].Config, Key: members[i+1].Key, Roster: roster,
			MQTT: &tap{Client: h.client, seen: h.seen}, Devices: devs, Ledger: h.led, Now: clock.Now, StateDir: dir, SyncPolls: true,
			Observer: h})
		if err != nil {
			return nil, err
		}
		if err := h.g.Start(); err != nil {
			return nil, err
		}
		homes[i] = h
		if (i+1)%50 == 0 {
			fmt.Fprintf(progress, "soak: %d homes connected\n", i+1)
		}
	}

	tickHomes := func(now time.Time) {
		var wg sync.WaitGroup
		next := atomic.Int64{}
		for range o.Parallel {
			wg.Go(func() {
				for {
					i := int(next.Add(1)) - 1
					if i >= len(homes) {
						return
					}
					homes[i].g.Tick(context.Background(), now)
				}
			})
		}
		wg.Wait()
	}
	// step moves the clock one step: the clearer ticks first, then the homes.
	step := func() error {
		now := clock.Now().Add(o.Step)
		clock.Set(now)
		if err := o.Clearer.Tick(now); err != nil {
			return err
		}
		tickHomes(now)
		return nil
	}
	advance := func(until time.Time) error {
		for clock.Now().Before(until) {
			if err := step(); err != nil {
				return err
			}
		}
		return nil
	}
	waitAll := func(what string, cond func(h *home) bool) error {
		deadline := time.Now().Add(5 * time.Minute)
		for {
			n := 0
			for _, h := range homes {
				h.mu.Lock()
				if cond(h) {
					n++
				}
				h.mu.Unlock()
			}
			if n == len(homes) {
				return nil
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("%s: %d of %d homes after 5m", what, n, len(homes))
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	sample := func(k int) (Sample, error) {
		cu, err := o.Clearer.Usage()
		if err != nil {
			return Sample{}, err
		}
		return Sample{Interval: k, Homes: Measure(), Clearer: cu, LedgerRecords: homes[0].led.Last()}, nil
	}

	rep := &Report{Homes: o.Homes}
	began := time.Now()
	interval := config.DefaultInterval
	gateClosure := config.DefaultGateClosure
	for j := 0; j <= o.Intervals; j++ {
		start := T0.Add(time.Duration(j) * interval)
		wallStart := time.Now()
		cpuHomes := Measure().CPU
		cu, err := o.Clearer.Usage()
		if err != nil {
			return rep, err
		}
		// The interval before ended at start: every home publishes its figures
		// at its first tick after; the clearer settles at start+2m.
		settled, settledWant := 0, 0
		if prev := start.Add(-interval); j >= 2 {
			id := market.IntervalID(prev)
			if err := advance(start.Add(time.Minute)); err != nil {
				return rep, err
			}
			if err := o.Clearer.Await(protocol.KindMetered, id, o.Homes); err != nil {
				return rep, err
			}
			if err := advance(start.Add(gateClosure + o.Step)); err != nil {
				return rep, err
			}
			if err := waitAll("settlement of "+id, func(h *home) bool { return h.settled[id] }); err != nil {
				return rep, err
			}
			settled, settledWant = o.Homes, o.Homes
		}
		if j == o.Intervals {
			if err := advance(start.Add(interval)); err != nil {
				return rep, err
			}
			break
		}
		// Orders for the next delivery interval are placed half-way to its
		// gate closure; the clearer seals at gate closure.
		delivery := start.Add(interval)
		id := market.IntervalID(delivery)
		gate := delivery.Add(-gateClosure)
		if err := advance(gate.Add(-time.Minute)); err != nil {
			return rep, err
		}
		orders := 0
		for _, h := range homes {
			if h.g.OwnOrder(id) != nil {
				orders++
			}
		}
		if err := o.Clearer.Await(protocol.KindOrders, id, orders); err != nil {
			return rep, err
		}
		if err := advance(gate.Add(-o.Step)); err != nil {
			return rep, err
		}
		closed := time.Now()
		if err := step(); err != nil { // the clearer seals at this tick
			return rep, err
		}
		if err := waitAll("verification of "+id, func(h *home) bool { _, ok := h.verified[id]; return ok }); err != nil {
			return rep, err
		}
		if err := advance(delivery); err != nil {
			return rep, err
		}
		iv := Interval{ID: id, Orders: orders, Failed: map[string]error{}, Settled: settled, SettledWant: settledWant}
		resultTopic := topics.Result(id)
		for _, h := range homes {
			h.mu.Lock()
			iv.ToResult = append(iv.ToResult, h.arrived[resultTopic].Sub(closed))
			iv.ToVerified = append(iv.ToVerified, h.verified[id].Sub(closed))
			if err := h.errs[id]; err != nil {
				iv.Failed[h.id] = err
			}
			// Forget what this interval needed: the soak must not grow.
			delete(h.arrived, resultTopic)
			delete(h.verified, id)
			delete(h.errs, id)
			delete(h.settled, market.IntervalID(start.Add(-interval)))
			h.mu.Unlock()
		}
		slices.Sort(iv.ToResult)
		slices.Sort(iv.ToVerified)
		iv.CPUHomes = Measure().CPU - cpuHomes
		cu2, err := o.Clearer.Usage()
		if err != nil {
			return rep, err
		}
		iv.CPUClearer = cu2.CPU - cu.CPU
		iv.Wall = time.Since(wallStart)
		rep.Intervals = append(rep.Intervals, iv)
		k := j + 1
		fmt.Fprintf(progress, "soak: %3d/%d %s orders %d result med %v max %v verified med %v max %v failed %d settled %d/%d cpu homes %v clearer %v wall %v\n",
			k, o.Intervals, id, orders, Median(iv.ToResult).Round(time.Millisecond), iv.ToResult[len(iv.ToResult)-1].Round(time.Millisecond),
			Median(iv.ToVerified).Round(time.Millisecond), iv.ToVerified[len(iv.ToVerified)-1].Round(time.Millisecond), len(iv.Failed),
			settled, settledWant, iv.CPUHomes.Round(time.Millisecond), iv.CPUClearer.Round(time.Millisecond), iv.Wall.Round(time.Millisecond))
		if j == 2 || k%10 == 0 || k == o.Intervals {
			s, err := sample(k)
			if err != nil {
				return rep, err
			}
			rep.Samples = append(rep.Samples, s)
			fmt.Fprintf(progress, "soak: memory after %d intervals: homes heap %s (%s per home), RSS %s; clearer heap %s, RSS %s; %d ledger records per home\n",
				k, MiB(s.Homes.HeapInuse), KiB(s.HeapPerHome(o.Homes)), MiB(s.Homes.RSS), MiB(s.Clearer.HeapInuse), MiB(s.Clearer.RSS), s.LedgerRecords)
		}
	}
	rep.Wall = time.Since(began)
	return rep, nil
}

// Median is the middle of sorted durations.
func Median(d []time.Duration) time.Duration {
	if len(d) == 0 {
		return 0
	}
	return d[len(d)/2]
}

// MiB formats bytes in MiB.
func MiB(b uint64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

// KiB formats bytes in KiB.
func KiB(b uint64) string { return fmt.Sprintf("%.0f KiB", float64(b)/(1<<10)) }
