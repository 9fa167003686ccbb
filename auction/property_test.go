package auction

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"math/big"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/shopspring/decimal"
	"pgregory.net/rapid"
)

// Property tests for Clear. The books are small and full of ties: prices
// from a handful of tick levels, sizes from a pool of two or three values,
// ids from a four-character alphabet, so that the marginal level, pro-rata
// rationing and the id tie-break are exercised on almost every run.

// testMarket is a market together with its rules in the form the reference
// computations want them.
type testMarket struct {
	m        *Market
	k        *big.Rat
	fee      int64 // ticks
	decimals [2]int
	dec      int32 // QtyDecimals + PriceDecimals: the scale of money and welfare
}

// kChoices are the values of k the markets are drawn with.
var kChoices = []string{"0", "0.25", "0.5", "1", "0.333"}

func drawMarket(t *rapid.T) testMarket {
	dec := rapid.SampledFrom([][2]int{{3, 6}, {0, 0}, {0, 2}, {2, 2}, {1, 3}}).Draw(t, "decimals")
	kText := rapid.SampledFrom(kChoices).Draw(t, "k")
	fee := rapid.SampledFrom([]int64{0, 0, 1, 2, 3}).Draw(t, "fee")
	return newTestMarket(t, dec, kText, fee)
}

// newTestMarket builds the market with qty and price decimals dec, k and a
// fee in ticks.
func newTestMarket(t *rapid.T, dec [2]int, kText string, fee int64) testMarket {
	r := DefaultRules()
	r.QtyDecimals, r.PriceDecimals = dec[0], dec[1]
	r.K = decimal.RequireFromString(kText)
	r.Fee = decimal.New(fee, -int32(dec[1]))
	m, err := NewMarket(r)
	if err != nil {
		t.Fatalf("NewMarket: %v", err)
	}
	if m.Fee() != fee {
		t.Fatalf("market fee = %d ticks, want %d", m.Fee(), fee)
	}
	k, ok := new(big.Rat).SetString(kText)
	if !ok {
		t.Fatalf("bad k %q", kText)
	}
	return testMarket{m: m, k: k, fee: fee, decimals: dec, dec: int32(dec[0] + dec[1])}
}

// drawBook draws a valid book of minOrders to maxOrders orders, sizes up to
// maxQty quanta, prices on at most five levels. Buy prices are sometimes
// shifted up by the fee so that their net limit lands exactly on a seller's
// level. The levels are sometimes spread far apart, so that prices differ in
// more than their lowest byte.
func drawBook(t *rapid.T, tm testMarket, minOrders, maxOrders int, maxQty int64) Book {
	fee := tm.fee
	n := rapid.IntRange(minOrders, maxOrders).Draw(t, "orders")
	ids := rapid.SliceOfNDistinct(rapid.StringMatching(`[ab1.]{1,3}`), n, n, rapid.ID[string]).Draw(t, "ids")
	// The largest scale puts the top level near max_abs_price.
	scale := rapid.SampledFrom([]int64{1, 1, 1, 4099, 10007, (tm.m.maxPrice - fee) / 31}).Draw(t, "scale")
	base := scale * rapid.Int64Range(-3, 3).Draw(t, "base")
	step := scale * rapid.SampledFrom([]int64{1, 2, 3, 5, 7}).Draw(t, "step")
	levels := rapid.Int64Range(1, 5).Draw(t, "levels")
	sizes := rapid.SliceOfN(rapid.Int64Range(1, maxQty), 1, 3).Draw(t, "sizes")
	b := Book{
		Interval: rapid.SampledFrom([]string{"", "2026-11-22T10:15Z"}).Draw(t, "interval"),
		Orders:   make([]Order, n),
	}
	for i := range b.Orders {
		side := rapid.SampledFrom([]Side{Buy, Sell}).Draw(t, "side")
		price := base + step*rapid.Int64Range(0, levels-1).Draw(t, "level")
		if side == Buy && fee > 0 && rapid.Bool().Draw(t, "net on level") {
			price += fee
		}
		qty := rapid.SampledFrom(sizes).Draw(t, "size")
		if rapid.IntRange(0, 4).Draw(t, "fresh size") == 0 {
			qty = rapid.Int64Range(1, maxQty).Draw(t, "qty")
		}
		b.Orders[i] = Order{
			ID:          ids[i],
			Participant: rapid.SampledFrom([]string{"p1", "p2", "p3"}).Draw(t, "participant"),
			Side:        side,
			Qty:         qty,
			Price:       price,
		}
	}
	return b
}

// drawMaxQty draws the largest order size for properties that never expand
// orders into quanta: mostly a few quanta, sometimes the market's limit.
func drawMaxQty(t *rapid.T, tm testMarket) int64 {
	return rapid.SampledFrom([]int64{6, 12, 12, tm.m.maxQty}).Draw(t, "max qty")
}

// drawCrossingBook draws a book whose curves cross on a vertical segment:
// every seller's limit is at most every buyer's net limit and the two sides
// hold the same quantity, so all of it trades and [lo, hi] is the gap between
// the dearest seller and the lowest net bid, narrowed (or met at its edge)
// by at most one more order on each side, which finds no one left to trade
// with. Gaps of 0 to 7 ticks put k*(hi-lo) on every kind of fraction, exact
// halves included.
func drawCrossingBook(t *rapid.T, fee int64) Book {
	top := rapid.Int64Range(-3, 3).Draw(t, "dearest seller")
	gap := rapid.Int64Range(0, 7).Draw(t, "gap")
	pairs := rapid.IntRange(1, 3).Draw(t, "pairs")
	ids := rapid.SliceOfNDistinct(rapid.StringMatching(`[ab1.]{1,3}`), 2*pairs+3, 2*pairs+3, rapid.ID[string]).Draw(t, "ids")
	b := Book{}
	var sold, bought int64
	add := func(side Side, qty, price int64) {
		b.Orders = append(b.Orders, Order{ID: ids[len(b.Orders)], Participant: "p1", Side: side, Qty: qty, Price: price})
	}
	for n := range pairs {
		below, above := int64(0), int64(0)
		if n > 0 {
			below = rapid.Int64Range(0, 2).Draw(t, "below")
			above = rapid.Int64Range(0, 2).Draw(t, "above")
		}
		qs := rapid.Int64Range(1, 4).Draw(t, "sell qty")
		qb := rapid.Int64Range(1, 4).Draw(t, "buy qty")
		add(Sell, qs, top-below)
		add(Buy, qb, top+gap+fee+above)
		sold, bought = sold+qs, bought+qb
	}
	if sold < bought {
		add(Sell, bought-sold, top)
	} else if bought < sold {
		add(Buy, sold-bought, top+gap+fee)
	}
	if rapid.Bool().Draw(t, "seller left out") {
		add(Sell, rapid.Int64Range(1, 4).Draw(t, "qty"), top+rapid.Int64Range(0, gap+1).Draw(t, "price"))
	}
	if rapid.Bool().Draw(t, "buyer left out") {
		add(Buy, rapid.Int64Range(1, 4).Draw(t, "qty"), top+fee+gap-rapid.Int64Range(0, gap+1).Draw(t, "price"))
	}
	return Book{Orders: rapid.Permutation(b.Orders).Draw(t, "order")}
}

// mustClear clears a valid book and fails the test on any error.
func mustClear(t *rapid.T, tm testMarket, b Book) *Result {
	r, err := tm.m.Clear(b)
	if err != nil {
		t.Fatalf("Clear of a valid book: %v", err)
	}
	if r == nil {
		t.Fatalf("Clear returned a nil result and no error")
	}
	return r
}

// fillsByID checks that every fill names an order of the book, once, with
// its side, participant and limit and 0 < qty <= the order's size, and
// returns the fills by order id.
func fillsByID(t *rapid.T, b Book, r *Result) map[string]int64 {
	orders := make(map[string]Order, len(b.Orders))
	for _, o := range b.Orders {
		orders[o.ID] = o
	}
	fills := make(map[string]int64, len(r.Fills))
	for _, f := range r.Fills {
		o, ok := orders[f.ID]
		if !ok {
			t.Fatalf("fill %+v names no order of the book", f)
		}
		if _, dup := fills[f.ID]; dup {
			t.Fatalf("order %q is filled twice", f.ID)
		}
		if f.Side != o.Side || f.Participant != o.Participant || f.Limit != o.Price {
			t.Fatalf("fill %+v does not match its order %+v", f, o)
		}
		if f.Qty <= 0 || f.Qty > o.Qty {
			t.Fatalf("fill %+v: qty outside (0, %d]", f, o.Qty)
		}
		fills[f.ID] = f.Qty
	}
	return fills
}

// scaled returns d * 10^scale as an integer, failing if it is not one.
func scaled(t *rapid.T, what string, d decimal.Decimal, scale int32) *big.Int {
	s := d.Shift(scale)
	if !s.IsInteger() {
		t.Fatalf("%s = %s is not a whole number of 10^-%d", what, d, scale)
	}
	return s.BigInt()
}

// 1. Energy balance: what is sold is bought, and the trades account for
// every fill exactly.
func TestPropertyEnergyBalance(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		tm := drawMarket(t)
		b := drawBook(t, tm, 0, 12, drawMaxQty(t, tm))
		r := mustClear(t, tm, b)
		fills := fillsByID(t, b, r)
		if !r.Cleared {
			if r.Volume != 0 || len(r.Fills) != 0 || len(r.Trades) != 0 {
				t.Fatalf("uncleared result has volume %d, %d fills, %d trades", r.Volume, len(r.Fills), len(r.Trades))
			}
			return
		}
		if r.Volume <= 0 {
			t.Fatalf("cleared with volume %d", r.Volume)
		}
		var sold, bought int64
		for _, f := range r.Fills {
			if f.Side == Sell {
				sold += f.Qty
			} else {
				bought += f.Qty
			}
		}
		traded := make(map[string]int64, len(fills))
		var tradeVol int64
		for _, tr := range r.Trades {
			s, b := tradeFills(t, r, tr)
			if tr.Qty <= 0 {
				t.Fatalf("trade %+v: qty not positive", tr)
			}
			traded[s.ID] += tr.Qty
			traded[b.ID] += tr.Qty
			tradeVol += tr.Qty
		}
		if sold != r.Volume || bought != r.Volume || tradeVol != r.Volume {
			t.Fatalf("sold %d, bought %d, traded %d, volume %d", sold, bought, tradeVol, r.Volume)
		}
		if !reflect.DeepEqual(traded, fills) {
			t.Fatalf("per-order trade sums %v differ from fills %v", traded, fills)
		}
		checkFillOrder(t, r)
	})
}

// tradeFills returns the sell and the buy fill a trade pairs, failing unless
// it names a sell fill and a buy fill of the result.
func tradeFills(t *rapid.T, r *Result, tr Trade) (sell, buy Fill) {
	if tr.SellFill < 0 || int(tr.SellFill) >= len(r.Fills) || tr.BuyFill < 0 || int(tr.BuyFill) >= len(r.Fills) {
		t.Fatalf("trade %+v names fills outside the %d of the result", tr, len(r.Fills))
	}
	sell, buy = r.Sell(tr), r.Buy(tr)
	if sell.Side != Sell || buy.Side != Buy {
		t.Fatalf("trade %+v pairs a %s fill with a %s fill", tr, sell.Side, buy.Side)
	}
	return sell, buy
}

// checkFillOrder checks the documented order of fills (sells by price
// ascending, then buys by price descending, ties by id) and of trades:
// cheapest seller with highest bidder first, which makes the trades a
// staircase through the fills that never goes back and meets each pair of
// orders at most once.
func checkFillOrder(t *rapid.T, r *Result) {
	for n, f := range r.Fills {
		if n == 0 {
			continue
		}
		prev := r.Fills[n-1]
		var c int
		switch {
		case prev.Side == Buy && f.Side == Sell:
			c = 1
		case prev.Side == Sell && f.Side == Sell:
			c = cmp.Compare(prev.Limit, f.Limit)
		case prev.Side == Buy && f.Side == Buy:
			c = cmp.Compare(f.Limit, prev.Limit)
		}
		if c == 0 && prev.Side == f.Side {
			c = strings.Compare(prev.ID, f.ID)
		}
		if c > 0 {
			t.Fatalf("fill %+v comes after %+v", f, prev)
		}
	}
	ids := make(map[string]bool, len(r.Trades))
	for n, tr := range r.Trades {
		tradeFills(t, r, tr)
		id := r.TradeID(tr)
		if ids[id] {
			t.Fatalf("trade id %q twice", id)
		}
		ids[id] = true
		if n > 0 {
			prev := r.Trades[n-1]
			ds, db := tr.SellFill-prev.SellFill, tr.BuyFill-prev.BuyFill
			if ds < 0 || db < 0 || ds+db == 0 {
				t.Fatalf("trade %+v after %+v goes back in the fills", tr, prev)
			}
		}
	}
}

// 2. Individual rationality, and the price is where the unit supply and
// demand curves intersect, placed by k and rounded half up.
func TestPropertyPriceInInterval(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		tm := drawMarket(t)
		// Small sizes and crossing books more often: they make [lo, hi]
		// wider than a point, so that k and the rounding matter.
		var b Book
		if rapid.IntRange(0, 2).Draw(t, "shape") == 0 {
			b = drawCrossingBook(t, tm.fee)
		} else {
			b = drawBook(t, tm, 0, 12, rapid.SampledFrom([]int64{1, 2, 6}).Draw(t, "max qty"))
		}
		// Every k on the same book: exact halves are rare enough that one
		// k per book would miss them.
		for _, kText := range kChoices {
			checkPriceInterval(t, newTestMarket(t, tm.decimals, kText, tm.fee), b)
		}
	})
}

// checkPriceInterval checks property 2 for one book and market.
func checkPriceInterval(t *rapid.T, tm testMarket, b Book) {
	r := mustClear(t, tm, b)
	fills := fillsByID(t, b, r)

	vol, lo, hi := refInterval(unitCurves(b.Orders, tm.fee))
	if vol == 0 {
		if r.Cleared {
			t.Fatalf("cleared at %d (volume %d) but the curves do not overlap", r.Price, r.Volume)
		}
		return
	}
	if !r.Cleared {
		t.Fatalf("not cleared, but %d quanta can trade in [%d, %d]", vol, lo, hi)
	}
	if r.Volume != vol || r.PriceLow != lo || r.PriceHigh != hi {
		t.Fatalf("volume %d in [%d, %d], want %d in [%d, %d]", r.Volume, r.PriceLow, r.PriceHigh, vol, lo, hi)
	}
	if r.Price < r.PriceLow || r.Price > r.PriceHigh {
		t.Fatalf("price %d outside [%d, %d]", r.Price, r.PriceLow, r.PriceHigh)
	}
	if want := refPrice(lo, hi, tm.k); r.Price != want {
		t.Fatalf("price %d, want %d = %d + round(%s*(%d-%d))", r.Price, want, lo, tm.k.RatString(), hi, lo)
	}
	p := r.Price
	for _, o := range b.Orders {
		f := fills[o.ID]
		switch {
		case o.Side == Sell && f > 0 && o.Price > p:
			t.Fatalf("seller %q filled %d at %d below its limit %d", o.ID, f, p, o.Price)
		case o.Side == Sell && f < o.Qty && o.Price < p:
			t.Fatalf("seller %q left %d unfilled at %d above its limit %d", o.ID, o.Qty-f, p, o.Price)
		case o.Side == Buy && f > 0 && o.Price-tm.fee < p:
			t.Fatalf("buyer %q filled %d at %d+%d above its limit %d", o.ID, f, p, tm.fee, o.Price)
		case o.Side == Buy && f < o.Qty && o.Price-tm.fee > p:
			t.Fatalf("buyer %q left %d unfilled at %d+%d below its limit %d", o.ID, o.Qty-f, p, tm.fee, o.Price)
		}
	}
}

// 3. Welfare is maximal, and among the maximisers the volume is largest,
// checked against an exhaustive search on tiny books.
func TestPropertyWelfareOptimal(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		tm := drawMarket(t)
		b := drawBook(t, tm, 0, 6, 3)
		r := mustClear(t, tm, b)
		fills := fillsByID(t, b, r)

		wantW, wantV := bruteForce(b.Orders, tm.fee)
		gotW := scaled(t, "welfare", r.Welfare(), tm.dec)
		if gotW.Cmp(big.NewInt(wantW)) != 0 || r.Volume != wantV {
			t.Fatalf("welfare %s (scaled %s), volume %d; want scaled welfare %d, volume %d",
				r.Welfare(), gotW, r.Volume, wantW, wantV)
		}
		// Welfare() must also be the welfare of the fills it reports.
		var w int64
		for _, o := range b.Orders {
			if o.Side == Buy {
				w += fills[o.ID] * (o.Price - tm.fee)
			} else {
				w -= fills[o.ID] * o.Price
			}
		}
		if gotW.Cmp(big.NewInt(w)) != 0 {
			t.Fatalf("Welfare() scaled %s, but the fills have welfare %d", gotW, w)
		}
	})
}

// 4. The result does not depend on the order of the book: the same JSON to
// the byte, the same digest, the same result, and the book is not touched.
func TestPropertyPermutationInvariant(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		tm := drawMarket(t)
		b := drawBook(t, tm, 0, 12, drawMaxQty(t, tm))
		shuffled := Book{Interval: b.Interval, Orders: rapid.Permutation(b.Orders).Draw(t, "shuffled")}
		before := slices.Clone(shuffled.Orders)

		r1 := mustClear(t, tm, b)
		r2 := mustClear(t, tm, shuffled)
		if !slices.Equal(shuffled.Orders, before) {
			t.Fatalf("Clear modified the book")
		}
		j1, err1 := r1.MarshalJSON()
		j2, err2 := r2.MarshalJSON()
		if err1 != nil || err2 != nil {
			t.Fatalf("MarshalJSON: %v, %v", err1, err2)
		}
		if !json.Valid(j1) {
			t.Fatalf("MarshalJSON is not valid JSON: %s", j1)
		}
		if !bytes.Equal(j1, j2) {
			t.Fatalf("JSON differs under permutation:\n%s\n%s", j1, j2)
		}
		if r1.BookSHA256 != r2.BookSHA256 {
			t.Fatalf("digest differs under permutation: %s vs %s", r1.BookDigest(), r2.BookDigest())
		}
		if !reflect.DeepEqual(r1, r2) {
			t.Fatalf("result differs under permutation:\n%+v\n%+v", r1, r2)
		}

		// The digest covers the whole book: spoil one thing, and it changes.
		spoilt := Book{Interval: b.Interval, Orders: slices.Clone(b.Orders)}
		what := "interval"
		if len(spoilt.Orders) > 0 {
			what = rapid.SampledFrom([]string{"interval", "id", "participant", "side", "qty", "price", "drop"}).Draw(t, "spoil")
		}
		n := 0
		if len(spoilt.Orders) > 0 {
			n = rapid.IntRange(0, len(spoilt.Orders)-1).Draw(t, "spoilt order")
		}
		switch what {
		case "interval":
			spoilt.Interval += "x"
		case "id":
			spoilt.Orders[n].ID = "z" // not in the ids' alphabet: still unique
		case "participant":
			spoilt.Orders[n].Participant += "x"
		case "side":
			spoilt.Orders[n].Side = Buy + Sell - spoilt.Orders[n].Side
		case "qty":
			if spoilt.Orders[n].Qty > 1 {
				spoilt.Orders[n].Qty--
			} else {
				spoilt.Orders[n].Qty++
			}
		case "price":
			spoilt.Orders[n].Price++
		case "drop":
			spoilt.Orders = slices.Delete(spoilt.Orders, n, n+1)
		}
		if r3 := mustClear(t, tm, spoilt); r3.BookSHA256 == r1.BookSHA256 {
			t.Fatalf("digest unchanged after changing the book's %s", what)
		}
	})
}

// 5. At the marginal price, the orders whose limit equals the price share
// what is left pro rata, within one quantum of their exact share, the extra
// quanta by largest remainder then smaller id; better orders fill whole.
func TestPropertyProRataRationing(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		tm := drawMarket(t)
		b := drawBook(t, tm, 0, 14, drawMaxQty(t, tm))
		r := mustClear(t, tm, b)
		if !r.Cleared {
			return
		}
		fills := fillsByID(t, b, r)
		for _, side := range []Side{Sell, Buy} {
			// gain > 0: strictly prefers trading at r.Price; 0: indifferent.
			gain := func(o Order) int64 {
				if side == Sell {
					return r.Price - o.Price
				}
				return o.Price - tm.fee - r.Price
			}
			var level []Order
			var levelTotal int64
			left := r.Volume
			for _, o := range b.Orders {
				switch g := gain(o); {
				case o.Side != side:
				case g > 0:
					if fills[o.ID] != o.Qty {
						t.Fatalf("%s %q (limit %d, price %d) filled %d of %d", side, o.ID, o.Price, r.Price, fills[o.ID], o.Qty)
					}
					left -= o.Qty
				case g == 0:
					level = append(level, o)
					levelTotal += o.Qty
				}
			}
			if left < 0 || left > levelTotal {
				t.Fatalf("%s: %d quanta left for a marginal level of %d", side, left, levelTotal)
			}
			if len(level) == 0 {
				continue
			}
			// Within one quantum of the exact share left*q/levelTotal.
			T := big.NewInt(levelTotal)
			for _, o := range level {
				diff := new(big.Int).Mul(big.NewInt(fills[o.ID]), T)
				diff.Sub(diff, new(big.Int).Mul(big.NewInt(left), big.NewInt(o.Qty)))
				if diff.CmpAbs(T) >= 0 {
					t.Fatalf("%s %q: filled %d, exact share %d*%d/%d is a quantum or more away",
						side, o.ID, fills[o.ID], left, o.Qty, levelTotal)
				}
			}
			// Exactly: floors, then one more each by remainder desc, id asc.
			type share struct {
				id       string
				floor    int64
				rem      int64
				got, qty int64
			}
			shares := make([]share, len(level))
			extra := left
			for n, o := range level {
				// left*qty can exceed int64: divide in big integers.
				fl, rem := new(big.Int).QuoRem(new(big.Int).Mul(big.NewInt(left), big.NewInt(o.Qty)), T, new(big.Int))
				shares[n] = share{id: o.ID, floor: fl.Int64(), rem: rem.Int64(), got: fills[o.ID], qty: o.Qty}
				extra -= shares[n].floor
			}
			slices.SortFunc(shares, func(a, b share) int {
				if c := cmp.Compare(b.rem, a.rem); c != 0 {
					return c
				}
				return strings.Compare(a.id, b.id)
			})
			for n, s := range shares {
				want := s.floor
				if int64(n) < extra {
					want++
				}
				if s.got != want {
					t.Fatalf("%s %q at the margin (size %d of %d, %d to share): filled %d, want %d; level by remainder %+v",
						side, s.id, s.qty, levelTotal, left, s.got, want, shares)
				}
			}
		}
	})
}

// 6. Budget balance: buyers pay exactly what sellers receive plus the fees,
// and the totals are the sums over the trades.
func TestPropertyBudgetBalance(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		tm := drawMarket(t)
		b := drawBook(t, tm, 0, 12, drawMaxQty(t, tm))
		r := mustClear(t, tm, b)
		pay := scaled(t, "BuyersPay", r.BuyersPay(), tm.dec)
		receive := scaled(t, "SellersReceive", r.SellersReceive(), tm.dec)
		fees := scaled(t, "Fees", r.Fees(), tm.dec)
		if !r.BuyersPay().Equal(r.SellersReceive().Add(r.Fees())) {
			t.Fatalf("buyers pay %s, sellers receive %s, fees %s", r.BuyersPay(), r.SellersReceive(), r.Fees())
		}
		if r.Fee != tm.fee {
			t.Fatalf("result fee %d, market fee %d", r.Fee, tm.fee)
		}
		wantPay, wantReceive, wantFees := new(big.Int), new(big.Int), new(big.Int)
		for _, tr := range r.Trades {
			q := big.NewInt(tr.Qty)
			wantPay.Add(wantPay, new(big.Int).Mul(q, big.NewInt(r.Price+tm.fee)))
			wantReceive.Add(wantReceive, new(big.Int).Mul(q, big.NewInt(r.Price)))
			wantFees.Add(wantFees, new(big.Int).Mul(q, big.NewInt(tm.fee)))
		}
		if pay.Cmp(wantPay) != 0 || receive.Cmp(wantReceive) != 0 || fees.Cmp(wantFees) != 0 {
			t.Fatalf("scaled pay %s, receive %s, fees %s; trades sum to %s, %s, %s",
				pay, receive, fees, wantPay, wantReceive, wantFees)
		}
		if want := new(big.Int).Add(receive, fees); pay.Cmp(want) != 0 {
			t.Fatalf("scaled pay %s != receive %s + fees %s", pay, receive, fees)
		}
	})
}

// 7. A book with one bad order is rejected whole with an *OrderError naming
// that order and field, and Clear never panics.
func TestPropertyBadOrderRejected(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		tm := drawMarket(t)
		b := drawBook(t, tm, 1, 10, 6)
		rules := tm.m.Rules()
		capped := rapid.Bool().Draw(t, "capped")
		if capped { // a floor and a cap the book keeps, sometimes exactly
			lowest, highest := b.Orders[0].Price, b.Orders[0].Price
			for _, o := range b.Orders {
				lowest, highest = min(lowest, o.Price), max(highest, o.Price)
			}
			floor := decimal.New(lowest-rapid.Int64Range(0, 3).Draw(t, "below floor"), -int32(rules.PriceDecimals))
			ceiling := decimal.New(min(highest+rapid.Int64Range(0, 3).Draw(t, "below cap"), tm.m.maxPrice), -int32(rules.PriceDecimals))
			rules.PriceFloor, rules.PriceCap = &floor, &ceiling
		}
		m, err := NewMarket(rules)
		if err != nil {
			t.Fatalf("NewMarket: %v", err)
		}
		if err := m.CheckBook(b); err != nil {
			t.Fatalf("the book is bad before it is spoilt: %v", err)
		}
		n := rapid.IntRange(0, len(b.Orders)-1).Draw(t, "bad order")
		o := &b.Orders[n]
		kinds := []string{"zero qty", "negative qty", "bad side", "beyond max_abs_price", "bad id", "bad participant"}
		if len(b.Orders) > 1 {
			kinds = append(kinds, "duplicate id")
		}
		if capped {
			kinds = append(kinds, "above cap", "below floor")
		}
		kind := rapid.SampledFrom(kinds).Draw(t, "kind")
		wantIndex, wantField := n, ""
		switch kind {
		case "zero qty":
			o.Qty, wantField = 0, "kwh"
		case "negative qty":
			o.Qty, wantField = -o.Qty, "kwh"
		case "bad side":
			o.Side, wantField = rapid.SampledFrom([]Side{0, 3, 255}).Draw(t, "side"), "side"
		case "beyond max_abs_price":
			limit := m.maxPrice + rapid.Int64Range(1, 3).Draw(t, "excess")
			o.Price, wantField = rapid.SampledFrom([]int64{limit, -limit}).Draw(t, "price"), "price"
		case "above cap":
			o.Price, wantField = m.cap+rapid.Int64Range(1, 3).Draw(t, "excess"), "price"
		case "below floor":
			o.Price, wantField = m.floor-rapid.Int64Range(1, 3).Draw(t, "excess"), "price"
		case "bad id":
			o.ID, wantField = rapid.SampledFrom([]string{"", "a b", "a/b", strings.Repeat("a", 65)}).Draw(t, "id"), "id"
		case "bad participant":
			o.Participant, wantField = rapid.SampledFrom([]string{"", "p 1", "p\"1"}).Draw(t, "participant"), "participant"
		case "duplicate id":
			other := rapid.IntRange(0, len(b.Orders)-2).Draw(t, "other")
			if other >= n {
				other++
			}
			o.ID, wantField, wantIndex = b.Orders[other].ID, "id", max(n, other)
		}

		var r *Result
		func() {
			defer func() {
				if p := recover(); p != nil {
					t.Fatalf("Clear panicked on a book with %s: %v", kind, p)
				}
			}()
			r, err = m.Clear(b)
		}()
		var oe *OrderError
		if !errors.As(err, &oe) {
			t.Fatalf("%s: Clear returned %v (result %v), want an *OrderError", kind, err, r)
		}
		if r != nil {
			t.Fatalf("%s: Clear returned a result with its error", kind)
		}
		if !errors.Is(err, ErrInvalidOrder) {
			t.Fatalf("%s: %v does not wrap ErrInvalidOrder", kind, err)
		}
		if kind == "duplicate id" && !errors.Is(err, ErrDuplicateID) {
			t.Fatalf("%s: %v does not wrap ErrDuplicateID", kind, err)
		}
		if oe.Index != wantIndex || oe.Field != wantField {
			t.Fatalf("%s: error names order #%d field %q, want #%d field %q (%v)",
				kind, oe.Index, oe.Field, wantIndex, wantField, err)
		}
	})
}
