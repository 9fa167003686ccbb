package ledger

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// VerifyError names the first record of a ledger file that is not intact.
type VerifyError struct {
	Seq    uint64 // the sequence number that belongs at that line (line n holds seq n)
	Line   int    // 1-based line number in ledger.jsonl
	Reason string // what is wrong, e.g. "hash mismatch: ..."
}

func (e *VerifyError) Error() string {
	return fmt.Sprintf("record %d (line %d): %s", e.Seq, e.Line, e.Reason)
}

// Verify checks the whole ledger in dir without changing it: every line
// parses strictly (ParseRecord), sequence numbers run 1, 2, 3, ..., each
// Prev is the Hash of the record before, no (kind, key) repeats, and the
// file ends with a newline. It returns the number of intact records before
// the first problem; a problem in the file is a *VerifyError, other errors
// (a missing file, I/O) are returned wrapped.
//
// A torn last record, which Open would cut, is reported too: Verify says
// whether the file is intact, not whether Open would accept it. Verify
// takes no lock; run against a ledger being appended to, it may see a
// record half written.
func Verify(dir string) (records uint64, err error) {
	path := filepath.Join(dir, FileName)
	f, err := os.Open(path)
	if err != nil {
		return 0, fmt.Errorf("ledger %s: %w", dir, err)
	}
	defer f.Close()
	st, err := scanFile(f, 0, nil, newIndex(0))
	if err != nil {
		return st.n, err
	}
	if st.tail != nil {
		return st.n, st.tail
	}
	return st.n, nil
}

// Scan reads the ledger in dir from the start, as Verify does: read-only
// and without the lock, so it is safe next to a running gateway. It checks
// every line and the chain, and calls fn with each intact record whose Seq
// is from or later, in order (from 0 counts as 1).
//
// A bad last line (a torn write that Open would cut, or a record half
// written by an Append running now) is not an error: the records before
// it are delivered, and it is returned as torn. A bad line before the last
// is returned as a *VerifyError, after fn has seen the records before it.
// An error from fn stops the scan and is returned as it is; a missing file
// or an I/O error is returned wrapped, naming dir.
func Scan(dir string, from uint64, fn func(Record) error) (torn *VerifyError, err error) {
	f, err := os.Open(filepath.Join(dir, FileName))
	if err != nil {
		return nil, fmt.Errorf("ledger %s: %w", dir, err)
	}
	defer f.Close()
	if fn == nil {
		fn = func(Record) error { return nil }
	}
	st, err := scanFile(f, from, fn, newIndex(0))
	var ve *VerifyError
	switch {
	case errors.As(err, &ve):
		return nil, err
	case err != nil && st.fnErr:
		return nil, err
	case err != nil:
		return nil, fmt.Errorf("ledger %s: %w", dir, err)
	}
	return st.tail, nil
}

// scanState is what a scan of the file learnt: the intact records and,
// if the last line is bad, why.
type scanState struct {
	n        uint64       // intact records
	end      int64        // offset just past the last intact record
	idx      *index       // the intact records' keys and marks
	lastHash string       // Hash of record n, ZeroHash if none
	tail     *VerifyError // the last line, bad; it starts at end
	fnErr    bool         // the error returned is the callback's
}

func indexKey(kind, key string) string { return kind + "\x00" + key }

// scanFile reads a ledger file from the start and checks every record and
// the chain. A bad line that is the last in the file (with or without its
// newline) is left in tail; a bad line before it is returned as a
// *VerifyError. With fn, every intact record from seq from on is passed
// to it (parsed and copied) as soon as it is checked; fn's error stops the
// scan. The records are added to idx, and a repeated (kind, key) is found
// among the keys idx keeps: all of them unless it has a window.
func scanFile(r io.ReaderAt, from uint64, fn func(Record) error, idx *index) (st scanState, err error) {
	st = scanState{idx: idx}
	br := bufio.NewReaderSize(io.NewSectionReader(r, 0, 1<<62), 256<<10)
	var scratch, hashIn, mk []byte
	lastHash := []byte(ZeroHash)
	defer func() { st.lastHash = string(lastHash) }()
	for lineNo := 1; ; lineNo++ {
		seq := uint64(lineNo)
		line, err := readLine(br, &scratch)
		if err == io.EOF && len(line) == 0 {
			return st, nil
		}
		bad := func(format string, a ...any) *VerifyError {
			return &VerifyError{Seq: seq, Line: lineNo, Reason: fmt.Sprintf(format, a...)}
		}
		if err == io.EOF {
			st.tail = bad("incomplete last line (%d bytes, no newline): torn write", len(line))
			return st, nil
		}
		if err != nil {
			return st, fmt.Errorf("reading line %d: %w", lineNo, err)
		}
		n := int64(len(line))
		f, perr := parseFields(line[:len(line)-1], &hashIn)
		var verr *VerifyError
		switch {
		case perr != nil:
			verr = bad("%v", perr)
		case f.seq != seq:
			verr = bad("seq is %d, want %d (a record missing, moved or repeated)", f.seq, seq)
		case !bytes.Equal(f.prev, lastHash):
			verr = bad("prev %s is not the hash of record %d (%s)", f.prev, seq-1, lastHash)
		default:
			mk = append(append(append(mk[:0], f.kind...), 0), unescapeKey(f.key)...)
			if first, dup := idx.keys[string(mk)]; dup { // no allocation for the lookup
				verr = bad("kind %q key %q repeats record %d", f.kind, unescapeKey(f.key), first.seq)
			}
		}
		if verr != nil {
			if _, err := br.Peek(1); err == io.EOF {
				st.tail = verr
				return st, nil
			}
			return st, verr
		}
		if fn != nil && seq >= from {
			rec := Record{Seq: f.seq, Time: f.time, Kind: string(f.kind), Key: string(unescapeKey(f.key)),
				Data: bytes.Clone(f.data), Prev: string(f.prev), Hash: string(f.hash)}
			if err := fn(rec); err != nil {
				st.fnErr = true
				return st, err
			}
		}
		lastHash = append(lastHash[:0], f.hash...)
		idx.add(string(mk), seq, f.time.UnixNano(), st.end)
		st.end += n
		st.n = seq
	}
}

// readLine returns the next line including its '\n', or what is left
// before EOF with io.EOF. The result is valid until the next call.
func readLine(br *bufio.Reader, scratch *[]byte) ([]byte, error) {
	line, err := br.ReadSlice('\n')
	if !errors.Is(err, bufio.ErrBufferFull) {
		return line, err
	}
	*scratch = append((*scratch)[:0], line...)
	for {
		line, err = br.ReadSlice('\n')
		*scratch = append(*scratch, line...)
		if !errors.Is(err, bufio.ErrBufferFull) {
			return *scratch, err
		}
	}
}
