package auction

import (
	"errors"
	"slices"
	"testing"
)

// FuzzParseOrder: an order's text fields, as `p2pgrid clear` and the
// gateways' order messages give them. It must never panic; a rejection is
// an *OrderError naming one of the five fields; an accepted order passes
// CheckOrder, and its quantity and price written out parse back to the
// same order.
func FuzzParseOrder(f *testing.F) {
	for _, s := range [][5]string{
		{"o1", "h1", "sell", "2.5", "0.12"},
		{"o2", "h2", "buy", "0.001", "0.000001"},
		{"o3", "h3", "BUY", "1", "1"},
		{"o4", "h4", "sell", "2.5000", "-0.1"},
		{"o5", "h5", "sell", "1e3", "0.1"},
		{"o6", "h6", "sell", "0.0001", "0.1"},
		{"", "h7", "sell", "1", "1"},
		{"o8", "h 8", "buy", "1", "1"},
		{"o9", "h9", "hold", "1", "1"},
		{"o10", "h10", "buy", "1000000000.001", "1000000"},
	} {
		f.Add(s[0], s[1], s[2], s[3], s[4])
	}
	m, err := NewMarket(DefaultRules())
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, id, participant, side, kwh, price string) {
		o, err := m.ParseOrder(id, participant, side, kwh, price)
		if err != nil {
			var oe *OrderError
			if !errors.As(err, &oe) || !slices.Contains([]string{"id", "participant", "side", "kwh", "price"}, oe.Field) {
				t.Fatalf("rejection does not name the field: %#v", err)
			}
			return
		}
		if err := m.CheckOrder(o); err != nil {
			t.Fatalf("parsed an order the market rejects: %+v: %v", o, err)
		}
		again, err := m.ParseOrder(o.ID, o.Participant, o.Side.String(), m.FormatKWh(o.Qty), m.FormatPrice(o.Price))
		if err != nil || again != o {
			t.Fatalf("order does not round-trip: %+v, then %+v (%v)", o, again, err)
		}
	})
}
