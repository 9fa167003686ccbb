package auction

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
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
	var b Book
	haveOrders := false
	err = walkObject(data, bookKeys, func(key string, raw json.RawMessage) error {
		switch key {
		case "interval":
			return decodeString(raw, &b.Interval)
		default: // "orders"
			haveOrders = true
			return walkArray(raw, func(i int, raw json.RawMessage) error {
				o, err := m.DecodeOrder(raw)
				if err != nil {
					var oe *OrderError
					if errors.As(err, &oe) {
						oe.Index = i
					}
					return err
				}
				b.Orders = append(b.Orders, o)
				return nil
			})
		}
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

// DecodeOrder reads one order in its JSON form,
// {"id": .., "participant": .., "side": .., "kwh": .., "price": ..}, and
// checks it against the market. Errors are *OrderError naming the field.
func (m *Market) DecodeOrder(data []byte) (Order, error) {
	var f [5]string // in orderKeys order
	err := walkObject(data, orderKeys, func(key string, raw json.RawMessage) error {
		n := slices.Index(orderKeys, key)
		if key == "kwh" || key == "price" {
			return decodeNumber(raw, &f[n])
		}
		return decodeString(raw, &f[n])
	})
	if err != nil {
		oe := &OrderError{Field: "order", Err: err}
		if CheckName(f[0]) == nil {
			oe.ID = f[0]
		}
		var ke *keyError
		if errors.As(err, &ke) {
			oe.Field, oe.Err = ke.key, ke.err
		}
		return Order{}, oe
	}
	return m.ParseOrder(f[0], f[1], f[2], f[3], f[4])
}

// keyError is a problem with one key of a JSON object, or its value.
type keyError struct {
	key string
	err error
}

func (e *keyError) Error() string { return fmt.Sprintf("%s: %v", e.key, e.err) }
func (e *keyError) Unwrap() error { return e.err }

// walkObject calls field for every key of the JSON object data, in order.
// Keys must be in allowed, exactly, and appear at most once; nothing may
// follow the object.
func walkObject(data []byte, allowed []string, field func(key string, raw json.RawMessage) error) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	if tok, err := dec.Token(); err != nil {
		return err
	} else if tok != json.Delim('{') {
		return fmt.Errorf("want a JSON object, got %s", describe(tok))
	}
	seen := make([]bool, len(allowed))
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		key := tok.(string) // inside an object, encoding/json yields string keys
		n := slices.Index(allowed, key)
		if n < 0 {
			return &keyError{key, fmt.Errorf("unknown key %q (want one of %s)", key, strings.Join(allowed, ", "))}
		}
		if seen[n] {
			return &keyError{key, fmt.Errorf("key %q appears twice", key)}
		}
		seen[n] = true
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return err
		}
		if err := field(key, raw); err != nil {
			return &keyError{key, err}
		}
	}
	if _, err := dec.Token(); err != nil { // the closing '}'
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("trailing data after the JSON object")
	}
	return nil
}

// walkArray calls elem for every element of the JSON array data.
func walkArray(data []byte, elem func(i int, raw json.RawMessage) error) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	if tok, err := dec.Token(); err != nil {
		return err
	} else if tok != json.Delim('[') {
		return fmt.Errorf("want an array, got %s", describe(tok))
	}
	for i := 0; dec.More(); i++ {
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return err
		}
		if err := elem(i, raw); err != nil {
			return err
		}
	}
	return nil
}

func describe(tok json.Token) string {
	switch v := tok.(type) {
	case json.Delim:
		return string(v)
	case string:
		return "a string"
	case nil:
		return "null"
	case bool:
		return "a boolean"
	}
	return "a number"
}

// decodeString reads a JSON string, and only a string, into dst.
func decodeString(raw json.RawMessage, dst *string) error {
	if len(raw) == 0 || raw[0] != '"' {
		return fmt.Errorf("want a string, got %.20s", raw)
	}
	return json.Unmarshal(raw, dst)
}

// decodeNumber keeps a JSON number, or the text of a JSON string, verbatim
// in dst, so that it is parsed exactly (never through float64).
func decodeNumber(raw json.RawMessage, dst *string) error {
	if len(raw) > 0 && raw[0] == '"' {
		return json.Unmarshal(raw, dst)
	}
	if len(raw) > 0 && (raw[0] == '-' || (raw[0] >= '0' && raw[0] <= '9')) {
		*dst = string(raw)
		return nil
	}
	return fmt.Errorf("want a number or a decimal string, got %.20s", raw)
}
