package dashboard

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/p2pgrid/p2pgrid/dashboard/dashboardtest"
	"github.com/p2pgrid/p2pgrid/settlement/ledger"
)

// A long scan tells its progress; a scan of an unchanged file reads
// nothing; records appended later are read from where the last scan
// ended; a half-written last record is left for the next scan.
func TestFollower(t *testing.T) {
	trades := dashboardtest.Repeat(twoIntervals[0], 6)
	dir, l := testLedger(t, trades...)
	m := NewModel(0)
	type step struct {
		records uint64
		n       int
	}
	var told []step
	f := &follower{dir: dir, model: m, log: slog.New(slog.DiscardHandler), batch: 5,
		progress: func(records uint64, n int) { told = append(told, step{records, n}) }}
	ids, err := f.catchUp()
	if err != nil || len(ids) != 6 {
		t.Fatalf("first scan: %v, %v; want the 6 intervals", ids, err)
	}
	// 5 records per interval (clearing, trade, 2 statements, interval):
	// told after every 5th record, the 5th interval being half read at
	// record 25... and so on.
	if len(told) != 6 || told[0] != (step{5, 1}) || told[5] != (step{30, 6}) {
		t.Errorf("progress told %v, want every 5 records", told)
	}
	if ids, err := f.catchUp(); err != nil || ids != nil {
		t.Errorf("unchanged ledger: %v, %v; want nothing read", ids, err)
	}
	next := func(i int) testTrade {
		tr := twoIntervals[1]
		tr.Start = t0.Add(time.Duration(i) * 15 * time.Minute)
		return tr
	}
	appendSettled(t, l, next(6))
	if ids, err := f.catchUp(); err != nil || len(ids) != 1 || ids[0] != "2026-11-22T13:30Z" || m.Intervals() != 7 || f.offset != mustSize(t, dir) {
		t.Errorf("after an append: %v, %v, %d intervals, at %d of %d bytes; want 13:30 only, read to the end", ids, err, m.Intervals(), f.offset, mustSize(t, dir))
	}
	// A gateway that crashes mid-append leaves a torn line; the dashboard
	// waits; the gateway restarts, cuts it and appends again.
	l.Close()
	fh, err := os.OpenFile(filepath.Join(dir, ledger.FileName), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fh.WriteString(`{"seq":36,"time":"2026-11-22T14:00:00Z","kind":"clea`)
	fh.Close()
	seq, offset := m.Seq(), f.offset
	if ids, err := f.catchUp(); err != nil || ids != nil || m.Seq() != seq || f.offset != offset {
		t.Errorf("half-written record: %v, %v, seq %d (was %d); want nothing new, no error", ids, err, m.Seq(), seq)
	}
	l2, err := ledger.Open(dir, ledger.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Close()
	appendSettled(t, l2, next(7))
	if ids, err := f.catchUp(); err != nil || len(ids) != 1 || ids[0] != "2026-11-22T13:45Z" || m.Seq() != seq+5 || f.offset != mustSize(t, dir) {
		t.Errorf("after the torn line was cut and an interval appended: %v, %v, seq %d; want 13:45, seq %d", ids, err, m.Seq(), seq+5)
	}
}

func mustSize(t *testing.T, dir string) int64 {
	t.Helper()
	fi, err := os.Stat(filepath.Join(dir, ledger.FileName))
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// A ledger file that is not the one read before (shorter, or with records
// that do not chain to the last one read) is read whole again, and damage
// in it is an error naming the record.
func TestFollowerRereadsAnotherFile(t *testing.T) {
	dir, l := testLedger(t, twoIntervals...)
	m := NewModel(0)
	f := &follower{dir: dir, model: m, log: slog.New(slog.DiscardHandler)}
	if _, err := f.catchUp(); err != nil {
		t.Fatal(err)
	}
	l.Close()
	path := filepath.Join(dir, ledger.FileName)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// The first line cut short: a damaged file, shorter than was read.
	if err := os.WriteFile(path, append([]byte(`{"seq":1,"time":"x"}`+"\n"), b[bytes.IndexByte(b, '\n')+1:]...), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = f.catchUp()
	var ve *ledger.VerifyError
	if !errors.As(err, &ve) || ve.Seq != 1 {
		t.Errorf("damaged ledger: %v, want the VerifyError of record 1", err)
	}
}
