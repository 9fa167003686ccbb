package gateway

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/p2pgrid/p2pgrid/gateway/mqtt"
	"github.com/p2pgrid/p2pgrid/gateway/mqtt/mqtttest"
	"github.com/p2pgrid/p2pgrid/gateway/protocol"
	"github.com/p2pgrid/p2pgrid/internal/testtool"
	"github.com/p2pgrid/p2pgrid/settlement"
	"github.com/p2pgrid/p2pgrid/settlement/record"
)

// TestBridgedCommunity: a community spread over two brokers bridged as
// configs/mosquitto/README.md sets them up (both with the shipped
// mosquitto.conf and acl, B bridged to A with bridge.conf, over TLS)
// trades, clears, verifies and settles as over one: the clearer and home2
// on A, the standby and home3 on B. The orders and metered figures of B's
// homes reach the clearer on A, its books, results and settlements reach
// B's gateways, and nobody sees a message twice that would count as a
// duplicate.
func TestBridgedCommunity(t *testing.T) {
	testtool.Integration(t)
	a, b, _, _ := twoBrokers(t) // the bridge's proxy just passes everything on here
	onB := map[string]bool{"home1": true, "home3": true}

	h := newHarness(t, a.TLSURL, func(id string, o *mqtt.Options) {
		o.Broker, o.CAFile = a.TLSURL, a.TLS.CAFile
		if onB[id] {
			o.Broker, o.CAFile = b.TLSURL, b.TLS.CAFile
		}
	})
	first := h.trade(t0.Add(15*time.Minute), "operator")
	h.trade(t0.Add(30*time.Minute), "operator")
	h.advance(t0.Add(33 * time.Minute)) // past the settlement of 12:15
	for _, id := range itGateways {
		h.waitFor(id+" to record the settlement of "+first, func() bool {
			return h.ledgers[id].find(record.KindInterval, first) != nil
		})
	}
	s, err := settlement.DecodeIntervalSettlement(h.ledgers["home3"].find(record.KindInterval, first))
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Participants) != len(itExport) {
		t.Errorf("settled %d participants, want %d", len(s.Participants), len(itExport))
	}
	for _, p := range s.Participants {
		if p.MissingIntervals != 0 {
			t.Errorf("%s's metered figures did not reach the clearer across the bridge", p.Participant)
		}
	}
	if n := counter(t, h.gw("operator"), "p2pgrid_clearer_orders_rejected_total", "duplicate"); n != 0 {
		t.Errorf("the clearer counted %v duplicate orders: the bridge delivered some twice", n)
	}
	for _, id := range itGateways {
		if s := h.clients[id].Stats(); s.ConnectionLost != 0 {
			t.Errorf("%s lost its connection (%+v)", id, s)
		}
	}
}

// waitForBridge waits until the bridge between a and b carries messages
// both ways: the login probe, on a and on b (a login may be connected once
// to each broker), publishes its status, "probe from a" or "from b", again
// and again, until the other end has received the other's. (Its own status
// is the one a login that is neither the operator nor a bridge may read.)
func waitForBridge(t *testing.T, a, b *mqtttest.Mosquitto, users map[string]string) {
	t.Helper()
	topics, _ := protocol.NewTopics("c1")
	type end struct {
		c    *mqtt.Client
		name string
		seen chan struct{}
	}
	var ends []*end
	for _, x := range []struct {
		m    *mqtttest.Mosquitto
		name string
	}{{a, "a"}, {b, "b"}} {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		c, err := mqtt.Connect(ctx, mqtt.Options{Broker: x.m.TLSURL, CAFile: x.m.TLS.CAFile, ClientID: "probe",
			Username: "probe", Password: users["probe"], MaxReconnectInterval: 200 * time.Millisecond})
		cancel()
		if err != nil {
			t.Fatalf("probe on %s: %v", x.name, err)
		}
		defer c.Close()
		ends = append(ends, &end{c, x.name, make(chan struct{})})
	}
	for i, e := range ends {
		from := "probe from " + ends[1-i].name
		var once sync.Once
		if err := e.c.Subscribe(topics.Status("probe"), func(_ string, p []byte) {
			if string(p) == from {
				once.Do(func() { close(e.seen) })
			}
		}); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.After(30 * time.Second)
	for _, e := range ends {
		for done := false; !done; {
			for _, p := range ends {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				_ = p.c.Publish(ctx, topics.Status("probe"), []byte("probe from "+p.name), false)
				cancel()
			}
			select {
			case <-e.seen:
				done = true
			case <-time.After(200 * time.Millisecond):
			case <-deadline:
				t.Fatalf("the bridge does not carry the other end's probe to %s after 30 s:\nA:\n%s\nB:\n%s", e.name, a.Log(), b.Log())
			}
		}
	}
}
