package protocol

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/p2pgrid/p2pgrid/auction"
	"github.com/shopspring/decimal"
	"pgregory.net/rapid"
)

// exampleSteps is the documented bid curve of home2: buy 1 kWh up to 0.25,
// 3 kWh more up to 0.12.
var exampleSteps = []Step{{auction.Buy, 1000, 250000}, {auction.Buy, 3000, 120000}}

// signSteps signs gateway's v2 order of steps for the example community and
// interval.
func signSteps(t testing.TB, gateway string, steps []Step) []byte {
	t.Helper()
	data, err := SignOrderSteps(testKey(gateway), testCommunity, testInterval, gateway, steps, testMarket)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// signStepsUnchecked signs steps as SignOrderSteps does but without
// checking them, as a faulty or hostile gateway might.
func signStepsUnchecked(gateway string, steps []Step) []byte {
	msg := &OrderMsg{Community: testCommunity, Interval: testInterval, Gateway: gateway, Steps: []OrderStep{}}
	orders := make([]auction.Order, len(steps))
	for i, s := range steps {
		msg.Steps = append(msg.Steps, OrderStep{s.Side, testMarket.FormatKWh(s.Qty), testMarket.FormatPrice(s.Price)})
		orders[i] = auction.Order{Side: s.Side, Qty: s.Qty, Price: s.Price}
	}
	msg.Sig = ed25519.Sign(testKey(gateway), stepsText(testCommunity, testInterval, gateway, testMarket, orders))
	return msg.Encode()
}

func TestStepsRoundTrip(t *testing.T) {
	r := newTestRoster(t, testCommunity)
	for name, steps := range map[string][]Step{
		"buy curve":      exampleSteps,
		"one step":       {{auction.Sell, 500, 90000}},
		"battery":        {{auction.Sell, 2000, 200000}, {auction.Sell, 1000, 300000}, {auction.Buy, 1500, 80000}, {auction.Buy, 2500, 50000}},
		"eight steps":    {{auction.Sell, 1, 1}, {auction.Sell, 1, 2}, {auction.Sell, 1, 3}, {auction.Sell, 1, 4}, {auction.Sell, 1, 5}, {auction.Sell, 1, 6}, {auction.Sell, 1, 7}, {auction.Sell, 1, 8}},
		"negative price": {{auction.Sell, 700, -20000}, {auction.Sell, 700, 0}},
	} {
		t.Run(name, func(t *testing.T) {
			data := signSteps(t, "home2", steps)
			msg, err := DecodeOrder(data)
			if err != nil {
				t.Fatal(err)
			}
			if msg.Version() != 2 || len(msg.Steps) != len(steps) || msg.KWh != "" || msg.Side != 0 {
				t.Fatalf("decoded %+v", msg)
			}
			if got := msg.Encode(); !bytes.Equal(got, data) {
				t.Errorf("re-encoded\n%s\nwant\n%s", got, data)
			}
			got, err := msg.Verify(r, testMarket)
			if err != nil {
				t.Fatal(err)
			}
			var want []auction.Order
			for i, s := range steps {
				want = append(want, auction.Order{ID: fmt.Sprintf("home2:%d", i+1), Participant: "home2", Side: s.Side, Qty: s.Qty, Price: s.Price})
			}
			if !slices.Equal(got, want) {
				t.Errorf("verified %+v, want %+v", got, want)
			}
		})
	}
}

// A v2 message signs its quantised numbers, so spelling them otherwise
// ("1.000" for "1") keeps the signature valid, as in v1.
func TestStepsSignShortestForm(t *testing.T) {
	data := tamper(t, signSteps(t, "home2", exampleSteps), `"kwh":"1"`, `"kwh":"1.000"`)
	msg, err := DecodeOrder(data)
	if err != nil {
		t.Fatal(err)
	}
	if os, err := msg.Verify(newTestRoster(t, testCommunity), testMarket); err != nil || os[0].Qty != 1000 {
		t.Fatalf("%+v, %v", os, err)
	}
}

func TestStepsRejections(t *testing.T) {
	good := signSteps(t, "home2", exampleSteps)
	c1 := newTestRoster(t, testCommunity)
	capped := func() *auction.Market {
		r := auction.DefaultRules()
		c := decimal.RequireFromString("0.20")
		r.PriceCap = &c
		r.MaxOrderKWh = decimal.NewFromInt(3)
		m, err := auction.NewMarket(r)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}()
	nine := make([]string, 9)
	for i := range nine {
		nine[i] = `{"side":"sell","kwh":"1","price":"0.1"}`
	}
	long := strings.Repeat("g", 63)
	sig := func(data []byte) string { return sigOf(t, data) }
	stepsArray := string(good[bytes.IndexByte(good, '[') : bytes.IndexByte(good, ']')+1])
	stepsKey := `,"steps":` + stepsArray
	for _, tc := range []struct {
		name   string
		data   []byte
		market *auction.Market
		want   RejectReason
		msg    string // the error names this
	}{
		{"tampered step kwh", tamper(t, good, `"kwh":"3"`, `"kwh":"30"`), nil, RejectForged, "signature"},
		{"tampered step price", tamper(t, good, `"price":"0.12"`, `"price":"0.11"`), nil, RejectForged, "signature"},
		{"steps dropped", tamper(t, good, `,{"side":"buy","kwh":"3","price":"0.12"}`, ``), nil, RejectForged, "signature"},
		{"signed by another key", tamper(t, good, sig(good), sig(signSteps(t, "home3", exampleSteps))), nil, RejectForged, "signature"},
		{"a v1 order's signature", tamper(t, good, sig(good), sig(sign(t, exampleOrders[1]))), nil, RejectForged, "signature"},
		{"unsigned", tamper(t, good, sig(good), ""), nil, RejectUnsigned, "no signature"},
		{"unknown gateway", signStepsUnchecked("home9", exampleSteps), nil, RejectForged, "not in the roster"},
		{"buy prices rising", signStepsUnchecked("home2", []Step{{auction.Buy, 1000, 120000}, {auction.Buy, 1000, 250000}}), nil, RejectInvalid, `"home2:2": price: buy at 0.25 after a buy at 0.12`},
		{"equal buy prices", signStepsUnchecked("home2", []Step{{auction.Buy, 1000, 120000}, {auction.Buy, 1000, 120000}}), nil, RejectInvalid, "must fall strictly"},
		{"sell prices falling", signStepsUnchecked("home2", []Step{{auction.Sell, 1000, 250000}, {auction.Sell, 1000, 120000}}), nil, RejectInvalid, "must rise strictly"},
		{"sell after buy", signStepsUnchecked("home2", []Step{{auction.Buy, 1000, 100000}, {auction.Sell, 1000, 250000}}), nil, RejectInvalid, `"home2:2": side: a sell step after a buy step`},
		{"buy crossing own sell", signStepsUnchecked("home2", []Step{{auction.Sell, 1000, 100000}, {auction.Buy, 1000, 100000}}), nil, RejectInvalid, "not below the lowest sell price 0.1"},
		{"zero kwh step", signStepsUnchecked("home2", []Step{{auction.Buy, 1000, 250000}, {auction.Buy, 0, 120000}}), nil, RejectInvalid, `"home2:2": kwh: 0 is not positive`},
		{"step above the price cap", good, capped, RejectInvalid, `"home2:1": price: 0.25 is above the price cap`},
		{"total above the order limit", signSteps(t, "home2", []Step{{auction.Buy, 1000, 190000}, {auction.Buy, 3000, 120000}}), capped, RejectInvalid, "the steps total 4, beyond the order limit 3"},
		{"too many decimals", tamper(t, good, `"kwh":"3"`, `"kwh":"3.0001"`), nil, RejectInvalid, "steps[1]"},
		{"nine steps", tamper(t, good, stepsArray, "["+strings.Join(nine, ",")+"]"), nil, RejectMalformed, "more than 8 steps"},
		{"no steps", tamper(t, good, stepsArray, "[]"), nil, RejectMalformed, "no steps"},
		{"steps not an array", tamper(t, good, stepsArray, `{}`), nil, RejectMalformed, "want an array of steps"},
		{"steps null", tamper(t, good, stepsArray, `null`), nil, RejectMalformed, "want an array of steps"},
		{"step not an object", tamper(t, good, `{"side":"buy","kwh":"3","price":"0.12"}`, `3`), nil, RejectMalformed, "steps[1]"},
		{"step missing price", tamper(t, good, `,"price":"0.12"`, ``), nil, RejectMalformed, `steps[1]: key "price" is missing`},
		{"step unknown key", tamper(t, good, `"kwh":"3"`, `"kWh":"3"`), nil, RejectMalformed, `steps[1]: key "kWh": unknown key`},
		{"step kwh a number", tamper(t, good, `"kwh":"3"`, `"kwh":3`), nil, RejectMalformed, `"kwh": want a string`},
		{"step bad side", tamper(t, good, `"side":"buy","kwh":"3"`, `"side":"BUY","kwh":"3"`), nil, RejectMalformed, `steps[1]: key "side"`},
		{"step repeated key", tamper(t, good, `"kwh":"3"`, `"kwh":"3","kwh":"3"`), nil, RejectMalformed, `"kwh" appears twice`},
		{"v2 with a v1 side", tamper(t, good, `"steps"`, `"side":"buy","steps"`), nil, RejectMalformed, `key "side" is not part of a v2 order`},
		{"v2 without steps", tamper(t, good, stepsKey, ``), nil, RejectMalformed, `key "steps" is missing`},
		{"steps in a v1 order", tamper(t, sign(t, exampleOrders[1]), `"side"`, `"steps":[{"side":"buy","kwh":"1","price":"1"}],"side"`), nil, RejectMalformed, `key "steps" is not part of a v1 order`},
		{"v2 gateway id too long for step ids", tamper(t, good, `"gateway":"home2"`, `"gateway":"`+long+`"`), nil, RejectMalformed, "at most 62"},
	} {
		t.Run(tc.name, func(t *testing.T) { wantOrderRejected(t, tc.data, c1, tc.market, tc.want, tc.msg) })
	}
}

func TestCheckSteps(t *testing.T) {
	m := testMarket
	max := m.MaxOrderQty()
	for _, tc := range []struct {
		name  string
		steps []Step
		field string // "" when valid
		id    string
	}{
		{"one buy", []Step{{auction.Buy, 1, 1}}, "", ""},
		{"sells then buys below", []Step{{auction.Sell, 1, 10}, {auction.Sell, 1, 11}, {auction.Buy, 1, 9}, {auction.Buy, 1, 8}}, "", ""},
		{"total at the limit", []Step{{auction.Sell, max - 1, 10}, {auction.Sell, 1, 11}}, "", ""},
		{"total beyond the limit", []Step{{auction.Sell, max, 10}, {auction.Sell, 1, 11}}, "kwh", "g"},
		{"none", nil, "steps", "g"},
		{"nine", slices.Repeat([]Step{{auction.Sell, 1, 1}}, 9), "steps", "g"},
		{"bad side", []Step{{auction.Buy, 1, 2}, {0, 1, 1}}, "side", "g:2"},
		{"buy above the lowest sell", []Step{{auction.Sell, 1, 10}, {auction.Sell, 1, 20}, {auction.Buy, 1, 15}}, "price", "g:3"},
		{"buy at the lowest sell", []Step{{auction.Sell, 1, 10}, {auction.Buy, 1, 10}}, "price", "g:2"},
		{"buy just below", []Step{{auction.Sell, 1, 10}, {auction.Buy, 1, 9}}, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckSteps(m, "g", tc.steps)
			if tc.field == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var oe *auction.OrderError
			if !errors.As(err, &oe) || oe.Field != tc.field || oe.ID != tc.id || !errors.Is(err, auction.ErrInvalidOrder) {
				t.Fatalf("error %v (%#v), want field %s of %q", err, oe, tc.field, tc.id)
			}
			if tc.field == "kwh" && !errors.Is(err, auction.ErrOutOfRange) {
				t.Errorf("total beyond the limit is not ErrOutOfRange: %v", err)
			}
		})
	}
}

// A gateway's own buy and sell steps never trade with each other, whatever
// the clearing price and fee: CheckSteps keeps every buy below every sell.
func TestStepsNeverSelfTrade(t *testing.T) {
	for _, fee := range []string{"0", "0.01"} {
		r := auction.DefaultRules()
		r.Fee = decimal.RequireFromString(fee)
		m, err := auction.NewMarket(r)
		if err != nil {
			t.Fatal(err)
		}
		steps := []Step{{auction.Sell, 1000, 150000}, {auction.Buy, 1000, 149999}}
		if err := CheckSteps(m, "bat", steps); err != nil {
			t.Fatal(err)
		}
		for _, other := range []auction.Order{
			{ID: "x", Participant: "x", Side: auction.Buy, Qty: 500, Price: 200000},
			{ID: "x", Participant: "x", Side: auction.Sell, Qty: 500, Price: 100000},
		} {
			book := auction.Book{Orders: []auction.Order{other}}
			for i, s := range steps {
				book.Orders = append(book.Orders, auction.Order{ID: StepID("bat", i), Participant: "bat", Side: s.Side, Qty: s.Qty, Price: s.Price})
			}
			res, err := m.Clear(book)
			if err != nil {
				t.Fatal(err)
			}
			for _, tr := range res.Trades {
				if res.Sell(tr).Participant == res.Buy(tr).Participant {
					t.Errorf("fee %s, %+v: self trade %+v", fee, other, tr)
				}
			}
			if !res.Cleared || len(res.Trades) != 1 {
				t.Errorf("fee %s, %+v: want one trade against the battery, got %+v", fee, other, res.Trades)
			}
		}
	}
}

func TestSignOrderStepsRefusesBadInput(t *testing.T) {
	key := testKey("home2")
	for name, err := range map[string]error{
		"steps out of order": func() error {
			_, err := SignOrderSteps(key, "c1", testInterval, "home2", []Step{{auction.Buy, 1, 1}, {auction.Buy, 1, 2}}, testMarket)
			return err
		}(),
		"no steps": func() error {
			_, err := SignOrderSteps(key, "c1", testInterval, "home2", nil, testMarket)
			return err
		}(),
		"gateway too long": func() error {
			_, err := SignOrderSteps(key, "c1", testInterval, strings.Repeat("g", 63), exampleSteps, testMarket)
			return err
		}(),
		"interval": func() error {
			_, err := SignOrderSteps(key, "c1", "2026-11-22", "home2", exampleSteps, testMarket)
			return err
		}(),
		"key": func() error {
			_, err := SignOrderSteps(key[:10], "c1", testInterval, "home2", exampleSteps, testMarket)
			return err
		}(),
	} {
		if err == nil {
			t.Errorf("%s: signed", name)
		}
	}
}

// A book may mix v1 and v2 orders: it verifies into one auction order per
// v1 message and one per step, in gateway order, with step ids; its
// canonical encoding and digest are the same for the same messages in any
// arrival order.
func TestBookMixesVersions(t *testing.T) {
	r := newTestRoster(t, testCommunity)
	v2 := signSteps(t, "home2", exampleSteps)
	v1a, v1c := sign(t, exampleOrders[0]), sign(t, exampleOrders[2])
	var digests []string
	for _, orders := range [][][]byte{{v1a, v2, v1c}, {v1c, v1a, v2}, {v2, v1c, v1a}} {
		data, err := EncodeBook(testCommunity, testInterval, "home1", orders)
		if err != nil {
			t.Fatal(err)
		}
		b, err := DecodeBook(data)
		if err != nil {
			t.Fatal(err)
		}
		book, err := b.Verify(r, testMarket)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, o := range book.Orders {
			ids = append(ids, o.ID+"@"+o.Participant)
		}
		if want := []string{"home1@home1", "home2:1@home2", "home2:2@home2", "home3@home3"}; !slices.Equal(ids, want) {
			t.Fatalf("ids %v, want %v", ids, want)
		}
		res, err := testMarket.Clear(book)
		if err != nil {
			t.Fatal(err)
		}
		digests = append(digests, res.BookDigest())
		// Sells 0.8 at 0.10 and 1.234 at 0.12; home2 buys 1 up to 0.25 and
		// 3 more up to 0.12: both its steps trade, 2.034 kWh in all.
		var bought int64
		for _, f := range res.Fills {
			if f.Participant == "home2" {
				bought += f.Qty
			}
		}
		if !res.Cleared || res.Volume != 2034 || bought != 2034 {
			t.Errorf("volume %d, home2 bought %d; want 2034", res.Volume, bought)
		}
	}
	if digests[0] != digests[1] || digests[1] != digests[2] {
		t.Errorf("book digests differ with arrival order: %v", digests)
	}
	// A forged step in the book fails the whole book, naming the order.
	bad := tamper(t, v2, `"kwh":"3"`, `"kwh":"4"`)
	data := bookOf(testCommunity, testInterval, "home1", v1a, bad, v1c)
	b, err := DecodeBook(data)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Verify(r, testMarket); ReasonOf(err) != RejectForged || !strings.Contains(err.Error(), "orders[1]") {
		t.Errorf("book with a forged v2 order: %v", err)
	}
}

// CheckSteps agrees with the rule written out plainly, and a curve is
// accepted by Verify exactly when CheckSteps accepts it.
func TestPropertySteps(t *testing.T) {
	r := newTestRoster(t, testCommunity)
	rules := auction.DefaultRules()
	rules.MaxOrderKWh = decimal.NewFromInt(10)
	m, err := auction.NewMarket(rules)
	if err != nil {
		t.Fatal(err)
	}
	rapid.Check(t, func(t *rapid.T) {
		// Mostly short curves, whose random steps are often valid, and the
		// bounds.
		n := rapid.SampledFrom([]int{0, 1, 2, 2, 2, 3, 3, 4, MaxSteps, MaxSteps + 1}).Draw(t, "steps")
		steps := make([]Step, n)
		for i := range steps {
			steps[i] = Step{
				Side:  rapid.SampledFrom([]auction.Side{auction.Buy, auction.Sell}).Draw(t, "side"),
				Qty:   rapid.Int64Range(0, 6000).Draw(t, "qty"),
				Price: rapid.Int64Range(-2, 2).Draw(t, "price"),
			}
		}
		valid := n >= 1 && n <= MaxSteps
		var total int64
		for i, s := range steps {
			total += s.Qty
			valid = valid && s.Qty > 0
			for _, p := range steps[:i] { // every earlier step
				switch {
				case p.Side == auction.Buy && s.Side == auction.Sell:
					valid = false // sells come first
				case p.Side == s.Side && s.Side == auction.Sell && s.Price <= p.Price:
					valid = false
				case p.Side == s.Side && s.Side == auction.Buy && s.Price >= p.Price:
					valid = false
				case p.Side == auction.Sell && s.Side == auction.Buy && s.Price >= p.Price:
					valid = false // a buy at or above a sell
				}
			}
		}
		valid = valid && total <= 10_000
		err := CheckSteps(m, "home2", steps)
		if (err == nil) != valid {
			t.Fatalf("CheckSteps(%+v) = %v, want valid %v", steps, err, valid)
		}
		if n < 1 || n > MaxSteps {
			return // no message of that many steps decodes
		}
		msg, err := DecodeOrder(signStepsUnchecked("home2", steps))
		if err != nil {
			t.Fatal(err)
		}
		os, err := msg.Verify(r, m)
		if (err == nil) != valid {
			t.Fatalf("Verify(%+v) = %v, want valid %v", steps, err, valid)
		}
		if err != nil {
			if ReasonOf(err) != RejectInvalid {
				t.Fatalf("reason %q: %v", ReasonOf(err), err)
			}
			return
		}
		for i, o := range os {
			if o.ID != StepID("home2", i) || o.Participant != "home2" || (Step{o.Side, o.Qty, o.Price}) != steps[i] {
				t.Fatalf("step %d: %+v, want %+v", i, o, steps[i])
			}
		}
	})
}
