package summary

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/p2pgrid/p2pgrid/settlement/ledger"
	"github.com/p2pgrid/p2pgrid/settlement/record"
)

// countingReader is a ledger that counts the records it hands out, so the
// test sees that Rebuild reads the month, not the whole ledger.
type countingReader struct {
	*ledger.Ledger
	read int
}

func (c *countingReader) Read(from uint64, max int) ([]ledger.Record, error) {
	recs, err := c.Ledger.Read(from, max)
	c.read += len(recs)
	return recs, err
}

// Rebuild from a real ledger gives the totals that feeding the same
// records live gives: two months of a home's intervals, every 15 minutes
// of the day, written at settlement time; only this month's count, and
// only about this month's records are read.
func TestRebuild(t *testing.T) {
	l, err := ledger.Open(t.TempDir(), ledger.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	now := time.Date(2026, 11, 3, 9, 0, 0, 0, time.UTC)
	live := NewTally("home1", berlin, now)
	start := time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)
	n := 0
	for at := start; at.Before(now.Add(-30 * time.Minute)); at = at.Add(15 * time.Minute) {
		iv := at.Format("2006-01-02T15:04Z")
		sold := int64(n % 7 * 100)
		recs := []in{clearing(t, iv, fmt.Sprintf("0.%03d", 100+n%50)),
			stmt(t, iv, "home1", int64(n%3*10), sold, fmt.Sprintf("0.00%d", n%9)),
			stmt(t, iv, "home2", 5, 5, "1")}
		if sold > 0 {
			recs = append(recs, trade(t, iv, "home1", "home2", fmt.Sprintf("%d", sold), "0.1", "0.01"))
		}
		var entries []ledger.Entry
		for i, r := range recs {
			entries = append(entries, ledger.Entry{Kind: r.kind, Key: fmt.Sprintf("%s/%d", iv, i), Time: at.Add(17 * time.Minute), Data: r.data})
			if err := live.Add(r.kind, r.data); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := l.Append(entries...); err != nil {
			t.Fatal(err)
		}
		n++
	}
	cr := &countingReader{Ledger: l}
	rebuilt := NewTally("home1", berlin, now)
	if err := Rebuild(cr, rebuilt, rebuilt.Since()); err != nil {
		t.Fatal(err)
	}
	got, want := rebuilt.Summary("c1", "EUR", now), live.Summary("c1", "EUR", now)
	gj, _ := got.MarshalJSON()
	wj, _ := want.MarshalJSON()
	if string(gj) != string(wj) {
		t.Errorf("rebuilt from the ledger:\n%s\nfed live:\n%s", gj, wj)
	}
	if got.ThisMonth.SoldWh == 0 || got.Today.SoldWh == 0 || got.LastTrade == nil || got.Price == nil {
		t.Errorf("the test's month is empty: %+v", got)
	}
	// November so far: about 3 days of 96 intervals, and the margin of 2
	// days, of at most 4 records each; the bisection reads a few more.
	total := l.Last()
	if limit := (5*96 + 4) * 4; cr.read > limit || uint64(cr.read) >= total {
		t.Errorf("Rebuild read %d of %d records, want at most %d", cr.read, total, limit)
	}
}

// An empty ledger rebuilds nothing; a record that does not decode is an
// error naming its seq.
func TestRebuildEmptyAndBad(t *testing.T) {
	l, err := ledger.Open(t.TempDir(), ledger.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	now := time.Date(2026, 11, 3, 9, 0, 0, 0, time.UTC)
	tally := NewTally("home1", time.UTC, now)
	if err := Rebuild(l, tally, tally.Since()); err != nil {
		t.Fatalf("empty ledger: %v", err)
	}
	good := stmt(t, "2026-11-03T07:00Z", "home1", 0, 100, "0.01")
	for i, data := range [][]byte{[]byte(`{"interval":"2026-11-03T08:00Z"}`), good.data, []byte(`{"interval":"x","participant":"home1"}`)} {
		if _, err := l.Append(ledger.Entry{Kind: record.KindStatement, Key: fmt.Sprint(i), Time: now, Data: data}); err != nil {
			t.Fatal(err)
		}
	}
	err = Rebuild(l, tally, tally.Since())
	var skipped *SkippedError
	if !errors.As(err, &skipped) || skipped.Count != 2 ||
		err.Error() != "2 ledger records skipped, the first: ledger record 1: summary: statement: participant is missing" {
		t.Errorf("bad records: %v", err)
	}
	if s := tally.Summary("c1", "EUR", now); s.Today.SoldWh != 100 {
		t.Errorf("the good record between the bad ones: %+v", s.Today)
	}
}
