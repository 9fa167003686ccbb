// Package neighbourhood runs a whole community on one machine: simulated
// homes (meter/sim, each an SDM630 grid meter and a SunSpec inverter
// served over Modbus TCP), an MQTT broker (embedded, unless one is
// named), one gateway per home reading its devices over Modbus, and the
// operator's gateway as primary clearer, with the first home standing by;
// each gateway is a real gateway/daemon on the simulator's accelerated
// clock. `p2pgrid demo` prints a table over it; tests use it where they
// need a community that really runs.
//
// Who is in it and how each gateway is configured (keys, roster,
// configurations) is laid out by its subpackage community.
//
// It reports what the gateways do only through a gateway.Observer, and
// knows nothing of how that is shown.
package neighbourhood

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/shopspring/decimal"

	"github.com/p2pgrid/p2pgrid/gateway"
	"github.com/p2pgrid/p2pgrid/gateway/broker"
	"github.com/p2pgrid/p2pgrid/gateway/config"
	"github.com/p2pgrid/p2pgrid/gateway/daemon"
	"github.com/p2pgrid/p2pgrid/gateway/protocol"
	"github.com/p2pgrid/p2pgrid/internal/neighbourhood/community"
	"github.com/p2pgrid/p2pgrid/market"
	"github.com/p2pgrid/p2pgrid/meter/sim"
)

// CommunityID is the community id of a neighbourhood.
const CommunityID = "demo"

// Operator is the operator's gateway id: the primary clearer, with no
// meters.
const Operator = community.Operator

// Options are a neighbourhood.
type Options struct {
	// Homes is how many simulated homes there are, each with its gateway:
	// 2 to sim.MaxSharedHomes.
	Homes int
	// Seed seeds the homes, their clouds and loads (sim.DefaultHomes).
	Seed uint64
	// Start is the simulated time the neighbourhood starts at, rounded
	// down to an interval. Zero: today 16:00 UTC, when the sun still
	// shines on the solar-rich homes while the others' evening load
	// starts, so the market is busy.
	Start time.Time
	// Speed is how many simulated seconds pass per wall-clock second (90:
	// a 15-minute interval every 10 s); more than 0.
	Speed float64
	// Broker is the MQTT broker's URL; "": an embedded broker on
	// loopback.
	Broker string
	// DataDir holds the roster (roster.json) and every gateway's data
	// directory, DataDir/<gateway id>: its key, ledger and state. A
	// second neighbourhood on it carries on with the same keys and
	// ledgers. Required.
	DataDir string
	// HTTP, if set, is where the operator serves /metrics and /healthz.
	HTTP string
	// Influx, if its URL is set, is where the operator writes its ledger.
	Influx config.Influx
	// Logger is the simulator's, the broker's and the gateways' root
	// logger; nil discards.
	Logger *slog.Logger
	// Version is the gateways' version, in their status and metrics.
	Version string
	// Ready, if set, is called with each gateway once it is connected and
	// subscribed (daemon.Options.Ready): the demo's dashboard asks them
	// for their health.
	Ready func(g *gateway.Gateway)
}

// N is a neighbourhood: built by New, its gateways run from Start until
// its context ends, Close is called or one of them fails.
type N struct {
	// Roster lists every gateway, the operator first, then the homes.
	Roster *protocol.Roster
	// IDs are the gateways' ids, the operator first, then the homes.
	IDs []string
	// Broker is the MQTT broker's URL.
	Broker string
	// SimStart is the simulated time the neighbourhood started at: an
	// interval boundary.
	SimStart time.Time

	o       Options
	sim     *sim.Sim
	configs map[string]*config.Config
	closers []func() error // the listeners and the broker, closed in reverse
	tick    time.Duration  // the gateways' loop

	mu      sync.Mutex
	started bool
	cancel  context.CancelFunc
	done    chan struct{} // closed once every gateway has stopped
	err     error         // the first gateway's failure
}

// New builds a neighbourhood: it starts the simulator and its Modbus
// listeners and the embedded broker, configures every gateway (each
// configuration validated), creates their keys or loads them from
// DataDir, and writes the roster. The gateways do not run until Start.
func New(o Options) (n *N, err error) {
	switch {
	case o.Homes < 2 || o.Homes > sim.MaxSharedHomes:
		return nil, fmt.Errorf("neighbourhood: %d homes is outside 2-%d", o.Homes, sim.MaxSharedHomes)
	case !(o.Speed > 0):
		return nil, fmt.Errorf("neighbourhood: speed %v is not more than 0", o.Speed)
	case o.DataDir == "":
		return nil, errors.New("neighbourhood: no data directory")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	interval := config.DefaultInterval
	start := o.Start
	if start.IsZero() {
		start = time.Now().UTC().Truncate(24 * time.Hour).Add(16 * time.Hour)
	}
	n = &N{SimStart: market.IntervalStart(start, interval), o: o, configs: map[string]*config.Config{},
		tick: time.Duration(float64(interval) / o.Speed / 100), done: make(chan struct{})}
	defer func() {
		if err != nil {
			n.closeAll()
		}
	}()
	if err := os.MkdirAll(o.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("neighbourhood: %w", err)
	}
	homes := sim.DefaultHomes(o.Homes, o.Seed)
	if n.sim, err = sim.New(sim.Options{Homes: homes, Start: n.SimStart, Speed: o.Speed, Logger: o.Logger.With("component", "sim")}); err != nil {
		return nil, err
	}
	var listeners []*sim.Listener
	for i := range homes {
		port, err := freePort()
		if err != nil {
			return nil, fmt.Errorf("neighbourhood: a port for %s: %w", homes[i].Name, err)
		}
		l, err := n.sim.ServeTCP(fmt.Sprintf("127.0.0.1:%d", port), i)
		if err != nil {
			return nil, fmt.Errorf("neighbourhood: %s: %w", homes[i].Name, err)
		}
		listeners = append(listeners, l)
		n.closers = append(n.closers, l.Close)
	}
	n.Broker = o.Broker
	if n.Broker == "" {
		b, err := broker.Start("127.0.0.1:0", o.Logger)
		if err != nil {
			return nil, fmt.Errorf("neighbourhood: embedded broker: %w", err)
		}
		n.closers = append(n.closers, b.Close)
		n.Broker = b.URL()
	}

	c := community.Layout{ID: CommunityID, Standby: homes[0].Name, Configure: func(i int, cfg *config.Config) {
		id := cfg.Gateway
		cfg.Roster, cfg.DataDir = n.rosterFile(), filepath.Join(o.DataDir, id)
		cfg.HTTP = ""
		cfg.MQTT.Broker, cfg.MQTT.ClientID = n.Broker, "demo-"+id
		cfg.Market.Grace = time.Minute // simulated time: a fraction of a second
		cfg.Telemetry.Every = time.Minute
		if i == 0 {
			cfg.HTTP, cfg.Influx = o.HTTP, o.Influx
			return
		}
		url := listeners[i-1].URL
		cfg.Devices = []config.Device{
			{Name: "grid", URL: url, Unit: int(sim.MeterUnit), Profile: sim.MeterProfile, Role: config.RoleGrid, Poll: 30 * time.Second},
			{Name: "pv", URL: url, Unit: int(sim.InverterUnit), Profile: "sunspec", Role: config.RolePV, Poll: 30 * time.Second},
		}
		sell := decimal.New(6+int64(i%4)*2, -2) // 0.06 .. 0.12
		buy := decimal.New(28-int64(i%4)*3, -2) // 0.28 .. 0.19
		cfg.Policy.MinSellPrice, cfg.Policy.MaxBuyPrice = &sell, &buy
	}}
	for _, h := range homes {
		c.Homes = append(c.Homes, h.Name)
	}
	members, roster, err := c.Build()
	if err != nil {
		return nil, err
	}
	for _, m := range members {
		n.IDs = append(n.IDs, m.Config.Gateway)
		n.configs[m.Config.Gateway] = m.Config
	}
	n.Roster = roster
	if err := os.WriteFile(n.rosterFile(), roster.Encode(), 0o644); err != nil {
		return nil, fmt.Errorf("neighbourhood: %w", err)
	}
	return n, nil
}

func (n *N) rosterFile() string { return filepath.Join(n.o.DataDir, "roster.json") }

// Now is the simulated clock the gateways run on.
func (n *N) Now() time.Time { return n.sim.Now() }

// Config is gateway id's configuration; nil if there is no such gateway.
// It is not to be changed.
func (n *N) Config(id string) *config.Config { return n.configs[id] }

// LedgerDir is gateway id's ledger directory.
func (n *N) LedgerDir(id string) string {
	if cfg := n.configs[id]; cfg != nil {
		return daemon.LedgerDir(cfg)
	}
	return filepath.Join(n.o.DataDir, id, "ledger")
}

// Start runs every gateway, in the background, until ctx ends, Close is
// called or one of them fails, which stops them all; obs (nil: none) is
// told what each of them does. It returns at once; a second Start is
// refused.
func (n *N) Start(ctx context.Context, obs gateway.Observer) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.started {
		return errors.New("neighbourhood: started twice")
	}
	n.started = true
	ctx, n.cancel = context.WithCancel(ctx)
	var wg sync.WaitGroup
	for _, id := range n.IDs {
		wg.Go(func() {
			err := daemon.Run(ctx, n.configs[id], daemon.Options{
				Logger: n.o.Logger, Version: n.o.Version, Now: n.sim.Now, Tick: n.tick, Roster: n.Roster, Observer: obs,
				Ready: n.o.Ready,
			})
			if err != nil {
				n.mu.Lock()
				if n.err == nil {
					n.err = fmt.Errorf("gateway %s: %w", id, err)
				}
				n.mu.Unlock()
				n.cancel()
			}
		})
	}
	go func() {
		wg.Wait()
		close(n.done)
	}()
	return nil
}

// Done is closed once every gateway has stopped: after Close, once the
// context given to Start ended, or once a gateway failed.
func (n *N) Done() <-chan struct{} { return n.done }

// Wait waits until every gateway has stopped and returns the first one's
// failure, or nil if none failed. Without Start it returns at once.
func (n *N) Wait() error {
	n.mu.Lock()
	started := n.started
	n.mu.Unlock()
	if !started {
		return nil
	}
	<-n.done
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.err
}

// Close stops the gateways, waits for them, then stops the simulator's
// listeners and the embedded broker. It returns Wait's error.
func (n *N) Close() error {
	n.mu.Lock()
	if n.cancel != nil {
		n.cancel()
	}
	n.mu.Unlock()
	err := n.Wait()
	n.closeAll()
	return err
}

// closeAll closes the listeners and the broker, once.
func (n *N) closeAll() {
	n.mu.Lock()
	closers := n.closers
	n.closers = nil
	n.mu.Unlock()
	for i := len(closers) - 1; i >= 0; i-- {
		closers[i]()
	}
}

// freePort is a TCP port free on loopback a moment ago (sim.ServeTCP
// cannot report the port of ":0").
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
