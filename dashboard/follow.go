package dashboard

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/p2pgrid/p2pgrid/settlement/ledger"
)

// follower feeds a Model from a ledger directory: a first scan of the
// whole ledger, then, whenever the file has changed, the records appended
// since. It reads with ledger.Scan: read-only, without the gateway's lock.
type follower struct {
	dir      string
	model    *Model
	log      *slog.Logger
	progress func(records uint64, intervals int) // during a long scan
	every    time.Duration                       // how often progress is told
	batch    uint64                              // records between looks at the clock (0: 4096)

	size int64
	mod  time.Time
}

// catchUp ingests the records appended since the model's last one, if the
// ledger file changed, and returns the intervals they were about, each
// once, in the order first seen. A ledger not there yet is not an error
// (a gateway about to start): nothing is read.
func (f *follower) catchUp() ([]string, error) {
	fi, err := os.Stat(filepath.Join(f.dir, ledger.FileName))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("ledger %s: %w", f.dir, err)
	}
	if fi.Size() == f.size && fi.ModTime().Equal(f.mod) {
		return nil, nil
	}
	var ids []string
	seen := map[string]bool{}
	var n uint64
	last := time.Now()
	batch := f.batch
	if batch == 0 {
		batch = 4096
	}
	torn, err := ledger.Scan(f.dir, f.model.Seq()+1, func(r ledger.Record) error {
		id, err := f.model.Ingest(r)
		if err != nil {
			// A record the dashboard cannot read is logged and skipped:
			// the rest of the ledger is still worth showing.
			f.log.Warn("ledger record not shown", "err", err)
		}
		if id != "" && !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
		n++
		if n%batch == 0 && f.progress != nil && time.Since(last) >= f.every {
			last = time.Now()
			f.progress(f.model.Seq(), f.model.Intervals())
		}
		return nil
	})
	if err != nil {
		return ids, err
	}
	if torn == nil {
		// With a record half written, the file is read again next time.
		f.size, f.mod = fi.Size(), fi.ModTime()
	}
	return ids, nil
}

// run polls the ledger every poll until ctx ends, passing the intervals
// of new records to changed. A failed read is logged and retried.
func (f *follower) run(ctx context.Context, poll time.Duration, changed func([]string)) {
	t := time.NewTicker(poll)
	defer t.Stop()
	for {
		ids, err := f.catchUp()
		if err != nil {
			f.log.Error("ledger not read", "ledger", f.dir, "err", err)
		}
		if len(ids) > 0 {
			changed(ids)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
