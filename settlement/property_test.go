package settlement

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/p2pgrid/p2pgrid/auction"
	"github.com/shopspring/decimal"
	"pgregory.net/rapid"
)

// Property tests over random intervals: random books cleared by the auction
// under a market whose price floor and cap are the feed-in and retail
// tariffs, and random metered figures that hit the boundaries (nothing
// exported, exactly what was sold, more) as well as missing figures.

type drawn struct {
	r        *auction.Result
	tariffs  Tariffs
	metered  []Metered
	price    decimal.Decimal
	fee      decimal.Decimal
	qtyScale int64         // Wh per quantum
	book     auction.Book  // the book r clears
	rules    auction.Rules // the market that cleared it
}

var people = []string{"p0", "p1", "p2", "p3", "p4", "p5", "p6"}

func drawInterval(t *rapid.T) drawn {
	qd := rapid.SampledFrom([]int{3, 2, 1}).Draw(t, "qty_decimals")
	pd := rapid.SampledFrom([]int{6, 4, 2}).Draw(t, "price_decimals")
	feedInCents := rapid.Int64Range(-5, 10).Draw(t, "feed_in_cents")
	retailCents := feedInCents + rapid.Int64Range(0, 30).Draw(t, "retail_minus_feed_in_cents")
	feeCents := rapid.SampledFrom([]int64{0, 0, 1, 2}).Draw(t, "fee_cents")
	feedIn, retail := decimal.New(feedInCents, -2), decimal.New(retailCents, -2)

	rules := auction.DefaultRules()
	rules.QtyDecimals, rules.PriceDecimals = qd, pd
	rules.K = decimal.RequireFromString(rapid.SampledFrom([]string{"0", "0.5", "1", "0.333"}).Draw(t, "k"))
	rules.Fee = decimal.New(feeCents, -2)
	rules.PriceFloor, rules.PriceCap = &feedIn, &retail
	m, err := auction.NewMarket(rules)
	if err != nil {
		t.Fatalf("NewMarket: %v", err)
	}
	scale := decimal.New(1, int32(pd-2)).IntPart() // ticks per cent
	book := auction.Book{Interval: "2026-11-22T10:15Z"}
	n := rapid.IntRange(0, 10).Draw(t, "orders")
	for i := range n {
		side := rapid.SampledFrom([]auction.Side{auction.Buy, auction.Sell}).Draw(t, "side")
		o := auction.Order{
			ID:          fmt.Sprintf("o%d", i),
			Participant: rapid.SampledFrom(people[:6]).Draw(t, "participant"),
			Side:        side,
			Qty:         rapid.Int64Range(1, 40).Draw(t, "qty"),
			Price:       rapid.Int64Range(feedInCents*scale, retailCents*scale).Draw(t, "price"),
		}
		book.Orders = append(book.Orders, o)
	}
	r, err := m.Clear(book)
	if err != nil {
		t.Fatalf("Clear: %v", err)
	}
	qtyScale := decimal.New(1, int32(3-qd)).IntPart()
	sold, bought := map[string]int64{}, map[string]int64{}
	for _, tr := range r.Trades {
		sold[r.Sell(tr).Participant] += tr.Qty * qtyScale
		bought[r.Buy(tr).Participant] += tr.Qty * qtyScale
	}
	// p6 never trades: it gets plain grid flows or no entry at all.
	var metered []Metered
	for _, p := range people {
		switch rapid.IntRange(0, 9).Draw(t, "meter_kind_"+p) {
		case 0: // no entry: settled as missing if it traded
			continue
		case 1:
			metered = append(metered, Metered{Participant: p, Missing: true})
			continue
		}
		around := func(v int64, label string) int64 {
			return rapid.OneOf(rapid.Just(int64(0)), rapid.Just(v), rapid.Int64Range(0, v),
				rapid.Int64Range(v, v+5000)).Draw(t, label)
		}
		metered = append(metered, Metered{
			Participant: p,
			ExportWh:    around(sold[p], "export_"+p),
			ImportWh:    around(bought[p], "import_"+p),
		})
	}
	price := decimal.New(r.Price, -int32(pd))
	if !r.Cleared {
		price = decimal.Zero
	}
	return drawn{r: r, tariffs: Tariffs{Retail: retail, FeedIn: feedIn}, metered: metered,
		price: price, fee: decimal.New(r.Fee, -int32(pd)), qtyScale: qtyScale, book: book, rules: rules}
}

func settleDrawn(t *rapid.T, d drawn) *IntervalSettlement {
	s, err := Settle("", d.r, d.tariffs, d.metered, SellerBearsShortfall{})
	if err != nil {
		t.Fatalf("Settle: %v", err)
	}
	return s
}

// TestPropertyMoneyConserved: the money flows of every interval sum to
// exactly zero, recomputed here from the statements' parts.
func TestPropertyMoneyConserved(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		d := drawInterval(t)
		s := settleDrawn(t, d)
		sum := s.Grid.Add(s.Fees)
		var fees, grid decimal.Decimal
		for _, st := range s.Participants {
			flows := st.ReceivedP2P.Sub(st.PaidP2P).Sub(st.Fees).Add(st.CompensationReceived).
				Sub(st.CompensationPaid).Sub(st.GridCost).Add(st.GridCredit)
			if !flows.Equal(st.Net) {
				t.Fatalf("%s: net %s, flows %s", st.Participant, st.Net, flows)
			}
			sum = sum.Add(st.Net)
			fees = fees.Add(st.Fees)
			grid = grid.Add(st.GridCost).Sub(st.GridCredit)
			if !st.GridCost.Equal(d.tariffs.Retail.Mul(kWh(st.GridImportWh))) ||
				!st.GridCredit.Equal(d.tariffs.FeedIn.Mul(kWh(st.GridExportWh))) {
				t.Fatalf("%s: grid money does not follow the tariffs", st.Participant)
			}
		}
		if !sum.IsZero() {
			t.Fatalf("sum of net + grid + fees = %s, want exactly 0", sum)
		}
		if !fees.Equal(s.Fees) || !grid.Equal(s.Grid) {
			t.Fatalf("fees %s vs %s, grid %s vs %s", fees, s.Fees, grid, s.Grid)
		}
		// Budget balance with the auction: all trades delivered means buyers
		// pay exactly what the auction says.
		var amount decimal.Decimal
		for _, tr := range s.Trades {
			amount = amount.Add(tr.Amount).Add(tr.Fee)
		}
		full := true
		for _, tr := range s.Trades {
			full = full && tr.MissingWh == 0
		}
		if full && !amount.Equal(d.r.BuyersPay()) {
			t.Fatalf("fully delivered: buyers paid %s, auction says %s", amount, d.r.BuyersPay())
		}
	})
}

// TestPropertyEnergyBounds: delivered <= traded per trade and participant;
// a seller delivers exactly min(export, sold), shared pro rata within one
// Wh of the exact share; the grid takes the rest; energy balances.
func TestPropertyEnergyBounds(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		d := drawInterval(t)
		s := settleDrawn(t, d)
		var traded int64
		for i, tr := range s.Trades {
			if tr.DeliveredWh < 0 || tr.DeliveredWh > tr.Wh || tr.MissingWh != tr.Wh-tr.DeliveredWh {
				t.Fatalf("trade %s: %d of %d Wh delivered, %d missing", tr.ID, tr.DeliveredWh, tr.Wh, tr.MissingWh)
			}
			if tr.Wh != d.r.Trades[i].Qty*d.qtyScale {
				t.Fatalf("trade %s: %d Wh, auction %d quanta", tr.ID, tr.Wh, d.r.Trades[i].Qty)
			}
			traded += tr.Wh
		}
		if traded != d.r.Volume*d.qtyScale {
			t.Fatalf("traded %d Wh, auction volume %d quanta", traded, d.r.Volume)
		}
		byName := map[string]Statement{}
		var netMetered, netGrid int64
		for _, st := range s.Participants {
			byName[st.Participant] = st
			if st.DeliveredWh != min(st.ExportWh, st.SoldWh) {
				t.Fatalf("%s: delivered %d, export %d, sold %d", st.Participant, st.DeliveredWh, st.ExportWh, st.SoldWh)
			}
			if st.ReceivedWh > st.BoughtWh || st.ReceivedWh < 0 {
				t.Fatalf("%s: received %d of %d bought", st.Participant, st.ReceivedWh, st.BoughtWh)
			}
			if st.GridImportWh != max(0, st.ImportWh-st.ReceivedWh) || st.GridExportWh != st.ExportWh-st.DeliveredWh+st.SpilledWh {
				t.Fatalf("%s: grid flows %+v", st.Participant, st)
			}
			netMetered += st.ImportWh - st.ExportWh
			netGrid += st.GridImportWh - st.GridExportWh
		}
		if netMetered != netGrid {
			t.Fatalf("community draws %d Wh net, the grid supplied %d", netMetered, netGrid)
		}
		for _, p := range people {
			if _, ok := byName[p]; !ok {
				continue
			}
			st := byName[p]
			if st.SoldWh == 0 {
				continue
			}
			for _, tr := range s.Trades {
				if tr.Seller != p {
					continue
				}
				// |d*Q - D*q| < Q
				diff := tr.DeliveredWh*st.SoldWh - st.DeliveredWh*tr.Wh
				if diff <= -st.SoldWh || diff >= st.SoldWh {
					t.Fatalf("trade %s: %d Wh delivered, exact share %d*%d/%d", tr.ID, tr.DeliveredWh, st.DeliveredWh, tr.Wh, st.SoldWh)
				}
			}
		}
		for _, m := range d.metered {
			if m.Missing && byName[m.Participant].MissingIntervals != 1 {
				t.Fatalf("%s: missing figures not flagged", m.Participant)
			}
		}
	})
}

// TestPropertyHonestParticipants states the guarantees of
// SellerBearsShortfall.
//
// An honest buyer (it sells nothing and imports at least what it bought,
// B <= I) pays the clearing price p plus the fee for every kWh delivered to
// it, and p, not Retail, for every kWh its sellers failed to deliver: the
// grid charges Retail for it and the seller pays back Retail - p. Exactly:
//
//	Net    = -(p+fee)*R - p*M - Retail*(I-B) + FeedIn*E
//	Saving = (Retail-p-fee)*R + (Retail-p)*M >= 0
//
// with R received and M = B - R missing. So it never pays more than Retail
// per missing kWh and is never worse off than buying everything from the
// grid.
//
// An honest seller (it buys nothing and exports at least what it sold)
// gets p instead of FeedIn for every kWh sold: Saving = (p-FeedIn)*S >= 0.
// A participant that did not trade gets exactly its baseline.
func TestPropertyHonestParticipants(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		d := drawInterval(t)
		s := settleDrawn(t, d)
		retail, feedIn, p, fee := d.tariffs.Retail, d.tariffs.FeedIn, d.price, d.fee
		for _, st := range s.Participants {
			switch {
			case st.SoldWh == 0 && st.BoughtWh == 0:
				if !st.Net.Equal(st.Baseline) || !st.Saving.IsZero() {
					t.Fatalf("%s did not trade: net %s, baseline %s", st.Participant, st.Net, st.Baseline)
				}
			case st.SoldWh == 0 && st.ImportWh >= st.BoughtWh:
				r, m := kWh(st.ReceivedWh), kWh(st.BoughtWh-st.ReceivedWh)
				net := p.Add(fee).Mul(r).Neg().Sub(p.Mul(m)).Sub(retail.Mul(kWh(st.ImportWh - st.BoughtWh))).Add(feedIn.Mul(kWh(st.ExportWh)))
				saving := retail.Sub(p).Sub(fee).Mul(r).Add(retail.Sub(p).Mul(m))
				if !st.Net.Equal(net) || !st.Saving.Equal(saving) {
					t.Fatalf("honest buyer %s: net %s saving %s, want %s and %s", st.Participant, st.Net, st.Saving, net, saving)
				}
				if st.Saving.IsNegative() {
					t.Fatalf("honest buyer %s is worse off than with the grid alone: %s", st.Participant, st.Saving)
				}
				// Per missing kWh: what the grid charges minus what the seller
				// pays back is at most Retail (it is p).
				for _, tr := range s.Trades {
					if tr.Buyer != st.Participant || tr.MissingWh == 0 {
						continue
					}
					perKWh := retail.Mul(kWh(tr.MissingWh)).Sub(tr.Compensation).Div(kWh(tr.MissingWh))
					if perKWh.GreaterThan(retail) || !perKWh.Equal(p) {
						t.Fatalf("trade %s: buyer pays %s per missing kWh (retail %s, price %s)", tr.ID, perKWh, retail, p)
					}
				}
			case st.BoughtWh == 0 && st.ExportWh >= st.SoldWh:
				want := p.Sub(feedIn).Mul(kWh(st.SoldWh))
				if !st.Saving.Equal(want) || st.Saving.IsNegative() {
					t.Fatalf("honest seller %s: saving %s, want %s", st.Participant, st.Saving, want)
				}
			}
		}
	})
}

// TestPropertyDeterministic: permuting the metered figures gives
// byte-identical JSON, which decodes and re-encodes to the same bytes.
func TestPropertyDeterministic(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		d := drawInterval(t)
		want, err := settleDrawn(t, d).MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		d.metered = rapid.Permutation(d.metered).Draw(t, "permuted")
		got, err := settleDrawn(t, d).MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("permuted metered input changed the output:\n%s\n%s", want, got)
		}
		s, err := DecodeIntervalSettlement(got)
		if err != nil {
			t.Fatalf("decode: %v\n%s", err, got)
		}
		again, err := s.MarshalJSON()
		if err != nil || !bytes.Equal(again, got) {
			t.Fatalf("round trip (%v):\n%s\n%s", err, got, again)
		}
	})
}

// TestPropertyPeriodTotals: summing statements and community totals over
// several intervals keeps the identities of a single interval.
func TestPropertyPeriodTotals(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		n := rapid.IntRange(1, 4).Draw(t, "intervals")
		var all []*IntervalSettlement
		per := map[string][]Statement{}
		for range n {
			s := settleDrawn(t, drawInterval(t))
			all = append(all, s)
			for _, st := range s.Participants {
				per[st.Participant] = append(per[st.Participant], st)
			}
		}
		total := decimal.Zero
		for p, sts := range per {
			sum := Sum(sts...)
			if sum.Participant != p || sum.Intervals != len(sts) {
				t.Fatalf("Sum: participant %q intervals %d", sum.Participant, sum.Intervals)
			}
			if !sum.Net.Equal(sum.net()) || !sum.Saving.Equal(sum.Net.Sub(sum.Baseline)) {
				t.Fatalf("%s: summed statement inconsistent: %+v", p, sum)
			}
			total = total.Add(sum.Net)
		}
		c := CommunityTotals(all...)
		if !total.Add(c.Grid).Add(c.Fees).IsZero() {
			t.Fatalf("period money does not sum to zero: %s + %s + %s", total, c.Grid, c.Fees)
		}
		if c.LocalShare.IsNegative() || c.LocalShare.GreaterThan(decimal.NewFromInt(1)) {
			t.Fatalf("local share %s", c.LocalShare)
		}
		if c.LocalWh+c.MissingWh != c.TradedWh || c.Intervals != n {
			t.Fatalf("community energy: %+v", c)
		}
	})
}
