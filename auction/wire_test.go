package auction

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// plainBooks are valid books in plain form, which DecodeBookBytes reads in
// one pass: EncodeBook's output, and the same with white space, keys in
// other orders and numbers as JSON numbers.
func plainBooks(t testing.TB) []string {
	m := defaultTestMarket(t)
	ws := "{ \"orders\" :\n[ {\"price\":0.12 ,\t\"kwh\":\"2.5\",\"side\":\"sell\",\"participant\":\"h1\",\"id\":\"o1\"}\r\n" +
		",{\"id\":\"o2\",\"participant\":\"h2\",\"side\":\"buy\",\"kwh\":1e0,\"price\":\"-0.1E+1\"} ] , \"interval\" : \"i1\" } \n"
	return []string{
		string(m.EncodeBook(benchBook(50))),
		string(m.EncodeBook(Book{Orders: []Order{}})),
		ws,
		`{"orders":[]}`,
		jsonBook(jsonOrder("a", "sell", `1`, `0.1`), jsonOrder("b", "buy", `"2"`, `2e-1`)),
	}
}

// TestDecodePlainBook: the one-pass reader takes every plain book, as the
// exact decoder reads it.
func TestDecodePlainBook(t *testing.T) {
	m := defaultTestMarket(t)
	for _, s := range plainBooks(t) {
		got, ok := m.decodePlainBook([]byte(s))
		if !ok {
			t.Errorf("%.100q: not read as a plain book", s)
			continue
		}
		want, err := m.decodeBookExact([]byte(s))
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("%.100q:\nplain %+v\nexact %+v, %v", s, got, want, err)
		}
	}
}

// TestDecodePlainBookDeclines: anything but a valid book in plain form is
// left to the exact decoder, which words the error.
func TestDecodePlainBookDeclines(t *testing.T) {
	m := defaultTestMarket(t)
	ok := jsonOrder("a", "sell", `1`, `0.1`)
	for _, s := range []string{
		``, ` `, `[]`, `{}`, `{"interval":"i"}`, `{"orders":[]`, `{"orders":[]} x`, `{"orders":[],}`,
		`{"orders":[],"orders":[]}`, `{"Orders":[]}`, `{"\u006frders":[]}`, `{"orders":null}`,
		`{"interval":"i\u0031","orders":[]}`, `{"interval":7,"orders":[]}`,
		jsonBook(ok + `,`), jsonBook(ok + ` ` + ok), jsonBook(`{}`), jsonBook(`7`),
		jsonBook(`{"id":"a","participant":"p","side":"sell","kwh":1}`),
		jsonBook(`{"id":"a","participant":"p","side":"sell","kwh":1,"price":1,"kwh":1}`),
		jsonBook(`{"id":"a","participant":"p","side":"sell","kwh":1,"price":1,"x":1}`),
		jsonBook(`{"id":"a","participant":"p","side":"sell","kwh":01,"price":1}`),
		jsonBook(`{"id":"a","participant":"p","side":"sell","kwh":1.,"price":1}`),
		jsonBook(`{"id":"a","participant":"p","side":"sell","kwh":true,"price":1}`),
		jsonBook(`{"id":"\u0061","participant":"p","side":"sell","kwh":1,"price":1}`),
		jsonBook(`{"id":1,"participant":"p","side":"sell","kwh":1,"price":1}`),
		jsonBook(`{"id":"a","participant":"p","side":"sell","kwh":"1\u002e5","price":1}`),
		jsonBook(`{"id":"a","participant":"p","side":"sell","kwh":0,"price":1}`), // a bad order
		"{\"orders\":[{\"id\":\"a\x01\",\"participant\":\"p\",\"side\":\"sell\",\"kwh\":1,\"price\":1}]}",
		jsonBook(`{"id":"a","participant":"p","side":"sell","kwh":1,"price":1}` + ` }`),
	} {
		if b, ok := m.decodePlainBook([]byte(s)); ok {
			t.Errorf("%.100q: read as a plain book, %+v", s, b)
		}
	}
	// A repeated id is found by the book's check, after the one pass.
	dup := jsonBook(ok, ok)
	if _, ok := m.decodePlainBook([]byte(dup)); !ok {
		t.Fatalf("%q: not read as a plain book", dup)
	}
	if _, err := m.DecodeBookBytes([]byte(dup)); err == nil || !strings.Contains(err.Error(), "duplicate") {
		t.Errorf("%q: DecodeBookBytes: %v, want a duplicate id", dup, err)
	}
}

// FuzzDecodePlainBook: whatever the one-pass reader takes, the exact
// decoder reads as the same book; what it declines, DecodeBookBytes reads
// with the exact decoder.
func FuzzDecodePlainBook(f *testing.F) {
	for _, s := range plainBooks(f) {
		f.Add([]byte(s), uint8(0))
		f.Add([]byte(s), uint8(2))
	}
	f.Fuzz(func(t *testing.T, data []byte, which uint8) {
		m := fuzzMarkets[int(which)%len(fuzzMarkets)]
		exact, exactErr := m.decodeBookExact(data)
		got, gotErr := m.DecodeBookBytes(data)
		if fmt.Sprint(gotErr) != fmt.Sprint(exactErr) || !reflect.DeepEqual(got, exact) {
			t.Fatalf("%.200q:\n%+v, %v\nexact %+v, %v", data, got, gotErr, exact, exactErr)
		}
		plain, ok := m.decodePlainBook(data)
		if ok && (exactErr != nil && m.checkDecodedBook(plain) == nil || exactErr == nil && !reflect.DeepEqual(plain, exact)) {
			t.Fatalf("%.200q:\nplain %+v\nexact %+v, %v", data, plain, exact, exactErr)
		}
	})
}

// checkClearBookBytes holds ClearBookBytes to DecodeBookBytes then Clear:
// the same error text, or the same result.
func checkClearBookBytes(t *testing.T, m *Market, data []byte) {
	t.Helper()
	var want []byte
	b, wantErr := m.DecodeBookBytes(data)
	if wantErr == nil {
		var res *Result
		if res, wantErr = m.Clear(b); wantErr == nil {
			want, _ = res.MarshalJSON()
		}
	}
	res, err := m.ClearBookBytes(data)
	var got []byte
	if err == nil {
		got, _ = res.MarshalJSON()
	}
	if fmt.Sprint(err) != fmt.Sprint(wantErr) || string(got) != string(want) {
		t.Fatalf("%.200q:\nClearBookBytes %s, %v\nDecode+Clear   %s, %v", data, got, err, want, wantErr)
	}
}

func TestClearBookBytes(t *testing.T) {
	inputs := decodeSeeds(t) // the golden books, and malformed ones
	for _, s := range append(plainBooks(t), jsonBook(jsonOrder("a", "sell", `1`, `0.1`), jsonOrder("a", "buy", `1`, `0.2`))) {
		inputs = append(inputs, []byte(s))
	}
	for _, m := range fuzzMarkets {
		for _, data := range inputs {
			checkClearBookBytes(t, m, data)
		}
	}
}

// FuzzClearBookBytes: ClearBookBytes is DecodeBookBytes then Clear.
func FuzzClearBookBytes(f *testing.F) {
	for _, s := range plainBooks(f) {
		f.Add([]byte(s), uint8(0))
		f.Add([]byte(s), uint8(1))
	}
	f.Fuzz(func(t *testing.T, data []byte, which uint8) {
		checkClearBookBytes(t, fuzzMarkets[int(which)%len(fuzzMarkets)], data)
	})
}
