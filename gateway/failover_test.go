package gateway

import (
	"bytes"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/p2pgrid/p2pgrid/gateway/mqtt"
	"github.com/p2pgrid/p2pgrid/gateway/mqtt/mqtttest"
	"github.com/p2pgrid/p2pgrid/internal/pki"
	"github.com/p2pgrid/p2pgrid/internal/testtool"
	"github.com/p2pgrid/p2pgrid/market"
	"github.com/p2pgrid/p2pgrid/settlement"
	"github.com/p2pgrid/p2pgrid/settlement/record"
)

// TestBrokerFailover: a community on two bridged Mosquittos (the shipped
// mosquitto.conf, acl and bridge.conf, over TLS), every gateway given both
// (mqtt.Options.Brokers: the operator, primary clearer, and home3 list B
// first, the standby home1 and home2 list A first). Killing either broker
// loses no interval: every interval is cleared, verified by every gateway
// and settled with every home's metered figures, and every ledger holds
// the same intervals. The faults, each made to hit:
//
//   - A dies mid-interval just after it acknowledged home1's and home2's
//     orders, before its bridge passed them on (the bridge's link is held
//     by a proxy, then cut with A): the clearer on B never gets them, so
//     the homes, connected again on B, publish their open order again.
//   - A comes back; nobody leaves B, which works.
//   - B dies just before gate closure, while the primary's way to A is
//     held shut for longer than the standby's grace: the standby, on A,
//     clears; the homes publish the metered figures of the interval that
//     just ended while the primary is away, and it gets them, retained,
//     when it subscribes on A, and settles with them.
func TestBrokerFailover(t *testing.T) {
	testtool.Integration(t)
	a, b, link, users := twoBrokers(t)
	opToA := mqtttest.ProxyFor(t, a) // the primary's way to A

	bFirst := map[string]bool{"operator": true, "home3": true}
	h := newHarness(t, a.TLSURL, func(id string, o *mqtt.Options) {
		o.Broker, o.CAFile = "", a.TLS.CAFile // one community CA: a's file is b's
		o.Brokers = []string{a.TLSURL, b.TLSURL}
		switch {
		case id == "operator":
			o.Brokers = []string{b.TLSURL, opToA.TLSURL()}
		case bFirst[id]:
			o.Brokers = []string{b.TLSURL, a.TLSURL}
		}
	})
	on := h.connectedTo
	on(map[string]string{"operator": b.TLSURL, "home3": b.TLSURL, "home1": a.TLSURL, "home2": a.TLSURL})

	d, settled := failoverInterval, h.settledEverywhere
	var intervals []string
	intervals = append(intervals, h.trade(d(1), "operator"))

	// A acknowledges home1's and home2's orders for 12:30 (placed at
	// 12:21:30) but its bridge is stalled, and A dies: B never had them.
	h.advance(d(2).Add(-10 * time.Minute))
	link.Pause()
	h.advance(d(2).Add(-8 * time.Minute))
	for _, id := range []string{"home1", "home2"} {
		if h.gw(id).OwnOrder(market.IntervalID(d(2))) == nil {
			t.Fatalf("%s placed no order for %s", id, market.IntervalID(d(2)))
		}
	}
	a.Kill()
	link.Cut()
	link.Resume()
	on(map[string]string{"home1": b.TLSURL, "home2": b.TLSURL})
	time.Sleep(200 * time.Millisecond) // anything A had passed on would be at B by now
	if n := h.gw("operator").clearer.Orders(market.IntervalID(d(2))); n != 1 {
		t.Fatalf("the clearer on B has %d orders for %s before the homes' next tick, want 1 (home3's): the test proves nothing", n, market.IntervalID(d(2)))
	}
	intervals = append(intervals, h.trade(d(2), "operator")) // waits for all 3 orders

	settled(1)

	// A is back: the bridge reconnects; nobody leaves B.
	a.Restart()
	waitForBridge(t, a, b, users)
	h.advance(d(3).Add(-5 * time.Minute))
	on(map[string]string{"operator": b.TLSURL, "home1": b.TLSURL, "home2": b.TLSURL, "home3": b.TLSURL})

	// B dies 5 s before gate closure of 12:45; the primary cannot reach A
	// until 12:45:15, past the standby's grace and past the end of 12:30.
	third := market.IntervalID(d(3))
	h.waitFor("3 orders for "+third, func() bool { return h.gw("operator").clearer.Orders(third) == 3 })
	h.advance(d(3).Add(-2*time.Minute - 5*time.Second))
	opToA.Refuse(true)
	b.Kill()
	on(map[string]string{"home1": a.TLSURL, "home2": a.TLSURL, "home3": a.TLSURL})
	h.advance(d(3).Add(-2*time.Minute + 35*time.Second)) // the standby clears 12:45 after its grace
	h.waitFor("the homes to verify the standby's "+third, func() bool { return len(h.verifiedBy(third)) == len(itGateways)-1 })
	h.advance(d(3).Add(15 * time.Second)) // 12:30's figures are published
	if h.clients["operator"].Connected() {
		t.Fatal("the primary reached a broker while held off: the test proves nothing")
	}
	opToA.Refuse(false)
	on(map[string]string{"operator": opToA.TLSURL()})
	intervals = append(intervals, third)
	h.waitFor("the primary to verify the standby's "+third, func() bool { return len(h.verifiedBy(third)) == len(itGateways) })
	// It was away when the homes published the figures of 12:30: it gets
	// them on A, retained, in time for settling at 12:47.
	op, second := h.gw("operator"), market.IntervalID(d(2))
	h.waitFor("the primary to get the metered figures of "+second, func() bool {
		return len(op.collector.Figures(second)) == len(itExport)
	})

	settled(2)
	intervals = append(intervals, h.trade(d(4), "operator"))
	settled(3)
	h.trade(d(5), "operator")
	settled(4)

	noIntervalLost(t, h, intervals)
}

// TestBrokerFailoverClearerMessages: a broker may die after it
// acknowledged the clearer's book, result or settlement and before its
// bridge passed them on (the bridge's link is held by a proxy, then cut
// with the broker). The gateways on the other broker never get them
// unless the clearer, connected again there, publishes them again: then
// they verify the interval and settle it, and those that had them already
// verify and record nothing twice. Every gateway is given both brokers;
// home3 reaches B through a proxy, which moves it to A when cut.
//
//   - 12:30: the primary (on A, with home1 and home2) seals; A
//     acknowledges the book and result, home1 and home2 verify them, A
//     dies before bridging them to home3 on B.
//   - 12:45: A is back; home3 moves to A, everybody else stays on B.
//   - 12:45's settlement: the primary (on B) publishes it at 13:02, B
//     acknowledges it, home1 and home2 record it, B dies before bridging
//     it to home3 on A.
func TestBrokerFailoverClearerMessages(t *testing.T) {
	testtool.Integration(t)
	a, b, link, users := twoBrokers(t)
	home3ToB := mqtttest.ProxyFor(t, b)
	h := newHarness(t, a.TLSURL, func(id string, o *mqtt.Options) {
		o.Broker, o.CAFile = "", a.TLS.CAFile
		o.Brokers = []string{a.TLSURL, b.TLSURL}
		if id == "home3" {
			o.Brokers = []string{home3ToB.TLSURL(), a.TLSURL}
		}
	})
	h.connectedTo(map[string]string{"operator": a.TLSURL, "home1": a.TLSURL, "home2": a.TLSURL, "home3": home3ToB.TLSURL()})
	d := failoverInterval
	intervals := []string{h.trade(d(1), "operator")}

	// lose holds the bridge, moves the clock past at, when the primary
	// publishes what on the broker that dies (with home1 and home2, who
	// get it), checks that home3 on the other one did not get it, kills
	// the broker, and waits until home3 gets it: the primary, connected
	// anew on the other broker, publishes it again at its next tick.
	lose := func(dies, other *mqtttest.Mosquitto, at time.Time, what string, got func(id string) bool) {
		t.Helper()
		link.Pause()
		h.advance(at.Add(5 * time.Second))
		for _, id := range []string{"operator", "home1", "home2"} {
			h.waitFor(id+" to get "+what, func() bool { return got(id) })
		}
		time.Sleep(200 * time.Millisecond) // anything bridged would be there by now
		if got("home3") {
			t.Fatalf("home3 got %s while the bridge was held: the test proves nothing", what)
		}
		dies.Kill()
		link.Cut()
		link.Resume()
		h.connectedTo(map[string]string{"operator": other.TLSURL, "home1": other.TLSURL, "home2": other.TLSURL})
		h.advance(at.Add(10 * time.Second))
		h.waitFor("home3 to get "+what+", which the dead broker acknowledged and never bridged", func() bool { return got("home3") })
	}

	second := market.IntervalID(d(2))
	gate := d(2).Add(-2 * time.Minute)
	h.advance(gate.Add(-time.Minute))
	h.waitFor("3 orders for "+second, func() bool { return h.gw("operator").clearer.Orders(second) == 3 })
	lose(a, b, gate, "the clearing of "+second, func(id string) bool { _, ok := h.verifiedBy(second)[id]; return ok })
	intervals = append(intervals, second)
	h.settledEverywhere(1)

	a.Restart()
	waitForBridge(t, a, b, users)
	home3ToB.Refuse(true)
	home3ToB.Cut()
	h.connectedTo(map[string]string{"home3": a.TLSURL})
	home3ToB.Refuse(false)
	intervals = append(intervals, h.trade(d(3), "operator"))
	h.settledEverywhere(2)
	fourth := h.trade(d(4), "operator")

	third := market.IntervalID(d(3))
	settle := d(4).Add(2 * time.Minute)
	h.advance(settle.Add(-30 * time.Second)) // 12:45's figures are at the primary
	lose(b, a, settle, "the settlement of "+third, func(id string) bool { return h.ledgers[id].find(record.KindInterval, third) != nil })
	intervals = append(intervals, fourth)
	h.trade(d(5), "operator") // cleared before settling 13:00 moves the clock past its result's deadline
	h.settledEverywhere(4)

	noIntervalLost(t, h, intervals)
}

// twoBrokers starts the two Mosquittos of the failover tests, with the
// shipped mosquitto.conf and acl (plus a clearer's block for the standby,
// home1) over TLS, one community CA: A, and B bridged to A with the
// shipped bridge.conf through link, a proxy that can hold and drop what
// the bridge carries. It returns once the bridge carries messages.
func twoBrokers(t *testing.T) (a, b *mqtttest.Mosquitto, link *mqtttest.Proxy, users map[string]string) {
	t.Helper()
	users = map[string]string{"bridge": "pw-bridge", "probe": "pw-probe"}
	for _, id := range itGateways {
		users[id] = "pw-" + id
	}
	ca, err := pki.NewCA("p2pgrid c1 CA", pki.DefaultCAValidity)
	if err != nil {
		t.Fatal(err)
	}
	standby := mqtttest.ClearerBlock(t, "home1") // as configs/mosquitto/README.md adds a clearer
	a = mqtttest.StartShippedWith(t, mqtttest.Shipped{Users: users, CA: ca, ACLAppend: standby})
	link = mqtttest.ProxyFor(t, a) // the bridge's way to A
	b = mqtttest.StartShippedWith(t, mqtttest.Shipped{Users: users, CA: ca, ACLAppend: standby,
		Bridge: &mqtttest.Bridge{Remote: a, Username: "bridge", Password: users["bridge"], Address: link.Addr}})
	waitForBridge(t, a, b, users)
	return a, b, link, users
}

// failoverInterval is the start of the k-th interval after t0.
func failoverInterval(k int) time.Time { return t0.Add(time.Duration(k) * 15 * time.Minute) }

// connectedTo waits until every gateway named is connected to its URL.
func (h *harness) connectedTo(want map[string]string) {
	h.t.Helper()
	for id, url := range want {
		h.waitFor(id+" connected to "+url, func() bool { return h.clients[id].Broker() == url })
	}
}

// settledEverywhere moves the clock past the settlement of the k-th
// interval (2 minutes after its end) and waits until every ledger holds
// it, as a real clock would: this one moves faster than messages.
func (h *harness) settledEverywhere(k int) {
	h.t.Helper()
	h.advance(failoverInterval(k + 1).Add(2*time.Minute + 5*time.Second))
	iv := market.IntervalID(failoverInterval(k))
	for _, id := range itGateways {
		h.waitFor(id+" to record the settlement of "+iv, func() bool { return h.ledgers[id].find(record.KindInterval, iv) != nil })
	}
}

// noIntervalLost checks that every one of intervals (in the order they
// were settled) was verified by every gateway and settled, once, with
// every home's metered figures, the same in every ledger, and that no
// ledger holds another interval and no gateway has an alarm.
func noIntervalLost(t *testing.T, h *harness, intervals []string) {
	t.Helper()
	for _, iv := range intervals {
		for id, err := range h.verifiedBy(iv) {
			if err != nil {
				t.Errorf("%s: %s: %v", iv, id, err)
			}
		}
		if n := len(h.verifiedBy(iv)); n != len(itGateways) {
			t.Errorf("%s verified by %d gateways, want %d", iv, n, len(itGateways))
		}
		first := h.ledgers["operator"].find(record.KindInterval, iv)
		for _, id := range itGateways {
			if got := h.ledgers[id].find(record.KindInterval, iv); !bytes.Equal(got, first) {
				t.Errorf("%s: %s's ledger holds another settlement than the operator's", iv, id)
			}
		}
		s, err := settlement.DecodeIntervalSettlement(first)
		if err != nil {
			t.Fatal(err)
		}
		if len(s.Participants) != len(itExport) {
			t.Errorf("%s: settled %d participants, want %d", iv, len(s.Participants), len(itExport))
		}
		for _, p := range s.Participants {
			if p.MissingIntervals != 0 {
				t.Errorf("%s: settled without %s's metered figures", iv, p.Participant)
			}
		}
		var clr struct{ Orders int }
		if err := json.Unmarshal(h.ledgers["operator"].find(record.KindClearing, iv), &clr); err != nil || clr.Orders != len(itExport) {
			t.Errorf("%s: cleared %d orders (%v), want %d", iv, clr.Orders, err, len(itExport))
		}
	}
	want := settledIntervals(h.ledgers["operator"])
	if !slices.Equal(want, intervals) {
		t.Errorf("the operator's ledger holds intervals %v, want %v", want, intervals)
	}
	for _, id := range itGateways {
		if got := settledIntervals(h.ledgers[id]); !slices.Equal(got, want) {
			t.Errorf("%s's ledger holds intervals %v, the operator's %v", id, got, want)
		}
		if al := h.gw(id).Alarms(); len(al) != 0 {
			t.Errorf("%s has alarms: %+v", id, al)
		}
	}
}

// settledIntervals lists the intervals a ledger holds a settlement of, in
// the order recorded.
func settledIntervals(l *memLedger) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, e := range l.entries {
		if e.Kind == record.KindInterval {
			out = append(out, e.Key)
		}
	}
	return out
}

// The MQTT client tells the gateway when it connected anew.
var _ Connections = (*mqtt.Client)(nil)
