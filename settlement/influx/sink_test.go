package influx

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	influxhttp "github.com/influxdata/influxdb-client-go/v2/api/http"
	"github.com/influxdata/influxdb-client-go/v2/api/write"

	"github.com/p2pgrid/p2pgrid/settlement/ledger"
	"github.com/p2pgrid/p2pgrid/settlement/record"
)

// memSource is an in-memory Source: the ledger's contract without files.
type memSource struct {
	mu      sync.Mutex
	recs    []ledger.Record
	cursors map[string]uint64
	sets    []uint64 // every SetCursor, in order
}

func (m *memSource) append(kind string, data any) ledger.Record {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, err := json.Marshal(data)
	if err != nil {
		panic(err)
	}
	r := ledger.Record{
		Seq:  uint64(len(m.recs) + 1),
		Time: time.Date(2026, 11, 22, 12, 0, len(m.recs), 0, time.UTC),
		Kind: kind, Key: fmt.Sprint(len(m.recs)), Data: b,
	}
	m.recs = append(m.recs, r)
	return r
}

func (m *memSource) Read(from uint64, max int) ([]ledger.Record, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if from == 0 {
		from = 1
	}
	if from > uint64(len(m.recs)) {
		return nil, nil
	}
	out := m.recs[from-1:]
	if len(out) > max {
		out = out[:max]
	}
	return slices.Clone(out), nil
}

func (m *memSource) Last() uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return uint64(len(m.recs))
}

func (m *memSource) Cursor(name string) (uint64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.cursors[name], nil
}

func (m *memSource) SetCursor(name string, seq uint64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cursors == nil {
		m.cursors = map[string]uint64{}
	}
	m.cursors[name] = seq
	m.sets = append(m.sets, seq)
	return nil
}

// fakeWriter records what it is asked to write; fail decides per call.
type fakeWriter struct {
	calls [][]string // line protocol of each call
	fail  func(call int, lines []string) error
}

func (f *fakeWriter) WritePoint(_ context.Context, ps ...*write.Point) error {
	lines := make([]string, len(ps))
	for i, p := range ps {
		lines[i] = write.PointToLineProtocol(p, time.Nanosecond)
	}
	f.calls = append(f.calls, lines)
	if f.fail != nil {
		return f.fail(len(f.calls)-1, lines)
	}
	return nil
}

var _ pointWriter = (*fakeWriter)(nil)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func testSink(t *testing.T, src Source, w pointWriter, batch int) *Sink {
	t.Helper()
	o := Options{URL: "http://127.0.0.1:1", Bucket: "p2pgrid", Batch: batch, Logger: quiet()}
	if err := o.check(); err != nil {
		t.Fatal(err)
	}
	return newSink(o, src, w)
}

// sample returns the kind and data of a made-up record with sequence
// number seq, cycling through the four kinds; every one has its own
// identity (interval, trade id, participant, reading time).
func sample(seq uint64) (string, any) {
	iv := time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC).Add(15 * time.Minute * time.Duration(seq)).Format("2006-01-02T15:04Z07:00")
	switch seq % 4 {
	case 1:
		return record.KindClearing, map[string]any{"community": "elm", "interval": iv, "price": "0.21", "volume_kwh": "3.5", "orders": 4, "trades": 2}
	case 2:
		return record.KindTrade, map[string]any{"interval": iv, "id": fmt.Sprintf("%s/s%d/b%d", iv, seq, seq), "seller": "ann", "buyer": "bob", "kwh": "1.2", "price": "0.21", "amount": "0.252"}
	case 3:
		return record.KindStatement, map[string]any{"interval": iv, "participant": fmt.Sprintf("p%d", seq%5), "bought_kwh": "1.2", "paid": fmt.Sprintf("0.%03d", seq), "net": fmt.Sprintf("-0.%03d", seq)}
	default:
		return record.KindReading, map[string]any{"gateway": "gw1", "device": "sdm630", "time": time.Date(2026, 11, 22, 10, 0, 0, int(seq)*1e6, time.UTC), "power_w": 512.5, "import_wh": 1000 + seq}
	}
}

// fill appends n sample records.
func fill(src *memSource, n int) {
	for range n {
		src.append(sample(src.Last() + 1))
	}
}

func TestDrainWritesAllAndAdvancesCursor(t *testing.T) {
	src := &memSource{}
	fill(src, 10)
	w := &fakeWriter{}
	s := testSink(t, src, w, 500)
	n, err := s.Drain(context.Background())
	if err != nil || n != 10 {
		t.Fatalf("Drain = %d, %v; want 10, nil", n, err)
	}
	if cur, _ := src.Cursor(DefaultCursor); cur != 10 {
		t.Errorf("cursor = %d, want 10", cur)
	}
	if st := s.Stats(); st.Written != 10 || st.Backlog != 0 || st.Failures != 0 {
		t.Errorf("stats = %+v", st)
	}
	// Nothing new: no write at all.
	calls := len(w.calls)
	if n, err := s.Drain(context.Background()); n != 0 || err != nil || len(w.calls) != calls {
		t.Errorf("second Drain = %d, %v with %d new writes; want 0, nil, 0", n, err, len(w.calls)-calls)
	}
}

func TestDrainFailureLeavesCursor(t *testing.T) {
	src := &memSource{}
	fill(src, 7)
	down := errors.New("connection refused")
	w := &fakeWriter{fail: func(call int, _ []string) error {
		if call == 1 { // the second batch fails
			return down
		}
		return nil
	}}
	s := testSink(t, src, w, 3)
	n, err := s.Drain(context.Background())
	if !errors.Is(err, down) {
		t.Fatalf("Drain error = %v, want %v", err, down)
	}
	if n != 3 {
		t.Errorf("written = %d, want 3 (the first batch)", n)
	}
	if cur, _ := src.Cursor(DefaultCursor); cur != 3 {
		t.Errorf("cursor = %d, want 3: it must stop after the last confirmed batch", cur)
	}
	st := s.Stats()
	if st.Failures != 1 || st.Backlog != 4 || !strings.Contains(st.LastErr, "records 4..6") {
		t.Errorf("stats = %+v; want 1 failure, backlog 4, error naming records 4..6", st)
	}
	// The server is back: the backlog drains, starting at record 4.
	w.fail = nil
	before := len(w.calls)
	n, err = s.Drain(context.Background())
	if err != nil || n != 4 {
		t.Fatalf("Drain after recovery = %d, %v; want 4, nil", n, err)
	}
	if !strings.Contains(w.calls[before][0], "ledger_seq=4i") {
		t.Errorf("resumed with %q, want record 4", w.calls[before][0])
	}
	if cur, _ := src.Cursor(DefaultCursor); cur != 7 {
		t.Errorf("cursor = %d, want 7", cur)
	}
	if st := s.Stats(); st.LastErr != "" || st.Backlog != 0 {
		t.Errorf("stats after recovery = %+v", st)
	}
}

func TestDrainBatchesAreBounded(t *testing.T) {
	src := &memSource{}
	fill(src, 11)
	w := &fakeWriter{}
	s := testSink(t, src, w, 4)
	if n, err := s.Drain(context.Background()); err != nil || n != 11 {
		t.Fatalf("Drain = %d, %v", n, err)
	}
	var sizes []int
	for _, c := range w.calls {
		sizes = append(sizes, len(c))
	}
	if !slices.Equal(sizes, []int{4, 4, 3}) {
		t.Errorf("batch sizes = %v, want [4 4 3]", sizes)
	}
	if !slices.Equal(src.sets, []uint64{4, 8, 11}) {
		t.Errorf("cursor moves = %v, want [4 8 11]: one per confirmed batch", src.sets)
	}
}

func TestDrainCursorNotMovedWhenFirstWriteFails(t *testing.T) {
	src := &memSource{}
	fill(src, 2)
	w := &fakeWriter{fail: func(int, []string) error { return errors.New("503") }}
	s := testSink(t, src, w, 500)
	if _, err := s.Drain(context.Background()); err == nil {
		t.Fatal("Drain succeeded with a failing writer")
	}
	if len(src.sets) != 0 {
		t.Errorf("SetCursor called %v; want never", src.sets)
	}
}

func TestUnknownKindsAreSkipped(t *testing.T) {
	src := &memSource{}
	src.append("audit_note", map[string]any{"text": "hello"})
	fill(src, 1)
	src.append("audit_note", map[string]any{"text": "bye"})
	w := &fakeWriter{}
	s := testSink(t, src, w, 500)
	n, err := s.Drain(context.Background())
	if err != nil || n != 1 {
		t.Fatalf("Drain = %d, %v; want 1, nil", n, err)
	}
	if cur, _ := src.Cursor(DefaultCursor); cur != 3 {
		t.Errorf("cursor = %d, want 3 (past the unknown kinds)", cur)
	}
	if st := s.Stats(); st.Skipped != 2 {
		t.Errorf("skipped = %d, want 2", st.Skipped)
	}
	// A batch of only unknown kinds writes nothing but moves on.
	src.append("audit_note", map[string]any{})
	calls := len(w.calls)
	if _, err := s.Drain(context.Background()); err != nil || len(w.calls) != calls {
		t.Errorf("Drain: %v, %d writes; want nil, 0", err, len(w.calls)-calls)
	}
	if cur, _ := src.Cursor(DefaultCursor); cur != 4 {
		t.Errorf("cursor = %d, want 4", cur)
	}
}

func TestMalformedRecordsAreCountedAndSkipped(t *testing.T) {
	src := &memSource{}
	src.append(record.KindTrade, map[string]any{"interval": "yesterday", "id": "x", "seller": "a", "buyer": "b"})
	src.append(record.KindStatement, map[string]any{"interval": "2026-11-22T10:15Z", "participant": "ann", "paid": "lots"})
	fill(src, 1)
	w := &fakeWriter{}
	s := testSink(t, src, w, 500)
	if n, err := s.Drain(context.Background()); err != nil || n != 1 {
		t.Fatalf("Drain = %d, %v; want 1, nil", n, err)
	}
	if st := s.Stats(); st.Rejected != 2 || st.Cursor != 3 {
		t.Errorf("stats = %+v; want 2 rejected, cursor 3", st)
	}
}

func TestRefusedPointDoesNotStallTheSink(t *testing.T) {
	src := &memSource{}
	fill(src, 3)
	bad := &influxhttp.Error{StatusCode: http.StatusBadRequest, Code: "invalid", Message: "partial write: field type conflict"}
	w := &fakeWriter{fail: func(_ int, lines []string) error {
		for _, l := range lines {
			if strings.Contains(l, "ledger_seq=2i") {
				return bad
			}
		}
		return nil
	}}
	s := testSink(t, src, w, 500)
	n, err := s.Drain(context.Background())
	if err != nil || n != 2 {
		t.Fatalf("Drain = %d, %v; want 2, nil", n, err)
	}
	if st := s.Stats(); st.Rejected != 1 || st.Cursor != 3 {
		t.Errorf("stats = %+v; want 1 rejected, cursor 3", st)
	}
	// But a server that is down (not refusing) stops the drain.
	fill(src, 1)
	w.fail = func(int, []string) error {
		return &influxhttp.Error{StatusCode: http.StatusServiceUnavailable, Message: "down"}
	}
	if _, err := s.Drain(context.Background()); err == nil {
		t.Fatal("Drain succeeded against a 503")
	}
	if cur, _ := src.Cursor(DefaultCursor); cur != 3 {
		t.Errorf("cursor = %d after 503, want 3", cur)
	}
}

func TestRunBacksOffAndRecovers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := &memSource{}
		fill(src, 5)
		var mu sync.Mutex
		var at []time.Duration
		start := time.Now()
		w := &fakeWriter{fail: func(call int, _ []string) error {
			mu.Lock()
			defer mu.Unlock()
			at = append(at, time.Since(start))
			if call < 3 {
				return errors.New("connection refused")
			}
			return nil
		}}
		s := testSink(t, src, w, 500)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { s.Run(ctx, 10*time.Second); close(done) }()
		time.Sleep(time.Hour)
		synctest.Wait()
		st := s.Stats()
		if st.Failures != 3 || st.Written != 5 || st.Backlog != 0 {
			t.Errorf("stats = %+v; want 3 failures, 5 written, no backlog", st)
		}
		// Writes at 0, then after 20 s, 40 s, 80 s of backoff.
		want := []time.Duration{0, 20 * time.Second, 60 * time.Second, 140 * time.Second}
		mu.Lock()
		if !slices.Equal(at, want) {
			t.Errorf("write attempts at %v, want %v", at, want)
		}
		mu.Unlock()
		cancel()
		<-done
	})
}

func TestNewValidatesOptions(t *testing.T) {
	for _, o := range []Options{{Bucket: "b"}, {URL: "http://x"}, {URL: "http://x", Bucket: "b", Batch: -1}} {
		if _, err := New(o, &memSource{}); err == nil {
			t.Errorf("New(%+v) accepted", o)
		}
	}
	s, err := New(Options{URL: "http://127.0.0.1:1", Bucket: "db/rp"}, &memSource{})
	if err != nil {
		t.Fatal(err)
	}
	if s.o.Batch != DefaultBatch || s.o.Cursor != DefaultCursor {
		t.Errorf("defaults: batch %d cursor %q", s.o.Batch, s.o.Cursor)
	}
}

func TestFluxString(t *testing.T) {
	for in, want := range map[string]string{
		`ann`:        `"ann"`,
		`a"b`:        `"a\"b"`,
		`a\b`:        `"a\\b"`,
		`${x}`:       `"\${x}"`,
		`db/autogen`: `"db/autogen"`,
	} {
		if got := FluxString(in); got != want {
			t.Errorf("FluxString(%q) = %s, want %s", in, got, want)
		}
	}
}
