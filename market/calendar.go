// Package market is the community market's calendar: what the delivery
// intervals are and what is due when. Interval ids and their parsing, the
// open interval, gate closure, when a gateway places its order, when the
// primary and a standby clear and settle, when a result or a settlement is
// overdue, how long retained messages are kept and when state is forgotten:
// all of it is computed here, from the times handed in, and nowhere else.
//
// It is pure: no clock, no I/O, no goroutines. It knows nothing of MQTT,
// orders or money.
package market

import (
	"errors"
	"fmt"
	"time"
)

// idLayout formats interval ids: the UTC start of the delivery interval,
// to the minute.
const idLayout = "2006-01-02T15:04Z"

// IntervalID returns the id of the interval starting at t: t in UTC,
// formatted "2006-01-02T15:04Z". Seconds are dropped; pass an interval's
// start.
func IntervalID(t time.Time) string { return t.UTC().Format(idLayout) }

// ParseInterval parses an interval id and returns the interval's start, in
// UTC. Only the exact form IntervalID writes is accepted.
func ParseInterval(id string) (time.Time, error) {
	t, err := time.Parse(idLayout, id)
	if err != nil || IntervalID(t) != id {
		return time.Time{}, fmt.Errorf("interval %.40q: want the UTC start of the interval as YYYY-MM-DDThh:mmZ", id)
	}
	return t, nil
}

// looseLayouts are the spellings ParseIntervalLoose accepts besides an interval id.
var looseLayouts = []string{time.RFC3339Nano, "2006-01-02T15:04Z07:00"}

// ParseIntervalLoose parses an interval named by its start in RFC 3339, with or
// without seconds and in any offset: an id ("2026-11-22T10:15Z") or a
// longer spelling of one ("2026-11-22T10:15:00Z", "2026-11-22T11:15+01:00").
// Readers of ledger records use it, so that a record written by another
// producer still maps; what p2pgrid writes, and the wire, is Parse's form.
// The time is returned as given (not converted to UTC).
func ParseIntervalLoose(name string) (time.Time, error) {
	if name == "" {
		return time.Time{}, errors.New("interval is empty")
	}
	for _, l := range looseLayouts {
		if t, err := time.Parse(l, name); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("interval %.40q is not an RFC 3339 start time (e.g. 2026-11-22T10:15Z)", name)
}

// CheckIntervalLength checks an interval length: a positive whole number of
// minutes, since interval ids have minute resolution. Check the configured
// length with it before calling IntervalStart.
func CheckIntervalLength(length time.Duration) error {
	if length <= 0 || length%time.Minute != 0 {
		return fmt.Errorf("interval length %v: want a positive whole number of minutes", length)
	}
	return nil
}

// IntervalStart returns the start, in UTC, of the interval of the given
// length that holds t. Intervals are aligned to the Unix epoch, so every
// gateway computes the same ones; a length dividing a day aligns them to
// UTC midnight as well.
//
// It panics if length fails CheckIntervalLength: that is a configuration
// error to catch at startup.
func IntervalStart(t time.Time, length time.Duration) time.Time {
	if err := CheckIntervalLength(length); err != nil {
		panic("market.IntervalStart: " + err.Error())
	}
	secs := int64(length / time.Second)
	s := t.Unix() // floor: t.Nanosecond() is in [0, 1e9)
	r := s % secs
	if r < 0 {
		r += secs
	}
	return time.Unix(s-r, 0).UTC()
}

// RetainFor is how long an interval's book, result and settlement stay
// retained on the broker, whatever the interval's length.
const RetainFor = 24 * time.Hour

// KeepIntervals is how many intervals before the current one a gateway
// keeps state of: the one being settled ends a gate-closure period plus a
// grace period after its end, well inside this.
const KeepIntervals = 4

// Calendar is a community's market timetable. Every gateway of a community
// has the same one (the market section of its configuration).
type Calendar struct {
	Interval    time.Duration // length of a delivery interval
	GateClosure time.Duration // how long before delivery starts the gate closes
	Grace       time.Duration // how long a standby waits for the primary
}

// Start returns the start of the interval that holds t.
func (c Calendar) Start(t time.Time) time.Time { return IntervalStart(t, c.Interval) }

// Aligned reports whether start is the start of one of the calendar's
// intervals.
func (c Calendar) Aligned(start time.Time) bool { return c.Start(start).Equal(start) }

// End returns the end of the delivery interval starting at delivery.
func (c Calendar) End(delivery time.Time) time.Time { return delivery.Add(c.Interval) }

// Open returns the delivery interval that takes orders at now: the one
// after the current interval. Its gate closes at GateClose(delivery).
func (c Calendar) Open(now time.Time) time.Time { return c.Start(now).Add(c.Interval) }

// GateClose returns when the gate for the delivery interval starting at
// delivery closes.
func (c Calendar) GateClose(delivery time.Time) time.Time { return delivery.Add(-c.GateClosure) }

// OrderAt returns when a gateway places its order for delivery: half-way
// between the start of the interval before it and its gate closure, so
// that the forecast has half of that interval's readings and the order
// still has half the time to reach the clearer.
func (c Calendar) OrderAt(delivery time.Time) time.Time {
	from := delivery.Add(-c.Interval)
	return from.Add(c.GateClose(delivery).Sub(from) / 2)
}

// LastClosed returns the delivery interval whose gate closed most recently
// at now: the open one if its gate has closed already, else the one before.
func (c Calendar) LastClosed(now time.Time) time.Time {
	delivery := c.Open(now)
	if now.Before(c.GateClose(delivery)) {
		delivery = delivery.Add(-c.Interval)
	}
	return delivery
}

// SealAt returns when a clearer seals the book of delivery: the primary at
// gate closure, a standby a grace period later if no result has come.
func (c Calendar) SealAt(delivery time.Time, standby bool) time.Time {
	if standby {
		return c.GateClose(delivery).Add(c.Grace)
	}
	return c.GateClose(delivery)
}

// ResultOverdue returns when a gateway that placed an order for delivery
// raises an alarm if no result has verified: a grace period after a
// standby's turn to clear.
func (c Calendar) ResultOverdue(delivery time.Time) time.Time {
	return c.GateClose(delivery).Add(2 * c.Grace)
}

// SettleDue returns the delivery interval whose settlement falls due at
// now: the one that ended a gate-closure period ago (the gateways' metered
// figures, published at their first poll after the end, have had that
// long to arrive).
func (c Calendar) SettleDue(now time.Time) time.Time {
	return c.Start(now.Add(-c.GateClosure)).Add(-c.Interval)
}

// SettleAt returns when a clearer settles delivery: the primary a
// gate-closure period after its end, a standby a grace period later if no
// settlement has come.
func (c Calendar) SettleAt(delivery time.Time, standby bool) time.Time {
	at := c.End(delivery).Add(c.GateClosure)
	if standby {
		at = at.Add(c.Grace)
	}
	return at
}

// SettlementOverdue returns when a gateway whose metered figures of
// delivery went out raises an alarm if no settlement has verified: a grace
// period after a standby's turn to settle.
func (c Calendar) SettlementOverdue(delivery time.Time) time.Time {
	return c.SettleAt(delivery, true).Add(c.Grace)
}

// Retire returns the delivery interval whose retained messages a clearer
// deletes when it clears delivery: the one RetainFor before it.
func (c Calendar) Retire(delivery time.Time) time.Time { return delivery.Add(-RetainFor) }

// Recall is how far back a gateway must remember which records it wrote,
// so that a message it acts on twice (after a restart, or sent again) is
// recorded once. A gateway records only intervals of its window (a message
// about any other interval is dropped before it is kept), and an interval
// stays in the window for KeepIntervals+3 intervals from its start; Recall
// is twice that, for a clock stepped back or a slow restart.
func (c Calendar) Recall() time.Duration {
	return 2 * (KeepIntervals + 3) * c.Interval
}

// Window returns the interval starts a gateway keeps state of at now: from
// KeepIntervals before the current interval to the one after the open one.
func (c Calendar) Window(now time.Time) (from, to time.Time) {
	cur := c.Start(now)
	return cur.Add(-KeepIntervals * c.Interval), cur.Add(2 * c.Interval)
}
