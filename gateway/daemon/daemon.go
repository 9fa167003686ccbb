// Package daemon assembles a running gateway from its configuration: the
// key, the roster, the Modbus devices, the MQTT connection (or the embedded
// broker), the HTTP endpoints, and the loop. It is the one place that knows
// all the parts; `p2pgrid gateway` and internal/neighbourhood (`p2pgrid
// demo`) use it.
package daemon

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/p2pgrid/p2pgrid/gateway"
	"github.com/p2pgrid/p2pgrid/gateway/broker"
	"github.com/p2pgrid/p2pgrid/gateway/config"
	"github.com/p2pgrid/p2pgrid/gateway/mqtt"
	"github.com/p2pgrid/p2pgrid/gateway/protocol"
	"github.com/p2pgrid/p2pgrid/meter/bus"
	"github.com/p2pgrid/p2pgrid/meter/device"
	"github.com/p2pgrid/p2pgrid/settlement/influx"
	"github.com/p2pgrid/p2pgrid/settlement/ledger"
)

// EmbeddedBrokerAddr is where a gateway without a configured broker runs
// its own.
const EmbeddedBrokerAddr = "127.0.0.1:1883"

// Options adjust a daemon beyond its configuration.
type Options struct {
	// Logger is the root logger; Run scopes it with the gateway id. nil
	// discards the logs.
	Logger  *slog.Logger
	Version string
	// ConfigFile is the file cfg was loaded from, for the start line ("":
	// a configuration built in code).
	ConfigFile string
	// Now is the clock (nil: time.Now); the demo passes the simulator's.
	Now func() time.Time
	// ClockSpeed is how many seconds of Now pass per wall-clock second
	// (0 or 1: Now is the wall clock). The loop ticks that much more
	// often, so that devices are polled at their poll period of Now.
	// Timeouts of the network (MQTT keepalive and publishes, HTTP,
	// InfluxDB) stay in wall-clock time.
	ClockSpeed float64
	// Tick is how often the loop runs: by default 1s, or the shortest
	// device poll period if that is shorter (the loop is what starts each
	// poll). A Tick longer than a device's poll is refused.
	Tick time.Duration
	// Roster, if set, is used instead of reading cfg.Roster: a plain
	// roster, fixed for the run.
	Roster *protocol.Roster
	// Observer, if set, is passed to the gateway (gateway.Observer).
	Observer gateway.Observer
	// Ready, if set, is called once the gateway is connected to MQTT and
	// subscribed (gateway.Start has run); the loop and /healthz run from
	// before that.
	Ready func(g *gateway.Gateway)
}

// Key loads the gateway's key from its data directory, creating it on
// first start.
func Key(cfg *config.Config, log *slog.Logger) (ed25519.PrivateKey, error) {
	key, created, err := protocol.LoadOrCreateKey(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	if created {
		log.Info("created the gateway key; add its public key to the community roster",
			"file", cfg.DataDir+"/"+protocol.KeyFile, "public_key", protocol.PublicKeyString(key.Public().(ed25519.PublicKey)))
	}
	return key, nil
}

// Run runs the gateway of cfg until ctx ends, then shuts down cleanly:
// the loop stops, the offline status is published, connections close.
//
// In this order: the logger is scoped with the gateway id (once: callers
// pass the root logger); Check refuses everything the gateway would refuse
// (the same errors as p2pgrid config check); the data directory is locked
// (a second gateway on it is refused, before it could take the first one's
// MQTT session); the key, the ledger and the devices are opened. Only then
// does the network come in: the HTTP server (/healthz, /metrics) and the
// loop start at once, reading the meters, while the MQTT connection is made
// in the background, with backoff, for as long as it takes. Until it is up
// /healthz says mqtt "disconnected" (503) and publishes fail at once; when
// it is, the gateway subscribes (gateway.Start) and trades.
func Run(ctx context.Context, cfg *config.Config, o Options) (err error) {
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("gateway", cfg.Gateway)
	tick, err := loopTick(cfg, o.Tick)
	if err != nil {
		return err
	}
	if o.Tick <= 0 && o.ClockSpeed > 1 {
		tick = max(time.Duration(float64(tick)/o.ClockSpeed), minAcceleratedTick)
	}
	o.Tick = tick
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Version == "" {
		o.Version = "dev"
	}
	log.Info("gateway starting", "version", o.Version, "config", o.ConfigFile, "data_dir", cfg.DataDir)
	defer func() {
		if err != nil {
			log.Error("gateway stopped", "err", err)
		} else {
			log.Info("gateway stopped")
		}
	}()

	// Everything the gateway refuses, refused before anything else: the
	// same check as p2pgrid config check.
	rosters, err := check(cfg, o.Roster)
	if err != nil {
		return err
	}
	unlock, err := lockDataDir(cfg.DataDir)
	if err != nil {
		return err
	}
	defer unlock()
	key, err := Key(cfg, log)
	if err != nil {
		return err
	}
	// A key created just now: the roster must hold it.
	if err := cfg.CheckRoster(rosters.Newest().Roster, key.Public().(ed25519.PublicKey)); err != nil {
		return err
	}
	topics, err := protocol.NewTopics(cfg.Community)
	if err != nil {
		return err
	}
	led, err := ledger.Open(LedgerDir(cfg), gateway.LedgerOptions(cfg, log))
	if err != nil {
		return err
	}
	defer led.Close()
	devices, closeBuses, err := Devices(cfg, o.Now, log)
	if err != nil {
		return err
	}
	defer closeBuses()

	brokerURLs := cfg.MQTT.BrokerURLs()
	if len(brokerURLs) == 0 {
		b, err := broker.Start(EmbeddedBrokerAddr, log)
		if err != nil {
			return fmt.Errorf("embedded broker (mqtt.broker is empty): %w", err)
		}
		defer b.Close()
		brokerURLs = []string{b.URL()}
		log.Info("embedded MQTT broker running", "url", brokerURLs[0])
	}
	brokerURL := strings.Join(brokerURLs, " ") // for the logs
	online, offline, err := statusPayloads(cfg.Gateway, o.Version, o.Now())
	if err != nil {
		return err
	}
	mc, err := mqtt.New(mqtt.Options{
		Brokers: brokerURLs, ClientID: cfg.MQTT.ClientID, Username: cfg.MQTT.Username, Password: string(cfg.MQTT.Password),
		CAFile: cfg.MQTT.CAFile, CertFile: cfg.MQTT.CertFile, KeyFile: cfg.MQTT.KeyFile,
		WillTopic: topics.Status(cfg.Gateway), WillPayload: offline,
		OnlineTopic: topics.Status(cfg.Gateway), OnlinePayload: online,
		KeepAlive: cfg.MQTT.KeepAlive, Logger: log,
	})
	if err != nil {
		return err
	}
	defer mc.Close() // publishes the offline status first, if connected

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	reg.MustRegister(mc.Collectors()...)
	msgr := &messenger{Client: mc}
	g, err := gateway.New(gateway.Options{
		Config: cfg, Key: key, Rosters: rosters, MQTT: msgr, Devices: devices, Now: o.Now,
		Logger: log, Registry: reg, Version: o.Version, StateDir: cfg.DataDir,
		Observer: o.Observer, Ledger: led,
	})
	if err != nil {
		return err
	}
	if cfg.Influx.URL != "" {
		sink, err := influx.New(influx.Options{URL: cfg.Influx.URL, Org: cfg.Influx.Org, Bucket: cfg.Influx.Bucket,
			Token: string(cfg.Influx.Token), Logger: log}, led)
		if err != nil {
			return fmt.Errorf("influx: %w", err)
		}
		defer sink.Close()
		reg.MustRegister(sink.Collectors()...)
		sinkCtx, stopSink := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { defer close(done); sink.Run(sinkCtx, 5*time.Second) }()
		defer func() {
			stopSink()
			<-done
			// A last drain on the way out, bounded: what is left stays in
			// the ledger and goes out on the next start.
			fctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if n, err := sink.Drain(fctx); err != nil {
				log.Warn("InfluxDB not up to date at shutdown; the ledger keeps the rest", "written", n, "err", err)
			}
		}()
		log.Info("writing the ledger to InfluxDB", "url", cfg.Influx.URL, "bucket", cfg.Influx.Bucket)
	}
	if cfg.HTTP != "" {
		srv := &http.Server{Addr: cfg.HTTP, Handler: g.Handler(reg), ReadHeaderTimeout: 5 * time.Second}
		ln, err := net.Listen("tcp", cfg.HTTP)
		if err != nil {
			return fmt.Errorf("http %s: %w", cfg.HTTP, err)
		}
		go srv.Serve(ln)
		defer func() {
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			srv.Shutdown(sctx)
		}()
		log.Info("serving /metrics and /healthz", "addr", ln.Addr().String())
	}
	mc.Start()
	log.Info("gateway running; connecting to MQTT", "community", cfg.Community, "clearer", string(cfg.Clearer), "devices", len(devices),
		"broker", brokerURL, "interval", cfg.Market.Interval.String())
	// A broker that answers at once is given that moment, so that the
	// first Tick's publishes do not fail for nothing; one that does not
	// holds up the meters no longer than firstConnectWait.
	waitConnected(ctx, mc, firstConnectWait)

	// The loop reads the meters from the start. The gateway subscribes
	// (Start) on the loop's goroutine once the client is connected, so
	// that no Tick runs half-way through it; until then its publishes fail
	// at once (mqtt.ErrNotConnected) and are tried again by the gateway.
	started := false
	t := time.NewTicker(o.Tick)
	defer t.Stop()
	for {
		if !started && mc.Connected() {
			msgr.live.Store(true)
			if err := g.Start(); err != nil {
				return err
			}
			started = true
			log.Info("gateway connected and subscribed", "broker", mc.Broker())
			if o.Ready != nil {
				o.Ready(g)
			}
		}
		g.Tick(ctx, o.Now())
		select {
		case <-ctx.Done():
			log.Info("gateway stopping")
			return nil
		case <-t.C:
		}
	}
}

// minAcceleratedTick is the shortest loop tick an accelerated clock
// (Options.ClockSpeed) gives.
const minAcceleratedTick = 10 * time.Millisecond

// firstConnectWait is how long Run waits for the first MQTT connection
// before its loop starts without it.
const firstConnectWait = 2 * time.Second

// waitConnected returns when c is connected, ctx ends or d has passed.
func waitConnected(ctx context.Context, c *mqtt.Client, d time.Duration) {
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	poll := time.NewTicker(10 * time.Millisecond)
	defer poll.Stop()
	for !c.Connected() {
		select {
		case <-ctx.Done():
			return
		case <-deadline.C:
			return
		case <-poll.C:
		}
	}
}

func statusPayloads(id, version string, now time.Time) (online, offline []byte, err error) {
	if version == "" {
		version = "dev"
	}
	on := protocol.Status{Gateway: id, State: protocol.StateOnline, Version: version, Time: now}
	off := protocol.Status{Gateway: id, State: protocol.StateOffline, Version: version, Time: now}
	if online, err = on.Encode(); err != nil {
		return nil, nil, err
	}
	offline, err = off.Encode()
	return online, offline, err
}

// LedgerDir is where a gateway keeps its ledger: data_dir/ledger.
func LedgerDir(cfg *config.Config) string { return filepath.Join(cfg.DataDir, "ledger") }

// DefaultTick is how often the loop runs when no device polls faster.
const DefaultTick = time.Second

// loopTick is the loop's period: tick, or by default DefaultTick or the
// shortest poll period if that is shorter. Polls start only when the loop
// ticks, so a tick longer than a poll would read that device late (and
// miss the reading at an interval boundary that settlement needs): it is
// refused rather than quietly polled slower than configured.
func loopTick(cfg *config.Config, tick time.Duration) (time.Duration, error) {
	shortest, name := time.Duration(0), ""
	for _, d := range cfg.Devices {
		if d.Poll > 0 && (shortest == 0 || d.Poll < shortest) {
			shortest, name = d.Poll, d.Name
		}
	}
	if tick <= 0 {
		tick = DefaultTick
		if shortest > 0 && shortest < tick {
			tick = shortest
		}
		return tick, nil
	}
	if shortest > 0 && tick > shortest {
		return 0, fmt.Errorf("loop tick %s is longer than device %q's poll %s: it would be polled late", tick, name, shortest)
	}
	return tick, nil
}

// Devices opens one bus per distinct Modbus URL and builds the configured
// devices on them (meter/device). A SunSpec device is discovered on its
// first read, within its own budget, so a device that is off at start does
// not stop the gateway. Devices on one bus carry its URL as Bus, so the
// gateway polls them one after another and other buses independently.
func Devices(cfg *config.Config, now func() time.Time, log *slog.Logger) ([]gateway.Device, func(), error) {
	buses := map[string]*bus.Bus{}
	closeAll := func() {
		for _, b := range buses {
			b.Close()
		}
	}
	var dirs []string
	if cfg.ProfileDir != "" {
		dirs = []string{cfg.ProfileDir}
	}
	var out []gateway.Device
	for _, d := range cfg.Devices {
		b := buses[d.URL]
		if b == nil {
			var err error
			if b, err = bus.Open(d.URL, bus.Options{Logger: log.With("bus", d.URL)}); err != nil {
				closeAll()
				return nil, nil, fmt.Errorf("device %q: %w", d.Name, err)
			}
			buses[d.URL] = b
		}
		dev, err := device.Open(b, uint8(d.Unit), d.Profile, device.Options{ProfileDirs: dirs, Now: now})
		if err != nil {
			closeAll()
			return nil, nil, fmt.Errorf("device %q: %w", d.Name, err)
		}
		out = append(out, gateway.Device{Name: d.Name, Role: d.Role, Poll: d.Poll, Bus: d.URL, Reader: dev})
	}
	return out, closeAll, nil
}

// messenger is the gateway's MQTT until it has started: its publishes fail
// (as the client's do while disconnected) until the loop has seen the
// client connected and is about to call gateway.Start, so that nothing a
// Tick before Start does (a clearer sealing a book it did not collect)
// reaches the broker, even if the connection comes up in the middle of
// that Tick. Everything else is the client's.
type messenger struct {
	*mqtt.Client
	live atomic.Bool
}

// What the gateway asks of its messenger beyond Publish and Subscribe: the
// client's, through the embedding.
var (
	_ gateway.Messenger        = (*messenger)(nil)
	_ gateway.StatusPublisher  = (*messenger)(nil)
	_ gateway.ConnectionLosses = (*messenger)(nil)
	_ gateway.Connectivity     = (*messenger)(nil)
	_ gateway.Connections      = (*messenger)(nil)
)

func (m *messenger) Publish(ctx context.Context, topic string, payload []byte, retained bool) error {
	if !m.live.Load() {
		return fmt.Errorf("mqtt: publish to %q: %w (the gateway has not subscribed yet)", topic, mqtt.ErrNotConnected)
	}
	return m.Client.Publish(ctx, topic, payload, retained)
}
