package auction

// The decoder this package had before internal/strictjson, on
// encoding/json, kept as the reference that FuzzDecodeBookAsBefore holds
// the decoder to.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// DecodeBook reads a book in its JSON form and checks it against the market.
// Prices and kWh may be JSON numbers or strings; both are parsed exactly.
// Unknown or repeated keys, trailing data and any bad order reject the whole
// book with an error naming the order and the field.
func (m *Market) oldDecodeBook(r io.Reader) (Book, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return Book{}, fmt.Errorf("book: %w", err)
	}
	var b Book
	haveOrders := false
	err = oldWalkObject(data, bookKeys, func(key string, raw json.RawMessage) error {
		switch key {
		case "interval":
			return oldDecodeString(raw, &b.Interval)
		default: // "orders"
			haveOrders = true
			return oldWalkArray(raw, func(i int, raw json.RawMessage) error {
				o, err := m.oldDecodeOrder(raw)
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
func (m *Market) oldDecodeOrder(data []byte) (Order, error) {
	var f [5]string // in orderKeys order
	err := oldWalkObject(data, orderKeys, func(key string, raw json.RawMessage) error {
		n := slices.Index(orderKeys, key)
		if key == "kwh" || key == "price" {
			return oldDecodeNumber(raw, &f[n])
		}
		return oldDecodeString(raw, &f[n])
	})
	if err != nil {
		oe := &OrderError{Field: "order", Err: err}
		if CheckName(f[0]) == nil {
			oe.ID = f[0]
		}
		var ke *oldKeyError
		if errors.As(err, &ke) {
			oe.Field, oe.Err = ke.key, ke.err
		}
		return Order{}, oe
	}
	return m.ParseOrder(f[0], f[1], f[2], f[3], f[4])
}

// oldKeyError is a problem with one key of a JSON object, or its value.
type oldKeyError struct {
	key string
	err error
}

func (e *oldKeyError) Error() string { return fmt.Sprintf("%s: %v", e.key, e.err) }
func (e *oldKeyError) Unwrap() error { return e.err }

// walkObject calls field for every key of the JSON object data, in order.
// Keys must be in allowed, exactly, and appear at most once; nothing may
// follow the object.
func oldWalkObject(data []byte, allowed []string, field func(key string, raw json.RawMessage) error) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	if tok, err := dec.Token(); err != nil {
		return err
	} else if tok != json.Delim('{') {
		return fmt.Errorf("want a JSON object, got %s", oldDescribe(tok))
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
			return &oldKeyError{key, fmt.Errorf("unknown key %q (want one of %s)", key, strings.Join(allowed, ", "))}
		}
		if seen[n] {
			return &oldKeyError{key, fmt.Errorf("key %q appears twice", key)}
		}
		seen[n] = true
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return err
		}
		if err := field(key, raw); err != nil {
			return &oldKeyError{key, err}
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
func oldWalkArray(data []byte, elem func(i int, raw json.RawMessage) error) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	if tok, err := dec.Token(); err != nil {
		return err
	} else if tok != json.Delim('[') {
		return fmt.Errorf("want an array, got %s", oldDescribe(tok))
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

func oldDescribe(tok json.Token) string {
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
func oldDecodeString(raw json.RawMessage, dst *string) error {
	if len(raw) == 0 || raw[0] != '"' {
		return fmt.Errorf("want a string, got %.20s", raw)
	}
	return json.Unmarshal(raw, dst)
}

// decodeNumber keeps a JSON number, or the text of a JSON string, verbatim
// in dst, so that it is parsed exactly (never through float64).
func oldDecodeNumber(raw json.RawMessage, dst *string) error {
	if len(raw) > 0 && raw[0] == '"' {
		return json.Unmarshal(raw, dst)
	}
	if len(raw) > 0 && (raw[0] == '-' || (raw[0] >= '0' && raw[0] <= '9')) {
		*dst = string(raw)
		return nil
	}
	return fmt.Errorf("want a number or a decimal string, got %.20s", raw)
}

// FuzzDecodeBookAsBefore: the decoder accepts exactly the books the
// encoding/json one did, as the same books, and rejects the others with
// the same error text.
func FuzzDecodeBookAsBefore(f *testing.F) {
	for _, s := range decodeSeeds(f) {
		f.Add(s, uint8(0))
		f.Add(s, uint8(3))
	}
	f.Fuzz(func(t *testing.T, data []byte, which uint8) {
		m := fuzzMarkets[int(which)%len(fuzzMarkets)]
		want, wantErr := m.oldDecodeBook(bytes.NewReader(data))
		got, gotErr := m.DecodeBookBytes(data)
		if fmt.Sprint(gotErr) != fmt.Sprint(wantErr) {
			t.Fatalf("%.200q:\nerror %v\n want %v", data, gotErr, wantErr)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%.200q:\nbook %+v\nwant %+v", data, got, want)
		}
	})
}

// decodeSeeds are the golden books and books malformed in every way the
// JSON scanner tells apart.
func decodeSeeds(f testing.TB) [][]byte {
	books, err := filepath.Glob("testdata/*/book.json")
	if err != nil || len(books) == 0 {
		f.Fatalf("no golden books: %v", err)
	}
	var seeds [][]byte
	for _, name := range books {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		seeds = append(seeds, data)
	}
	ok := jsonOrder("a", "sell", `1`, `0.1`)
	for _, s := range []string{
		jsonBook(ok, jsonOrder("b", "buy", `"2"`, `2e-1`)), ``, ` `, `{`, `{}`, `{"orders":`, `{"orders": `,
		`{"orders":[`, `{"orders":[]`, `{"orders":[],`, `{"orders":[]}}`, `{"orders":[] "interval":"x"}`,
		`{"orders" []}`, `{"orders":[1 2]}`, `{"orders":[` + ok + `,]}`, `{"orders":[{"id" "a"}]}`,
		`{"orders":[{"id":"a",}]}`, `{"orders":[{"kwh":01}]}`, `{"orders":[{"kwh":-}]}`, `{"orders":[{"kwh":1.}]}`,
		`{"orders":[{"kwh":1e}]}`, `{"orders":[{"kwh":tru}]}`, `{"orders":[{"id":"\x"}]}`, `{"orders":[{"id":"\u00"}]}`,
		"{\"orders\":[{\"id\":\"\x01\"}]}", `{"orders":[` + ok + `,{"kwh":"x"}, 7 ]}`,
		`{"orders":[{"kwh":"x"},{"kwh":1` + "\n", `{"orders":[1e999]}`, `{"orders":1e999}`, `1e999`, `[1,`, `]`, `,`,
		`{"interval":7,"orders":[{"kwh":"x"}]}`, `{"orders":[{"id":"a","id":"b"}]}`, `{"\u006frders":[]}`,
		`{"orders":[{"id":"a\u00e9","participant":"\ud800","side":"s\u0065ll","kwh":"1","price":"1"}]}`,
		`{"orders":[{"id":"é","participant":"p","side":"buy","kwh":1,"price":1}]}`,
		`{"orders":[{"id":"a","participant":"p","side":"buy","kwh":{"x":[1,{}]},"price":1}]}`,
		`{"orders":{}}`, `{"orders":"x"}`, `{"orders":null}`, `{"orders":true}`, `{"orders":[null,[],"s",{}]}`,
		`{"orders":[],"orders":[]}`, `{"Orders":[]}`, "\xff", `{"orders":[]} x`,
	} {
		seeds = append(seeds, []byte(s))
	}
	return seeds
}

// FuzzDecodeOrderAsBefore: DecodeOrder, for one order alone, as before.
func FuzzDecodeOrderAsBefore(f *testing.F) {
	for _, s := range []string{jsonOrder("a", "sell", `1`, `0.1`), jsonOrder("a", "sell", `1`, `0.1`) + ` x`,
		jsonOrder("a", "sell", `"x"`, `0.1`) + `{}`, `{"id":"a"`, ` 7 `, `[`, `{"id":"a","id":1}`, ``} {
		f.Add([]byte(s))
	}
	m := fuzzMarkets[0]
	f.Fuzz(func(t *testing.T, data []byte) {
		want, wantErr := m.oldDecodeOrder(data)
		got, gotErr := m.DecodeOrder(data)
		if fmt.Sprint(gotErr) != fmt.Sprint(wantErr) || got != want {
			t.Fatalf("%.200q:\n%+v, %v\nwant %+v, %v", data, got, gotErr, want, wantErr)
		}
		var oe, woe *OrderError
		if errors.As(gotErr, &oe) != errors.As(wantErr, &woe) || (oe != nil && (oe.Field != woe.Field || oe.ID != woe.ID)) {
			t.Fatalf("%.200q: error %#v, want %#v", data, gotErr, wantErr)
		}
	})
}
