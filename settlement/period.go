package settlement

import (
	"math/big"

	"github.com/shopspring/decimal"
)

// Sum adds up one participant's statements over a period, field by field,
// exactly. Every statement should be the same participant's; if they are
// not, the sum's Participant is empty, so a caller that mixed them up sees
// it. Sum of nothing is the zero Statement.
func Sum(statements ...Statement) Statement {
	var out Statement
	mixed := false
	for i, s := range statements {
		if i == 0 {
			out.Participant = s.Participant
		} else if s.Participant != statements[0].Participant {
			mixed = true
		}
		out.Intervals += s.Intervals
		out.MissingIntervals += s.MissingIntervals
		out.BoughtWh += s.BoughtWh
		out.SoldWh += s.SoldWh
		out.ReceivedWh += s.ReceivedWh
		out.DeliveredWh += s.DeliveredWh
		out.ImportWh += s.ImportWh
		out.ExportWh += s.ExportWh
		out.GridImportWh += s.GridImportWh
		out.GridExportWh += s.GridExportWh
		out.SpilledWh += s.SpilledWh
		out.ImbalanceWh += s.ImbalanceWh
		out.PaidP2P = out.PaidP2P.Add(s.PaidP2P)
		out.ReceivedP2P = out.ReceivedP2P.Add(s.ReceivedP2P)
		out.Fees = out.Fees.Add(s.Fees)
		out.CompensationPaid = out.CompensationPaid.Add(s.CompensationPaid)
		out.CompensationReceived = out.CompensationReceived.Add(s.CompensationReceived)
		out.GridCost = out.GridCost.Add(s.GridCost)
		out.GridCredit = out.GridCredit.Add(s.GridCredit)
		out.Net = out.Net.Add(s.Net)
		out.Baseline = out.Baseline.Add(s.Baseline)
		out.Saving = out.Saving.Add(s.Saving)
	}
	if mixed {
		out.Participant = ""
	}
	return out
}

// LocalShareDecimals is the number of decimals Community.LocalShare is
// rounded to (half to even).
const LocalShareDecimals = 6

// Community is the whole community's account over a period.
type Community struct {
	Intervals    int // settlements summed
	Participants int // distinct participants
	// MissingFigures counts participant-intervals settled without metered
	// figures.
	MissingFigures int

	ConsumptionWh int64 // metered import, all participants
	ExportWh      int64 // metered export, all participants
	TradedWh      int64 // p2p, as traded
	LocalWh       int64 // p2p, delivered
	MissingWh     int64 // p2p, traded but not delivered
	SpilledWh     int64 // delivered p2p but not consumed by the buyer
	GridImportWh  int64
	GridExportWh  int64
	// LocalShare is the share of consumption met by neighbours:
	// (LocalWh - SpilledWh) / ConsumptionWh, in [0, 1], rounded half to
	// even to LocalShareDecimals; 0 when nothing was consumed.
	LocalShare decimal.Decimal
	// PossibleLocalWh is the physically possible local exchange: per
	// interval, min(total metered export, total metered import) over the
	// participants, summed over the intervals. Energy one home exported
	// while another imported could have gone next door; no more can.
	PossibleLocalWh int64
	// ExchangeShare is the share of the possible local exchange that went
	// from one home to another under a trade (the local share of issue
	// 13): (LocalWh - SpilledWh) / PossibleLocalWh, in [0, 1], rounded
	// half to even to LocalShareDecimals; 0 when nothing could be
	// exchanged. Energy delivered to a buyer who did not import it
	// (SpilledWh) went to the grid, not next door, and does not count.
	ExchangeShare decimal.Decimal

	MoneyKeptLocally decimal.Decimal // sum of p2p payments, buyers to sellers
	Compensation     decimal.Decimal // sellers to buyers, for missing energy
	Fees             decimal.Decimal // to the network
	Grid             decimal.Decimal // net money to the grid
	Saving           decimal.Decimal // sum of participants' Saving
}

// ExchangedWh is the energy that went from one home to another under a
// trade: delivered peer to peer and imported by its buyer (LocalWh -
// SpilledWh), ExchangeShare's numerator.
func (c Community) ExchangedWh() int64 { return c.LocalWh - c.SpilledWh }

// AddPossible adds to c the possible local exchange of intervals summed
// elsewhere (possibleWh, each interval's minimum taken before summing) and
// sets ExchangeShare from it: for a reader that keeps running totals
// rather than every settlement.
func (c *Community) AddPossible(possibleWh int64) {
	c.PossibleLocalWh += possibleWh
	c.ExchangeShare = ratioHalfEven(c.ExchangedWh(), c.PossibleLocalWh, LocalShareDecimals)
}

// CommunityTotals adds up settlements (nil ones are skipped). Each
// settlement is one interval: PossibleLocalWh takes the minimum of its
// participants' summed export and import before adding intervals up.
func CommunityTotals(settlements ...*IntervalSettlement) Community {
	var c Community
	seen := map[string]bool{}
	for _, s := range settlements {
		if s == nil {
			continue
		}
		c.Intervals++
		var exported, imported int64
		for _, t := range s.Trades {
			c.TradedWh += t.Wh
			c.LocalWh += t.DeliveredWh
			c.MissingWh += t.MissingWh
			c.MoneyKeptLocally = c.MoneyKeptLocally.Add(t.Amount)
			c.Compensation = c.Compensation.Add(t.Compensation)
		}
		for _, st := range s.Participants {
			seen[st.Participant] = true
			c.MissingFigures += st.MissingIntervals
			c.ConsumptionWh += st.ImportWh
			c.ExportWh += st.ExportWh
			imported += st.ImportWh
			exported += st.ExportWh
			c.SpilledWh += st.SpilledWh
			c.GridImportWh += st.GridImportWh
			c.GridExportWh += st.GridExportWh
			c.Saving = c.Saving.Add(st.Saving)
		}
		c.PossibleLocalWh += min(exported, imported)
		c.Fees = c.Fees.Add(s.Fees)
		c.Grid = c.Grid.Add(s.Grid)
	}
	c.Participants = len(seen)
	c.LocalShare = ratioHalfEven(c.LocalWh-c.SpilledWh, c.ConsumptionWh, LocalShareDecimals)
	c.ExchangeShare = ratioHalfEven(c.ExchangedWh(), c.PossibleLocalWh, LocalShareDecimals)
	return c
}

// ratioHalfEven returns num/den rounded half to even to places decimals;
// 0 when den is 0. num and den are >= 0.
func ratioHalfEven(num, den int64, places int32) decimal.Decimal {
	if den == 0 {
		return decimal.Zero
	}
	n := new(big.Int).Mul(big.NewInt(num), new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(places)), nil))
	d := big.NewInt(den)
	q, r := new(big.Int).QuoRem(n, d, new(big.Int))
	switch new(big.Int).Lsh(r, 1).Cmp(d) {
	case 1:
		q.Add(q, big.NewInt(1))
	case 0:
		if q.Bit(0) == 1 {
			q.Add(q, big.NewInt(1))
		}
	}
	return decimal.NewFromBigInt(q, -places)
}

// StatementFields names a statement's figures, in order, as the ledger's
// settlement records, the InfluxDB settlement measurement and printed
// statements all call them: energy in kWh, money in the currency, and the
// StatementCountFields, whole numbers: how many intervals the statement
// covers and how many of them were settled without metered figures (a
// statement whose missing_intervals is not 0 was settled on nothing
// measured: its import and export are 0, not metered).
var StatementFields = []string{
	"bought_kwh", "sold_kwh", "received_kwh", "delivered_kwh", "import_kwh", "export_kwh", "imbalance_kwh",
	"paid", "received", "fees", "compensation_paid", "compensation_received",
	"grid_cost", "grid_credit", "net", "baseline", "saving",
	"intervals", "missing_intervals", // last: CSV columns before them keep their places
}

// StatementCountFields are the StatementFields that count intervals: whole
// numbers, neither energy nor money (never rounded to a currency).
var StatementCountFields = []string{"intervals", "missing_intervals"}

// IsCountField reports whether the StatementFields name is one of the
// StatementCountFields.
func IsCountField(name string) bool {
	return name == "intervals" || name == "missing_intervals"
}

// Fields returns the statement's figures by their StatementFields names,
// exactly; the counts are whole decimals.
func (s Statement) Fields() map[string]decimal.Decimal {
	return map[string]decimal.Decimal{
		"intervals": decimal.NewFromInt(int64(s.Intervals)), "missing_intervals": decimal.NewFromInt(int64(s.MissingIntervals)),
		"bought_kwh": kWh(s.BoughtWh), "sold_kwh": kWh(s.SoldWh), "received_kwh": kWh(s.ReceivedWh),
		"delivered_kwh": kWh(s.DeliveredWh), "import_kwh": kWh(s.ImportWh), "export_kwh": kWh(s.ExportWh),
		"imbalance_kwh": kWh(s.ImbalanceWh),
		"paid":          s.PaidP2P, "received": s.ReceivedP2P, "fees": s.Fees, "compensation_paid": s.CompensationPaid,
		"compensation_received": s.CompensationReceived, "grid_cost": s.GridCost, "grid_credit": s.GridCredit,
		"net": s.Net, "baseline": s.Baseline, "saving": s.Saving,
	}
}
