// Package auction clears one delivery interval of a periodic double auction:
// neighbours' sell offers and buy bids for kWh, at one uniform price
// (pay-as-clear).
//
// It is the pure core of p2pgrid: it takes a book and market rules and
// returns a result. It does no I/O, reads no clock, starts no goroutines and
// keeps no global state, so that every gateway in a community can recompute a
// clearing from the published book and get byte-identical output.
//
// Quantities and prices are exact. At the edges they are decimals
// (github.com/shopspring/decimal, or decimal strings in JSON); inside they are
// int64 counts of the market's resolution: quanta of kWh (default 0.001 kWh,
// one Wh) and ticks of price (default 0.000001 per kWh). Sums that could
// exceed int64 are checked or kept in 128 bits. There is no float64 anywhere
// in market math.
//
// The clearing rule, rationing, trade pairing and the canonical book encoding
// behind Result.BookSHA256 are specified in docs/auction.md.
package auction
