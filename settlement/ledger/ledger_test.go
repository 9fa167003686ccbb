package ledger

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 22, 12, 15, 0, 0, time.UTC)

func entry(i int) Entry {
	return Entry{
		Kind: "trade",
		Key:  fmt.Sprintf("2026-11-22T12:15Z/home%d/home%d", i, i+1),
		Time: t0.Add(time.Duration(i) * 1500 * time.Millisecond),
		Data: fmt.Appendf(nil, `{"kwh":"%d.250","price":"0.15","note":"a \"b\" \\ c"}`, i),
	}
}

func mustOpen(t testing.TB, dir string) *Ledger {
	t.Helper()
	l, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// fill appends n records (entries 0..n-1), one per Append.
func fill(t testing.TB, dir string, n int) []Record {
	t.Helper()
	l := mustOpen(t, dir)
	defer l.Close()
	var all []Record
	for i := range n {
		recs, err := l.Append(entry(i))
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, recs...)
	}
	return all
}

func readFile(t testing.TB, dir string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, FileName))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func writeFile(t testing.TB, dir string, b []byte) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, FileName), b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func splitLines(b []byte) [][]byte {
	ls := bytes.SplitAfter(b, []byte("\n"))
	if len(ls[len(ls)-1]) == 0 {
		ls = ls[:len(ls)-1]
	}
	return ls
}

func checkChain(t *testing.T, recs []Record) {
	t.Helper()
	prev := ZeroHash
	for i, r := range recs {
		if r.Seq != uint64(i+1) || r.Prev != prev || len(r.Hash) != 64 {
			t.Fatalf("record %d: seq %d prev %s hash %s, want seq %d prev %s", i, r.Seq, r.Prev, r.Hash, i+1, prev)
		}
		prev = r.Hash
	}
}

func TestAppendReadReopen(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "ledger")
	l := mustOpen(t, dir)
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("dir: %v %v, want mode 0700", fi, err)
	}
	if l.Last() != 0 {
		t.Fatalf("Last of a new ledger = %d", l.Last())
	}
	var got []Record
	for i := range 3 {
		recs, err := l.Append(entry(i))
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, recs...)
	}
	batch := []Entry{entry(3), entry(4), entry(5), entry(6), entry(7), entry(8), entry(9)}
	batch[0].Time = t0.In(time.FixedZone("CET", 3600)) // stored in UTC
	recs, err := l.Append(batch...)
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, recs...)
	checkChain(t, got)
	if got[3].Time.Location() != time.UTC || !got[3].Time.Equal(t0) {
		t.Fatalf("time %v, want %v in UTC", got[3].Time, t0)
	}
	if l.Last() != 10 {
		t.Fatalf("Last = %d, want 10", l.Last())
	}
	all, err := l.Read(1, 100)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(all, got) {
		t.Fatalf("Read(1, 100) differs from what Append returned:\n%v\n%v", all, got)
	}
	for _, c := range []struct {
		from   uint64
		max    int
		first  uint64
		length int
	}{{0, 1, 1, 1}, {4, 3, 4, 3}, {9, 5, 9, 2}, {10, 1, 10, 1}, {11, 5, 0, 0}} {
		rs, err := l.Read(c.from, c.max)
		if err != nil {
			t.Fatal(err)
		}
		if len(rs) != c.length || (c.length > 0 && !reflect.DeepEqual(rs, got[c.first-1:c.first-1+uint64(c.length)])) {
			t.Errorf("Read(%d, %d): %d records, want %d from seq %d", c.from, c.max, len(rs), c.length, c.first)
		}
	}
	if _, err := l.Read(1, 0); err == nil {
		t.Error("Read with max 0: no error")
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}

	l = mustOpen(t, dir)
	defer l.Close()
	if l.Last() != 10 {
		t.Fatalf("Last after reopen = %d, want 10", l.Last())
	}
	again, err := l.Read(1, 10)
	if err != nil || !reflect.DeepEqual(again, got) {
		t.Fatalf("Read after reopen: %v; records differ: %v", err, !reflect.DeepEqual(again, got))
	}
	if !l.Has("trade", entry(7).Key) || l.Has("trade", entry(10).Key) || l.Has("clearing", entry(7).Key) {
		t.Error("Has after reopen is wrong")
	}
	more, err := l.Append(entry(10))
	if err != nil {
		t.Fatal(err)
	}
	checkChain(t, append(got, more...))
	if n, err := Verify(dir); err != nil || n != 11 {
		t.Fatalf("Verify = %d, %v; want 11, nil", n, err)
	}
}

// TestHashDefinition checks the documented hash independently of the
// encoder: SHA-256 of the line with the hash value emptied.
func TestHashDefinition(t *testing.T) {
	dir := t.TempDir()
	recs := fill(t, dir, 3)
	for i, line := range splitLines(readFile(t, dir)) {
		line = bytes.TrimSuffix(line, []byte("\n"))
		h := recs[i].Hash
		unhashed := bytes.Replace(line, []byte(`"hash":"`+h+`"`), []byte(`"hash":""`), 1)
		sum := sha256.Sum256(unhashed)
		if hex.EncodeToString(sum[:]) != h {
			t.Fatalf("line %d: hash %s is not SHA-256 of %s", i+1, h, unhashed)
		}
	}
	first := string(bytes.SplitN(readFile(t, dir), []byte("\n"), 2)[0])
	want := `{"seq":1,"time":"2026-11-22T12:15:00Z","kind":"trade","key":"2026-11-22T12:15Z/home0/home1","data":{"kwh":"0.250","price":"0.15","note":"a \"b\" \\ c"},"prev":"` + ZeroHash + `","hash":"` + recs[0].Hash + `"}`
	if first != want {
		t.Fatalf("line 1:\n got %s\nwant %s", first, want)
	}
}

func TestAppendRejects(t *testing.T) {
	dir := t.TempDir()
	l := mustOpen(t, dir)
	defer l.Close()
	ok := entry(0)
	bad := map[string]func(*Entry){
		"empty kind":      func(e *Entry) { e.Kind = "" },
		"upper kind":      func(e *Entry) { e.Kind = "Trade" },
		"long kind":       func(e *Entry) { e.Kind = strings.Repeat("a", 33) },
		"empty key":       func(e *Entry) { e.Key = "" },
		"newline key":     func(e *Entry) { e.Key = "a\nb" },
		"non-ascii key":   func(e *Entry) { e.Key = "häus" },
		"long key":        func(e *Entry) { e.Key = strings.Repeat("k", 201) },
		"zero time":       func(e *Entry) { e.Time = time.Time{} },
		"year 10000":      func(e *Entry) { e.Time = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) },
		"no data":         func(e *Entry) { e.Data = nil },
		"array":           func(e *Entry) { e.Data = []byte(`[1]`) },
		"null":            func(e *Entry) { e.Data = []byte(`null`) },
		"spaces":          func(e *Entry) { e.Data = []byte(`{"a": 1}`) },
		"newline":         func(e *Entry) { e.Data = []byte("{\n}") },
		"leading space":   func(e *Entry) { e.Data = []byte(` {}`) },
		"trailing junk":   func(e *Entry) { e.Data = []byte(`{}x`) },
		"trailing space":  func(e *Entry) { e.Data = []byte(`{} `) },
		"invalid utf8":    func(e *Entry) { e.Data = []byte("{\"a\":\"\xff\"}") },
		"unclosed object": func(e *Entry) { e.Data = []byte(`{"a":1`) },
		"too big":         func(e *Entry) { e.Data = []byte(`{"a":"` + strings.Repeat("x", MaxDataLen) + `"}`) },
	}
	for name, f := range bad {
		e := ok
		f(&e)
		if _, err := l.Append(ok, e); !errors.Is(err, ErrInvalidEntry) {
			t.Errorf("%s: err %v, want ErrInvalidEntry", name, err)
		}
	}
	if l.Last() != 0 || l.Has(ok.Kind, ok.Key) {
		t.Fatal("a rejected batch wrote something")
	}
	// Keys with quotes and backslashes, spaces and the longest key round-trip.
	odd := []Entry{ok, entry(1), entry(2)}
	odd[1].Key = `a "quoted" \ key {}`
	odd[2].Key = strings.Repeat("~", MaxKeyLen)
	recs, err := l.Append(odd...)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Append(entry(5), ok); !errors.Is(err, ErrDuplicate) {
		t.Errorf("repeat of a stored key: err %v, want ErrDuplicate", err)
	}
	if _, err := l.Append(entry(5), entry(5)); !errors.Is(err, ErrDuplicate) {
		t.Errorf("repeat within a batch: err %v, want ErrDuplicate", err)
	}
	if l.Last() != 3 || l.Has("trade", entry(5).Key) {
		t.Fatalf("a refused batch wrote something: Last %d", l.Last())
	}
	back, err := l.Read(1, 3)
	if err != nil || !reflect.DeepEqual(back, recs) {
		t.Fatalf("read back: %v", err)
	}
	if n, err := Verify(dir); err != nil || n != 3 {
		t.Fatalf("Verify = %d, %v", n, err)
	}
}

func TestLockedAndClosed(t *testing.T) {
	dir := t.TempDir()
	l := mustOpen(t, dir)
	if _, err := Open(dir, Options{}); !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open: err %v, want ErrLocked", err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := l.Append(entry(0)); !errors.Is(err, ErrClosed) {
		t.Errorf("Append after Close: %v", err)
	}
	if _, err := l.Read(1, 1); !errors.Is(err, ErrClosed) {
		t.Errorf("Read after Close: %v", err)
	}
	if err := l.SetCursor("x", 0); !errors.Is(err, ErrClosed) {
		t.Errorf("SetCursor after Close: %v", err)
	}
	l2 := mustOpen(t, dir) // the lock went with Close
	l2.Close()
}

// TestTornTail damages the end of a 5-record ledger the ways a crash (or
// a bad disk) can and checks that Open cuts exactly the bad last record,
// saves its bytes, warns, and that appending continues the chain.
func TestTornTail(t *testing.T) {
	cases := []struct {
		name   string
		damage func(b []byte, lines [][]byte) []byte
		keep   uint64 // records left after the cut
	}{
		{"partial line", func(b []byte, ls [][]byte) []byte { return b[:len(b)-len(ls[4])/2] }, 4},
		{"line without newline", func(b []byte, _ [][]byte) []byte { return b[:len(b)-1] }, 4},
		{"garbage tail", func(b []byte, _ [][]byte) []byte { return append(b, "xx{\"seq\":6"...) }, 5},
		{"zeros tail", func(b []byte, _ [][]byte) []byte { return append(b, make([]byte, 4096)...) }, 5},
		{"empty last line", func(b []byte, _ [][]byte) []byte { return append(b, '\n') }, 5},
		{"bad hash", func(b []byte, _ [][]byte) []byte { return flip(b, len(b)-4) }, 4},
		{"bad json", func(b []byte, ls [][]byte) []byte { return append(b[:len(b)-len(ls[4])], "{\"seq\":5,}\n"...) }, 4},
		{"bad data byte", func(b []byte, ls [][]byte) []byte {
			return flip(b, len(b)-len(ls[4])+bytes.Index(ls[4], []byte(`"kwh":"4`))+7)
		}, 4},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			recs := fill(t, dir, 5)
			orig := readFile(t, dir)
			damaged := c.damage(bytes.Clone(orig), splitLines(orig))
			writeFile(t, dir, damaged)

			n, err := Verify(dir)
			var ve *VerifyError
			if !errors.As(err, &ve) || n != c.keep || ve.Seq != c.keep+1 || ve.Line != int(c.keep+1) {
				t.Fatalf("Verify before Open = %d, %v; want %d and a VerifyError for record %d", n, err, c.keep, c.keep+1)
			}
			var logs bytes.Buffer
			l, err := Open(dir, Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			if l.Last() != c.keep {
				t.Fatalf("Last after the cut = %d, want %d", l.Last(), c.keep)
			}
			if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), fmt.Sprintf("seq=%d", c.keep+1)) {
				t.Errorf("no warning naming record %d: %q", c.keep+1, logs.String())
			}
			kept := orig
			if c.keep == 4 {
				kept = orig[:len(orig)-len(splitLines(orig)[4])]
			}
			if got := readFile(t, dir); !bytes.Equal(got, kept) {
				t.Fatalf("file after the cut is not the intact prefix (%d bytes, want %d)", len(got), len(kept))
			}
			saved, _ := filepath.Glob(filepath.Join(dir, "ledger.torn-*"))
			if len(saved) != 1 {
				t.Fatalf("saved torn files: %v, want 1", saved)
			}
			if b, _ := os.ReadFile(saved[0]); !bytes.Equal(b, damaged[len(kept):]) {
				t.Errorf("saved bytes %q, want %q", b, damaged[len(kept):])
			}
			if l.Has("trade", entry(4).Key) != (c.keep == 5) {
				t.Errorf("Has(record 5) = %v with %d records kept", !(c.keep == 5), c.keep)
			}
			next, err := l.Append(entry(9))
			if err != nil {
				t.Fatal(err)
			}
			if next[0].Seq != c.keep+1 || next[0].Prev != recs[c.keep-1].Hash {
				t.Fatalf("append after the cut: seq %d prev %s, want %d after %s", next[0].Seq, next[0].Prev, c.keep+1, recs[c.keep-1].Hash)
			}
			if n, err := Verify(dir); err != nil || n != c.keep+1 {
				t.Fatalf("Verify after append = %d, %v", n, err)
			}
		})
	}
}

// flip changes one byte to a different character of the same class, so
// the line is still well formed where it can be.
func flip(b []byte, i int) []byte {
	switch c := b[i]; {
	case c >= '0' && c <= '8', c >= 'a' && c <= 'e':
		b[i]++
	default:
		b[i] = '0'
	}
	return b
}

// TestCorruptionBeforeLast damages a record before the last of 10: Open
// must refuse (cutting nothing) and Verify must name exactly that record.
func TestCorruptionBeforeLast(t *testing.T) {
	rehash := func(line []byte) []byte { // forge a right hash for an edited line, as documented
		i := bytes.LastIndex(line, []byte(`"hash":"`)) + len(`"hash":"`)
		sum := sha256.Sum256(append(bytes.Clone(line[:i]), `"}`...))
		return append(append(bytes.Clone(line[:i]), hex.EncodeToString(sum[:])...), "\"}\n"...)
	}
	cases := []struct {
		name    string
		damage  func(ls [][]byte) [][]byte
		seq     uint64
		reason  string
		records uint64
	}{
		{"byte in data of 3", func(ls [][]byte) [][]byte {
			ls[2] = flip(ls[2], bytes.Index(ls[2], []byte(`"kwh":"2`))+7)
			return ls
		}, 3, "hash mismatch", 2},
		{"byte in time of 3", func(ls [][]byte) [][]byte {
			ls[2] = bytes.Replace(ls[2], []byte(`12:15:03Z`), []byte(`12:15:04Z`), 1)
			return ls
		}, 3, "hash mismatch", 2},
		{"byte in hash of 3", func(ls [][]byte) [][]byte { ls[2] = flip(ls[2], len(ls[2])-5); return ls }, 3, "hash mismatch", 2},
		{"line 3 deleted", func(ls [][]byte) [][]byte { return append(ls[:2:2], ls[3:]...) }, 3, "seq is 4, want 3", 2},
		{"lines 3 and 4 swapped", func(ls [][]byte) [][]byte { ls[2], ls[3] = ls[3], ls[2]; return ls }, 3, "seq is 4, want 3", 2},
		{"line 3 repeated", func(ls [][]byte) [][]byte {
			return append(ls[:3:3], append([][]byte{ls[2]}, ls[3:]...)...)
		}, 4, "seq is 3, want 4", 3},
		{"prev of 3 changed", func(ls [][]byte) [][]byte {
			ls[2] = flip(ls[2], bytes.Index(ls[2], []byte(`"prev":"`))+8)
			return ls
		}, 3, "hash mismatch", 2},
		{"prev of 3 changed, hash recomputed", func(ls [][]byte) [][]byte {
			ls[2] = rehash(flip(ls[2], bytes.Index(ls[2], []byte(`"prev":"`))+8))
			return ls
		}, 3, "is not the hash of record 2", 2},
		{"data of 3 changed, hash recomputed", func(ls [][]byte) [][]byte {
			ls[2] = rehash(flip(ls[2], bytes.Index(ls[2], []byte(`"kwh":"2`))+7))
			return ls
		}, 4, "is not the hash of record 3", 3},
		{"record 9 of 10 torn", func(ls [][]byte) [][]byte { ls[8] = append(ls[8][:20:20], '\n'); return ls }, 9, "at byte", 8},
		{"space in line 3", func(ls [][]byte) [][]byte {
			ls[2] = bytes.Replace(ls[2], []byte(`"kind":`), []byte(`"kind": `), 1)
			return ls
		}, 3, `want ","kind":"`, 2},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			fill(t, dir, 10)
			damaged := bytes.Join(c.damage(splitLines(readFile(t, dir))), nil)
			writeFile(t, dir, damaged)

			n, err := Verify(dir)
			var ve *VerifyError
			if !errors.As(err, &ve) {
				t.Fatalf("Verify: %v, want a *VerifyError", err)
			}
			if ve.Seq != c.seq || ve.Line != int(c.seq) || !strings.Contains(ve.Reason, c.reason) || n != c.records {
				t.Fatalf("Verify = %d, %v; want %d records and record %d: ...%s...", n, err, c.records, c.seq, c.reason)
			}
			_, err = Open(dir, Options{})
			var oe *VerifyError
			if !errors.As(err, &oe) || *oe != *ve {
				t.Fatalf("Open: %v, want %v", err, ve)
			}
			if !bytes.Equal(readFile(t, dir), damaged) {
				t.Fatal("a failed Open changed the file")
			}
		})
	}
}

func TestCursor(t *testing.T) {
	dir := t.TempDir()
	fill(t, dir, 5)
	l := mustOpen(t, dir)
	if c, err := l.Cursor("influx"); err != nil || c != 0 {
		t.Fatalf("unset cursor = %d, %v; want 0", c, err)
	}
	for _, seq := range []uint64{3, 5} {
		if err := l.SetCursor("influx", seq); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.SetCursor("influx", 6); err == nil {
		t.Error("cursor past the last record: no error")
	}
	for _, name := range []string{"", "Influx", "a/b", "../x", strings.Repeat("a", 65)} {
		if err := l.SetCursor(name, 1); err == nil {
			t.Errorf("cursor name %q: no error", name)
		}
	}
	if err := l.SetCursor("mqtt-out_2", 1); err != nil {
		t.Fatal(err)
	}
	l.Close()

	l = mustOpen(t, dir)
	defer l.Close()
	if c, err := l.Cursor("influx"); err != nil || c != 5 {
		t.Fatalf("cursor after reopen = %d, %v; want 5", c, err)
	}
	if c, err := l.Cursor("mqtt-out_2"); err != nil || c != 1 {
		t.Fatalf("second cursor = %d, %v; want 1", c, err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "cursor-influx")); string(b) != "5\n" {
		t.Errorf("cursor file holds %q", b)
	}
	if tmp, _ := filepath.Glob(filepath.Join(dir, "*.tmp-*")); len(tmp) != 0 {
		t.Errorf("temporary files left: %v", tmp)
	}
	os.WriteFile(filepath.Join(dir, "cursor-bad"), []byte("x\n"), 0o600)
	if _, err := l.Cursor("bad"); err == nil || !strings.Contains(err.Error(), "cursor-bad") {
		t.Errorf("garbled cursor file: %v", err)
	}
}

func TestConcurrentAppend(t *testing.T) {
	dir := t.TempDir()
	l := mustOpen(t, dir)
	const workers, per = 8, 40
	var wg sync.WaitGroup
	got := make([][]Record, workers)
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			for i := 0; i < per; {
				n := 1 + i%3
				var batch []Entry
				for j := 0; j < n && i < per; j++ {
					e := entry(i)
					e.Key = fmt.Sprintf("w%d/%d", w, i)
					batch = append(batch, e)
					i++
				}
				recs, err := l.Append(batch...)
				if err != nil {
					errs <- err
					return
				}
				got[w] = append(got[w], recs...)
				_ = l.Has("trade", "w0/0") // readers alongside writers
				_ = l.Last()
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if l.Last() != workers*per {
		t.Fatalf("Last = %d, want %d", l.Last(), workers*per)
	}
	all, err := l.Read(1, workers*per)
	if err != nil {
		t.Fatal(err)
	}
	checkChain(t, all)
	for w := range workers {
		for _, r := range got[w] {
			if !reflect.DeepEqual(all[r.Seq-1], r) {
				t.Fatalf("worker %d: returned record %d differs from the stored one", w, r.Seq)
			}
			if !l.Has("trade", r.Key) {
				t.Fatalf("Has(%q) = false", r.Key)
			}
		}
	}
	l.Close()
	if n, err := Verify(dir); err != nil || n != workers*per {
		t.Fatalf("Verify = %d, %v", n, err)
	}
}

func TestVerifyMissing(t *testing.T) {
	if _, err := Verify(t.TempDir()); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Verify of an empty dir: %v, want ErrNotExist", err)
	}
}
