package settlement

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/p2pgrid/p2pgrid/auction"
	"github.com/shopspring/decimal"
)

// PostDeliverySuffix ends the Policy name of a settlement that went
// through the post-delivery market: "seller-bears-shortfall+post-delivery".
const PostDeliverySuffix = "+post-delivery"

// PostDeliveryPrefix starts the id of every post-delivery trade:
// "pdm/<interval>/<seller>/<buyer>". Ex-ante trade ids start with the
// interval (a digit), so the two kinds never share an id.
const PostDeliveryPrefix = "pdm/"

// IsPostDelivery reports whether a trade id is a post-delivery trade's.
func IsPostDelivery(id string) bool { return strings.HasPrefix(id, PostDeliveryPrefix) }

// Limit is a participant's standing limits for the post-delivery market,
// in ticks of the market's price resolution: it sells residual export at
// no less than Sell and buys residual import at no more than Buy (the
// price plus the fee).
type Limit struct{ Sell, Buy int64 }

// StandingLimits derives every participant's standing limits from the
// interval's ex-ante book, whose orders were signed before gate closure,
// so before delivery: a participant's sell limit is the highest price of
// its sell orders, its buy limit the lowest price of its buy orders,
// clamped into [FeedIn, Retail]; a side on which it placed no order (or a
// participant that placed none) gets the grid's price, FeedIn to sell and
// Retail to buy, at which trading is never worse than the grid alone.
// def holds those defaults, for participants not in the result. A bid
// curve (a v2 order message: one order per step) gives its most demanding
// steps, the highest sell step and the lowest buy step: residual energy is
// beyond what the curve traded ex ante, so it is priced as the curve's
// last, marginal step.
func StandingLimits(book auction.Book, t Tariffs, m *auction.Market) (limits map[string]Limit, def Limit, err error) {
	rules := m.Rules()
	feedIn, err := tickOf(t.FeedIn, rules.PriceDecimals)
	if err != nil {
		return nil, Limit{}, fmt.Errorf("feed-in tariff: %w", err)
	}
	retail, err := tickOf(t.Retail, rules.PriceDecimals)
	if err != nil {
		return nil, Limit{}, fmt.Errorf("retail tariff: %w", err)
	}
	def = Limit{Sell: feedIn, Buy: retail}
	limits = map[string]Limit{}
	seen := map[string][2]bool{}
	for i, o := range book.Orders {
		if err := auction.CheckName(o.Participant); err != nil {
			return nil, Limit{}, fmt.Errorf("book order #%d: participant %q: %v", i, o.Participant, err)
		}
		l, ok := limits[o.Participant]
		if !ok {
			l = def
		}
		s := seen[o.Participant]
		p := min(max(o.Price, feedIn), retail)
		switch o.Side {
		case auction.Sell:
			if !s[0] || p > l.Sell {
				l.Sell = p
			}
			s[0] = true
		case auction.Buy:
			if !s[1] || p < l.Buy {
				l.Buy = p
			}
			s[1] = true
		default:
			return nil, Limit{}, fmt.Errorf("book order #%d of %q: side %d", i, o.Participant, o.Side)
		}
		limits[o.Participant], seen[o.Participant] = l, s
	}
	return limits, def, nil
}

// tickOf converts a price to whole ticks of 10^-decimals, or says it is
// not a whole number of them.
func tickOf(d decimal.Decimal, decimals int) (int64, error) {
	s := d.Shift(int32(decimals))
	if !s.IsInteger() || s.Abs().GreaterThan(decimal.New(MaxWh, 0)) {
		return 0, fmt.Errorf("%s is not a whole number of ticks of 10^-%d", d, decimals)
	}
	return s.IntPart(), nil
}

// SettlePostDelivery runs the post-delivery market on an ex-ante
// settlement s (Settle's result, not already through this step): what
// the meters counted beyond the ex-ante trades, per participant its
// residual export (ExportWh - DeliveredWh) and residual import
// (GridImportWh, ImportWh - ReceivedWh), is offered at its standing limits
// (StandingLimits of book, the interval's ex-ante book) and cleared by the
// auction's own rule under rules (the community's market: k, fee, price
// resolution, tie-breaking), in whole Wh. A participant's export is never
// paired with its own import (pairOthers). Each pair
// becomes a trade with a PostDeliveryPrefix id, delivered in full at the
// uniform price, the buyer paying the fee as for an ex-ante trade.
//
// A buyer's missing ex-ante energy bought back in this market (its
// post-delivery purchases count against its missing Wh first) is no
// longer drawn from the grid at Retail: for those Wh the short seller's
// compensation falls from Retail - p per kWh to max(0, P + fee - p),
// where P is the post-delivery price, so that the buyer still pays no
// more than the p it agreed to, and the seller pays only for what it
// failed to deliver and only what its buyer actually lost.
//
// The result is a new settlement (s is not changed) whose Policy is
// s.Policy + PostDeliverySuffix, ex-ante trades first in their order, then
// the post-delivery trades in the auction's pairing order, statements
// rebuilt; it passes Check. It does not depend on the order of
// book.Orders, and is the same bytes for the same input.
func SettlePostDelivery(s *IntervalSettlement, book auction.Book, rules auction.Rules) (*IntervalSettlement, error) {
	if s == nil {
		return nil, errors.New("post-delivery: no settlement")
	}
	fail := func(format string, a ...any) (*IntervalSettlement, error) {
		return nil, fmt.Errorf("post-delivery interval %q: %s", s.Interval, fmt.Sprintf(format, a...))
	}
	if s.Policy != (SellerBearsShortfall{}).Name() {
		return fail("policy %q: the post-delivery market settles after %q only", s.Policy, SellerBearsShortfall{}.Name())
	}
	if book.Interval != "" && book.Interval != s.Interval {
		return fail("ex-ante book is for interval %q", book.Interval)
	}
	if err := s.Check(); err != nil {
		return fail("ex-ante settlement: %v", err)
	}
	for _, t := range s.Trades {
		if IsPostDelivery(t.ID) {
			return fail("ex-ante settlement holds post-delivery trade %q", t.ID)
		}
	}
	// The same market in whole Wh, the settlement's own quantum, with
	// room for any residual Settle accepts.
	rules.QtyDecimals = 3
	rules.MaxOrderKWh = decimal.New(MaxWh, -3)
	rules.PriceFloor, rules.PriceCap = nil, nil // limits are clamped to the tariffs
	m, err := auction.NewMarket(rules)
	if err != nil {
		return fail("market rules: %v", err)
	}
	limits, def, err := StandingLimits(book, s.Tariffs, m)
	if err != nil {
		return fail("standing limits: %v", err)
	}

	// Residuals, in the settlement's participant order (sorted), so that
	// order ids sort as participants do and ties break alike everywhere.
	pdm := auction.Book{Interval: s.Interval}
	for i, st := range s.Participants {
		l, ok := limits[st.Participant]
		if !ok {
			l = def
		}
		if exp := st.ExportWh - st.DeliveredWh; exp > 0 {
			pdm.Orders = append(pdm.Orders, auction.Order{ID: fmt.Sprintf("s%08d", i), Participant: st.Participant, Side: auction.Sell, Qty: exp, Price: l.Sell})
		}
		if imp := st.GridImportWh; imp > 0 {
			pdm.Orders = append(pdm.Orders, auction.Order{ID: fmt.Sprintf("b%08d", i), Participant: st.Participant, Side: auction.Buy, Qty: imp, Price: l.Buy})
		}
	}
	r, err := m.Clear(pdm)
	if err != nil {
		return fail("clearing residuals: %v", err)
	}

	out := *s
	out.Policy = s.Policy + PostDeliverySuffix
	out.Trades = slices.Clone(s.Trades)
	price := m.Price(r.Price)
	fee := m.Price(r.Fee)
	bought := map[string]int64{}
	for _, pr := range pairOthers(r.Fills) {
		d := kWh(pr.wh)
		out.Trades = append(out.Trades, TradeSettlement{
			ID:     PostDeliveryPrefix + s.Interval + "/" + pr.seller + "/" + pr.buyer,
			Seller: pr.seller, Buyer: pr.buyer,
			Wh: pr.wh, DeliveredWh: pr.wh, Price: price,
			Amount: price.Mul(d), Fee: fee.Mul(d), Compensation: decimal.Zero,
		})
		bought[pr.buyer] += pr.wh
	}
	if len(out.Trades) == len(s.Trades) {
		out.Participants = slices.Clone(s.Participants)
		return &out, nil
	}
	coverShortfalls(out.Trades[:len(s.Trades)], bought, price.Add(fee), s.Tariffs)

	meters := make(map[string]Metered, len(s.Participants))
	for _, st := range s.Participants {
		meters[st.Participant] = Metered{Participant: st.Participant, ImportWh: st.ImportWh, ExportWh: st.ExportWh, Missing: st.MissingIntervals > 0}
	}
	out.Participants = statements(meters, out.Trades, s.Tariffs)
	out.Grid, out.Fees = decimal.Zero, decimal.Zero
	for i := range out.Participants {
		st := &out.Participants[i]
		out.Grid = out.Grid.Add(st.GridCost).Sub(st.GridCredit)
	}
	for i := range out.Trades {
		out.Fees = out.Fees.Add(out.Trades[i].Fee)
	}
	if err := out.Check(); err != nil {
		return fail("%v", err)
	}
	return &out, nil
}

// coverShortfalls lowers the compensation of the ex-ante trades whose
// missing energy their buyer bought in the post-delivery market at cost
// (price plus fee) per kWh: each buyer's purchases (bought) cover its
// missing Wh first, spread over its short trades pro rata to their
// missing Wh as SellerBearsShortfall spreads delivery; a covered Wh costs
// its seller max(0, cost - p) instead of Retail - p.
func coverShortfalls(trades []TradeSettlement, bought map[string]int64, cost decimal.Decimal, t Tariffs) {
	buyers, byBuyer := groupTrades(trades, func(t *TradeSettlement) (string, bool) { return t.Buyer, t.MissingWh > 0 })
	// prorate splits by Wh; hand it the missing Wh as sizes.
	for _, b := range buyers {
		idx := byBuyer[b]
		var missing int64
		for _, i := range idx {
			missing += trades[i].MissingWh
		}
		covered := min(bought[b], missing)
		if covered == 0 {
			continue
		}
		sizes := make([]TradeSettlement, len(idx))
		pos := make([]int, len(idx))
		for n, i := range idx {
			sizes[n] = TradeSettlement{ID: trades[i].ID, Buyer: trades[i].Seller, Wh: trades[i].MissingWh}
			pos[n] = n
		}
		for n, c := range prorate(sizes, pos, covered, missing) {
			tr := &trades[idx[n]]
			perKWh := decimal.Max(decimal.Zero, cost.Sub(tr.Price))
			tr.Compensation = t.Retail.Sub(tr.Price).Mul(kWh(tr.MissingWh - c)).Add(perKWh.Mul(kWh(c)))
		}
	}
}

// pair is one post-delivery trade before it is priced.
type pair struct {
	seller, buyer string
	wh            int64
}

// pairOthers pairs the post-delivery market's fills (sells cheapest first,
// then buys highest first, one fill per participant and side) as the
// auction does, cheapest seller with the highest bidder, except that no
// participant is paired with itself: each sell goes to the first buys, in
// order, of other participants. With no participant on both sides that is
// the auction's own pairing. What is left then is one participant's
// export and import (only its own buys can be left for its sells); it is
// swapped into earlier pairs of others, X -> Y becoming X -> it and it ->
// Y, as far as they reach, and the rest, which no pairing can place, stays
// with the grid. Pairs are unique by seller and buyer, in order of first
// appearance.
func pairOthers(fills []auction.Fill) []pair {
	var sells, buys []auction.Fill
	for _, f := range fills {
		if f.Side == auction.Sell {
			sells = append(sells, f)
		} else {
			buys = append(buys, f)
		}
	}
	var out []pair
	at := map[[2]string]int{}
	add := func(seller, buyer string, wh int64) {
		k := [2]string{seller, buyer}
		if i, ok := at[k]; ok {
			out[i].wh += wh
			return
		}
		at[k] = len(out)
		out = append(out, pair{seller, buyer, wh})
	}
	remB := make([]int64, len(buys))
	for j, b := range buys {
		remB[j] = b.Qty
	}
	var left string
	var leftWh int64
	for _, sf := range sells {
		rem := sf.Qty
		for j := 0; j < len(buys) && rem > 0; j++ {
			if remB[j] == 0 || buys[j].Participant == sf.Participant {
				continue
			}
			q := min(rem, remB[j])
			add(sf.Participant, buys[j].Participant, q)
			rem -= q
			remB[j] -= q
		}
		if rem > 0 {
			left, leftWh = sf.Participant, leftWh+rem
		}
	}
	if leftWh == 0 {
		return out
	}
	for i := 0; i < len(out) && leftWh > 0; i++ {
		p := out[i]
		if p.wh == 0 || p.seller == left || p.buyer == left {
			continue
		}
		q := min(leftWh, p.wh)
		out[i].wh -= q
		add(p.seller, left, q)
		add(left, p.buyer, q)
		leftWh -= q
	}
	kept := out[:0]
	for _, p := range out {
		if p.wh > 0 {
			kept = append(kept, p)
		}
	}
	return kept
}
