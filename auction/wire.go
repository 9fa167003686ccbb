package auction

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/p2pgrid/p2pgrid/internal/strictjson"
)

// The JSON wire form of a book, as `p2pgrid clear` reads it and gateways
// publish it:
//
//	{"interval": "2026-11-22T12:00Z",
//	 "orders": [{"id": "o1", "participant": "h1", "side": "sell", "kwh": "2.5", "price": "0.12"}]}
//
// Decoding is strict, because every gateway must read a published book the
// same way: keys must match exactly (encoding/json alone would accept "KWH"),
// a repeated key, an unknown key or a value of the wrong type rejects the
// book, and numbers are kept as text to be parsed exactly.
//
// The bytes are read in place by internal/strictjson, and numbers go
// straight from their text to the market's fixed-point units: a book of a
// million orders decodes in a fraction of a second (docs/performance.md).

var (
	bookKeys  = []string{"interval", "orders"}
	orderKeys = []string{"id", "participant", "side", "kwh", "price"}
)

// DecodeBook reads a book in its JSON form and checks it against the market.
// Prices and kWh may be JSON numbers or strings; both are parsed exactly.
// Unknown or repeated keys, trailing data and any bad order reject the whole
// book with an error naming the order and the field.
func (m *Market) DecodeBook(r io.Reader) (Book, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return Book{}, fmt.Errorf("book: %w", err)
	}
	return m.DecodeBookBytes(data)
}

// DecodeBookBytes is DecodeBook of a book already in memory, such as a file
// read whole. The book keeps no reference to data.
//
// A book in the plain form that EncodeBook writes (see decodePlainBook)
// is read in one pass over data. Any other input, valid or not, is read
// by the exact decoder, which checks the syntax of the orders first and
// words every error; so is a plain book that fails a check, so that its
// error is the exact decoder's.
func (m *Market) DecodeBookBytes(data []byte) (Book, error) {
	if b, ok := m.decodePlainBook(data); ok && m.checkDecodedBook(b) == nil {
		return b, nil
	}
	return m.decodeBookExact(data)
}

// ClearBookBytes is DecodeBookBytes followed by Clear, with the errors of
// either, except that the book is checked once rather than by both: what
// `p2pgrid clear` does with a book file.
func (m *Market) ClearBookBytes(data []byte) (*Result, error) {
	b, err := m.DecodeBookBytes(data)
	if err != nil {
		return nil, err
	}
	return m.clearChecked(b)
}

// decodeBookExact is DecodeBookBytes for any input: the orders' syntax
// checked first, so that a syntax error anywhere in them is reported
// before a bad order, then the orders walked one by one.
func (m *Market) decodeBookExact(data []byte) (Book, error) {
	var b Book
	haveOrders := false
	err := walkObject(data, bookKeys, func(n int, raw []byte) error {
		if n == 0 { // "interval"
			return decodeString(raw, &b.Interval)
		}
		haveOrders = true
		var err error
		b.Orders, err = m.decodeOrders(raw)
		return err
	})
	var oe *OrderError
	if errors.As(err, &oe) {
		return Book{}, oe
	}
	if err != nil {
		return Book{}, fmt.Errorf("book: %w", err)
	}
	if !haveOrders {
		return Book{}, errors.New(`book: no "orders" array`)
	}
	if b.Orders == nil {
		b.Orders = []Order{}
	}
	if err := m.CheckBook(b); err != nil {
		return Book{}, err
	}
	return b, nil
}

// orderNames copies decoded orders' ids and participants into strings a
// chunk of orders at a time, laid out in book order, rather than two
// allocations an order.
type orderNames struct {
	buf     []byte // the pending orders' ids and participants, back to back
	ends    []int  // the end of each in buf
	pending int    // orders[pending:] have no names yet
}

// add holds the names of the order just appended to orders.
func (n *orderNames) add(orders []Order, id, participant []byte) {
	n.buf = append(append(n.buf, id...), participant...)
	n.ends = append(n.ends, len(n.buf)-len(participant), len(n.buf))
	if len(n.buf) >= 64<<10 {
		n.flush(orders)
	}
}

// flush gives the pending orders their names.
func (n *orderNames) flush(orders []Order) {
	s := string(n.buf)
	for k := range orders[n.pending:] {
		o := &orders[n.pending+k]
		start := 0
		if k > 0 {
			start = n.ends[2*k-1]
		}
		o.ID, o.Participant = s[start:n.ends[2*k]], s[n.ends[2*k]:n.ends[2*k+1]]
	}
	n.buf, n.ends, n.pending = n.buf[:0], n.ends[:0], len(orders)
}

// decodeOrders decodes the array of orders raw, whose syntax is checked.
func (m *Market) decodeOrders(raw []byte) ([]Order, error) {
	if len(raw) == 0 || raw[0] != '[' {
		return nil, strictjson.Array(raw, nil) // names what raw is
	}
	// At least 57 bytes make an order; most orders take more.
	orders := make([]Order, 0, len(raw)/80+1)
	var names orderNames
	i := strictjson.SkipSpace(raw, 1)
	if raw[i] == ']' {
		return orders, nil
	}
	for n := 0; ; n++ {
		o, id, participant, end, err := m.decodeOrder(raw[i:], false)
		if err != nil {
			var oe *OrderError
			if errors.As(err, &oe) {
				oe.Index = n
			}
			return nil, err
		}
		orders = append(orders, o)
		names.add(orders, id, participant)
		i = strictjson.SkipSpace(raw, i+end)
		if raw[i] == ']' {
			break
		}
		i = strictjson.SkipSpace(raw, i+1) // the ','
	}
	names.flush(orders)
	return orders, nil
}

// decodePlainBook reads data in one pass if it is a valid book in plain
// form: every string, key or value, plain ASCII without escapes (see
// strictjson.PlainString), keys "interval" and "orders" at most once in
// any order, the five keys of every order once each in any order, any
// JSON white space between tokens, and every order valid for the market.
// That is what EncodeBook writes. ok is false for any other input, and
// then nothing is said about it: the exact decoder reads it again.
//
// Every byte is checked as the exact decoder checks it: what this accepts
// is valid JSON that the exact decoder reads as the same book.
func (m *Market) decodePlainBook(data []byte) (b Book, ok bool) {
	i := strictjson.SkipSpace(data, 0)
	if i == len(data) || data[i] != '{' {
		return Book{}, false
	}
	var seen [2]bool // in bookKeys order
	for {
		i = strictjson.SkipSpace(data, i+1) // after '{' or ','
		end, ok := strictjson.PlainString(data, i)
		if !ok {
			return Book{}, false
		}
		n := index(bookKeys, data[i+1:end-1])
		if n < 0 || seen[n] {
			return Book{}, false
		}
		seen[n] = true
		if i = strictjson.SkipSpace(data, end); i == len(data) || data[i] != ':' {
			return Book{}, false
		}
		i = strictjson.SkipSpace(data, i+1)
		if n == 0 { // "interval"
			if end, ok = strictjson.PlainString(data, i); !ok {
				return Book{}, false
			}
			b.Interval = string(data[i+1 : end-1])
		} else if b.Orders, end, ok = m.decodePlainOrders(data, i); !ok {
			return Book{}, false
		}
		if i = strictjson.SkipSpace(data, end); i == len(data) {
			return Book{}, false
		}
		if data[i] == '}' {
			break
		}
		if data[i] != ',' {
			return Book{}, false
		}
	}
	if !seen[1] || strictjson.SkipSpace(data, i+1) != len(data) {
		return Book{}, false
	}
	return b, true
}

// decodePlainOrders is decodePlainBook's reading of the array of orders
// at data[i], each in plain form and valid for the market. It returns
// the orders and the end of the array.
func (m *Market) decodePlainOrders(data []byte, i int) (orders []Order, end int, ok bool) {
	if i == len(data) || data[i] != '[' {
		return nil, 0, false
	}
	// At least 57 bytes make an order; most orders take more.
	orders = make([]Order, 0, (len(data)-i)/80+1)
	var names orderNames
	if i = strictjson.SkipSpace(data, i+1); i < len(data) && data[i] == ']' {
		return orders, i + 1, true
	}
	for {
		o, id, participant, end, ok := m.decodePlainOrder(data, i)
		if !ok {
			return nil, 0, false
		}
		orders = append(orders, o)
		names.add(orders, id, participant)
		if i = strictjson.SkipSpace(data, end); i == len(data) {
			return nil, 0, false
		}
		if data[i] == ']' {
			names.flush(orders)
			return orders, i + 1, true
		}
		if data[i] != ',' {
			return nil, 0, false
		}
		i = strictjson.SkipSpace(data, i+1)
	}
}

// decodePlainOrder is decodePlainBook's reading of the order at data[i].
// It returns the order without its names, the names, and the order's end.
func (m *Market) decodePlainOrder(data []byte, i int) (o Order, id, participant []byte, end int, ok bool) {
	if i == len(data) || data[i] != '{' {
		return Order{}, nil, nil, 0, false
	}
	var f [5][]byte // in orderKeys order
	var seen uint8
	for k := 0; ; k++ {
		i = strictjson.SkipSpace(data, i+1) // after '{' or ','
		end, ok := strictjson.PlainString(data, i)
		if !ok {
			return Order{}, nil, nil, 0, false
		}
		// The keys come in orderKeys order from EncodeBook: try that first.
		n, key := k, data[i+1:end-1]
		if n >= len(orderKeys) || string(key) != orderKeys[n] {
			n = index(orderKeys, key)
		}
		if n < 0 || seen&(1<<n) != 0 {
			return Order{}, nil, nil, 0, false
		}
		seen |= 1 << n
		if i = strictjson.SkipSpace(data, end); i == len(data) || data[i] != ':' {
			return Order{}, nil, nil, 0, false
		}
		i = strictjson.SkipSpace(data, i+1)
		if end, ok = strictjson.PlainString(data, i); ok {
			f[n] = data[i+1 : end-1]
		} else if n < 3 { // "id", "participant", "side": strings only
			return Order{}, nil, nil, 0, false
		} else {
			var err error
			if end, err = strictjson.Number(data, i); err != nil {
				return Order{}, nil, nil, 0, false
			}
			f[n] = data[i:end]
		}
		if i = strictjson.SkipSpace(data, end); i == len(data) {
			return Order{}, nil, nil, 0, false
		}
		if data[i] == '}' {
			break
		}
		if data[i] != ',' {
			return Order{}, nil, nil, 0, false
		}
	}
	if seen != 1<<len(orderKeys)-1 {
		return Order{}, nil, nil, 0, false
	}
	o, err := parseOrder(m, f[0], f[1], f[2], f[3], f[4])
	if err != nil {
		return Order{}, nil, nil, 0, false
	}
	return o, f[0], f[1], i + 1, true
}

// DecodeOrder reads one order in its JSON form,
// {"id": .., "participant": .., "side": .., "kwh": .., "price": ..}, and
// checks it against the market. Errors are *OrderError naming the field.
func (m *Market) DecodeOrder(data []byte) (Order, error) {
	o, id, participant, _, err := m.decodeOrder(data, true)
	if err != nil {
		return Order{}, err
	}
	o.ID, o.Participant = string(id), string(participant)
	return o, nil
}

// decodeOrder is DecodeOrder of the order at the start of data, which,
// unless whole, may go on after it. It returns the order without its
// names, the names, and the end of the order in data.
func (m *Market) decodeOrder(data []byte, whole bool) (o Order, id, participant []byte, end int, err error) {
	var f [5][]byte // in orderKeys order
	end, err = walkObjectAt(data, orderKeys, func(n int, raw []byte) error {
		if n >= 3 { // "kwh", "price"
			return decodeNumber(raw, &f[n])
		}
		return decodeString(raw, &f[n])
	})
	if err == nil && whole && strictjson.SkipSpace(data, end) != len(data) {
		err = errTrailing
	}
	if err != nil {
		oe := &OrderError{Field: "order", Err: err}
		if checkName(f[0]) == nil {
			oe.ID = string(f[0])
		}
		var ke *keyError
		if errors.As(err, &ke) {
			oe.Field, oe.Err = ke.key, ke.err
		}
		return Order{}, nil, nil, 0, oe
	}
	o, err = parseOrder(m, f[0], f[1], f[2], f[3], f[4])
	return o, f[0], f[1], end, err
}

// keyError is a problem with one key of a JSON object, or its value.
type keyError struct {
	key string
	err error
}

func (e *keyError) Error() string { return fmt.Sprintf("%s: %v", e.key, e.err) }
func (e *keyError) Unwrap() error { return e.err }

// walkObject calls field for every key of the JSON object data, in order,
// with the key's index in allowed and its value. Keys must be in allowed,
// exactly, and appear at most once; nothing may follow the object.
func walkObject(data []byte, allowed []string, field func(n int, raw []byte) error) error {
	end, err := walkObjectAt(data, allowed, field)
	if err == nil && strictjson.SkipSpace(data, end) != len(data) {
		return errTrailing
	}
	return err
}

var errTrailing = errors.New("trailing data after the JSON object")

// walkObjectAt is walkObject of the object at the start of data, which may
// go on after it. It returns the end of the object.
func walkObjectAt(data []byte, allowed []string, field func(n int, raw []byte) error) (int, error) {
	var o strictjson.Object
	if err := o.Open(data); err != nil {
		return 0, err
	}
	var seen uint64 // allowed has fewer than 64 keys
	for {
		key, ok, err := o.Next()
		if err != nil {
			return 0, err
		}
		if !ok {
			return o.End(), nil
		}
		n := index(allowed, key)
		if n < 0 {
			return 0, &keyError{string(key), fmt.Errorf("unknown key %q (want one of %s)", key, strings.Join(allowed, ", "))}
		}
		if seen&(1<<n) != 0 {
			return 0, &keyError{allowed[n], fmt.Errorf("key %q appears twice", key)}
		}
		seen |= 1 << n
		raw, err := o.Value()
		if err != nil {
			return 0, err
		}
		if err := field(n, raw); err != nil {
			return 0, &keyError{allowed[n], err}
		}
	}
}

// index returns the position of key in keys, or -1.
func index(keys []string, key []byte) int {
	for n, k := range keys {
		if k == string(key) {
			return n
		}
	}
	return -1
}

// decodeString reads a JSON string, and only a string, into dst.
func decodeString[T string | []byte](raw []byte, dst *T) error {
	if len(raw) == 0 || raw[0] != '"' {
		return fmt.Errorf("want a string, got %.20s", raw)
	}
	*dst = T(strictjson.UnquoteBytes(raw))
	return nil
}

// decodeNumber keeps a JSON number, or the text of a JSON string, verbatim
// in dst, so that it is parsed exactly (never through float64).
func decodeNumber(raw []byte, dst *[]byte) error {
	if len(raw) > 0 && raw[0] == '"' {
		*dst = strictjson.UnquoteBytes(raw)
		return nil
	}
	if len(raw) > 0 && (raw[0] == '-' || (raw[0] >= '0' && raw[0] <= '9')) {
		*dst = raw
		return nil
	}
	return fmt.Errorf("want a number or a decimal string, got %.20s", raw)
}
