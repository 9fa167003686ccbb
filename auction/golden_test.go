package auction

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/p2pgrid/p2pgrid/internal/golden"
	"github.com/shopspring/decimal"
)

// goldenMarket builds the market of a case: DefaultRules, overridden by
// the case's rules.json if it has one (the Rules fields by their json names,
// decimals as strings).
func goldenMarket(t *testing.T, dir string) *Market {
	t.Helper()
	r := DefaultRules()
	data, err := os.ReadFile(filepath.Join(dir, "rules.json"))
	if err == nil {
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&r); err != nil {
			t.Fatalf("rules.json: %v", err)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	m, err := NewMarket(r)
	if err != nil {
		t.Fatalf("rules.json: %v", err)
	}
	return m
}

// goldenCases lists the case folders under testdata: those with a book.json.
// Other folders (fuzz/, rapid/) belong to the test tools; a folder with a
// result.json or error.txt but no book.json is a case broken by mistake.
func goldenCases(t *testing.T) []string {
	t.Helper()
	entries, err := os.ReadDir("testdata")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		dir := filepath.Join("testdata", e.Name())
		if !e.IsDir() || goldenFileExists(filepath.Join(dir, "book.json")) {
			continue
		}
		if goldenFileExists(filepath.Join(dir, "result.json")) || goldenFileExists(filepath.Join(dir, "error.txt")) {
			t.Errorf("%s: a golden case without book.json", dir)
		}
	}
	return golden.Cases(t, "testdata", "book.json", 14)
}

func goldenFileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

func TestGolden(t *testing.T) {
	for _, name := range goldenCases(t) {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join("testdata", name)
			m := goldenMarket(t, dir)
			bookJSON, err := os.ReadFile(filepath.Join(dir, "book.json"))
			if err != nil {
				t.Fatal(err)
			}
			errPath := filepath.Join(dir, "error.txt")
			resultPath := filepath.Join(dir, "result.json")
			if goldenFileExists(errPath) {
				if goldenFileExists(resultPath) {
					t.Fatal("a case has error.txt or result.json, not both")
				}
				want, err := os.ReadFile(errPath)
				if err != nil {
					t.Fatal(err)
				}
				goldenError(t, m, bookJSON, strings.TrimSuffix(string(want), "\n"))
				return
			}

			book, err := m.DecodeBook(bytes.NewReader(bookJSON))
			if err != nil {
				t.Fatalf("DecodeBook: %v", err)
			}
			res, err := m.Clear(book)
			if err != nil {
				t.Fatalf("Clear: %v", err)
			}
			got, err := res.MarshalJSON()
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, '\n')
			want := golden.Check(t, resultPath, got)
			checkHandSolution(t, filepath.Join(dir, "notes.md"), want)
			checkClearing(t, m, book, res)

			// The same book, orders reversed, clears to the same bytes.
			rev := Book{Interval: book.Interval, Orders: slices.Clone(book.Orders)}
			slices.Reverse(rev.Orders)
			if r2, err := m.Clear(rev); err != nil {
				t.Errorf("Clear(reversed): %v", err)
			} else if b2, _ := r2.MarshalJSON(); !bytes.Equal(append(b2, '\n'), got) {
				t.Errorf("reversed book clears differently:\n got: %s\nwant: %s", b2, got)
			}
			// And so does the book after an EncodeBook/DecodeBook round trip.
			again, err := m.DecodeBook(bytes.NewReader(m.EncodeBook(book)))
			if err != nil {
				t.Fatalf("DecodeBook(EncodeBook(book)): %v", err)
			}
			if r3, err := m.Clear(again); err != nil {
				t.Errorf("Clear(round trip): %v", err)
			} else if b3, _ := r3.MarshalJSON(); !bytes.Equal(append(b3, '\n'), got) {
				t.Errorf("round-tripped book clears differently:\n got: %s\nwant: %s", b3, got)
			}
		})
	}
}

// goldenError checks that the book is rejected, by DecodeBook or else by
// Clear, with exactly the error want.
func goldenError(t *testing.T, m *Market, bookJSON []byte, want string) {
	t.Helper()
	book, err := m.DecodeBook(bytes.NewReader(bookJSON))
	if err == nil {
		if _, err = m.Clear(book); err == nil {
			t.Fatalf("book accepted and cleared; want error %q", want)
		}
	}
	if got := err.Error(); got != want {
		t.Fatalf("error\n got: %s\nwant: %s", got, want)
	}
	var oe *OrderError
	if errors.As(err, &oe) && !errors.Is(err, ErrInvalidOrder) {
		t.Errorf("an *OrderError that is not ErrInvalidOrder: %v", err)
	}
}

// resultFile is the CLI's result JSON, read back field by field.
type resultFile struct {
	Price      *string `json:"price"`
	Fee        *string `json:"fee"`
	VolumeKWh  string  `json:"volume_kwh"`
	Welfare    string  `json:"welfare"`
	BookSHA256 string  `json:"book_sha256"`
	Fills      []struct {
		ID   string `json:"id"`
		Side string `json:"side"`
		KWh  string `json:"kwh"`
	} `json:"fills"`
	Trades []struct {
		ID    string `json:"id"`
		Sell  string `json:"sell"`
		Buy   string `json:"buy"`
		KWh   string `json:"kwh"`
		Price string `json:"price"`
	} `json:"trades"`
}

// checkHandSolution compares result.json with the expect block at the end of
// the case's notes.md, the hand-computed answer: one "key value" line for
// price (or null), fee (only when charged), volume_kwh, welfare and,
// optionally, sha256; then "fill id side kwh" and "trade id sell buy kwh"
// lines in the order of the result.
func checkHandSolution(t *testing.T, notesPath string, resultJSON []byte) {
	t.Helper()
	notes, err := os.ReadFile(notesPath)
	if err != nil {
		t.Fatalf("every success case needs its hand solution: %v", err)
	}
	_, block, ok := strings.Cut(string(notes), "```expect\n")
	if !ok {
		t.Fatalf("%s: no ```expect block", notesPath)
	}
	block, _, ok = strings.Cut(block, "```")
	if !ok {
		t.Fatalf("%s: unterminated ```expect block", notesPath)
	}
	want := strings.Split(strings.TrimSpace(block), "\n")

	var rf resultFile
	dec := json.NewDecoder(bytes.NewReader(resultJSON))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&rf); err != nil {
		t.Fatalf("result.json: %v", err)
	}
	var got []string
	if rf.Price == nil {
		got = append(got, "price null")
	} else {
		got = append(got, "price "+*rf.Price)
	}
	if rf.Fee != nil {
		got = append(got, "fee "+*rf.Fee)
	}
	got = append(got, "volume_kwh "+rf.VolumeKWh, "welfare "+rf.Welfare)
	if slices.ContainsFunc(want, func(l string) bool { return strings.HasPrefix(l, "sha256 ") }) {
		got = append(got, "sha256 "+rf.BookSHA256)
	}
	for _, f := range rf.Fills {
		got = append(got, fmt.Sprintf("fill %s %s %s", f.ID, f.Side, f.KWh))
	}
	for _, tr := range rf.Trades {
		got = append(got, fmt.Sprintf("trade %s %s %s %s", tr.ID, tr.Sell, tr.Buy, tr.KWh))
		if rf.Price == nil || tr.Price != *rf.Price {
			t.Errorf("trade %s at price %q, want the uniform price", tr.ID, tr.Price)
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("result.json disagrees with the hand solution in %s\n got:\n\t%s\nwant:\n\t%s",
			notesPath, strings.Join(got, "\n\t"), strings.Join(want, "\n\t"))
	}
}

// checkClearing checks res against the clearing rule without re-running it:
// a uniform price at which every filled order is willing and every unfilled
// quantity unwilling (a competitive equilibrium, so welfare is maximal), the
// largest volume at that price, [PriceLow, PriceHigh] the widest such
// interval, the price placed in it by k, pro rata rationing at the price,
// exact welfare, and trades that add up to the fills.
func checkClearing(t *testing.T, m *Market, b Book, res *Result) {
	t.Helper()
	if res.Orders != len(b.Orders) || res.Interval != b.Interval || res.Fee != m.fee {
		t.Errorf("result header: %d orders, interval %q, fee %d", res.Orders, res.Interval, res.Fee)
	}
	byID := make(map[string]*Order, len(b.Orders))
	for i := range b.Orders {
		byID[b.Orders[i].ID] = &b.Orders[i]
	}
	filled := make(map[string]int64)
	var sellVol, buyVol int64
	for n, f := range res.Fills {
		o := byID[f.ID]
		switch {
		case o == nil:
			t.Fatalf("fill %d: unknown order %q", n, f.ID)
		case f.Side != o.Side || f.Limit != o.Price || f.Participant != o.Participant:
			t.Errorf("fill %d %+v does not match its order %+v", n, f, *o)
		case f.Qty <= 0 || f.Qty > o.Qty:
			t.Errorf("fill %d: %d quanta of an order of %d", n, f.Qty, o.Qty)
		case filled[f.ID] != 0:
			t.Errorf("order %q filled twice", f.ID)
		}
		filled[f.ID] = f.Qty
		if f.Side == Sell {
			sellVol += f.Qty
		} else {
			buyVol += f.Qty
		}
	}
	if !res.Cleared {
		if len(res.Fills) != 0 || len(res.Trades) != 0 || res.Volume != 0 {
			t.Errorf("not cleared, yet %d fills, %d trades, volume %d", len(res.Fills), len(res.Trades), res.Volume)
		}
		// Nothing can trade: one side is empty or the best bid (net of the
		// fee) is below the cheapest offer.
		bestBid, cheapest := int64(0), int64(0)
		haveBid, haveOffer := false, false
		for _, o := range b.Orders {
			if o.Side == Buy && (!haveBid || o.Price-m.fee > bestBid) {
				bestBid, haveBid = o.Price-m.fee, true
			}
			if o.Side == Sell && (!haveOffer || o.Price < cheapest) {
				cheapest, haveOffer = o.Price, true
			}
		}
		if haveBid && haveOffer && bestBid >= cheapest {
			t.Errorf("not cleared although bid %d >= offer %d", bestBid, cheapest)
		}
		if res.Welfare().Sign() != 0 {
			t.Errorf("welfare %s without trades", res.Welfare())
		}
		return
	}
	p := res.Price
	if sellVol != res.Volume || buyVol != res.Volume || res.Volume <= 0 {
		t.Errorf("volume %d, sells filled %d, buys filled %d", res.Volume, sellVol, buyVol)
	}

	// Willingness, the interval, and the largest volume at p.
	const none = int64(1) << 62
	lo, hi := -none, none
	sellsAll, buysAll := true, true // every order willing at p is filled whole
	type level struct{ qty, filled int64 }
	var sellLevel, buyLevel level
	for _, o := range b.Orders {
		f := filled[o.ID]
		if o.Side == Sell {
			if f > 0 {
				lo = max(lo, o.Price)
			}
			if f < o.Qty {
				hi = min(hi, o.Price)
			}
			if o.Price <= p && f < o.Qty {
				sellsAll = false
			}
			if o.Price > p && f > 0 {
				t.Errorf("sell %q with limit %d filled at price %d", o.ID, o.Price, p)
			}
			if o.Price < p && f != o.Qty {
				t.Errorf("sell %q with limit %d below the price %d not filled whole", o.ID, o.Price, p)
			}
			if o.Price == p {
				sellLevel.qty += o.Qty
				sellLevel.filled += f
			}
		} else {
			net := o.Price - m.fee
			if f > 0 {
				hi = min(hi, net)
			}
			if f < o.Qty {
				lo = max(lo, net)
			}
			if net >= p && f < o.Qty {
				buysAll = false
			}
			if net < p && f > 0 {
				t.Errorf("buy %q with net limit %d filled at price %d", o.ID, net, p)
			}
			if net > p && f != o.Qty {
				t.Errorf("buy %q with net limit %d above the price %d not filled whole", o.ID, net, p)
			}
			if net == p {
				buyLevel.qty += o.Qty
				buyLevel.filled += f
			}
		}
	}
	if !sellsAll && !buysAll {
		t.Errorf("volume %d is not the largest at price %d: both sides have willing quantity left", res.Volume, p)
	}
	if lo != res.PriceLow || hi != res.PriceHigh {
		t.Errorf("price interval [%d, %d], want [%d, %d]", res.PriceLow, res.PriceHigh, lo, hi)
	}
	if want := lo + m.k.Mul(decimal.NewFromInt(hi-lo)).Round(0).IntPart(); p != want || p < lo || p > hi {
		t.Errorf("price %d, want %d = lo + k*(hi-lo) in [%d, %d]", p, want, lo, hi)
	}

	// Rationing: at the price, each order of the level gets its pro rata
	// share of what the level gets, rounded down or up.
	for _, o := range b.Orders {
		var lv level
		switch {
		case o.Side == Sell && o.Price == p:
			lv = sellLevel
		case o.Side == Buy && o.Price-m.fee == p:
			lv = buyLevel
		default:
			continue
		}
		share := new(big.Int).Mul(big.NewInt(lv.filled), big.NewInt(o.Qty))
		share.Quo(share, big.NewInt(lv.qty))
		if f := filled[o.ID]; f != share.Int64() && f != share.Int64()+1 {
			t.Errorf("order %q at the price got %d quanta, want its pro rata share %d (+1)", o.ID, f, share.Int64())
		}
	}

	// Welfare, exactly.
	w := new(big.Int)
	for _, f := range res.Fills {
		lim := f.Limit
		if f.Side == Buy {
			lim -= m.fee
		} else {
			lim = -lim
		}
		w.Add(w, new(big.Int).Mul(big.NewInt(f.Qty), big.NewInt(lim)))
	}
	if want := decimal.NewFromBigInt(w, -int32(m.qtyDec+m.priceDec)); !res.Welfare().Equal(want) || w.Sign() < 0 {
		t.Errorf("welfare %s, want %s", res.Welfare(), want)
	}

	// Trades, as the result JSON lists them, add up to the fills.
	js, err := res.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	var rf resultFile
	if err := json.Unmarshal(js, &rf); err != nil {
		t.Fatalf("result JSON: %v", err)
	}
	traded := make(map[string]int64)
	for _, tr := range rf.Trades {
		s, bu := byID[tr.Sell], byID[tr.Buy]
		q, err := parseFixed(tr.KWh, m.qtyDec, math.MaxInt64)
		if s == nil || bu == nil || s.Side != Sell || bu.Side != Buy || err != nil || q <= 0 ||
			tr.ID != TradeID(b.Interval, tr.Sell, tr.Buy) {
			t.Errorf("bad trade %+v", tr)
			continue
		}
		traded[tr.Sell] += q
		traded[tr.Buy] += q
	}
	for id, f := range filled {
		if traded[id] != f {
			t.Errorf("order %q: filled %d, traded %d", id, f, traded[id])
		}
	}
	if len(traded) != len(filled) {
		t.Errorf("%d orders traded, %d filled", len(traded), len(filled))
	}
}

// TestGoldenExampleIsShipped keeps the example case identical to the book
// the CLI documentation points at.
func TestGoldenExampleIsShipped(t *testing.T) {
	shipped, err := os.ReadFile("../configs/examples/book.json")
	if err != nil {
		t.Fatal(err)
	}
	golden, err := os.ReadFile("testdata/example/book.json")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(shipped, golden) {
		t.Error("testdata/example/book.json differs from configs/examples/book.json: copy it and run -update")
	}
}

// TestGoldenNumberForms checks that a book whose numbers are spelt as JSON
// numbers, exponents and trailing zeros is the same book as the one spelt
// with plain decimal strings: same digest, same result, byte for byte.
func TestGoldenNumberForms(t *testing.T) {
	a, err := os.ReadFile("testdata/number_forms/result.json")
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile("testdata/vertical_midpoint/result.json")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Errorf("number_forms and vertical_midpoint results differ:\n%s%s", a, b)
	}
}
