// Package localshare measures how much of the energy neighbours physically
// share a community trades peer to peer (issue 13): it runs simulated days
// through the real gateways and reports the local share
// (settlement.Community.ExchangeShare), the share of consumption met by
// neighbours, every home's saving, the shortfall compensation sellers paid
// and the error of the orders' forecasts.
//
// Every home is a real gateway.Gateway (its forecaster, its order logic,
// its boundary counters and metered figures, its verification of the result
// and the settlement) reading a meter/sim ModelH0 home; the operator's
// gateway collects the orders, seals the book, clears it with the auction
// and settles each interval; they talk over the in-process hub of
// gateway/gatewaytest instead of a broker, and run on one clock moved by
// hand in steps, so a run is deterministic: the same options give the
// same Result, byte for byte. What is bypassed is only transport: Modbus
// (the home's grid meter is read in process) and MQTT.
//
// It knows nothing of how a Result is printed.
package localshare

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"time"

	"github.com/shopspring/decimal"

	"github.com/p2pgrid/p2pgrid/auction"
	"github.com/p2pgrid/p2pgrid/gateway"
	"github.com/p2pgrid/p2pgrid/gateway/clearing"
	"github.com/p2pgrid/p2pgrid/gateway/config"
	"github.com/p2pgrid/p2pgrid/gateway/gatewaytest"
	"github.com/p2pgrid/p2pgrid/gateway/protocol"
	"github.com/p2pgrid/p2pgrid/internal/neighbourhood/community"
	"github.com/p2pgrid/p2pgrid/market"
	"github.com/p2pgrid/p2pgrid/meter"
	"github.com/p2pgrid/p2pgrid/meter/sim"
	"github.com/p2pgrid/p2pgrid/settlement"
)

// Options are one measured day.
type Options struct {
	Homes int    // 2 to sim.MaxSharedHomes
	Seed  uint64 // of the homes, their loads and clouds
	// Day is the local date measured, in Zone: every interval from its
	// midnight to the next, or from From to To after its midnight (To 0:
	// the next midnight).
	Day      time.Time
	From, To time.Duration
	Zone     *time.Location // the community's time zone; nil: UTC
	// Latitude and Longitude of the community, degrees.
	Latitude, Longitude float64
	// WarmUp is how long the gateways run before the day starts, so that
	// the forecasters have readings (a gateway runs for months, not from
	// the day's midnight); 0: one hour.
	WarmUp time.Duration
	// Step is how far the clock moves between two rounds of Ticks; 0: 10 s.
	Step time.Duration
	// Configure, if set, changes every gateway's configuration after the
	// measurement's own settings (a what-if: another safety factor, another
	// minimum trade); the result must validate.
	Configure func(cfg *config.Config)
	// Logger is the gateways'; nil discards.
	Logger *slog.Logger
}

// Result is what one day measured.
type Result struct {
	Intervals int // intervals of the day settled
	Expected  int // intervals the day has
	// Settlements are the operator's settlements of the day's intervals, in
	// order; Totals their community totals.
	Settlements []*settlement.IntervalSettlement
	Totals      settlement.Community
	// Savings are each home's summed Saving, by home id.
	Savings map[string]decimal.Decimal
	// CompensationPaid is what sellers paid buyers for energy they sold but
	// did not deliver, summed over homes; Payers how many homes paid any.
	CompensationPaid decimal.Decimal
	Payers           int
	// ForecastAbsWh sums, over every home and interval, |order - metered|:
	// the order as placed (Wh, sell positive, buy negative, 0 without an
	// order) against the metered net export (export - import); ForecastN is
	// the number of home-intervals summed.
	ForecastAbsWh int64
	ForecastN     int64
}

// ForecastMAE is the forecast's mean absolute error in Wh per home and
// interval, rounded half to even to 1 decimal; 0 without intervals.
func (r Result) ForecastMAE() decimal.Decimal {
	if r.ForecastN == 0 {
		return decimal.Zero
	}
	return decimal.NewFromInt(r.ForecastAbsWh).DivRound(decimal.NewFromInt(r.ForecastN), 4).RoundBank(1)
}

// MinSaving is the lowest home's saving over the day, and how many homes
// saved less than nothing.
func (r Result) MinSaving() (decimal.Decimal, int) {
	ids := make([]string, 0, len(r.Savings))
	for id := range r.Savings {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	var least decimal.Decimal
	below := 0
	for i, id := range ids {
		s := r.Savings[id]
		if i == 0 || s.LessThan(least) {
			least = s
		}
		if s.IsNegative() {
			below++
		}
	}
	return least, below
}

// clock is the one clock every gateway and the simulator run on.
type clock struct{ now time.Time }

func (c *clock) Now() time.Time { return c.now }

// gridMeter is a home's grid meter, read in process at the clock's time.
type gridMeter struct {
	home  *sim.Home
	clock *clock
}

var _ meter.Device = (*gridMeter)(nil)

// Read implements meter.Device.
func (m *gridMeter) Read(context.Context) (meter.Reading, error) {
	s := m.home.At(m.clock.Now())
	return meter.Reading{Device: sim.MeterProfile, Unit: sim.MeterUnit, Kind: meter.KindMeter,
		PowerW: meter.F(float64(s.GridW)), ImportWh: meter.Wh(s.ImportWh), ExportWh: meter.Wh(s.ExportWh)}, nil
}

// Run measures one day.
func Run(ctx context.Context, o Options) (*Result, error) {
	if o.Homes < 2 || o.Homes > sim.MaxSharedHomes {
		return nil, fmt.Errorf("localshare: %d homes is outside 2-%d", o.Homes, sim.MaxSharedHomes)
	}
	if o.Zone == nil {
		o.Zone = time.UTC
	}
	if o.WarmUp == 0 {
		o.WarmUp = time.Hour
	}
	if o.Step == 0 {
		o.Step = 10 * time.Second
	}
	if o.WarmUp < 0 || o.Step < 0 {
		return nil, errors.New("localshare: warm-up and step must not be negative")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	y, m, d := o.Day.Date()
	dayStart := time.Date(y, m, d, 0, 0, 0, 0, o.Zone)
	until := o.To
	if until == 0 {
		until = dayStart.AddDate(0, 0, 1).Sub(dayStart)
	}
	if o.From < 0 || until <= o.From {
		return nil, fmt.Errorf("localshare: from %s to %s after midnight is no time", o.From, until)
	}
	start := dayStart.Add(o.From - o.WarmUp)
	clk := &clock{now: start}

	specs := sim.H0Homes(o.Homes, o.Seed, o.Latitude, o.Longitude, o.Zone)
	homes := map[string]*sim.Home{}
	layout := community.Layout{ID: "measure", Key: community.SeededKeys("p2pgrid localshare"),
		Configure: func(i int, cfg *config.Config) {
			cfg.Telemetry.Enabled, cfg.Apps.Enabled = false, false
			cfg.HTTP = ""
			if i > 0 { // as the demo's homes: selling at 0.06 to 0.12, buying at 0.28 to 0.19
				sell, buy := decimal.New(6+int64(i%4)*2, -2), decimal.New(28-int64(i%4)*3, -2)
				cfg.Policy.MinSellPrice, cfg.Policy.MaxBuyPrice = &sell, &buy
			}
			if o.Configure != nil {
				o.Configure(cfg)
			}
		}}
	for _, s := range specs {
		layout.Homes = append(layout.Homes, s.Name)
		homes[s.Name] = sim.NewHome(s, start)
	}
	members, roster, err := layout.Build()
	if err != nil {
		return nil, fmt.Errorf("localshare: %w", err)
	}

	rec := newRecorder(dayStart.Add(o.From), dayStart.Add(until))
	hub := gatewaytest.NewHub()
	var gws []*gateway.Gateway
	for _, mb := range members {
		id := mb.Config.Gateway
		var devs []gateway.Device
		if h := homes[id]; h != nil {
			devs = []gateway.Device{{Name: "grid", Role: config.RoleGrid, Poll: 30 * time.Second, Reader: &gridMeter{home: h, clock: clk}}}
		}
		g, err := gateway.New(gateway.Options{Config: mb.Config, Key: mb.Key, Roster: roster, MQTT: hub.Client(id),
			Devices: devs, Now: clk.Now, Logger: o.Logger.With("gateway", id), Observer: rec, SyncPolls: true})
		if err != nil {
			return nil, fmt.Errorf("localshare: %w", err)
		}
		gws = append(gws, g)
	}
	for _, g := range gws {
		if err := g.Start(); err != nil {
			return nil, fmt.Errorf("localshare: %w", err)
		}
	}
	// Run until the day's last interval is settled: gate closure after its
	// end, plus a grace period for the standby.
	cfg := members[0].Config
	stop := dayStart.Add(until).Add(cfg.Market.GateClosure + cfg.Market.Grace + time.Minute)
	for ; !clk.now.After(stop); clk.now = clk.now.Add(o.Step) {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		for _, g := range gws {
			g.Tick(ctx, clk.now)
		}
	}
	return rec.result(cfg.Market.Interval)
}

// recorder is the gateways' Observer: it keeps the operator's books and
// settlements of the day's intervals.
type recorder struct {
	from, to    time.Time
	books       map[string]*protocol.BookMsg
	settlements map[string]*settlement.IntervalSettlement
	err         error
}

func newRecorder(from, to time.Time) *recorder {
	return &recorder{from: from, to: to, books: map[string]*protocol.BookMsg{}, settlements: map[string]*settlement.IntervalSettlement{}}
}

var _ gateway.Observer = (*recorder)(nil)

func (r *recorder) inDay(interval string) bool {
	t, err := market.ParseInterval(interval)
	return err == nil && !t.Before(r.from) && t.Before(r.to)
}

// Verified implements gateway.Observer.
func (r *recorder) Verified(string, string, *clearing.Verdict, error) {}

// Sealed implements gateway.Observer: the operator's book of each interval.
func (r *recorder) Sealed(gw string, s *clearing.Sealed) {
	if gw != community.Operator || !r.inDay(s.Interval) || r.books[s.Interval] != nil {
		return
	}
	b, err := protocol.DecodeBook(s.Book)
	if err != nil && r.err == nil {
		r.err = fmt.Errorf("localshare: book of %s: %w", s.Interval, err)
	}
	r.books[s.Interval] = b
}

// Settled implements gateway.Observer: the operator's settlement of each
// interval.
func (r *recorder) Settled(gw string, s *settlement.IntervalSettlement) {
	if gw == community.Operator && r.inDay(s.Interval) && r.settlements[s.Interval] == nil {
		r.settlements[s.Interval] = s
	}
}

// result sums the day's settlements and compares each home's order with
// what its meter counted.
func (r *recorder) result(interval time.Duration) (*Result, error) {
	if r.err != nil {
		return nil, r.err
	}
	res := &Result{Savings: map[string]decimal.Decimal{}}
	var settled []*settlement.IntervalSettlement
	payers := map[string]bool{}
	for t := r.from; t.Before(r.to); t = t.Add(interval) {
		res.Expected++
		id := market.IntervalID(t)
		s := r.settlements[id]
		if s == nil {
			continue
		}
		settled = append(settled, s)
		orders := map[string]int64{} // signed Wh
		if b := r.books[id]; b != nil {
			for _, raw := range b.Orders {
				o, err := protocol.DecodeOrder(raw)
				if err != nil {
					return nil, fmt.Errorf("localshare: order in the book of %s: %w", id, err)
				}
				q, err := decimal.NewFromString(o.KWh)
				if err != nil {
					return nil, fmt.Errorf("localshare: order of %s in %s: kwh %q: %w", o.Gateway, id, o.KWh, err)
				}
				wh := q.Shift(3).Truncate(0).IntPart()
				if o.Side == auction.Buy {
					wh = -wh
				}
				orders[o.Gateway] = wh
			}
		}
		for _, st := range s.Participants {
			res.Savings[st.Participant] = res.Savings[st.Participant].Add(st.Saving)
			res.CompensationPaid = res.CompensationPaid.Add(st.CompensationPaid)
			if st.CompensationPaid.IsPositive() {
				payers[st.Participant] = true
			}
			diff := orders[st.Participant] - (st.ExportWh - st.ImportWh)
			res.ForecastAbsWh += max(diff, -diff)
			res.ForecastN++
		}
	}
	res.Intervals = len(settled)
	res.Payers = len(payers)
	res.Settlements = settled
	res.Totals = settlement.CommunityTotals(settled...)
	return res, nil
}
