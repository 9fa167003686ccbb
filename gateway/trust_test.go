package gateway

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/p2pgrid/p2pgrid/gateway/config"
	"github.com/p2pgrid/p2pgrid/gateway/gatewaytest"
	"github.com/p2pgrid/p2pgrid/gateway/protocol"
	"github.com/p2pgrid/p2pgrid/settlement/record"
)

// Junk retained on result/<interval> before gate closure, and a result
// left retained by an earlier run, do not count as published: the primary
// clears the interval anyway, and every gateway verifies its result.
func TestJunkResultDoesNotStopClearing(t *testing.T) {
	c := newCommunity(t,
		map[string]int64{"home1": 4000, "home2": -2000},
		map[string]config.ClearerRole{"operator": config.ClearerPrimary, "home2": config.ClearerStandby})
	interval := "2026-11-22T12:15Z"
	mallory := c.hub.Client("mallory")
	mallory.Publish(context.Background(), c.gws["home1"].Topics().Result(interval), []byte(`{"v":1,"junk":true}`), true)
	c.run(t0.Add(14*time.Minute), 5*time.Second)
	res, err := protocol.DecodeResult(c.hub.Retained(c.gws["home1"].Topics().Result(interval)))
	if err != nil || res.Clearer != "operator" {
		t.Fatalf("result of %s after junk: %+v %v", interval, res, err)
	}
	for id := range c.homes {
		if err, ok := c.verified[interval][id]; !ok || err != nil {
			t.Errorf("%s: verified %v %v", id, ok, err)
		}
		// The junk is counted, but raises no alarm: anyone with broker
		// access could otherwise put alarms on every gateway.
		if got := testutil.ToFloat64(c.gws[id].metrics.badMessages.WithLabelValues(protocol.KindResult)); got != 1 {
			t.Errorf("%s: junk results counted %v, want 1", id, got)
		}
		if a := c.gws[id].Alarms(); len(a) != 0 {
			t.Errorf("%s alarms %+v", id, a)
		}
	}
}

// A genuine, signed result of one interval republished on another
// interval's topic is not that interval's clearing: counted and ignored,
// no state changes, no alarm.
func TestResultOnAnotherIntervalsTopic(t *testing.T) {
	c := newCommunity(t,
		map[string]int64{"home1": 4000, "home2": -2000},
		map[string]config.ClearerRole{"operator": config.ClearerPrimary})
	c.run(t0.Add(14*time.Minute), 5*time.Second) // 12:15 cleared at 12:13
	tp := c.gws["home1"].Topics()
	from, to := "2026-11-22T12:15Z", "2026-11-22T12:30Z"
	mallory := c.hub.Client("mallory")
	mallory.Publish(context.Background(), tp.Book(to), c.hub.Retained(tp.Book(from)), true)
	mallory.Publish(context.Background(), tp.Result(to), c.hub.Retained(tp.Result(from)), true)
	g := c.gws["home1"]
	g.mu.Lock()
	iv := g.intervals[to]
	cleared := iv != nil && iv.cleared != nil
	g.mu.Unlock()
	if cleared {
		t.Fatalf("%s's clearing accepted as %s's", from, to)
	}
	if got := testutil.ToFloat64(g.metrics.badMessages.WithLabelValues(protocol.KindResult)); got != 1 {
		t.Errorf("bad results counted %v, want 1", got)
	}
	if a := g.Alarms(); len(a) != 0 {
		t.Errorf("alarms %+v", a)
	}
	// The real clearing of 12:30 still goes through.
	c.run(t0.Add(29*time.Minute), 5*time.Second)
	res, err := protocol.DecodeResult(c.hub.Retained(tp.Result(to)))
	if err != nil || res.Interval != to || !strings.Contains(string(c.hub.Retained(tp.Result(to))), to) {
		t.Fatalf("result of %s: %+v %v", to, res, err)
	}
	if err, ok := c.verified[to]["home1"]; !ok || err != nil {
		t.Errorf("home1 on %s: verified %v %v", to, ok, err)
	}
}

// Oversize payloads and messages about intervals far in the future are
// dropped before anything is kept.
func TestOversizeAndFarIntervalsNotKept(t *testing.T) {
	c := newCommunity(t, map[string]int64{"home1": 4000}, map[string]config.ClearerRole{"operator": config.ClearerPrimary})
	c.run(t0.Add(time.Minute), 5*time.Second)
	g := c.gws["home1"]
	tp := g.Topics()
	mallory := c.hub.Client("mallory")
	big := make([]byte, protocol.MaxBookSize+1)
	mallory.Publish(context.Background(), tp.Book("2026-11-22T12:15Z"), big, true)
	for _, far := range []string{"2026-11-23T12:15Z", "2030-01-01T00:00Z", "2026-11-22T12:16Z"} {
		mallory.Publish(context.Background(), tp.Book(far), []byte(`{}`), true)
	}
	g.mu.Lock()
	n := len(g.intervals)
	_, misaligned := g.intervals["2026-11-22T12:16Z"]
	var kept []byte
	if iv := g.intervals["2026-11-22T12:15Z"]; iv != nil {
		kept = iv.book
	}
	g.mu.Unlock()
	if kept != nil {
		t.Errorf("an oversize book was kept (%d bytes)", len(kept))
	}
	if misaligned {
		t.Error("state kept for 12:16, which is not an interval of a 15-minute market")
	}
	if n > 2 { // 12:00 and 12:15 at most (the gateway's own order and skips)
		t.Errorf("%d intervals of state after junk about far intervals", n)
	}
	if got := testutil.ToFloat64(g.metrics.badMessages.WithLabelValues(protocol.KindBook)); got != 1 {
		t.Errorf("oversize books counted %v, want 1", got)
	}
}

// A forecast below the minimum trade size is logged and counted once per
// interval, though its figure changes at every poll.
func TestNoOrderCountedOncePerInterval(t *testing.T) {
	// 300 W over 15 minutes is 75 Wh, 60 Wh after the safety factor: below
	// the 100 Wh minimum at every poll, with a growing forecast.
	c := newCommunity(t, map[string]int64{"home1": 300}, map[string]config.ClearerRole{"operator": config.ClearerPrimary})
	c.run(t0.Add(14*time.Minute), 5*time.Second)
	if got := counter(t, c.gws["home1"], "p2pgrid_orders_skipped_total", "below_minimum"); got != 1 {
		t.Errorf("below-minimum skips counted %v in one interval, want 1", got)
	}
}

// Junk on settlement/<interval> stops neither the clearer's settlement
// nor any gateway's check of it; a real settlement of another interval on
// that topic is ignored without an alarm.
func TestJunkSettlementDoesNotStopSettling(t *testing.T) {
	c := newCommunity(t,
		map[string]int64{"home1": 4000, "home2": -2000},
		map[string]config.ClearerRole{"operator": config.ClearerPrimary})
	ledgers := map[string]*memLedger{}
	for id, g := range c.gws {
		ledgers[id] = &memLedger{}
		g.ledger = ledgers[id]
	}
	tp := c.gws["home1"].Topics()
	first, second := "2026-11-22T12:15Z", "2026-11-22T12:30Z"
	mallory := c.hub.Client("mallory")
	c.run(t0.Add(31*time.Minute), 5*time.Second)
	mallory.Publish(context.Background(), tp.Settlement(first), []byte(`{"v":1}`), true)
	c.run(t0.Add(48*time.Minute), 5*time.Second) // 12:15 settled at 12:32, 12:30 at 12:47
	for id, l := range ledgers {
		if l.find(record.KindInterval, first) == nil {
			t.Errorf("%s: %s not settled after junk on its topic", id, first)
		}
	}
	// 12:30's real settlement, republished on 12:45's topic.
	mallory.Publish(context.Background(), tp.Settlement("2026-11-22T12:45Z"), c.hub.Retained(tp.Settlement(second)), true)
	for id, g := range c.gws {
		if a := g.Alarms(); len(a) != 0 && id != "operator" {
			t.Errorf("%s alarms %+v", id, a)
		}
	}
	if got := testutil.ToFloat64(c.gws["home1"].metrics.badMessages.WithLabelValues(protocol.KindSettlement)); got != 2 {
		t.Errorf("rejected settlements counted %v, want 2 (the junk and the misplaced one)", got)
	}
}

// A flood of forged orders is counted exactly (the first ones checked, the
// rest beyond the topic's budget dropped unchecked), but logged once a
// minute per sender and reason, the line saying how many it stands for.
func TestRejectionLogRateLimited(t *testing.T) {
	c := newCommunity(t, map[string]int64{"home1": 4000}, map[string]config.ClearerRole{"operator": config.ClearerPrimary})
	var logs strings.Builder
	op := c.gws["operator"]
	op.log = slog.New(slog.NewTextHandler(&syncWriter{w: &logs}, nil))
	c.run(t0.Add(time.Minute), 5*time.Second)
	forgedOrder, err := protocol.SignOrder(testKey("mallory"), "c1", "2026-11-22T12:15Z", "home1", auctionBuy, 100_000, 300_000, op.market)
	if err != nil {
		t.Fatal(err)
	}
	mallory := c.hub.Client("mallory")
	for range 4000 {
		mallory.Publish(context.Background(), op.topics.Orders("home1"), forgedOrder, false)
	}
	forged, limited := counter(t, op, "p2pgrid_clearer_orders_rejected_total", "forged"), counter(t, op, "p2pgrid_clearer_orders_rejected_total", "rate_limited")
	if forged != messageBudget || forged+limited != 4000 {
		t.Errorf("forged %v + rate-limited %v rejections, want %d + %d", forged, limited, messageBudget, 4000-messageBudget)
	}
	if n := strings.Count(logs.String(), "order rejected"); n != 1 {
		t.Errorf("%d log lines for %d forged orders in a second, want 1", n, messageBudget)
	}
	if n := strings.Count(logs.String(), "beyond the budget"); n != 1 {
		t.Errorf("%d log lines for %v rate-limited orders in a second, want 1", n, limited)
	}
	c.run(t0.Add(2*time.Minute+5*time.Second), 5*time.Second)
	mallory.Publish(context.Background(), op.topics.Orders("home1"), forgedOrder, false)
	if want := fmt.Sprintf("similar_not_logged=%d", 4000-messageBudget-1); !strings.Contains(logs.String(), want) {
		t.Errorf("the next line does not count the held-back ones (%s):\n%s", want, logs.String())
	}
}

type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

// A home signing absurd figures (2^63-1 Wh), or figures for an interval
// that is not over, cannot block the settlement: the clearer refuses them
// (counted, alarmed) and settles the interval without them, and every
// gateway accepts that settlement.
func TestAbsurdMeteredFiguresRefused(t *testing.T) {
	c := newCommunity(t,
		map[string]int64{"home1": 4000, "home2": -2000, "home3": -1500},
		map[string]config.ClearerRole{"operator": config.ClearerPrimary})
	ledgers := map[string]*memLedger{}
	for id, g := range c.gws {
		ledgers[id] = &memLedger{}
		g.ledger = ledgers[id]
	}
	// home2's own figures never go out; it signs its own instead.
	c.gws["home2"].mq.(*gatewaytest.Client).Drop = func(topic string) bool { return strings.Contains(topic, "/metered/") }
	op := c.gws["operator"]
	home2 := c.hub.Client("home2-rogue")
	interval := "2026-11-22T12:15Z"
	c.run(t0.Add(20*time.Minute), 5*time.Second)
	early, err := protocol.SignMetered(testKey("home2"), "c1", interval, "home2", 0, 500)
	if err != nil {
		t.Fatal(err)
	}
	home2.Publish(context.Background(), op.topics.Metered("home2"), early, false) // 12:20: 12:15 is not over
	c.run(t0.Add(31*time.Minute), 5*time.Second)
	huge, err := protocol.SignMetered(testKey("home2"), "c1", interval, "home2", 1<<63-1, 1<<63-1)
	if err != nil {
		t.Fatal(err)
	}
	home2.Publish(context.Background(), op.topics.Metered("home2"), huge, false)
	c.run(t0.Add(33*time.Minute), 5*time.Second) // settled at 12:32
	if got := testutil.ToFloat64(op.metrics.badMessages.WithLabelValues(protocol.KindMetered)); got != 2 {
		t.Errorf("refused figures counted %v, want 2", got)
	}
	a := op.Alarms()
	if len(a) != 1 || a[0].Kind != protocol.AlarmMeteredRefused || !strings.Contains(a[0].Detail, "home2") {
		t.Errorf("operator alarms %+v, want one metered_refused naming home2", a)
	}
	for id, l := range ledgers {
		if l.find(record.KindInterval, interval) == nil {
			t.Errorf("%s: %s not settled", id, interval)
		}
	}
	if m := meteredOf(t, c, interval, "home2"); m != nil {
		t.Errorf("refused figures in the settlement: %+v", m)
	}
}

// flappingClient is a hub client whose connection was lost losses times.
type flappingClient struct {
	*gatewaytest.Client
	mu     sync.Mutex
	losses int
}

func (f *flappingClient) LostRecently(time.Duration) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.losses
}

// A gateway whose connection keeps being taken away raises
// connection_unstable, once per interval, in its status and health.
func TestConnectionUnstableAlarm(t *testing.T) {
	c := newCommunity(t, map[string]int64{"home1": 4000}, map[string]config.ClearerRole{"operator": config.ClearerPrimary})
	g := c.gws["home1"]
	fc := &flappingClient{Client: g.mq.(*gatewaytest.Client), losses: 2}
	g.mq = fc
	c.run(t0.Add(time.Minute), 5*time.Second)
	if a := g.Alarms(); len(a) != 0 {
		t.Fatalf("alarm after 2 losses: %+v", a)
	}
	fc.mu.Lock()
	fc.losses = 3
	fc.mu.Unlock()
	c.run(t0.Add(20*time.Minute), 5*time.Second)
	a := g.Alarms()
	if len(a) != 2 || a[0].Kind != protocol.AlarmConnectionUnstable || a[0].Interval != "2026-11-22T12:00Z" || a[1].Interval != "2026-11-22T12:15Z" {
		t.Fatalf("alarms %+v, want connection_unstable once for 12:00 and once for 12:15", a)
	}
	st, err := protocol.DecodeStatus(c.hub.Retained(g.Topics().Status("home1")))
	if err != nil || len(st.Alarms) != 2 {
		t.Errorf("retained status %+v %v", st, err)
	}
}

// A home whose order never reached the clearer learns why (an alarm with
// the likely causes) but decides about the interval as every other gateway
// does, from the published data alone: the clearing verifies and its
// settlement goes into its ledger, as into a gateway that remembers no
// order of its own.
func TestMissingOwnOrderStillSettles(t *testing.T) {
	c := newCommunity(t,
		map[string]int64{"home1": 4000, "home2": -2000, "home3": -1500},
		map[string]config.ClearerRole{"operator": config.ClearerPrimary})
	ledgers := map[string]*memLedger{}
	for id, g := range c.gws {
		ledgers[id] = &memLedger{}
		g.ledger = ledgers[id]
	}
	c.gws["home2"].mq.(*gatewaytest.Client).Drop = func(topic string) bool { return strings.Contains(topic, "/orders/") }
	c.run(t0.Add(33*time.Minute), 5*time.Second)
	interval := "2026-11-22T12:15Z"
	if c.gws["home2"].OwnOrder(interval) == nil {
		t.Fatal("home2 placed no order")
	}
	a := c.gws["home2"].Alarms()
	if len(a) != 2 || a[0].Kind != protocol.AlarmMissingOwnOrder || a[0].Interval != interval || !strings.Contains(a[0].Detail, "rejected_total") {
		t.Errorf("home2 alarms %+v, want missing_own_order for 12:15 and 12:30, saying where to look", a)
	}
	if err, ok := c.verified[interval]["home2"]; !ok || err != nil {
		t.Errorf("home2's verification of %s: %v %v", interval, ok, err)
	}
	for id, l := range ledgers {
		if got, want := string(l.find(record.KindInterval, interval)), string(ledgers["operator"].find(record.KindInterval, interval)); got == "" || got != want {
			t.Errorf("%s's ledger holds %q for %s, the operator's %q", id, got, interval, want)
		}
	}
}

// The primary clearer restarts during the interval, after the orders came
// in (it had acknowledged them, and kept them in memory only): the orders
// are retained, the new process gets them all when it subscribes, and it
// seals the whole book. Old retained orders are not counted as late.
func TestClearerRestartSealsWholeBook(t *testing.T) {
	c := newCommunity(t,
		map[string]int64{"home1": 4000, "home2": -2000, "home3": -1500},
		map[string]config.ClearerRole{"operator": config.ClearerPrimary})
	interval := "2026-11-22T12:45Z" // orders from 12:36:30, gate 12:43
	c.run(t0.Add(40*time.Minute), 5*time.Second)
	old := c.gws["operator"]
	if n := old.clearer.Orders(interval); n != 3 {
		t.Fatalf("orders for %s before the restart: %d", interval, n)
	}
	g, err := New(Options{Config: old.cfg, Key: testKey("operator"), Roster: c.roster, MQTT: c.hub.Client("operator-restarted"), Now: c.now})
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Start(); err != nil {
		t.Fatal(err)
	}
	c.gws["operator"] = g
	c.run(t0.Add(43*time.Minute+10*time.Second), 5*time.Second)
	book, err := protocol.DecodeBook(c.hub.Retained(g.Topics().Book(interval)))
	if err != nil || len(book.Orders) != 3 {
		t.Fatalf("book of %s sealed by the restarted clearer: %d orders, %v; want all 3", interval, len(book.Orders), err)
	}
	if got := counter(t, g, "p2pgrid_clearer_orders_rejected_total", "late"); got != 0 {
		t.Errorf("old retained orders counted late: %v", got)
	}
}

// A flood on one gateway's orders topic is dropped unchecked past the
// budget, counted exactly as rate_limited; the next interval's budget is
// fresh, and the gateway's real order goes through.
func TestOrderFloodRateLimited(t *testing.T) {
	c := newCommunity(t, map[string]int64{"home1": 4000, "home2": -2000}, map[string]config.ClearerRole{"operator": config.ClearerPrimary})
	op := c.gws["operator"]
	c.run(t0.Add(time.Minute), 5*time.Second)
	mallory := c.hub.Client("mallory")
	for range 1000 {
		mallory.Publish(context.Background(), op.topics.Orders("home1"), []byte(`{"v":1}`), false)
	}
	if got := counter(t, op, "p2pgrid_clearer_orders_rejected_total", "rate_limited"); got != 1000-messageBudget {
		t.Errorf("rate-limited orders %v, want %d", got, 1000-messageBudget)
	}
	if got := counter(t, op, "p2pgrid_clearer_orders_rejected_total", "malformed"); got != messageBudget {
		t.Errorf("malformed orders checked %v, want the budget, %d", got, messageBudget)
	}
	c.run(t0.Add(29*time.Minute), 5*time.Second)
	if n := op.clearer.Orders("2026-11-22T12:30Z"); n != 2 {
		t.Errorf("orders for 12:30 after a flood in 12:00: %d, want 2", n)
	}
}
