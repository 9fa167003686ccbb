package protocol

import (
	"crypto/ed25519"
	"encoding/base64"
	"fmt"

	"github.com/p2pgrid/p2pgrid/auction"
	"github.com/p2pgrid/p2pgrid/market"
)

// OrderMsg is a gateway's signed order for one interval, as published on
// orders/<gateway>:
//
//	{"v":1,"community":"c1","interval":"2026-11-22T12:15Z","gateway":"home1",
//	 "side":"sell","kwh":"1.234","price":"0.12","sig":"<base64>"}
//
// or, from a gateway offering several price-quantity steps (a bid curve),
// as a v2 message with a list of steps in place of side, kwh and price:
//
//	{"v":2,"community":"c1","interval":"2026-11-22T12:15Z","gateway":"home2",
//	 "steps":[{"side":"buy","kwh":"1","price":"0.25"},
//	          {"side":"buy","kwh":"3","price":"0.12"}],"sig":"<base64>"}
//
// A gateway has at most one order message per interval. A v1 message is one
// auction order whose id and participant are both the gateway id; a v2
// message is one auction order per step (see StepID and CheckSteps).
type OrderMsg struct {
	Community string
	Interval  string // interval id, see IntervalID
	Gateway   string
	// Side, KWh and Price are a v1 message's; they are unset in a v2 one.
	Side  auction.Side
	KWh   string // decimal text as sent; quantised by Verify
	Price string // decimal text as sent, per kWh
	// Steps are a v2 message's, never empty in one; nil in a v1 message.
	Steps []OrderStep
	Sig   []byte // Ed25519 signature of the canonical order text
}

// Version is the message's protocol version: 2 with steps, else 1.
func (o *OrderMsg) Version() int {
	if o.Steps != nil {
		return 2
	}
	return 1
}

// MaxOrderSize bounds an order message.
const MaxOrderSize = 4 << 10

// maxNumberText bounds the text of kwh and price, as package auction does.
const maxNumberText = 64

// orderText is the canonical text a gateway signs. It names the community,
// the interval and the gateway, so that a signature cannot be replayed into
// another community or interval or under another name, and it writes kWh and
// price in the market's shortest exact form, so that "1.2340" and "1.234"
// sign the same.
func orderText(community, interval, gateway string, side auction.Side, kwh, price string) []byte {
	return fmt.Appendf(nil, "p2pgrid-order/1\ncommunity %s\ninterval %s\ngateway %s\nside %s\nkwh %s\nprice %s\n",
		community, interval, gateway, side, kwh, price)
}

// SignOrder builds and signs gateway's order for interval: qty quanta of kWh
// at price ticks per kWh, in the market's resolution. It returns the JSON to
// publish on orders/<gateway>. The order must be valid for the market.
func SignOrder(key ed25519.PrivateKey, community, interval, gateway string, side auction.Side, qty, price int64, m *auction.Market) ([]byte, error) {
	if err := CheckID(community); err != nil {
		return nil, fmt.Errorf("sign order: community %q: %w", community, err)
	}
	if _, err := market.ParseInterval(interval); err != nil {
		return nil, fmt.Errorf("sign order: %w", err)
	}
	if err := CheckID(gateway); err != nil {
		return nil, fmt.Errorf("sign order: gateway %q: %w", gateway, err)
	}
	if len(key) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("sign order: private key of %d bytes (want %d)", len(key), ed25519.PrivateKeySize)
	}
	o := auction.Order{ID: gateway, Participant: gateway, Side: side, Qty: qty, Price: price}
	if err := m.CheckOrder(o); err != nil {
		return nil, fmt.Errorf("sign order: %w", err)
	}
	msg := &OrderMsg{
		Community: community, Interval: interval, Gateway: gateway, Side: side,
		KWh: m.FormatKWh(qty), Price: m.FormatPrice(price),
	}
	msg.Sig = ed25519.Sign(key, orderText(community, interval, gateway, side, msg.KWh, msg.Price))
	return msg.Encode(), nil
}

// DecodeOrder reads an order message strictly: at most MaxOrderSize bytes;
// every key present once, exactly as spelled, with a value of the right
// type; "v" 1 with side, kwh and price, or "v" 2 with steps (at most
// MaxSteps, each a side, kwh and price, and a gateway id of at most 62
// characters); valid ids and interval; kwh and price decimal strings. A
// missing or empty "sig" is RejectUnsigned. Errors are *RejectError. The
// numbers are checked against the market, and the signature verified, by
// Verify.
func DecodeOrder(data []byte) (*OrderMsg, error) {
	if len(data) > MaxOrderSize {
		return nil, reject(RejectOversize, "order: %d bytes (at most %d)", len(data), MaxOrderSize)
	}
	o := &OrderMsg{}
	var v int64 = -1
	// Both versions' keys are read, then checked against the version: a
	// message's keys may come in any order, "v" not necessarily first.
	var got [4]bool // side, kwh, price, steps
	seen := func(i int, decode func([]byte) error) func([]byte) error {
		return func(raw []byte) error { got[i] = true; return decode(raw) }
	}
	err := decodeObject(data,
		field{"v", true, orderVersion(&v)},
		field{"community", true, id(&o.Community)},
		field{"interval", true, interval(&o.Interval)},
		field{"gateway", true, id(&o.Gateway)},
		field{"side", false, seen(0, sideText(&o.Side))},
		field{"kwh", false, seen(1, decimalText(&o.KWh))},
		field{"price", false, seen(2, decimalText(&o.Price))},
		field{"steps", false, seen(3, decodeSteps(&o.Steps))},
		field{"sig", false, signature(&o.Sig)},
	)
	if err == nil {
		err = checkVersionKeys(v, got)
	}
	if err == nil && v == 2 && len(o.Gateway) > maxStepGateway {
		err = fmt.Errorf("gateway %q: %d characters (a v2 order's gateway id has at most %d, so that its step ids have at most 64)",
			o.Gateway, len(o.Gateway), maxStepGateway)
	}
	if err != nil {
		return nil, reject(RejectMalformed, "order: %w", err)
	}
	if len(o.Sig) == 0 { // "sig" missing or ""
		return nil, reject(RejectUnsigned, "order from %q for %s: no signature", o.Gateway, o.Interval)
	}
	return o, nil
}

// sideText decodes "buy" or "sell".
func sideText(dst *auction.Side) func([]byte) error {
	return func(raw []byte) error {
		var side string
		if err := str(&side)(raw); err != nil {
			return err
		}
		var err error
		*dst, err = auction.ParseSide(side)
		return err
	}
}

// decimalText takes a string of at most maxNumberText characters that can
// only be a decimal number; package auction parses it exactly.
func decimalText(dst *string) func([]byte) error {
	return func(raw []byte) error {
		if err := str(dst)(raw); err != nil {
			return fmt.Errorf("%w (decimal numbers are strings)", err)
		}
		s := *dst
		if s == "" || len(s) > maxNumberText {
			return fmt.Errorf("want a decimal number of 1-%d characters, got %d", maxNumberText, len(s))
		}
		for i := 0; i < len(s); i++ {
			if c := s[i]; (c < '0' || c > '9') && c != '.' && c != '-' && c != '+' && c != 'e' && c != 'E' {
				return fmt.Errorf("%q is not a decimal number", s)
			}
		}
		return nil
	}
}

// Encode writes the message in its JSON form, keys in the documented order:
// a v2 message when it has Steps, else a v1 message.
func (o *OrderMsg) Encode() []byte {
	if o.Steps != nil {
		return o.encodeSteps()
	}
	b := append([]byte(nil), `{"v":1`...)
	b = appendField(b, "community", o.Community)
	b = appendField(b, "interval", o.Interval)
	b = appendField(b, "gateway", o.Gateway)
	b = appendField(b, "side", o.Side.String())
	b = appendField(b, "kwh", o.KWh)
	b = appendField(b, "price", o.Price)
	b = appendField(b, "sig", base64.StdEncoding.EncodeToString(o.Sig))
	return append(b, '}')
}

// Verify checks the order against the roster and the market and returns it
// as auction orders: a v1 message is one order, id and participant the
// gateway id; a v2 message is one order per step, in message order, with
// id StepID(gateway, i) and participant the gateway id. In this order: a
// signature is present (RejectUnsigned); the community is the roster's
// (RejectWrongCommunity); the gateway is in the roster (RejectForged); kWh
// and prices are valid for the market, and a v2 message's steps are ordered
// and bounded as CheckSteps says (RejectInvalid); the signature verifies
// with the gateway's roster key over the canonical text (RejectForged).
//
// The interval is not checked against the clock: the clearer compares it
// with the interval it is collecting (RejectWrongInterval, RejectLate),
// rejects an order posted on another gateway's topic (RejectForged), and
// tells a repeated order (RejectReplayed) from a different second one
// (RejectDuplicate).
func (o *OrderMsg) Verify(r *Roster, m *auction.Market) ([]auction.Order, error) {
	if len(o.Sig) == 0 {
		return nil, reject(RejectUnsigned, "order from %q for %s: no signature", o.Gateway, o.Interval)
	}
	if _, err := market.ParseInterval(o.Interval); err != nil {
		return nil, reject(RejectMalformed, "order from %q: %w", o.Gateway, err)
	}
	if o.Community != r.Community {
		return nil, reject(RejectWrongCommunity, "order from %q for %s: community %q, not %q",
			o.Gateway, o.Interval, o.Community, r.Community)
	}
	pub, ok := r.Key(o.Gateway)
	if !ok {
		return nil, reject(RejectForged, "order from %q for %s: gateway %q is not in the roster of %q",
			o.Gateway, o.Interval, o.Gateway, r.Community)
	}
	if o.Steps != nil {
		return o.verifySteps(pub, m)
	}
	ao, err := m.ParseOrder(o.Gateway, o.Gateway, o.Side.String(), o.KWh, o.Price)
	if err != nil {
		return nil, reject(RejectInvalid, "order from %q for %s: %w", o.Gateway, o.Interval, err)
	}
	text := orderText(o.Community, o.Interval, o.Gateway, ao.Side, m.FormatKWh(ao.Qty), m.FormatPrice(ao.Price))
	if !ed25519.Verify(pub, text, o.Sig) {
		return nil, o.forged()
	}
	return []auction.Order{ao}, nil
}

func (o *OrderMsg) forged() error {
	return reject(RejectForged, "order from %q for %s: the signature does not verify with the gateway's roster key",
		o.Gateway, o.Interval)
}
