package dashboard

import (
	"runtime"
	"testing"
	"time"

	"github.com/p2pgrid/p2pgrid/auction"
	"github.com/p2pgrid/p2pgrid/market"
	"github.com/p2pgrid/p2pgrid/settlement"
	"github.com/p2pgrid/p2pgrid/settlement/ledger"
	"github.com/p2pgrid/p2pgrid/settlement/record"
)

// A long ledger keeps the model's memory bounded: the detail of the latest
// DefaultKeepDetail intervals, a summary of each of the others, less than
// 1.5 kB an interval (a year of 15-minute intervals, 35,040, is about
// 19 MB, measured so). A quarter of a year of six homes is ingested, to
// keep the test quick under the race detector.
func TestModelLongLedgerIsBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("ingests a quarter of a year of intervals")
	}
	rules, err := auction.NewMarket(auction.DefaultRules())
	if err != nil {
		t.Fatal(err)
	}
	homes := []string{"h1", "h2", "h3", "h4", "h5", "h6"}
	// One interval's records, settled once; each interval of the year is
	// the same with its own id (the model reads the interval from the
	// data, so the ids are rewritten in it).
	iv := market.IntervalID(t0)
	r := &auction.Result{Interval: iv, Orders: 6, QtyDecimals: 3, PriceDecimals: 6, Cleared: true, Price: 120000, Volume: 900,
		Fills:  []auction.Fill{{ID: "s1", Participant: "h1", Side: auction.Sell, Qty: 900}, {ID: "b1", Participant: "h2", Side: auction.Buy, Qty: 900}},
		Trades: []auction.Trade{{SellFill: 0, BuyFill: 1, Qty: 900}}}
	var metered []settlement.Metered
	for i, h := range homes {
		metered = append(metered, settlement.Metered{Participant: h, ImportWh: int64(100 * i), ExportWh: int64(1000 * (1 - i%2))})
	}
	s, err := settlement.Settle(iv, r, testTariffs(), metered, settlement.SellerBearsShortfall{})
	if err != nil {
		t.Fatal(err)
	}
	es, err := record.Entries(record.Market{Community: "c", Currency: "EUR", Rules: rules}, t0, r, s)
	if err != nil {
		t.Fatal(err)
	}
	const year = 91 * 96
	m := NewModel(0)
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	seq := uint64(0)
	for i := range year {
		id := market.IntervalID(t0.Add(time.Duration(i) * 15 * time.Minute))
		for _, e := range es {
			seq++
			data := []byte(replaceAll(string(e.Data), iv, id))
			if _, err := m.Ingest(ledger.Record{Seq: seq, Kind: e.Kind, Key: e.Key, Data: data}); err != nil {
				t.Fatal(err)
			}
		}
	}
	var after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&after)
	heap := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	t.Logf("%d intervals: %d kept in detail, heap %.1f MB", m.Intervals(), len(m.detail), float64(heap)/1e6)
	if m.Intervals() != year || len(m.detail) != DefaultKeepDetail {
		t.Errorf("%d intervals, %d in detail; want %d and %d", m.Intervals(), len(m.detail), year, DefaultKeepDetail)
	}
	if per := heap / year; per > 1536 {
		t.Errorf("the model takes %d bytes of heap an interval (%d MB for %d), more than 1.5 kB", per, heap>>20, year)
	}
	if c := m.Totals().Community; c.Intervals != year {
		t.Errorf("totals over %d intervals, want %d", c.Intervals, year)
	}
}
