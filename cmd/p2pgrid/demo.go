package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/shopspring/decimal"
	"github.com/spf13/cobra"

	"github.com/p2pgrid/p2pgrid/auction"
	"github.com/p2pgrid/p2pgrid/dashboard"
	"github.com/p2pgrid/p2pgrid/gateway"
	"github.com/p2pgrid/p2pgrid/gateway/clearing"
	"github.com/p2pgrid/p2pgrid/gateway/config"
	"github.com/p2pgrid/p2pgrid/internal/neighbourhood"
	"github.com/p2pgrid/p2pgrid/market"
	"github.com/p2pgrid/p2pgrid/meter/sim"
	"github.com/p2pgrid/p2pgrid/settlement"
)

type demoFlags struct {
	homes     int
	interval  time.Duration
	intervals int
	broker    string
	data      string
	http      string
	metrics   string
	dash      dashboardFlags
	seed      uint64
	start     string
	influx    config.Influx
}

func newDemoCmd(logger func() *slog.Logger) *cobra.Command {
	var f demoFlags
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run a whole neighbourhood on one machine: simulated homes, gateways, clearer",
		Long: `Run a neighbourhood on embedded defaults: an MQTT broker, N simulated homes
(a mix of solar-rich and consuming ones, each with an SDM630 grid meter and a
SunSpec inverter served over Modbus TCP), one gateway per home reading its
devices over Modbus, and the operator's gateway as clearer (home1 stands by),
with time accelerated so that one 15-minute interval passes every --interval.

Prints one line per interval, every interval from the first one traded, in
order, once it is settled (the settlement comes gate_closure after the
interval ends): the interval, orders, clearing price, volume, trades, how many
gateways verified the published result and how many recorded its settlement;
an interval never cleared, not verified or settled by every gateway, or settled
without someone's metered figures is marked with what went wrong. Runs until
interrupted, or until --intervals intervals are settled; then the exit status
is 0 only if every interval listed was cleared, verified and settled by every
gateway, with every gateway's figures (the error names the intervals that were
not). Intervals not yet settled when the demo is interrupted are listed as
pending, and not counted.

With --http ADDR it serves the operator's web dashboard (as p2pgrid operator
does, docs/operator.md) over the operator's ledger, with every gateway's live
status and verifications, and prints its address; make run opens it on
127.0.0.1:8080.`,
		Example: `  p2pgrid demo
  p2pgrid demo --homes 10 --interval 5s --intervals 4
  p2pgrid demo --broker tcp://127.0.0.1:1883 --http 127.0.0.1:9410`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if f.homes < 2 || f.homes > sim.MaxSharedHomes {
				return badInput(fmt.Errorf("--homes: %d is outside 2-%d", f.homes, sim.MaxSharedHomes))
			}
			if f.interval < 500*time.Millisecond {
				return badInput(fmt.Errorf("--interval: %s is too short (at least 500ms)", f.interval))
			}
			if f.intervals < 0 {
				return badInput(errors.New("--intervals: must not be negative"))
			}
			if f.http != "" {
				if err := f.dash.checkListen(f.http); err != nil {
					return badInput(err)
				}
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			log := logger()
			if !cmd.Flags().Changed("log-level") {
				// Seven gateways at info level drown the table: warnings
				// only, unless asked.
				log = slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: slog.LevelWarn}))
			}
			return runDemo(ctx, f, cmd.OutOrStdout(), log)
		},
	}
	fl := cmd.Flags()
	fl.IntVar(&f.homes, "homes", 6, "number of simulated homes")
	fl.DurationVar(&f.interval, "interval", 10*time.Second, "wall-clock length of one accelerated 15-minute interval")
	fl.IntVar(&f.intervals, "intervals", 0, "stop after this many intervals (0: run until interrupted)")
	fl.StringVar(&f.broker, "broker", "", "external MQTT broker URL (default: an embedded broker on loopback)")
	fl.StringVar(&f.data, "data", "", "data directory for keys, roster and ledgers (default: a new temporary directory)")
	fl.StringVar(&f.http, "http", "", "serve the operator's web dashboard (p2pgrid operator) on this address, with the gateways' live status")
	fl.StringVar(&f.metrics, "metrics-http", "", "serve the operator gateway's /metrics, /healthz and /tariff on this address")
	f.dash.register(cmd)
	fl.Uint64Var(&f.seed, "seed", 1, "seed of the homes, clouds and loads")
	fl.StringVar(&f.start, "start", "", "simulated start time, RFC 3339 (default: today 16:00 UTC)")
	fl.StringVar(&f.influx.URL, "influx", "", "also write the operator's ledger to InfluxDB at this URL")
	fl.StringVar(&f.influx.Bucket, "influx-bucket", "", `InfluxDB 2.x bucket, or 1.8 "database/retention-policy"`)
	fl.StringVar(&f.influx.Org, "influx-org", "", "InfluxDB 2.x organisation")
	fl.StringVar((*string)(&f.influx.Token), "influx-token", "", `InfluxDB 2.x token, or 1.8 "user:password"`)
	return cmd
}

func runDemo(ctx context.Context, f demoFlags, out io.Writer, log *slog.Logger) error {
	var start time.Time
	if f.start != "" {
		var err error
		if start, err = time.Parse(time.RFC3339, f.start); err != nil {
			return badInput(fmt.Errorf("--start: %w", err))
		}
	}
	if f.data == "" {
		dir, err := os.MkdirTemp("", "p2pgrid-demo-")
		if err != nil {
			return err
		}
		f.data = dir
	}
	var live *demoLive
	var ready func(*gateway.Gateway)
	if f.http != "" {
		live = newDemoLive(nil)
		ready = live.ready
	}
	n, err := neighbourhood.New(neighbourhood.Options{
		Homes: f.homes, Seed: f.seed, Start: start, Speed: float64(config.DefaultInterval) / float64(f.interval),
		Broker: f.broker, DataDir: f.data, HTTP: f.metrics, Influx: f.influx, Logger: log, Version: versionString(),
		Ready: ready,
	})
	if err != nil {
		return err
	}
	defer n.Close()
	operator := n.Config(neighbourhood.Operator)

	fmt.Fprintf(out, "p2pgrid demo: %d homes, broker %s, one 15-minute interval every %s, data in %s\n",
		f.homes, n.Broker, f.interval, f.data)
	fmt.Fprintf(out, "settlements: p2pgrid settlements --ledger %s\n", n.LedgerDir(neighbourhood.Operator))
	fmt.Fprintf(out, "each line comes once the interval is settled, %s (simulated) after its delivery ends\n", operator.Market.GateClosure)

	// The first interval listed is the first one traded: the one whose
	// orders are taken while the demo's first interval runs.
	tr := newDemoTracker(out, len(n.IDs), n.Now, operator, n.SimStart.Add(operator.Market.Interval), f.interval/20, f.intervals)
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var obs gateway.Observer = tr
	dashDone := make(chan error, 1)
	if live != nil {
		live.ids = n.IDs
		obs = observers{tr, live}
		if err := startDemoDashboard(runCtx, f, n.LedgerDir(neighbourhood.Operator), live, out, log, dashDone); err != nil {
			return err
		}
	}
	fmt.Fprintf(out, demoHeader, "INTERVAL", "ORDERS", "PRICE", "VOLUME kWh", "TRADES", "VERIFIED", "SETTLED")
	if err := n.Start(runCtx, obs); err != nil {
		return err
	}
	go tr.report(runCtx)
	select {
	case <-ctx.Done():
	case <-tr.done:
	case <-n.Done():
	case err := <-dashDone:
		dashDone = nil
		if err != nil {
			return err
		}
	}
	cancel()
	if live != nil && dashDone != nil {
		<-dashDone // the dashboard has shut down
	}
	if err := n.Close(); err != nil {
		return err
	}
	tr.mu.Lock()
	printed := tr.printed
	tr.mu.Unlock()
	tr.summary()
	var pending []string
	if f.intervals == 0 || printed < f.intervals {
		if pending = tr.pending(); len(pending) > 0 {
			fmt.Fprintf(out, "stopped before these were settled, not counted: %s\n", strings.Join(pending, ", "))
		}
	}
	if err := tr.verdict(); err != nil {
		return err
	}
	if f.intervals > 0 && printed < f.intervals {
		return fmt.Errorf("demo stopped after %d of %d intervals (pending: %s)", printed, f.intervals, strings.Join(pending, ", "))
	}
	return nil
}

// startDemoDashboard serves the dashboard over the operator's ledger with
// the live feed until ctx ends, once it listens (its address printed);
// its end is sent on done.
func startDemoDashboard(ctx context.Context, f demoFlags, dir string, live *demoLive, out io.Writer, log *slog.Logger, done chan error) error {
	o, err := f.dash.options(dir, log.With("component", "dashboard"))
	if err != nil {
		return badInput(err)
	}
	o.Live = live
	s, err := dashboard.New(o)
	if err != nil {
		return err
	}
	listening := make(chan struct{})
	go func() {
		done <- s.Run(ctx, f.http, func(a string) {
			fmt.Fprintf(out, "dashboard: http://%s/\n", a)
			close(listening)
		})
	}()
	select {
	case <-listening:
		return nil
	case err := <-done:
		return err
	}
}

// demoTracker gathers, per interval, the clearing, who verified it and who
// recorded its settlement, and prints one line per interval, in order, from
// the first one the demo trades: every interval, cleared or not, settled or
// not. A line is printed once every gateway has recorded the interval's
// settlement, or once the settlement is overdue (demoOverdue after it was
// due, in simulated time): an interval that was never cleared or never
// settled is printed too, with what went wrong.
type demoTracker struct {
	out      io.Writer
	gateways int
	now      func() time.Time // the simulator's clock
	length   time.Duration    // market interval
	settleAt time.Duration    // after an interval's end: market.gate_closure
	tick     time.Duration    // wall-clock period of the report loop
	limit    int              // intervals to print; 0: until stopped
	done     chan struct{}

	mu        sync.Mutex
	next      time.Time // start of the next interval to print
	intervals map[string]*demoInterval
	printed   int
	failed    []string                         // one phrase per interval that went wrong, in order
	settled   []*settlement.IntervalSettlement // of the printed intervals, for the summary
}

// demoOverdue is how long, in simulated time, the demo waits past an
// interval's settlement time for the stragglers: the standby settles a
// grace period late, and the slowest gateway verifies a few ticks later.
const demoOverdue = 5 * time.Minute

type demoInterval struct {
	result   *auction.Result
	ok, bad  map[string]bool
	settled  map[string]bool
	noFigure []string                       // participants settled without metered figures
	first    *settlement.IntervalSettlement // the first gateway's settlement
}

func newDemoTracker(out io.Writer, gateways int, now func() time.Time, cfg *config.Config, first time.Time, tick time.Duration, limit int) *demoTracker {
	return &demoTracker{out: out, gateways: gateways, now: now, length: cfg.Market.Interval, settleAt: cfg.Market.GateClosure,
		tick: tick, limit: limit, done: make(chan struct{}), next: first, intervals: map[string]*demoInterval{}}
}

func (t *demoTracker) get(interval string) *demoInterval {
	d := t.intervals[interval]
	if d == nil {
		d = &demoInterval{ok: map[string]bool{}, bad: map[string]bool{}, settled: map[string]bool{}}
		t.intervals[interval] = d
	}
	return d
}

var _ gateway.Observer = (*demoTracker)(nil)

// Sealed implements gateway.Observer.
func (t *demoTracker) Sealed(_ string, s *clearing.Sealed) {
	t.mu.Lock()
	defer t.mu.Unlock()
	d := t.get(s.Interval)
	if d.result == nil {
		d.result = s.Cleared
	}
}

// Verified implements gateway.Observer.
func (t *demoTracker) Verified(gw, interval string, _ *clearing.Verdict, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	d := t.get(interval)
	if err != nil {
		d.bad[gw] = true
	} else {
		d.ok[gw] = true
	}
}

// Settled implements gateway.Observer.
func (t *demoTracker) Settled(gw string, s *settlement.IntervalSettlement) {
	t.mu.Lock()
	defer t.mu.Unlock()
	d := t.get(s.Interval)
	if len(d.settled) == 0 {
		d.first = s
		for _, p := range s.Participants {
			if p.MissingIntervals > 0 {
				d.noFigure = append(d.noFigure, p.Participant)
			}
		}
	}
	d.settled[gw] = true
}

const demoHeader = "%-18s %6s %9s %11s %6s %9s %8s\n"

// report prints the intervals in order as each one is settled everywhere
// or overdue, and closes done after the limit.
func (t *demoTracker) report(ctx context.Context) {
	tick := time.NewTicker(t.tick)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if t.printDue() {
			close(t.done)
			return
		}
	}
}

// printDue prints every interval that is due, and reports whether the
// limit is reached.
func (t *demoTracker) printDue() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	for {
		id := market.IntervalID(t.next)
		d := t.get(id)
		overdue := !now.Before(t.next.Add(t.length + t.settleAt + demoOverdue))
		if len(d.settled) < t.gateways && !overdue {
			return false
		}
		t.printLine(id, d)
		delete(t.intervals, id)
		t.next = t.next.Add(t.length)
		if t.limit > 0 && t.printed >= t.limit {
			return true
		}
	}
}

func (t *demoTracker) printLine(id string, d *demoInterval) {
	t.printed++
	if d.first != nil {
		t.settled = append(t.settled, d.first)
	}
	verified, settled := fmt.Sprintf("%d/%d", len(d.ok), t.gateways), fmt.Sprintf("%d/%d", len(d.settled), t.gateways)
	var wrong []string
	if d.result == nil {
		wrong = append(wrong, "never cleared")
		fmt.Fprintf(t.out, demoHeader[:len(demoHeader)-1], id, "-", "-", "-", "-", verified, settled)
	} else {
		r := d.result
		price := "-"
		if r.Cleared {
			price = decimal.New(r.Price, -int32(r.PriceDecimals)).StringFixed(4)
		}
		vol := decimal.New(r.Volume, -int32(r.QtyDecimals)).StringFixed(3)
		fmt.Fprintf(t.out, "%-18s %6d %9s %11s %6d %9s %8s", id, r.Orders, price, vol, len(r.Trades), verified, settled)
		if len(d.ok) != t.gateways {
			wrong = append(wrong, "verified by "+verified)
		}
	}
	switch {
	case len(d.settled) == 0:
		wrong = append(wrong, "never settled")
	case len(d.settled) != t.gateways:
		wrong = append(wrong, "settled by "+settled)
	}
	if len(d.noFigure) > 0 {
		sort.Strings(d.noFigure)
		wrong = append(wrong, "settled without the figures of "+strings.Join(d.noFigure, ", "))
	}
	if len(wrong) > 0 {
		fmt.Fprintf(t.out, "  <- %s", strings.Join(wrong, "; "))
		t.failed = append(t.failed, id+" "+strings.Join(wrong, ", "))
	}
	fmt.Fprintln(t.out)
}

// summary prints the community's totals over the printed intervals that
// were settled (settlement.CommunityTotals).
func (t *demoTracker) summary() {
	t.mu.Lock()
	defer t.mu.Unlock()
	c := settlement.CommunityTotals(t.settled...)
	fmt.Fprintf(t.out, "summary: %d intervals settled, exchanged peer to peer %s kWh of %s kWh possible locally (local share %s%%), %s%% of consumption met by neighbours\n",
		c.Intervals, decimal.New(c.ExchangedWh(), -3), decimal.New(c.PossibleLocalWh, -3),
		settlement.Format(c.ExchangeShare.Shift(2), 1), settlement.Format(c.LocalShare.Shift(2), 1))
}

// pending lists the intervals from the next one to print up to the one now
// open for orders, which the demo stopped before they were due.
func (t *demoTracker) pending() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []string
	last := market.IntervalStart(t.now(), t.length).Add(t.length) // taking orders now
	for iv := t.next; !iv.After(last); iv = iv.Add(t.length) {
		if t.limit > 0 && t.printed+len(out) >= t.limit {
			break
		}
		out = append(out, market.IntervalID(iv))
	}
	return out
}

// verdict is nil if every printed interval was cleared, verified and
// settled by every gateway with everyone's figures; else one line naming
// the intervals that were not.
func (t *demoTracker) verdict() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.failed) == 0 {
		return nil
	}
	return fmt.Errorf("%d of %d intervals not cleared, verified and settled by every gateway with every figure: %s",
		len(t.failed), t.printed, strings.Join(t.failed, "; "))
}
