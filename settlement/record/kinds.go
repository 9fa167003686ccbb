package record

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/shopspring/decimal"

	"github.com/p2pgrid/p2pgrid/market"
)

// Clearing is the data of a KindClearing record: how the auction cleared
// an interval. Its fields are in the order of their keys, which is the
// order they are written in.
type Clearing struct {
	Community string `json:"community"`
	// Currency is market.currency: what Price (and every amount of the
	// interval's other records) is in. Records written before it existed
	// leave it empty.
	Currency string `json:"currency"`
	Interval string `json:"interval"`
	Orders   int64  `json:"orders"` // orders in the book
	// Price is the clearing price per kWh; empty (null) when nothing
	// cleared.
	Price     Decimal `json:"price"`
	Trades    int64   `json:"trades"`     // trades of the result
	VolumeKWh Decimal `json:"volume_kwh"` // energy traded
}

// Trade is the data of a KindTrade record: one trade of an interval,
// settled.
type Trade struct {
	Amount   Decimal `json:"amount"` // buyer -> seller, for KWh
	Buyer    string  `json:"buyer"`
	ID       string  `json:"id"` // the auction's trade id, interval/sell-order/buy-order
	Interval string  `json:"interval"`
	KWh      Decimal `json:"kwh"`   // delivered (settlement.TradeSettlement.DeliveredWh), not traded
	Price    Decimal `json:"price"` // per kWh, the clearing price
	Seller   string  `json:"seller"`
}

// Statement is the data of a KindStatement record: one participant's
// statement of one interval. Every figure is named as
// settlement.StatementFields names it and holds Statement.Fields()'s exact
// value as a string; Intervals and MissingIntervals are whole numbers
// (settlement.StatementCountFields), "1" and "0" or "1" from a gateway.
type Statement struct {
	Baseline             Decimal `json:"baseline"`
	BoughtKWh            Decimal `json:"bought_kwh"`
	CompensationPaid     Decimal `json:"compensation_paid"`
	CompensationReceived Decimal `json:"compensation_received"`
	DeliveredKWh         Decimal `json:"delivered_kwh"`
	ExportKWh            Decimal `json:"export_kwh"`
	Fees                 Decimal `json:"fees"`
	GridCost             Decimal `json:"grid_cost"`
	GridCredit           Decimal `json:"grid_credit"`
	ImbalanceKWh         Decimal `json:"imbalance_kwh"`
	ImportKWh            Decimal `json:"import_kwh"`
	Interval             string  `json:"interval"`
	Intervals            Decimal `json:"intervals"`
	MissingIntervals     Decimal `json:"missing_intervals"`
	Net                  Decimal `json:"net"`
	Paid                 Decimal `json:"paid"`
	Participant          string  `json:"participant"`
	Received             Decimal `json:"received"`
	ReceivedKWh          Decimal `json:"received_kwh"`
	Saving               Decimal `json:"saving"`
	SoldKWh              Decimal `json:"sold_kwh"`

	// Extra holds the figures of a record under names this version does
	// not declare (a later producer's), each a decimal. Decoding fills it;
	// it is not written.
	Extra map[string]Decimal `json:"-"`
}

// Reading is the data of a KindReading record: what one device read, kept
// once per device and interval.
type Reading struct {
	// Device is the configured device name (the gateway config's
	// devices[].name, e.g. "grid"): not meter.Reading's device, which is
	// the profile and is Profile here.
	Device   string `json:"device"`
	ExportWh *int64 `json:"export_wh,omitempty"`
	Gateway  string `json:"gateway"`
	ImportWh *int64 `json:"import_wh,omitempty"`
	// PowerW, ImportWh and ExportWh are absent when the device lacks them.
	PowerW *float64 `json:"power_w,omitempty"`
	// Profile is the device's profile (meter.Reading.Device: "sdm630", or
	// "sunspec"). Records written before it existed leave it empty.
	Profile string    `json:"profile,omitempty"`
	Time    time.Time `json:"time"` // of the reading, in UTC
}

// Figure is one figure of a statement by its name.
type Figure struct {
	Name  string
	Value Decimal
}

// figures returns pointers to the statement's declared figures by their
// keys, sorted by key.
func (s *Statement) figures() []struct {
	name string
	v    *Decimal
} {
	return []struct {
		name string
		v    *Decimal
	}{
		{"baseline", &s.Baseline}, {"bought_kwh", &s.BoughtKWh}, {"compensation_paid", &s.CompensationPaid},
		{"compensation_received", &s.CompensationReceived}, {"delivered_kwh", &s.DeliveredKWh},
		{"export_kwh", &s.ExportKWh}, {"fees", &s.Fees}, {"grid_cost", &s.GridCost}, {"grid_credit", &s.GridCredit},
		{"imbalance_kwh", &s.ImbalanceKWh}, {"import_kwh", &s.ImportKWh}, {"intervals", &s.Intervals},
		{"missing_intervals", &s.MissingIntervals}, {"net", &s.Net}, {"paid", &s.Paid}, {"received", &s.Received},
		{"received_kwh", &s.ReceivedKWh}, {"saving", &s.Saving}, {"sold_kwh", &s.SoldKWh},
	}
}

// Figures returns the statement's figures that are set, declared and Extra
// alike, sorted by name.
func (s Statement) Figures() []Figure {
	var out []Figure
	for _, f := range s.figures() {
		if f.v.IsSet() {
			out = append(out, Figure{f.name, *f.v})
		}
	}
	for name, v := range s.Extra {
		if v.IsSet() {
			out = append(out, Figure{name, v})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// UnmarshalJSON reads a statement: the declared keys into their fields,
// every other key into Extra (a decimal, or an error naming the key).
func (s *Statement) UnmarshalJSON(b []byte) error {
	type plain Statement
	var p plain
	if err := json.Unmarshal(b, &p); err != nil {
		return err
	}
	var all map[string]json.RawMessage
	if err := json.Unmarshal(b, &all); err != nil {
		return err
	}
	known := map[string]bool{"interval": true, "participant": true}
	for _, f := range (*Statement)(&p).figures() {
		known[f.name] = true
	}
	p.Extra = nil
	for k, raw := range all {
		if known[k] {
			continue
		}
		var v Decimal
		if err := json.Unmarshal(raw, &v); err != nil {
			return fmt.Errorf("%s: %w", k, err)
		}
		if p.Extra == nil {
			p.Extra = map[string]Decimal{}
		}
		p.Extra[k] = v
	}
	*s = Statement(p)
	return nil
}

// countLimit bounds a count of intervals.
var countLimit = decimal.New(1, 18)

// decode unmarshals a record's data: keys it does not know are ignored,
// wrong types are errors.
func decode(data []byte, v any) error {
	if len(data) == 0 {
		return errors.New("data is empty")
	}
	return json.Unmarshal(data, v)
}

func need(what, v string) error {
	if v == "" {
		return fmt.Errorf("%s is missing", what)
	}
	return nil
}

// DecodeClearing reads the data of a clearing record; its interval must
// name an interval (market.ParseIntervalLoose).
func DecodeClearing(data []byte) (Clearing, error) {
	var c Clearing
	if err := decode(data, &c); err != nil {
		return Clearing{}, err
	}
	if _, err := market.ParseIntervalLoose(c.Interval); err != nil {
		return Clearing{}, err
	}
	return c, nil
}

// DecodeTrade reads the data of a trade record; interval, id, seller and
// buyer must be there.
func DecodeTrade(data []byte) (Trade, error) {
	var t Trade
	if err := decode(data, &t); err != nil {
		return Trade{}, err
	}
	if _, err := market.ParseIntervalLoose(t.Interval); err != nil {
		return Trade{}, err
	}
	for _, f := range [][2]string{{"id", t.ID}, {"seller", t.Seller}, {"buyer", t.Buyer}} {
		if err := need(f[0], f[1]); err != nil {
			return Trade{}, err
		}
	}
	return t, nil
}

// DecodeStatement reads the data of a statement record; interval and
// participant must be there, and intervals and missing_intervals, when
// set, must be whole numbers from 0 to below 10^18.
func DecodeStatement(data []byte) (Statement, error) {
	var s Statement
	if err := decode(data, &s); err != nil {
		return Statement{}, err
	}
	if _, err := market.ParseIntervalLoose(s.Interval); err != nil {
		return Statement{}, err
	}
	if err := need("participant", s.Participant); err != nil {
		return Statement{}, err
	}
	for _, c := range []struct {
		name string
		v    Decimal
	}{{"intervals", s.Intervals}, {"missing_intervals", s.MissingIntervals}} {
		if v := c.v.Value(); c.v.IsSet() && (!v.IsInteger() || v.IsNegative() || !v.LessThan(countLimit)) {
			return Statement{}, fmt.Errorf("%s: %s is not a count", c.name, c.v)
		}
	}
	return s, nil
}

// DecodeReading reads the data of a reading record; gateway, device and
// time must be there.
func DecodeReading(data []byte) (Reading, error) {
	var r Reading
	if err := decode(data, &r); err != nil {
		return Reading{}, err
	}
	if err := need("gateway", r.Gateway); err != nil {
		return Reading{}, err
	}
	if err := need("device", r.Device); err != nil {
		return Reading{}, err
	}
	if r.Time.IsZero() {
		return Reading{}, errors.New("time is missing")
	}
	return r, nil
}
