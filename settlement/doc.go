// Package settlement turns one cleared interval plus what the meters counted
// into money: who delivered what, who pays whom, what the grid and the
// network are owed, and how much better off each participant is than with
// the grid alone.
//
// The package is pure: no I/O, no clock, no goroutines, no globals. It takes
// an *auction.Result, the market's Tariffs (the retail tariff, which is the
// market's price_cap, and the feed-in tariff, its price_floor) and one
// Metered figure per participant, and Settle returns an IntervalSettlement.
// Energy is counted in whole Wh (int64) and money is exact
// (github.com/shopspring/decimal), never float64; rounding to a currency's
// minor unit happens only for display (Statement.Rounded, Format) with
// banker's rounding.
//
// Who bears an imbalance is a Policy; SellerBearsShortfall is the default.
// Whatever the policy, Settle checks at run time that the interval's money
// flows sum to exactly zero and that no trade or participant is credited
// with more delivered energy than was traded or exported, and returns an
// error wrapping ErrInvariant if not.
//
// CounterDelta turns two readings of an energy counter into a delta, telling
// a wrap-around from a meter reset. Sum and CommunityTotals aggregate over a
// period. IntervalSettlement has a deterministic JSON form (MarshalJSON,
// DecodeIntervalSettlement) for the ledger and tools; settlement/record
// declares every ledger record made from a settlement.
//
// The package knows nothing of Modbus, MQTT, the ledger's storage or
// InfluxDB; those live in the subpackages and the gateway. docs/settlement.md
// describes the model with a worked example.
package settlement
