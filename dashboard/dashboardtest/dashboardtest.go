// Package dashboardtest builds real ledgers for the dashboard's tests: a
// two-home community (ann sells to bob) whose intervals are settled with
// the real auction result, settlement and record code and appended as a
// gateway appends them.
package dashboardtest

import (
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/p2pgrid/p2pgrid/auction"
	"github.com/p2pgrid/p2pgrid/market"
	"github.com/p2pgrid/p2pgrid/settlement"
	"github.com/p2pgrid/p2pgrid/settlement/ledger"
	"github.com/p2pgrid/p2pgrid/settlement/record"
)

// Tariffs are the test community's: retail 0.30, feed-in 0.05 per kWh.
var Tariffs = settlement.Tariffs{Retail: decimal.RequireFromString("0.30"), FeedIn: decimal.RequireFromString("0.05")}

// Trade is an interval of the test community: ann sells Wh to bob at
// Price (micro-units per kWh); ann exports AnnExport Wh, bob imports
// BobImport Wh.
type Trade struct {
	Start                time.Time
	Wh, Price            int64
	AnnExport, BobImport int64
}

var (
	// T0 is the start of the first test interval.
	T0 = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	// TwoIntervals: ann sells 1 kWh at 0.15, all of bob's import; then
	// 0.5 kWh at 0.20 of bob's 1.5 kWh.
	TwoIntervals = []Trade{
		{Start: T0, Wh: 1000, Price: 150000, AnnExport: 1000, BobImport: 1000},
		{Start: T0.Add(15 * time.Minute), Wh: 500, Price: 200000, AnnExport: 500, BobImport: 1500},
	}
)

// Append settles tr and appends its records to l.
func Append(t testing.TB, l *ledger.Ledger, tr Trade) *settlement.IntervalSettlement {
	t.Helper()
	iv := market.IntervalID(tr.Start)
	r := &auction.Result{Interval: iv, Orders: 2, QtyDecimals: 3, PriceDecimals: 6, Cleared: true, Price: tr.Price, Volume: tr.Wh,
		Fills:  []auction.Fill{{ID: "s1", Participant: "ann", Side: auction.Sell, Qty: tr.Wh}, {ID: "b1", Participant: "bob", Side: auction.Buy, Qty: tr.Wh}},
		Trades: []auction.Trade{{SellFill: 0, BuyFill: 1, Qty: tr.Wh}}}
	s, err := settlement.Settle(iv, r, Tariffs, []settlement.Metered{
		{Participant: "ann", ExportWh: tr.AnnExport}, {Participant: "bob", ImportWh: tr.BobImport}}, settlement.SellerBearsShortfall{})
	if err != nil {
		t.Fatal(err)
	}
	m, err := auction.NewMarket(auction.DefaultRules())
	if err != nil {
		t.Fatal(err)
	}
	es, err := record.Entries(record.Market{Community: "elm st", Currency: "EUR", Rules: m}, tr.Start.Add(20*time.Minute), r, s)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Append(es...); err != nil {
		t.Fatal(err)
	}
	return s
}

// Ledger is a ledger in a new directory holding trades, open for
// appending more until the test ends.
func Ledger(t testing.TB, trades ...Trade) (string, *ledger.Ledger) {
	t.Helper()
	dir := t.TempDir()
	l, err := ledger.Open(dir, ledger.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	for _, tr := range trades {
		Append(t, l, tr)
	}
	return dir, l
}

// Repeat is n intervals in a row from T0, each traded as tr.
func Repeat(tr Trade, n int) []Trade {
	out := make([]Trade, n)
	for i := range out {
		out[i] = tr
		out[i].Start = T0.Add(time.Duration(i) * 15 * time.Minute)
	}
	return out
}
