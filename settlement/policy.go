package settlement

import (
	"cmp"
	"fmt"
	"math/bits"
	"slices"

	"github.com/shopspring/decimal"
)

// Interval is what a Policy sees of the interval it settles.
type Interval struct {
	Name    string
	Price   decimal.Decimal // clearing price per kWh, received by sellers
	Fee     decimal.Decimal // network fee per kWh, paid by buyers
	Tariffs Tariffs
	// Metered holds every participant's figures, by participant; every
	// seller and buyer of the interval has an entry (Missing ones with
	// zero figures).
	Metered map[string]Metered
}

// Policy decides who bears an imbalance between what was traded and what
// the meters counted. Settle hands it the interval's trades, in the auction
// result's order, with ID, Seller, Buyer, Wh and Price set; SettleTrades
// sets DeliveredWh, MissingWh, Amount, Fee and Compensation on each and
// must change nothing else. Grid flows follow from the delivered energy and
// are computed by Settle, which also checks the result (ErrInvariant): a
// policy cannot credit more delivery than was traded or exported, nor make
// money appear or vanish.
type Policy interface {
	// Name identifies the policy in settlements, e.g. "seller-bears-shortfall".
	Name() string
	// SettleTrades settles the interval's trades in place. It must be
	// deterministic: the same interval and trades give the same figures.
	SettleTrades(iv Interval, trades []TradeSettlement) error
}

// SellerBearsShortfall is the default policy.
//
// A seller that sold Q Wh and exported E Wh delivered D = min(E, Q),
// allocated to its trades pro rata to their size in whole Wh: each trade
// gets the floor of its exact share, and the Wh left over go one each to the
// largest remainders, ties to the smaller buyer id, then trade id. For a
// trade of q Wh at price p with d Wh delivered and m = q - d missing, the
// buyer pays p*d to the seller and Fee*d to the network, and the seller pays
// the buyer (Retail - p)*m: the buyer draws the missing energy from the grid
// at Retail, so it pays p for every kWh it bought, as agreed, and the seller
// bears the difference.
type SellerBearsShortfall struct{}

var _ Policy = SellerBearsShortfall{}

// Name returns "seller-bears-shortfall".
func (SellerBearsShortfall) Name() string { return "seller-bears-shortfall" }

// SettleTrades implements Policy.
func (SellerBearsShortfall) SettleTrades(iv Interval, trades []TradeSettlement) error {
	sellers, bySeller := groupTrades(trades, func(t *TradeSettlement) (string, bool) { return t.Seller, true })
	for _, s := range sellers {
		idx := bySeller[s]
		var sold int64
		for _, i := range idx {
			sold += trades[i].Wh
		}
		m, ok := iv.Metered[s]
		if !ok {
			return fmt.Errorf("seller %q has no metered entry", s)
		}
		delivered := min(m.ExportWh, sold)
		for n, d := range prorate(trades, idx, delivered, sold) {
			trades[idx[n]].DeliveredWh = d
		}
	}
	retailGap := iv.Tariffs.Retail.Sub(iv.Price)
	for i := range trades {
		t := &trades[i]
		t.MissingWh = t.Wh - t.DeliveredWh
		d := kWh(t.DeliveredWh)
		t.Amount = t.Price.Mul(d)
		t.Fee = iv.Fee.Mul(d)
		t.Compensation = retailGap.Mul(kWh(t.MissingWh))
	}
	return nil
}

// groupTrades groups the indices of trades by key(trade), skipping those
// key rejects, and returns the keys in order of first appearance.
func groupTrades(trades []TradeSettlement, key func(*TradeSettlement) (string, bool)) ([]string, map[string][]int) {
	by := map[string][]int{}
	var keys []string
	for i := range trades {
		k, ok := key(&trades[i])
		if !ok {
			continue
		}
		if _, seen := by[k]; !seen {
			keys = append(keys, k)
		}
		by[k] = append(by[k], i)
	}
	return keys, by
}

// prorate splits total Wh (0 <= total <= sum) over the trades idx, whose
// sizes sum to sum, pro rata in whole Wh by largest remainder, ties to the
// smaller buyer id, then trade id.
func prorate(trades []TradeSettlement, idx []int, total, sum int64) []int64 {
	out := make([]int64, len(idx))
	if total == sum {
		for n, i := range idx {
			out[n] = trades[i].Wh
		}
		return out
	}
	rems := make([]uint64, len(idx))
	left := total
	for n, i := range idx {
		// total*q/sum in 128 bits: total <= sum, so the quotient fits.
		hi, lo := bits.Mul64(uint64(total), uint64(trades[i].Wh))
		q, r := bits.Div64(hi, lo, uint64(sum))
		out[n], rems[n] = int64(q), r
		left -= int64(q)
	}
	order := make([]int, len(idx))
	for n := range order {
		order[n] = n
	}
	slices.SortFunc(order, func(a, b int) int {
		if c := cmp.Compare(rems[b], rems[a]); c != 0 {
			return c
		}
		ta, tb := &trades[idx[a]], &trades[idx[b]]
		if c := cmp.Compare(ta.Buyer, tb.Buyer); c != 0 {
			return c
		}
		return cmp.Compare(ta.ID, tb.ID)
	})
	for _, n := range order[:left] {
		out[n]++
	}
	return out
}
