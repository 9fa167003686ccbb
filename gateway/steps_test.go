package gateway

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/p2pgrid/p2pgrid/auction"
	"github.com/p2pgrid/p2pgrid/gateway/config"
	"github.com/p2pgrid/p2pgrid/gateway/gatewaytest"
	"github.com/p2pgrid/p2pgrid/gateway/protocol"
	"github.com/p2pgrid/p2pgrid/settlement"
	"github.com/p2pgrid/p2pgrid/settlement/record"
)

func curve(steps ...string) []config.CurveStep {
	var out []config.CurveStep
	for i := 0; i < len(steps); i += 2 {
		out = append(out, config.CurveStep{Share: decimal.RequireFromString(steps[i]), Price: decimal.RequireFromString(steps[i+1])})
	}
	return out
}

func TestCurveSteps(t *testing.T) {
	for _, tc := range []struct {
		name  string
		curve []config.CurveStep
		qty   int64
		want  []protocol.Step
	}{
		{"quarter and rest", curve("0.25", "0.25", "0.75", "0.12"), 400,
			[]protocol.Step{{Side: auction.Buy, Qty: 100, Price: 250_000}, {Side: auction.Buy, Qty: 300, Price: 120_000}}},
		{"rounding down, the rest last", curve("0.333", "0.3", "0.333", "0.2", "0.334", "0.1"), 10,
			[]protocol.Step{{Side: auction.Buy, Qty: 3, Price: 300_000}, {Side: auction.Buy, Qty: 3, Price: 200_000}, {Side: auction.Buy, Qty: 4, Price: 100_000}}},
		{"empty step dropped", curve("0.1", "0.3", "0.9", "0.2"), 5,
			[]protocol.Step{{Side: auction.Buy, Qty: 5, Price: 200_000}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := curveSteps(tc.curve, auction.Buy, tc.qty, 6)
			var sum int64
			for _, s := range got {
				sum += s.Qty
			}
			if sum != tc.qty || len(got) != len(tc.want) {
				t.Fatalf("steps %+v, want %+v", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Errorf("step %d: %+v, want %+v", i, got[i], tc.want[i])
				}
			}
		})
	}
}

// A home with a flexible load bids a two-step curve (a v2 order) among
// homes placing v1 orders: the interval is cleared, verified by every
// gateway and settled, each of its steps a trade of its own. Forged and
// malformed v2 orders are rejected and counted as v1 ones are.
func TestCurveOrderClearedVerifiedSettled(t *testing.T) {
	c := newCommunityWith(t, gatewaytest.NewHub(), map[string]int64{"home1": 4000, "home2": -2000, "home3": -1500},
		map[string]config.ClearerRole{"operator": config.ClearerPrimary},
		func(c *community, id string, o *Options) {
			if id == "home2" { // a quarter of the need up to 0.25, the rest up to 0.12
				o.Config.Policy.BuySteps = curve("0.25", "0.25", "0.75", "0.12")
			}
		})
	ledgers := map[string]*memLedger{}
	for id, g := range c.gws {
		ledgers[id] = &memLedger{}
		g.ledger = ledgers[id]
	}
	interval := "2026-11-22T12:15Z"
	c.run(t0.Add(5*time.Minute), 5*time.Second)
	op := c.gws["operator"]
	rogue := c.hub.Client("mallory")
	steps := []protocol.Step{{Side: auction.Buy, Qty: 100, Price: 250_000}}
	forged, err := protocol.SignOrderSteps(testKey("mallory"), "c1", interval, "home2", steps, op.market)
	if err != nil {
		t.Fatal(err)
	}
	good, err := protocol.SignOrderSteps(testKey("home2"), "c1", interval, "home2", steps, op.market)
	if err != nil {
		t.Fatal(err)
	}
	malformed := bytes.Replace(good, []byte(`"steps":[`), []byte(`"steps":[`+strings.Repeat(`{"side":"buy","kwh":"1","price":"0.1"},`, 8)), 1)
	rogue.Publish(context.Background(), op.topics.Orders("home2"), forged, false)
	rogue.Publish(context.Background(), op.topics.Orders("home2"), malformed, false)
	c.hub.Wait()
	if got := counter(t, op, "p2pgrid_clearer_orders_rejected_total", "forged"); got != 1 {
		t.Errorf("forged v2 rejections counted %v", got)
	}
	if got := counter(t, op, "p2pgrid_clearer_orders_rejected_total", "malformed"); got != 1 {
		t.Errorf("malformed v2 rejections counted %v", got)
	}

	c.run(t0.Add(33*time.Minute), 5*time.Second)
	// home2 bids 80% of its 500 Wh, 400 Wh: 100 Wh up to 0.25 and 300 Wh
	// up to 0.12; the others place v1 orders, byte for byte as ever.
	for id, want := range map[string]int{"home1": 1, "home2": 2, "home3": 1} {
		o, err := protocol.DecodeOrder(c.hub.Retained(op.topics.Orders(id)))
		if err != nil {
			t.Fatalf("%s's order: %v", id, err)
		}
		if o.Version() != want {
			t.Errorf("%s placed a v%d order, want v%d", id, o.Version(), want)
		}
		if id == "home2" && (len(o.Steps) != 2 || o.Steps[0].KWh != "0.1" || o.Steps[0].Price != "0.25" || o.Steps[1].KWh != "0.3" || o.Steps[1].Price != "0.12") {
			t.Errorf("home2's curve %+v", o.Steps)
		}
	}
	for gw, err := range c.verified[interval] {
		if err != nil {
			t.Errorf("%s: %v", gw, err)
		}
	}
	if len(c.verified[interval]) != 4 {
		t.Errorf("verified by %v, want all 4", c.verified[interval])
	}
	msg, err := protocol.DecodeSettlement(c.hub.Retained(op.topics.Settlement(interval)))
	if err != nil {
		t.Fatal(err)
	}
	s, err := settlement.DecodeIntervalSettlement(msg.Settlement)
	if err != nil {
		t.Fatal(err)
	}
	// Supply (0.8 kWh at 0.08) covers all the demand: both of home2's steps
	// trade, each a trade of its own, delivered in full.
	want := map[string]int64{interval + "/home1/home2:1": 100, interval + "/home1/home2:2": 300}
	got := map[string]int64{}
	for _, tr := range s.Trades {
		if !settlement.IsPostDelivery(tr.ID) {
			got[tr.ID] = tr.DeliveredWh
			if tr.MissingWh != 0 {
				t.Errorf("trade %s: %d Wh missing", tr.ID, tr.MissingWh)
			}
		}
	}
	for id, wh := range want {
		if got[id] != wh {
			t.Errorf("trade %s delivered %d Wh, want %d; trades %v", id, got[id], wh, got)
		}
	}
	if _, ok := got[interval+"/home1/home3"]; !ok || len(got) != 3 {
		t.Errorf("ex-ante trades %v, want home2's two and home3's", got)
	}
	// Every gateway settled it again byte for byte into its ledger.
	for id, l := range ledgers {
		if l.find(record.KindStatement, interval+"/home2") == nil || l.find(record.KindTrade, interval+"/home1/home2:2") == nil {
			t.Errorf("%s's ledger lacks the settlement of home2's curve", id)
		}
	}
}
