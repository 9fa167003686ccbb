package protocol

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/p2pgrid/p2pgrid/auction"
)

func TestBookRoundTrip(t *testing.T) {
	r := newTestRoster(t, testCommunity)
	data := exampleBook(t) // orders given home3, home2, home1
	// Sorted by gateway id, each order verbatim.
	want := `{"v":1,"community":"c1","interval":"2026-11-22T12:15Z","clearer":"home1","orders":[` +
		string(sign(t, exampleOrders[0])) + "," + string(sign(t, exampleOrders[1])) + "," + string(sign(t, exampleOrders[2])) + "]}"
	if string(data) != want {
		t.Fatalf("EncodeBook =\n%s\nwant\n%s", data, want)
	}
	// The same orders in any order, or with whitespace, make the same book.
	spaced := func(o testOrder) []byte {
		var buf bytes.Buffer
		if err := json.Indent(&buf, sign(t, o), "", "  "); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	other, err := EncodeBook(testCommunity, testInterval, "home1", [][]byte{
		spaced(exampleOrders[1]), sign(t, exampleOrders[0]), spaced(exampleOrders[2]),
	})
	if err != nil || !bytes.Equal(other, data) {
		t.Fatalf("EncodeBook of the same orders in another order and layout:\n%s\n%v", other, err)
	}
	b, err := DecodeBook(data)
	if err != nil {
		t.Fatal(err)
	}
	if b.Community != testCommunity || b.Interval != testInterval || b.Clearer != "home1" || len(b.Orders) != 3 {
		t.Fatalf("decoded %+v", b)
	}
	if enc := b.Encode(); !bytes.Equal(enc, data) {
		t.Fatalf("book does not round-trip byte for byte:\n%s\n%s", enc, data)
	}
	book, err := b.Verify(r, testMarket)
	if err != nil {
		t.Fatal(err)
	}
	if book.Interval != testInterval || len(book.Orders) != 3 {
		t.Fatalf("verified %+v", book)
	}
	for i, o := range exampleOrders { // exampleOrders is sorted by gateway
		want := auction.Order{ID: o.gateway, Participant: o.gateway, Side: o.side, Qty: o.qty, Price: o.price}
		if book.Orders[i] != want {
			t.Errorf("order %d: %+v, want %+v", i, book.Orders[i], want)
		}
	}
	// Empty books are fine.
	empty, err := EncodeBook(testCommunity, testInterval, "home1", nil)
	if err != nil || string(empty) != `{"v":1,"community":"c1","interval":"2026-11-22T12:15Z","clearer":"home1","orders":[]}` {
		t.Fatalf("empty book %s, %v", empty, err)
	}
	eb, err := DecodeBook(empty)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := eb.Verify(r, testMarket); err != nil || len(got.Orders) != 0 || got.Interval != testInterval {
		t.Fatalf("empty book verified as %+v, %v", got, err)
	}
}

func TestEncodeBookRejects(t *testing.T) {
	o1, o2 := sign(t, exampleOrders[0]), sign(t, exampleOrders[1])
	other, err := SignOrder(testKey("home1"), testCommunity, "2026-11-22T12:30Z", "home1", auction.Sell, 1, 1, testMarket)
	if err != nil {
		t.Fatal(err)
	}
	second, err := SignOrder(testKey("home1"), testCommunity, testInterval, "home1", auction.Sell, 2, 1, testMarket)
	if err != nil {
		t.Fatal(err)
	}
	elsewhere, err := SignOrder(testKey("home1"), "c2", testInterval, "home1", auction.Sell, 1, 1, testMarket)
	if err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		orders [][]byte
		want   RejectReason
	}{
		"valid":                     {[][]byte{o2, o1}, ""},
		"two orders of one gateway": {[][]byte{o1, o2, second}, RejectDuplicate},
		"the same order twice":      {[][]byte{o1, o2, o1}, RejectDuplicate},
		"another interval":          {[][]byte{o2, other}, RejectWrongInterval},
		"another community":         {[][]byte{elsewhere}, RejectWrongCommunity},
		"malformed order":           {[][]byte{o1, []byte(`{}`)}, RejectMalformed},
		"oversize order":            {[][]byte{append(bytes.Repeat([]byte(" "), MaxOrderSize), o1...)}, RejectOversize},
	} {
		_, err := EncodeBook(testCommunity, testInterval, "home1", tc.orders)
		if tc.want == "" {
			if err != nil {
				t.Errorf("%s: %v", name, err)
			}
			continue
		}
		if ReasonOf(err) != tc.want {
			t.Errorf("%s: %v; want %q", name, err, tc.want)
		}
	}
	for name, f := range map[string]func() error{
		"community": func() error { _, err := EncodeBook("c/1", testInterval, "home1", nil); return err },
		"interval":  func() error { _, err := EncodeBook(testCommunity, "now", "home1", nil); return err },
		"clearer":   func() error { _, err := EncodeBook(testCommunity, testInterval, "", nil); return err },
	} {
		if err := f(); err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("bad %s: %v", name, err)
		}
	}
}

// bookOf writes a book message by hand, orders as given.
func bookOf(community, interval, clearer string, orders ...[]byte) []byte {
	b := &BookMsg{Community: community, Interval: interval, Clearer: clearer}
	for _, o := range orders {
		b.Orders = append(b.Orders, o)
	}
	return b.Encode()
}

func TestBookRejections(t *testing.T) {
	o1, o2, o3 := sign(t, exampleOrders[0]), sign(t, exampleOrders[1]), sign(t, exampleOrders[2])
	c1, c2 := newTestRoster(t, "c1"), newTestRoster(t, "c2")
	later, err := SignOrder(testKey("home2"), testCommunity, "2026-11-22T12:30Z", "home2", auction.Buy, 1, 1, testMarket)
	if err != nil {
		t.Fatal(err)
	}
	good := bookOf("c1", testInterval, "home1", o1, o2, o3)
	for _, tc := range []struct {
		name   string
		data   []byte
		roster *Roster
		want   RejectReason
		msg    string
	}{
		{"tampered order", bookOf("c1", testInterval, "home1", o1, tamper(t, o2, `"kwh":"2"`, `"kwh":"20"`), o3), c1, RejectForged, `orders[1]: order from "home2"`},
		{"order under another name", bookOf("c1", testInterval, "home1", o1, tamper(t, o3, `"gateway":"home3"`, `"gateway":"home2"`)), c1, RejectForged, "orders[1]"},
		{"duplicate gateway", bookOf("c1", testInterval, "home1", o1, o2, o2), c1, RejectDuplicate, `gateway "home2" has two orders`},
		{"unsorted", bookOf("c1", testInterval, "home1", o2, o1), c1, RejectMalformed, "sorted"},
		{"order of another interval", bookOf("c1", testInterval, "home1", o1, later), c1, RejectWrongInterval, "orders[1]"},
		{"book of another community", good, c2, RejectWrongCommunity, `community "c1", not "c2"`},
		{"clearer not a clearer", bookOf("c1", testInterval, "home2", o1, o2), c1, RejectForged, `"home2" is not a clearer`},
		{"clearer unknown", bookOf("c1", testInterval, "mallory", o1, o2), c1, RejectForged, `"mallory" is not a clearer`},
		{"unsigned order", bookOf("c1", testInterval, "home1", o1, tamper(t, o2, sigOf(t, o2), "")), c1, RejectUnsigned, `orders[1]: order from "home2"`},
		{"order with an unknown key", bookOf("c1", testInterval, "home1", o1, tamper(t, o2, `"sig":`, `"x":1,"sig":`)), c1, RejectMalformed, `orders[1]: order: key "x"`},
		{"order not an object", bookOf("c1", testInterval, "home1", []byte(`1`)), c1, RejectMalformed, "orders[0]"},
		{"unknown key", tamper(t, good, `"clearer"`, `"Clearer"`), c1, RejectMalformed, `"Clearer": unknown key`},
		{"orders missing", []byte(`{"v":1,"community":"c1","interval":"2026-11-22T12:15Z","clearer":"home1"}`), c1, RejectMalformed, `"orders" is missing`},
		{"orders null", tamper(t, good, `"orders":[`+string(o1)+","+string(o2)+","+string(o3)+"]", `"orders":null`), c1, RejectMalformed, "want an array"},
		{"trailing data", append(bytes.Clone(good), '1'), c1, RejectMalformed, "trailing data"},
		{"oversize", append(bytes.Clone(good), bytes.Repeat([]byte(" "), MaxBookSize)...), c1, RejectOversize, "at most"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := DecodeBook(tc.data)
			if err == nil {
				_, err = b.Verify(tc.roster, testMarket)
			}
			wantReason(t, err, tc.want)
			if !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("error %q does not say %q", err, tc.msg)
			}
		})
	}
}
