package auction

import (
	"encoding/hex"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/shopspring/decimal"
)

// Result is the outcome of clearing one interval.
type Result struct {
	Interval   string
	BookSHA256 [32]byte // digest of the canonical book encoding
	Orders     int      // orders in the book

	// Cleared is false when nothing trades (one-sided book or no overlap);
	// Price, PriceLow and PriceHigh are then meaningless.
	Cleared   bool
	Price     int64 // ticks per kWh, received by sellers; buyers pay Price+Fee
	PriceLow  int64 // the intersection interval [PriceLow, PriceHigh]
	PriceHigh int64
	Volume    int64 // quanta traded
	Fee       int64 // ticks per kWh, paid by buyers

	// Fills lists the filled orders: sells by price ascending, then buys by
	// price descending, ties by id.
	Fills []Fill
	// Trades pairs the fills, cheapest seller with highest bidder first.
	Trades []Trade

	QtyDecimals, PriceDecimals int

	welfare int128 // ticks * quanta
}

// Fill is what one order got.
type Fill struct {
	ID          string
	Participant string
	Side        Side
	Qty         int64 // quanta filled, > 0
	Limit       int64 // the order's limit price, ticks
}

// Trade is a bilateral trade at the uniform price between two fills of
// the same result.
type Trade struct {
	SellFill, BuyFill int32 // indices into Result.Fills
	Qty               int64 // quanta
}

// TradeID derives a trade's id from the interval and the two order ids:
// "interval/sell/buy", or "sell/buy" when the book names no interval. Order
// ids cannot hold '/', so the id is unique and can be split back.
func TradeID(interval, sell, buy string) string {
	if interval == "" {
		return sell + "/" + buy
	}
	return interval + "/" + sell + "/" + buy
}

// TradeID returns the id of t, a trade of this result.
func (r *Result) TradeID(t Trade) string {
	return TradeID(r.Interval, r.Fills[t.SellFill].ID, r.Fills[t.BuyFill].ID)
}

// Sell returns the sell side of t, a trade of this result.
func (r *Result) Sell(t Trade) Fill { return r.Fills[t.SellFill] }

// Buy returns the buy side of t, a trade of this result.
func (r *Result) Buy(t Trade) Fill { return r.Fills[t.BuyFill] }

// BookDigest returns the book's SHA-256 in hex.
func (r *Result) BookDigest() string { return hex.EncodeToString(r.BookSHA256[:]) }

// Welfare is the participants' gain from trade: the sum over traded kWh of
// buyer limit minus fee minus seller limit, exact.
func (r *Result) Welfare() decimal.Decimal {
	return r.welfare.decimal(r.QtyDecimals + r.PriceDecimals)
}

// SellersReceive is what sellers are paid in all: Price * Volume.
func (r *Result) SellersReceive() decimal.Decimal { return r.money(r.Price) }

// Fees is the total network fee: Fee * Volume.
func (r *Result) Fees() decimal.Decimal { return r.money(r.Fee) }

// BuyersPay is what buyers pay in all: (Price + Fee) * Volume, which is
// SellersReceive + Fees to the last digit.
func (r *Result) BuyersPay() decimal.Decimal { return r.money(r.Price + r.Fee) }

func (r *Result) money(perKWh int64) decimal.Decimal {
	if !r.Cleared {
		return decimal.Zero
	}
	return mul128(perKWh, r.Volume).decimal(r.QtyDecimals + r.PriceDecimals)
}

func (r *Result) kwh(q int64) []byte { return appendFixed(nil, q, r.QtyDecimals) }

// MarshalJSON writes the result in the CLI's documented form, one line,
// fields in a fixed order, every number an exact decimal string:
//
//	{"price":"0.15"|null,"volume_kwh":"..","welfare":"..","book_sha256":"..",
//	 "fills":[{"id":..,"side":..,"kwh":..}],
//	 "trades":[{"id":..,"sell":..,"buy":..,"kwh":..,"price":..}]}
//
// A "fee" field follows "price" only when the market charges a fee.
func (r *Result) MarshalJSON() ([]byte, error) {
	return r.appendJSON(make([]byte, 0, 256+64*len(r.Fills)+96*len(r.Trades)), nil)
}

// WriteJSON writes the result as MarshalJSON encodes it, to w in pieces
// of about 64 KiB, without holding the whole of it: the JSON of a
// million-order book's result is about 90 MB.
func (r *Result) WriteJSON(w io.Writer) error {
	_, err := r.appendJSON(make([]byte, 0, jsonPiece+1024), w)
	return err
}

// jsonPiece is how much appendJSON holds before it writes to its writer.
const jsonPiece = 64 << 10

// appendJSON appends the result's JSON to b. With a writer w, it writes b
// to w and empties it whenever it holds jsonPiece bytes, and at the end.
func (r *Result) appendJSON(b []byte, w io.Writer) ([]byte, error) {
	var err error
	b = append(b, `{"price":`...)
	var price []byte
	if r.Cleared {
		price = appendFixed([]byte{'"'}, r.Price, r.PriceDecimals)
		price = append(price, '"')
		b = append(b, price...)
	} else {
		b = append(b, "null"...)
	}
	if r.Fee != 0 {
		b = append(b, `,"fee":"`...)
		b = appendFixed(b, r.Fee, r.PriceDecimals)
		b = append(b, '"')
	}
	b = append(b, `,"volume_kwh":"`...)
	b = appendFixed(b, r.Volume, r.QtyDecimals)
	b = append(b, `","welfare":"`...)
	b = append(b, r.Welfare().String()...)
	b = append(b, `","book_sha256":"`...)
	b = append(b, r.BookDigest()...)
	b = append(b, `","fills":[`...)
	for n, f := range r.Fills {
		if n > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"id":"`...)
		b = append(b, f.ID...) // ids are [A-Za-z0-9._:-]: nothing to escape
		b = append(b, `","side":"`...)
		b = append(b, f.Side.String()...)
		b = append(b, `","kwh":"`...)
		b = appendFixed(b, f.Qty, r.QtyDecimals)
		b = append(b, `"}`...)
		if w != nil && len(b) >= jsonPiece {
			if b, err = writeOut(w, b); err != nil {
				return nil, err
			}
		}
	}
	b = append(b, `],"trades":[`...)
	for n, t := range r.Trades {
		if n > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"id":"`...)
		if r.Interval != "" { // TradeID, appended without a string
			b = append(append(b, r.Interval...), '/')
		}
		b = append(append(append(b, r.Fills[t.SellFill].ID...), '/'), r.Fills[t.BuyFill].ID...)
		b = append(b, `","sell":"`...)
		b = append(b, r.Fills[t.SellFill].ID...)
		b = append(b, `","buy":"`...)
		b = append(b, r.Fills[t.BuyFill].ID...)
		b = append(b, `","kwh":"`...)
		b = appendFixed(b, t.Qty, r.QtyDecimals)
		b = append(b, `","price":`...)
		b = append(b, price...)
		b = append(b, '}')
		if w != nil && len(b) >= jsonPiece {
			if b, err = writeOut(w, b); err != nil {
				return nil, err
			}
		}
	}
	b = append(b, "]}"...)
	if w != nil {
		b, err = writeOut(w, b)
	}
	return b, err
}

// writeOut writes b to w and returns b emptied.
func writeOut(w io.Writer, b []byte) ([]byte, error) {
	_, err := w.Write(b)
	return b[:0], err
}

// WriteTable writes the result for people: a summary, then the trades.
func (r *Result) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	p := func(format string, a ...any) { fmt.Fprintf(tw, format, a...) }
	if r.Interval != "" {
		p("interval\t%s\n", r.Interval)
	}
	sells, buys := 0, 0
	for _, f := range r.Fills {
		if f.Side == Sell {
			sells++
		} else {
			buys++
		}
	}
	p("orders\t%d\n", r.Orders)
	if !r.Cleared {
		p("price\t- (no trade: the supply and demand curves do not overlap)\n")
	} else {
		p("price\t%s per kWh (intersection [%s, %s])\n", formatFixed(r.Price, r.PriceDecimals),
			formatFixed(r.PriceLow, r.PriceDecimals), formatFixed(r.PriceHigh, r.PriceDecimals))
	}
	if r.Fee != 0 {
		p("fee\t%s per kWh, paid by buyers\n", formatFixed(r.Fee, r.PriceDecimals))
	}
	p("volume\t%s kWh\n", r.kwh(r.Volume))
	p("filled\t%d sell, %d buy orders\n", sells, buys)
	p("welfare\t%s\n", r.Welfare())
	p("buyers pay\t%s (sellers receive %s, fees %s)\n", r.BuyersPay(), r.SellersReceive(), r.Fees())
	p("book sha256\t%s\n", r.BookDigest())
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(r.Trades) == 0 {
		return nil
	}
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "seller\tsell order\tbuyer\tbuy order\tkWh\tamount\t")
	for _, t := range r.Trades {
		amount := mul128(r.Price, t.Qty).decimal(r.QtyDecimals + r.PriceDecimals)
		s, b := r.Sell(t), r.Buy(t)
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t\n", s.Participant, s.ID, b.Participant, b.ID, r.kwh(t.Qty), amount)
	}
	return tw.Flush()
}
