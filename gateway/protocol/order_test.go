package protocol

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/p2pgrid/p2pgrid/auction"
	"github.com/shopspring/decimal"
)

func TestSignVerifyRoundTrip(t *testing.T) {
	r := newTestRoster(t, testCommunity)
	for _, o := range exampleOrders {
		data := sign(t, o)
		msg, err := DecodeOrder(data)
		if err != nil {
			t.Fatal(err)
		}
		if msg.Community != testCommunity || msg.Interval != testInterval || msg.Gateway != o.gateway || msg.Side != o.side {
			t.Errorf("decoded %+v from %s", msg, data)
		}
		if got := msg.Encode(); !bytes.Equal(got, data) {
			t.Errorf("re-encoded\n%s\nwant\n%s", got, data)
		}
		got, err := msg.Verify(r, testMarket)
		if err != nil {
			t.Fatal(err)
		}
		want := []auction.Order{{ID: o.gateway, Participant: o.gateway, Side: o.side, Qty: o.qty, Price: o.price}}
		if !slices.Equal(got, want) {
			t.Errorf("verified %+v, want %+v", got, want)
		}
	}
}

func TestSignOrderExactPayload(t *testing.T) {
	data := sign(t, exampleOrders[0])
	prefix := `{"v":1,"community":"c1","interval":"2026-11-22T12:15Z","gateway":"home1","side":"sell","kwh":"1.234","price":"0.12","sig":"`
	if !strings.HasPrefix(string(data), prefix) || !strings.HasSuffix(string(data), `=="}`) {
		t.Fatalf("payload %s\nwant it to start %s", data, prefix)
	}
	// The signature is over the documented canonical text.
	msg, err := DecodeOrder(data)
	if err != nil {
		t.Fatal(err)
	}
	text := "p2pgrid-order/1\ncommunity c1\ninterval 2026-11-22T12:15Z\ngateway home1\nside sell\nkwh 1.234\nprice 0.12\n"
	if !ed25519.Verify(testPub("home1"), []byte(text), msg.Sig) {
		t.Fatalf("signature is not over the canonical text %q", text)
	}
}

// The signed text holds the market's shortest exact form, so any spelling of
// the same numbers verifies; different numbers do not.
func TestOrderCanonicalNumbers(t *testing.T) {
	r := newTestRoster(t, testCommunity)
	data := string(sign(t, exampleOrders[0]))
	for _, tc := range []struct {
		kwh, price string
		ok         bool
	}{
		{"1.234", "0.12", true},
		{"1.2340", "0.120000", true},
		{"01.234", "12e-2", true},
		{"1234e-3", "0.12E0", true},
		{"1.235", "0.12", false},
		{"1.234", "0.121", false},
	} {
		s := strings.Replace(data, `"kwh":"1.234"`, `"kwh":"`+tc.kwh+`"`, 1)
		s = strings.Replace(s, `"price":"0.12"`, `"price":"`+tc.price+`"`, 1)
		msg, err := DecodeOrder([]byte(s))
		if err != nil {
			t.Fatal(err)
		}
		os, err := msg.Verify(r, testMarket)
		if tc.ok {
			if err != nil || len(os) != 1 || os[0].Qty != 1234 || os[0].Price != 120000 {
				t.Errorf("kwh %s price %s: %+v, %v; want 1234 quanta at 120000 ticks", tc.kwh, tc.price, os, err)
			}
		} else {
			wantReason(t, err, RejectForged)
		}
	}
}

// tamper replaces the first old in a signed payload with new.
func tamper(t *testing.T, data []byte, old, new string) []byte {
	t.Helper()
	if !bytes.Contains(data, []byte(old)) {
		t.Fatalf("%s does not hold %s", data, old)
	}
	return bytes.Replace(data, []byte(old), []byte(new), 1)
}

func TestOrderRejections(t *testing.T) {
	good := sign(t, exampleOrders[0]) // home1 sells 1.234 kWh at 0.12
	c1, c2 := newTestRoster(t, "c1"), newTestRoster(t, "c2")
	signedAs := func(key, community, interval, gateway string) []byte {
		data, err := SignOrder(testKey(key), community, interval, gateway, auction.Sell, 1234, 120000, testMarket)
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	sig := func(data []byte) string { return sigOf(t, data) }
	flipped := func() []byte { // one bit of the signature flipped
		msg, _ := DecodeOrder(good)
		msg.Sig[10] ^= 1
		return msg.Encode()
	}()
	capped := func() *auction.Market {
		rules := auction.DefaultRules()
		cap := decimal.RequireFromString("0.1")
		rules.PriceCap = &cap
		m, err := auction.NewMarket(rules)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}()
	for _, tc := range []struct {
		name   string
		data   []byte
		roster *Roster
		market *auction.Market
		want   RejectReason
		msg    string // the error names this
	}{
		{"signed by another key", signedAs("home2", "c1", testInterval, "home1"), c1, nil, RejectForged, "signature"},
		{"signed by a key outside the roster", signedAs("mallory", "c1", testInterval, "home1"), c1, nil, RejectForged, "signature"},
		{"posted under another gateway's name", tamper(t, good, `"gateway":"home1"`, `"gateway":"home2"`), c1, nil, RejectForged, `"home2"`},
		{"tampered community (replayed into c2)", tamper(t, good, `"community":"c1"`, `"community":"c2"`), c2, nil, RejectForged, "signature"},
		{"tampered interval (replayed into the next interval)", tamper(t, good, testInterval, "2026-11-22T12:30Z"), c1, nil, RejectForged, "signature"},
		{"tampered side", tamper(t, good, `"side":"sell"`, `"side":"buy"`), c1, nil, RejectForged, "signature"},
		{"tampered kwh", tamper(t, good, `"kwh":"1.234"`, `"kwh":"12.34"`), c1, nil, RejectForged, "signature"},
		{"tampered price", tamper(t, good, `"price":"0.12"`, `"price":"0.21"`), c1, nil, RejectForged, "signature"},
		{"tampered signature", flipped, c1, nil, RejectForged, "signature"},
		{"another order's signature", tamper(t, good, sig(good), sig(sign(t, exampleOrders[2]))), c1, nil, RejectForged, "signature"},
		{"verbatim into another community", good, c2, nil, RejectWrongCommunity, `"c2"`},
		{"unknown gateway", signedAs("home9", "c1", testInterval, "home9"), c1, nil, RejectForged, `"home9" is not in the roster`},
		{"empty signature", tamper(t, good, sig(good), ""), c1, nil, RejectUnsigned, "no signature"},
		{"no signature", tamper(t, good, `,"sig":"`+sig(good)+`"`, ""), c1, nil, RejectUnsigned, "no signature"},
		{"against the market rules", good, c1, capped, RejectInvalid, "price cap"},
		{"too many decimals", tamper(t, good, `"kwh":"1.234"`, `"kwh":"1.2345"`), c1, nil, RejectInvalid, "too many decimals"},
		{"oversize", append(good[:len(good)-1:len(good)-1], strings.Repeat(" ", MaxOrderSize)+"}"...), c1, nil, RejectOversize, "4096"},
		{"not JSON", []byte(`{"v":1,"community":`), c1, nil, RejectMalformed, "unexpected EOF"},
		{"empty payload", []byte(``), c1, nil, RejectMalformed, "empty payload"},
		{"an array", []byte(`[1]`), c1, nil, RejectMalformed, "want a JSON object"},
		{"trailing data", append(bytes.Clone(good), `{}`...), c1, nil, RejectMalformed, "trailing data"},
		{"duplicate key", tamper(t, good, `"kwh":"1.234"`, `"kwh":"1.234","kwh":"1"`), c1, nil, RejectMalformed, `"kwh" appears twice`},
		{"duplicate key, escaped", tamper(t, good, `"kwh":"1.234"`, `"kwh":"1.234","k\u0077h":"1"`), c1, nil, RejectMalformed, `"kwh" appears twice`},
		{"unknown key", tamper(t, good, `"kwh"`, `"KWH"`), c1, nil, RejectMalformed, `"KWH": unknown key`},
		{"missing key", tamper(t, good, `"side":"sell",`, ``), c1, nil, RejectMalformed, `"side" is missing`},
		{"number, not string", tamper(t, good, `"kwh":"1.234"`, `"kwh":1.234`), c1, nil, RejectMalformed, `"kwh": want a string`},
		{"not a number", tamper(t, good, `"kwh":"1.234"`, `"kwh":"one"`), c1, nil, RejectMalformed, `"kwh"`},
		{"null", tamper(t, good, `"gateway":"home1"`, `"gateway":null`), c1, nil, RejectMalformed, `"gateway": want a string`},
		{"version 3", tamper(t, good, `"v":1`, `"v":3`), c1, nil, RejectMalformed, "unsupported version 3"},
		{"v1 keys as version 2", tamper(t, good, `"v":1`, `"v":2`), c1, nil, RejectMalformed, `key "side" is not part of a v2 order`},
		{"version 1.0", tamper(t, good, `"v":1`, `"v":1.0`), c1, nil, RejectMalformed, "version 1.0"},
		{"bad side", tamper(t, good, `"side":"sell"`, `"side":"SELL"`), c1, nil, RejectMalformed, `"side"`},
		{"bad interval", tamper(t, good, testInterval, "2026-11-22T12:15:00Z"), c1, nil, RejectMalformed, "interval"},
		{"gateway with a slash", tamper(t, good, `"gateway":"home1"`, `"gateway":"home1/x"`), c1, nil, RejectMalformed, `'/'`},
		{"bad signature encoding", tamper(t, good, sig(good), "AAAA"), c1, nil, RejectMalformed, "64-byte"},
	} {
		t.Run(tc.name, func(t *testing.T) { wantOrderRejected(t, tc.data, tc.roster, tc.market, tc.want, tc.msg) })
	}
}

// wantOrderRejected decodes and verifies an order message against r and m
// (testMarket if nil) and fails t unless it is rejected for want with an
// error that says msg.
func wantOrderRejected(t *testing.T, data []byte, r *Roster, m *auction.Market, want RejectReason, msg string) {
	t.Helper()
	if m == nil {
		m = testMarket
	}
	o, err := DecodeOrder(data)
	if err == nil {
		_, err = o.Verify(r, m)
	}
	wantReason(t, err, want)
	t.Log(err)
	if !strings.Contains(err.Error(), msg) {
		t.Errorf("error %q does not say %q", err, msg)
	}
}

func TestSignOrderRefusesBadInput(t *testing.T) {
	key := testKey("home1")
	for name, f := range map[string]func() error{
		"community": func() error {
			_, err := SignOrder(key, "c/1", testInterval, "home1", auction.Sell, 1, 1, testMarket)
			return err
		},
		"interval": func() error {
			_, err := SignOrder(key, "c1", "2026-11-22", "home1", auction.Sell, 1, 1, testMarket)
			return err
		},
		"gateway": func() error {
			_, err := SignOrder(key, "c1", testInterval, "home+", auction.Sell, 1, 1, testMarket)
			return err
		},
		"kwh": func() error {
			_, err := SignOrder(key, "c1", testInterval, "home1", auction.Sell, 0, 1, testMarket)
			return err
		},
		"side": func() error {
			_, err := SignOrder(key, "c1", testInterval, "home1", 0, 1, 1, testMarket)
			return err
		},
		"key": func() error {
			_, err := SignOrder(key[:10], "c1", testInterval, "home1", auction.Sell, 1, 1, testMarket)
			return err
		},
	} {
		if err := f(); err == nil {
			t.Errorf("bad %s: signed", name)
		} else if name != "key" && name != "interval" && !strings.Contains(err.Error(), name) {
			t.Errorf("bad %s: error %q does not name it", name, err)
		}
	}
}

func TestRejectError(t *testing.T) {
	inner := errors.New("boom")
	err := reject(RejectForged, "order %q: %w", "x", inner)
	if !errors.Is(err, inner) || ReasonOf(err) != RejectForged || err.Error() != `order "x": boom (forged)` {
		t.Fatalf("%v", err)
	}
	// Wrapping a *RejectError keeps one reason in the text and the new one in the chain.
	outer := reject(RejectDuplicate, "book: %w", err)
	if ReasonOf(outer) != RejectDuplicate || outer.Error() != `book: order "x": boom (duplicate)` || !errors.Is(outer, inner) {
		t.Fatalf("%v", outer)
	}
	if ReasonOf(nil) != "" || ReasonOf(inner) != "" {
		t.Fatal("ReasonOf of an error without a reason is not empty")
	}
	if len(RejectReasons) != 11 {
		t.Fatalf("%d reasons", len(RejectReasons))
	}
}
