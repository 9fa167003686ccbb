package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/shopspring/decimal"

	"github.com/p2pgrid/p2pgrid/auction"
	"github.com/p2pgrid/p2pgrid/gateway/config"
	"github.com/p2pgrid/p2pgrid/gateway/protocol"
	"github.com/p2pgrid/p2pgrid/meter"
	"github.com/p2pgrid/p2pgrid/settlement"
	"github.com/p2pgrid/p2pgrid/settlement/ledger"
)

// Ledger is where a gateway records what it settled: the durable,
// tamper-evident local ledger (settlement/ledger satisfies it).
type Ledger interface {
	Append(entries ...ledger.Entry) ([]ledger.Record, error)
	Has(kind, key string) bool
}

// Ledger record kinds. The InfluxDB sink maps clearing, trade, settlement
// and reading to measurements; interval holds the whole settlement.
const (
	KindClearing   = "clearing"
	KindTrade      = "trade"
	KindSettlement = "settlement"
	KindInterval   = "interval"
	KindReading    = "reading"
)

// meterWindow is how close to an interval boundary the first reading after
// it must be for its counters to stand for the boundary: two poll periods.
const meterWindow = 2

// boundary is the grid meter's counters at the start of an interval.
type boundary struct {
	at       time.Time
	imp, exp int64
	ok       bool // the reading came within meterWindow poll periods of the start
}

// tariffs returns the settlement tariffs, or false when the market has no
// floor and cap to settle against.
func (g *Gateway) tariffs() (settlement.Tariffs, bool) {
	m := g.cfg.Market
	if m.PriceFloor == nil || m.PriceCap == nil {
		return settlement.Tariffs{}, false
	}
	return settlement.Tariffs{Retail: *m.PriceCap, FeedIn: *m.PriceFloor}, true
}

// meter records the grid meter's counters at interval boundaries and, once
// an interval is over, publishes what the meter counted during it; it also
// keeps one reading per device and interval in the ledger.
func (g *Gateway) meter(ctx context.Context, now time.Time, d *polled, r meter.Reading) {
	start := protocol.IntervalStart(now, g.schedule.Interval)
	if g.ledger != nil && d.lastLogged.Before(start) {
		d.lastLogged = start
		g.record(ledger.Entry{Kind: KindReading, Key: g.id + "/" + d.Name + "/" + protocol.IntervalID(start), Time: now,
			Data: readingJSON(g.id, d.Name, r)})
	}
	if d.Role != config.RoleGrid || r.ImportWh == nil || r.ExportWh == nil {
		return
	}
	g.mu.Lock()
	if _, seen := g.bounds[start]; seen {
		g.mu.Unlock()
		return
	}
	b := boundary{at: now, imp: *r.ImportWh, exp: *r.ExportWh, ok: now.Sub(start) <= meterWindow*d.Poll}
	g.bounds[start] = b
	prevStart := start.Add(-g.schedule.Interval)
	prev, havePrev := g.bounds[prevStart]
	g.mu.Unlock()
	if !havePrev {
		return
	}
	interval := protocol.IntervalID(prevStart)
	if !prev.ok || !b.ok {
		g.log.Info("no metered figures: no reading near an interval boundary", "interval", interval)
		return
	}
	imp, okI, why := settlement.CounterDelta(prev.imp, b.imp, 0)
	exp, okE, whyE := settlement.CounterDelta(prev.exp, b.exp, 0)
	if !okI || !okE {
		g.metrics.alarms.WithLabelValues("counter_reset").Inc()
		g.log.Warn("no metered figures: grid meter counters reset", "interval", interval, "import", why, "export", whyE)
		return
	}
	raw, err := protocol.SignMetered(g.key, g.cfg.Community, interval, g.id, imp, exp)
	if err == nil {
		err = g.publish(ctx, g.topics.Metered(g.id), raw, false)
	}
	if err != nil {
		g.log.Warn("metered figures not published", "interval", interval, "err", err)
		return
	}
	g.log.Debug("metered figures published", "interval", interval, "import_wh", imp, "export_wh", exp)
}

func readingJSON(gw, device string, r meter.Reading) []byte {
	m := map[string]any{"gateway": gw, "device": device, "time": r.Time.UTC().Format(time.RFC3339Nano)}
	if r.PowerW != nil {
		m["power_w"] = *r.PowerW
	}
	if r.ImportWh != nil {
		m["import_wh"] = *r.ImportWh
	}
	if r.ExportWh != nil {
		m["export_wh"] = *r.ExportWh
	}
	b, _ := json.Marshal(m) // map keys are sorted: deterministic
	return b
}

// collectMetered keeps a verified metered message for the clearer.
func (g *Gateway) collectMetered(topicGateway string, payload []byte) {
	if g.clearer == nil {
		return
	}
	m, err := protocol.DecodeMetered(payload)
	if err == nil && m.Gateway != topicGateway {
		err = fmt.Errorf("metered figures of %q posted on the topic of %q", m.Gateway, topicGateway)
	}
	if err == nil {
		err = m.Verify(g.roster)
	}
	if err != nil {
		g.metrics.badMessages.WithLabelValues(protocol.KindMetered).Inc()
		g.log.Warn("metered figures rejected", "from", topicGateway, "err", err)
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.metered[m.Interval] == nil {
		g.metered[m.Interval] = map[string][]byte{}
	}
	if _, dup := g.metered[m.Interval][m.Gateway]; !dup {
		g.metered[m.Interval][m.Gateway] = payload
	}
}

// settleDue is, for a clearer, the settling of the delivery interval that
// ended a gate-closure period ago (the gateways' metered figures have had
// that long to arrive).
func (g *Gateway) settleDue(ctx context.Context, now time.Time) {
	t, ok := g.tariffs()
	if !ok {
		return
	}
	start := protocol.IntervalStart(now.Add(-g.schedule.GateClosure), g.schedule.Interval).Add(-g.schedule.Interval)
	interval := protocol.IntervalID(start)
	end := start.Add(g.schedule.Interval)
	g.mu.Lock()
	res := g.cleared[interval]
	done := g.settledByUs[interval] || g.settlements[interval] != nil
	// Only a clearer that was listening when the interval ended has seen
	// every gateway's figures; settling without them would charge honest
	// sellers for energy they delivered.
	listening := g.startedAt.Before(end)
	// The primary settles; a standby settles what it cleared itself, or
	// when the primary's settlement is a grace period late.
	turn := g.cfg.Clearer == config.ClearerPrimary || g.sealedByUs[interval] ||
		!now.Before(end.Add(g.schedule.GateClosure+g.cfg.Market.Grace))
	var raws [][]byte
	for _, raw := range g.metered[interval] {
		raws = append(raws, raw)
	}
	g.mu.Unlock()
	if res == nil || done || !listening || !turn {
		return
	}
	s, err := settle(interval, res, t, raws)
	if err != nil {
		g.log.Error("cannot settle", "interval", interval, "err", err)
		return
	}
	js, err := s.MarshalJSON()
	if err != nil {
		g.log.Error("cannot settle", "interval", interval, "err", err)
		return
	}
	msg, err := protocol.EncodeSettlement(g.key, g.cfg.Community, interval, g.id, raws, js)
	if err == nil {
		err = g.publish(ctx, g.topics.Settlement(interval), msg, true)
	}
	if err != nil {
		g.log.Error("settlement not published; will retry", "interval", interval, "err", err)
		return
	}
	g.mu.Lock()
	g.settledByUs[interval] = true
	g.mu.Unlock()
	g.log.Info("interval settled and published", "interval", interval, "metered", len(raws), "participants", len(s.Participants))
}

// settle runs the settlement of a cleared interval from signed metered
// messages. Every gateway runs it: the clearer to publish, the others to
// check what was published.
func settle(interval string, res *auction.Result, t settlement.Tariffs, raws [][]byte) (*settlement.IntervalSettlement, error) {
	var ms []settlement.Metered
	for _, raw := range raws {
		m, err := protocol.DecodeMetered(raw)
		if err != nil {
			return nil, err
		}
		ms = append(ms, settlement.Metered{Participant: m.Gateway, ImportWh: m.ImportWh, ExportWh: m.ExportWh})
	}
	return settlement.Settle(interval, res, t, ms, settlement.SellerBearsShortfall{})
}

// checkSettlement verifies a published settlement, once the interval's
// clearing is verified, by settling again from the same signed figures;
// a match goes into the ledger, a mismatch raises an alarm.
func (g *Gateway) checkSettlement(interval string) {
	t, ok := g.tariffs()
	if !ok {
		return
	}
	g.mu.Lock()
	payload, res := g.settlements[interval], g.cleared[interval]
	done := g.settled[interval]
	g.mu.Unlock()
	if payload == nil || res == nil || done {
		return
	}
	g.mu.Lock()
	g.settled[interval] = true
	g.mu.Unlock()
	fail := func(err error) {
		g.metrics.verifications.WithLabelValues("settlement_mismatch").Inc()
		g.log.Error("published settlement does not verify", "interval", interval, "err", err)
		g.raise(protocol.Alarm{Interval: interval, Kind: "settlement_mismatch", Detail: truncate(err.Error(), 200)})
	}
	msg, err := protocol.DecodeSettlement(payload)
	if err != nil {
		fail(err)
		return
	}
	if _, err := msg.Verify(g.roster); err != nil {
		fail(err)
		return
	}
	raws := make([][]byte, len(msg.Metered))
	for i, m := range msg.Metered {
		raws[i] = m
	}
	s, err := settle(interval, res, t, raws)
	if err != nil {
		fail(err)
		return
	}
	mine, err := s.MarshalJSON()
	if err != nil || string(mine) != string(msg.Settlement) {
		fail(fmt.Errorf("interval %s: the settlement by %q differs from this gateway's settlement of the same figures", interval, msg.Clearer))
		return
	}
	g.metrics.verifications.WithLabelValues("settlement_ok").Inc()
	if g.ledger != nil {
		g.record(ledgerEntries(g.cfg.Community, g.now(), res, s, mine, g.market)...)
	}
	if g.opts.OnSettled != nil {
		g.opts.OnSettled(s)
	}
}

// record appends entries not in the ledger yet; a failure is logged and
// retried by nobody: the ledger is on the local disk, and the gateway
// keeps trading.
func (g *Gateway) record(entries ...ledger.Entry) {
	var fresh []ledger.Entry
	for _, e := range entries {
		if !g.ledger.Has(e.Kind, e.Key) {
			fresh = append(fresh, e)
		}
	}
	if len(fresh) == 0 {
		return
	}
	if _, err := g.ledger.Append(fresh...); err != nil {
		g.metrics.alarms.WithLabelValues("ledger").Inc()
		g.log.Error("ledger append failed", "err", err)
	}
}

// ledgerEntries are the records of a settled interval: the clearing, each
// trade, each participant's statement, and the whole settlement.
func ledgerEntries(community string, now time.Time, res *auction.Result, s *settlement.IntervalSettlement, full []byte, m *auction.Market) []ledger.Entry {
	iv := s.Interval
	js := func(v any) []byte { b, _ := json.Marshal(v); return b }
	var price any
	if res.Cleared {
		price = m.FormatPrice(res.Price)
	}
	out := []ledger.Entry{{Kind: KindClearing, Key: iv, Time: now, Data: js(map[string]any{
		"community": community, "interval": iv, "price": price, "volume_kwh": m.FormatKWh(res.Volume),
		"orders": res.Orders, "trades": len(res.Trades)})}}
	kwh := func(wh int64) string { return decimal.New(wh, -3).String() }
	for _, t := range s.Trades {
		out = append(out, ledger.Entry{Kind: KindTrade, Key: t.ID, Time: now, Data: js(map[string]any{
			"interval": iv, "id": t.ID, "seller": t.Seller, "buyer": t.Buyer,
			"kwh": kwh(t.DeliveredWh), "price": t.Price.String(), "amount": t.Amount.String()})})
	}
	for _, p := range s.Participants {
		rec := map[string]any{"interval": iv, "participant": p.Participant}
		for name, v := range p.Fields() {
			rec[name] = v.String()
		}
		out = append(out, ledger.Entry{Kind: KindSettlement, Key: iv + "/" + p.Participant, Time: now, Data: js(rec)})
	}
	out = append(out, ledger.Entry{Kind: KindInterval, Key: iv, Time: now, Data: full})
	return out
}
