package auction

import (
	"cmp"
	"fmt"
	"math/bits"
	"slices"
	"strings"

	"github.com/shopspring/decimal"
)

// Clear clears one interval's book under the market's rules. It checks the
// book first and rejects it whole, with an *OrderError, if any order is bad.
//
// The rule (docs/auction.md has the details and worked examples):
//   - fills maximise welfare (sum over traded kWh of buyer limit minus fee
//     minus seller limit) and, among those, the traded volume;
//   - one uniform price lo + k*(hi-lo), rounded half up to the price
//     resolution, where [lo, hi] is the interval of prices at which every
//     filled order is willing to trade and every unfilled quantity is not;
//   - orders whose limit equals the price share what is left at the margin
//     pro rata to their size, in whole quanta, the remainder by largest
//     remainder then id;
//   - fills are paired into bilateral trades, cheapest seller with the
//     highest bidder first.
//
// The result does not depend on the order of b.Orders.
func (m *Market) Clear(b Book) (*Result, error) {
	if err := m.CheckBook(b); err != nil {
		return nil, err
	}
	sells, buys := sortSides(b.Orders)
	r := &Result{
		Interval:      b.Interval,
		BookSHA256:    m.digestBook(b, sells, buys),
		Orders:        len(b.Orders),
		Fee:           m.fee,
		QtyDecimals:   m.qtyDec,
		PriceDecimals: m.priceDec,
	}
	if len(sells) == 0 || len(buys) == 0 {
		return r, nil // one-sided: nothing can trade
	}
	os := b.Orders
	fee := m.fee

	// Walk the supply curve up and the demand curve (net of fee) down while
	// the next buyer still values the kWh at least as much as the next seller.
	var vol int64
	i, j := 0, 0
	remS, remB := os[sells[0]].Qty, os[buys[0]].Qty
	var lastS, lastB int64
	for i < len(sells) && j < len(buys) {
		s, d := os[sells[i]].Price, os[buys[j]].Price-fee
		if d < s {
			break
		}
		q := min(remS, remB)
		vol += q // fits: CheckBook bounds each side's total
		lastS, lastB = s, d
		if remS -= q; remS == 0 {
			if i++; i < len(sells) {
				remS = os[sells[i]].Qty
			}
		}
		if remB -= q; remB == 0 {
			if j++; j < len(buys) {
				remB = os[buys[j]].Qty
			}
		}
	}
	if vol == 0 {
		return r, nil // the curves do not overlap
	}
	// The price must keep every filled order willing (>= lastS, <= lastB)
	// and every unfilled quantity unwilling (<= next seller, >= next buyer).
	lo, hi := lastS, lastB
	if j < len(buys) {
		lo = max(lo, os[buys[j]].Price-fee)
	}
	if i < len(sells) {
		hi = min(hi, os[sells[i]].Price)
	}
	price := lo + decimal.NewFromInt(hi-lo).Mul(m.k).Round(0).IntPart()

	sellFills, err := fillSide(os, sells, vol, func(o *Order) int { return cmp.Compare(o.Price, price) })
	if err != nil {
		return nil, err
	}
	buyFills, err := fillSide(os, buys, vol, func(o *Order) int { return cmp.Compare(price, o.Price-fee) })
	if err != nil {
		return nil, err
	}

	r.Cleared = true
	r.Price, r.Volume, r.PriceLow, r.PriceHigh = price, vol, lo, hi
	r.Fills = make([]Fill, 0, len(sellFills)+len(buyFills))
	var welfare int128
	for _, f := range sellFills {
		o := &os[f.idx]
		r.Fills = append(r.Fills, Fill{ID: o.ID, Participant: o.Participant, Side: Sell, Qty: f.qty, Limit: o.Price})
		welfare = welfare.sub(mul128(f.qty, o.Price))
	}
	for _, f := range buyFills {
		o := &os[f.idx]
		r.Fills = append(r.Fills, Fill{ID: o.ID, Participant: o.Participant, Side: Buy, Qty: f.qty, Limit: o.Price})
		welfare = welfare.add(mul128(f.qty, o.Price-fee))
	}
	r.welfare = welfare
	r.Trades = pairTrades(r.Fills[:len(sellFills)], r.Fills[len(sellFills):])
	return r, nil
}

// fill is the quantity given to the order at index idx.
type fill struct {
	idx int32
	qty int64
}

// fillSide fills vol quanta from one side, walked best first. rel(o) < 0
// means o strictly prefers trading at the price (filled whole), 0 that it
// is indifferent (the marginal level, rationed pro rata), > 0 that it does
// not trade.
func fillSide(os []Order, side []int32, vol int64, rel func(*Order) int) ([]fill, error) {
	fills := make([]fill, 0, len(side)/2+1)
	left := vol
	k := 0
	for ; k < len(side) && rel(&os[side[k]]) < 0; k++ {
		q := os[side[k]].Qty
		fills = append(fills, fill{side[k], q})
		left -= q
	}
	e := k
	var level int64
	for ; e < len(side) && rel(&os[side[e]]) == 0; e++ {
		level += os[side[e]].Qty // fits: CheckBook bounds each side's total
	}
	if left < 0 || left > level {
		// Cannot happen for a price inside [lo, hi]; guard the invariant.
		return nil, fmt.Errorf("auction: internal error: %d quanta for a marginal level of %d", left, level)
	}
	if left > 0 {
		fills = append(fills, prorate(os, side[k:e], left, level)...)
	}
	return fills, nil
}

// prorate shares f quanta among the orders of one price level (total quanta
// total >= f, ordered by id) pro rata to their size: each gets the floor of
// its share, and the quanta left over go one each to the largest remainders,
// ties to the smaller id. Orders that get nothing are left out.
func prorate(os []Order, level []int32, f, total int64) []fill {
	type share struct {
		fill
		rem uint64
	}
	shares := make([]share, len(level))
	left := f
	for n, idx := range level {
		hi, lo := bits.Mul64(uint64(f), uint64(os[idx].Qty))
		q, rem := bits.Div64(hi, lo, uint64(total)) // hi < total since f <= total
		shares[n] = share{fill{idx, int64(q)}, rem}
		left -= int64(q)
	}
	if left > 0 {
		byRem := make([]int, len(shares))
		for n := range byRem {
			byRem[n] = n
		}
		// Stable: among equal remainders the id order of level stands.
		slices.SortStableFunc(byRem, func(a, b int) int { return cmp.Compare(shares[b].rem, shares[a].rem) })
		for _, n := range byRem[:left] {
			shares[n].qty++
		}
	}
	out := make([]fill, 0, len(shares))
	for _, s := range shares {
		if s.qty > 0 {
			out = append(out, s.fill)
		}
	}
	return out
}

// pairTrades pairs filled sells (cheapest first) with filled buys (highest
// limit first) into bilateral trades, in that order. Both sides sum to the
// same volume.
func pairTrades(sells, buys []Fill) []Trade {
	trades := make([]Trade, 0, len(sells)+len(buys))
	i, j := 0, 0
	var remS, remB int64
	if len(sells) > 0 && len(buys) > 0 {
		remS, remB = sells[0].Qty, buys[0].Qty
	}
	for i < len(sells) && j < len(buys) {
		q := min(remS, remB)
		trades = append(trades, Trade{Sell: sells[i].ID, Buy: buys[j].ID,
			Seller: sells[i].Participant, Buyer: buys[j].Participant, Qty: q})
		if remS -= q; remS == 0 {
			if i++; i < len(sells) {
				remS = sells[i].Qty
			}
		}
		if remB -= q; remB == 0 {
			if j++; j < len(buys) {
				remB = buys[j].Qty
			}
		}
	}
	return trades
}

// sortSides returns the indices of the sell orders by price ascending and
// of the buy orders by price descending, ties by id: the canonical order.
func sortSides(os []Order) (sells, buys []int32) {
	type entry struct {
		key int64 // price for sells, -price for buys: ascending is best first
		idx int32
	}
	var es, eb []entry
	for i := range os {
		if os[i].Side == Sell {
			es = append(es, entry{os[i].Price, int32(i)})
		} else {
			eb = append(eb, entry{-os[i].Price, int32(i)})
		}
	}
	byKeyThenID := func(a, b entry) int {
		if a.key != b.key {
			return cmp.Compare(a.key, b.key)
		}
		return strings.Compare(os[a.idx].ID, os[b.idx].ID)
	}
	slices.SortFunc(es, byKeyThenID)
	slices.SortFunc(eb, byKeyThenID)
	sells = make([]int32, len(es))
	for n, e := range es {
		sells[n] = e.idx
	}
	buys = make([]int32, len(eb))
	for n, e := range eb {
		buys[n] = e.idx
	}
	return sells, buys
}
