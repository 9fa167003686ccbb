// Package tariff computes what a home pays per kWh it imports, interval by
// interval, over the coming hours: the community's price as a flexible
// load (an EV charger run by evcc, a heat pump) wants it, in the form
// evcc reads for a custom tariff (a JSON list of {"start", "end",
// "value"}).
//
// An interval whose clearing is known and verified costs the buyer's
// local price (clearing price plus the network fee) if the auction
// cleared, else the grid's retail tariff. An interval not cleared yet is
// estimated from history: the median of what the same time of day cost
// over the last days (Estimate), or the retail tariff when there is no
// history. Values are exact decimals, written as JSON numbers from their
// decimal text; the output is a pure function of its input.
//
// It is pure: no clock (now is passed in), no I/O. It knows nothing of
// MQTT, ledgers or HTTP; the gateway gathers the clearings and serves the
// slots.
package tariff

import (
	"bytes"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/shopspring/decimal"

	"github.com/p2pgrid/p2pgrid/market"
)

// Defaults and limits of Rules.Horizon and Rules.Days.
const (
	DefaultHorizon = 24 * time.Hour
	MaxHorizon     = 7 * 24 * time.Hour
	DefaultDays    = 7
	MaxDays        = 60
)

// Clearing is one verified clearing of an interval.
type Clearing struct {
	Start   time.Time // the interval's start
	Cleared bool      // false: nothing traded (a one-sided book, no overlap)
	// Price is the clearing price per kWh, what sellers receive; buyers pay
	// it plus the fee. Meaningless unless Cleared.
	Price decimal.Decimal
}

// Rules are what the slots are computed with.
type Rules struct {
	Calendar market.Calendar
	// Retail is the grid's retail tariff per kWh (market.price_cap): what
	// an import costs that is not bought locally.
	Retail decimal.Decimal
	// Fee is the network fee per kWh, paid by buyers (market.fee).
	Fee decimal.Decimal
	// Horizon is how far ahead of the current interval's start the slots
	// go, rounded up to whole intervals; 0 means DefaultHorizon.
	Horizon time.Duration
	// Days is how many days back the estimate looks; 0 means DefaultDays.
	Days int
}

// Source says where a slot's value comes from.
type Source string

// The sources of a slot's value.
const (
	SourceCleared    Source = "cleared"     // a verified clearing that cleared: clearing price + fee
	SourceNotCleared Source = "not_cleared" // a verified clearing where nothing traded: retail
	SourceEstimate   Source = "estimate"    // not cleared yet: the median of the same time of day over the last Days
	SourceRetail     Source = "retail"      // not cleared yet and no history: retail
)

// Slot is one interval and what a kWh imported in it costs.
type Slot struct {
	Start, End time.Time
	Value      decimal.Decimal // per kWh, in the market's currency
	Source     Source
	// Samples is how many past intervals an estimate is the median of (0
	// for the other sources).
	Samples int
}

// MarshalJSON writes the slot as evcc's api.Rate reads it: start and end
// in RFC 3339 (UTC), value a JSON number written from the decimal's text
// (never through a float). source and samples are for people; evcc
// ignores keys it does not know.
func (s Slot) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	fmt.Fprintf(&b, `{"start":%q,"end":%q,"value":%s,"source":%q`,
		s.Start.UTC().Format(time.RFC3339), s.End.UTC().Format(time.RFC3339), s.Value.String(), s.Source)
	if s.Source == SourceEstimate {
		fmt.Fprintf(&b, `,"samples":%d`, s.Samples)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// ErrRules is wrapped by every error about Rules.
var ErrRules = errors.New("tariff rules")

// Check fills in the defaults of r and checks it.
func (r *Rules) Check() error {
	if err := market.CheckIntervalLength(r.Calendar.Interval); err != nil {
		return fmt.Errorf("%w: %w", ErrRules, err)
	}
	if r.Horizon == 0 {
		r.Horizon = DefaultHorizon
	}
	if r.Days == 0 {
		r.Days = DefaultDays
	}
	switch {
	case r.Horizon < 0 || r.Horizon > MaxHorizon:
		return fmt.Errorf("%w: horizon %v: want more than 0 and at most %v", ErrRules, r.Horizon, MaxHorizon)
	case r.Days < 0 || r.Days > MaxDays:
		return fmt.Errorf("%w: days %d: want 1 to %d", ErrRules, r.Days, MaxDays)
	}
	return nil
}

// Slots returns the slots from the start of the interval holding now to
// Horizon after it, contiguous and aligned to the calendar's intervals,
// valued from known: the verified clearings at hand, of the coming
// intervals and of the last Days days (others are ignored; order does not
// matter; of two clearings of one interval the last wins). A clearing
// whose start is not an interval start is an error naming it.
func Slots(now time.Time, r Rules, known []Clearing) ([]Slot, error) {
	if err := r.Check(); err != nil {
		return nil, err
	}
	byStart := make(map[int64]Clearing, len(known))
	for _, c := range known {
		if !r.Calendar.Aligned(c.Start) {
			return nil, fmt.Errorf("clearing of %s: not the start of a %v interval", c.Start.UTC().Format(time.RFC3339), r.Calendar.Interval)
		}
		byStart[c.Start.Unix()] = c
	}
	from := r.Calendar.Start(now)
	n := int((r.Horizon + r.Calendar.Interval - 1) / r.Calendar.Interval)
	out := make([]Slot, 0, n)
	for i := range n {
		start := from.Add(time.Duration(i) * r.Calendar.Interval)
		s := Slot{Start: start, End: r.Calendar.End(start)}
		if c, ok := byStart[start.Unix()]; ok {
			s.Value, s.Source = r.paid(c)
		} else {
			s.Value, s.Samples = r.estimate(start, byStart)
			s.Source = SourceEstimate
			if s.Samples == 0 {
				s.Source = SourceRetail
			}
		}
		out = append(out, s)
	}
	return out, nil
}

// paid is what a buyer pays per kWh in a verified clearing.
func (r Rules) paid(c Clearing) (decimal.Decimal, Source) {
	if c.Cleared {
		return c.Price.Add(r.Fee), SourceCleared
	}
	return r.Retail, SourceNotCleared
}

// estimate is the median of what the interval holding the same time of day
// cost on each of the last Days days that have a verified clearing there,
// and how many there were; the retail tariff when there were none. The
// median of an even count is the mean of the middle two, exact (halving a
// decimal terminates).
func (r Rules) estimate(start time.Time, byStart map[int64]Clearing) (decimal.Decimal, int) {
	var vals []decimal.Decimal
	for d := 1; d <= r.Days; d++ {
		past := r.Calendar.Start(start.Add(-time.Duration(d) * 24 * time.Hour))
		if c, ok := byStart[past.Unix()]; ok {
			v, _ := r.paid(c)
			vals = append(vals, v)
		}
	}
	if len(vals) == 0 {
		return r.Retail, 0
	}
	sort.Slice(vals, func(i, j int) bool { return vals[i].LessThan(vals[j]) })
	m := len(vals) / 2
	if len(vals)%2 == 1 {
		return vals[m], len(vals)
	}
	return vals[m-1].Add(vals[m]).Mul(half), len(vals)
}

var half = decimal.New(5, -1)

// Lookback is how far back before now the clearings Slots may use reach:
// Days days before the current interval, and one interval more.
func (r Rules) Lookback() time.Duration {
	days := r.Days
	if days == 0 {
		days = DefaultDays
	}
	return time.Duration(days)*24*time.Hour + r.Calendar.Interval
}
