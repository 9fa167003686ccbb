package auction

import (
	"fmt"

	"github.com/shopspring/decimal"
)

// Rules are the market rules of a community, as an operator writes them.
// The zero value is not usable; start from DefaultRules.
type Rules struct {
	// QtyDecimals is the kWh resolution: 3 means quanta of 0.001 kWh (1 Wh).
	QtyDecimals int `yaml:"qty_decimals" json:"qty_decimals"`
	// PriceDecimals is the price resolution: 6 means ticks of 0.000001 per kWh.
	PriceDecimals int `yaml:"price_decimals" json:"price_decimals"`
	// K places the clearing price inside the interval [lo, hi] where supply
	// and demand intersect: price = lo + K*(hi-lo). 0 favours buyers, 1
	// sellers, 0.5 (the default) splits the difference.
	K decimal.Decimal `yaml:"k" json:"k"`
	// Fee is the network fee per kWh, paid by buyers on top of the price.
	// It is cleared as a wedge: a buy order trades only where its limit
	// minus the fee reaches the seller's limit.
	Fee decimal.Decimal `yaml:"fee" json:"fee"`
	// PriceFloor and PriceCap, when set, bound every order's price:
	// typically the feed-in tariff and the retail tariff.
	PriceFloor *decimal.Decimal `yaml:"price_floor" json:"price_floor,omitempty"`
	PriceCap   *decimal.Decimal `yaml:"price_cap" json:"price_cap,omitempty"`
	// MaxOrderKWh bounds the quantity of one order.
	MaxOrderKWh decimal.Decimal `yaml:"max_order_kwh" json:"max_order_kwh"`
	// MaxAbsPrice bounds the magnitude of any price, per kWh.
	MaxAbsPrice decimal.Decimal `yaml:"max_abs_price" json:"max_abs_price"`
}

// DefaultRules returns the default market rules: Wh and micro-currency
// resolution, k = 0.5, no fee, no floor or cap, at most 10^9 kWh per order
// and |price| at most 10^6 per kWh.
func DefaultRules() Rules {
	return Rules{
		QtyDecimals:   3,
		PriceDecimals: 6,
		K:             decimal.New(5, -1),
		Fee:           decimal.Zero,
		MaxOrderKWh:   decimal.New(1, 9),
		MaxAbsPrice:   decimal.New(1, 6),
	}
}

// maxScaledLimit keeps every limit, scaled to quanta or ticks, small enough
// that sums over millions of orders and differences of prices stay in int64.
const maxScaledLimit = 1_000_000_000_000_000 // 10^15

// Market is a validated, quantised form of Rules. It is immutable and safe
// for concurrent use.
type Market struct {
	rules    Rules
	qtyDec   int
	priceDec int
	k        decimal.Decimal
	fee      int64 // ticks
	floor    int64 // ticks; -maxPrice when no floor
	cap      int64 // ticks; +maxPrice when no cap
	maxQty   int64 // quanta
	maxPrice int64 // ticks
}

// NewMarket validates r and returns the market it describes. Errors name the
// rule that is wrong.
func NewMarket(r Rules) (*Market, error) {
	m := &Market{rules: r, qtyDec: r.QtyDecimals, priceDec: r.PriceDecimals, k: r.K}
	if r.QtyDecimals < 0 || r.QtyDecimals > maxDecimals {
		return nil, fmt.Errorf("market rule qty_decimals: %d is outside [0, %d]", r.QtyDecimals, maxDecimals)
	}
	if r.PriceDecimals < 0 || r.PriceDecimals > maxDecimals {
		return nil, fmt.Errorf("market rule price_decimals: %d is outside [0, %d]", r.PriceDecimals, maxDecimals)
	}
	if r.K.IsNegative() || r.K.GreaterThan(decimal.NewFromInt(1)) {
		return nil, fmt.Errorf("market rule k: %s is outside [0, 1]", r.K)
	}
	var err error
	if m.maxQty, err = scaledLimit("max_order_kwh", r.MaxOrderKWh, r.QtyDecimals); err != nil {
		return nil, err
	}
	if m.maxPrice, err = scaledLimit("max_abs_price", r.MaxAbsPrice, r.PriceDecimals); err != nil {
		return nil, err
	}
	if m.fee, err = m.ruleTicks("fee", r.Fee); err != nil {
		return nil, err
	}
	if m.fee < 0 {
		return nil, fmt.Errorf("market rule fee: %s is negative", r.Fee)
	}
	m.floor, m.cap = -m.maxPrice, m.maxPrice
	if r.PriceFloor != nil {
		if m.floor, err = m.ruleTicks("price_floor", *r.PriceFloor); err != nil {
			return nil, err
		}
	}
	if r.PriceCap != nil {
		if m.cap, err = m.ruleTicks("price_cap", *r.PriceCap); err != nil {
			return nil, err
		}
	}
	if m.floor > m.cap {
		return nil, fmt.Errorf("market rule price_floor: %s is above price_cap %s",
			formatFixed(m.floor, m.priceDec), formatFixed(m.cap, m.priceDec))
	}
	return m, nil
}

func scaledLimit(name string, d decimal.Decimal, scale int) (int64, error) {
	v, err := decimalToFixed(d, scale)
	if err != nil {
		return 0, fmt.Errorf("market rule %s: %w", name, err)
	}
	if v <= 0 || v > maxScaledLimit {
		return 0, fmt.Errorf("market rule %s: %s must be positive and at most 10^15 units of resolution", name, d)
	}
	return v, nil
}

// ruleTicks converts a price-like rule to ticks and checks it against the
// market's price limit.
func (m *Market) ruleTicks(name string, d decimal.Decimal) (int64, error) {
	v, err := decimalToFixed(d, m.priceDec)
	if err != nil {
		return 0, fmt.Errorf("market rule %s: %w (price_decimals)", name, err)
	}
	if v > m.maxPrice || v < -m.maxPrice {
		return 0, fmt.Errorf("market rule %s: %s is beyond max_abs_price %s", name, d, m.rules.MaxAbsPrice)
	}
	return v, nil
}

// Rules returns the rules the market was built from.
func (m *Market) Rules() Rules { return m.rules }

// Fee returns the per-kWh network fee in ticks.
func (m *Market) Fee() int64 { return m.fee }

// MaxOrderQty returns the order limit (market rule max_order_kwh) in
// quanta.
func (m *Market) MaxOrderQty() int64 { return m.maxQty }

// FormatKWh formats a count of quanta as kWh.
func (m *Market) FormatKWh(quanta int64) string { return formatFixed(quanta, m.qtyDec) }

// FormatPrice formats a count of ticks as a price per kWh.
func (m *Market) FormatPrice(ticks int64) string { return formatFixed(ticks, m.priceDec) }

// KWh converts a count of quanta to a decimal number of kWh.
func (m *Market) KWh(quanta int64) decimal.Decimal { return fixedToDecimal(quanta, m.qtyDec) }

// Price converts a count of ticks to a decimal price per kWh.
func (m *Market) Price(ticks int64) decimal.Decimal { return fixedToDecimal(ticks, m.priceDec) }
