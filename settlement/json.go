package settlement

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"strings"

	"github.com/shopspring/decimal"
)

// JSONFormat is the value of the "format" field of a settlement's JSON form.
const JSONFormat = "p2pgrid-settlement/1"

// The JSON form, field by field in this order. Energy is a JSON integer of
// Wh; money is a string holding the exact decimal in its shortest form (no
// exponent, no trailing zeros, "0" for zero).
type wireSettlement struct {
	Format       string          `json:"format"`
	Interval     string          `json:"interval"`
	Policy       string          `json:"policy"`
	Retail       string          `json:"retail"`
	FeedIn       string          `json:"feed_in"`
	Grid         string          `json:"grid"`
	Fees         string          `json:"fees"`
	Trades       []wireTrade     `json:"trades"`
	Participants []wireStatement `json:"participants"`
}

type wireTrade struct {
	ID           string `json:"id"`
	Seller       string `json:"seller"`
	Buyer        string `json:"buyer"`
	Wh           int64  `json:"wh"`
	DeliveredWh  int64  `json:"delivered_wh"`
	MissingWh    int64  `json:"missing_wh"`
	Price        string `json:"price"`
	Amount       string `json:"amount"`
	Fee          string `json:"fee"`
	Compensation string `json:"compensation"`
}

type wireStatement struct {
	Participant          string `json:"participant"`
	Intervals            int    `json:"intervals"`
	MissingIntervals     int    `json:"missing_intervals"`
	BoughtWh             int64  `json:"bought_wh"`
	SoldWh               int64  `json:"sold_wh"`
	ReceivedWh           int64  `json:"received_wh"`
	DeliveredWh          int64  `json:"delivered_wh"`
	ImportWh             int64  `json:"import_wh"`
	ExportWh             int64  `json:"export_wh"`
	GridImportWh         int64  `json:"grid_import_wh"`
	GridExportWh         int64  `json:"grid_export_wh"`
	SpilledWh            int64  `json:"spilled_wh"`
	ImbalanceWh          int64  `json:"imbalance_wh"`
	PaidP2P              string `json:"paid_p2p"`
	ReceivedP2P          string `json:"received_p2p"`
	Fees                 string `json:"fees"`
	CompensationPaid     string `json:"compensation_paid"`
	CompensationReceived string `json:"compensation_received"`
	GridCost             string `json:"grid_cost"`
	GridCredit           string `json:"grid_credit"`
	Net                  string `json:"net"`
	Baseline             string `json:"baseline"`
	Saving               string `json:"saving"`
}

// MarshalJSON writes the settlement as one line of JSON, fields in the fixed
// order of docs/settlement.md, energy as integers of Wh and money as exact
// decimal strings in shortest form. The same settlement always gives the
// same bytes, whatever shopspring/decimal's global formatting options.
func (s *IntervalSettlement) MarshalJSON() ([]byte, error) {
	w := wireSettlement{
		Format: JSONFormat, Interval: s.Interval, Policy: s.Policy,
		Retail: canonical(s.Tariffs.Retail), FeedIn: canonical(s.Tariffs.FeedIn),
		Grid: canonical(s.Grid), Fees: canonical(s.Fees),
		Trades:       make([]wireTrade, len(s.Trades)),
		Participants: make([]wireStatement, len(s.Participants)),
	}
	for i, t := range s.Trades {
		w.Trades[i] = wireTrade{
			ID: t.ID, Seller: t.Seller, Buyer: t.Buyer,
			Wh: t.Wh, DeliveredWh: t.DeliveredWh, MissingWh: t.MissingWh,
			Price: canonical(t.Price), Amount: canonical(t.Amount), Fee: canonical(t.Fee),
			Compensation: canonical(t.Compensation),
		}
	}
	for i, st := range s.Participants {
		w.Participants[i] = wireStatement{
			Participant: st.Participant, Intervals: st.Intervals, MissingIntervals: st.MissingIntervals,
			BoughtWh: st.BoughtWh, SoldWh: st.SoldWh, ReceivedWh: st.ReceivedWh, DeliveredWh: st.DeliveredWh,
			ImportWh: st.ImportWh, ExportWh: st.ExportWh, GridImportWh: st.GridImportWh,
			GridExportWh: st.GridExportWh, SpilledWh: st.SpilledWh, ImbalanceWh: st.ImbalanceWh,
			PaidP2P: canonical(st.PaidP2P), ReceivedP2P: canonical(st.ReceivedP2P), Fees: canonical(st.Fees),
			CompensationPaid: canonical(st.CompensationPaid), CompensationReceived: canonical(st.CompensationReceived),
			GridCost: canonical(st.GridCost), GridCredit: canonical(st.GridCredit),
			Net: canonical(st.Net), Baseline: canonical(st.Baseline), Saving: canonical(st.Saving),
		}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(w); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// DecodeIntervalSettlement reads a settlement written by MarshalJSON. It
// accepts exactly that form (whitespace between tokens aside): unknown,
// missing or reordered fields, numbers not in shortest form and trailing
// data are errors, so a decoded settlement marshals back to the same bytes.
// It then runs Check, so a settlement whose money does not sum to zero is
// rejected too (ErrInvariant).
func DecodeIntervalSettlement(data []byte) (*IntervalSettlement, error) {
	fail := func(err error) (*IntervalSettlement, error) {
		return nil, fmt.Errorf("decode settlement: %w", err)
	}
	var w wireSettlement
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&w); err != nil {
		return fail(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return fail(errors.New("trailing data after the settlement"))
	}
	if w.Format != JSONFormat {
		return fail(fmt.Errorf("format %q: want %q", w.Format, JSONFormat))
	}
	var p parser
	s := &IntervalSettlement{
		Interval: w.Interval, Policy: w.Policy,
		Tariffs: Tariffs{Retail: p.money("retail", w.Retail), FeedIn: p.money("feed_in", w.FeedIn)},
		Grid:    p.money("grid", w.Grid), Fees: p.money("fees", w.Fees),
		Trades:       make([]TradeSettlement, len(w.Trades)),
		Participants: make([]Statement, len(w.Participants)),
	}
	for i, t := range w.Trades {
		f := func(name string) string { return fmt.Sprintf("trades[%d].%s", i, name) }
		s.Trades[i] = TradeSettlement{
			ID: t.ID, Seller: t.Seller, Buyer: t.Buyer,
			Wh: t.Wh, DeliveredWh: t.DeliveredWh, MissingWh: t.MissingWh,
			Price: p.money(f("price"), t.Price), Amount: p.money(f("amount"), t.Amount),
			Fee: p.money(f("fee"), t.Fee), Compensation: p.money(f("compensation"), t.Compensation),
		}
	}
	for i, st := range w.Participants {
		f := func(name string) string { return fmt.Sprintf("participants[%d].%s", i, name) }
		s.Participants[i] = Statement{
			Participant: st.Participant, Intervals: st.Intervals, MissingIntervals: st.MissingIntervals,
			BoughtWh: st.BoughtWh, SoldWh: st.SoldWh, ReceivedWh: st.ReceivedWh, DeliveredWh: st.DeliveredWh,
			ImportWh: st.ImportWh, ExportWh: st.ExportWh, GridImportWh: st.GridImportWh,
			GridExportWh: st.GridExportWh, SpilledWh: st.SpilledWh, ImbalanceWh: st.ImbalanceWh,
			PaidP2P: p.money(f("paid_p2p"), st.PaidP2P), ReceivedP2P: p.money(f("received_p2p"), st.ReceivedP2P),
			Fees:                 p.money(f("fees"), st.Fees),
			CompensationPaid:     p.money(f("compensation_paid"), st.CompensationPaid),
			CompensationReceived: p.money(f("compensation_received"), st.CompensationReceived),
			GridCost:             p.money(f("grid_cost"), st.GridCost), GridCredit: p.money(f("grid_credit"), st.GridCredit),
			Net: p.money(f("net"), st.Net), Baseline: p.money(f("baseline"), st.Baseline),
			Saving: p.money(f("saving"), st.Saving),
		}
	}
	if p.err != nil {
		return fail(p.err)
	}
	// Anything else that differs from the canonical form (a missing field,
	// fields out of order, null for a list) shows up as a re-encoding that
	// differs from the input.
	again, err := s.MarshalJSON()
	if err != nil {
		return fail(err)
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, data); err != nil {
		return fail(err)
	}
	if got := compact.Bytes(); !bytes.Equal(got, again) {
		n := 0
		for n < len(got) && n < len(again) && got[n] == again[n] {
			n++
		}
		return fail(fmt.Errorf("not in canonical form: at byte %d of the compacted input, %q, the canonical form has %q",
			n, snippet(got, n), snippet(again, n)))
	}
	if err := s.Check(); err != nil {
		return fail(err)
	}
	return s, nil
}

func snippet(b []byte, n int) string {
	return string(b[n:min(len(b), n+24)])
}

// parser parses money fields, keeping the first error.
type parser struct{ err error }

func (p *parser) money(field, s string) decimal.Decimal {
	if p.err != nil {
		return decimal.Zero
	}
	if len(s) > 100 || strings.ContainsAny(s, "eE") {
		// The canonical form has no exponent; refusing one here also keeps
		// "1e999999999" from being expanded.
		p.err = fmt.Errorf("%s: %.100q is not a decimal in shortest form (at most 100 characters, no exponent)", field, s)
		return decimal.Zero
	}
	d, err := decimal.NewFromString(s)
	if err != nil {
		p.err = fmt.Errorf("%s: %q is not a decimal", field, s)
		return decimal.Zero
	}
	if c := canonical(d); c != s {
		p.err = fmt.Errorf("%s: %q is not in shortest form (want %q)", field, s, c)
		return decimal.Zero
	}
	return d
}

// canonical writes d exactly in its shortest form: no exponent, no
// trailing zeros after the point, no point for whole numbers, "-" for
// negatives, "0" for zero. Unlike decimal.String it ignores the package's
// global formatting options.
func canonical(d decimal.Decimal) string {
	c := new(big.Int).Set(d.Coefficient())
	exp := d.Exponent()
	if c.Sign() == 0 {
		return "0"
	}
	ten, r := big.NewInt(10), new(big.Int)
	for exp < 0 {
		q, rem := new(big.Int).QuoRem(c, ten, r)
		if rem.Sign() != 0 {
			break
		}
		c, exp = q, exp+1
	}
	neg := c.Sign() < 0
	digits := new(big.Int).Abs(c).String()
	var b strings.Builder
	if neg {
		b.WriteByte('-')
	}
	switch {
	case exp >= 0:
		b.WriteString(digits)
		b.WriteString(strings.Repeat("0", int(exp)))
	case len(digits) > int(-exp):
		k := len(digits) + int(exp)
		b.WriteString(digits[:k])
		b.WriteByte('.')
		b.WriteString(digits[k:])
	default:
		b.WriteString("0.")
		b.WriteString(strings.Repeat("0", int(-exp)-len(digits)))
		b.WriteString(digits)
	}
	return b.String()
}
