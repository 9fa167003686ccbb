package gateway

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shopspring/decimal"
	"go.yaml.in/yaml/v3"

	"github.com/p2pgrid/p2pgrid/gateway/config"
	"github.com/p2pgrid/p2pgrid/gateway/gatewaytest"
	"github.com/p2pgrid/p2pgrid/gateway/protocol"
	"github.com/p2pgrid/p2pgrid/gateway/tariff"
	"github.com/p2pgrid/p2pgrid/market"
	"github.com/p2pgrid/p2pgrid/settlement/ledger"
)

// evccConfig is the part of evcc's configuration the example sets: its
// keys as evcc's tariff config decodes them (tariffs.grid with type custom
// and a forecast provider of source http).
type evccConfig struct {
	Tariffs struct {
		Currency string `yaml:"currency"`
		Grid     struct {
			Type     string `yaml:"type"`
			Forecast struct {
				Source string `yaml:"source"`
				URI    string `yaml:"uri"`
			} `yaml:"forecast"`
		} `yaml:"grid"`
		Feedin struct {
			Type  string  `yaml:"type"`
			Price float64 `yaml:"price"`
		} `yaml:"feedin"`
	} `yaml:"tariffs"`
}

// evccRate is evcc's api.Rate as it decodes each element of the list.
type evccRate struct {
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
	Value float64   `json:"value"`
}

func readEvccConfig(t *testing.T) (evccConfig, *url.URL) {
	t.Helper()
	raw, err := os.ReadFile("../configs/evcc/evcc.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var ec evccConfig
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(&ec); err != nil {
		t.Fatalf("configs/evcc/evcc.yaml: %v", err)
	}
	g := ec.Tariffs.Grid
	if g.Type != "custom" || g.Forecast.Source != "http" {
		t.Fatalf("tariffs.grid: type %q, forecast.source %q; evcc reads a forecast list from type custom, source http", g.Type, g.Forecast.Source)
	}
	u, err := url.Parse(g.Forecast.URI)
	if err != nil || u.Scheme != "http" || u.Path != TariffPath {
		t.Fatalf("tariffs.grid.forecast.uri %q: want http://HOST:PORT%s (%v)", g.Forecast.URI, TariffPath, err)
	}
	if want := config.Default().HTTP; u.Host != want {
		t.Errorf("uri host %q, want the gateway's default listener %q", u.Host, want)
	}
	if ec.Tariffs.Currency != config.DefaultCurrency {
		t.Errorf("tariffs.currency %q, want the market's default %q", ec.Tariffs.Currency, config.DefaultCurrency)
	}
	if ec.Tariffs.Feedin.Type != "fixed" || ec.Tariffs.Feedin.Price <= 0 {
		t.Errorf("tariffs.feedin: %+v", ec.Tariffs.Feedin)
	}
	return ec, u
}

// seedClearing appends the clearing record of an interval a day or more
// ago, as an earlier run of the gateway would have (price "" for one
// where nothing cleared).
func seedClearing(t *testing.T, l *ledger.Ledger, start time.Time, price string) {
	t.Helper()
	p := "null"
	if price != "" {
		p = fmt.Sprintf("%q", price)
	}
	id := market.IntervalID(start)
	data := fmt.Sprintf(`{"community":"c1","currency":"EUR","interval":%q,"orders":2,"price":%s,"trades":1,"volume_kwh":"0.5"}`, id, p)
	if _, err := l.Append(ledger.Entry{Kind: "clearing", Key: id, Time: start.Add(20 * time.Minute), Data: json.RawMessage(data)}); err != nil {
		t.Fatal(err)
	}
}

// The example evcc configuration points at a running gateway's /tariff,
// which answers what evcc parses: contiguous 15-minute slots over the
// horizon, each value the verified local price (clearing + fee), retail
// where nothing was cleared, and the median of the ledger's same time of
// day after that.
func TestEvccExampleAgainstGateway(t *testing.T) {
	_, uri := readEvccConfig(t)
	led, err := ledger.Open(t.TempDir(), ledger.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { led.Close() })
	// Yesterday's and the day before's 13:00: 0.12 and nothing cleared
	// (retail 0.30); plus the fee 0.01, the median of 0.13 and 0.30.
	seedClearing(t, led, t0.Add(-23*time.Hour), "0.12")
	seedClearing(t, led, t0.Add(-47*time.Hour), "")
	fee := decimal.RequireFromString("0.01")
	c := newCommunityWith(t, gatewaytest.NewHub(),
		map[string]int64{"home1": 4000, "home2": -2000, "home3": -1500},
		map[string]config.ClearerRole{"operator": config.ClearerPrimary},
		func(_ *community, id string, o *Options) {
			o.Config.Market.Fee = fee
			if id == "home2" {
				o.Ledger = led
			}
		})
	c.run(t0.Add(50*time.Minute), 5*time.Second) // 12:15, 12:30, 12:45 cleared and verified; now in 12:45
	g := c.gws["home2"]
	srv := httptest.NewServer(g.Handler(g.opts.Registry))
	defer srv.Close()
	uri.Scheme, uri.Host = "http", strings.TrimPrefix(srv.URL, "http://")
	resp, err := http.Get(uri.String())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("GET %s: %s %s", uri, resp.Status, resp.Header.Get("Content-Type"))
	}
	var body bytes.Buffer
	body.ReadFrom(resp.Body)

	var rates []evccRate // what evcc decodes
	if err := json.Unmarshal(body.Bytes(), &rates); err != nil {
		t.Fatalf("evcc cannot decode %s: %v", body.Bytes(), err)
	}
	var exact []struct { // the same list, values as their exact text
		Start, End string
		Value      json.Number
		Source     string
	}
	dec := json.NewDecoder(bytes.NewReader(body.Bytes()))
	dec.UseNumber()
	if err := dec.Decode(&exact); err != nil {
		t.Fatal(err)
	}
	if len(rates) != 96 {
		t.Fatalf("%d slots, want 24 h of 15-minute intervals", len(rates))
	}
	now := c.now()
	current := market.IntervalStart(now, 15*time.Minute)
	for i, r := range rates {
		if _, err := time.Parse(time.RFC3339, exact[i].Start); err != nil {
			t.Errorf("slot %d start %q: %v", i, exact[i].Start, err)
		}
		if want := current.Add(time.Duration(i) * 15 * time.Minute); !r.Start.Equal(want) || !r.End.Equal(want.Add(15*time.Minute)) {
			t.Errorf("slot %d: %v-%v, want the interval from %v", i, r.Start, r.End, want)
		}
	}

	retail := *g.cfg.Market.PriceCap
	value := func(i int) decimal.Decimal { return decimal.RequireFromString(exact[i].Value.String()) }
	// paid is what the verified clearing of an interval, as published,
	// costs a buyer: its price + fee, or retail where nothing cleared.
	paid := func(interval string) (decimal.Decimal, bool) {
		raw := c.hub.Retained(g.Topics().Result(interval))
		if raw == nil {
			return decimal.Decimal{}, false
		}
		res, err := protocol.DecodeResult(raw)
		if err != nil {
			t.Fatal(err)
		}
		var ar struct {
			Price *string `json:"price"`
		}
		if err := json.Unmarshal(res.Result, &ar); err != nil {
			t.Fatalf("result of %s %s: %v", interval, res.Result, err)
		}
		if ar.Price == nil {
			return retail, true
		}
		return decimal.RequireFromString(*ar.Price).Add(fee), true
	}
	// The current interval, 12:45: the verified clearing.
	if want, ok := paid("2026-11-22T12:45Z"); !ok || !value(0).Equal(want) || exact[0].Source != "cleared" {
		t.Errorf("12:45: %s (%s), want the clearing + fee %s", exact[0].Value, exact[0].Source, want)
	}
	// 13:00, not cleared yet: the median of yesterday's (0.12 + 0.01) and
	// the day before's (nothing cleared: retail 0.30) from the ledger.
	if want := decimal.RequireFromString("0.215"); !value(1).Equal(want) || exact[1].Source != "estimate" {
		t.Errorf("13:00: %s (%s), want the ledger's median %s", exact[1].Value, exact[1].Source, want)
	}
	// Later: tomorrow's 12:15 and 12:30 are today's verified clearings (a
	// single day of history: its value), every other time of day has no
	// history, so the retail tariff.
	estimated := 0
	for i := 2; i < len(exact); i++ {
		want, src := retail, "retail"
		if p, ok := paid(market.IntervalID(rates[i].Start.Add(-24 * time.Hour))); ok {
			want, src = p, "estimate"
			estimated++
		}
		if !value(i).Equal(want) || exact[i].Source != src {
			t.Errorf("slot %d (%s): %s (%s), want %s (%s)", i, exact[i].Start, exact[i].Value, exact[i].Source, want, src)
		}
	}
	if estimated != 2 {
		t.Errorf("%d slots estimated from today's clearings, want 2 (tomorrow's 12:15 and 12:30)", estimated)
	}
}

// Bad queries are 400s naming the parameter; a market without a retail
// tariff answers 503, and nothing but GET and HEAD is served.
func TestTariffBadRequests(t *testing.T) {
	c := newCommunity(t, map[string]int64{"home1": 4000}, map[string]config.ClearerRole{"operator": config.ClearerPrimary})
	g := c.gws["home1"]
	h := g.Handler(g.opts.Registry)
	for _, tc := range []struct {
		method, query string
		code          int
		says          string
	}{
		{"GET", "horizon=soon", 400, `horizon "soon"`},
		{"GET", "horizon=400h", 400, "horizon 400h0m0s"},
		{"GET", "horizon=0s", 400, `horizon "0s"`},
		{"GET", "days=0", 400, `days "0"`},
		{"GET", "days=99", 400, "days 99"},
		{"POST", "", 405, "GET /tariff"},
		{"GET", "horizon=1h", 200, `"source":"retail"`},
	} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(tc.method, TariffPath+"?"+tc.query, nil))
		if rec.Code != tc.code || !strings.Contains(rec.Body.String(), tc.says) {
			t.Errorf("%s ?%s: %d %s, want %d saying %s", tc.method, tc.query, rec.Code, rec.Body, tc.code, tc.says)
		}
	}
	g.cfg.Market.PriceCap = nil
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", TariffPath, nil))
	if rec.Code != 503 || !strings.Contains(rec.Body.String(), "market.price_cap") {
		t.Errorf("without a retail tariff: %d %s", rec.Code, rec.Body)
	}
}

// Whatever the query, /tariff answers 200 with a list or 400 naming the
// parameter: never a 500, never a panic.
func FuzzTariffQuery(f *testing.F) {
	for _, q := range []string{"", "horizon=24h&days=7", "horizon=-1h", "horizon=1ns", "days=60", "days=1e3",
		"horizon=168h0m1s", "horizon=%ZZ", "days=&horizon=", "horizon=9223372036854775807ns"} {
		f.Add(q)
	}
	var (
		once sync.Once
		h    http.Handler
	)
	f.Fuzz(func(t *testing.T, q string) {
		once.Do(func() { // one gateway for every input: newCommunity wants a *testing.T
			c := newCommunity(t, map[string]int64{"home1": 4000}, map[string]config.ClearerRole{"operator": config.ClearerPrimary})
			g := c.gws["home1"]
			h = g.Handler(g.opts.Registry)
		})
		req := httptest.NewRequest("GET", TariffPath, nil)
		req.URL.RawQuery = q
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		switch rec.Code {
		case http.StatusOK:
			var rates []evccRate
			if err := json.Unmarshal(rec.Body.Bytes(), &rates); err != nil || len(rates) == 0 {
				t.Fatalf("?%s: 200 with %s: %v", q, rec.Body, err)
			}
		case http.StatusBadRequest:
			if !strings.Contains(rec.Body.String(), "horizon") && !strings.Contains(rec.Body.String(), "days") {
				t.Fatalf("?%s: 400 not naming the parameter: %s", q, rec.Body)
			}
		default:
			t.Fatalf("?%s: %d %s", q, rec.Code, rec.Body)
		}
	})
}

// recordedLedger is a ledgerReader over records in memory, counting what is
// read.
type recordedLedger struct {
	recs []ledger.Record
	read int // records returned by Read
}

func (m *recordedLedger) Last() uint64 { return uint64(len(m.recs)) }

func (m *recordedLedger) Read(from uint64, max int) ([]ledger.Record, error) {
	if from == 0 {
		from = 1
	}
	if from > uint64(len(m.recs)) {
		return nil, nil
	}
	out := m.recs[from-1 : min(uint64(len(m.recs)), from-1+uint64(max))]
	m.read += len(out)
	return out, nil
}

// add appends a clearing record of the interval starting at start (and a
// trade record, which the history skips), recorded 20 minutes later.
func (m *recordedLedger) add(start time.Time, price string) {
	id := market.IntervalID(start)
	for _, r := range []struct{ kind, data string }{
		{"clearing", fmt.Sprintf(`{"community":"c1","interval":%q,"orders":2,"price":%s,"trades":1,"volume_kwh":"0.5"}`, id, price)},
		{"trade", `{"kwh":"0.5"}`},
	} {
		m.recs = append(m.recs, ledger.Record{Seq: uint64(len(m.recs) + 1), Time: start.Add(20 * time.Minute), Kind: r.kind, Key: id, Data: json.RawMessage(r.data)})
	}
}

// The history finds the last 60 days of a long ledger without reading the
// rest, then reads only what is appended; clearings of other markets'
// intervals and malformed ones are left out.
func TestTariffHistoryReadsOnlyRecentRecords(t *testing.T) {
	cal := market.Calendar{Interval: 15 * time.Minute}
	now := time.Date(2026, 12, 3, 12, 5, 0, 0, time.UTC)
	l := &recordedLedger{}
	for d := 400; d >= 1; d-- { // 400 days of one clearing a day at 12:00
		l.add(time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC).AddDate(0, 0, -d), `"0.1"`)
	}
	l.add(time.Date(2026, 12, 2, 12, 7, 0, 0, time.UTC), `"0.1"`) // not an interval start
	l.recs = append(l.recs, ledger.Record{Seq: uint64(len(l.recs) + 1), Time: now, Kind: "clearing", Key: "x", Data: json.RawMessage(`{"interval":"soon"}`)})
	h := &tariffHistory{}
	got, err := h.clearings(l, cal, now, cal.Start(now).Add(-(tariff.Rules{Calendar: cal}).Lookback())) // as the handler asks
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 7 {
		t.Errorf("%d clearings of the last 7 days, want 7: %v", len(got), got)
	}
	if l.read > 2*61+3+20 { // the last 60 days (two records a day), the odd ones, and the binary search's probes
		t.Errorf("read %d of %d records to find the last 60 days", l.read, len(l.recs))
	}
	if len(h.byStart) != 60 {
		t.Errorf("history holds %d clearings, want the 60 days'", len(h.byStart))
	}
	l.read = 0
	l.add(time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC), "null")
	if got, err = h.clearings(l, cal, now, now.Add(-time.Hour)); err != nil || len(got) != 1 || got[0].Cleared {
		t.Errorf("after one more clearing: %v %v, want today's, not cleared", got, err)
	}
	if l.read != 2 {
		t.Errorf("read %d records again, want only the 2 appended", l.read)
	}
}
