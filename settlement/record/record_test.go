package record

import (
	"bytes"
	"encoding/json"
	"errors"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/p2pgrid/p2pgrid/auction"
	"github.com/p2pgrid/p2pgrid/internal/golden"
	"github.com/p2pgrid/p2pgrid/meter"
	"github.com/p2pgrid/p2pgrid/settlement"
	"github.com/p2pgrid/p2pgrid/settlement/ledger"
)

const iv = "2026-11-22T12:15Z"

var (
	at      = time.Date(2026, 11, 22, 12, 32, 0, 0, time.UTC)
	tariffs = settlement.Tariffs{Retail: decimal.RequireFromString("0.30"), FeedIn: decimal.RequireFromString("0.05")}
)

// cases are settled intervals; each one's records are in
// testdata/<name>/records.jsonl.
var cases = map[string]func(t *testing.T) []ledger.Entry{
	// ann and cat sell to bob; cat's figures never arrive, so its trade is
	// not delivered. The home1 grid meter's reading follows.
	"interval": func(t *testing.T) []ledger.Entry {
		r := &auction.Result{Interval: iv, Orders: 4, QtyDecimals: 3, PriceDecimals: 6, Cleared: true, Price: 150000, Volume: 1500,
			Fills: []auction.Fill{{ID: "s1", Participant: "ann", Side: auction.Sell, Qty: 1000}, {ID: "s2", Participant: "cat", Side: auction.Sell, Qty: 500},
				{ID: "b1", Participant: "bob", Side: auction.Buy, Qty: 1500}},
			Trades: []auction.Trade{{SellFill: 0, BuyFill: 2, Qty: 1000}, {SellFill: 1, BuyFill: 2, Qty: 500}}}
		r.BookSHA256[0], r.BookSHA256[31] = 0xab, 0x01
		es := entries(t, "elm st", r, settlement.Metered{Participant: "ann", ExportWh: 1200, ImportWh: 10}, settlement.Metered{Participant: "bob", ImportWh: 1700})
		// The evidence: messages as received, with a space to compact.
		es = append(es, EvidenceEntries(iv, at, r, []byte(`{"v":1, "orders":[]}`), []byte(`{"v":1,"sig":"c2ln"}`))...)
		pw, imp, exp := -812.5, int64(123456), int64(789)
		return append(es, ReadingEntry("home1", "grid", iv, at, meter.Reading{Time: time.Date(2026, 11, 22, 13, 15, 5, 5e8, time.FixedZone("CET", 3600)),
			Device: "sdm630", PowerW: &pw, ImportWh: &imp, ExportWh: &exp}))
	},
	// A one-sided book: nothing clears, ann buys from the grid.
	"uncleared": func(t *testing.T) []ledger.Entry {
		r := &auction.Result{Interval: iv, Orders: 1, QtyDecimals: 3, PriceDecimals: 6}
		return entries(t, "", r, settlement.Metered{Participant: "ann", ImportWh: 250})
	},
}

func entries(t *testing.T, community string, r *auction.Result, metered ...settlement.Metered) []ledger.Entry {
	t.Helper()
	m, err := auction.NewMarket(auction.DefaultRules())
	if err != nil {
		t.Fatal(err)
	}
	s, err := settlement.Settle(iv, r, tariffs, metered, settlement.SellerBearsShortfall{})
	if err != nil {
		t.Fatal(err)
	}
	es, err := Entries(Market{Community: community, Currency: "EUR", Rules: m}, at, r, s)
	if err != nil {
		t.Fatal(err)
	}
	return es
}

// goldenEntry is how an entry is written in records.jsonl.
type goldenEntry struct {
	Kind string          `json:"kind"`
	Key  string          `json:"key"`
	Time time.Time       `json:"time"`
	Data json.RawMessage `json:"data"`
}

// TestGolden pins the records of settled intervals byte for byte: the
// ledger's schema. A change here changes what every gateway writes.
func TestGolden(t *testing.T) {
	for name, build := range cases {
		t.Run(name, func(t *testing.T) {
			var got []byte
			for _, e := range build(t) {
				b, err := json.Marshal(goldenEntry{e.Kind, e.Key, e.Time, e.Data})
				if err != nil {
					t.Fatal(err)
				}
				got = append(append(got, b...), '\n')
			}
			golden.Check(t, filepath.Join("testdata", name, "records.jsonl"), got)
		})
	}
}

// Every record decodes to its kind's type, and a clearing, trade,
// statement or reading encodes back to the same bytes: the shapes are the
// ones written.
func TestDecodeRoundTrip(t *testing.T) {
	for name, build := range cases {
		for i, e := range build(t) {
			v, err := Decode(ledger.Record{Seq: uint64(i + 1), Kind: e.Kind, Key: e.Key, Data: e.Data})
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			var again []byte
			switch v := v.(type) {
			case Clearing, Trade, Reading, Book, Result:
				again = marshal(v)
			case Statement:
				if v.Extra != nil {
					t.Errorf("%s %s: figures %v decoded as Extra: a declared field's key and its figures() name differ", name, e.Key, v.Extra)
				}
				again = marshal(v)
			case *settlement.IntervalSettlement:
				again, err = v.MarshalJSON()
				if err != nil {
					t.Fatal(err)
				}
			default:
				t.Fatalf("%s: record %s decoded as %T", name, e.Kind, v)
			}
			if !bytes.Equal(again, e.Data) {
				t.Errorf("%s %s %s: decoded and encoded again\n%s\nwant\n%s", name, e.Kind, e.Key, again, e.Data)
			}
		}
	}
}

// A statement record holds every settlement.StatementFields figure, exactly.
func TestStatementOfHoldsEveryField(t *testing.T) {
	p := settlement.Statement{Participant: "ann", Intervals: 1, MissingIntervals: 1, BoughtWh: 1, SoldWh: 2, ReceivedWh: 3, DeliveredWh: 4,
		ImportWh: 5, ExportWh: 6, ImbalanceWh: -7, PaidP2P: decimal.New(8, -3), ReceivedP2P: decimal.New(9, -3), Fees: decimal.New(10, -3),
		CompensationPaid: decimal.New(11, -3), CompensationReceived: decimal.New(12, -3), GridCost: decimal.New(13, -3),
		GridCredit: decimal.New(14, -3), Net: decimal.New(-15, -3), Baseline: decimal.New(16, -3), Saving: decimal.New(17, -3)}
	got := map[string]string{}
	for _, f := range StatementOf(iv, p).Figures() {
		got[f.Name] = string(f.Value)
	}
	want := map[string]string{}
	for name, v := range p.Fields() {
		want[name] = v.String()
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("statement figures %v,\nwant Statement.Fields() %v", got, want)
	}
	for _, name := range settlement.StatementFields {
		if _, ok := got[name]; !ok {
			t.Errorf("statement record has no %s", name)
		}
	}
}

func TestDecodeErrors(t *testing.T) {
	for _, tc := range []struct {
		kind, data, want string
	}{
		{KindClearing, `{"price":"1"}`, "interval is empty"},
		{KindClearing, `{"interval":"2026-11-22T10:15Z","price":"one"}`, "not a decimal"},
		{KindClearing, `{"interval":"2026-11-22T10:15Z","orders":"4"}`, "orders"},
		{KindTrade, `{"interval":"2026-11-22T10:15Z","seller":"a","buyer":"b"}`, "id is missing"},
		{KindStatement, `{"interval":"2026-11-22T10:15Z"}`, "participant is missing"},
		{KindStatement, `{"interval":"2026-11-22T10:15Z","participant":"a","flag":true}`, "flag: true is not a decimal"},
		{KindStatement, `{"interval":"2026-11-22T10:15Z","participant":"a","missing_intervals":"0.5"}`, "missing_intervals: 0.5 is not a count"},
		{KindStatement, `{"interval":"2026-11-22T10:15Z","participant":"a","intervals":"-1"}`, "intervals: -1 is not a count"},
		{KindReading, `{"gateway":"g","device":"d"}`, "time is missing"},
		{KindReading, `{"gateway":"g","time":"2026-11-22T10:15:00Z"}`, "device is missing"},
		{KindReading, ``, "data is empty"},
		{KindInterval, `{}`, "interval"},
		{KindBook, `{"interval":"2026-11-22T12:15Z","book_sha256":"ab","message":{}}`, "not a SHA-256 digest"},
		{KindBook, `{"interval":"2026-11-22T12:15Z","book_sha256":"` + strings.Repeat("ab", 32) + `"}`, "message is missing"},
		{KindBook, `{"interval":"x","book_sha256":"` + strings.Repeat("ab", 32) + `","message":{}}`, "interval"},
		{KindResult, `{"interval":"2026-11-22T12:15Z","message":null}`, "message is missing"},
		{KindResult, `{"message":{}}`, "interval"},
	} {
		_, err := Decode(ledger.Record{Seq: 3, Kind: tc.kind, Key: "k", Data: json.RawMessage(tc.data)})
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "ledger record 3 ("+tc.kind+" k)") {
			t.Errorf("Decode(%s %s) = %v, want an error naming the record and saying %q", tc.kind, tc.data, err, tc.want)
		}
	}
	_, err := Decode(ledger.Record{Seq: 4, Kind: "trades", Data: json.RawMessage(`{}`)})
	if !errors.Is(err, ErrUnknownKind) || !strings.Contains(err.Error(), "clearing, trade, settlement, interval, book, result, reading") {
		t.Errorf("Decode of kind trades: %v, want ErrUnknownKind listing the kinds", err)
	}
}

// A statement keeps figures it does not declare, read as decimals.
func TestStatementExtra(t *testing.T) {
	s, err := DecodeStatement([]byte(`{"interval":"2026-11-22T10:15Z","participant":"bob","paid":"0.252","tip":-1.5,"note_free":null}`))
	if err != nil {
		t.Fatal(err)
	}
	want := []Figure{{"note_free", ""}, {"paid", "0.252"}, {"tip", "-1.5"}}
	if got := s.Figures(); !reflect.DeepEqual(got, want[1:]) || len(s.Extra) != 2 {
		t.Errorf("Figures() = %v, Extra %v; want %v and note_free, tip in Extra", got, s.Extra, want[1:])
	}
}

func TestCheckKind(t *testing.T) {
	for _, k := range Kinds {
		if err := CheckKind(k); err != nil {
			t.Errorf("CheckKind(%q): %v", k, err)
		}
	}
	if err := CheckKind("statement"); !errors.Is(err, ErrUnknownKind) {
		t.Errorf("CheckKind(statement) = %v, want ErrUnknownKind", err)
	}
}

// A statement record converts back to the statement it was made of, in
// the figures it holds (the grid's Wh and the spill are not in the record).
func TestStatementSettlement(t *testing.T) {
	p := settlement.Statement{Participant: "ann", Intervals: 1, MissingIntervals: 1, BoughtWh: 1, SoldWh: 2, ReceivedWh: 3, DeliveredWh: 4,
		ImportWh: 5, ExportWh: 6, ImbalanceWh: -7, PaidP2P: decimal.New(8, -3), Net: decimal.New(-15, -3), Saving: decimal.New(17, -9)}
	got, err := StatementOf(iv, p).Settlement()
	if err != nil {
		t.Fatal(err)
	}
	text := func(s settlement.Statement) string {
		var b strings.Builder
		for _, name := range settlement.StatementFields {
			b.WriteString(name + "=" + s.Fields()[name].String() + " ")
		}
		return b.String()
	}
	if text(got) != text(p) || got.Participant != "ann" {
		t.Errorf("Settlement() = %+v,\nwant %+v", got, p)
	}
	for _, bad := range []Statement{{Interval: iv, Participant: "a", ImportKWh: "0.0005"}, {Interval: iv, Participant: "a", Intervals: "-1"}} {
		if _, err := bad.Settlement(); err == nil || !strings.Contains(err.Error(), iv+"/a") {
			t.Errorf("Settlement() of %+v: %v, want an error naming the statement", bad, err)
		}
	}
}

// A book too large for a ledger record keeps its digest and says the
// message was left out; a message that is not a JSON object (it cannot
// have verified) makes no record.
func TestEvidenceEntriesBounds(t *testing.T) {
	r := &auction.Result{Interval: iv, Orders: 40000}
	huge := []byte(`{"orders":["` + strings.Repeat("x", ledger.MaxDataLen) + `"]}`)
	es := EvidenceEntries(iv, at, r, huge, []byte(`not json`))
	if len(es) != 1 || es[0].Kind != KindBook {
		t.Fatalf("entries %v, want the book record alone", es)
	}
	b, err := DecodeBook(es[0].Data)
	if err != nil || !b.MessageOmitted || b.Orders != 40000 || b.BookSHA256 != strings.Repeat("00", 32) {
		t.Fatalf("book record %s: %+v, %v; want the message omitted, 40000 orders and the digest", es[0].Data, b, err)
	}
	if len(es[0].Data) > ledger.MaxDataLen {
		t.Errorf("book record of %d bytes, more than a ledger record may be", len(es[0].Data))
	}
	if es := EvidenceEntries(iv, at, r, []byte(`[1]`), nil); len(es) != 0 {
		t.Errorf("entries %v of a book that is not an object and no result, want none", es)
	}
}
