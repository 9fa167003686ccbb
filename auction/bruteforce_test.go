package auction

import (
	"math/big"
	"slices"
	"testing"
)

// Reference computations for the property tests. They share no code with
// Clear: they expand orders into unit quanta or search exhaustively, which is
// slow but obviously right on the small books the properties generate.

// unitCurves expands a book into one entry per quantum: the supply curve
// (seller limits, ascending) and the demand curve (buyer limits net of the
// fee, descending).
func unitCurves(orders []Order, fee int64) (supply, demand []int64) {
	for _, o := range orders {
		for range o.Qty {
			if o.Side == Sell {
				supply = append(supply, o.Price)
			} else {
				demand = append(demand, o.Price-fee)
			}
		}
	}
	slices.Sort(supply)
	slices.Sort(demand)
	slices.Reverse(demand)
	return supply, demand
}

// refInterval returns the volume at which the unit curves intersect (every
// quantum whose buyer values it at least as much as its seller) and the
// interval [lo, hi] of prices at which every traded quantum is willing and
// every untraded one is not. vol is 0 when the curves do not overlap.
func refInterval(supply, demand []int64) (vol, lo, hi int64) {
	for int(vol) < len(supply) && int(vol) < len(demand) && demand[vol] >= supply[vol] {
		vol++
	}
	if vol == 0 {
		return 0, 0, 0
	}
	lo, hi = supply[vol-1], demand[vol-1]
	if int(vol) < len(demand) {
		lo = max(lo, demand[vol])
	}
	if int(vol) < len(supply) {
		hi = min(hi, supply[vol])
	}
	return vol, lo, hi
}

// refPrice returns lo + k*(hi-lo) rounded half up to a whole tick.
func refPrice(lo, hi int64, k *big.Rat) int64 {
	x := new(big.Rat).Mul(k, new(big.Rat).SetInt64(hi-lo)) // >= 0
	// floor(x + 1/2) = floor((2*num + den) / (2*den)) for x >= 0
	num := new(big.Int).Lsh(x.Num(), 1)
	num.Add(num, x.Denom())
	den := new(big.Int).Lsh(x.Denom(), 1)
	return lo + new(big.Int).Quo(num, den).Int64()
}

// bruteForce tries every integer fill vector x (0 <= x_i <= q_i, bought ==
// sold) and returns the largest welfare, sum over buys of x*(limit-fee)
// minus sum over sells of x*limit (ticks times quanta), and the largest
// volume among the fill vectors that reach it. Keep books tiny: the search
// visits prod(q_i+1) vectors.
func bruteForce(orders []Order, fee int64) (welfare, volume int64) {
	var walk func(n int, bought, sold, w int64)
	walk = func(n int, bought, sold, w int64) {
		if n == len(orders) {
			if bought != sold {
				return
			}
			if w > welfare || (w == welfare && bought > volume) {
				welfare, volume = w, bought
			}
			return
		}
		o := orders[n]
		for x := int64(0); x <= o.Qty; x++ {
			if o.Side == Buy {
				walk(n+1, bought+x, sold, w+x*(o.Price-fee))
			} else {
				walk(n+1, bought, sold+x, w-x*o.Price)
			}
		}
	}
	walk(0, 0, 0, 0) // the empty trade is feasible: welfare starts at 0
	return welfare, volume
}

// TestPropertyReference pins the reference helpers to hand-computed answers,
// so that a mistake in them cannot agree with the same mistake in Clear.
func TestPropertyReference(t *testing.T) {
	half := big.NewRat(1, 2)
	third, _ := new(big.Rat).SetString("0.333")
	for _, c := range []struct {
		lo, hi int64
		k      *big.Rat
		want   int64
	}{
		{10, 11, half, 11},    // 10.5 rounds up
		{-11, -10, half, -10}, // -10.5 rounds up, not away from zero
		{-3, 3, half, 0},
		{0, 3, third, 1}, // 0.999
		{0, 2, third, 1}, // 0.666
		{0, 1, third, 0}, // 0.333
		{5, 9, big.NewRat(0, 1), 5},
		{5, 9, big.NewRat(1, 1), 9},
		{5, 7, big.NewRat(1, 4), 6}, // 5.5 rounds up
	} {
		if got := refPrice(c.lo, c.hi, c.k); got != c.want {
			t.Errorf("refPrice(%d, %d, %s) = %d, want %d", c.lo, c.hi, c.k.RatString(), got, c.want)
		}
	}

	// Sellers 2@1 and 2@3, buyers 3@4 and 1@2 (fee 1, so nets 3 and 1):
	// supply 1 1 3 3, demand 3 3 3 1; three quanta trade (the third at
	// zero gain), welfare (3-1)*2 + (3-3) = 4, lo = max(3, 1), hi = min(3, 3).
	book := []Order{
		{ID: "s1", Side: Sell, Qty: 2, Price: 1},
		{ID: "s2", Side: Sell, Qty: 2, Price: 3},
		{ID: "b1", Side: Buy, Qty: 3, Price: 4},
		{ID: "b2", Side: Buy, Qty: 1, Price: 2},
	}
	supply, demand := unitCurves(book, 1)
	if !slices.Equal(supply, []int64{1, 1, 3, 3}) || !slices.Equal(demand, []int64{3, 3, 3, 1}) {
		t.Errorf("unitCurves = %v, %v", supply, demand)
	}
	if vol, lo, hi := refInterval(supply, demand); vol != 3 || lo != 3 || hi != 3 {
		t.Errorf("refInterval = %d [%d, %d], want 3 [3, 3]", vol, lo, hi)
	}
	if w, v := bruteForce(book, 1); w != 4 || v != 3 {
		t.Errorf("bruteForce = welfare %d volume %d, want 4 and 3", w, v)
	}
	if vol, _, _ := refInterval(unitCurves(book[1:2], 0)); vol != 0 {
		t.Errorf("refInterval of a one-sided book = %d, want 0", vol)
	}
}
