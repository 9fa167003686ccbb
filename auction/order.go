package auction

import (
	"errors"
	"fmt"
	"unicode/utf8"
)

// Side is the side of an order: a buy bid or a sell offer.
type Side uint8

// The two sides. The zero Side is invalid, so a forgotten side is caught.
const (
	Buy Side = iota + 1
	Sell
)

func (s Side) String() string {
	switch s {
	case Buy:
		return "buy"
	case Sell:
		return "sell"
	}
	return fmt.Sprintf("Side(%d)", uint8(s))
}

// ParseSide parses "buy" or "sell".
func ParseSide(s string) (Side, error) { return parseSide(s) }

func parseSide[T ~string | ~[]byte](s T) (Side, error) {
	switch string(s) {
	case "buy":
		return Buy, nil
	case "sell":
		return Sell, nil
	}
	return 0, fmt.Errorf("unknown side %q (want buy or sell)", s)
}

// Order is one bid or offer for the interval, quantised to the market's
// resolution.
type Order struct {
	ID          string // unique in the book: 1-64 of [A-Za-z0-9._:-]
	Participant string // who places it: 1-64 of [A-Za-z0-9._:-]
	Side        Side
	Qty         int64 // kWh, in quanta of the market's qty resolution; > 0
	Price       int64 // limit per kWh, in ticks of the market's price resolution
}

// Sentinel errors for what callers branch on.
var (
	// ErrInvalidOrder wraps every reason an order is rejected.
	ErrInvalidOrder = errors.New("invalid order")
	// ErrDuplicateID is returned when two orders of a book share an id.
	ErrDuplicateID = errors.New("duplicate order id")
	// ErrOverflow is returned when a book's total quantity does not fit the
	// market's integer arithmetic (only with non-default limits).
	ErrOverflow = errors.New("book too large for the market's resolution")
)

// OrderError says which order of a book is bad, which field, and why.
type OrderError struct {
	Index int    // position in the book, from 0
	ID    string // the order's id, if it had a usable one
	Field string // id, participant, side, kwh or price
	Err   error
}

func (e *OrderError) Error() string {
	who := fmt.Sprintf("order #%d", e.Index)
	if e.ID != "" {
		who = fmt.Sprintf("order %q", e.ID)
	}
	return fmt.Sprintf("%s: %s: %v", who, e.Field, e.Err)
}

func (e *OrderError) Unwrap() []error { return []error{ErrInvalidOrder, e.Err} }

// idChars marks the bytes allowed in ids and participant names.
var idChars = func() (t [256]bool) {
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
		t[c-'a'+'A'] = true
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for _, c := range "._:-" {
		t[c] = true
	}
	return t
}()

// CheckName reports whether s is a valid order id or participant name.
func CheckName(s string) error { return checkName(s) }

func checkName[T ~string | ~[]byte](s T) error {
	if len(s) == 0 {
		return errors.New("empty")
	}
	if len(s) > 64 {
		return fmt.Errorf("%d characters (at most 64)", len(s))
	}
	for i := 0; i < len(s); i++ {
		if !idChars[s[i]] {
			r, _ := utf8.DecodeRuneInString(string(s[i:]))
			return fmt.Errorf("character %q at %d is not one of [A-Za-z0-9._:-]", r, i)
		}
	}
	return nil
}

// ParseOrder builds an order from its text fields (kWh and price as exact
// decimal strings) and checks it against the market's rules.
func (m *Market) ParseOrder(id, participant, side, kwh, price string) (Order, error) {
	o, err := parseOrder(m, id, participant, side, kwh, price)
	if err != nil {
		return Order{}, err
	}
	o.ID, o.Participant = id, participant
	return o, nil
}

// parseOrder is ParseOrder for text held as strings or as bytes (a
// decoder's), except that the order it returns has no ID and Participant:
// the caller sets them, from id and participant, which are valid.
func parseOrder[T ~string | ~[]byte](m *Market, id, participant, side, kwh, price T) (Order, error) {
	fail := func(field string, err error) (Order, error) {
		e := &OrderError{Field: field, Err: err}
		if checkName(id) == nil {
			e.ID = string(id)
		}
		return Order{}, e
	}
	if err := checkName(id); err != nil {
		return fail("id", err)
	}
	if err := checkName(participant); err != nil {
		return fail("participant", err)
	}
	var o Order
	var err error
	if o.Side, err = parseSide(side); err != nil {
		return fail("side", err)
	}
	if o.Qty, err = parseFixed(kwh, m.qtyDec, m.maxQty); err != nil {
		return fail("kwh", m.explain(err, m.qtyDec, "qty_decimals"))
	}
	if o.Price, err = parseFixed(price, m.priceDec, m.maxPrice); err != nil {
		return fail("price", m.explain(err, m.priceDec, "price_decimals"))
	}
	if err := checkValues(m, o, id); err != nil { // CheckOrder, the names checked
		return Order{}, err
	}
	return o, nil
}

func (m *Market) explain(err error, dec int, rule string) error {
	if errors.Is(err, errPrecision) {
		return fmt.Errorf("%w decimals (market rule %s = %d)", err, rule, dec)
	}
	return err
}

// CheckOrder checks a quantised order against the market's rules: names,
// side, a positive quantity within the order limit, a price within the
// market's limits and [price_floor, price_cap].
func (m *Market) CheckOrder(o Order) error {
	fail := func(field string, err error) error {
		e := &OrderError{Field: field, Err: err}
		if CheckName(o.ID) == nil {
			e.ID = o.ID
		}
		return e
	}
	if err := CheckName(o.ID); err != nil {
		return fail("id", err)
	}
	if err := CheckName(o.Participant); err != nil {
		return fail("participant", err)
	}
	return checkValues(m, o, o.ID)
}

// checkValues is CheckOrder after the names: id, o's valid id, names the
// order in an error.
func checkValues[T ~string | ~[]byte](m *Market, o Order, id T) error {
	fail := func(field string, err error) error {
		return &OrderError{ID: string(id), Field: field, Err: err}
	}
	if o.Side != Buy && o.Side != Sell {
		return fail("side", fmt.Errorf("unknown side %v (want buy or sell)", o.Side))
	}
	if o.Qty <= 0 {
		return fail("kwh", fmt.Errorf("%s is not positive", m.FormatKWh(o.Qty)))
	}
	if o.Qty > m.maxQty {
		return fail("kwh", fmt.Errorf("%w: %s exceeds the order limit %s (market rule max_order_kwh)",
			ErrOutOfRange, m.FormatKWh(o.Qty), m.FormatKWh(m.maxQty)))
	}
	if o.Price > m.maxPrice || o.Price < -m.maxPrice {
		return fail("price", fmt.Errorf("%s is beyond the limit ±%s (market rule max_abs_price)",
			m.FormatPrice(o.Price), m.FormatPrice(m.maxPrice)))
	}
	if o.Price < m.floor {
		return fail("price", fmt.Errorf("%s is below the price floor %s (market rule price_floor)",
			m.FormatPrice(o.Price), m.FormatPrice(m.floor)))
	}
	if o.Price > m.cap {
		return fail("price", fmt.Errorf("%s is above the price cap %s (market rule price_cap)",
			m.FormatPrice(o.Price), m.FormatPrice(m.cap)))
	}
	return nil
}
