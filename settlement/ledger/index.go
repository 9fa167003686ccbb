package ledger

// index is what a Ledger keeps in memory about its records: which (kind,
// key) pairs it holds, for Has and the duplicate check, and where every
// markEvery-th record starts, for Read. Both are bounded when the ledger
// was opened with Options.IndexFor: the keys are those of the records of
// the last IndexFor before the last record (by record time), and the marks are one offset per
// markEvery records, so a gateway that runs for years keeps a few MB.
type index struct {
	window int64 // Options.IndexFor in nanoseconds; 0 keeps every key

	keys    map[string]indexed // indexKey(kind, key) -> where and when
	latest  int64              // the time of the last record added, Unix nanoseconds
	pruneAt int                // prune when keys grows to this many

	marks []int64 // marks[i] is where seq i*markEvery+1 starts
	last  uint64  // the last seq
}

// indexed is one key's entry: its record and the record's time.
type indexed struct {
	seq  uint64
	time int64 // Unix nanoseconds
}

// markEvery is how many records share one offset mark. Read starts at the
// mark at or before the first record it returns and skips at most
// markEvery-1 lines; 8 bytes per markEvery records stay in memory.
const markEvery = 256

// minPrune is the number of keys below which pruning is not worth a pass.
const minPrune = 4096

// keepLast is how many of the last records keep their keys whatever their
// time says.
const keepLast = minPrune / 2

func newIndex(window int64) *index {
	return &index{window: window, keys: make(map[string]indexed), pruneAt: minPrune}
}

// add records that seq, of kind and key and time t (Unix nanoseconds),
// starts at offset off. Records are added in seq order.
func (x *index) add(k string, seq uint64, t, off int64) {
	if (seq-1)%markEvery == 0 {
		x.marks = append(x.marks, off)
	}
	x.last = seq
	x.keys[k] = indexed{seq, t}
	x.latest = t
	if x.window > 0 && len(x.keys) >= x.pruneAt {
		x.prune()
	}
}

// lookup returns the seq of the record of this index key, if the index
// holds it.
func (x *index) lookup(k string) (uint64, bool) {
	e, ok := x.keys[k]
	return e.seq, ok
}

// prune drops the keys of records older than the window before the last
// record, into a new map (a Go map never shrinks), and sets the next prune
// for when the keys have doubled: amortised, each add costs O(1). The
// window counts back from the last record, not from the latest time ever
// seen: one record stamped by a clock far ahead does not make the ledger
// forget what it wrote before it, once the clock is right again; and the
// last keepLast records are kept whatever their times, should the prune
// come just after such a record.
func (x *index) prune() {
	horizon := x.latest - x.window
	keep := make(map[string]indexed, len(x.keys)/2)
	for k, e := range x.keys {
		if e.time >= horizon || e.seq+keepLast > x.last {
			keep[k] = e
		}
	}
	x.keys = keep
	x.pruneAt = max(minPrune, 2*len(keep))
}

// mark returns the offset of the mark at or before seq, and the seq that
// starts there.
func (x *index) mark(seq uint64) (off int64, at uint64) {
	i := (seq - 1) / markEvery
	return x.marks[i], i*markEvery + 1
}
