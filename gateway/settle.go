package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
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

// tariffs returns the settlement tariffs, or false when the market has no
// floor and cap to settle against.
func (g *Gateway) tariffs() (settlement.Tariffs, bool) {
	m := g.cfg.Market
	if m.PriceFloor == nil || m.PriceCap == nil {
		return settlement.Tariffs{}, false
	}
	return settlement.Tariffs{Retail: *m.PriceCap, FeedIn: *m.PriceFloor}, true
}

// meter records the grid meter's counters at interval boundaries (on disk,
// so that a restart keeps them); publishMetered turns them into figures.
// It also keeps one reading per device and interval in the ledger.
func (g *Gateway) meter(_ context.Context, now time.Time, d *polled, r meter.Reading) {
	start := protocol.IntervalStart(now, g.schedule.Interval)
	if g.ledger != nil && d.lastLogged.Before(start) {
		d.lastLogged = start
		g.record(ledger.Entry{Kind: KindReading, Key: g.id + "/" + d.Name + "/" + protocol.IntervalID(start), Time: now,
			Data: readingJSON(g.id, d.Name, r)})
	}
	if d.Role != config.RoleGrid || r.ImportWh == nil || r.ExportWh == nil {
		return
	}
	b := boundary{Start: start, At: now, ImportWh: *r.ImportWh, ExportWh: *r.ExportWh, Near: now.Sub(start) <= meterWindow*d.Poll}
	if _, err := g.bounds.add(b); err != nil {
		g.log.Error("boundary counters not saved: a restart before the next boundary loses this interval's figures", "err", err)
	}
}

// publishMetered signs and publishes the metered figures of every interval
// whose boundary counters it has at both ends and whose figures are not
// out yet: after a restart too, and again after a failed publish.
func (g *Gateway) publishMetered(ctx context.Context) {
	for _, p := range g.bounds.due(g.schedule.Interval) {
		interval := protocol.IntervalID(p.end.Start.Add(-g.schedule.Interval))
		done := func(figures string) {
			if err := g.bounds.settle(p.end.Start, figures); err != nil {
				g.log.Error("boundary counters not saved", "err", err)
			}
		}
		switch {
		case p.start == nil:
			g.metrics.meteredMissing.WithLabelValues("not_running").Inc()
			g.log.Debug("no metered figures: the gateway did not read the meter at the interval's start", "interval", interval)
			done(figuresNone)
			continue
		case !p.start.Near || !p.end.Near:
			g.log.Warn("no metered figures: no reading near an interval boundary", "interval", interval,
				"start_reading", p.start.At.Sub(p.start.Start).Round(time.Second).String(),
				"end_reading", p.end.At.Sub(p.end.Start).Round(time.Second).String())
			g.metrics.meteredMissing.WithLabelValues("late_reading").Inc()
			done(figuresNone)
			continue
		}
		imp, okI, why := settlement.CounterDelta(p.start.ImportWh, p.end.ImportWh, 0)
		exp, okE, whyE := settlement.CounterDelta(p.start.ExportWh, p.end.ExportWh, 0)
		if !okI || !okE {
			g.metrics.meteredMissing.WithLabelValues("counter_reset").Inc()
			g.log.Warn("no metered figures: grid meter counters reset", "interval", interval, "import", why, "export", whyE)
			done(figuresNone)
			continue
		}
		raw, err := protocol.SignMetered(g.key, g.cfg.Community, interval, g.id, imp, exp)
		if err == nil {
			err = g.publish(ctx, g.topics.Metered(g.id), raw)
		}
		if err != nil {
			if ok, held := g.limit.allow("publish/metered", g.now()); ok {
				g.log.Warn("metered figures not published; will retry", "interval", interval, "err", err, "similar_not_logged", held)
			}
			return
		}
		done(figuresSent)
		g.log.Debug("metered figures published", "interval", interval, "import_wh", imp, "export_wh", exp)
	}
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
	signed := err == nil
	if signed {
		// Signed by its gateway, but not figures a meter can have counted:
		// for an interval that is not over, or beyond what the connection
		// carries. Refused (and so settled as missing), and alarmed: a home
		// cannot block the settlement with them.
		err = g.checkMetered(m, g.now())
	}
	if err != nil {
		if signed {
			g.raiseOnce(m.Interval, protocol.Alarm{Interval: m.Interval, Kind: protocol.AlarmMeteredRefused, Detail: truncate(err.Error(), 300)})
		}
		g.metrics.badMessages.WithLabelValues(protocol.KindMetered).Inc()
		if ok, held := g.limit.allow("metered/"+topicGateway, g.now()); ok {
			g.log.Warn("metered figures rejected", "from", topicGateway, "err", err, "similar_not_logged", held)
		}
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	iv := g.at(m.Interval, g.now())
	if iv == nil {
		g.log.Debug("metered figures for an interval this clearer no longer settles", "from", topicGateway, "interval", m.Interval)
		return
	}
	if iv.metered == nil {
		iv.metered = map[string][]byte{}
	}
	if _, dup := iv.metered[m.Gateway]; !dup {
		iv.metered[m.Gateway] = payload
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
	iv := g.at(interval, now)
	if iv == nil {
		g.mu.Unlock()
		return
	}
	res := iv.cleared
	done := iv.settledByUs || iv.settled
	// Only a clearer that was listening when the interval ended has seen
	// every gateway's figures; settling without them would charge honest
	// sellers for energy they delivered.
	listening := g.startedAt.Before(end)
	// The primary settles; a standby settles what it cleared itself, or
	// when the primary's settlement is a grace period late.
	turn := g.cfg.Clearer == config.ClearerPrimary || iv.sealedByUs ||
		!now.Before(end.Add(g.schedule.GateClosure+g.cfg.Market.Grace))
	var raws [][]byte
	for _, raw := range iv.metered {
		raws = append(raws, raw)
	}
	g.mu.Unlock()
	if res == nil || done || !listening || !turn {
		return
	}
	s, err := settle(interval, res, t, raws, g.meteredBound())
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
		err = g.publish(ctx, g.topics.Settlement(interval), msg)
	}
	if err != nil {
		if ok, held := g.limit.allow("publish/settlement", g.now()); ok {
			g.log.Error("settlement not published; will retry", "interval", interval, "err", err, "similar_not_logged", held)
		}
		return
	}
	g.mu.Lock()
	iv.settledByUs = true
	g.mu.Unlock()
	g.log.Info("interval settled and published", "interval", interval, "metered", len(raws), "participants", len(s.Participants))
}

// meteredBound is the most energy, in Wh, one home's connection can carry
// in one interval each way: market.max_connection_kw over the interval.
func (g *Gateway) meteredBound() int64 {
	kw := g.cfg.Market.MaxConnectionKW
	secs := decimal.NewFromInt(int64(g.schedule.Interval / time.Second))
	return kw.Mul(decimal.NewFromInt(1000)).Mul(secs).Div(decimal.NewFromInt(3600)).Truncate(0).IntPart()
}

// maxClockSkew is how far ahead of the clearer's clock a gateway's may be
// for its metered figures to count (at most the gate closure period, the
// time the clearer waits for figures after an interval's end): a clock a
// few seconds fast sends real figures a few seconds "early".
const maxClockSkew = 30 * time.Second

// checkMetered refuses signed figures no meter can have counted: for an
// interval that has not ended at now (give or take maxClockSkew), or
// beyond meteredBound.
func (g *Gateway) checkMetered(m *protocol.MeteredMsg, now time.Time) error {
	start, err := protocol.ParseInterval(m.Interval)
	if err != nil {
		return err
	}
	skew := min(maxClockSkew, g.cfg.Market.GateClosure)
	if end := start.Add(g.schedule.Interval); now.Add(skew).Before(end) {
		return fmt.Errorf("metered figures of %s for %s, an interval that is not over (it ends at %s)", m.Gateway, m.Interval, end.Format(time.RFC3339))
	}
	if bound := g.meteredBound(); m.ImportWh > bound || m.ExportWh > bound {
		return fmt.Errorf("metered figures of %s for %s (import %d Wh, export %d Wh) beyond what a %s kW connection carries in an interval (%d Wh): refused, settled as missing",
			m.Gateway, m.Interval, m.ImportWh, m.ExportWh, g.cfg.Market.MaxConnectionKW, bound)
	}
	return nil
}

// settle runs the settlement of a cleared interval from signed metered
// messages. Every gateway runs it: the clearer to publish, the others to
// check what was published. Figures beyond bound count as missing, on
// every gateway alike.
func settle(interval string, res *auction.Result, t settlement.Tariffs, raws [][]byte, bound int64) (*settlement.IntervalSettlement, error) {
	var ms []settlement.Metered
	for _, raw := range raws {
		m, err := protocol.DecodeMetered(raw)
		if err != nil {
			return nil, err
		}
		if m.ImportWh > bound || m.ExportWh > bound {
			continue
		}
		ms = append(ms, settlement.Metered{Participant: m.Gateway, ImportWh: m.ImportWh, ExportWh: m.ExportWh})
	}
	return settlement.Settle(interval, res, t, ms, settlement.SellerBearsShortfall{})
}

// checkSettlement verifies a published settlement, once the interval's
// clearing is verified, by settling again from the same signed figures;
// a match goes into the ledger, a mismatch raises an alarm. It runs from
// the result and the settlement subscriptions alike, which the MQTT client
// serves on goroutines of their own: settleMu makes each check, and the
// ledger append that follows it, happen once.
func (g *Gateway) checkSettlement(interval string) {
	t, ok := g.tariffs()
	if !ok {
		return
	}
	g.settleMu.Lock()
	defer g.settleMu.Unlock()
	g.mu.Lock()
	iv := g.intervals[interval]
	if iv == nil || iv.settlement == nil || iv.cleared == nil || iv.settled {
		g.mu.Unlock()
		return
	}
	payload, res := iv.settlement, iv.cleared
	seen := digest(payload)
	if iv.settleSeen == seen {
		g.mu.Unlock()
		return // this very message failed before
	}
	iv.settleSeen = seen
	g.mu.Unlock()

	fail := func(err error) {
		g.metrics.verifications.WithLabelValues(protocol.AlarmSettlementMismatch).Inc()
		g.log.Error("published settlement does not verify", "interval", interval, "err", err)
		g.raise(protocol.Alarm{Interval: interval, Kind: protocol.AlarmSettlementMismatch, Detail: truncate(err.Error(), 200)})
	}
	// What a roster clearer did not sign is nobody's settlement: counted and
	// logged, but no alarm (anyone with broker access could raise those).
	// So is a real settlement of another interval, republished here.
	msg, err := protocol.DecodeSettlement(payload)
	var metered []*protocol.MeteredMsg
	if err == nil {
		metered, err = msg.Verify(g.roster)
	}
	if err == nil && msg.Interval != interval {
		err = fmt.Errorf("a settlement of %s", msg.Interval)
	}
	if err != nil {
		g.metrics.badMessages.WithLabelValues(protocol.KindSettlement).Inc()
		if ok, held := g.limit.allow("settlement", g.now()); ok {
			g.log.Warn("settlement rejected", "interval", interval, "err", err, "similar_not_logged", held)
		}
		return
	}
	raws := make([][]byte, len(msg.Metered))
	for i, m := range msg.Metered {
		raws[i] = m
	}
	s, err := settle(interval, res, t, raws, g.meteredBound())
	if err != nil {
		fail(err)
		return
	}
	mine, err := s.MarshalJSON()
	if err != nil || string(mine) != string(msg.Settlement) {
		fail(fmt.Errorf("interval %s: the settlement by %q differs from this gateway's settlement of the same figures", interval, msg.Clearer))
		return
	}
	g.mu.Lock()
	iv.settled = true
	g.mu.Unlock()
	g.metrics.verifications.WithLabelValues("settlement_ok").Inc()
	if g.ledger != nil {
		g.record(ledgerEntries(g.cfg.Community, g.cfg.Market.Currency, g.now(), res, s, mine, g.market)...)
	}
	end := iv.start.Add(g.schedule.Interval)
	ours := false
	for _, m := range metered {
		ours = ours || m.Gateway == g.id
	}
	if !ours && g.bounds.sent(end) {
		g.metrics.meteredLost.Inc()
		g.raiseOnce(interval, protocol.Alarm{Interval: interval, Kind: protocol.AlarmMeteredMissing, Detail: fmt.Sprintf(
			"this gateway published its metered figures, but %s settled without them, so its trades count as undelivered: "+
				"the broker most likely drops metered/%s (its ACL must grant `pattern write p2pgrid/v1/+/metered/%%u`, as configs/mosquitto/acl does)",
			msg.Clearer, g.id)})
	}
	g.logStatement(interval, s)
	if g.opts.OnSettled != nil {
		g.opts.OnSettled(s)
	}
}

// logStatement logs what a settled interval brought this home.
func (g *Gateway) logStatement(interval string, s *settlement.IntervalSettlement) {
	for _, p := range s.Participants {
		if p.Participant != g.id {
			continue
		}
		cur := g.cfg.Market.Currency
		money := func(d decimal.Decimal) string { return settlement.Format(d, 2) + " " + cur }
		g.log.Info("interval settled", "interval", interval,
			"sold_kwh", kwhText(p.SoldWh), "bought_kwh", kwhText(p.BoughtWh),
			"net", money(p.Net), "saving", money(p.Saving))
		return
	}
}

func kwhText(wh int64) string { return decimal.New(wh, -3).String() }

// checkOverdue raises an alarm for an interval whose result, or whose
// settlement, is long overdue: no result a grace period after a standby's
// turn to clear (for an interval this gateway placed an order in), or no
// verified settlement a grace period after a standby's turn to settle (for
// an interval whose metered figures this gateway published).
func (g *Gateway) checkOverdue(now time.Time) {
	_, settles := g.tariffs()
	type overdue struct{ id, kind string }
	var late []overdue
	g.mu.Lock()
	for id, iv := range g.intervals {
		resultDue := g.schedule.GateClose(iv.start).Add(2 * g.cfg.Market.Grace)
		if iv.own != nil && iv.cleared == nil && !now.Before(resultDue) && !iv.alarmed[protocol.AlarmNoResult] {
			late = append(late, overdue{id, protocol.AlarmNoResult})
		}
		end := iv.start.Add(g.schedule.Interval)
		settleDue := end.Add(g.schedule.GateClosure + 2*g.cfg.Market.Grace)
		if settles && iv.cleared != nil && !iv.settled && !now.Before(settleDue) && !iv.alarmed[protocol.AlarmSettlementMissing] {
			late = append(late, overdue{id, protocol.AlarmSettlementMissing})
		}
	}
	g.mu.Unlock()
	sort.Slice(late, func(i, j int) bool { return late[i].id < late[j].id })
	for _, o := range late {
		switch o.kind {
		case protocol.AlarmNoResult:
			g.raiseOnce(o.id, protocol.Alarm{Interval: o.id, Kind: o.kind, Detail: "this gateway placed an order, but no result " +
				"that verifies has arrived: the clearers may be offline, or the broker drops book/ and result/" + o.id +
				" (its ACL must let clearers write them, as configs/mosquitto/acl does)"})
		case protocol.AlarmSettlementMissing:
			start, _ := protocol.ParseInterval(o.id)
			if !g.bounds.sent(start.Add(g.schedule.Interval)) {
				continue
			}
			g.raiseOnce(o.id, protocol.Alarm{Interval: o.id, Kind: o.kind, Detail: "this gateway published its metered figures, " +
				"but no settlement that verifies has arrived: the clearers may be offline, or the broker drops settlement/" + o.id +
				" (its ACL must let clearers write p2pgrid/v1/+/settlement/#, as configs/mosquitto/acl does)"})
		}
	}
}

// record appends entries not in the ledger yet. A failure is logged and
// counted, and retried by nobody: the ledger is on the local disk, and the
// gateway keeps trading. ledgerMu makes the check and the append one step.
func (g *Gateway) record(entries ...ledger.Entry) {
	g.ledgerMu.Lock()
	defer g.ledgerMu.Unlock()
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
		g.metrics.ledgerFailures.Inc()
		g.log.Error("ledger append failed", "err", err)
	}
}

// ledgerEntries are the records of a settled interval: the clearing, each
// trade, each participant's statement, and the whole settlement.
func ledgerEntries(community, currency string, now time.Time, res *auction.Result, s *settlement.IntervalSettlement, full []byte, m *auction.Market) []ledger.Entry {
	iv := s.Interval
	js := func(v any) []byte { b, _ := json.Marshal(v); return b }
	var price any
	if res.Cleared {
		price = m.FormatPrice(res.Price)
	}
	out := []ledger.Entry{{Kind: KindClearing, Key: iv, Time: now, Data: js(map[string]any{
		"community": community, "interval": iv, "price": price, "volume_kwh": m.FormatKWh(res.Volume),
		"orders": res.Orders, "trades": len(res.Trades), "currency": currency})}}
	for _, t := range s.Trades {
		out = append(out, ledger.Entry{Kind: KindTrade, Key: t.ID, Time: now, Data: js(map[string]any{
			"interval": iv, "id": t.ID, "seller": t.Seller, "buyer": t.Buyer,
			"kwh": kwhText(t.DeliveredWh), "price": t.Price.String(), "amount": t.Amount.String()})})
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
