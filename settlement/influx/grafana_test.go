package influx

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"sort"
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
)

// dashboardFile is the provisioned Grafana dashboard (configs/grafana).
const dashboardFile = "../../configs/grafana/dashboards/p2pgrid.json"

// dashboard is the part of a Grafana dashboard the test runs: each
// panel's InfluxQL queries.
type dashboard struct {
	Panels []struct {
		Title   string `json:"title"`
		Targets []struct {
			RawQuery bool   `json:"rawQuery"`
			Query    string `json:"query"`
		} `json:"targets"`
	} `json:"panels"`
}

// series is one series of an InfluxQL answer.
type series struct {
	Name    string            `json:"name"`
	Tags    map[string]string `json:"tags"`
	Columns []string          `json:"columns"`
	Values  [][]any           `json:"values"`
}

// influxQL runs q through InfluxDB 1.8's /query, as Grafana's InfluxDB
// data source does (GET, epoch in ms), and returns its series.
func influxQL(t *testing.T, base, db, q string) []series {
	t.Helper()
	resp, err := http.Get(base + "/query?" + url.Values{"db": {db}, "q": {q}, "epoch": {"ms"}}.Encode())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Results []struct {
			Series []series `json:"series"`
			Error  string   `json:"error"`
		} `json:"results"`
		Error string `json:"error"`
	}
	dec := json.NewDecoder(resp.Body)
	dec.UseNumber()
	if err := dec.Decode(&body); err != nil || resp.StatusCode != http.StatusOK || body.Error != "" || len(body.Results) != 1 || body.Results[0].Error != "" {
		t.Fatalf("%s: HTTP %d %+v %v", q, resp.StatusCode, body, err)
	}
	return body.Results[0].Series
}

// grafanaLedger appends the records of intervals settled as a gateway
// settles them (auction, settlement, record.Entries): four homes over
// four hours, with intervals where nothing clears and homes whose figures
// are missing.
func grafanaLedger(t *testing.T, l *ledger.Ledger, from time.Time, n int) {
	t.Helper()
	rules := auction.DefaultRules()
	floor, cap := decimal.RequireFromString("0.05"), decimal.RequireFromString("0.30")
	rules.PriceFloor, rules.PriceCap, rules.Fee = &floor, &cap, decimal.RequireFromString("0.01")
	m, err := auction.NewMarket(rules)
	if err != nil {
		t.Fatal(err)
	}
	tariffs := settlement.Tariffs{Retail: cap, FeedIn: floor}
	for i := range n {
		start := from.Add(time.Duration(i) * 15 * time.Minute)
		iv := start.Format("2006-01-02T15:04Z")
		orders := []auction.Order{
			{ID: "b1", Participant: "bob", Side: auction.Buy, Qty: 800, Price: 250_000},
			{ID: "b2", Participant: "dan", Side: auction.Buy, Qty: int64(300 + 50*i), Price: 200_000 + int64(i)*1_000},
		}
		if i%5 != 4 { // every fifth interval no one sells: nothing clears
			orders = append(orders,
				auction.Order{ID: "s1", Participant: "ann", Side: auction.Sell, Qty: int64(600 + 100*i), Price: 60_000 + int64(i)*1_500})
		}
		if i%3 == 0 {
			orders = append(orders, auction.Order{ID: "s2", Participant: "cat", Side: auction.Sell, Qty: 500, Price: 120_000})
		}
		res, err := m.Clear(auction.Book{Interval: iv, Orders: orders})
		if err != nil {
			t.Fatal(err)
		}
		metered := []settlement.Metered{
			{Participant: "ann", ImportWh: 20, ExportWh: int64(550 + 90*i)},
			{Participant: "bob", ImportWh: int64(900 + 10*i)},
			{Participant: "dan", ImportWh: int64(250 + 60*i), ExportWh: 5},
		}
		if i%4 != 1 { // cat's figures are missing every fourth interval
			metered = append(metered, settlement.Metered{Participant: "cat", ImportWh: 3, ExportWh: 480})
		}
		s, err := settlement.Settle(iv, res, tariffs, metered, settlement.SellerBearsShortfall{})
		if err != nil {
			t.Fatalf("%s: %v", iv, err)
		}
		entries, err := record.Entries(record.Market{Community: "elm", Currency: "EUR", Rules: m}, start.Add(32*time.Minute), res, s)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := l.Append(entries...); err != nil {
			t.Fatal(err)
		}
	}
}

// ledgerFigures are what the dashboard must show, read from the ledger.
type ledgerFigures struct {
	price, volume, share map[int64]decimal.Decimal // by interval start, ms
	totalVolume          decimal.Decimal
	saving               map[string]decimal.Decimal // by participant
	totalSaving          decimal.Decimal
	community            settlement.Community
}

func readFigures(t *testing.T, l *ledger.Ledger) ledgerFigures {
	t.Helper()
	f := ledgerFigures{price: map[int64]decimal.Decimal{}, volume: map[int64]decimal.Decimal{}, share: map[int64]decimal.Decimal{},
		saving: map[string]decimal.Decimal{}}
	recs, err := l.Read(1, int(l.Last()))
	if err != nil {
		t.Fatal(err)
	}
	var all []*settlement.IntervalSettlement
	ms := func(interval string) int64 {
		start, err := time.Parse("2006-01-02T15:04Z", interval)
		if err != nil {
			t.Fatal(err)
		}
		return start.UnixMilli()
	}
	for _, r := range recs {
		v, err := record.Decode(r)
		if err != nil {
			t.Fatal(err)
		}
		switch d := v.(type) {
		case record.Clearing:
			if d.Price.IsSet() {
				f.price[ms(d.Interval)] = d.Price.Value()
			}
			f.volume[ms(d.Interval)] = d.VolumeKWh.Value()
			f.totalVolume = f.totalVolume.Add(d.VolumeKWh.Value())
		case record.Statement:
			f.saving[d.Participant] = f.saving[d.Participant].Add(d.Saving.Value())
			f.totalSaving = f.totalSaving.Add(d.Saving.Value())
		case *settlement.IntervalSettlement:
			all = append(all, d)
			f.share[ms(d.Interval)] = settlement.CommunityTotals(d).LocalShare
		}
	}
	f.community = settlement.CommunityTotals(all...)
	return f
}

// number is a value of an InfluxQL answer; nil (null) fails the test.
func number(t *testing.T, what string, v any) decimal.Decimal {
	t.Helper()
	n, ok := v.(json.Number)
	if !ok {
		t.Fatalf("%s: %v (%T) is not a number", what, v, v)
	}
	d, err := decimal.NewFromString(n.String())
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return d
}

// near compares a float figure from InfluxDB (a sum of the _f copies)
// with the ledger's exact one, to within float64 rounding.
func near(got, want decimal.Decimal) bool {
	return got.Sub(want).Abs().LessThanOrEqual(decimal.New(1, -9))
}

// TestGrafanaDashboardQueries loads a ledger's worth of records through
// the sink into a real InfluxDB 1.8, runs every query of the provisioned
// dashboard as Grafana would send it, and checks each answer against the
// ledger: every panel shows data, and its figures are the ledger's.
func TestGrafanaDashboardQueries(t *testing.T) {
	testtool.Integration(t)
	raw, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}

	srv := influxtest.Start(t)
	srv.InfluxQL("CREATE DATABASE p2pgrid")
	l, err := ledger.Open(t.TempDir(), ledger.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	from := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	grafanaLedger(t, l, from, 16)
	s, err := New(Options{URL: srv.URL, Bucket: "p2pgrid", Logger: quiet()}, l)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Drain(context.Background()); err != nil {
		t.Fatalf("Drain: %v\n%s", err, srv.Log())
	}
	if st := s.Stats(); st.Skipped != 0 || st.Rejected != 0 {
		t.Fatalf("sink stats %+v: every record of a settled interval must map", st)
	}
	want := readFigures(t, l)
	if want.community.LocalWh == 0 || len(want.price) == 0 || len(want.price) == 16 || want.community.MissingFigures == 0 {
		t.Fatalf("the ledger does not exercise the dashboard: %+v", want.community)
	}

	// Grafana's $timeFilter over the hours of the ledger, in its form.
	timeFilter := fmt.Sprintf("time >= %dms and time <= %dms", from.Add(-time.Hour).UnixMilli(), from.Add(6*time.Hour).UnixMilli())
	checks := map[string]func(t *testing.T, ss []series){
		"Traded volume": func(t *testing.T, ss []series) {
			if got := number(t, "sum", one(t, ss)); !near(got, want.totalVolume) {
				t.Errorf("total volume %s, ledger %s kWh", got, want.totalVolume)
			}
		},
		"Local share": func(t *testing.T, ss []series) {
			// CommunityTotals rounds to 6 decimals; the panel's ratio does not.
			if got := number(t, "share", one(t, ss)); !got.RoundBank(settlement.LocalShareDecimals).Equal(want.community.LocalShare) {
				t.Errorf("local share %s, ledger %s", got, want.community.LocalShare)
			}
		},
		"Money kept in the community": func(t *testing.T, ss []series) {
			if got := number(t, "kept", one(t, ss)); !near(got, want.community.MoneyKeptLocally) {
				t.Errorf("money kept locally %s, ledger %s", got, want.community.MoneyKeptLocally)
			}
		},
		"Savings against the grid": func(t *testing.T, ss []series) {
			if got := number(t, "saving", one(t, ss)); !near(got, want.totalSaving) || !near(got, want.community.Saving) {
				t.Errorf("total saving %s, ledger %s (community %s)", got, want.totalSaving, want.community.Saving)
			}
		},
		"Clearing price per interval": func(t *testing.T, ss []series) { sameByTime(t, "price", ss, want.price) },
		"Traded volume per interval":  func(t *testing.T, ss []series) { sameByTime(t, "volume", ss, want.volume) },
		"Local share per interval":    func(t *testing.T, ss []series) { sameByTime(t, "local share", ss, want.share) },
		"Savings per home": func(t *testing.T, ss []series) {
			got := map[string]decimal.Decimal{}
			for _, s := range ss {
				if len(s.Values) != 1 {
					t.Fatalf("participant %v: %d rows, want one sum", s.Tags, len(s.Values))
				}
				got[s.Tags["participant"]] = number(t, "saving", s.Values[0][1])
			}
			if len(got) != len(want.saving) {
				t.Errorf("savings of %v, ledger has %v", keys(got), keys(want.saving))
			}
			for who, w := range want.saving {
				if g, ok := got[who]; !ok || !near(g, w) {
					t.Errorf("%s saved %s, ledger %s", who, g, w)
				}
			}
		},
	}
	ran := 0
	for _, p := range d.Panels {
		check, ok := checks[p.Title]
		if !ok {
			t.Errorf("panel %q: no check of its figures against the ledger here", p.Title)
			continue
		}
		delete(checks, p.Title)
		for _, q := range p.Targets {
			if !q.RawQuery || !strings.Contains(q.Query, "$timeFilter") {
				t.Errorf("panel %q: query %q: want a raw InfluxQL query with $timeFilter", p.Title, q.Query)
				continue
			}
			t.Run(p.Title, func(t *testing.T) {
				ss := influxQL(t, srv.URL, "p2pgrid", strings.ReplaceAll(q.Query, "$timeFilter", timeFilter))
				if len(ss) == 0 || len(ss[0].Values) == 0 {
					t.Fatalf("%s: no data", q.Query)
				}
				check(t, ss)
			})
			ran++
		}
	}
	for title := range checks {
		t.Errorf("the dashboard has no panel %q any more", title)
	}
	if ran < 8 {
		t.Errorf("%d queries ran, want the dashboard's 8", ran)
	}
}

// one is the single value of a one-row, one-series answer (a sum).
func one(t *testing.T, ss []series) any {
	t.Helper()
	if len(ss) != 1 || len(ss[0].Values) != 1 || len(ss[0].Values[0]) != 2 {
		t.Fatalf("answer %+v: want one series of one row (time, value)", ss)
	}
	return ss[0].Values[0][1]
}

// sameByTime checks a per-interval series point by point against the
// ledger's figures by interval start.
func sameByTime(t *testing.T, what string, ss []series, want map[int64]decimal.Decimal) {
	t.Helper()
	if len(ss) != 1 {
		t.Fatalf("%s: %d series, want one", what, len(ss))
	}
	got := map[int64]decimal.Decimal{}
	for _, row := range ss[0].Values {
		at := number(t, what+" time", row[0]).IntPart()
		got[at] = number(t, what, row[1])
	}
	if len(got) != len(want) {
		t.Errorf("%s: %d points, ledger has %d", what, len(got), len(want))
	}
	for at, w := range want {
		if g, ok := got[at]; !ok || !near(g, w) {
			t.Errorf("%s at %s: %s, ledger %s", what, time.UnixMilli(at).UTC().Format(time.RFC3339), g, w)
		}
	}
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
