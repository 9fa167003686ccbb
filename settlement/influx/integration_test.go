package influx

import (
	"context"
	"encoding/json"
	"fmt"
	"go/build"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/p2pgrid/p2pgrid/internal/testtool"
	"github.com/p2pgrid/p2pgrid/settlement/ledger"
)

const installInfluxd = "scripts/install-influxd (go install github.com/influxdata/influxdb/cmd/influxd@v1.8.10)"

// findInfluxd looks where scripts/install-influxd puts influxd (bin/tools
// of the module), then in GOPATH/bin, then where testtool.Require looks.
func findInfluxd(t *testing.T) string {
	t.Helper()
	for _, p := range []string{
		filepath.Join("..", "..", "bin", "tools", "influxd"),
		filepath.Join(build.Default.GOPATH, "bin", "influxd"),
	} {
		if fi, err := os.Stat(p); err == nil && fi.Mode()&0o111 != 0 {
			abs, err := filepath.Abs(p)
			if err != nil {
				t.Fatal(err)
			}
			return abs
		}
	}
	return testtool.Require(t, "influxd", installInfluxd)
}

// influxd is an InfluxDB 1.8 server on loopback ports with its data in a
// test directory; it can be stopped and started again on the same data.
type influxd struct {
	t      *testing.T
	bin    string
	dir    string
	config string
	url    string
	cmd    *exec.Cmd
	exited chan struct{}
}

func startInfluxd(t *testing.T) *influxd {
	t.Helper()
	d := &influxd{t: t, bin: findInfluxd(t), dir: t.TempDir()}
	httpPort, rpcPort := testtool.FreePort(t), testtool.FreePort(t)
	d.url = fmt.Sprintf("http://127.0.0.1:%d", httpPort)
	d.config = filepath.Join(d.dir, "influxdb.conf")
	conf := fmt.Sprintf(`reporting-disabled = true
bind-address = "127.0.0.1:%d"

[meta]
  dir = %q

[data]
  dir = %q
  wal-dir = %q
  query-log-enabled = false

[http]
  bind-address = "127.0.0.1:%d"
  flux-enabled = true
  log-enabled = false

[monitor]
  store-enabled = false

[continuous_queries]
  enabled = false

[logging]
  level = "warn"
`, rpcPort, filepath.Join(d.dir, "meta"), filepath.Join(d.dir, "data"), filepath.Join(d.dir, "wal"), httpPort)
	if err := os.WriteFile(d.config, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.stop)
	d.start()
	return d
}

func (d *influxd) start() {
	t := d.t
	t.Helper()
	logf, err := os.OpenFile(filepath.Join(d.dir, "influxd.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	d.cmd = exec.Command(d.bin, "run", "-config", d.config)
	d.cmd.Stdout, d.cmd.Stderr = logf, logf
	if err := d.cmd.Start(); err != nil {
		t.Fatalf("start influxd: %v", err)
	}
	d.exited = make(chan struct{})
	go func(c *exec.Cmd, done chan struct{}) { c.Wait(); close(done) }(d.cmd, d.exited)
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(d.url + "/ping")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusNoContent {
				return
			}
		}
		select {
		case <-d.exited:
			t.Fatalf("influxd exited at start:\n%s", d.log())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("influxd did not answer /ping within 20 s (%v):\n%s", err, d.log())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop ends influxd with SIGTERM, then SIGKILL after 10 s.
func (d *influxd) stop() {
	if d.cmd == nil || d.cmd.Process == nil {
		return
	}
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.exited:
	case <-time.After(10 * time.Second):
		d.cmd.Process.Kill()
		<-d.exited
	}
	d.cmd = nil
}

func (d *influxd) log() string {
	b, _ := os.ReadFile(filepath.Join(d.dir, "influxd.log"))
	return string(b)
}

// influxQL runs a statement through the 1.x /query endpoint.
func (d *influxd) influxQL(q string) {
	d.t.Helper()
	resp, err := http.PostForm(d.url+"/query", url.Values{"q": {q}})
	if err != nil {
		d.t.Fatalf("%s: %v", q, err)
	}
	defer resp.Body.Close()
	var body struct {
		Results []struct {
			Error string `json:"error"`
		} `json:"results"`
		Error string `json:"error"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || resp.StatusCode != http.StatusOK || body.Error != "" ||
		(len(body.Results) > 0 && body.Results[0].Error != "") {
		d.t.Fatalf("%s: HTTP %d, %+v, %v", q, resp.StatusCode, body, err)
	}
}

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
	for _, k := range []string{KindClearing, KindTrade, KindSettlement, KindReading} {
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
	srv := startInfluxd(t)
	srv.influxQL("CREATE DATABASE p2pgrid")
	ctx := context.Background()

	l, err := ledger.Open(t.TempDir(), ledger.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	appendSamples(t, l, 45)

	o := Options{URL: srv.url, Bucket: "p2pgrid", Batch: 8, Logger: quiet()}
	s, err := New(o, l)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	n, err := s.Drain(ctx)
	if err != nil {
		t.Fatalf("Drain: %v\n%s", err, srv.log())
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
		if k, d := sample(seq); k == KindSettlement && seq%5 != 0 && d.(map[string]any)["participant"] == "p3" {
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
	srv.stop()
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
	srv.start()
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
