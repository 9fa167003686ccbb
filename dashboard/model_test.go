package dashboard

import (
	"testing"
	"time"

	"github.com/p2pgrid/p2pgrid/dashboard/dashboardtest"
	"github.com/p2pgrid/p2pgrid/settlement/ledger"
)

func ingestAll(t *testing.T, m *Model, dir string) {
	t.Helper()
	if _, err := ledger.Scan(dir, m.Seq()+1, func(r ledger.Record) error {
		_, err := m.Ingest(r)
		return err
	}); err != nil {
		t.Fatal(err)
	}
}

// The model's figures of two settled intervals, exact: worked out by hand
// from the tariffs (retail 0.30, feed-in 0.05).
func TestModelFigures(t *testing.T) {
	dir, _ := testLedger(t, twoIntervals...)
	m := NewModel(0)
	ingestAll(t, m, dir)

	if got := m.Currency(); got != "EUR" {
		t.Errorf("currency %q, want EUR", got)
	}
	rec := m.Recent(10)
	if len(rec) != 2 || rec[0].ID != "2026-11-22T12:15Z" || rec[1].ID != "2026-11-22T12:00Z" {
		t.Fatalf("recent %+v, want 12:15 then 12:00", rec)
	}
	for _, c := range []struct{ got, want string }{
		{rec[1].Price.String(), "0.15"}, {rec[1].VolumeKWh.String(), "1"}, {rec[1].MoneyKept.String(), "0.15"},
		{rec[1].LocalShare.String(), "1"}, {rec[1].Saving.String(), "0.25"},
		{rec[0].Price.String(), "0.2"}, {rec[0].VolumeKWh.String(), "0.5"}, {rec[0].MoneyKept.String(), "0.1"},
		// 500 of bob's 1500 Wh: a third, to 6 decimals.
		{rec[0].LocalShare.String(), "0.333333"},
		// bob: -0.10 - 0.30 against -0.45; ann: 0.10 against 0.025.
		{rec[0].Saving.String(), "0.125"},
	} {
		if c.got != c.want {
			t.Errorf("interval figure %s, want %s (%+v)", c.got, c.want, rec)
		}
	}
	tot := m.Totals()
	c := tot.Community
	if c.Intervals != 2 || c.ConsumptionWh != 2500 || c.LocalWh != 1500 || c.LocalShare.String() != "0.6" ||
		c.MoneyKeptLocally.String() != "0.25" || c.Saving.String() != "0.375" || c.Participants != 2 {
		t.Errorf("community totals %+v; want 2 intervals, 2500 Wh consumed, 1500 Wh local (0.6), 0.25 kept, 0.375 saved", c)
	}
	if len(tot.Homes) != 2 || tot.Homes[0].Participant != "ann" || tot.Homes[0].Saving.String() != "0.175" ||
		tot.Homes[1].Participant != "bob" || tot.Homes[1].Saving.String() != "0.2" || tot.Homes[1].Intervals != 2 {
		t.Errorf("homes %+v; want ann saving 0.175, bob 0.2 over 2 intervals", tot.Homes)
	}
	d, kept, known := m.Detail("2026-11-22T12:15Z")
	if !kept || !known || d.Settlement == nil || d.Clearing == nil || len(d.Settlement.Trades) != 1 || d.Settlement.Trades[0].Amount.String() != "0.1" {
		t.Errorf("detail of 12:15: kept %v known %v %+v; want its settlement, one trade of 0.1", kept, known, d)
	}
}

// Ingesting the records in two goes gives the figures of one go: the
// follower's polling is incremental.
func TestModelIncremental(t *testing.T) {
	dir, l := testLedger(t, twoIntervals[0])
	m := NewModel(0)
	ingestAll(t, m, dir)
	appendSettled(t, l, twoIntervals[1])
	ingestAll(t, m, dir)
	if c := m.Totals().Community; c.Intervals != 2 || c.Saving.String() != "0.375" || m.Intervals() != 2 {
		t.Errorf("after two scans: %d intervals, %+v; want 2 settled, saving 0.375", m.Intervals(), c)
	}
}

// The model keeps the detail of the latest intervals only; the summaries
// of all of them, and the totals, stay whole.
func TestModelBoundsDetail(t *testing.T) {
	trades := dashboardtest.Repeat(twoIntervals[0], 10)
	dir, _ := testLedger(t, trades...)
	m := NewModel(3)
	ingestAll(t, m, dir)
	if len(m.detail) != 3 {
		t.Errorf("%d intervals in detail, want 3", len(m.detail))
	}
	if _, kept, known := m.Detail("2026-11-22T12:00Z"); kept || !known {
		t.Errorf("oldest interval: kept %v known %v, want known, not kept", kept, known)
	}
	if _, kept, _ := m.Detail("2026-11-22T14:15Z"); !kept {
		t.Error("latest interval not kept in detail")
	}
	if c := m.Totals().Community; c.Intervals != 10 || c.Saving.String() != "2.5" || m.Intervals() != 10 {
		t.Errorf("totals over 10 intervals %+v, want saving 2.5", c)
	}
}

// The local share takes each interval's possible exchange apart: ann's
// surplus of the first interval could not have gone to bob's deficit of
// the second. 12:00: ann exports 1000, bob imports 500, 500 traded:
// possible 500. 12:15: ann 500, bob 1500, 500 traded: possible 500. So
// 1000 of 1000 (1), not 1000 of min(1500, 2000) (0.666667).
func TestModelLocalShareIsPerInterval(t *testing.T) {
	dir, _ := testLedger(t,
		testTrade{Start: t0, Wh: 500, Price: 150000, AnnExport: 1000, BobImport: 500},
		testTrade{Start: t0.Add(15 * time.Minute), Wh: 500, Price: 150000, AnnExport: 500, BobImport: 1500})
	m := NewModel(0)
	ingestAll(t, m, dir)
	c := m.Totals().Community
	if c.PossibleLocalWh != 1000 || c.ExchangedWh() != 1000 || c.ExchangeShare.String() != "1" {
		t.Errorf("possible %d Wh, exchanged %d Wh, local share %s; want 1000, 1000 and 1", c.PossibleLocalWh, c.ExchangedWh(), c.ExchangeShare)
	}
	if rec := m.Recent(2); len(rec) != 2 || rec[0].PossibleLocalWh != 500 || rec[0].ExchangeShare.String() != "1" {
		t.Errorf("recent %+v; want 500 Wh possible in each, all exchanged", rec)
	}
}
