package influx

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/p2pgrid/p2pgrid/internal/testtool"
	"github.com/p2pgrid/p2pgrid/settlement/influx/influxtest"
	"github.com/p2pgrid/p2pgrid/settlement/ledger"
	"github.com/p2pgrid/p2pgrid/settlement/record"
)

// appendSamples appends n sample records to l, every fifth of a kind the
// sink does not know.
func appendSamples(t *testing.T, l *ledger.Ledger, n int) {
	t.Helper()
	for range n {
		seq := l.Last() + 1
		kind, data := sample(seq)
		if seq%5 == 0 {
			kind, data = "audit_note", map[string]any{"text": "not for InfluxDB"}
		}
		b, err := json.Marshal(data)
		if err != nil {
			t.Fatal(err)
		}
		e := ledger.Entry{Kind: kind, Key: fmt.Sprint(seq), Time: time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC), Data: b}
		if _, err := l.Append(e); err != nil {
			t.Fatal(err)
		}
	}
}

// ledgerSeqs returns the sequence numbers of l's records by kind, known
// kinds only: what InfluxDB must hold, each exactly once.
func ledgerSeqs(t *testing.T, l *ledger.Ledger) map[string][]int64 {
	t.Helper()
	recs, err := l.Read(1, int(l.Last())+1)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]int64{}
	for _, r := range recs {
		if r.Kind != "audit_note" {
			out[r.Kind] = append(out[r.Kind], int64(r.Seq))
		}
	}
	return out
}

// influxSeqs reads every ledger_seq value back with Flux, by measurement,
// sorted; a duplicate point would show as a repeated value.
func influxSeqs(t *testing.T, o Options) map[string][]int64 {
	t.Helper()
	rows, err := Query(context.Background(), o, fmt.Sprintf(`from(bucket: %s)
  |> range(start: 2026-01-01T00:00:00Z, stop: 2028-01-01T00:00:00Z)
  |> filter(fn: (r) => r._field == %q)`, FluxString(o.Bucket), FieldSeq))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]int64{}
	for _, r := range rows {
		m, _ := r["_measurement"].(string)
		v, ok := r["_value"].(int64)
		if !ok {
			t.Fatalf("ledger_seq of %v is %T, want int64", r, r["_value"])
		}
		out[m] = append(out[m], v)
	}
	for _, v := range out {
		slices.Sort(v)
	}
	return out
}

func sameSeqs(t *testing.T, when string, got, want map[string][]int64) {
	t.Helper()
	for _, k := range []string{record.KindClearing, record.KindTrade, record.KindStatement, record.KindReading} {
		if !slices.Equal(got[k], want[k]) {
			t.Errorf("%s: %s ledger_seq in InfluxDB = %v (%d points), want exactly the ledger's %v (%d)",
				when, k, got[k], len(got[k]), want[k], len(want[k]))
		}
	}
	if len(got) != 4 {
		t.Errorf("%s: measurements %v, want the four", when, got)
	}
}

// TestIntegrationInfluxDB runs the sink against a real InfluxDB 1.8 and
// the real ledger: every record arrives exactly once, rewrites overwrite,
// and a backlog built while InfluxDB is down drains when it is back.
func TestIntegrationInfluxDB(t *testing.T) {
	testtool.Integration(t)
	srv := influxtest.Start(t)
	srv.InfluxQL("CREATE DATABASE p2pgrid")
	ctx := context.Background()

	l, err := ledger.Open(t.TempDir(), ledger.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	appendSamples(t, l, 45)

	o := Options{URL: srv.URL, Bucket: "p2pgrid", Batch: 8, Logger: quiet()}
	s, err := New(o, l)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	n, err := s.Drain(ctx)
	if err != nil {
		t.Fatalf("Drain: %v\n%s", err, srv.Log())
	}
	want := ledgerSeqs(t, l)
	if n != 36 { // 45 records, 9 of them audit notes
		t.Errorf("Drain wrote %d points, want 36", n)
	}
	sameSeqs(t, "first drain", influxSeqs(t, o), want)
	if cur, _ := l.Cursor(DefaultCursor); cur != 45 {
		t.Errorf("cursor = %d, want 45", cur)
	}

	// Writing everything again (as after a crash between write and
	// cursor) overwrites: the counts do not change.
	if err := l.SetCursor(DefaultCursor, 0); err != nil {
		t.Fatal(err)
	}
	if n, err := s.Drain(ctx); err != nil || n != 36 {
		t.Fatalf("second Drain = %d, %v; want 36, nil", n, err)
	}
	sameSeqs(t, "rewrite", influxSeqs(t, o), want)

	// Settlements reads back the exact decimals the ledger holds.
	rows, err := Settlements(ctx, o, time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC), time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC), "p3")
	if err != nil {
		t.Fatal(err)
	}
	var wantRows []string
	for seq := uint64(1); seq <= 45; seq++ {
		if k, d := sample(seq); k == record.KindStatement && seq%5 != 0 && d.(map[string]any)["participant"] == "p3" {
			m := d.(map[string]any)
			wantRows = append(wantRows, fmt.Sprintf("%d %s p3 bought_kwh=%s net=%s paid=%s", seq, m["interval"], m["bought_kwh"], m["net"], m["paid"]))
		}
	}
	var gotRows []string
	for _, r := range rows {
		gotRows = append(gotRows, fmt.Sprintf("%d %s %s bought_kwh=%s net=%s paid=%s", r.Seq, r.Interval, r.Participant, r.Values["bought_kwh"], r.Values["net"], r.Values["paid"]))
	}
	if len(wantRows) == 0 || !slices.Equal(gotRows, wantRows) {
		t.Errorf("Settlements(p3):\n got %s\nwant %s", strings.Join(gotRows, "\n     "), strings.Join(wantRows, "\n     "))
	}

	// InfluxDB goes down; the gateway keeps appending.
	srv.Stop()
	appendSamples(t, l, 20)
	if _, err := s.Drain(ctx); err == nil {
		t.Fatal("Drain succeeded with InfluxDB stopped")
	}
	if cur, _ := l.Cursor(DefaultCursor); cur != 45 {
		t.Errorf("cursor = %d while InfluxDB is down, want 45", cur)
	}
	if st := s.Stats(); st.Backlog != 20 || st.Failures != 1 {
		t.Errorf("stats while down = %+v; want backlog 20, 1 failure", st)
	}
	sawDown := s.Stats().LastErr

	// It comes back on the same data: the backlog drains, exactly once.
	srv.Start()
	n, err = s.Drain(ctx)
	if err != nil {
		t.Fatalf("Drain after restart: %v (while down: %s)", err, sawDown)
	}
	if n != 16 { // seqs 46..65, four audit notes
		t.Errorf("backlog drain wrote %d points, want 16", n)
	}
	sameSeqs(t, "after restart", influxSeqs(t, o), ledgerSeqs(t, l))
	if st := s.Stats(); st.Backlog != 0 || st.Cursor != 65 {
		t.Errorf("stats after restart = %+v; want backlog 0, cursor 65", st)
	}
}

// TestIntegrationMissingFigures: a participant settled without metered
// figures is flagged in InfluxDB (missing_intervals an integer 1) and
// Settlements reads the flag back; one whose figures arrived says 0.
func TestIntegrationMissingFigures(t *testing.T) {
	testtool.Integration(t)
	srv := influxtest.Start(t)
	srv.InfluxQL("CREATE DATABASE p2pgrid")
	ctx := context.Background()
	l, err := ledger.Open(t.TempDir(), ledger.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	const iv = "2026-11-22T12:15Z"
	for who, missing := range map[string]string{"ann": "0", "bob": "1"} {
		// As record.StatementOf writes them, every figure a string (here only a few).
		b, _ := json.Marshal(map[string]string{"interval": iv, "participant": who, "intervals": "1", "missing_intervals": missing, "import_kwh": "0", "net": "-0.1"})
		if _, err := l.Append(ledger.Entry{Kind: record.KindStatement, Key: iv + "/" + who, Time: time.Date(2026, 11, 22, 12, 32, 0, 0, time.UTC), Data: b}); err != nil {
			t.Fatal(err)
		}
	}
	o := Options{URL: srv.URL, Bucket: "p2pgrid", Logger: quiet()}
	s, err := New(o, l)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if n, err := s.Drain(ctx); err != nil || n != 2 {
		t.Fatalf("Drain = %d, %v; want 2 points\n%s", n, err, srv.Log())
	}
	rows, err := Query(ctx, o, fmt.Sprintf(`from(bucket: %s)
  |> range(start: 2026-01-01T00:00:00Z, stop: 2028-01-01T00:00:00Z)
  |> filter(fn: (r) => r._measurement == "settlement" and r._field == "missing_intervals")`, FluxString(o.Bucket)))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]any{}
	for _, r := range rows {
		got[r["participant"].(string)] = r["_value"]
	}
	if got["ann"] != int64(0) || got["bob"] != int64(1) || len(got) != 2 {
		t.Errorf("missing_intervals in InfluxDB: %v, want ann 0 and bob 1, integers", got)
	}
	back, err := Settlements(ctx, o, time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC), time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC), "")
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, r := range back {
		lines = append(lines, fmt.Sprintf("%s intervals=%s missing_intervals=%s net=%s", r.Participant, r.Values["intervals"], r.Values["missing_intervals"], r.Values["net"]))
	}
	want := []string{"ann intervals=1 missing_intervals=0 net=-0.1", "bob intervals=1 missing_intervals=1 net=-0.1"}
	if !slices.Equal(lines, want) {
		t.Errorf("Settlements read back:\n got %q\nwant %q", lines, want)
	}
}
