package protocol

import (
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"

	"github.com/p2pgrid/p2pgrid/auction"
	"github.com/p2pgrid/p2pgrid/market"
)

// Order messages v2: a bid curve of several price-quantity steps in one
// signed message. See OrderMsg, CheckSteps and docs/mqtt.md.

// MaxSteps bounds the steps of a v2 order message.
const MaxSteps = 8

// maxStepGateway bounds the gateway id of a v2 order message, so that its
// step ids (StepID: the id, ':' and one digit) are valid auction ids.
const maxStepGateway = 62

// OrderStep is one step of a v2 order message, as sent.
type OrderStep struct {
	Side  auction.Side
	KWh   string // decimal text as sent; quantised by Verify
	Price string // decimal text as sent, per kWh
}

// Step is one step of a bid curve, quantised to the market's resolution.
type Step struct {
	Side  auction.Side
	Qty   int64 // quanta of kWh
	Price int64 // ticks per kWh
}

// StepID is the auction order id of step i (from 0) of gateway's v2 order:
// the gateway id, ':' and the step's position from 1, e.g. "home2:1" for
// the first step. It is deterministic, so the canonical book encoding and
// its digest are well defined. A v1 order's id is the gateway id alone.
func StepID(gateway string, i int) string { return gateway + ":" + strconv.Itoa(i+1) }

// CheckSteps checks a bid curve of gateway against the market: 1 to
// MaxSteps steps, each a valid order for the market; the sell steps first,
// by price strictly ascending, then the buy steps, by price strictly
// descending (the order in which the auction fills them); when there are
// both, every buy price below every sell price, so that the gateway's own
// buy and sell can never both trade (a battery offers to sell high and buy
// low); and the steps' total quantity within the order limit (market rule
// max_order_kwh), as one v1 order's is. Errors are *auction.OrderError
// naming the step's id (StepID), or the gateway's for the total.
func CheckSteps(m *auction.Market, gateway string, steps []Step) error {
	orders := make([]auction.Order, len(steps))
	for i, s := range steps {
		orders[i] = auction.Order{ID: StepID(gateway, i), Participant: gateway, Side: s.Side, Qty: s.Qty, Price: s.Price}
	}
	return checkSteps(m, gateway, orders)
}

// checkSteps is CheckSteps of the steps as auction orders.
func checkSteps(m *auction.Market, gateway string, orders []auction.Order) error {
	if len(orders) == 0 || len(orders) > MaxSteps {
		return &auction.OrderError{ID: gateway, Field: "steps", Err: fmt.Errorf("%d steps (want 1-%d)", len(orders), MaxSteps)}
	}
	var total int64
	for i, o := range orders {
		if err := m.CheckOrder(o); err != nil {
			return err
		}
		fail := func(format string, a ...any) error {
			return &auction.OrderError{Index: i, ID: o.ID, Field: "price", Err: fmt.Errorf(format, a...)}
		}
		if i > 0 {
			prev := orders[i-1]
			switch {
			case prev.Side == auction.Buy && o.Side == auction.Sell:
				return &auction.OrderError{Index: i, ID: o.ID, Field: "side",
					Err: errors.New("a sell step after a buy step (the sell steps come first)")}
			case prev.Side == auction.Sell && o.Side == auction.Sell && o.Price <= prev.Price:
				return fail("sell at %s after a sell at %s: sell prices must rise strictly", m.FormatPrice(o.Price), m.FormatPrice(prev.Price))
			case prev.Side == auction.Buy && o.Side == auction.Buy && o.Price >= prev.Price:
				return fail("buy at %s after a buy at %s: buy prices must fall strictly", m.FormatPrice(o.Price), m.FormatPrice(prev.Price))
			case prev.Side == auction.Sell && o.Side == auction.Buy && o.Price >= orders[0].Price:
				return fail("buy at %s is not below the lowest sell price %s", m.FormatPrice(o.Price), m.FormatPrice(orders[0].Price))
			}
		}
		total += o.Qty // at most MaxSteps * max_order_kwh: no overflow
	}
	if total > m.MaxOrderQty() {
		return &auction.OrderError{ID: gateway, Field: "kwh", Err: fmt.Errorf("%w: the steps total %s, beyond the order limit %s (market rule max_order_kwh)",
			auction.ErrOutOfRange, m.FormatKWh(total), m.FormatKWh(m.MaxOrderQty()))}
	}
	return nil
}

// stepsText is the canonical text a gateway signs for a v2 order: as
// orderText, under another header, with one line per step.
func stepsText(community, interval, gateway string, m *auction.Market, orders []auction.Order) []byte {
	b := fmt.Appendf(nil, "p2pgrid-order/2\ncommunity %s\ninterval %s\ngateway %s\n", community, interval, gateway)
	for _, o := range orders {
		b = fmt.Appendf(b, "step %s %s %s\n", o.Side, m.FormatKWh(o.Qty), m.FormatPrice(o.Price))
	}
	return b
}

// SignOrderSteps builds and signs gateway's v2 order for interval, a bid
// curve of steps (see CheckSteps), and returns the JSON to publish on
// orders/<gateway>.
func SignOrderSteps(key ed25519.PrivateKey, community, interval, gateway string, steps []Step, m *auction.Market) ([]byte, error) {
	if err := CheckID(community); err != nil {
		return nil, fmt.Errorf("sign order: community %q: %w", community, err)
	}
	if _, err := market.ParseInterval(interval); err != nil {
		return nil, fmt.Errorf("sign order: %w", err)
	}
	if err := CheckID(gateway); err != nil || len(gateway) > maxStepGateway {
		return nil, fmt.Errorf("sign order: gateway %q: not an id of at most %d characters", gateway, maxStepGateway)
	}
	if len(key) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("sign order: private key of %d bytes (want %d)", len(key), ed25519.PrivateKeySize)
	}
	if err := CheckSteps(m, gateway, steps); err != nil {
		return nil, fmt.Errorf("sign order: %w", err)
	}
	msg := &OrderMsg{Community: community, Interval: interval, Gateway: gateway, Steps: make([]OrderStep, len(steps))}
	orders := make([]auction.Order, len(steps))
	for i, s := range steps {
		msg.Steps[i] = OrderStep{Side: s.Side, KWh: m.FormatKWh(s.Qty), Price: m.FormatPrice(s.Price)}
		orders[i] = auction.Order{Side: s.Side, Qty: s.Qty, Price: s.Price}
	}
	msg.Sig = ed25519.Sign(key, stepsText(community, interval, gateway, m, orders))
	return msg.Encode(), nil
}

// verifySteps is Verify of a v2 message, from the market checks on, with
// the gateway's roster key pub.
func (o *OrderMsg) verifySteps(pub ed25519.PublicKey, m *auction.Market) ([]auction.Order, error) {
	orders := make([]auction.Order, len(o.Steps))
	for i, s := range o.Steps {
		ao, err := m.ParseOrder(StepID(o.Gateway, i), o.Gateway, s.Side.String(), s.KWh, s.Price)
		if err != nil {
			return nil, reject(RejectInvalid, "order from %q for %s: steps[%d]: %w", o.Gateway, o.Interval, i, err)
		}
		orders[i] = ao
	}
	if err := checkSteps(m, o.Gateway, orders); err != nil {
		return nil, reject(RejectInvalid, "order from %q for %s: %w", o.Gateway, o.Interval, err)
	}
	if !ed25519.Verify(pub, stepsText(o.Community, o.Interval, o.Gateway, m, orders), o.Sig) {
		return nil, o.forged()
	}
	return orders, nil
}

// encodeSteps is Encode of a v2 message.
func (o *OrderMsg) encodeSteps() []byte {
	b := append([]byte(nil), `{"v":2`...)
	b = appendField(b, "community", o.Community)
	b = appendField(b, "interval", o.Interval)
	b = appendField(b, "gateway", o.Gateway)
	b = append(b, `,"steps":[`...)
	for i, s := range o.Steps {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"side":`...)
		b = appendString(b, s.Side.String())
		b = appendField(b, "kwh", s.KWh)
		b = appendField(b, "price", s.Price)
		b = append(b, '}')
	}
	b = append(b, ']')
	b = appendField(b, "sig", base64.StdEncoding.EncodeToString(o.Sig))
	return append(b, '}')
}

// orderVersion reads an order message's "v": 1 or 2.
func orderVersion(dst *int64) func([]byte) error {
	return func(raw []byte) error {
		switch string(raw) {
		case "1":
			*dst = 1
		case "2":
			*dst = 2
		default:
			return fmt.Errorf("unsupported version %.20s (want 1, or 2 for an order with steps)", raw)
		}
		return nil
	}
}

// checkVersionKeys checks that an order message of version v has the keys
// of its version and none of the other's: got says whether side, kwh,
// price and steps were present.
func checkVersionKeys(v int64, got [4]bool) error {
	names := [4]string{"side", "kwh", "price", "steps"}
	if v == 1 {
		for i := range 3 {
			if !got[i] {
				return fmt.Errorf("key %q is missing", names[i])
			}
		}
		if got[3] {
			return errors.New(`key "steps" is not part of a v1 order (an order with steps is "v":2)`)
		}
		return nil
	}
	for i := range 3 {
		if got[i] {
			return fmt.Errorf("key %q is not part of a v2 order (its steps have side, kwh and price)", names[i])
		}
	}
	if !got[3] {
		return errors.New(`key "steps" is missing`)
	}
	return nil
}

// decodeSteps reads the steps of a v2 order message: 1 to MaxSteps objects
// of side, kwh and price.
func decodeSteps(dst *[]OrderStep) func([]byte) error {
	return func(raw []byte) error {
		if raw[0] != '[' {
			return fmt.Errorf("want an array of steps, got %.20s", raw)
		}
		steps := []OrderStep{}
		err := walkArray(raw, func(i int, raw []byte) error {
			if i >= MaxSteps {
				return fmt.Errorf("more than %d steps", MaxSteps)
			}
			var s OrderStep
			if err := decodeObject(raw,
				field{"side", true, sideText(&s.Side)},
				field{"kwh", true, decimalText(&s.KWh)},
				field{"price", true, decimalText(&s.Price)},
			); err != nil {
				return fmt.Errorf("steps[%d]: %w", i, err)
			}
			steps = append(steps, s)
			return nil
		})
		if err != nil {
			return err
		}
		if len(steps) == 0 {
			return fmt.Errorf("no steps (want 1-%d)", MaxSteps)
		}
		*dst = steps
		return nil
	}
}
