package gateway

import (
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/p2pgrid/p2pgrid/gateway/protocol"
	"github.com/p2pgrid/p2pgrid/market"
)

// progress is what a gateway says at INFO while it trades, so that its
// first minutes, and every interval after them, can be followed in its log:
//
//   - at start, when its first order will go out and what it waits for
//     (the forecast's readings, the order time of an interval);
//   - while it collects the readings the forecast needs, one line per
//     whole minute collected ("collecting readings: 3 of 5 minutes");
//   - then one line per interval, at its start: the order for it placed
//     or skipped and why, its clearing verified, the intervals whose
//     settlement verified since the line before (and, for a clearer, what
//     it cleared and settled itself).
//
// Each step's own line (order placed, clearing verified, ...) is at DEBUG.
// It is kept by the Tick goroutine only.
type progress struct {
	started  bool            // the start line is out
	ready    bool            // the forecast has had its readings
	minutes  int             // whole minutes of readings last reported
	interval time.Time       // the interval the last per-interval line was about
	settled  map[string]bool // settled intervals already reported
}

// reportProgress writes the progress lines due at now (Tick calls it once
// the gateway has subscribed).
func (g *Gateway) reportProgress(now time.Time) {
	p := &g.progress
	start := g.calendar.Start(now)
	if !p.started {
		p.started, p.interval = true, start
		g.reportStart(now)
	}
	g.reportReadings(now)
	if start.After(p.interval) {
		p.interval = start
		g.reportInterval(start)
	}
}

// reportStart says when the first order will go out, and why not sooner.
func (g *Gateway) reportStart(now time.Time) {
	if g.forecast == nil {
		g.log.Info("this gateway places no orders: it has no grid meter (a device with role grid)")
		g.progress.ready = true
		return
	}
	have, need := g.forecast.History()
	g.progress.ready = have >= need
	ready := now.Add(max(need-have, 0)) // if the readings keep coming
	delivery := g.calendar.Open(now)
	if !ready.Before(g.calendar.GateClose(delivery)) {
		delivery = g.calendar.End(delivery)
	}
	at := g.calendar.OrderAt(delivery)
	if at.Before(now) {
		at = now // its order time has passed: as soon as the forecast can
	}
	why := "the order time of its interval, half-way to its gate closure"
	if ready.After(at) {
		at, why = ready, "readings for the forecast"
	}
	if have < need {
		why += " (" + collecting(have, need) + ")"
	}
	g.log.Info("first order", "interval", market.IntervalID(delivery), "at", at.UTC(), "waiting_for", why)
}

// reportReadings says how far the forecast's readings are, once per whole
// minute, until they are enough.
func (g *Gateway) reportReadings(now time.Time) {
	p := &g.progress
	if p.ready {
		return
	}
	have, need := g.forecast.History()
	if have >= need {
		p.ready = true
		g.log.Info("readings collected: the forecast can place orders", "minutes", int(need/time.Minute),
			"next_order", g.calendar.OrderAt(g.nextOrderInterval(now)).UTC())
		return
	}
	if m := int(have / time.Minute); m > p.minutes {
		p.minutes = m
		g.log.Info(collecting(have, need))
	}
}

// nextOrderInterval is the delivery interval of the next order: the open
// one if its order time has not passed, else the one after.
func (g *Gateway) nextOrderInterval(now time.Time) time.Time {
	delivery := g.calendar.Open(now)
	if now.After(g.calendar.OrderAt(delivery)) {
		return g.calendar.End(delivery)
	}
	return delivery
}

// reportInterval is the one line about the interval that starts at
// delivery: its order, its clearing, and the settlements verified since the
// line before.
func (g *Gateway) reportInterval(delivery time.Time) {
	id := market.IntervalID(delivery)
	attrs := []any{"interval", id}
	g.mu.Lock()
	defer g.mu.Unlock()
	iv := g.intervals[id]
	switch {
	case g.forecast == nil:
	case iv != nil && iv.ownOrder != nil:
		attrs = append(attrs, "order", "placed")
		if o, err := protocol.DecodeOrder(iv.ownOrder); err == nil && o.Steps != nil {
			attrs = append(attrs, "steps", len(o.Steps))
		} else if err == nil {
			attrs = append(attrs, "side", o.Side, "kwh", o.KWh, "limit", o.Price)
		}
	case iv != nil && iv.skipped != "":
		attrs = append(attrs, "order", "skipped", "reason", iv.skipped)
	default:
		attrs = append(attrs, "order", "none", "reason", "the gateway was not trading at its order time")
	}
	switch {
	case iv != nil && iv.cleared != nil:
		attrs = append(attrs, "clearing", "verified", "clearer", iv.clearedBy)
		if r := iv.cleared; r.Cleared {
			attrs = append(attrs, "price", g.market.FormatPrice(r.Price))
		}
		var own int64
		filled := false
		for _, f := range iv.cleared.Fills {
			if f.Participant == g.id { // one fill per step of a v2 order
				own, filled = own+f.Qty, true
			}
		}
		if filled {
			attrs = append(attrs, "own_fill_kwh", g.market.FormatKWh(own))
		}
	default:
		attrs = append(attrs, "clearing", "not verified")
	}
	if iv != nil && iv.clearedHere {
		attrs = append(attrs, "cleared_here", true)
	}
	if p := &g.progress; p.settled == nil {
		p.settled = map[string]bool{}
	}
	var settled, here []string
	for _, s := range slices.Sorted(maps.Keys(g.intervals)) { // ids sort by time
		x := g.intervals[s]
		if !x.settled || g.progress.settled[s] {
			continue
		}
		g.progress.settled[s] = true
		settled = append(settled, s)
		if x.settledHere {
			here = append(here, s)
		}
	}
	for s := range g.progress.settled {
		if g.intervals[s] == nil {
			delete(g.progress.settled, s) // forgotten
		}
	}
	if len(settled) > 0 {
		attrs = append(attrs, "settled", settled)
	}
	if len(here) > 0 {
		attrs = append(attrs, "settled_here", here)
	}
	g.log.Info("interval", attrs...)
}

// collecting says how far the readings are: "collecting readings: 3 of 5
// minutes" (whole minutes, rounded down).
func collecting(have, need time.Duration) string {
	return fmt.Sprintf("collecting readings: %d of %d minutes", int(have/time.Minute), int(need/time.Minute))
}
