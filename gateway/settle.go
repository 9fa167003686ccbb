package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"time"

	"github.com/shopspring/decimal"

	"github.com/p2pgrid/p2pgrid/auction"
	"github.com/p2pgrid/p2pgrid/gateway/config"
	"github.com/p2pgrid/p2pgrid/gateway/protocol"
	"github.com/p2pgrid/p2pgrid/gateway/settling"
	"github.com/p2pgrid/p2pgrid/market"
	"github.com/p2pgrid/p2pgrid/meter"
	"github.com/p2pgrid/p2pgrid/settlement"
	"github.com/p2pgrid/p2pgrid/settlement/ledger"
	"github.com/p2pgrid/p2pgrid/settlement/record"
)

// Ledger is where a gateway records what it settled: the durable,
// tamper-evident local ledger (settlement/ledger satisfies it).
type Ledger interface {
	Append(entries ...ledger.Entry) ([]ledger.Record, error)
	Has(kind, key string) bool
}

// meterWindow is how close to an interval boundary the first reading after
// it must be for its counters to stand for the boundary: two poll periods.
const meterWindow = 2

// takeReading records the grid meter's counters at interval boundaries (on disk,
// so that a restart keeps them); publishMetered turns them into figures.
// It also keeps one reading per device and interval in the ledger.
func (g *Gateway) takeReading(_ context.Context, now time.Time, d *deviceState, r meter.Reading) {
	start := g.calendar.Start(now)
	if g.ledger != nil && d.lastLogged.Before(start) {
		d.lastLogged = start
		g.record(record.ReadingEntry(g.id, d.Name, market.IntervalID(start), now, r))
	}
	if d.Role != config.RoleGrid || r.ImportWh == nil || r.ExportWh == nil {
		return
	}
	b := settling.Boundary{Start: start, At: now, ImportWh: *r.ImportWh, ExportWh: *r.ExportWh, Near: now.Sub(start) <= meterWindow*d.Poll}
	if _, err := g.bounds.Add(b); err != nil {
		g.log.Error("boundary counters not saved: a restart before the next boundary loses this interval's figures", "err", err)
	}
}

// publishMetered signs and publishes the metered figures of every interval
// whose boundary counters it has at both ends and whose figures are not
// out yet: after a restart too, and again after a failed publish.
func (g *Gateway) publishMetered(ctx context.Context) {
	for _, d := range g.bounds.Due(g.calendar.Interval) {
		interval := market.IntervalID(d.End.Start.Add(-g.calendar.Interval))
		done := func(figures string) {
			if err := g.bounds.Settle(d.End.Start, figures); err != nil {
				g.log.Error("boundary counters not saved", "err", err)
			}
		}
		if !g.member(d.End.Start.Add(-g.calendar.Interval)) {
			// Figures the clearers would reject: the roster of the
			// interval does not list this gateway.
			g.log.Debug("no metered figures: not a member in the interval", "interval", interval)
			done(settling.FiguresNone)
			continue
		}
		imp, exp, err := settling.Figures(d)
		var none *settling.NoFigures
		if errors.As(err, &none) {
			g.metrics.meteredMissing.WithLabelValues(none.Reason).Inc()
			level := slog.LevelWarn
			if none.Reason == settling.NoFiguresNotRunning {
				level = slog.LevelDebug // the interval the gateway started in
			}
			g.log.Log(ctx, level, "no metered figures", "interval", interval, "reason", none.Reason, "detail", none.Detail)
			done(settling.FiguresNone)
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
		done(settling.FiguresSent)
		g.mu.Lock()
		if iv := g.at(interval, g.now()); iv != nil {
			iv.ownMetered = raw // published again after a reconnect until settled: see republish
		}
		g.mu.Unlock()
		g.log.Debug("metered figures published", "interval", interval, "import_wh", imp, "export_wh", exp)
	}
}

// collectMetered hands a metered message to the clearer's collector and
// counts the outcome; signed figures no meter can have counted raise an
// alarm, naming the gateway that signed them.
func (g *Gateway) collectMetered(topicGateway string, payload []byte) {
	if g.collector == nil {
		return
	}
	gw, interval, err := g.collector.Offer(g.now(), topicGateway, payload)
	switch {
	case err == nil:
		return
	case errors.Is(err, settling.ErrTooOld):
		g.log.Debug("metered figures for an interval this clearer no longer settles", "from", gw, "interval", interval)
		return
	}
	var refused *settling.RefusedError
	if errors.As(err, &refused) {
		g.raiseOnce(interval, protocol.Alarm{Interval: interval, Kind: protocol.AlarmMeteredRefused, Detail: truncate(err.Error(), 300)})
	}
	g.metrics.badMessages.WithLabelValues(protocol.KindMetered).Inc()
	if ok, held := g.limit.allow("metered/"+topicGateway, g.now()); ok {
		g.log.Warn("metered figures rejected", "from", topicGateway, "err", err, "similar_not_logged", held)
	}
}

// settleDue is, for a clearer, the settling of every kept interval whose
// settlement is due: a gate-closure period after its end (the gateways'
// metered figures have had that long to arrive), a grace period later for
// a standby that did not clear it itself. A clearer that was not listening
// when the interval ended settles it once it holds the figures of every
// gateway that traded (retained figures come with every subscription):
// so a clearer restarted after an interval ended, even both of them,
// still settles it, and never charges an honest seller for figures it
// missed. Figures that are still not there a gate-closure period after
// its start (a standby: and a grace period, the primary's turn first) were
// never published (a home's disk was full, its meter silent): it then
// settles without them, as a clearer that was listening does at its turn,
// rather than never.
func (g *Gateway) settleDue(ctx context.Context, now time.Time) {
	if !g.settles {
		return
	}
	var due []string
	g.mu.Lock()
	for id, iv := range g.intervals {
		if iv.cleared == nil || iv.settledHere || iv.settled {
			continue
		}
		// The primary settles; a standby settles what it cleared itself,
		// or when the primary's settlement is a grace period late.
		standby := g.cfg.Clearer == config.ClearerStandby && !iv.clearedHere
		if !now.Before(g.calendar.SettleAt(iv.start, standby)) {
			due = append(due, id)
		}
	}
	g.mu.Unlock()
	sort.Strings(due)
	for _, interval := range due {
		g.settle(ctx, interval)
	}
}

// settle settles one cleared interval and publishes the settlement.
func (g *Gateway) settle(ctx context.Context, interval string) {
	g.mu.Lock()
	iv := g.intervals[interval]
	if iv == nil {
		g.mu.Unlock()
		return
	}
	res, book := iv.cleared, iv.clearedOrders
	listening := g.startedAt.Before(g.calendar.End(iv.start))
	wait := g.calendar.GateClosure
	if g.cfg.Clearer == config.ClearerStandby && !iv.clearedHere {
		wait += g.calendar.Grace // the primary's turn first, as at SettleAt
	}
	waited := !g.now().Before(g.startedAt.Add(wait))
	g.mu.Unlock()
	if !listening && !waited && !g.hasAllFigures(interval, res) {
		return // the retained figures of a trader may still be on their way
	}
	if !g.rosterAt(interval).IsClearer(g.id) {
		return // nobody's settlement: see seal
	}
	figures := g.collector.Figures(interval)
	msg, s, err := settling.Seal(g.key, g.cfg.Community, g.id, interval, res, book, g.rules, figures)
	if err != nil {
		g.log.Error("cannot settle", "interval", interval, "err", err)
		return
	}
	err = g.publish(ctx, g.topics.Settlement(interval), msg)
	if err != nil {
		if ok, held := g.limit.allow("publish/settlement", g.now()); ok {
			g.log.Error("settlement not published; will retry", "interval", interval, "err", err, "similar_not_logged", held)
		}
		return
	}
	g.mu.Lock()
	iv.settledHere, iv.ownSettled = true, msg // published again after a reconnect: see republish
	g.mu.Unlock()
	g.log.Debug("interval settled and published", "interval", interval, "metered", len(figures), "participants", len(s.Participants))
}

// hasAllFigures reports whether the clearer holds the figures of every
// gateway that traded in res.
func (g *Gateway) hasAllFigures(interval string, res *auction.Result) bool {
	have := map[string]bool{}
	for _, raw := range g.collector.Figures(interval) {
		if m, err := protocol.DecodeMetered(raw); err == nil {
			have[m.Gateway] = true
		}
	}
	for _, f := range res.Fills {
		if !have[f.Participant] {
			return false
		}
	}
	return true
}

// checkSettlement verifies a published settlement, once the interval's
// clearing is verified, by settling again from the same signed figures;
// a match goes into the ledger, a mismatch raises an alarm. It runs from
// the result and the settlement subscriptions alike, which the MQTT client
// serves on goroutines of their own: settleMu makes each check, and the
// ledger append that follows it, happen once.
func (g *Gateway) checkSettlement(interval string) {
	if !g.settles {
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
	book, result, orders := iv.clearedBook, iv.clearedResult, iv.clearedOrders
	seen := digest(payload)
	if iv.settleSeen == seen {
		g.mu.Unlock()
		return // this very message failed before
	}
	iv.settleSeen = seen
	g.mu.Unlock()

	v, err := settling.Verify(g.rosterAt(interval), interval, res, orders, g.rules, payload)
	if errors.Is(err, settling.ErrNotASettlement) {
		// Nobody's settlement: counted and logged, but no alarm (anyone
		// with broker access could raise those).
		g.metrics.badMessages.WithLabelValues(protocol.KindSettlement).Inc()
		if ok, held := g.limit.allow("settlement", g.now()); ok {
			g.log.Warn("settlement rejected", "interval", interval, "err", err, "similar_not_logged", held)
		}
		return
	}
	if err != nil {
		g.noteVerdict(interval, "", protocol.AlarmSettlementMismatch)
		g.metrics.verifications.WithLabelValues(protocol.AlarmSettlementMismatch).Inc()
		g.log.Error("published settlement does not verify", "interval", interval, "err", err)
		g.raise(protocol.Alarm{Interval: interval, Kind: protocol.AlarmSettlementMismatch, Detail: truncate(err.Error(), 200)})
		return
	}
	s := v.Settlement
	g.mu.Lock()
	iv.settled, iv.settledBy = true, v.Clearer
	g.mu.Unlock()
	g.metrics.verifications.WithLabelValues("settlement_ok").Inc()
	g.noteVerdict(interval, "", protocol.VerdictOK)
	if g.ledger != nil {
		m := record.Market{Community: g.cfg.Community, Currency: g.cfg.Market.Currency, Rules: g.market}
		if entries, err := record.Entries(m, g.now(), res, s); err != nil {
			g.log.Error("ledger records not built", "interval", interval, "err", err)
		} else {
			if g.cfg.Clearer != config.ClearerNone {
				// A clearer keeps the evidence (the operator's dashboard
				// shows it); a home does not spend its SD card on every
				// neighbour's orders, which the clearers hold.
				entries = append(entries, record.EvidenceEntries(interval, g.now(), res, book, result)...)
			}
			g.record(entries...)
		}
	}
	if !v.Gateways[g.id] && g.bounds.Sent(g.calendar.End(iv.start)) {
		g.metrics.meteredLost.Inc()
		g.raiseOnce(interval, protocol.Alarm{Interval: interval, Kind: protocol.AlarmMeteredMissing, Detail: fmt.Sprintf(
			"this gateway published its metered figures, but %s settled without them, so its trades count as undelivered: "+
				"the broker most likely drops metered/%s (its ACL must grant `pattern write p2pgrid/v1/+/metered/%%u`, as configs/mosquitto/acl does)",
			v.Clearer, g.id)})
	}
	g.logStatement(interval, s)
	g.opts.Observer.Settled(g.id, s)
	g.appsSettled(res, s)
}

// logStatement logs what a settled interval brought this home.
func (g *Gateway) logStatement(interval string, s *settlement.IntervalSettlement) {
	for _, p := range s.Participants {
		if p.Participant != g.id {
			continue
		}
		cur := g.cfg.Market.Currency
		money := func(d decimal.Decimal) string { return settlement.Format(d, 2) + " " + cur }
		g.log.Debug("interval settled", "interval", interval,
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
	settles := g.settles
	type overdue struct{ id, kind string }
	var late []overdue
	g.mu.Lock()
	for id, iv := range g.intervals {
		resultDue := g.calendar.ResultOverdue(iv.start)
		if iv.ownOrder != nil && iv.cleared == nil && !now.Before(resultDue) && !iv.alarmed[protocol.AlarmNoResult] {
			late = append(late, overdue{id, protocol.AlarmNoResult})
		}
		settleDue := g.calendar.SettlementOverdue(iv.start)
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
			start, _ := market.ParseInterval(o.id)
			if !g.bounds.Sent(g.calendar.End(start)) {
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
