// Package summary keeps what a home's phone app and Home Assistant show of
// its trading: the latest verified clearing price, the home's last trade,
// and the kWh it bought and sold and the money it saved against the grid
// today and this month, in a time zone of the home's choosing. A Tally is
// fed the records a gateway writes to its ledger (record.Entries): live,
// after each verified settlement, and at start from the ledger itself
// (Rebuild), so the totals survive a restart. Summary renders it as the
// JSON summary and the single-value payloads the gateway publishes
// retained (docs/mqtt.md, "Apps").
//
// Every figure is exact: statements are summed with settlement.Sum and
// written as decimal strings; there is no floating point anywhere. The
// package knows nothing of MQTT, topics or Home Assistant: it is pure
// (the clock comes in as arguments) and holds bounded memory (the ids of
// the intervals counted this month, to count each once).
package summary

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/shopspring/decimal"

	"github.com/p2pgrid/p2pgrid/market"
	"github.com/p2pgrid/p2pgrid/settlement"
	"github.com/p2pgrid/p2pgrid/settlement/record"
)

// Date layouts of the periods, in the tally's zone.
const (
	dayLayout   = "2006-01-02"
	monthLayout = "2006-01"
)

// Side is which side of a trade the home was on.
type Side string

// The sides.
const (
	Buy  Side = "buy"
	Sell Side = "sell"
)

// Trade is the home's last trade: its trades of the latest interval it
// traded in, on one side at one price, added up (the auction pays one
// price per interval; a seller may deliver to several buyers). A home that
// also traded in the interval's post-delivery market (trade ids pdm/...,
// which sort after the auction's) has that as its last trade: of the
// interval's trades, those of the side and price of the greatest id. KWh
// is what was delivered, as settled.
type Trade struct {
	Interval string
	Side     Side
	KWh      decimal.Decimal
	Price    decimal.Decimal // per kWh, the clearing price
	Amount   decimal.Decimal // buyer -> seller, for KWh
	// Counterparties are the other sides, sorted.
	Counterparties []string
}

// Price is a clearing price and the interval it cleared.
type Price struct {
	Interval string
	Value    decimal.Decimal
}

// Tally is one home's running totals. It is not safe for concurrent use.
type Tally struct {
	gateway string
	zone    *time.Location

	day, month       string               // the current periods, as dayLayout, monthLayout
	today, thisMonth settlement.Statement // the home's statements of them, summed
	counted          map[string]bool      // interval ids of this month's statements added

	lastInterval string                  // the latest interval the home traded in
	lastTrades   map[string]record.Trade // its trades of lastInterval, by id
	price        *Price
}

// NewTally returns an empty tally of gateway's statements, with days and
// months in zone, starting at the period of now.
func NewTally(gateway string, zone *time.Location, now time.Time) *Tally {
	t := &Tally{gateway: gateway, zone: zone}
	t.Roll(now)
	return t
}

// Roll moves the current day and month to those of now, starting them
// from zero, and reports whether either changed. A new month also forgets
// which intervals were counted.
func (t *Tally) Roll(now time.Time) bool {
	local := now.In(t.zone)
	day, month := local.Format(dayLayout), local.Format(monthLayout)
	if day == t.day && month == t.month {
		return false
	}
	if month != t.month {
		t.month, t.thisMonth, t.counted = month, settlement.Statement{Participant: t.gateway}, map[string]bool{}
	}
	t.day, t.today = day, settlement.Statement{Participant: t.gateway}
	return true
}

// periods returns the day and month an interval id falls in, in the
// tally's zone: those of the interval's start.
func (t *Tally) periods(interval string) (day, month string, err error) {
	start, err := market.ParseIntervalLoose(interval)
	if err != nil {
		return "", "", err
	}
	local := start.In(t.zone)
	return local.Format(dayLayout), local.Format(monthLayout), nil
}

// Add takes one ledger record's data by its kind (ledger.Record.Kind): a
// statement of the home, of this month, into the totals (once per
// interval: a second is ignored); a trade of the home into the last trade
// if its interval is not older; a clearing's price into the current price
// if its interval is not older. Other kinds, and other homes' records,
// are ignored. A record that does not decode is an error naming it.
func (t *Tally) Add(kind string, data []byte) error {
	switch kind {
	case record.KindStatement:
		s, err := record.DecodeStatement(data)
		if err != nil {
			return fmt.Errorf("summary: statement: %w", err)
		}
		return t.addStatement(s)
	case record.KindTrade:
		tr, err := record.DecodeTrade(data)
		if err != nil {
			return fmt.Errorf("summary: trade: %w", err)
		}
		return t.addTrade(tr)
	case record.KindClearing:
		c, err := record.DecodeClearing(data)
		if err != nil {
			return fmt.Errorf("summary: clearing: %w", err)
		}
		if c.Price.IsSet() { // else nothing cleared: the price stands
			t.AddPrice(c.Interval, c.Price.Value())
		}
	}
	return nil
}

// AddPrice takes a verified clearing price of interval as the current
// price, unless the price held is of a later interval.
func (t *Tally) AddPrice(interval string, price decimal.Decimal) {
	if t.price == nil || newer(interval, t.price.Interval) {
		t.price = &Price{Interval: interval, Value: price}
	}
}

func (t *Tally) addStatement(s record.Statement) error {
	if s.Participant != t.gateway {
		return nil
	}
	day, month, err := t.periods(s.Interval)
	if err != nil {
		return fmt.Errorf("summary: statement %s: %w", s.Interval, err)
	}
	if month != t.month || t.counted[s.Interval] {
		return nil
	}
	st, err := s.Settlement()
	if err != nil {
		return fmt.Errorf("summary: %w", err)
	}
	t.counted[s.Interval] = true
	t.thisMonth = settlement.Sum(t.thisMonth, st)
	if day == t.day {
		t.today = settlement.Sum(t.today, st)
	}
	return nil
}

func (t *Tally) addTrade(tr record.Trade) error {
	if tr.Seller != t.gateway && tr.Buyer != t.gateway {
		return nil
	}
	if _, err := market.ParseIntervalLoose(tr.Interval); err != nil {
		return fmt.Errorf("summary: trade %s: %w", tr.ID, err)
	}
	switch {
	case t.lastTrades == nil || newer(tr.Interval, t.lastInterval):
		t.lastInterval, t.lastTrades = tr.Interval, map[string]record.Trade{}
	case tr.Interval != t.lastInterval:
		return nil // older
	}
	t.lastTrades[tr.ID] = tr // a trade added twice is the same trade
	return nil
}

// lastTrade adds up the home's last trade from the trades of its latest
// interval: whatever order they came in, the same Trade.
func (t *Tally) lastTrade() *Trade {
	if len(t.lastTrades) == 0 {
		return nil
	}
	ids := slices.Sorted(maps.Keys(t.lastTrades))
	sideOf := func(tr record.Trade) (Side, string) {
		if tr.Seller == t.gateway {
			return Sell, tr.Buyer
		}
		return Buy, tr.Seller
	}
	last := t.lastTrades[ids[len(ids)-1]]
	side, _ := sideOf(last)
	l := &Trade{Interval: t.lastInterval, Side: side, Price: last.Price.Value(), KWh: decimal.Zero, Amount: decimal.Zero}
	for _, id := range ids {
		tr := t.lastTrades[id]
		s, other := sideOf(tr)
		if s != side || !tr.Price.Value().Equal(l.Price) {
			continue
		}
		l.KWh = l.KWh.Add(tr.KWh.Value())
		l.Amount = l.Amount.Add(tr.Amount.Value())
		if !slices.Contains(l.Counterparties, other) {
			l.Counterparties = append(l.Counterparties, other)
		}
	}
	slices.Sort(l.Counterparties)
	return l
}

// newer reports whether interval a starts after interval b; ids that do
// not parse (checked at the door) compare as not newer.
func newer(a, b string) bool {
	ta, errA := market.ParseIntervalLoose(a)
	tb, errB := market.ParseIntervalLoose(b)
	return errA == nil && errB == nil && ta.After(tb)
}

// Period is what the home traded and saved in a day or a month.
type Period struct {
	BoughtWh, SoldWh int64
	// Saving is settlement.Statement.Saving summed: what the market gained
	// the home against buying from and selling to the grid alone.
	Saving decimal.Decimal
}

// Summary is what an app shows, at one time.
type Summary struct {
	Community, Gateway string
	Currency           string
	Zone               string // the time zone of Day and Month
	Time               time.Time
	Day, Month         string // "2026-11-22", "2026-11"
	Today, ThisMonth   Period
	Price              *Price // nil: no verified clearing price yet
	LastTrade          *Trade // nil: no trade yet
}

// Summary returns the tally's figures for the home of gateway in
// community, with prices in currency, at now (Roll to now first).
func (t *Tally) Summary(community, currency string, now time.Time) Summary {
	period := func(s settlement.Statement) Period {
		return Period{BoughtWh: s.BoughtWh, SoldWh: s.SoldWh, Saving: s.Saving}
	}
	s := Summary{Community: community, Gateway: t.gateway, Currency: currency, Zone: t.zone.String(), Time: now,
		Day: t.day, Month: t.month, Today: period(t.today), ThisMonth: period(t.thisMonth)}
	if t.price != nil {
		p := *t.price
		s.Price = &p
	}
	s.LastTrade = t.lastTrade()
	return s
}

// The JSON summary's shape; every decimal is a string.
type (
	summaryJSON struct {
		V         int        `json:"v"`
		Community string     `json:"community"`
		Gateway   string     `json:"gateway"`
		Time      string     `json:"time"`
		Currency  string     `json:"currency"`
		TimeZone  string     `json:"time_zone"`
		Price     *priceJSON `json:"price"`
		Today     periodJSON `json:"today"`
		Month     periodJSON `json:"month"`
		LastTrade *tradeJSON `json:"last_trade"`
	}
	priceJSON struct {
		Interval string `json:"interval"`
		Value    string `json:"value"`
	}
	periodJSON struct {
		Period    string `json:"period"`
		BoughtKWh string `json:"bought_kwh"`
		SoldKWh   string `json:"sold_kwh"`
		Saving    string `json:"saving"`
	}
	tradeJSON struct {
		Interval     string `json:"interval"`
		Side         Side   `json:"side"`
		KWh          string `json:"kwh"`
		Price        string `json:"price"`
		Amount       string `json:"amount"`
		Counterparty string `json:"counterparty"`
	}
)

// kwh writes whole Wh as exact kWh: 1005 is "1.005", 0 is "0".
func kwh(wh int64) string { return decimal.New(wh, -3).String() }

// MarshalJSON writes the summary as the app topic's JSON (docs/mqtt.md):
// keys in a fixed order, decimals as strings, price and last_trade null
// when there are none.
func (s Summary) MarshalJSON() ([]byte, error) {
	period := func(name string, p Period) periodJSON {
		return periodJSON{Period: name, BoughtKWh: kwh(p.BoughtWh), SoldKWh: kwh(p.SoldWh), Saving: p.Saving.String()}
	}
	out := summaryJSON{V: 1, Community: s.Community, Gateway: s.Gateway, Time: s.Time.UTC().Format(time.RFC3339),
		Currency: s.Currency, TimeZone: s.Zone, Today: period(s.Day, s.Today), Month: period(s.Month, s.ThisMonth)}
	if p := s.Price; p != nil {
		out.Price = &priceJSON{Interval: p.Interval, Value: p.Value.String()}
	}
	if l := s.LastTrade; l != nil {
		out.LastTrade = &tradeJSON{Interval: l.Interval, Side: l.Side, KWh: l.KWh.String(), Price: l.Price.String(),
			Amount: l.Amount.String(), Counterparty: strings.Join(l.Counterparties, ",")}
	}
	return json.Marshal(out)
}

// Value is one single-value topic's key and plain-text payload.
type Value struct {
	Key  string
	Text string
}

// Values returns the summary's single values, in the order of Fields,
// leaving out those it does not have (no price yet, no trade yet): an app
// then keeps showing "unknown" rather than a made-up zero.
func (s Summary) Values() []Value {
	text := map[string]string{
		KeyCurrency:    s.Currency,
		KeyBoughtToday: kwh(s.Today.BoughtWh),
		KeySoldToday:   kwh(s.Today.SoldWh),
		KeySavingToday: s.Today.Saving.String(),
		KeyBoughtMonth: kwh(s.ThisMonth.BoughtWh),
		KeySoldMonth:   kwh(s.ThisMonth.SoldWh),
		KeySavingMonth: s.ThisMonth.Saving.String(),
	}
	if p := s.Price; p != nil {
		text[KeyPrice], text[KeyPriceInterval] = p.Value.String(), p.Interval
	}
	if l := s.LastTrade; l != nil {
		text[KeyLastInterval], text[KeyLastSide] = l.Interval, string(l.Side)
		text[KeyLastKWh], text[KeyLastPrice], text[KeyLastAmount] = l.KWh.String(), l.Price.String(), l.Amount.String()
		text[KeyLastCounterparty] = strings.Join(l.Counterparties, ",")
	}
	var out []Value
	for _, f := range Fields {
		if v, ok := text[f.Key]; ok {
			out = append(out, Value{Key: f.Key, Text: v})
		}
	}
	return out
}

// ErrZone is wrapped by the errors of LoadZone.
var ErrZone = errors.New("unknown time zone")

// LoadZone returns the time zone named name, an IANA name such as
// "Europe/Berlin", or "" or "Local" for the system's zone.
func LoadZone(name string) (*time.Location, error) {
	if name == "" {
		return time.Local, nil
	}
	z, err := time.LoadLocation(name)
	if err != nil {
		return nil, fmt.Errorf("%w %q (want an IANA name such as Europe/Berlin, or Local): %v", ErrZone, name, err)
	}
	return z, nil
}

// rebuildMargin is how far before the month's start Rebuild reads, so
// that the last trade and price of the month before are found too in
// the first days of a month.
const rebuildMargin = 48 * time.Hour

// Since is when the records Rebuild must read for the current month
// begin: every record of an interval is written after the interval
// starts, so the month's first midnight, less a margin for the last trade
// and price of the month before.
func (t *Tally) Since() time.Time {
	m, _ := time.ParseInLocation(monthLayout, t.month, t.zone) // written by Roll
	return m.Add(-rebuildMargin)
}
