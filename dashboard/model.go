package dashboard

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/shopspring/decimal"

	"github.com/p2pgrid/p2pgrid/market"
	"github.com/p2pgrid/p2pgrid/settlement"
	"github.com/p2pgrid/p2pgrid/settlement/ledger"
	"github.com/p2pgrid/p2pgrid/settlement/record"
)

// DefaultKeepDetail is how many of the latest intervals the model keeps
// in full detail: two days of 15-minute intervals.
const DefaultKeepDetail = 192

// Summary is what the model keeps of every interval: the aggregate figures
// the overview charts and tables show.
type Summary struct {
	ID    string
	Start time.Time

	Cleared   bool            // a clearing record is there
	Traded    bool            // it cleared with a price
	Price     decimal.Decimal // per kWh, when Traded
	VolumeKWh decimal.Decimal
	Orders    int64
	Trades    int64

	Settled       bool  // the interval record is there
	ConsumptionWh int64 // metered import, all participants
	LocalWh       int64 // delivered peer to peer
	SpilledWh     int64
	MoneyKept     decimal.Decimal // buyers to sellers
	Saving        decimal.Decimal // sum of the participants' savings
	// LocalShare is the share of consumption met by neighbours, as
	// settlement.CommunityTotals computes it.
	LocalShare decimal.Decimal
	// PossibleLocalWh is the interval's possible local exchange and
	// ExchangeShare the share of it exchanged under trades
	// (settlement.Community, docs/settlement.md).
	PossibleLocalWh int64
	ExchangeShare   decimal.Decimal
	// MissingFigures counts participants settled without metered figures.
	MissingFigures int
}

// Detail is what the model keeps of a recent interval, or reads from the
// ledger on demand for an older one.
type Detail struct {
	Summary
	Clearing   *record.Clearing
	Settlement *settlement.IntervalSettlement
	// Book and Result are the data of the interval's book and result
	// records (the sealed book and the signed result as published); nil
	// when the ledger has none.
	Book   json.RawMessage
	Result json.RawMessage
}

// Totals are the community's figures over every settled interval of the
// ledger.
type Totals struct {
	Community settlement.Community
	// Homes is each participant's statement summed over every interval
	// (settlement.Sum), sorted by participant.
	Homes []settlement.Statement
}

// Model is what the dashboard knows of a ledger: fed record by record
// (Ingest), read by the handlers. It is safe for concurrent use.
type Model struct {
	keep int

	mu        sync.RWMutex
	seq       uint64 // last record ingested
	currency  string
	order     []string // interval ids by start, ascending
	intervals map[string]*Summary
	detail    map[string]*Detail // the latest keep intervals
	homes     map[string]settlement.Statement
	// sum holds the trades, fees and grid money of every settlement,
	// added up: with homes, an IntervalSettlement whose CommunityTotals
	// are those of all of them.
	sum     settlement.TradeSettlement
	fees    decimal.Decimal
	grid    decimal.Decimal
	settled int
	// possible is the possible local exchange, each interval's taken
	// apart (settlement.Community.PossibleLocalWh).
	possible int64
}

// NewModel returns an empty model that keeps the full detail of the
// latest keep intervals (DefaultKeepDetail if keep <= 0).
func NewModel(keep int) *Model {
	if keep <= 0 {
		keep = DefaultKeepDetail
	}
	return &Model{keep: keep, intervals: map[string]*Summary{}, detail: map[string]*Detail{}, homes: map[string]settlement.Statement{}}
}

// Seq is the sequence number of the last record ingested (0: none).
func (m *Model) Seq() uint64 {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.seq
}

// Currency is the currency the latest clearing record names ("" if none
// does).
func (m *Model) Currency() string {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.currency
}

// Ingest adds one ledger record and returns the interval it is about (""
// for a record the dashboard does not show, such as a reading). A record
// whose data does not decode is an error naming it; the model is left as
// it was but for Seq, which counts it read.
func (m *Model) Ingest(r ledger.Record) (interval string, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if r.Seq > m.seq {
		m.seq = r.Seq
	}
	d, err := decodeInto(r, func(id string) (*Detail, error) { return m.detailFor(id) })
	if err != nil || d == nil {
		return "", err
	}
	if r.Kind == record.KindInterval {
		m.addSettlement(d.Settlement)
	}
	if d.Clearing != nil && d.Clearing.Currency != "" {
		m.currency = d.Clearing.Currency
	}
	*m.intervals[d.ID] = d.Summary
	m.evict()
	return d.ID, nil
}

// decodeInto decodes r into the Detail of its interval, which get returns
// (nil: the interval is not kept), and returns that Detail; nil for a
// kind the dashboard does not show.
func decodeInto(r ledger.Record, get func(id string) (*Detail, error)) (*Detail, error) {
	fail := func(err error) (*Detail, error) {
		return nil, fmt.Errorf("ledger record %d (%s %s): %w", r.Seq, r.Kind, r.Key, err)
	}
	switch r.Kind {
	case record.KindClearing:
		c, err := record.DecodeClearing(r.Data)
		if err != nil {
			return fail(err)
		}
		d, err := get(c.Interval)
		if err != nil {
			return fail(err)
		}
		if d == nil {
			return nil, nil
		}
		d.Clearing = &c
		d.Cleared, d.Orders, d.Trades = true, c.Orders, c.Trades
		d.VolumeKWh = c.VolumeKWh.Value()
		d.Traded = c.Price.IsSet()
		d.Price = c.Price.Value()
		return d, nil
	case record.KindInterval:
		v, err := record.Decode(r)
		if err != nil {
			return fail(err)
		}
		s := v.(*settlement.IntervalSettlement)
		d, err := get(s.Interval)
		if err != nil {
			return fail(err)
		}
		if d == nil {
			return nil, nil
		}
		d.Settlement = s
		c := settlement.CommunityTotals(s)
		d.Settled = true
		d.ConsumptionWh, d.LocalWh, d.SpilledWh = c.ConsumptionWh, c.LocalWh, c.SpilledWh
		d.MoneyKept, d.Saving, d.LocalShare, d.MissingFigures = c.MoneyKeptLocally, c.Saving, c.LocalShare, c.MissingFigures
		d.PossibleLocalWh, d.ExchangeShare = c.PossibleLocalWh, c.ExchangeShare
		return d, nil
	case record.KindBook, record.KindResult:
		var iv string
		if r.Kind == record.KindBook {
			b, err := record.DecodeBook(r.Data)
			if err != nil {
				return fail(err)
			}
			iv = b.Interval
		} else {
			res, err := record.DecodeResult(r.Data)
			if err != nil {
				return fail(err)
			}
			iv = res.Interval
		}
		d, err := get(iv)
		if err != nil {
			return fail(err)
		}
		if d == nil {
			return nil, nil
		}
		if r.Kind == record.KindBook {
			d.Book = r.Data
		} else {
			d.Result = r.Data
		}
		return d, nil
	}
	return nil, nil
}

// detailFor returns the Detail of interval id, creating its Summary (and
// its Detail, if it is among the latest) if need be; nil if the interval
// is older than the detail kept.
func (m *Model) detailFor(id string) (*Detail, error) {
	start, err := market.ParseIntervalLoose(id)
	if err != nil {
		return nil, err
	}
	id = market.IntervalID(start)
	i, _ := slices.BinarySearchFunc(m.order, start, func(a string, t time.Time) int {
		return m.intervals[a].Start.Compare(t)
	})
	s := m.intervals[id]
	if s == nil {
		s = &Summary{ID: id, Start: start}
		m.intervals[id] = s
		m.order = slices.Insert(m.order, i, id)
	}
	if d := m.detail[id]; d != nil {
		return d, nil
	}
	if i < len(m.order)-m.keep {
		// Older than the detail kept: only its summary is updated.
		return &Detail{Summary: *s}, nil
	}
	d := &Detail{Summary: *s}
	m.detail[id] = d
	return d, nil
}

// evict drops the detail of the interval that the last Ingest moved out
// of the latest keep (an Ingest adds at most one interval).
func (m *Model) evict() {
	if i := len(m.order) - m.keep - 1; i >= 0 {
		delete(m.detail, m.order[i])
	}
}

func (m *Model) addSettlement(s *settlement.IntervalSettlement) {
	m.settled++
	m.possible += settlement.CommunityTotals(s).PossibleLocalWh // the minimum per interval
	for _, t := range s.Trades {
		m.sum.Wh += t.Wh
		m.sum.DeliveredWh += t.DeliveredWh
		m.sum.MissingWh += t.MissingWh
		m.sum.Amount = m.sum.Amount.Add(t.Amount)
		m.sum.Compensation = m.sum.Compensation.Add(t.Compensation)
	}
	for _, p := range s.Participants {
		if prev, ok := m.homes[p.Participant]; ok {
			m.homes[p.Participant] = settlement.Sum(prev, p)
		} else {
			m.homes[p.Participant] = p
		}
	}
	m.fees = m.fees.Add(s.Fees)
	m.grid = m.grid.Add(s.Grid)
}

// Totals returns the community's figures over every settled interval.
func (m *Model) Totals() Totals {
	m.mu.RLock()
	defer m.mu.RUnlock()
	all := &settlement.IntervalSettlement{Trades: []settlement.TradeSettlement{m.sum}, Fees: m.fees, Grid: m.grid}
	for _, st := range m.homes {
		all.Participants = append(all.Participants, st)
	}
	sort.Slice(all.Participants, func(i, j int) bool { return all.Participants[i].Participant < all.Participants[j].Participant })
	c := settlement.CommunityTotals(all)
	c.Intervals = m.settled
	// all is one settlement of everything: its possible exchange would be
	// the minimum over the whole period, not per interval.
	c.PossibleLocalWh = 0
	c.AddPossible(m.possible)
	return Totals{Community: c, Homes: all.Participants}
}

// Recent returns the summaries of the latest n intervals, newest first.
func (m *Model) Recent(n int) []Summary {
	m.mu.RLock()
	defer m.mu.RUnlock()
	var out []Summary
	for i := len(m.order) - 1; i >= 0 && len(out) < n; i-- {
		out = append(out, *m.intervals[m.order[i]])
	}
	return out
}

// Intervals is how many intervals the model knows.
func (m *Model) Intervals() int {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return len(m.order)
}

// Detail returns a copy of the kept detail of interval id; false if the
// model keeps none (an unknown interval, or an old one: read it from the
// ledger) and whether the interval is known at all.
func (m *Model) Detail(id string) (d Detail, kept, known bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	s, known := m.intervals[id]
	if !known {
		return Detail{}, false, false
	}
	if dd := m.detail[id]; dd != nil {
		d = *dd
		d.Summary = *s
		return d, true, true
	}
	return Detail{Summary: *s}, false, true
}
