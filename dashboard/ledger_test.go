package dashboard

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

// The test community's tariffs: retail 0.30, feed-in 0.05 per kWh.
var testTariffs = settlement.Tariffs{Retail: decimal.RequireFromString("0.30"), FeedIn: decimal.RequireFromString("0.05")}

// testTrade is an interval of the test community: ann sells kwh (Wh) to
// bob at price (micro-units per kWh); ann exports annExport, bob imports
// bobImport.
type testTrade struct {
	start                time.Time
	wh, price            int64
	annExport, bobImport int64
}

// appendSettled settles tr with the real auction result, settlement and
// record code and appends its records to l, as a gateway does.
func appendSettled(t *testing.T, l *ledger.Ledger, tr testTrade) *settlement.IntervalSettlement {
	t.Helper()
	iv := market.IntervalID(tr.start)
	r := &auction.Result{Interval: iv, Orders: 2, QtyDecimals: 3, PriceDecimals: 6, Cleared: true, Price: tr.price, Volume: tr.wh,
		Fills:  []auction.Fill{{ID: "s1", Participant: "ann", Side: auction.Sell, Qty: tr.wh}, {ID: "b1", Participant: "bob", Side: auction.Buy, Qty: tr.wh}},
		Trades: []auction.Trade{{SellFill: 0, BuyFill: 1, Qty: tr.wh}}}
	s, err := settlement.Settle(iv, r, testTariffs, []settlement.Metered{
		{Participant: "ann", ExportWh: tr.annExport}, {Participant: "bob", ImportWh: tr.bobImport}}, settlement.SellerBearsShortfall{})
	if err != nil {
		t.Fatal(err)
	}
	m, err := auction.NewMarket(auction.DefaultRules())
	if err != nil {
		t.Fatal(err)
	}
	es, err := record.Entries(record.Market{Community: "elm st", Currency: "EUR", Rules: m}, tr.start.Add(20*time.Minute), r, s)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Append(es...); err != nil {
		t.Fatal(err)
	}
	return s
}

var (
	t0 = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	// Two intervals: ann sells 1 kWh at 0.15, all of bob's import; then
	// 0.5 kWh at 0.20 of bob's 1.5 kWh.
	twoIntervals = []testTrade{
		{start: t0, wh: 1000, price: 150000, annExport: 1000, bobImport: 1000},
		{start: t0.Add(15 * time.Minute), wh: 500, price: 200000, annExport: 500, bobImport: 1500},
	}
)

// testLedger is a ledger in a new directory holding trades, open for
// appending more.
func testLedger(t *testing.T, trades ...testTrade) (string, *ledger.Ledger) {
	t.Helper()
	dir := t.TempDir()
	l, err := ledger.Open(dir, ledger.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	for _, tr := range trades {
		appendSettled(t, l, tr)
	}
	return dir, l
}
