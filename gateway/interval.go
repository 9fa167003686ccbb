package gateway

import (
	"crypto/sha256"
	"time"

	"github.com/p2pgrid/p2pgrid/auction"
	"github.com/p2pgrid/p2pgrid/gateway/protocol"
)

// interval is everything this gateway knows of one delivery interval, from
// its own order to the verified settlement. One value per interval, held
// in Gateway.intervals under Gateway.mu, dropped in one place (forget).
type interval struct {
	start time.Time

	// The market side.
	own        []byte          // this gateway's order message
	skipped    string          // why this gateway placed no order, a skipReason (logged once)
	book       []byte          // the published book, as last received
	result     []byte          // the published result, as last received
	checked    [32]byte        // digest of the book and result last verified (ok or not)
	cleared    *auction.Result // the verified clearing
	sealedByUs bool

	// The settlement side.
	metered     map[string][]byte // clearer: signed metered figures by gateway
	ownMetered  []byte            // this gateway's signed metered figures, as published
	settlement  []byte            // the published settlement message, as last received
	settleSeen  [32]byte          // digest of the settlement message last checked
	settled     bool              // a published settlement verified and was recorded
	settledByUs bool

	alarmed map[string]bool // alarm kinds raised about this interval (raised once each)
}

// at returns the state of the interval id starts, creating it. The caller
// holds g.mu. It returns nil for an id that is not an interval id, or for
// an interval outside the window the gateway keeps (see window): state is
// created only for intervals that can still matter, so that a flood of
// messages about other intervals cannot grow it.
func (g *Gateway) at(id string, now time.Time) *interval {
	iv := g.intervals[id]
	if iv != nil {
		return iv
	}
	start, err := protocol.ParseInterval(id)
	if err != nil || !protocol.IntervalStart(start, g.schedule.Interval).Equal(start) {
		return nil // not an interval id, or not one of this market's intervals
	}
	if from, to := g.window(now); start.Before(from) || start.After(to) {
		return nil
	}
	iv = &interval{start: start}
	g.intervals[id] = iv
	return iv
}

// keepIntervals is how many intervals before the current one the gateway
// keeps state of: the one being settled ends a gate-closure period plus a
// grace period after its end, well inside this.
const keepIntervals = 4

// window is the range of interval starts the gateway keeps state of: from
// keepIntervals before the current interval to the one after the open one.
func (g *Gateway) window(now time.Time) (from, to time.Time) {
	cur := protocol.IntervalStart(now, g.schedule.Interval)
	return cur.Add(-keepIntervals * g.schedule.Interval), cur.Add(2 * g.schedule.Interval)
}

// retainFor is how long the books, results and settlements of an interval
// stay retained on the broker, whatever the interval's length.
const retainFor = 24 * time.Hour

// forget drops the state of intervals before the window, and alarms about
// intervals older than a day.
func (g *Gateway) forget(now time.Time) {
	from, _ := g.window(now)
	g.mu.Lock()
	for id, iv := range g.intervals {
		if iv.start.Before(from) {
			delete(g.intervals, id)
		}
	}
	keep := g.alarms[:0]
	for _, a := range g.alarms {
		if at, err := protocol.ParseInterval(a.Interval); err != nil || !at.Before(now.Add(-retainFor)) {
			keep = append(keep, a)
		}
	}
	g.alarms = keep
	g.mu.Unlock()
	g.bounds.forget(from)
	if g.clearer != nil {
		g.clearer.Forget(from)
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
