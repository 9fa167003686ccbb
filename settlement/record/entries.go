package record

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/shopspring/decimal"

	"github.com/p2pgrid/p2pgrid/auction"
	"github.com/p2pgrid/p2pgrid/meter"
	"github.com/p2pgrid/p2pgrid/settlement"
	"github.com/p2pgrid/p2pgrid/settlement/ledger"
)

// Market is what the records of a settled interval say about the market
// beside the auction's result: the community, its currency
// (market.currency) and the rules that format prices and quantities.
type Market struct {
	Community string
	Currency  string
	Rules     *auction.Market
}

// Entries are the ledger entries of a settled interval, in this order: the
// clearing, each trade, each participant's statement, and the whole
// settlement (KindInterval, its canonical JSON). at is their time. res is
// the auction's result that s settles.
func Entries(m Market, at time.Time, res *auction.Result, s *settlement.IntervalSettlement) ([]ledger.Entry, error) {
	iv := s.Interval
	full, err := s.MarshalJSON()
	if err != nil {
		return nil, fmt.Errorf("ledger records of interval %s: %w", iv, err)
	}
	c := Clearing{Community: m.Community, Currency: m.Currency, Interval: iv, Orders: int64(res.Orders),
		VolumeKWh: Decimal(m.Rules.FormatKWh(res.Volume)), Trades: int64(len(res.Trades))}
	if res.Cleared {
		c.Price = Decimal(m.Rules.FormatPrice(res.Price))
	}
	out := []ledger.Entry{{Kind: KindClearing, Key: iv, Time: at, Data: marshal(c)}}
	for _, t := range s.Trades {
		out = append(out, ledger.Entry{Kind: KindTrade, Key: t.ID, Time: at, Data: marshal(Trade{
			Interval: iv, ID: t.ID, Seller: t.Seller, Buyer: t.Buyer,
			KWh: DecimalOf(decimal.New(t.DeliveredWh, -3)), Price: DecimalOf(t.Price), Amount: DecimalOf(t.Amount)})})
	}
	for _, p := range s.Participants {
		out = append(out, ledger.Entry{Kind: KindStatement, Key: StatementKey(iv, p.Participant), Time: at,
			Data: marshal(StatementOf(iv, p))})
	}
	return append(out, ledger.Entry{Kind: KindInterval, Key: iv, Time: at, Data: full}), nil
}

// StatementOf is the statement record of participant statement p for
// interval iv: every figure exact, by its settlement.StatementFields name.
func StatementOf(iv string, p settlement.Statement) Statement {
	f := p.Fields()
	d := func(name string) Decimal { return DecimalOf(f[name]) }
	return Statement{
		Interval: iv, Participant: p.Participant,
		Intervals: d("intervals"), MissingIntervals: d("missing_intervals"),
		BoughtKWh: d("bought_kwh"), SoldKWh: d("sold_kwh"), ReceivedKWh: d("received_kwh"), DeliveredKWh: d("delivered_kwh"),
		ImportKWh: d("import_kwh"), ExportKWh: d("export_kwh"), ImbalanceKWh: d("imbalance_kwh"),
		Paid: d("paid"), Received: d("received"), Fees: d("fees"),
		CompensationPaid: d("compensation_paid"), CompensationReceived: d("compensation_received"),
		GridCost: d("grid_cost"), GridCredit: d("grid_credit"), Net: d("net"), Baseline: d("baseline"), Saving: d("saving"),
	}
}

// ReadingEntry is the ledger entry of reading r of the device configured
// as device on gateway gw, for the interval named interval; at is its time.
func ReadingEntry(gw, device, interval string, at time.Time, r meter.Reading) ledger.Entry {
	rec := Reading{Gateway: gw, Device: device, Profile: r.Device, Time: r.Time.UTC(),
		PowerW: r.PowerW, ImportWh: r.ImportWh, ExportWh: r.ExportWh}
	return ledger.Entry{Kind: KindReading, Key: ReadingKey(gw, device, interval), Time: at, Data: marshal(rec)}
}

// marshal encodes a record's data. The types here hold strings, numbers
// and a time; the one failure, a time beyond year 9999, is left to the
// ledger, which refuses data that is not a JSON object.
func marshal(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}

// Decode reads a record's data by its kind: a Clearing, Trade, Statement,
// Book, Result or Reading, or the *settlement.IntervalSettlement of an interval record.
// Errors name the record; a kind not in Kinds wraps ErrUnknownKind.
func Decode(r ledger.Record) (any, error) {
	var (
		v   any
		err error
	)
	switch r.Kind {
	case KindClearing:
		v, err = DecodeClearing(r.Data)
	case KindTrade:
		v, err = DecodeTrade(r.Data)
	case KindStatement:
		v, err = DecodeStatement(r.Data)
	case KindInterval:
		v, err = settlement.DecodeIntervalSettlement(r.Data)
	case KindBook:
		v, err = DecodeBook(r.Data)
	case KindResult:
		v, err = DecodeResult(r.Data)
	case KindReading:
		v, err = DecodeReading(r.Data)
	default:
		return nil, fmt.Errorf("ledger record %d: %w", r.Seq, CheckKind(r.Kind))
	}
	if err != nil {
		return nil, fmt.Errorf("ledger record %d (%s %s): %w", r.Seq, r.Kind, r.Key, err)
	}
	return v, nil
}

// Settlement is the statement as a settlement.Statement: energy back in
// whole Wh, the counts as ints, a figure that is not set as 0 (Figures
// says which are set). Extra figures are left out. Errors name a figure
// that is not whole Wh, or a count out of range.
func (s Statement) Settlement() (settlement.Statement, error) {
	out := settlement.Statement{Participant: s.Participant}
	var err error
	wh := func(name string, d Decimal) int64 {
		v := d.Value().Shift(3)
		if err == nil && (!v.IsInteger() || v.Abs().GreaterThan(decimal.NewFromInt(settlement.MaxWh))) {
			err = fmt.Errorf("statement %s: %s: %s kWh is not a whole number of Wh within ±%d", StatementKey(s.Interval, s.Participant), name, d, int64(settlement.MaxWh))
		}
		return v.IntPart()
	}
	count := func(name string, d Decimal) int {
		v := d.Value()
		if err == nil && (!v.IsInteger() || v.IsNegative() || v.GreaterThan(decimal.NewFromInt(1<<31-1))) {
			err = fmt.Errorf("statement %s: %s: %s is not a count", StatementKey(s.Interval, s.Participant), name, d)
		}
		return int(v.IntPart())
	}
	out.Intervals, out.MissingIntervals = count("intervals", s.Intervals), count("missing_intervals", s.MissingIntervals)
	out.BoughtWh, out.SoldWh = wh("bought_kwh", s.BoughtKWh), wh("sold_kwh", s.SoldKWh)
	out.ReceivedWh, out.DeliveredWh = wh("received_kwh", s.ReceivedKWh), wh("delivered_kwh", s.DeliveredKWh)
	out.ImportWh, out.ExportWh = wh("import_kwh", s.ImportKWh), wh("export_kwh", s.ExportKWh)
	out.ImbalanceWh = wh("imbalance_kwh", s.ImbalanceKWh)
	out.PaidP2P, out.ReceivedP2P, out.Fees = s.Paid.Value(), s.Received.Value(), s.Fees.Value()
	out.CompensationPaid, out.CompensationReceived = s.CompensationPaid.Value(), s.CompensationReceived.Value()
	out.GridCost, out.GridCredit = s.GridCost.Value(), s.GridCredit.Value()
	out.Net, out.Baseline, out.Saving = s.Net.Value(), s.Baseline.Value(), s.Saving.Value()
	if err != nil {
		return settlement.Statement{}, err
	}
	return out, nil
}
