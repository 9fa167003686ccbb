package dashboard

import (
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/p2pgrid/p2pgrid/settlement/ledger"
)

// A long scan tells its progress; a scan of an unchanged file reads
// nothing; records appended later are read from where the last scan
// ended; a half-written last record is left for the next scan.
func TestFollower(t *testing.T) {
	var trades []testTrade
	for i := range 6 {
		tr := twoIntervals[0]
		tr.Start = t0.Add(time.Duration(i) * 15 * time.Minute)
		trades = append(trades, tr)
	}
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
	tr := twoIntervals[1]
	tr.Start = t0.Add(6 * 15 * time.Minute)
	appendSettled(t, l, tr)
	if ids, err := f.catchUp(); err != nil || len(ids) != 1 || ids[0] != "2026-11-22T13:30Z" || m.Intervals() != 7 {
		t.Errorf("after an append: %v, %v, %d intervals; want 13:30 only", ids, err, m.Intervals())
	}
	l.Close()
	fh, err := os.OpenFile(filepath.Join(dir, ledger.FileName), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fh.WriteString(`{"seq":36,"time":"2026-11-22T14:00:00Z","kind":"clea`)
	fh.Close()
	seq := m.Seq()
	if ids, err := f.catchUp(); err != nil || ids != nil || m.Seq() != seq {
		t.Errorf("half-written record: %v, %v, seq %d (was %d); want nothing new, no error", ids, err, m.Seq(), seq)
	}
	if f.size != 0 && f.size == mustSize(t, dir) {
		t.Error("a scan that met a half-written record marked the file as read: the rest of it would never be")
	}
}

func mustSize(t *testing.T, dir string) int64 {
	fi, err := os.Stat(filepath.Join(dir, ledger.FileName))
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}
