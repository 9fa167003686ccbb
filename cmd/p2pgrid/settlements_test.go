package main

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/p2pgrid/p2pgrid/auction"
	"github.com/p2pgrid/p2pgrid/internal/testtool"
	"github.com/p2pgrid/p2pgrid/settlement"
	"github.com/p2pgrid/p2pgrid/settlement/influx/influxtest"
	"github.com/p2pgrid/p2pgrid/settlement/ledger"
	"github.com/p2pgrid/p2pgrid/settlement/record"
	"github.com/p2pgrid/p2pgrid/settlement/report"
)

// The demo with --influx writes the operator's ledger to a real InfluxDB
// 1.8; the statements read back from InfluxDB are the ledger's.
func TestDemoSettlesIntoInfluxDB(t *testing.T) {
	testtool.Integration(t)
	srv := influxtest.Start(t)
	srv.InfluxQL("CREATE DATABASE p2pgrid")
	data := t.TempDir()
	code, out, errOut := runCLI(t, "", "demo", "--homes", "3", "--interval", "1500ms", "--intervals", "3", "--log-level", "error",
		"--data", data, "--influx", srv.URL, "--influx-bucket", "p2pgrid/")
	if code != 0 {
		t.Fatalf("demo: exit %d\n%s\n%s", code, out, errOut)
	}
	led := filepath.Join(data, "operator", "ledger")
	code, fromLedger, errOut := runCLI(t, "", "settlements", "--ledger", led, "--format", "csv", "--exact")
	if code != 0 || strings.Count(fromLedger, "\n") < 1+3 {
		t.Fatalf("settlements --ledger: exit %d %q\n%s", code, errOut, fromLedger)
	}
	// The demo's sink drains every few seconds and on its way out; what it
	// wrote before the demo stopped is all the ledger had settled by then.
	code, fromInflux, errOut := runCLI(t, "", "settlements", "--influx", srv.URL, "--bucket", "p2pgrid/", "--format", "csv", "--exact",
		"--from", "2000-01-01T00:00:00Z")
	if code != 0 {
		t.Fatalf("settlements --influx: exit %d %q", code, errOut)
	}
	if fromInflux != fromLedger {
		t.Errorf("InfluxDB's statements differ from the ledger's:\n%s\nledger:\n%s\n%s", fromInflux, fromLedger, srv.Log())
	}
}

// A participant settled without metered figures is marked in the table
// and counted in the csv and json fields; the one whose figures arrived is
// not.
func TestSettlementsShowMissingFigures(t *testing.T) {
	const iv = "2026-11-22T12:15Z"
	// ann sells 1 kWh to bob; bob's figures never arrived.
	r := &auction.Result{Interval: iv, QtyDecimals: 3, PriceDecimals: 6, Cleared: true, Price: 150000, Volume: 1000,
		Fills:  []auction.Fill{{ID: "a", Participant: "ann", Side: auction.Sell, Qty: 1000}, {ID: "b", Participant: "bob", Side: auction.Buy, Qty: 1000}},
		Trades: []auction.Trade{{SellFill: 0, BuyFill: 1, Qty: 1000}}}
	s, err := settlement.Settle(iv, r, settlement.Tariffs{Retail: decimal.RequireFromString("0.30"), FeedIn: decimal.RequireFromString("0.05")},
		[]settlement.Metered{{Participant: "ann", ExportWh: 1000}}, settlement.SellerBearsShortfall{})
	if err != nil {
		t.Fatal(err)
	}
	data, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	l, err := ledger.Open(dir, ledger.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Append(ledger.Entry{Kind: record.KindInterval, Key: iv, Time: time.Date(2026, 11, 22, 12, 32, 0, 0, time.UTC), Data: data}); err != nil {
		t.Fatal(err)
	}
	l.Close()

	code, out, errOut := runCLI(t, "", "settlements", "--ledger", dir)
	if code != 0 {
		t.Fatalf("settlements: exit %d %s", code, errOut)
	}
	marked := map[string]bool{}
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) > 2 && (f[1] == "ann" || f[1] == "bob") {
			marked[f[0]+" "+f[1]] = strings.HasSuffix(line, "MISSING") || strings.HasSuffix(line, "1 of 1")
		}
	}
	want := map[string]bool{iv + " ann": false, iv + " bob": true, "total ann": false, "total bob": true}
	if fmt.Sprint(marked) != fmt.Sprint(want) {
		t.Errorf("rows marked as settled without figures: %v, want %v\n%s", marked, want, out)
	}
	if !strings.Contains(out, "1 participant-intervals were settled without metered figures") {
		t.Errorf("the community line does not say a figure was missing:\n%s", out)
	}
	// ann exported 1000 Wh, delivered to bob; bob's import was not measured
	// (0), so nothing counts as possible: min(1000, 0) = 0, nothing counts
	// as exchanged (bob imported none of it: spilled), and the share of
	// nothing is 0.
	if want := "local exchange: possible 0 kWh (per interval, the lesser of the homes' export and import), exchanged peer to peer 0 kWh (0.0%)"; !strings.Contains(out, want) {
		t.Errorf("the community totals lack %q:\n%s", want, out)
	}

	code, out, errOut = runCLI(t, "", "settlements", "--ledger", dir, "--format", "json")
	if code != 0 {
		t.Fatalf("settlements --format json: exit %d %s", code, errOut)
	}
	got := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var m map[string]string
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("json line %q: %v", line, err)
		}
		got[m["interval"]+" "+m["participant"]] = m["intervals"] + "/" + m["missing_intervals"]
	}
	wantJSON := map[string]string{iv + " ann": "1/0", iv + " bob": "1/1", "total ann": "1/0", "total bob": "1/1"}
	if fmt.Sprint(got) != fmt.Sprint(wantJSON) {
		t.Errorf("json intervals/missing_intervals: %v, want %v", got, wantJSON)
	}

	code, out, errOut = runCLI(t, "", "settlements", "--ledger", dir, "--format", "csv")
	if code != 0 {
		t.Fatalf("settlements --format csv: exit %d %s", code, errOut)
	}
	rows, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if err != nil || len(rows) != 5 {
		t.Fatalf("csv: %d rows, %v\n%s", len(rows), err, out)
	}
	col := slices.Index(rows[0], "missing_intervals")
	if col < 0 {
		t.Fatalf("csv header %v has no missing_intervals", rows[0])
	}
	for _, row := range rows[1:] {
		if w := map[string]string{"ann": "0", "bob": "1"}[row[1]]; row[col] != w {
			t.Errorf("csv %s %s: missing_intervals %q, want %q", row[0], row[1], row[col], w)
		}
	}
}

// A figure the source did not record (an InfluxDB point written before
// intervals and missing_intervals existed) prints empty, in its rows and in
// their total; the figures it did record add up.
func TestStatementsLeaveUnrecordedFiguresEmpty(t *testing.T) {
	absent := map[string]bool{"intervals": true, "missing_intervals": true}
	rows := []report.Row{
		{Interval: "2026-11-22T12:15Z", Statement: settlement.Statement{Participant: "ann", SoldWh: 1500, Net: decimal.RequireFromString("0.125")}, Absent: absent},
		{Interval: "2026-11-22T12:30Z", Statement: settlement.Statement{Participant: "ann", SoldWh: 500, Net: decimal.RequireFromString("0.01")}, Absent: absent},
	}
	rows = append(rows, report.Totals(rows)...)
	for i := range rows {
		rows[i].Statement = rows[i].Rounded(2)
	}
	var out strings.Builder
	if err := report.Write(&out, rows, nil, "csv", 2, false, "EUR"); err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(strings.NewReader(out.String())).ReadAll()
	if err != nil || len(recs) != 4 {
		t.Fatalf("csv: %d rows, %v\n%s", len(recs), err, out.String())
	}
	col := func(name string) int { return slices.Index(recs[0], name) }
	total := recs[3]
	if total[0] != "total" || total[col("sold_kwh")] != "2" || total[col("net")] != "0.14" ||
		total[col("intervals")] != "" || total[col("missing_intervals")] != "" || recs[1][col("intervals")] != "" {
		t.Errorf("csv rows %v; want the total sold_kwh 2, net 0.14 (0.135 exact, half to even), intervals and missing_intervals empty", recs[1:])
	}
}
