package settlement

import "github.com/shopspring/decimal"

// Rounded returns the statement with every money field rounded to
// minorDecimals decimals (2 for cents) with banker's rounding: half to
// even, so 0.125 -> 0.12, 0.135 -> 0.14, -0.125 -> -0.12.
//
// It is for display only. Settlement money stays exact; each field is
// rounded on its own, so the rounded fields need not add up (Net may differ
// from the sum of the rounded flows by a minor unit or two). Half to even is
// used because it is unbiased: prices with six decimals times whole Wh land
// exactly on a half minor unit often, and rounding halves always up would
// add a systematic upward drift to every displayed total of a community
// over thousands of intervals.
func (s Statement) Rounded(minorDecimals int32) Statement {
	for _, d := range s.money() {
		*d = d.RoundBank(minorDecimals)
	}
	return s
}

// money returns pointers to the statement's money fields.
func (s *Statement) money() []*decimal.Decimal {
	return []*decimal.Decimal{
		&s.PaidP2P, &s.ReceivedP2P, &s.Fees, &s.CompensationPaid, &s.CompensationReceived,
		&s.GridCost, &s.GridCredit, &s.Net, &s.Baseline, &s.Saving,
	}
}

// Format formats d for display with exactly minor decimals, rounded half to
// even (see Statement.Rounded): Format(0.125, 2) = "0.12", Format(3, 2) =
// "3.00". It never uses an exponent.
func Format(d decimal.Decimal, minor int32) string {
	return d.StringFixedBank(minor)
}
