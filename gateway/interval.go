package gateway

import (
	"crypto/sha256"
	"time"

	"github.com/p2pgrid/p2pgrid/auction"
	"github.com/p2pgrid/p2pgrid/market"
)

// interval is everything this gateway knows of one delivery interval, from
// its own order to the verified settlement. One value per interval, held
// in Gateway.intervals under Gateway.mu, dropped in one place (forget).
type interval struct {
	start time.Time

	// The market side.
	ownOrder  []byte          // this gateway's order message
	skipped   string          // why this gateway placed no order, a skipReason (logged once)
	book      []byte          // the published book, as last received
	result    []byte          // the published result, as last received
	checked   [32]byte        // digest of the book and result last verified (ok or not)
	cleared   *auction.Result // the verified clearing
	clearedBy string          // the clearer whose result verified (last)
	// clearedBook and clearedResult are the messages cleared verified:
	// what the ledger keeps as the interval's evidence.
	clearedBook, clearedResult []byte
	clearedOrders              auction.Book // the verified book's orders: the post-delivery market's standing limits
	clearedHere                bool
	ownBook                    []byte // the book and result this gateway sealed and published as a clearer
	ownResult                  []byte

	// The settlement side.
	ownMetered  []byte   // this gateway's signed metered figures, as published
	settlement  []byte   // the published settlement message, as last received
	settleSeen  [32]byte // digest of the settlement message last checked
	settled     bool     // a published settlement verified and was recorded
	settledBy   string   // the clearer whose settlement verified
	settledHere bool
	ownSettled  []byte // the settlement this gateway published as a clearer

	alarmed map[string]bool // alarm kinds raised about this interval (raised once each)
}

// at returns the state of the interval id starts, creating it. The caller
// holds g.mu. It returns nil for an id that is not an interval id, or for
// an interval outside the window the gateway keeps (market.Calendar.Window): state is
// created only for intervals that can still matter, so that a flood of
// messages about other intervals cannot grow it.
func (g *Gateway) at(id string, now time.Time) *interval {
	iv := g.intervals[id]
	if iv != nil {
		return iv
	}
	start, err := market.ParseInterval(id)
	if err != nil || !g.calendar.Aligned(start) {
		return nil // not an interval id, or not one of this market's intervals
	}
	if from, to := g.calendar.Window(now); start.Before(from) || start.After(to) {
		return nil
	}
	iv = &interval{start: start}
	g.intervals[id] = iv
	return iv
}

// forget drops the state of intervals before the window, and alarms about
// intervals older than a day.
func (g *Gateway) forget(now time.Time) {
	from, _ := g.calendar.Window(now)
	g.mu.Lock()
	for id, iv := range g.intervals {
		if iv.start.Before(from) {
			delete(g.intervals, id)
		}
	}
	keep := g.alarms[:0]
	for _, a := range g.alarms {
		if at, err := market.ParseInterval(a.Interval); err != nil || !at.Before(now.Add(-market.RetainFor)) {
			keep = append(keep, a)
		}
	}
	g.alarms = keep
	g.mu.Unlock()
	g.bounds.Forget(from)
	if g.clearer != nil {
		g.clearer.Forget(from)
		g.collector.Forget(from)
	}
}

func digest(parts ...[]byte) [32]byte {
	h := sha256.New()
	for _, p := range parts {
		h.Write(p)
	}
	var d [32]byte
	h.Sum(d[:0])
	return d
}
