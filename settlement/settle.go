package settlement

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/p2pgrid/p2pgrid/auction"
	"github.com/shopspring/decimal"
)

// Tariffs are the grid's prices per kWh, in the community's currency. They
// are the market's price bounds: Retail is price_cap, FeedIn price_floor.
type Tariffs struct {
	// Retail is what the grid charges per kWh imported.
	Retail decimal.Decimal `json:"retail"`
	// FeedIn is what the grid pays per kWh exported (may be negative).
	FeedIn decimal.Decimal `json:"feed_in"`
}

// Metered is what a participant's meter counted over the interval.
type Metered struct {
	Participant string // gateway id
	// ImportWh and ExportWh are the energy drawn from and put onto the
	// network, in whole Wh, each >= 0 and at most MaxWh.
	ImportWh, ExportWh int64
	// Missing says no figures arrived. ImportWh and ExportWh must then be
	// 0; the participant is settled as if it imported and exported nothing
	// and its statement is flagged (MissingIntervals = 1).
	Missing bool
}

// MaxWh bounds every energy figure Settle accepts (metered figures, trade
// sizes, a participant's totals): 10^15 Wh, so that every sum and difference
// Settle forms fits in int64.
const MaxWh = 1_000_000_000_000_000

// TradeSettlement is one bilateral trade of the auction, settled.
type TradeSettlement struct {
	ID     string // the auction's trade id, interval/sell-order/buy-order
	Seller string // participant of the sell order
	Buyer  string // participant of the buy order
	// Wh is what was traded; DeliveredWh what the policy counts as
	// delivered (0 <= DeliveredWh <= Wh); MissingWh = Wh - DeliveredWh.
	Wh, DeliveredWh, MissingWh int64
	Price                      decimal.Decimal // per kWh, the clearing price
	Amount                     decimal.Decimal // buyer -> seller
	Fee                        decimal.Decimal // buyer -> network
	Compensation               decimal.Decimal // seller -> buyer, for MissingWh
}

// Statement is one participant's account of an interval (or, summed with
// Sum, of a period). Energy is in Wh, money exact in the community's
// currency; amounts are >= 0 and say by their name which way they flow,
// except Net, Baseline and Saving, which are signed (negative: pays).
type Statement struct {
	Participant string
	// Intervals is the number of intervals summed (1 from Settle);
	// MissingIntervals how many of them were settled without metered
	// figures.
	Intervals, MissingIntervals int

	BoughtWh, SoldWh int64 // p2p, as traded
	ReceivedWh       int64 // p2p, delivered to this participant as buyer
	DeliveredWh      int64 // p2p, delivered by this participant as seller
	ImportWh         int64 // metered
	ExportWh         int64 // metered
	GridImportWh     int64 // ImportWh beyond ReceivedWh, charged Retail
	GridExportWh     int64 // ExportWh beyond DeliveredWh, plus SpilledWh; paid FeedIn
	SpilledWh        int64 // ReceivedWh beyond ImportWh, returned to the grid
	// ImbalanceWh is the metered net position minus the traded one:
	// (ExportWh - ImportWh) - (SoldWh - BoughtWh). Positive: more energy
	// put onto the network (or less drawn) than contracted.
	ImbalanceWh int64

	PaidP2P              decimal.Decimal // to sellers, for ReceivedWh
	ReceivedP2P          decimal.Decimal // from buyers, for DeliveredWh
	Fees                 decimal.Decimal // to the network
	CompensationPaid     decimal.Decimal // to buyers, for missing energy
	CompensationReceived decimal.Decimal // from sellers
	GridCost             decimal.Decimal // Retail * GridImportWh
	GridCredit           decimal.Decimal // FeedIn * GridExportWh
	// Net = ReceivedP2P - PaidP2P - Fees + CompensationReceived -
	// CompensationPaid - GridCost + GridCredit.
	Net decimal.Decimal
	// Baseline is Net without the market: FeedIn*ExportWh - Retail*ImportWh.
	Baseline decimal.Decimal
	// Saving = Net - Baseline: what the market gained the participant.
	Saving decimal.Decimal
}

// IntervalSettlement is the settlement of one interval.
type IntervalSettlement struct {
	Interval     string
	Policy       string // Policy.Name() of the policy that settled it
	Tariffs      Tariffs
	Trades       []TradeSettlement // in the auction result's trade order
	Participants []Statement       // sorted by participant, bytewise
	Grid         decimal.Decimal   // net money to the grid: GridCost - GridCredit over participants
	Fees         decimal.Decimal   // money to the network
}

// ErrInvariant is wrapped by every error reporting a broken conservation law
// or energy bound. With SellerBearsShortfall it cannot happen; it guards
// against a faulty Policy or a corrupted stored settlement.
var ErrInvariant = errors.New("settlement invariant violated")

// kWh converts whole Wh to an exact decimal number of kWh.
func kWh(wh int64) decimal.Decimal { return decimal.New(wh, -3) }

// Settle settles one interval: the auction's result r, the grid tariffs t
// and the metered figures, under policy p. interval names the interval; it
// may be empty, and then r.Interval is used; otherwise it must equal
// r.Interval when r names one.
//
// A participant of r without a Metered entry is settled as Missing. A
// Metered entry for someone who did not trade gets a statement of plain
// grid flows. The result does not depend on the order of metered.
//
// Errors name what is wrong: a malformed result, a price outside the
// tariffs (clear with price_floor = FeedIn and price_cap = Retail), a
// duplicate, negative or oversized metered figure, a policy error, or a
// broken invariant (ErrInvariant).
func Settle(interval string, r *auction.Result, t Tariffs, metered []Metered, p Policy) (*IntervalSettlement, error) {
	if r == nil {
		return nil, errors.New("settle: no auction result")
	}
	if p == nil {
		return nil, errors.New("settle: no policy")
	}
	switch {
	case interval == "":
		interval = r.Interval
	case r.Interval != "" && r.Interval != interval:
		return nil, fmt.Errorf("settle interval %q: auction result is for interval %q", interval, r.Interval)
	}
	fail := func(format string, a ...any) (*IntervalSettlement, error) {
		return nil, fmt.Errorf("settle interval %q: %s", interval, fmt.Sprintf(format, a...))
	}
	if t.FeedIn.GreaterThan(t.Retail) {
		return fail("feed-in tariff %s is above the retail tariff %s", t.FeedIn, t.Retail)
	}
	trades, err := resultTrades(r)
	if err != nil {
		return nil, fmt.Errorf("settle interval %q: auction result: %w", interval, err)
	}
	price := decimal.New(r.Price, -int32(r.PriceDecimals))
	fee := decimal.New(r.Fee, -int32(r.PriceDecimals))
	if len(trades) > 0 {
		if fee.IsNegative() {
			return fail("auction result: negative fee %s", fee)
		}
		if price.LessThan(t.FeedIn) {
			return fail("clearing price %s is below the feed-in tariff %s: clear with price_floor = feed-in", price, t.FeedIn)
		}
		if price.Add(fee).GreaterThan(t.Retail) {
			return fail("clearing price %s plus fee %s is above the retail tariff %s: clear with price_cap = retail", price, fee, t.Retail)
		}
	}
	meters, err := meterMap(metered, trades)
	if err != nil {
		return nil, fmt.Errorf("settle interval %q: %w", interval, err)
	}

	given := slices.Clone(trades)
	iv := Interval{Name: interval, Price: price, Fee: fee, Tariffs: t, Metered: meters}
	if err := p.SettleTrades(iv, trades); err != nil {
		return nil, fmt.Errorf("settle interval %q: policy %s: %w", interval, p.Name(), err)
	}
	for i := range trades {
		a, b := &given[i], &trades[i]
		if a.ID != b.ID || a.Seller != b.Seller || a.Buyer != b.Buyer || a.Wh != b.Wh || !a.Price.Equal(b.Price) {
			return nil, fmt.Errorf("settle interval %q: trade %q: policy %s changed the trade itself: %w", interval, a.ID, p.Name(), ErrInvariant)
		}
	}

	s := &IntervalSettlement{
		Interval: interval, Policy: p.Name(), Tariffs: t, Trades: trades,
		Participants: statements(meters, trades, t),
	}
	for i := range s.Participants {
		st := &s.Participants[i]
		s.Grid = s.Grid.Add(st.GridCost).Sub(st.GridCredit)
	}
	for i := range trades {
		s.Fees = s.Fees.Add(trades[i].Fee)
	}
	if err := s.Check(); err != nil {
		return nil, fmt.Errorf("settle interval %q: policy %s: %w", interval, p.Name(), err)
	}
	return s, nil
}

// resultTrades converts r's trades to Wh, checking the result's shape.
func resultTrades(r *auction.Result) ([]TradeSettlement, error) {
	if r.QtyDecimals < 0 || r.QtyDecimals > 18 || r.PriceDecimals < 0 || r.PriceDecimals > 18 {
		return nil, fmt.Errorf("decimals %d (qty) and %d (price) are outside [0, 18]", r.QtyDecimals, r.PriceDecimals)
	}
	if !r.Cleared && len(r.Trades) > 0 {
		return nil, fmt.Errorf("not cleared but has %d trades", len(r.Trades))
	}
	price := decimal.New(r.Price, -int32(r.PriceDecimals))
	trades := make([]TradeSettlement, len(r.Trades))
	ids := make(map[string]bool, len(r.Trades))
	for n, tr := range r.Trades {
		if tr.SellFill < 0 || int(tr.SellFill) >= len(r.Fills) || tr.BuyFill < 0 || int(tr.BuyFill) >= len(r.Fills) {
			return nil, fmt.Errorf("trade #%d: fill index out of range", n)
		}
		s, b := r.Sell(tr), r.Buy(tr)
		id := r.TradeID(tr)
		switch {
		case s.Side != auction.Sell:
			return nil, fmt.Errorf("trade %q: sell fill %q is a %s", id, s.ID, s.Side)
		case b.Side != auction.Buy:
			return nil, fmt.Errorf("trade %q: buy fill %q is a %s", id, b.ID, b.Side)
		case ids[id]:
			return nil, fmt.Errorf("trade %q: duplicate trade", id)
		}
		for _, f := range []auction.Fill{s, b} {
			if err := auction.CheckName(f.Participant); err != nil {
				return nil, fmt.Errorf("trade %q: fill %q: participant: %v", id, f.ID, err)
			}
		}
		ids[id] = true
		wh, err := quantaToWh(tr.Qty, r.QtyDecimals)
		if err != nil {
			return nil, fmt.Errorf("trade %q: %w", id, err)
		}
		trades[n] = TradeSettlement{ID: id, Seller: s.Participant, Buyer: b.Participant, Wh: wh, Price: price}
	}
	return trades, nil
}

// quantaToWh converts q quanta of 10^-qtyDecimals kWh to whole Wh.
func quantaToWh(q int64, qtyDecimals int) (int64, error) {
	if q <= 0 {
		return 0, fmt.Errorf("quantity %d quanta is not positive", q)
	}
	if qtyDecimals >= 3 {
		div := pow10(qtyDecimals - 3)
		if q%div != 0 {
			return 0, fmt.Errorf("%s kWh is not a whole number of Wh", decimal.New(q, -int32(qtyDecimals)))
		}
		return q / div, nil
	}
	mul := pow10(3 - qtyDecimals)
	if q > MaxWh/mul {
		return 0, fmt.Errorf("%s kWh is beyond %d Wh", decimal.New(q, -int32(qtyDecimals)), int64(MaxWh))
	}
	return q * mul, nil
}

func pow10(n int) int64 {
	p := int64(1)
	for range n {
		p *= 10
	}
	return p
}

// meterMap checks the metered figures and returns them by participant,
// adding a Missing entry for every trading participant without one.
func meterMap(metered []Metered, trades []TradeSettlement) (map[string]Metered, error) {
	meters := make(map[string]Metered, len(metered)+2*len(trades))
	for i, m := range metered {
		if err := auction.CheckName(m.Participant); err != nil {
			return nil, fmt.Errorf("metered #%d: participant %q: %v", i, m.Participant, err)
		}
		who := fmt.Sprintf("metered %q", m.Participant)
		if _, dup := meters[m.Participant]; dup {
			return nil, fmt.Errorf("%s: more than one entry", who)
		}
		if m.Missing && (m.ImportWh != 0 || m.ExportWh != 0) {
			return nil, fmt.Errorf("%s: marked missing but has figures (import %d Wh, export %d Wh)", who, m.ImportWh, m.ExportWh)
		}
		for _, f := range []struct {
			name string
			v    int64
		}{{"import", m.ImportWh}, {"export", m.ExportWh}} {
			if f.v < 0 || f.v > MaxWh {
				return nil, fmt.Errorf("%s: %s %d Wh is outside [0, 10^15]", who, f.name, f.v)
			}
		}
		meters[m.Participant] = m
	}
	for _, t := range trades {
		for _, p := range []string{t.Seller, t.Buyer} {
			if _, ok := meters[p]; !ok {
				meters[p] = Metered{Participant: p, Missing: true}
			}
		}
	}
	// Totals per participant are bounded too, so that statements fit.
	sold, bought := map[string]int64{}, map[string]int64{}
	for _, t := range trades {
		sold[t.Seller] += t.Wh
		bought[t.Buyer] += t.Wh
		if sold[t.Seller] > MaxWh || bought[t.Buyer] > MaxWh {
			return nil, fmt.Errorf("trade %q: participant totals beyond 10^15 Wh", t.ID)
		}
	}
	return meters, nil
}

// statements builds every participant's statement from the settled trades
// and the metered figures, sorted by participant.
func statements(meters map[string]Metered, trades []TradeSettlement, t Tariffs) []Statement {
	names := make([]string, 0, len(meters))
	for name := range meters {
		names = append(names, name)
	}
	slices.Sort(names)
	index := make(map[string]int, len(names))
	out := make([]Statement, len(names))
	for i, name := range names {
		index[name] = i
		m := meters[name]
		out[i] = Statement{Participant: name, Intervals: 1, ImportWh: m.ImportWh, ExportWh: m.ExportWh}
		if m.Missing {
			out[i].MissingIntervals = 1
		}
	}
	for _, tr := range trades {
		s, b := &out[index[tr.Seller]], &out[index[tr.Buyer]]
		s.SoldWh += tr.Wh
		s.DeliveredWh += tr.DeliveredWh
		s.ReceivedP2P = s.ReceivedP2P.Add(tr.Amount)
		s.CompensationPaid = s.CompensationPaid.Add(tr.Compensation)
		b.BoughtWh += tr.Wh
		b.ReceivedWh += tr.DeliveredWh
		b.PaidP2P = b.PaidP2P.Add(tr.Amount)
		b.Fees = b.Fees.Add(tr.Fee)
		b.CompensationReceived = b.CompensationReceived.Add(tr.Compensation)
	}
	for i := range out {
		st := &out[i]
		st.GridImportWh = max(0, st.ImportWh-st.ReceivedWh)
		st.SpilledWh = max(0, st.ReceivedWh-st.ImportWh)
		st.GridExportWh = st.ExportWh - st.DeliveredWh + st.SpilledWh
		st.ImbalanceWh = (st.ExportWh - st.ImportWh) - (st.SoldWh - st.BoughtWh)
		st.GridCost = t.Retail.Mul(kWh(st.GridImportWh))
		st.GridCredit = t.FeedIn.Mul(kWh(st.GridExportWh))
		st.Net = st.net()
		st.Baseline = t.FeedIn.Mul(kWh(st.ExportWh)).Sub(t.Retail.Mul(kWh(st.ImportWh)))
		st.Saving = st.Net.Sub(st.Baseline)
	}
	return out
}

// net is the sum of the statement's money flows, signed.
func (s *Statement) net() decimal.Decimal {
	return s.ReceivedP2P.Sub(s.PaidP2P).Sub(s.Fees).
		Add(s.CompensationReceived).Sub(s.CompensationPaid).
		Sub(s.GridCost).Add(s.GridCredit)
}

// Check verifies the settlement's conservation laws and energy bounds,
// whichever policy produced it:
//
//   - every trade: 0 <= DeliveredWh <= Wh and MissingWh = Wh - DeliveredWh;
//   - every statement: energy figures in [0, MaxWh], DeliveredWh <= SoldWh,
//     DeliveredWh <= ExportWh, ReceivedWh <= BoughtWh; the grid flows follow
//     from the metered and p2p energy (GridImportWh = max(0, ImportWh -
//     ReceivedWh), SpilledWh = max(0, ReceivedWh - ImportWh), GridExportWh =
//     ExportWh - DeliveredWh + SpilledWh), so ImportWh - ExportWh =
//     GridImportWh - GridExportWh + ReceivedWh - DeliveredWh; ImbalanceWh is
//     as documented; Net is the sum of its flows and Saving = Net - Baseline;
//   - statements and trades agree: traded, delivered, paid, compensation
//     and fee totals match on both sides;
//   - participants are sorted and unique;
//   - money: the sum over participants of Net, plus Grid, plus Fees, is
//     exactly zero.
//
// Errors wrap ErrInvariant.
func (s *IntervalSettlement) Check() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%s: %w", fmt.Sprintf(format, a...), ErrInvariant)
	}
	var traded, delivered int64
	var amount, comp, fees decimal.Decimal
	for _, t := range s.Trades {
		if t.Wh <= 0 || t.Wh > MaxWh || t.DeliveredWh < 0 || t.DeliveredWh > t.Wh || t.MissingWh != t.Wh-t.DeliveredWh {
			return bad("trade %q: traded %d Wh, delivered %d Wh, missing %d Wh", t.ID, t.Wh, t.DeliveredWh, t.MissingWh)
		}
		traded += t.Wh
		delivered += t.DeliveredWh
		amount = amount.Add(t.Amount)
		comp = comp.Add(t.Compensation)
		fees = fees.Add(t.Fee)
	}
	var sold, bought, dSold, rBought, gridIn, gridOut int64
	var paid, received, cPaid, cReceived, sFees, grid, total decimal.Decimal
	for i, st := range s.Participants {
		if i > 0 && strings.Compare(s.Participants[i-1].Participant, st.Participant) >= 0 {
			return bad("participants not sorted or not unique at %q", st.Participant)
		}
		who := st.Participant
		switch {
		case st.DeliveredWh < 0 || st.DeliveredWh > st.SoldWh:
			return bad("participant %q: delivered %d Wh of %d Wh sold", who, st.DeliveredWh, st.SoldWh)
		case st.DeliveredWh > st.ExportWh:
			return bad("participant %q: delivered %d Wh but exported %d Wh", who, st.DeliveredWh, st.ExportWh)
		case st.ReceivedWh < 0 || st.ReceivedWh > st.BoughtWh:
			return bad("participant %q: received %d Wh of %d Wh bought", who, st.ReceivedWh, st.BoughtWh)
		case !inRange(st.ImportWh, st.ExportWh, st.SoldWh, st.BoughtWh, st.ReceivedWh, st.GridImportWh, st.GridExportWh, st.SpilledWh):
			return bad("participant %q: energy figure outside [0, 10^15] Wh", who)
		case st.GridImportWh != max(0, st.ImportWh-st.ReceivedWh) || st.SpilledWh != max(0, st.ReceivedWh-st.ImportWh) ||
			st.GridExportWh != st.ExportWh-st.DeliveredWh+st.SpilledWh:
			return bad("participant %q: grid flows (import %d Wh, export %d Wh, spilled %d Wh) do not follow from metered and p2p energy",
				who, st.GridImportWh, st.GridExportWh, st.SpilledWh)
		case st.ImportWh-st.ExportWh != st.GridImportWh-st.GridExportWh+st.ReceivedWh-st.DeliveredWh:
			return bad("participant %q: energy does not balance", who)
		case st.ImbalanceWh != (st.ExportWh-st.ImportWh)-(st.SoldWh-st.BoughtWh):
			return bad("participant %q: imbalance %d Wh is not (export - import) - (sold - bought)", who, st.ImbalanceWh)
		case !st.Net.Equal(st.net()):
			return bad("participant %q: net %s is not the sum of its flows %s", who, st.Net, st.net())
		case !st.Saving.Equal(st.Net.Sub(st.Baseline)):
			return bad("participant %q: saving %s is not net %s minus baseline %s", who, st.Saving, st.Net, st.Baseline)
		}
		sold += st.SoldWh
		bought += st.BoughtWh
		dSold += st.DeliveredWh
		rBought += st.ReceivedWh
		gridIn += st.GridImportWh
		gridOut += st.GridExportWh
		paid = paid.Add(st.PaidP2P)
		received = received.Add(st.ReceivedP2P)
		cPaid = cPaid.Add(st.CompensationPaid)
		cReceived = cReceived.Add(st.CompensationReceived)
		sFees = sFees.Add(st.Fees)
		grid = grid.Add(st.GridCost).Sub(st.GridCredit)
		total = total.Add(st.Net)
	}
	switch {
	case sold != traded || bought != traded:
		return bad("traded %d Wh, but participants sold %d Wh and bought %d Wh", traded, sold, bought)
	case dSold != delivered || rBought != delivered:
		return bad("delivered %d Wh, but participants delivered %d Wh and received %d Wh", delivered, dSold, rBought)
	case !paid.Equal(amount) || !received.Equal(amount):
		return bad("trades amount to %s, but buyers paid %s and sellers received %s", amount, paid, received)
	case !cPaid.Equal(comp) || !cReceived.Equal(comp):
		return bad("compensation %s, but sellers paid %s and buyers received %s", comp, cPaid, cReceived)
	case !sFees.Equal(fees) || !s.Fees.Equal(fees):
		return bad("trade fees %s, statements %s, total %s", fees, sFees, s.Fees)
	case !s.Grid.Equal(grid):
		return bad("grid %s, but statements owe the grid %s", s.Grid, grid)
	}
	if sum := total.Add(s.Grid).Add(s.Fees); !sum.IsZero() {
		return bad("money does not sum to zero: net %s + grid %s + fees %s = %s", total, s.Grid, s.Fees, sum)
	}
	return nil
}

// inRange reports whether every v is in [0, MaxWh].
func inRange(vs ...int64) bool {
	for _, v := range vs {
		if v < 0 || v > MaxWh {
			return false
		}
	}
	return true
}
