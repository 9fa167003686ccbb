package settlement

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/p2pgrid/p2pgrid/auction"
	"github.com/shopspring/decimal"
)

const testInterval = "2026-11-22T12:00Z"

// tr is a trade for buildResult: seller and buyer participants, Wh.
type tr struct {
	seller, buyer string
	wh            int64
}

// buildResult builds an auction result by hand (Wh quanta, micro ticks):
// one sell fill "<seller>-sell" per seller and one buy fill "<buyer>-buy"
// per buyer, in order of first appearance, and the trades in the order
// given.
func buildResult(price, fee string, trades ...tr) *auction.Result {
	r := &auction.Result{Interval: testInterval, QtyDecimals: 3, PriceDecimals: 6, Cleared: len(trades) > 0}
	r.Price = decimal.RequireFromString(price).Shift(6).IntPart()
	r.Fee = decimal.RequireFromString(fee).Shift(6).IntPart()
	fill := map[string]int32{}
	index := func(p string, side auction.Side) int32 {
		id := p + "-" + side.String()
		if i, ok := fill[id]; ok {
			return i
		}
		fill[id] = int32(len(r.Fills))
		r.Fills = append(r.Fills, auction.Fill{ID: id, Participant: p, Side: side})
		return fill[id]
	}
	for _, t := range trades {
		s, b := index(t.seller, auction.Sell), index(t.buyer, auction.Buy)
		r.Fills[s].Qty += t.wh
		r.Fills[b].Qty += t.wh
		r.Trades = append(r.Trades, auction.Trade{SellFill: s, BuyFill: b, Qty: t.wh})
		r.Volume += t.wh
	}
	return r
}

func tariffs(retail, feedIn string) Tariffs {
	return Tariffs{Retail: decimal.RequireFromString(retail), FeedIn: decimal.RequireFromString(feedIn)}
}

// tradeLine and statementLine print every field, money in shortest form,
// so that expectations are written out in full.
func tradeLine(t TradeSettlement) string {
	return fmt.Sprintf("%s %s->%s wh=%d d=%d m=%d p=%s amount=%s fee=%s comp=%s", t.ID, t.Seller, t.Buyer,
		t.Wh, t.DeliveredWh, t.MissingWh, canonical(t.Price), canonical(t.Amount), canonical(t.Fee), canonical(t.Compensation))
}

func statementLine(s Statement) string {
	c := canonical
	return fmt.Sprintf("%s n=%d miss=%d | b=%d s=%d r=%d d=%d i=%d e=%d gi=%d ge=%d sp=%d imb=%d | "+
		"paid=%s recv=%s fees=%s cpaid=%s crecv=%s gcost=%s gcred=%s | net=%s base=%s save=%s",
		s.Participant, s.Intervals, s.MissingIntervals, s.BoughtWh, s.SoldWh, s.ReceivedWh, s.DeliveredWh,
		s.ImportWh, s.ExportWh, s.GridImportWh, s.GridExportWh, s.SpilledWh, s.ImbalanceWh,
		c(s.PaidP2P), c(s.ReceivedP2P), c(s.Fees), c(s.CompensationPaid), c(s.CompensationReceived),
		c(s.GridCost), c(s.GridCredit), c(s.Net), c(s.Baseline), c(s.Saving))
}

func tid(seller, buyer string) string {
	return testInterval + "/" + seller + "-sell/" + buyer + "-buy"
}

// settleCase is a hand-worked interval. Every figure of want was computed
// by hand, as the comments show; statement lines list, in order: bought,
// sold, received, delivered, import, export, grid import, grid export,
// spilled, imbalance (Wh); paid p2p, received p2p, fees, compensation paid
// and received, grid cost and credit; net, baseline, saving.
type settleCase struct {
	name       string
	result     *auction.Result
	tariffs    Tariffs
	metered    []Metered
	trades     []string
	statements []string
	grid, fees string
}

// workedExample is the example of docs/settlement.md. Retail 0.30, feed-in
// 0.05, price 0.15, fee 0.01.
//
// h1 sold 2000 Wh (1500 to h4, 500 to h5) but exported 1600: D = 1600,
// pro rata 1600*1500/2000 = 1200 to h4, 1600*500/2000 = 400 to h5; missing
// 300 and 100. h2 sold 1000 to h5 and exported 1300: 300 surplus to the
// grid. h4 imported 2000: 800 from the grid. h5 received 1400 but imported
// only 1200: 200 spilled. h6 did not trade.
//
//	h1->h4: amount 0.15*1.2 = 0.18, fee 0.01*1.2 = 0.012, comp (0.30-0.15)*0.3 = 0.045
//	h1->h5: amount 0.15*0.4 = 0.06, fee 0.004, comp 0.15*0.1 = 0.015
//	h2->h5: amount 0.15, fee 0.01, comp 0
//	h1: net 0.24 - 0.06 = 0.18; baseline 0.05*1.6 = 0.08; saving 0.10
//	h2: net 0.15 + 0.05*0.3 = 0.165; baseline 0.05*1.3 = 0.065; saving 0.10
//	h4: net -0.18 - 0.012 + 0.045 - 0.30*0.8 = -0.387; baseline -0.60; saving 0.213
//	    (= (0.30-0.15-0.01)*1.2 + (0.30-0.15)*0.3)
//	h5: net -0.21 - 0.014 + 0.015 + 0.05*0.2 = -0.199; baseline -0.36; saving 0.161
//	h6: net -0.30*0.7 = -0.21 = baseline
//	grid 0.24 + 0.21 - 0.015 - 0.01 = 0.425; fees 0.026;
//	0.18 + 0.165 - 0.387 - 0.199 - 0.21 + 0.425 + 0.026 = 0
var workedExample = settleCase{
	name:    "worked example: seller shortfall with compensation, surplus, spill",
	result:  buildResult("0.15", "0.01", tr{"h1", "h4", 1500}, tr{"h1", "h5", 500}, tr{"h2", "h5", 1000}),
	tariffs: tariffs("0.30", "0.05"),
	metered: []Metered{
		{Participant: "h6", ImportWh: 700},
		{Participant: "h5", ImportWh: 1200},
		{Participant: "h4", ImportWh: 2000},
		{Participant: "h2", ExportWh: 1300},
		{Participant: "h1", ExportWh: 1600},
	},
	trades: []string{
		tid("h1", "h4") + " h1->h4 wh=1500 d=1200 m=300 p=0.15 amount=0.18 fee=0.012 comp=0.045",
		tid("h1", "h5") + " h1->h5 wh=500 d=400 m=100 p=0.15 amount=0.06 fee=0.004 comp=0.015",
		tid("h2", "h5") + " h2->h5 wh=1000 d=1000 m=0 p=0.15 amount=0.15 fee=0.01 comp=0",
	},
	statements: []string{
		"h1 n=1 miss=0 | b=0 s=2000 r=0 d=1600 i=0 e=1600 gi=0 ge=0 sp=0 imb=-400 | paid=0 recv=0.24 fees=0 cpaid=0.06 crecv=0 gcost=0 gcred=0 | net=0.18 base=0.08 save=0.1",
		"h2 n=1 miss=0 | b=0 s=1000 r=0 d=1000 i=0 e=1300 gi=0 ge=300 sp=0 imb=300 | paid=0 recv=0.15 fees=0 cpaid=0 crecv=0 gcost=0 gcred=0.015 | net=0.165 base=0.065 save=0.1",
		"h4 n=1 miss=0 | b=1500 s=0 r=1200 d=0 i=2000 e=0 gi=800 ge=0 sp=0 imb=-500 | paid=0.18 recv=0 fees=0.012 cpaid=0 crecv=0.045 gcost=0.24 gcred=0 | net=-0.387 base=-0.6 save=0.213",
		"h5 n=1 miss=0 | b=1500 s=0 r=1400 d=0 i=1200 e=0 gi=0 ge=200 sp=200 imb=300 | paid=0.21 recv=0 fees=0.014 cpaid=0 crecv=0.015 gcost=0 gcred=0.01 | net=-0.199 base=-0.36 save=0.161",
		"h6 n=1 miss=0 | b=0 s=0 r=0 d=0 i=700 e=0 gi=700 ge=0 sp=0 imb=-700 | paid=0 recv=0 fees=0 cpaid=0 crecv=0 gcost=0.21 gcred=0 | net=-0.21 base=-0.21 save=0",
	},
	grid: "0.425", fees: "0.026",
}

var settleCases = []settleCase{
	{
		// h1 sells 1 kWh at 0.15 to h4 and exports exactly that; h4
		// imports exactly that. h1 gains 0.15 - 0.05 = 0.10 over feed-in,
		// h4 saves 0.30 - 0.15 = 0.15 over retail.
		name:    "full delivery",
		result:  buildResult("0.15", "0", tr{"h1", "h4", 1000}),
		tariffs: tariffs("0.30", "0.05"),
		metered: []Metered{{Participant: "h1", ExportWh: 1000}, {Participant: "h4", ImportWh: 1000}},
		trades:  []string{tid("h1", "h4") + " h1->h4 wh=1000 d=1000 m=0 p=0.15 amount=0.15 fee=0 comp=0"},
		statements: []string{
			"h1 n=1 miss=0 | b=0 s=1000 r=0 d=1000 i=0 e=1000 gi=0 ge=0 sp=0 imb=0 | paid=0 recv=0.15 fees=0 cpaid=0 crecv=0 gcost=0 gcred=0 | net=0.15 base=0.05 save=0.1",
			"h4 n=1 miss=0 | b=1000 s=0 r=1000 d=0 i=1000 e=0 gi=0 ge=0 sp=0 imb=0 | paid=0.15 recv=0 fees=0 cpaid=0 crecv=0 gcost=0 gcred=0 | net=-0.15 base=-0.3 save=0.15",
		},
		grid: "0", fees: "0",
	},
	workedExample,
	{
		// h4 bought 1 kWh, all delivered, but imported only 0.4: 0.6 kWh
		// spilled back to the grid at feed-in, 0.05*0.6 = 0.03. Net -0.15
		// + 0.03 = -0.12, which happens to equal retail for 0.4 kWh.
		name:    "buyer under-consumption spill",
		result:  buildResult("0.15", "0", tr{"h1", "h4", 1000}),
		tariffs: tariffs("0.30", "0.05"),
		metered: []Metered{{Participant: "h1", ExportWh: 1000}, {Participant: "h4", ImportWh: 400}},
		trades:  []string{tid("h1", "h4") + " h1->h4 wh=1000 d=1000 m=0 p=0.15 amount=0.15 fee=0 comp=0"},
		statements: []string{
			"h1 n=1 miss=0 | b=0 s=1000 r=0 d=1000 i=0 e=1000 gi=0 ge=0 sp=0 imb=0 | paid=0 recv=0.15 fees=0 cpaid=0 crecv=0 gcost=0 gcred=0 | net=0.15 base=0.05 save=0.1",
			"h4 n=1 miss=0 | b=1000 s=0 r=1000 d=0 i=400 e=0 gi=0 ge=600 sp=600 imb=600 | paid=0.15 recv=0 fees=0 cpaid=0 crecv=0 gcost=0 gcred=0.03 | net=-0.12 base=-0.12 save=0",
		},
		grid: "-0.03", fees: "0",
	},
	{
		// h1 sold 1 kWh, exported 2.5 and imported 0.1 in the interval:
		// 1.5 kWh surplus at feed-in (0.075), 0.1 kWh at retail (0.03).
		// Net 0.15 - 0.03 + 0.075 = 0.195; baseline 0.125 - 0.03 = 0.095.
		// Imbalance (2500 - 100) - 1000 = 1400.
		name:    "seller surplus to grid",
		result:  buildResult("0.15", "0", tr{"h1", "h4", 1000}),
		tariffs: tariffs("0.30", "0.05"),
		metered: []Metered{{Participant: "h1", ImportWh: 100, ExportWh: 2500}, {Participant: "h4", ImportWh: 1000}},
		trades:  []string{tid("h1", "h4") + " h1->h4 wh=1000 d=1000 m=0 p=0.15 amount=0.15 fee=0 comp=0"},
		statements: []string{
			"h1 n=1 miss=0 | b=0 s=1000 r=0 d=1000 i=100 e=2500 gi=100 ge=1500 sp=0 imb=1400 | paid=0 recv=0.15 fees=0 cpaid=0 crecv=0 gcost=0.03 gcred=0.075 | net=0.195 base=0.095 save=0.1",
			"h4 n=1 miss=0 | b=1000 s=0 r=1000 d=0 i=1000 e=0 gi=0 ge=0 sp=0 imb=0 | paid=0.15 recv=0 fees=0 cpaid=0 crecv=0 gcost=0 gcred=0 | net=-0.15 base=-0.3 save=0.15",
		},
		grid: "-0.045", fees: "0",
	},
	{
		// Fee 0.02 on top of price 0.13 (auction golden fee_wedge). s1
		// receives 0.26 for 2 kWh; each buyer pays 0.13 + 0.02. b2 imports
		// 0.5 kWh more at retail (0.15). Fees 0.04 go to the network.
		// -0.15 - 0.3 + 0.26 + grid 0.15 + fees 0.04 = 0.
		name:    "fee wedge",
		result:  buildResult("0.13", "0.02", tr{"s1", "b1", 1000}, tr{"s1", "b2", 1000}),
		tariffs: tariffs("0.30", "0.05"),
		metered: []Metered{{Participant: "s1", ExportWh: 2000}, {Participant: "b1", ImportWh: 1000}, {Participant: "b2", ImportWh: 1500}},
		trades: []string{
			tid("s1", "b1") + " s1->b1 wh=1000 d=1000 m=0 p=0.13 amount=0.13 fee=0.02 comp=0",
			tid("s1", "b2") + " s1->b2 wh=1000 d=1000 m=0 p=0.13 amount=0.13 fee=0.02 comp=0",
		},
		statements: []string{
			"b1 n=1 miss=0 | b=1000 s=0 r=1000 d=0 i=1000 e=0 gi=0 ge=0 sp=0 imb=0 | paid=0.13 recv=0 fees=0.02 cpaid=0 crecv=0 gcost=0 gcred=0 | net=-0.15 base=-0.3 save=0.15",
			"b2 n=1 miss=0 | b=1000 s=0 r=1000 d=0 i=1500 e=0 gi=500 ge=0 sp=0 imb=-500 | paid=0.13 recv=0 fees=0.02 cpaid=0 crecv=0 gcost=0.15 gcred=0 | net=-0.3 base=-0.45 save=0.15",
			"s1 n=1 miss=0 | b=0 s=2000 r=0 d=2000 i=0 e=2000 gi=0 ge=0 sp=0 imb=0 | paid=0 recv=0.26 fees=0 cpaid=0 crecv=0 gcost=0 gcred=0 | net=0.26 base=0.1 save=0.16",
		},
		grid: "0.15", fees: "0.04",
	},
	{
		// h1 sent no figures (no entry at all) and h4's are marked missing:
		// both count as 0 import, 0 export and are flagged. h1 delivered
		// min(0, 1000) = 0, so it owes h4 (0.30 - 0.15) * 1 = 0.15 and
		// nobody pays price or fee. h6 is an ordinary grid customer.
		name:    "missing metered figures",
		result:  buildResult("0.15", "0.01", tr{"h1", "h4", 1000}),
		tariffs: tariffs("0.30", "0.05"),
		metered: []Metered{{Participant: "h4", Missing: true}, {Participant: "h6", ImportWh: 500}},
		trades:  []string{tid("h1", "h4") + " h1->h4 wh=1000 d=0 m=1000 p=0.15 amount=0 fee=0 comp=0.15"},
		statements: []string{
			"h1 n=1 miss=1 | b=0 s=1000 r=0 d=0 i=0 e=0 gi=0 ge=0 sp=0 imb=-1000 | paid=0 recv=0 fees=0 cpaid=0.15 crecv=0 gcost=0 gcred=0 | net=-0.15 base=0 save=-0.15",
			"h4 n=1 miss=1 | b=1000 s=0 r=0 d=0 i=0 e=0 gi=0 ge=0 sp=0 imb=1000 | paid=0 recv=0 fees=0 cpaid=0 crecv=0.15 gcost=0 gcred=0 | net=0.15 base=0 save=0.15",
			"h6 n=1 miss=0 | b=0 s=0 r=0 d=0 i=500 e=0 gi=500 ge=0 sp=0 imb=-500 | paid=0 recv=0 fees=0 cpaid=0 crecv=0 gcost=0.15 gcred=0 | net=-0.15 base=-0.15 save=0",
		},
		grid: "0.15", fees: "0",
	},
	{
		// Nothing cleared: plain grid flows. h1 exports 0.8 kWh at 0.05
		// (0.04), h4 imports 1.2 at 0.30 (0.36); grid 0.36 - 0.04 = 0.32.
		name:    "no trade",
		result:  buildResult("0", "0"),
		tariffs: tariffs("0.30", "0.05"),
		metered: []Metered{{Participant: "h4", ImportWh: 1200}, {Participant: "h1", ExportWh: 800}},
		statements: []string{
			"h1 n=1 miss=0 | b=0 s=0 r=0 d=0 i=0 e=800 gi=0 ge=800 sp=0 imb=800 | paid=0 recv=0 fees=0 cpaid=0 crecv=0 gcost=0 gcred=0.04 | net=0.04 base=0.04 save=0",
			"h4 n=1 miss=0 | b=0 s=0 r=0 d=0 i=1200 e=0 gi=1200 ge=0 sp=0 imb=-1200 | paid=0 recv=0 fees=0 cpaid=0 crecv=0 gcost=0.36 gcred=0 | net=-0.36 base=-0.36 save=0",
		},
		grid: "0.32", fees: "0",
	},
	{
		// s sold 700 Wh to b3, 200 to b1, 100 to b2 and exported 501:
		// exact shares 350.7, 100.2, 50.1; floors 350 + 100 + 50 = 500; the
		// one Wh left goes to the largest remainder, b3 (0.7), although b1
		// has the smaller id. Price 0.10, so compensation is 0.20 per
		// missing kWh: b3 0.2*0.349 = 0.0698. b3 pays 0.0351 - 0.0698 +
		// 0.30*0.349 = 0.07 = 0.10 * 0.7: the price for all it bought.
		// s: net 0.0501 - 0.0998 = -0.0497, baseline 0.05*0.501 = 0.02505.
		name:    "pro rata by largest remainder",
		result:  buildResult("0.10", "0", tr{"s", "b3", 700}, tr{"s", "b1", 200}, tr{"s", "b2", 100}),
		tariffs: tariffs("0.30", "0.05"),
		metered: []Metered{{Participant: "s", ExportWh: 501}, {Participant: "b1", ImportWh: 200}, {Participant: "b2", ImportWh: 100}, {Participant: "b3", ImportWh: 700}},
		trades: []string{
			tid("s", "b3") + " s->b3 wh=700 d=351 m=349 p=0.1 amount=0.0351 fee=0 comp=0.0698",
			tid("s", "b1") + " s->b1 wh=200 d=100 m=100 p=0.1 amount=0.01 fee=0 comp=0.02",
			tid("s", "b2") + " s->b2 wh=100 d=50 m=50 p=0.1 amount=0.005 fee=0 comp=0.01",
		},
		statements: []string{
			"b1 n=1 miss=0 | b=200 s=0 r=100 d=0 i=200 e=0 gi=100 ge=0 sp=0 imb=0 | paid=0.01 recv=0 fees=0 cpaid=0 crecv=0.02 gcost=0.03 gcred=0 | net=-0.02 base=-0.06 save=0.04",
			"b2 n=1 miss=0 | b=100 s=0 r=50 d=0 i=100 e=0 gi=50 ge=0 sp=0 imb=0 | paid=0.005 recv=0 fees=0 cpaid=0 crecv=0.01 gcost=0.015 gcred=0 | net=-0.01 base=-0.03 save=0.02",
			"b3 n=1 miss=0 | b=700 s=0 r=351 d=0 i=700 e=0 gi=349 ge=0 sp=0 imb=0 | paid=0.0351 recv=0 fees=0 cpaid=0 crecv=0.0698 gcost=0.1047 gcred=0 | net=-0.07 base=-0.21 save=0.14",
			"s n=1 miss=0 | b=0 s=1000 r=0 d=501 i=0 e=501 gi=0 ge=0 sp=0 imb=-499 | paid=0 recv=0.0501 fees=0 cpaid=0.0998 crecv=0 gcost=0 gcred=0 | net=-0.0497 base=0.02505 save=-0.07475",
		},
		grid: "0.1497", fees: "0",
	},
	{
		// s sold 2 Wh to bx, then 2 Wh to ba, and exported 1: shares 0.5
		// and 0.5 tie, and the Wh goes to the smaller buyer id, ba, not to
		// the first trade. Compensation 0.15 per kWh missing.
		name:    "pro rata tie by buyer id",
		result:  buildResult("0.15", "0", tr{"s", "bx", 2}, tr{"s", "ba", 2}),
		tariffs: tariffs("0.30", "0.05"),
		metered: []Metered{{Participant: "s", ExportWh: 1}, {Participant: "ba", ImportWh: 2}, {Participant: "bx", ImportWh: 2}},
		trades: []string{
			tid("s", "bx") + " s->bx wh=2 d=0 m=2 p=0.15 amount=0 fee=0 comp=0.0003",
			tid("s", "ba") + " s->ba wh=2 d=1 m=1 p=0.15 amount=0.00015 fee=0 comp=0.00015",
		},
		statements: []string{
			"ba n=1 miss=0 | b=2 s=0 r=1 d=0 i=2 e=0 gi=1 ge=0 sp=0 imb=0 | paid=0.00015 recv=0 fees=0 cpaid=0 crecv=0.00015 gcost=0.0003 gcred=0 | net=-0.0003 base=-0.0006 save=0.0003",
			"bx n=1 miss=0 | b=2 s=0 r=0 d=0 i=2 e=0 gi=2 ge=0 sp=0 imb=0 | paid=0 recv=0 fees=0 cpaid=0 crecv=0.0003 gcost=0.0006 gcred=0 | net=-0.0003 base=-0.0006 save=0.0003",
			"s n=1 miss=0 | b=0 s=4 r=0 d=1 i=0 e=1 gi=0 ge=0 sp=0 imb=-3 | paid=0 recv=0.00015 fees=0 cpaid=0.00045 crecv=0 gcost=0 gcred=0 | net=-0.0003 base=0.00005 save=-0.00035",
		},
		grid: "0.0009", fees: "0",
	},
}

func checkCase(t *testing.T, c settleCase, s *IntervalSettlement) {
	t.Helper()
	if s.Interval != testInterval || s.Policy != "seller-bears-shortfall" {
		t.Errorf("interval %q policy %q", s.Interval, s.Policy)
	}
	var got []string
	for _, tr := range s.Trades {
		got = append(got, tradeLine(tr))
	}
	if g, w := strings.Join(got, "\n"), strings.Join(c.trades, "\n"); g != w {
		t.Errorf("trades:\n got %s\nwant %s", g, w)
	}
	got = got[:0]
	for _, st := range s.Participants {
		got = append(got, statementLine(st))
	}
	if g, w := strings.Join(got, "\n"), strings.Join(c.statements, "\n"); g != w {
		t.Errorf("statements:\n got %s\nwant %s", g, w)
	}
	if g := canonical(s.Grid); g != c.grid {
		t.Errorf("grid = %s, want %s", g, c.grid)
	}
	if g := canonical(s.Fees); g != c.fees {
		t.Errorf("fees = %s, want %s", g, c.fees)
	}
}

func TestSettleHandWorked(t *testing.T) {
	for _, c := range settleCases {
		t.Run(c.name, func(t *testing.T) {
			s, err := Settle(testInterval, c.result, c.tariffs, c.metered, SellerBearsShortfall{})
			if err != nil {
				t.Fatal(err)
			}
			checkCase(t, c, s)
		})
	}
}

// TestWorkedExampleFromBook clears the book of docs/settlement.md with the
// auction and settles it: the same figures as the hand-built result.
func TestWorkedExampleFromBook(t *testing.T) {
	rules := auction.DefaultRules()
	retail, feedIn := decimal.RequireFromString("0.30"), decimal.RequireFromString("0.05")
	rules.PriceCap, rules.PriceFloor = &retail, &feedIn
	rules.Fee = decimal.RequireFromString("0.01")
	m, err := auction.NewMarket(rules)
	if err != nil {
		t.Fatal(err)
	}
	var book auction.Book
	book.Interval = testInterval
	for _, o := range [][3]string{{"h1", "sell", "2"}, {"h2", "sell", "1"}, {"h4", "buy", "1.5"}, {"h5", "buy", "1.5"}} {
		price := map[string]string{"h1": "0.10", "h2": "0.12", "h4": "0.25", "h5": "0.19"}[o[0]]
		ord, err := m.ParseOrder(o[0]+"-"+o[1], o[0], o[1], o[2], price)
		if err != nil {
			t.Fatal(err)
		}
		book.Orders = append(book.Orders, ord)
	}
	r, err := m.Clear(book)
	if err != nil {
		t.Fatal(err)
	}
	s, err := Settle("", r, Tariffs{Retail: retail, FeedIn: feedIn}, workedExample.metered, SellerBearsShortfall{})
	if err != nil {
		t.Fatal(err)
	}
	checkCase(t, workedExample, s)
}

func TestSettleErrors(t *testing.T) {
	ok := buildResult("0.15", "0.01", tr{"h1", "h4", 1000})
	tf := tariffs("0.30", "0.05")
	mod := func(f func(r *auction.Result)) *auction.Result {
		r := buildResult("0.15", "0.01", tr{"h1", "h4", 1000})
		f(r)
		return r
	}
	cases := []struct {
		name     string
		interval string
		r        *auction.Result
		t        Tariffs
		metered  []Metered
		p        Policy
		want     string
	}{
		{"nil result", "", nil, tf, nil, SellerBearsShortfall{}, "settle: no auction result"},
		{"nil policy", "", ok, tf, nil, nil, "settle: no policy"},
		{"other interval", "2026-11-22T12:15Z", ok, tf, nil, SellerBearsShortfall{},
			`settle interval "2026-11-22T12:15Z": auction result is for interval "2026-11-22T12:00Z"`},
		{"feed-in above retail", "", ok, tariffs("0.05", "0.30"), nil, SellerBearsShortfall{},
			"feed-in tariff 0.3 is above the retail tariff 0.05"},
		{"price above retail", "", ok, tariffs("0.155", "0.05"), nil, SellerBearsShortfall{},
			"clearing price 0.15 plus fee 0.01 is above the retail tariff 0.155: clear with price_cap = retail"},
		{"price below feed-in", "", ok, tariffs("0.30", "0.16"), nil, SellerBearsShortfall{},
			"clearing price 0.15 is below the feed-in tariff 0.16"},
		{"duplicate metered", "", ok, tf, []Metered{{Participant: "h1"}, {Participant: "h1"}}, SellerBearsShortfall{},
			`metered "h1": more than one entry`},
		{"negative import", "", ok, tf, []Metered{{Participant: "h4", ImportWh: -1}}, SellerBearsShortfall{},
			`metered "h4": import -1 Wh is outside [0, 10^15]`},
		{"huge export", "", ok, tf, []Metered{{Participant: "h1", ExportWh: MaxWh + 1}}, SellerBearsShortfall{},
			`metered "h1": export 1000000000000001 Wh is outside [0, 10^15]`},
		{"missing with figures", "", ok, tf, []Metered{{Participant: "h1", ExportWh: 5, Missing: true}}, SellerBearsShortfall{},
			`metered "h1": marked missing but has figures (import 0 Wh, export 5 Wh)`},
		{"bad participant name", "", ok, tf, []Metered{{Participant: "h/1"}}, SellerBearsShortfall{},
			`metered #0: participant "h/1": character '/' at 1`},
		{"fractional Wh", "", mod(func(r *auction.Result) { r.QtyDecimals = 4; r.Trades[0].Qty = 15 }), tf, nil, SellerBearsShortfall{},
			`trade "2026-11-22T12:00Z/h1-sell/h4-buy": 0.0015 kWh is not a whole number of Wh`},
		{"swapped sides", "", mod(func(r *auction.Result) { r.Trades[0].SellFill, r.Trades[0].BuyFill = 1, 0 }), tf, nil, SellerBearsShortfall{},
			`sell fill "h4-buy" is a buy`},
		{"fill index", "", mod(func(r *auction.Result) { r.Trades[0].BuyFill = 7 }), tf, nil, SellerBearsShortfall{},
			"trade #0: fill index out of range"},
		{"not cleared with trades", "", mod(func(r *auction.Result) { r.Cleared = false }), tf, nil, SellerBearsShortfall{},
			"not cleared but has 1 trades"},
		{"zero quantity", "", mod(func(r *auction.Result) { r.Trades[0].Qty = 0 }), tf, nil, SellerBearsShortfall{},
			"quantity 0 quanta is not positive"},
		{"policy over-delivers", "", ok, tf, nil, overDeliver{}, "delivered 1001 Wh, missing -1 Wh: settlement invariant violated"},
		{"policy rewrites a trade", "", ok, tf, nil, rewrite{}, "policy rewrite changed the trade itself: settlement invariant violated"},
		{"policy credits delivery not exported", "", ok, tf, []Metered{{Participant: "h1", ExportWh: 10}}, fullCredit{},
			`participant "h1": delivered 1000 Wh but exported 10 Wh: settlement invariant violated`},
		{"policy error", "", ok, tf, nil, failing{}, "policy failing: no"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, err := Settle(c.interval, c.r, c.t, c.metered, c.p)
			if err == nil {
				t.Fatalf("no error; settlement %+v", s)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %q\ndoes not contain %q", err, c.want)
			}
			if strings.HasPrefix(c.name, "policy ") && c.name != "policy error" && !errors.Is(err, ErrInvariant) {
				t.Fatalf("error %q does not wrap ErrInvariant", err)
			}
		})
	}
}

// Faulty policies, to show that Settle's checks fire.
type overDeliver struct{}

func (overDeliver) Name() string { return "over-deliver" }
func (overDeliver) SettleTrades(iv Interval, trades []TradeSettlement) error {
	for i := range trades {
		trades[i].DeliveredWh = trades[i].Wh + 1
		trades[i].MissingWh = -1
	}
	return nil
}

type rewrite struct{}

func (rewrite) Name() string { return "rewrite" }
func (rewrite) SettleTrades(iv Interval, trades []TradeSettlement) error {
	trades[0].Wh = 1
	return nil
}

// fullCredit counts every trade as delivered, whatever was exported.
type fullCredit struct{}

func (fullCredit) Name() string { return "full-credit" }
func (fullCredit) SettleTrades(iv Interval, trades []TradeSettlement) error {
	for i := range trades {
		t := &trades[i]
		t.DeliveredWh, t.MissingWh = t.Wh, 0
		t.Amount = t.Price.Mul(kWh(t.Wh))
		t.Fee = iv.Fee.Mul(kWh(t.Wh))
	}
	return nil
}

type failing struct{}

func (failing) Name() string                                             { return "failing" }
func (failing) SettleTrades(iv Interval, trades []TradeSettlement) error { return errors.New("no") }

// TestCheckCatchesMoneyLeak corrupts one amount of a correct settlement:
// Check must see that money no longer sums to zero.
func TestCheckCatchesMoneyLeak(t *testing.T) {
	c := workedExample
	s, err := Settle(testInterval, c.result, c.tariffs, c.metered, SellerBearsShortfall{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Check(); err != nil {
		t.Fatalf("check of a correct settlement: %v", err)
	}
	s.Grid = s.Grid.Add(decimal.New(1, -9))
	if err := s.Check(); !errors.Is(err, ErrInvariant) || !strings.Contains(err.Error(), "grid 0.425000001, but statements owe the grid 0.425") {
		t.Fatalf("check after corrupting grid: %v", err)
	}
	s.Grid = s.Grid.Sub(decimal.New(1, -9))
	s.Participants[0].Net = s.Participants[0].Net.Add(decimal.New(1, -2))
	if err := s.Check(); !errors.Is(err, ErrInvariant) || !strings.Contains(err.Error(), `participant "h1": net 0.19 is not the sum`) {
		t.Fatalf("check after corrupting net: %v", err)
	}
}

// TestSettleDoesNotModifyInput: Settle must not write to the result or
// the metered slice it is given.
func TestSettleDoesNotModifyInput(t *testing.T) {
	c := workedExample
	before, _ := c.result.MarshalJSON()
	metered := append([]Metered(nil), c.metered...)
	if _, err := Settle("", c.result, c.tariffs, metered, SellerBearsShortfall{}); err != nil {
		t.Fatal(err)
	}
	after, _ := c.result.MarshalJSON()
	if string(before) != string(after) {
		t.Fatalf("result changed:\n%s\n%s", before, after)
	}
	for i := range metered {
		if metered[i] != c.metered[i] {
			t.Fatalf("metered[%d] changed: %+v", i, metered[i])
		}
	}
}
