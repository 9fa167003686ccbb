package settlement

import (
	"bytes"
	"slices"
	"testing"

	"github.com/p2pgrid/p2pgrid/auction"
	"github.com/shopspring/decimal"
	"pgregory.net/rapid"
)

// Property tests of the post-delivery market over the random intervals of
// property_test.go: each is settled ex ante, then through the
// post-delivery market, and the two settlements are compared.

func postDrawn(t *rapid.T, d drawn) (ex, post *IntervalSettlement) {
	ex = settleDrawn(t, d)
	post, err := SettlePostDelivery(ex, d.book, d.rules)
	if err != nil {
		t.Fatalf("SettlePostDelivery: %v", err)
	}
	return ex, post
}

// statementOf returns participant p's statement of s.
func statementOf(t *rapid.T, s *IntervalSettlement, p string) Statement {
	for _, st := range s.Participants {
		if st.Participant == p {
			return st
		}
	}
	t.Fatalf("no statement of %q", p)
	return Statement{}
}

// TestPropertyPostDeliveryMeteredBound: the post-delivery market sells no
// home more than its metered export beyond its ex-ante delivery, buys no
// home more than its import beyond what it received, pairs no home with
// itself, and matches in all at most min(residual export, residual
// import); ex-ante trades come first, unchanged but for compensation.
func TestPropertyPostDeliveryMeteredBound(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		d := drawInterval(t)
		ex, post := postDrawn(t, d)
		if len(post.Participants) != len(ex.Participants) {
			t.Fatalf("%d participants after, %d before", len(post.Participants), len(ex.Participants))
		}
		for i, tr := range ex.Trades {
			p := post.Trades[i]
			if p.ID != tr.ID || p.Wh != tr.Wh || p.DeliveredWh != tr.DeliveredWh || !p.Amount.Equal(tr.Amount) || !p.Fee.Equal(tr.Fee) {
				t.Fatalf("ex-ante trade %q changed: %+v -> %+v", tr.ID, tr, p)
			}
		}
		sold, bought := map[string]int64{}, map[string]int64{}
		var volume int64
		for _, tr := range post.Trades[len(ex.Trades):] {
			if !IsPostDelivery(tr.ID) {
				t.Fatalf("trade %q after the ex-ante ones is not a post-delivery trade", tr.ID)
			}
			if tr.Seller == tr.Buyer {
				t.Fatalf("trade %q pairs %q with itself", tr.ID, tr.Seller)
			}
			if tr.DeliveredWh != tr.Wh || tr.MissingWh != 0 || !tr.Compensation.IsZero() {
				t.Fatalf("trade %q not delivered in full: %+v", tr.ID, tr)
			}
			sold[tr.Seller] += tr.Wh
			bought[tr.Buyer] += tr.Wh
			volume += tr.Wh
		}
		var resExp, resImp int64
		for _, st := range ex.Participants {
			exp, imp := st.ExportWh-st.DeliveredWh, st.GridImportWh
			resExp += exp
			resImp += imp
			if sold[st.Participant] > exp {
				t.Fatalf("%s sold %d Wh post delivery, residual export %d Wh", st.Participant, sold[st.Participant], exp)
			}
			if bought[st.Participant] > imp {
				t.Fatalf("%s bought %d Wh post delivery, residual import %d Wh", st.Participant, bought[st.Participant], imp)
			}
			after := statementOf(t, post, st.Participant)
			if after.ImportWh != st.ImportWh || after.ExportWh != st.ExportWh {
				t.Fatalf("%s: metered figures changed", st.Participant)
			}
		}
		if volume > min(resExp, resImp) {
			t.Fatalf("matched %d Wh, residuals %d Wh export and %d Wh import", volume, resExp, resImp)
		}
	})
}

// TestPropertyPostDeliveryMoneyConserved: net + grid + fees is exactly
// zero after the step, and the fees are the market's fee on every
// delivered kWh, ex ante and post delivery.
func TestPropertyPostDeliveryMoneyConserved(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		d := drawInterval(t)
		_, post := postDrawn(t, d)
		if err := post.Check(); err != nil {
			t.Fatal(err)
		}
		sum := post.Grid.Add(post.Fees)
		for _, st := range post.Participants {
			sum = sum.Add(st.Net)
		}
		if !sum.IsZero() {
			t.Fatalf("net + grid + fees = %s, want 0", sum)
		}
		fee := d.rules.Fee
		var want, got decimal.Decimal
		for _, tr := range post.Trades {
			want = want.Add(fee.Mul(kWh(tr.DeliveredWh)))
			got = got.Add(tr.Fee)
		}
		if !want.Equal(got) || !got.Equal(post.Fees) {
			t.Fatalf("fees %s (trades) and %s (total), want %s", got, post.Fees, want)
		}
	})
}

// TestPropertyPostDeliveryIndividuallyRational: no home buys above its
// standing limit or sells below it (limits recomputed here from the book),
// none pays more compensation than ex ante, and no home's net is lower
// than without the post-delivery step.
func TestPropertyPostDeliveryIndividuallyRational(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		d := drawInterval(t)
		ex, post := postDrawn(t, d)
		// Limits as documented: highest sell, lowest buy, else the tariffs.
		sellLimit := map[string]decimal.Decimal{}
		buyLimit := map[string]decimal.Decimal{}
		for _, o := range d.book.Orders {
			p := decimal.New(o.Price, -int32(d.rules.PriceDecimals))
			if o.Side == auction.Sell {
				if l, ok := sellLimit[o.Participant]; !ok || p.GreaterThan(l) {
					sellLimit[o.Participant] = p
				}
			} else if l, ok := buyLimit[o.Participant]; !ok || p.LessThan(l) {
				buyLimit[o.Participant] = p
			}
		}
		for _, tr := range post.Trades[len(ex.Trades):] {
			sl, ok := sellLimit[tr.Seller]
			if !ok {
				sl = d.tariffs.FeedIn
			}
			bl, ok := buyLimit[tr.Buyer]
			if !ok {
				bl = d.tariffs.Retail
			}
			paid := tr.Price.Add(d.rules.Fee)
			if tr.Price.LessThan(sl) || tr.Price.LessThan(d.tariffs.FeedIn) {
				t.Fatalf("trade %q: %s sold at %s, its limit %s, feed-in %s", tr.ID, tr.Seller, tr.Price, sl, d.tariffs.FeedIn)
			}
			if paid.GreaterThan(bl) || paid.GreaterThan(d.tariffs.Retail) {
				t.Fatalf("trade %q: %s paid %s with fee, its limit %s, retail %s", tr.ID, tr.Buyer, paid, bl, d.tariffs.Retail)
			}
		}
		for i, tr := range ex.Trades {
			if c := post.Trades[i].Compensation; c.IsNegative() || c.GreaterThan(tr.Compensation) {
				t.Fatalf("trade %q: compensation %s after, %s before", tr.ID, c, tr.Compensation)
			}
		}
		for _, st := range ex.Participants {
			after := statementOf(t, post, st.Participant)
			if after.Net.LessThan(st.Net) {
				t.Fatalf("%s is worse off after the post-delivery market: net %s, %s without it", st.Participant, after.Net, st.Net)
			}
			if after.CompensationPaid.GreaterThan(st.CompensationPaid) {
				t.Fatalf("%s pays more compensation: %s, %s without it", st.Participant, after.CompensationPaid, st.CompensationPaid)
			}
		}
	})
}

// TestPropertyPostDeliveryDeterministic: the same interval with its book
// orders and metered figures in another order gives the same bytes.
func TestPropertyPostDeliveryDeterministic(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		d := drawInterval(t)
		_, post := postDrawn(t, d)
		a, err := post.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		d.metered = rapid.Permutation(d.metered).Draw(t, "metered")
		d.book.Orders = rapid.Permutation(d.book.Orders).Draw(t, "orders")
		_, again := postDrawn(t, d)
		b, err := again.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a, b) {
			t.Fatalf("different bytes for the same input:\n%s\n%s", a, b)
		}
		back, err := DecodeIntervalSettlement(a)
		if err != nil {
			t.Fatalf("decode: %v", err)
		}
		if c, _ := back.MarshalJSON(); !bytes.Equal(a, c) {
			t.Fatalf("decode and encode changed the bytes")
		}
	})
}

// TestPropertyPairOthers: pairOthers never pairs a participant with
// itself, keeps pairs unique, gives no fill more than its quantity, and
// places every fill in full unless one participant's own sell and buy
// together exceed the volume (then it, alone, keeps the same amount of
// each unplaced).
func TestPropertyPairOthers(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		n := rapid.IntRange(1, 5).Draw(t, "participants")
		var sells, buys []auction.Fill
		var total int64
		for i := range n {
			p := people[i]
			if rapid.Bool().Draw(t, "sells_"+p) {
				q := rapid.Int64Range(1, 20).Draw(t, "sell_"+p)
				sells = append(sells, auction.Fill{ID: "s" + p, Participant: p, Side: auction.Sell, Qty: q})
				total += q
			}
		}
		// Buys of the same total, spread over participants.
		left := total
		for i := range n {
			if left == 0 {
				break
			}
			q := left
			if i < n-1 {
				q = rapid.Int64Range(0, left).Draw(t, "buy_"+people[i])
			}
			if q > 0 {
				buys = append(buys, auction.Fill{ID: "b" + people[i], Participant: people[i], Side: auction.Buy, Qty: q})
				left -= q
			}
		}
		fills := append(slices.Clone(sells), buys...)
		sold, bought := map[string]int64{}, map[string]int64{}
		seen := map[[2]string]bool{}
		for _, p := range pairOthers(fills) {
			if p.seller == p.buyer || p.wh <= 0 || seen[[2]string{p.seller, p.buyer}] {
				t.Fatalf("pair %+v (self, empty or repeated)", p)
			}
			seen[[2]string{p.seller, p.buyer}] = true
			sold[p.seller] += p.wh
			bought[p.buyer] += p.wh
		}
		fill := map[string][3]int64{} // by auction.Side
		for _, f := range fills {
			v := fill[f.Participant]
			v[f.Side] += f.Qty
			fill[f.Participant] = v
		}
		short := 0
		for p, v := range fill {
			ds, db := v[auction.Sell]-sold[p], v[auction.Buy]-bought[p]
			if ds < 0 || db < 0 || ds != db {
				t.Fatalf("%s: fills %v, paired %d sold %d bought", p, v, sold[p], bought[p])
			}
			if ds > 0 {
				short++
				if v[auction.Sell]+v[auction.Buy] <= total {
					t.Fatalf("%s: %d Wh unplaced, though its fills %v fit in the volume %d", p, ds, v, total)
				}
			}
		}
		if short > 1 {
			t.Fatalf("%d participants left unplaced", short)
		}
	})
}
