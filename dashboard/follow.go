package dashboard

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/p2pgrid/p2pgrid/settlement/ledger"
)

// follower feeds a Model from a ledger directory: a first scan of the
// whole ledger (ledger.Scan: read-only, without the gateway's lock, every
// record and the chain checked), then, whenever the file has grown, the
// lines appended since, read from where the last read ended: each one
// parsed strictly (ledger.ParseRecord: canonical form, its hash) and
// chained to the one before (its seq and prev). A line that does not
// chain sends the follower back to a whole scan, which names what is
// wrong.
type follower struct {
	dir      string
	model    *Model
	log      *slog.Logger
	progress func(records uint64, intervals int) // during a long scan
	every    time.Duration                       // how often progress is told
	batch    uint64                              // records between looks at the clock (0: 4096)

	// Where the records read so far end: the offset just past the last
	// one, its seq and hash (0 and "": nothing read, a whole scan next).
	offset   int64
	lastSeq  uint64
	lastHash string
}

// errUnchained is a tail line that does not follow the last record read.
var errUnchained = errors.New("does not follow the last record read")

// errShrunk is a ledger file shorter than what was read of it: not the
// same file, or damaged.
var errShrunk = errors.New("the file is shorter than what was read of it")

// catchUp ingests the records appended since the last read and returns
// the intervals they were about, each once, in the order first seen. A
// ledger not there yet is not an error (a gateway about to start):
// nothing is read. A record half written (an append under way) is left
// for the next read.
func (f *follower) catchUp() ([]string, error) {
	path := filepath.Join(f.dir, ledger.FileName)
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("ledger %s: %w", f.dir, err)
	}
	ids := newIDs()
	if f.lastHash != "" {
		if fi.Size() == f.offset {
			return nil, nil
		}
		err := errShrunk
		if fi.Size() > f.offset {
			err = f.tail(path, ids)
		}
		if err == nil {
			return ids.list, nil
		}
		f.log.Warn("ledger tail not read; reading the whole ledger again", "ledger", f.dir, "err", err)
	}
	return ids.list, f.scan(ids)
}

// scan reads the whole ledger, ingesting the records after the model's
// last one.
func (f *follower) scan(ids *idList) error {
	var n, offset uint64
	var lastSeq uint64
	var lastHash string
	last := time.Now()
	batch := f.batch
	if batch == 0 {
		batch = 4096
	}
	from := f.model.Seq() + 1
	torn, err := ledger.Scan(f.dir, 1, func(r ledger.Record) error {
		offset += uint64(len(r.Line())) + 1
		lastSeq, lastHash = r.Seq, r.Hash
		if r.Seq < from {
			return nil
		}
		f.ingest(r, ids)
		n++
		if n%batch == 0 && f.progress != nil && time.Since(last) >= f.every {
			last = time.Now()
			f.progress(f.model.Seq(), f.model.Intervals())
		}
		return nil
	})
	if err != nil {
		f.offset, f.lastSeq, f.lastHash = 0, 0, ""
		return err
	}
	_ = torn // a torn last line is read again next time: the offset ends before it
	f.offset, f.lastSeq, f.lastHash = int64(offset), lastSeq, lastHash
	return nil
}

// tail reads the complete lines after f.offset.
func (f *follower) tail(path string, ids *idList) error {
	fh, err := os.Open(path)
	if err != nil {
		return err
	}
	defer fh.Close()
	if _, err := fh.Seek(f.offset, io.SeekStart); err != nil {
		return err
	}
	br := bufio.NewReaderSize(fh, 64<<10)
	for {
		line, err := br.ReadBytes('\n')
		if errors.Is(err, io.EOF) {
			return nil // nothing more, or a line half written: next time
		}
		if err != nil {
			return err
		}
		r, err := ledger.ParseRecord(bytes.TrimSuffix(line, []byte("\n")))
		if err != nil {
			return fmt.Errorf("record after %d: %w", f.lastSeq, err)
		}
		if r.Seq != f.lastSeq+1 || r.Prev != f.lastHash {
			return fmt.Errorf("record %d (prev %.12s…) %w (%d, %.12s…)", r.Seq, r.Prev, errUnchained, f.lastSeq, f.lastHash)
		}
		f.ingest(r, ids)
		f.offset += int64(len(line))
		f.lastSeq, f.lastHash = r.Seq, r.Hash
	}
}

func (f *follower) ingest(r ledger.Record, ids *idList) {
	id, err := f.model.Ingest(r)
	if err != nil {
		// A record the dashboard cannot read is logged and skipped: the
		// rest of the ledger is still worth showing.
		f.log.Warn("ledger record not shown", "err", err)
	}
	ids.add(id)
}

// idList is a list of interval ids, each once.
type idList struct {
	list []string
	seen map[string]bool
}

func newIDs() *idList { return &idList{seen: map[string]bool{}} }

func (l *idList) add(id string) {
	if id != "" && !l.seen[id] {
		l.seen[id] = true
		l.list = append(l.list, id)
	}
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
