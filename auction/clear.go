package auction

import (
	"cmp"
	"fmt"
	"math/bits"
	"slices"

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
	return m.clearChecked(b)
}

// clearChecked is Clear of a book that passed CheckBook.
func (m *Market) clearChecked(b Book) (*Result, error) {
	c := m.canonicalize(b)
	sells, buys := c.sells, c.buys
	r := &Result{
		Interval:      b.Interval,
		BookSHA256:    c.digest(),
		Orders:        len(b.Orders),
		Fee:           m.fee,
		QtyDecimals:   m.qtyDec,
		PriceDecimals: m.priceDec,
	}
	// Work with limits net of the fee for buyers: a buy order trades where
	// its limit minus the fee reaches the seller's limit.
	fee := m.fee
	sellPrice := func(e entry) int64 { return int64(e.key ^ 1<<63) }
	buyNet := func(e entry) int64 { return -int64(e.key^1<<63) - fee }

	// Walk the supply curve up and the demand curve down while the next
	// buyer still values the kWh at least as much as the next seller.
	var vol, remS, remB, lastS, lastB int64
	i, j := 0, 0
	if len(sells) > 0 && len(buys) > 0 {
		remS, remB = sells[0].qty, buys[0].qty
	}
	for i < len(sells) && j < len(buys) {
		s, d := sellPrice(sells[i]), buyNet(buys[j])
		if d < s {
			break
		}
		q := min(remS, remB)
		vol += q // fits: CheckBook bounds each side's total
		lastS, lastB = s, d
		if remS -= q; remS == 0 {
			if i++; i < len(sells) {
				remS = sells[i].qty
			}
		}
		if remB -= q; remB == 0 {
			if j++; j < len(buys) {
				remB = buys[j].qty
			}
		}
	}
	if vol == 0 {
		return r, nil // one-sided, or the curves do not overlap
	}
	// The price must keep every filled order willing (>= lastS, <= lastB)
	// and every unfilled quantity unwilling (<= next seller, >= next buyer).
	lo, hi := lastS, lastB
	if j < len(buys) {
		lo = max(lo, buyNet(buys[j]))
	}
	if i < len(sells) {
		hi = min(hi, sellPrice(sells[i]))
	}
	price := lo + decimal.NewFromInt(hi-lo).Mul(m.k).Round(0).IntPart()

	sellFills, err := fillSide(b.Orders, sells, vol, func(e entry) int { return cmp.Compare(sellPrice(e), price) })
	if err != nil {
		return nil, err
	}
	buyFills, err := fillSide(b.Orders, buys, vol, func(e entry) int { return cmp.Compare(price, buyNet(e)) })
	if err != nil {
		return nil, err
	}

	r.Cleared = true
	r.Price, r.Volume, r.PriceLow, r.PriceHigh = price, vol, lo, hi
	r.Fills = make([]Fill, 0, len(sellFills)+len(buyFills))
	var welfare int128
	for _, f := range sellFills {
		o := &b.Orders[f.idx]
		r.Fills = append(r.Fills, Fill{ID: o.ID, Participant: o.Participant, Side: Sell, Qty: f.qty, Limit: o.Price})
		welfare = welfare.sub(mul128(f.qty, o.Price))
	}
	for _, f := range buyFills {
		o := &b.Orders[f.idx]
		r.Fills = append(r.Fills, Fill{ID: o.ID, Participant: o.Participant, Side: Buy, Qty: f.qty, Limit: o.Price})
		welfare = welfare.add(mul128(f.qty, o.Price-fee))
	}
	r.welfare = welfare
	r.Trades = pairTrades(r.Fills, len(sellFills))
	return r, nil
}

// fillSide fills vol quanta from one side, walked best first, and returns
// the entries filled with the quantity each gets. rel(e) < 0 means the
// order strictly prefers trading at the price (filled whole), 0 that it is
// indifferent (the marginal level, rationed pro rata), > 0 that it does not
// trade.
func fillSide(os []Order, side []entry, vol int64, rel func(entry) int) ([]entry, error) {
	left := vol
	k := 0
	for ; k < len(side) && rel(side[k]) < 0; k++ {
		left -= side[k].qty
	}
	e := k
	var level int64
	for ; e < len(side) && rel(side[e]) == 0; e++ {
		level += side[e].qty // fits: CheckBook bounds each side's total
	}
	if left < 0 || left > level {
		// Cannot happen for a price inside [lo, hi]; guard the invariant.
		return nil, fmt.Errorf("auction: internal error: %d quanta for a marginal level of %d", left, level)
	}
	fills := side[:k:k]
	if left > 0 {
		fills = append(fills, prorate(os, side[k:e], left, level)...)
	}
	return fills, nil
}

// prorate shares f quanta among the orders of one price level (total quanta
// total >= f, ordered by id) pro rata to their size: each gets the floor of
// its share, and the quanta left over go one each to the largest remainders,
// ties to the smaller id. Orders that get nothing are left out.
func prorate(os []Order, level []entry, f, total int64) []entry {
	shares := make([]entry, len(level))
	rems := make([]uint64, len(level))
	left := f
	for n, e := range level {
		hi, lo := bits.Mul64(uint64(f), uint64(e.qty))
		q, rem := bits.Div64(hi, lo, uint64(total)) // hi < total since f <= total
		shares[n] = entry{key: e.key, qty: int64(q), idx: e.idx}
		rems[n] = rem
		left -= int64(q)
	}
	if left > 0 {
		byRem := make([]int, len(shares))
		for n := range byRem {
			byRem[n] = n
		}
		// Stable: among equal remainders the id order of level stands.
		slices.SortStableFunc(byRem, func(a, b int) int { return cmp.Compare(rems[b], rems[a]) })
		for _, n := range byRem[:left] {
			shares[n].qty++
		}
	}
	out := shares[:0]
	for _, s := range shares {
		if s.qty > 0 {
			out = append(out, s)
		}
	}
	return out
}

// pairTrades pairs the filled sells fills[:nSell] (cheapest first) with the
// filled buys fills[nSell:] (highest limit first) into bilateral trades, in
// that order. Both sides sum to the same volume.
func pairTrades(fills []Fill, nSell int) []Trade {
	trades := make([]Trade, 0, len(fills))
	i, j := 0, nSell
	var remS, remB int64
	if i < nSell && j < len(fills) {
		remS, remB = fills[i].Qty, fills[j].Qty
	}
	for i < nSell && j < len(fills) {
		q := min(remS, remB)
		trades = append(trades, Trade{SellFill: int32(i), BuyFill: int32(j), Qty: q})
		if remS -= q; remS == 0 {
			if i++; i < nSell {
				remS = fills[i].Qty
			}
		}
		if remB -= q; remB == 0 {
			if j++; j < len(fills) {
				remB = fills[j].Qty
			}
		}
	}
	return trades
}
