package summary

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/p2pgrid/p2pgrid/internal/golden"
	"github.com/p2pgrid/p2pgrid/settlement"
	"github.com/p2pgrid/p2pgrid/settlement/record"
)

// in is one record the tally is fed: its kind and data.
type in struct {
	kind string
	data []byte
}

func marshal(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// stmt is a statement record of participant in interval, with the figures
// the summary reads and the rest zero, as record.StatementOf writes them.
func stmt(t *testing.T, interval, participant string, boughtWh, soldWh int64, saving string) in {
	t.Helper()
	return stmtOf(interval, participant, boughtWh, soldWh, decimal.RequireFromString(saving))
}

func stmtOf(interval, participant string, boughtWh, soldWh int64, saving decimal.Decimal) in {
	s := record.StatementOf(interval, settlement.Statement{Participant: participant, Intervals: 1,
		BoughtWh: boughtWh, SoldWh: soldWh, Saving: saving})
	b, _ := json.Marshal(s) // strings only
	return in{record.KindStatement, b}
}

func trade(t *testing.T, interval, seller, buyer, kwh, price, amount string) in {
	t.Helper()
	return in{record.KindTrade, marshal(t, record.Trade{ID: interval + "/" + seller + "/" + buyer, Interval: interval,
		Seller: seller, Buyer: buyer, KWh: record.Decimal(kwh), Price: record.Decimal(price), Amount: record.Decimal(amount)})}
}

func clearing(t *testing.T, interval, price string) in {
	t.Helper()
	return in{record.KindClearing, marshal(t, record.Clearing{Community: "c1", Currency: "EUR", Interval: interval,
		Price: record.Decimal(price)})}
}

var berlin = func() *time.Location {
	z, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		panic(err)
	}
	return z
}()

// The golden cases: what home1's app gets after the records, at now, in
// Berlin. Each writes testdata/<case>/summary.json (the JSON summary) and
// values.txt (the single values, one "key text" per line).
func TestGolden(t *testing.T) {
	now := time.Date(2026, 11, 22, 13, 0, 0, 0, time.UTC) // 14:00 in Berlin
	cases := []struct {
		name    string
		records func(t *testing.T) []in
	}{
		{"empty", func(*testing.T) []in { return nil }},
		{"day_and_month", func(t *testing.T) []in {
			return []in{
				// 22 Nov, today: sold 1.005 and 0.5 kWh, bought 0.25 kWh.
				clearing(t, "2026-11-22T11:15Z", "0.12"),
				trade(t, "2026-11-22T11:15Z", "home1", "home2", "1.005", "0.12", "0.1206"),
				stmt(t, "2026-11-22T11:15Z", "home1", 0, 1005, "0.0402"),
				stmt(t, "2026-11-22T11:15Z", "home2", 1005, 0, "0.1809"), // a neighbour's: not counted
				stmt(t, "2026-11-22T11:30Z", "home1", 0, 500, "0.02"),
				stmt(t, "2026-11-22T11:30Z", "home1", 0, 500, "0.02"), // the same interval again: once
				stmt(t, "2026-11-22T11:45Z", "home1", 250, 0, "-0.0125"),
				// 21 Nov 23:15 UTC is 22 Nov 00:15 in Berlin: today.
				stmt(t, "2026-11-21T23:15Z", "home1", 0, 100, "0.004"),
				// 21 Nov 22:45 UTC is 21 Nov 23:45 in Berlin: this month, not today.
				stmt(t, "2026-11-21T22:45Z", "home1", 1000, 0, "0.15"),
				// 31 Oct 23:30 UTC is 1 Nov 00:30 in Berlin: this month.
				stmt(t, "2026-10-31T23:30Z", "home1", 0, 2000, "0.08"),
				// 31 Oct 22:30 UTC is 31 Oct 23:30 in Berlin: last month.
				stmt(t, "2026-10-31T22:30Z", "home1", 9000, 9000, "9"),
				// An older clearing and trade do not replace the newer ones.
				clearing(t, "2026-11-22T10:00Z", "0.3"),
				trade(t, "2026-11-22T10:00Z", "home3", "home1", "2", "0.3", "0.6"),
				// A clearing of nothing keeps the price.
				clearing(t, "2026-11-22T11:45Z", ""),
			}
		}},
		{"several_buyers", func(t *testing.T) []in {
			return []in{
				clearing(t, "2026-11-22T12:00Z", "0.105"),
				trade(t, "2026-11-22T12:00Z", "home1", "home3", "0.4", "0.105", "0.042"),
				trade(t, "2026-11-22T12:00Z", "home1", "home2", "0.6", "0.105", "0.063"),
				trade(t, "2026-11-22T12:00Z", "home1", "home2", "0.6", "0.105", "0.063"), // again: once
				trade(t, "2026-11-22T12:00Z", "home4", "home5", "9", "0.105", "0.945"),   // not home1's
				stmt(t, "2026-11-22T12:00Z", "home1", 0, 1000, "0.055"),
			}
		}},
		{"bought_last", func(t *testing.T) []in {
			return []in{
				trade(t, "2026-11-22T09:00Z", "home1", "home2", "1", "0.1", "0.1"),
				trade(t, "2026-11-22T12:30Z", "home2", "home1", "0.75", "0.2", "0.15"),
				clearing(t, "2026-11-22T12:30Z", "0.200000"),
				stmt(t, "2026-11-22T12:30Z", "home1", 750, 0, "0.0375"),
			}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tally := NewTally("home1", berlin, now)
			for _, r := range c.records(t) {
				if err := tally.Add(r.kind, r.data); err != nil {
					t.Fatal(err)
				}
			}
			s := tally.Summary("c1", "EUR", now)
			js, err := json.Marshal(s)
			if err != nil {
				t.Fatal(err)
			}
			golden.Check(t, filepath.Join("testdata", c.name, "summary.json"), append(js, '\n'))
			var lines strings.Builder
			for _, v := range s.Values() {
				fmt.Fprintf(&lines, "%s %s\n", v.Key, v.Text)
			}
			golden.Check(t, filepath.Join("testdata", c.name, "values.txt"), []byte(lines.String()))
			checkAgrees(t, js, s.Values())
		})
	}
}

// checkAgrees: the single values say what the JSON summary says.
func checkAgrees(t *testing.T, js []byte, values []Value) {
	t.Helper()
	var doc struct {
		Currency string `json:"currency"`
		Price    *struct{ Interval, Value string }
		Today    struct {
			Bought string `json:"bought_kwh"`
			Sold   string `json:"sold_kwh"`
			Saving string `json:"saving"`
		} `json:"today"`
		Month struct {
			Bought string `json:"bought_kwh"`
			Sold   string `json:"sold_kwh"`
			Saving string `json:"saving"`
		} `json:"month"`
		LastTrade *struct {
			Interval, Side, KWh, Price, Amount, Counterparty string
		} `json:"last_trade"`
	}
	if err := json.Unmarshal(js, &doc); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{KeyCurrency: doc.Currency, KeyBoughtToday: doc.Today.Bought, KeySoldToday: doc.Today.Sold,
		KeySavingToday: doc.Today.Saving, KeyBoughtMonth: doc.Month.Bought, KeySoldMonth: doc.Month.Sold, KeySavingMonth: doc.Month.Saving}
	if p := doc.Price; p != nil {
		want[KeyPrice], want[KeyPriceInterval] = p.Value, p.Interval
	}
	if l := doc.LastTrade; l != nil {
		want[KeyLastInterval], want[KeyLastSide], want[KeyLastKWh] = l.Interval, l.Side, l.KWh
		want[KeyLastPrice], want[KeyLastAmount], want[KeyLastCounterparty] = l.Price, l.Amount, l.Counterparty
	}
	if len(values) != len(want) {
		t.Errorf("%d single values, the JSON has %d: %v", len(values), len(want), values)
	}
	for _, v := range values {
		if want[v.Key] != v.Text {
			t.Errorf("single value %s = %q, the JSON says %q", v.Key, v.Text, want[v.Key])
		}
	}
}

// Every field has a distinct key that is a valid topic level, and Values
// never gives a key that is not a field.
func TestFields(t *testing.T) {
	seen := map[string]bool{KeySummary: true}
	for _, f := range Fields {
		if seen[f.Key] || f.Key == "" || strings.ContainsAny(f.Key, "/+#") || f.Name == "" {
			t.Errorf("field %+v: repeated, empty or not a topic level", f)
		}
		seen[f.Key] = true
		if f.Reset != NoReset && f.Kind != KindEnergy && f.Kind != KindMoney {
			t.Errorf("field %s resets but is no total", f.Key)
		}
	}
}

// Midnight in the tally's zone starts a new day; the first of the month a
// new month: totals start from zero and a statement of an earlier day no
// longer counts for today.
func TestRoll(t *testing.T) {
	at := func(s string) time.Time {
		tm, err := time.ParseInLocation("2006-01-02 15:04", s, berlin)
		if err != nil {
			t.Fatal(err)
		}
		return tm
	}
	tally := NewTally("home1", berlin, at("2026-11-30 23:50"))
	add := func(r in) {
		t.Helper()
		if err := tally.Add(r.kind, r.data); err != nil {
			t.Fatal(err)
		}
	}
	add(stmt(t, "2026-11-30T22:30Z", "home1", 0, 700, "0.03")) // 23:30 Berlin
	if tally.Roll(at("2026-11-30 23:59")) {
		t.Error("Roll within the day reported a change")
	}
	if s := tally.Summary("c1", "EUR", at("2026-11-30 23:59")); s.Today.SoldWh != 700 || s.ThisMonth.SoldWh != 700 {
		t.Fatalf("before midnight: %+v", s)
	}
	if !tally.Roll(at("2026-12-01 00:00")) {
		t.Fatal("Roll at midnight reported no change")
	}
	s := tally.Summary("c1", "EUR", at("2026-12-01 00:00"))
	if s.Today.SoldWh != 0 || s.ThisMonth.SoldWh != 0 || !s.Today.Saving.IsZero() || s.Day != "2026-12-01" || s.Month != "2026-12" {
		t.Fatalf("after the month's end: %+v", s)
	}
	// November's last interval, settled after midnight: November's.
	add(stmt(t, "2026-11-30T22:45Z", "home1", 0, 300, "0.01"))
	add(stmt(t, "2026-11-30T23:00Z", "home1", 0, 200, "0.008")) // 00:00 Berlin, 1 Dec
	s = tally.Summary("c1", "EUR", at("2026-12-01 00:20"))
	if s.Today.SoldWh != 200 || s.ThisMonth.SoldWh != 200 || s.Today.Saving.String() != "0.008" {
		t.Errorf("after midnight: %+v, want only the 1 Dec interval", s)
	}
	tally.Roll(at("2026-12-02 08:00"))
	if s := tally.Summary("c1", "EUR", at("2026-12-02 08:00")); s.Today.SoldWh != 0 || s.ThisMonth.SoldWh != 200 {
		t.Errorf("the next day: %+v, want today 0 and the month 200 Wh", s)
	}
	if got := tally.Since(); !got.Equal(at("2026-12-01 00:00").Add(-48 * time.Hour)) {
		t.Errorf("Since = %v", got)
	}
}

// Savings are summed exactly: a hundred statements of 0.1 make 10, not
// 9.99999.
func TestExact(t *testing.T) {
	now := time.Date(2026, 11, 22, 23, 59, 0, 0, time.UTC)
	tally := NewTally("home1", time.UTC, now)
	start := time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)
	for i := range 96 {
		iv := start.Add(time.Duration(i) * 15 * time.Minute).Format("2006-01-02T15:04Z")
		r := stmt(t, iv, "home1", 1, 3, "0.1")
		if err := tally.Add(r.kind, r.data); err != nil {
			t.Fatal(err)
		}
	}
	s := tally.Summary("c1", "EUR", now)
	if s.Today.Saving.String() != "9.6" || s.Today.BoughtWh != 96 || s.Today.SoldWh != 288 {
		t.Errorf("96 intervals of 0.1: saving %s, bought %d Wh, sold %d Wh", s.Today.Saving, s.Today.BoughtWh, s.Today.SoldWh)
	}
	for _, v := range s.Values() {
		if v.Key == KeySoldToday && v.Text != "0.288" {
			t.Errorf("sold today %q, want 0.288", v.Text)
		}
	}
}

// Records that do not decode are errors that name what is wrong; nothing
// is counted from them.
func TestBadRecords(t *testing.T) {
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	tally := NewTally("home1", time.UTC, now)
	for _, c := range []struct {
		kind, data, want string
	}{
		{record.KindStatement, `{"interval":"2026-11-22T11:00Z"}`, "participant is missing"},
		{record.KindStatement, `{"interval":"yesterday","participant":"home1"}`, "yesterday"},
		{record.KindStatement, `{"interval":"2026-11-22T11:00Z","participant":"home1","bought_kwh":"0.0001"}`, "bought_kwh"},
		{record.KindTrade, `{"interval":"2026-11-22T11:00Z","id":"x","seller":"home1"}`, "buyer is missing"},
		{record.KindClearing, `{"interval":"2026-11-22T11:00Z","price":"cheap"}`, "not a decimal"},
		{record.KindStatement, ``, "empty"},
	} {
		err := tally.Add(c.kind, []byte(c.data))
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "summary") {
			t.Errorf("Add(%s, %s): %v, want an error naming %q", c.kind, c.data, err, c.want)
		}
	}
	s := tally.Summary("c1", "EUR", now)
	if s.Today.BoughtWh != 0 || s.Price != nil || s.LastTrade != nil {
		t.Errorf("bad records counted: %+v", s)
	}
	if err := tally.Add(record.KindReading, []byte(`{}`)); err != nil {
		t.Errorf("a kind the summary does not read: %v", err)
	}
}

func TestLoadZone(t *testing.T) {
	if z, err := LoadZone(""); err != nil || z != time.Local {
		t.Errorf(`LoadZone(""): %v %v, want Local`, z, err)
	}
	if z, err := LoadZone("Europe/Berlin"); err != nil || z.String() != "Europe/Berlin" {
		t.Errorf("LoadZone(Europe/Berlin): %v %v", z, err)
	}
	if _, err := LoadZone("Mars/Olympus"); !errors.Is(err, ErrZone) || !strings.Contains(err.Error(), "Mars/Olympus") {
		t.Errorf("LoadZone(Mars/Olympus): %v", err)
	}
}

// docs/mqtt.md shows the day_and_month case's summary verbatim.
func TestDocShowsSummary(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "mqtt.md"))
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(filepath.Join("testdata", "day_and_month", "summary.json"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(doc), "```json\n"+string(want)+"```") {
		t.Errorf("docs/mqtt.md does not show testdata/day_and_month/summary.json verbatim:\n%s", want)
	}
	for _, f := range Fields {
		if !strings.Contains(string(doc), "`"+f.Key+"`") && !strings.Contains(string(doc), f.Key+"`") {
			t.Errorf("docs/mqtt.md does not name the single value %s", f.Key)
		}
	}
}

// A home that sold in an interval's auction and bought in its
// post-delivery market has the post-delivery trade as its last trade: the
// trades of the side and price of the interval's greatest trade id, added
// up, whatever order they come in; the other side is not mixed in.
func TestLastTradeAfterPostDelivery(t *testing.T) {
	const iv = "2026-11-22T11:00Z"
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	pdm := func(seller, buyer, kwh, price, amount string) in {
		return in{record.KindTrade, marshal(t, record.Trade{ID: "pdm/" + iv + "/" + seller + "/" + buyer, Interval: iv,
			Seller: seller, Buyer: buyer, KWh: record.Decimal(kwh), Price: record.Decimal(price), Amount: record.Decimal(amount)})}
	}
	records := []in{
		trade(t, iv, "home1", "home2", "0.5", "0.12", "0.06"),
		trade(t, iv, "home1", "home3", "0.25", "0.12", "0.03"),
		pdm("home4", "home1", "0.1", "0.1", "0.01"),
		pdm("home5", "home1", "0.2", "0.1", "0.02"),
		trade(t, "2026-11-22T10:45Z", "home2", "home1", "1", "0.2", "0.2"), // older
	}
	var first *Trade
	for _, order := range [][]int{{0, 1, 2, 3, 4}, {4, 3, 2, 1, 0}, {2, 0, 4, 3, 1, 2}} {
		tally := NewTally("home1", time.UTC, now)
		for _, i := range order {
			if err := tally.Add(records[i].kind, records[i].data); err != nil {
				t.Fatal(err)
			}
		}
		l := tally.Summary("c1", "EUR", now).LastTrade
		if l == nil || l.Interval != iv || l.Side != Buy || l.KWh.String() != "0.3" || l.Price.String() != "0.1" ||
			l.Amount.String() != "0.03" || strings.Join(l.Counterparties, ",") != "home4,home5" {
			t.Fatalf("order %v: last trade %+v, want the post-delivery buy of 0.3 kWh at 0.1 from home4 and home5", order, l)
		}
		if first != nil && !reflect.DeepEqual(first, l) {
			t.Errorf("order %v: %+v, another order gave %+v", order, l, first)
		}
		first = l
	}
}
