package gateway

import (
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/p2pgrid/p2pgrid/gateway/config"
	"github.com/p2pgrid/p2pgrid/gateway/gatewaytest"
	"github.com/p2pgrid/p2pgrid/gateway/protocol"
)

// reconnecting is a hub client that says how many times it connected.
type reconnecting struct {
	*gatewaytest.Client
	connects atomic.Uint64
}

func (r *reconnecting) Connects() uint64 { return r.connects.Load() }

var _ Connections = (*reconnecting)(nil)

// After a new connection a gateway publishes again its open order and its
// metered figures not settled yet (a broker acknowledged and lost them),
// and nothing else: not without a new connection, not after the gate
// closed, not what was settled.
func TestRepublishAfterReconnect(t *testing.T) {
	c := newCommunity(t, map[string]int64{"home1": 4000, "home2": -2000}, map[string]config.ClearerRole{"operator": config.ClearerPrimary})
	hc := c.hub.Client("home1")
	lost := false
	hc.Drop = func(topic string) bool {
		return lost && (strings.Contains(topic, "/orders/") || strings.Contains(topic, "/metered/"))
	}
	mq := &reconnecting{Client: hc}
	g, op := c.gws["home1"], c.gws["operator"]
	g.mq = mq
	step := func() { c.run(c.now().Add(5*time.Second), 5*time.Second) }
	sent := func(kind, interval string) int { // home1's messages of kind about interval
		c.hub.Wait()
		n := 0
		for _, m := range c.hub.Published {
			if m.From != "home1" || !strings.Contains(m.Topic, "/"+kind+"/") {
				continue
			}
			var iv string
			if kind == protocol.KindOrders {
				o, err := protocol.DecodeOrder(m.Payload)
				if err != nil {
					t.Fatal(err)
				}
				iv = o.Interval
			} else {
				f, err := protocol.DecodeMetered(m.Payload)
				if err != nil {
					t.Fatal(err)
				}
				iv = f.Interval
			}
			if iv == interval {
				n++
			}
		}
		return n
	}

	// home1's order for 12:30 (placed at 12:21:30) is lost.
	first, second := "2026-11-22T12:15Z", "2026-11-22T12:30Z"
	c.run(t0.Add(21*time.Minute), 5*time.Second)
	lost = true
	c.run(t0.Add(22*time.Minute), 5*time.Second)
	lost = false
	if g.OwnOrder(second) == nil || op.clearer.Orders(second) != 1 {
		t.Fatalf("home1 placed %v, the clearer has %d orders for %s: want home1's lost", g.OwnOrder(second) != nil, op.clearer.Orders(second), second)
	}
	step()
	if n := op.clearer.Orders(second); n != 1 {
		t.Fatalf("the clearer has %d orders for %s with no new connection", n, second)
	}
	mq.connects.Add(1)
	step()
	if n := op.clearer.Orders(second); n != 2 {
		t.Errorf("after a new connection the clearer has %d orders for %s, want home1's too", n, second)
	}
	mq.connects.Add(1)
	step()
	if n := sent(protocol.KindOrders, second); n != 2 { // the hub does not record what it dropped
		t.Errorf("home1 published its order for %s again %d times after two new connections, want 2", second, n)
	}

	// Its figures for 12:15, published at 12:30:00, are lost.
	c.run(t0.Add(30*time.Minute-5*time.Second), 5*time.Second)
	lost = true
	step()
	lost = false
	mq.connects.Add(1)
	step()
	if !hasFigures(op, first, "home1") {
		t.Errorf("after a new connection the clearer still lacks home1's figures for %s", first)
	}
	if n := sent(protocol.KindOrders, second); n != 2 {
		t.Errorf("home1 published its order for %s again after its gate closed (%d times)", second, n)
	}

	// Settled at 12:32: a new connection publishes them no more.
	c.run(t0.Add(33*time.Minute), 5*time.Second)
	before := sent(protocol.KindMetered, first)
	mq.connects.Add(1)
	step()
	g.mu.Lock()
	settled := g.intervals[first] != nil && g.intervals[first].settled
	g.mu.Unlock()
	if !settled {
		t.Fatalf("%s not settled", first)
	}
	if n := sent(protocol.KindMetered, first); n != before {
		t.Errorf("home1 published its settled figures for %s again (%d times, %d before)", first, n, before)
	}
}

// hasFigures reports whether clearer g collected gw's figures for interval.
func hasFigures(g *Gateway, interval, gw string) bool {
	for _, raw := range g.collector.Figures(interval) {
		if m, err := protocol.DecodeMetered(raw); err == nil && m.Gateway == gw {
			return true
		}
	}
	return false
}
