package summary

import (
	"fmt"
	"time"

	"github.com/p2pgrid/p2pgrid/settlement/ledger"
)

// LedgerReader is what Rebuild reads: the open ledger's read API
// (settlement/ledger.Ledger has it).
type LedgerReader interface {
	Last() uint64
	Read(from uint64, max int) ([]ledger.Record, error)
}

var _ LedgerReader = (*ledger.Ledger)(nil)

// rebuildPage is how many records Rebuild holds at a time.
const rebuildPage = 512

// Rebuild adds to t the records of l from the first written at or after
// since (Add: the home's statements, trades and clearings; the rest is
// skipped, and Add itself keeps only this month's statements), reading a
// page at a time so that memory stays bounded however long the ledger
// is. It finds that first record by bisection on the records' times,
// which the gateway writes in order (each when it records a settled
// interval), so it reads the records of the period, not the whole
// ledger. A record that does not decode is skipped, and the error returned
// at the end names the first of them and how many there were (*SkippedError):
// the rest is in t. An error reading the ledger ends the rebuild.
func Rebuild(l LedgerReader, t *Tally, since time.Time) error {
	last := l.Last()
	from, err := firstAtOrAfter(l, last, since)
	if err != nil {
		return err
	}
	var skipped SkippedError
	for from <= last {
		recs, err := l.Read(from, rebuildPage)
		if err != nil {
			return fmt.Errorf("summary: reading the ledger from record %d: %w", from, err)
		}
		if len(recs) == 0 {
			break
		}
		for _, r := range recs {
			if err := t.Add(r.Kind, r.Data); err != nil {
				if skipped.Count == 0 {
					skipped.First = fmt.Errorf("ledger record %d: %w", r.Seq, err)
				}
				skipped.Count++
			}
		}
		from = recs[len(recs)-1].Seq + 1
	}
	if skipped.Count > 0 {
		return &skipped
	}
	return nil
}

// SkippedError is Rebuild's error about records it could not read.
type SkippedError struct {
	Count int   // records skipped
	First error // about the first of them
}

func (e *SkippedError) Error() string {
	return fmt.Sprintf("%d ledger records skipped, the first: %v", e.Count, e.First)
}

func (e *SkippedError) Unwrap() error { return e.First }

// firstAtOrAfter returns the seq of the first record of l (of 1..last)
// whose time is not before since, last+1 if there is none.
func firstAtOrAfter(l LedgerReader, last uint64, since time.Time) (uint64, error) {
	lo, hi := uint64(1), last+1 // the answer is in [lo, hi]
	for lo < hi {
		mid := lo + (hi-lo)/2
		recs, err := l.Read(mid, 1)
		if err != nil {
			return 0, fmt.Errorf("summary: reading ledger record %d: %w", mid, err)
		}
		if len(recs) == 0 {
			return 0, fmt.Errorf("summary: ledger record %d of %d is missing", mid, last)
		}
		if recs[0].Time.Before(since) {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return lo, nil
}
