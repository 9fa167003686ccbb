package ledger

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// FileName is the ledger file inside its directory.
const FileName = "ledger.jsonl"

// Errors callers branch on with errors.Is.
var (
	// ErrDuplicate: Append was given a (kind, key) the ledger already holds,
	// or the same one twice; nothing was written.
	ErrDuplicate = errors.New("duplicate ledger entry")
	// ErrClosed: the Ledger was closed.
	ErrClosed = errors.New("ledger closed")
	// ErrLocked: another Ledger (in this or another process) has the
	// directory open.
	ErrLocked = errors.New("ledger in use by another process")
)

// Options configure Open.
type Options struct {
	// Logger receives warnings (a torn record cut on open). Nil discards.
	Logger *slog.Logger

	// IndexFor bounds the memory an open ledger keeps. Has and Append's
	// duplicate check always know the records whose time is within
	// IndexFor before the last record's time; older keys are forgotten
	// (Has may then answer false for them, and Open does not look for a
	// repeat among them). Zero keeps every key: exact over the whole
	// ledger, and memory grows with it. A caller whose keys name a period
	// and that appends only for recent periods, as the gateway does (its
	// window of intervals), loses nothing by a window longer than that.
	IndexFor time.Duration
}

// Ledger is an open ledger directory. Its methods are safe for concurrent
// use; Appends are serialised, and Has, Last and Read never wait for an
// Append's fsync.
type Ledger struct {
	dir string
	f   *os.File
	log *slog.Logger

	wmu    sync.Mutex // held for a whole Append (and Close)
	buf    []byte     // Append's line buffer, reused; under wmu
	failed error      // sticky write/fsync failure; under wmu

	mu       sync.RWMutex // guards the published state below
	closed   bool
	idx      *index // the records' keys (bounded by Options.IndexFor) and offset marks
	size     int64  // end of the last acknowledged record
	lastHash string

	cursorMu sync.Mutex // serialises SetCursor
}

// Open opens the ledger in dir, creating dir (0700) and the file (0600) if
// needed, and checks the whole chain. A bad last record (an incomplete
// line, bad JSON, a wrong hash or prev: what a crash mid-write leaves) is
// cut with a warning; its bytes are first saved to a file
// "ledger.torn-*" in dir. A bad record before the last is an error
// wrapping the *VerifyError that names it; nothing is cut then.
//
// One Ledger at a time may have a directory open (an exclusive flock on
// the file where supported); a second Open fails with ErrLocked.
func Open(dir string, o Options) (*Ledger, error) {
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := makeDir(dir); err != nil {
		return nil, fmt.Errorf("ledger %s: %w", dir, err)
	}
	path := filepath.Join(dir, FileName)
	_, statErr := os.Stat(path)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("ledger %s: %w", dir, err)
	}
	if o.IndexFor < 0 {
		f.Close()
		return nil, fmt.Errorf("ledger %s: IndexFor %v: want 0 (keep every key) or a positive duration", dir, o.IndexFor)
	}
	l, err := open(dir, f, log, errors.Is(statErr, os.ErrNotExist), o.IndexFor)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("ledger %s: %w", dir, err)
	}
	return l, nil
}

func open(dir string, f *os.File, log *slog.Logger, created bool, indexFor time.Duration) (*Ledger, error) {
	if err := lockFile(f); err != nil {
		return nil, err
	}
	if created {
		if err := syncDir(dir); err != nil {
			return nil, err
		}
	}
	st, err := scanFile(f, 0, nil, newIndex(int64(indexFor)))
	if err != nil {
		return nil, err
	}
	if st.tail != nil {
		saved, err := cutTail(dir, f, st.end)
		if err != nil {
			return nil, fmt.Errorf("cutting torn %s: %w", st.tail, err)
		}
		log.Warn("ledger: cut a torn or corrupt last record", "dir", dir,
			"seq", st.tail.Seq, "line", st.tail.Line, "reason", st.tail.Reason, "saved_to", saved)
	}
	return &Ledger{
		dir: dir, f: f, log: log,
		idx: st.idx, size: st.end, lastHash: st.lastHash,
	}, nil
}

// cutTail saves the bytes from end to the end of the file to a new file
// in dir, then truncates the ledger at end. Both are fsynced.
func cutTail(dir string, f *os.File, end int64) (string, error) {
	fi, err := f.Stat()
	if err != nil {
		return "", err
	}
	t, err := os.CreateTemp(dir, "ledger.torn-*")
	if err != nil {
		return "", err
	}
	_, err = io.Copy(t, io.NewSectionReader(f, end, fi.Size()-end))
	if err == nil {
		err = t.Sync()
	}
	if cerr := t.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = syncDir(dir)
	}
	if err == nil {
		err = f.Truncate(end)
	}
	if err == nil {
		err = f.Sync()
	}
	return t.Name(), err
}

// Append writes the entries as consecutive records with one write and one
// fsync, and returns them once they are durable: a returned record
// survives a crash or power loss. Every entry is checked first (kind,
// key, time, data: errors wrap ErrInvalidEntry) and a (kind, key) the
// ledger already holds is refused with ErrDuplicate; then nothing is
// written. Entry.Time is stored in UTC.
//
// If the write fails (a full disk), the file is cut back to the last
// acknowledged record and nothing of the batch is stored; later Appends
// try again. If that cut, or the fsync, fails, the outcome is unknown
// (some records may be on disk) and the Ledger refuses further appends:
// Close it and Open again, which cuts a torn record; Has then tells what
// was stored.
func (l *Ledger) Append(entries ...Entry) ([]Record, error) {
	l.wmu.Lock()
	defer l.wmu.Unlock()
	l.mu.RLock()
	closed, last, size, prev := l.closed, l.idx.last, l.size, l.lastHash
	l.mu.RUnlock()
	switch {
	case closed:
		return nil, ErrClosed
	case l.failed != nil:
		return nil, fmt.Errorf("ledger %s: an earlier write failed, reopen it: %w", l.dir, l.failed)
	case len(entries) == 0:
		return nil, nil
	}

	recs := make([]Record, len(entries))
	batch := make(map[string]int, len(entries))
	for i, e := range entries {
		tm, err := checkEntry(e)
		if err != nil {
			return nil, fmt.Errorf("ledger append: entry %d: %w: %w", i, ErrInvalidEntry, err)
		}
		k := indexKey(e.Kind, e.Key)
		if seq, dup := l.idx.lookup(k); dup { // the keys only change under wmu
			return nil, fmt.Errorf("ledger append: entry %d: kind %q key %q is record %d: %w", i, e.Kind, e.Key, seq, ErrDuplicate)
		}
		if j, dup := batch[k]; dup {
			return nil, fmt.Errorf("ledger append: entry %d: kind %q key %q repeats entry %d: %w", i, e.Kind, e.Key, j, ErrDuplicate)
		}
		batch[k] = i
		t, _ := parseTime(tm)
		recs[i] = Record{Seq: last + 1 + uint64(i), Time: t, Kind: e.Kind, Key: e.Key, Data: bytes.Clone(e.Data)}
	}

	buf := l.buf[:0]
	offs := make([]int64, len(recs))
	for i := range recs {
		r := &recs[i]
		offs[i] = size + int64(len(buf))
		r.Prev = prev
		buf, r.Hash = appendLine(buf, r.Seq, formatTime(r.Time), r.Kind, r.Key, r.Data, r.Prev)
		buf = append(buf, '\n')
		prev = r.Hash
	}
	if cap(buf) <= 4<<20 {
		l.buf = buf
	}
	if _, err := l.f.Write(buf); err != nil {
		// A write that failed (a full disk) may have left part of a
		// line: cut the file back to the last acknowledged record at
		// once, so that it verifies while the gateway runs, and the
		// next Append can try again. Only if that fails too is the
		// outcome unknown until the ledger is reopened.
		if terr := l.f.Truncate(size); terr != nil {
			l.failed = err
		} else if serr := l.f.Sync(); serr != nil {
			l.failed = err
		}
		return nil, fmt.Errorf("ledger %s: write: %w", l.dir, err)
	}
	if err := l.f.Sync(); err != nil {
		l.failed = err
		return nil, fmt.Errorf("ledger %s: fsync: %w", l.dir, err)
	}

	l.mu.Lock()
	l.size = size + int64(len(buf))
	l.lastHash = prev
	for i, r := range recs {
		l.idx.add(indexKey(r.Kind, r.Key), r.Seq, r.Time.UnixNano(), offs[i])
	}
	l.mu.Unlock()
	return recs, nil
}

// Has reports whether a record of this kind and key was appended
// (acknowledged) before, in this run or an earlier one. With
// Options.IndexFor it is exact for the records within that window before
// the last one; an older record may be forgotten (false).
func (l *Ledger) Has(kind, key string) bool {
	l.mu.RLock()
	defer l.mu.RUnlock()
	_, ok := l.idx.lookup(indexKey(kind, key))
	return ok
}

// Last returns the sequence number of the last record, 0 if there is none.
func (l *Ledger) Last() uint64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.idx.last
}

// Read returns the records with Seq >= from (from 0 counts as 1), at most
// max of them (max >= 1), in order; none if from is past the last. It
// reads them from the file and checks them again (ParseRecord and the
// chain between them), so a file changed under a running ledger is an
// error rather than wrong data.
func (l *Ledger) Read(from uint64, max int) ([]Record, error) {
	limit := max
	if limit < 1 {
		return nil, fmt.Errorf("ledger read: max %d, want 1 or more", limit)
	}
	if from == 0 {
		from = 1
	}
	l.mu.RLock()
	closed, last, size := l.closed, l.idx.last, l.size
	var start int64
	var at uint64 // the seq that starts at start
	if !closed && from <= last {
		start, at = l.idx.mark(from)
	}
	l.mu.RUnlock()
	if closed {
		return nil, ErrClosed
	}
	if from > last {
		return nil, nil
	}
	to := min(last, from+uint64(limit)-1) // the last seq to return
	br := bufio.NewReaderSize(io.NewSectionReader(l.f, start, size-start), 64<<10)
	var scratch []byte
	recs := make([]Record, 0, to-from+1)
	var prev string // the hash of the record before seq, once read
	for seq := at; seq <= to; seq++ {
		bad := func(reason string) error {
			return fmt.Errorf("ledger %s: record %d changed on disk: %w", l.dir, seq, &VerifyError{Seq: seq, Line: int(seq), Reason: reason})
		}
		line, err := readLine(br, &scratch)
		switch {
		case err == io.EOF:
			return nil, bad("no newline at its end")
		case err != nil:
			return nil, fmt.Errorf("ledger %s: reading record %d: %w", l.dir, seq, err)
		}
		r, err := ParseRecord(line[:len(line)-1])
		switch {
		case err != nil:
			return nil, bad(err.Error())
		case r.Seq != seq:
			return nil, bad(fmt.Sprintf("seq is %d", r.Seq))
		case seq > at && r.Prev != prev:
			return nil, bad("prev is not the hash of the record before")
		}
		prev = r.Hash
		if seq >= from {
			recs = append(recs, r)
		}
	}
	return recs, nil
}

// Close closes the ledger file (and releases its lock). Every acknowledged
// record is already durable; Close writes nothing. Closing twice is a no-op.
func (l *Ledger) Close() error {
	l.wmu.Lock()
	defer l.wmu.Unlock()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil
	}
	l.closed = true
	if err := l.f.Close(); err != nil {
		return fmt.Errorf("ledger %s: %w", l.dir, err)
	}
	return nil
}

// makeDir creates dir with mode 0700 if it does not exist, and fsyncs its
// parent so that the new entry is durable.
func makeDir(dir string) error {
	fi, err := os.Stat(dir)
	if err == nil {
		if !fi.IsDir() {
			return fmt.Errorf("%s is not a directory", dir)
		}
		return nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	return syncDir(filepath.Dir(filepath.Clean(dir)))
}

// syncDir fsyncs a directory, making the names created in it durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("fsync directory %s: %w", dir, err)
	}
	return nil
}
