package ledger

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

// minuteEntry is entry i of a ledger that records one trade a minute.
func minuteEntry(i int) Entry {
	return Entry{Kind: "trade", Key: fmt.Sprintf("k%06d", i), Time: t0.Add(time.Duration(i) * time.Minute), Data: []byte(`{"i":1}`)}
}

// TestIndexForBoundsTheKeys: with Options.IndexFor a ledger that grows
// keeps only the keys of its last IndexFor in memory, while Has and the
// duplicate check stay exact within that window, across a reopen; opened
// without it, the ledger knows every key again.
func TestIndexForBoundsTheKeys(t *testing.T) {
	const n, window = 20000, time.Hour // 20,000 minutes, about 14 days
	dir := t.TempDir()
	l, err := Open(dir, Options{IndexFor: window})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i += 500 {
		batch := make([]Entry, 500)
		for j := range batch {
			batch[j] = minuteEntry(i + j)
		}
		if _, err := l.Append(batch...); err != nil {
			t.Fatal(err)
		}
		if len(l.idx.keys) > minPrune {
			t.Fatalf("after %d records the index holds %d keys, want at most %d", i+500, len(l.idx.keys), minPrune)
		}
	}
	check := func(l *Ledger, when string) {
		t.Helper()
		for i := n - 61; i < n; i++ { // the window: the newest 61 minutes
			if !l.Has("trade", minuteEntry(i).Key) {
				t.Fatalf("%s: Has(record %d of the last hour) = false", when, i)
			}
		}
		if _, err := l.Append(minuteEntry(n - 30)); !errors.Is(err, ErrDuplicate) {
			t.Errorf("%s: appending a repeat within the window: %v, want ErrDuplicate", when, err)
		}
		if l.Has("trade", minuteEntry(0).Key) {
			t.Errorf("%s: the key of record 1, two weeks older than the newest, is still in memory", when)
		}
	}
	check(l, "running")
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l, err = Open(dir, Options{IndexFor: window})
	if err != nil {
		t.Fatal(err)
	}
	if len(l.idx.keys) > minPrune || l.Last() != n {
		t.Errorf("reopened: %d keys, last %d; want at most %d keys, last %d", len(l.idx.keys), l.Last(), minPrune, n)
	}
	check(l, "reopened")
	l.Close()

	l = mustOpen(t, dir) // IndexFor 0: every key
	defer l.Close()
	if len(l.idx.keys) != n || !l.Has("trade", minuteEntry(0).Key) {
		t.Errorf("opened without IndexFor: %d keys, Has(record 1) %v; want %d, true", len(l.idx.keys), l.Has("trade", minuteEntry(0).Key), n)
	}
	if _, err := l.Append(minuteEntry(0)); !errors.Is(err, ErrDuplicate) {
		t.Errorf("opened without IndexFor, a repeat of record 1: %v, want ErrDuplicate", err)
	}
}

func TestIndexForNegative(t *testing.T) {
	if _, err := Open(t.TempDir(), Options{IndexFor: -time.Second}); err == nil || !strings.Contains(err.Error(), "IndexFor") {
		t.Errorf("Open with a negative IndexFor: %v, want an error naming IndexFor", err)
	}
}

// TestReadAcrossMarks: Read keeps one offset per markEvery records and
// reads forward from it; every start and length across the marks returns
// exactly the records appended, before and after a reopen.
func TestReadAcrossMarks(t *testing.T) {
	const n = 3*markEvery + 17
	dir := t.TempDir()
	l := mustOpen(t, dir)
	var all []Record
	for i := 0; i < n; i += 50 {
		batch := make([]Entry, 0, 50)
		for j := i; j < min(n, i+50); j++ {
			batch = append(batch, minuteEntry(j))
		}
		recs, err := l.Append(batch...)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, recs...)
	}
	check := func(l *Ledger, when string) {
		t.Helper()
		if len(l.idx.marks) != 4 {
			t.Errorf("%s: %d marks for %d records, want 4", when, len(l.idx.marks), n)
		}
		for _, from := range []uint64{1, 2, markEvery - 1, markEvery, markEvery + 1, 2*markEvery + 1, 3 * markEvery, n - 1, n} {
			for _, max := range []int{1, 3, markEvery, 2*markEvery + 5, n} {
				got, err := l.Read(from, max)
				if err != nil {
					t.Fatalf("%s: Read(%d, %d): %v", when, from, max, err)
				}
				want := all[from-1 : min(uint64(n), from-1+uint64(max))]
				if !reflect.DeepEqual(got, want) {
					t.Fatalf("%s: Read(%d, %d): %d records from seq %d, want %d from %d", when, from, max, len(got), first(got), len(want), from)
				}
			}
		}
		if got, err := l.Read(n+1, 5); err != nil || len(got) != 0 {
			t.Errorf("%s: Read past the last: %d records, %v", when, len(got), err)
		}
	}
	check(l, "running")
	l.Close()
	l = mustOpen(t, dir)
	defer l.Close()
	check(l, "reopened")
}

func first(rs []Record) uint64 {
	if len(rs) == 0 {
		return 0
	}
	return rs[0].Seq
}

// TestReadSeesAChangeOnDisk: a record changed under a running ledger is
// an error from Read, also when it lies between the mark Read starts at
// and the first record asked for.
func TestReadSeesAChangeOnDisk(t *testing.T) {
	dir := t.TempDir()
	l := mustOpen(t, dir)
	defer l.Close()
	batch := make([]Entry, 300)
	for i := range batch {
		batch[i] = minuteEntry(i)
	}
	if _, err := l.Append(batch...); err != nil {
		t.Fatal(err)
	}
	b := readFile(t, dir)
	lines := splitLines(b)
	lines[269] = []byte(strings.Replace(string(lines[269]), `{"i":1}`, `{"i":2}`, 1)) // record 270, same length
	writeFile(t, dir, bytes.Join(lines, nil))
	var ve *VerifyError
	if _, err := l.Read(280, 5); !errors.As(err, &ve) || ve.Seq != 270 || !strings.Contains(err.Error(), "changed on disk") {
		t.Errorf("Read(280, 5) after record 270 changed: %v, want a VerifyError for record 270", err)
	}
	if rs, err := l.Read(1, 5); err != nil || len(rs) != 5 {
		t.Errorf("Read(1, 5), before the change: %d records, %v", len(rs), err)
	}
}

// TestIndexAfterAClockFarAhead: one record stamped a year ahead (a clock
// set wrong, then put right) does not make the index forget the records
// before it, even when it is the one that triggers a prune, nor those
// after it once the clock is right.
func TestIndexAfterAClockFarAhead(t *testing.T) {
	x := newIndex(int64(time.Hour))
	minute := int64(time.Minute)
	base := t0.UnixNano()
	seq := uint64(0)
	add := func(t int64) string {
		seq++
		k := fmt.Sprintf("k%d", seq)
		x.add(k, seq, t, int64(seq)*100)
		return k
	}
	var before []string
	for i := range 100 {
		before = append(before, add(base+int64(i)*minute))
	}
	add(base + int64(365*24*time.Hour)) // a year ahead
	x.prune()                           // just then
	for _, k := range before {
		if _, ok := x.lookup(k); !ok {
			t.Fatalf("key %s, written a minute before the clock jumped, forgotten", k)
		}
	}
	var after []string
	for i := range 2 * minPrune { // the clock right again: many prunes
		after = append(after, add(base+int64(100+i)*minute))
	}
	for _, k := range after[len(after)-61:] {
		if _, ok := x.lookup(k); !ok {
			t.Fatalf("key %s of the last hour forgotten after the clock was put right", k)
		}
	}
	if len(x.keys) > minPrune {
		t.Errorf("%d keys kept, want at most %d", len(x.keys), minPrune)
	}
}
