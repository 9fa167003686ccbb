package gateway

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/p2pgrid/p2pgrid/gateway/clearing"
	"github.com/p2pgrid/p2pgrid/gateway/config"
	"github.com/p2pgrid/p2pgrid/gateway/gatewaytest"
	"github.com/p2pgrid/p2pgrid/gateway/protocol"
	"github.com/p2pgrid/p2pgrid/meter"
	"github.com/p2pgrid/p2pgrid/settlement"
	"github.com/p2pgrid/p2pgrid/settlement/ledger"
	"github.com/p2pgrid/p2pgrid/settlement/record"
)

var t0 = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

func testKey(name string) ed25519.PrivateKey {
	seed := sha256.Sum256([]byte("gw:" + name))
	return ed25519.NewKeyFromSeed(seed[:])
}

// home is a fake grid meter whose counters move at a steady net power.
type home struct {
	mu           sync.Mutex
	exportW      int64 // > 0 exporting, < 0 importing
	clock        *time.Time
	impWh, expWh int64
	broken       bool
}

func (h *home) Read(context.Context) (meter.Reading, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.broken {
		return meter.Reading{}, errBroken
	}
	secs := h.clock.Sub(t0).Seconds()
	exp, imp := h.expWh, h.impWh
	if h.exportW > 0 {
		exp += int64(float64(h.exportW) * secs / 3600)
	} else {
		imp += int64(float64(-h.exportW) * secs / 3600)
	}
	return meter.Reading{Kind: meter.KindMeter, PowerW: meter.F(float64(-h.exportW)), ImportWh: meter.Wh(imp), ExportWh: meter.Wh(exp)}, nil
}

type brokenErr struct{}

func (brokenErr) Error() string { return "device does not answer" }

var errBroken = brokenErr{}

type community struct {
	hub      *gatewaytest.Hub
	roster   *protocol.Roster
	gws      map[string]*Gateway
	homes    map[string]*home
	clock    time.Time
	mu       sync.Mutex
	verified map[string]map[string]error // interval -> gateway -> error
	sealed   map[string][]string         // interval -> the gateways that sealed it
	settled  map[string][]string         // interval -> the gateways that recorded its settlement
}

func testConfig(id string, clearer config.ClearerRole) *config.Config {
	c := config.Default()
	c.Gateway, c.Community, c.Roster, c.Clearer = id, "c1", "roster.json", clearer
	c.MQTT.ClientID = id
	cap := decimal.RequireFromString("0.30")
	floor := decimal.RequireFromString("0.05")
	c.Market.PriceCap, c.Market.PriceFloor = &cap, &floor
	sell, buy := decimal.RequireFromString("0.08"), decimal.RequireFromString("0.25")
	c.Policy.MinSellPrice, c.Policy.MaxBuyPrice = &sell, &buy
	c.Telemetry.Every = time.Minute
	return c
}

// newCommunity builds gateways on a fake hub: homes with the given net
// export power, plus an operator (primary clearer, no devices) and home
// "standby" roles as given.
func newCommunity(t *testing.T, homes map[string]int64, clearers map[string]config.ClearerRole) *community {
	t.Helper()
	return newCommunityOn(t, gatewaytest.NewHub(), homes, clearers)
}

// newCommunityOn is newCommunity on the given hub.
func newCommunityOn(t *testing.T, hub *gatewaytest.Hub, homes map[string]int64, clearers map[string]config.ClearerRole) *community {
	t.Helper()
	return newCommunityWith(t, hub, homes, clearers, nil)
}

// newCommunityWith is newCommunityOn with adjust, if not nil, called on
// each gateway's options before it is built (c.roster is set by then).
func newCommunityWith(t *testing.T, hub *gatewaytest.Hub, homes map[string]int64, clearers map[string]config.ClearerRole,
	adjust func(c *community, id string, o *Options)) *community {
	t.Helper()
	c := &community{hub: hub, gws: map[string]*Gateway{}, homes: map[string]*home{},
		clock: t0, verified: map[string]map[string]error{}, sealed: map[string][]string{}, settled: map[string][]string{}}
	var members []protocol.Member
	ids := []string{}
	for id := range homes {
		ids = append(ids, id)
	}
	for id := range clearers {
		if _, ok := homes[id]; !ok {
			ids = append(ids, id)
		}
	}
	for _, id := range ids {
		_, isClearer := clearers[id]
		members = append(members, protocol.Member{ID: id, PublicKey: testKey(id).Public().(ed25519.PublicKey), Clearer: isClearer})
	}
	var err error
	if c.roster, err = protocol.NewRoster("c1", members); err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		var devs []Device
		if w, ok := homes[id]; ok {
			h := &home{exportW: w, clock: &c.clock, impWh: 1_000_000, expWh: 500_000}
			c.homes[id] = h
			devs = append(devs, Device{Name: "grid", Role: config.RoleGrid, Poll: 5 * time.Second, Reader: h})
		}
		o := Options{Config: testConfig(id, clearers[id]), Key: testKey(id), Roster: c.roster,
			MQTT: c.hub.Client(id), Devices: devs, Now: func() time.Time { return c.now() }, Version: "test", SyncPolls: true,
			Observer: c}
		if adjust != nil {
			adjust(c, id, &o)
		}
		g, err := New(o)
		if err != nil {
			t.Fatal(err)
		}
		if err := g.Start(); err != nil {
			t.Fatal(err)
		}
		c.gws[id] = g
	}
	return c
}

func (c *community) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.clock
}

// run advances the clock to until in steps, ticking every gateway.
func (c *community) run(until time.Time, step time.Duration) {
	for c.now().Before(until) {
		c.mu.Lock()
		c.clock = c.clock.Add(step)
		now := c.clock
		c.mu.Unlock()
		for _, g := range c.gws {
			g.Tick(context.Background(), now)
		}
		c.hub.Wait()
	}
}

func TestCommunityTradesAndVerifies(t *testing.T) {
	c := newCommunity(t,
		map[string]int64{"home1": 4000, "home2": -2000, "home3": -1500},
		map[string]config.ClearerRole{"operator": config.ClearerPrimary})
	// Three intervals: orders for 12:15, 12:30 and 12:45 are placed during
	// 12:00, 12:15 and 12:30 and cleared at their gate closures.
	c.run(t0.Add(45*time.Minute), 5*time.Second)
	for _, interval := range []string{"2026-11-22T12:15Z", "2026-11-22T12:30Z", "2026-11-22T12:45Z"} {
		got := c.verified[interval]
		if len(got) != 4 {
			t.Errorf("%s: verified by %d gateways, want 4: %v", interval, len(got), got)
		}
		for gw, err := range got {
			if err != nil {
				t.Errorf("%s: %s: %v", interval, gw, err)
			}
		}
		res := c.hub.Retained(c.gws["home1"].Topics().Result(interval))
		// Supply (0.8 kWh at 0.08) exceeds demand (0.4 + 0.3 kWh at 0.25):
		// the seller is the partly filled marginal order, its limit the price.
		if !strings.Contains(string(res), `"price":"0.08"`) {
			t.Errorf("%s: result %s, want the seller's limit 0.08", interval, res)
		}
	}
	// The seller offers 80% of a steady 4 kW over 15 minutes (1 kWh);
	// buyers bid 80% of their 500 and 375 Wh.
	own := c.gws["home1"].OwnOrder("2026-11-22T12:30Z")
	if !strings.Contains(string(own), `"side":"sell","kwh":"0.8"`) {
		t.Errorf("home1's order %s", own)
	}
	if r, err := protocol.ParseRoster(c.hub.Retained(c.gws["operator"].Topics().Roster())); err != nil || len(r.Gateways) != 4 {
		t.Errorf("retained roster: %v %v", r, err)
	}
	if len(c.gws["home2"].Alarms()) != 0 {
		t.Errorf("alarms: %v", c.gws["home2"].Alarms())
	}
}

// The primary clearer is gone (its publications never arrive): the standby
// clears after the grace period, with the same clearing.
func TestStandbyTakesOver(t *testing.T) {
	c := newCommunity(t,
		map[string]int64{"home1": 4000, "home2": -2000},
		map[string]config.ClearerRole{"operator": config.ClearerPrimary, "home2": config.ClearerStandby})
	c.run(t0.Add(13*time.Minute+10*time.Second), 5*time.Second) // primary sealed 12:15 at 12:13
	interval := "2026-11-22T12:15Z"
	first := c.hub.Retained(c.gws["home1"].Topics().Result(interval))
	if !strings.Contains(string(first), `"clearer":"operator"`) {
		t.Fatalf("primary's result %s", first)
	}
	// Next interval: the primary's messages are lost.
	c.gws["operator"].mq.(*gatewaytest.Client).Drop = func(topic string) bool {
		return strings.Contains(topic, "/book/") || strings.Contains(topic, "/result/")
	}
	c.run(t0.Add(28*time.Minute+10*time.Second), 5*time.Second)
	interval = "2026-11-22T12:30Z"
	if got := c.hub.Retained(c.gws["home1"].Topics().Result(interval)); got != nil {
		t.Fatalf("a result before the grace period ended: %s", got)
	}
	c.run(t0.Add(28*time.Minute+45*time.Second), 5*time.Second) // gate 12:28 + grace 30s
	res := c.hub.Retained(c.gws["home1"].Topics().Result(interval))
	if !strings.Contains(string(res), `"clearer":"home2"`) {
		t.Fatalf("standby's result: %s", res)
	}
	// The standby's clearing is the one the primary computed (but could not
	// publish): the embedded result bytes are identical.
	primary, err := c.gws["operator"].clearer.Seal(interval)
	if err != nil {
		t.Fatal(err)
	}
	standby, _ := protocol.DecodeResult(res)
	if string(standby.Result) != string(mustResult(t, primary.Result).Result) {
		t.Errorf("standby result %s\nprimary result %s", standby.Result, mustResult(t, primary.Result).Result)
	}
	for gw, err := range c.verified[interval] {
		if err != nil {
			t.Errorf("%s: %v", gw, err)
		}
	}
	if len(c.verified[interval]) != 3 { // home1, home2 and the silenced operator all verify it
		t.Errorf("verified by %v", c.verified[interval])
	}
}

func mustResult(t *testing.T, raw []byte) *protocol.ResultMsg {
	t.Helper()
	m, err := protocol.DecodeResult(raw)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// A forged order (signed with a key not in the roster) is rejected and
// counted; a cheating result raises an alarm on every gateway, published
// in its retained status.
func TestForgedOrderAndCheatingResult(t *testing.T) {
	c := newCommunity(t,
		map[string]int64{"home1": 4000, "home2": -2000},
		map[string]config.ClearerRole{"operator": config.ClearerPrimary})
	c.run(t0.Add(7*time.Minute), 5*time.Second)
	op := c.gws["operator"]
	rogue := c.hub.Client("mallory")
	forged, err := protocol.SignOrder(testKey("mallory"), "c1", "2026-11-22T12:15Z", "home2", auctionBuy, 100_000, 300_000, op.market)
	if err != nil {
		t.Fatal(err)
	}
	rogue.Publish(context.Background(), op.topics.Orders("home2"), forged, false)
	rogue.Publish(context.Background(), op.topics.Orders("home2"), []byte("{not json"), false)
	if got := counter(t, op, "p2pgrid_clearer_orders_rejected_total", "forged"); got != 1 {
		t.Errorf("forged rejections counted %v", got)
	}
	if got := counter(t, op, "p2pgrid_clearer_orders_rejected_total", "malformed"); got != 1 {
		t.Errorf("malformed rejections counted %v", got)
	}
	c.run(t0.Add(14*time.Minute), 5*time.Second)

	// The operator's key signs a result that is not the book's clearing.
	interval := "2026-11-22T12:15Z"
	good := mustResult(t, c.hub.Retained(op.topics.Result(interval)))
	bad := strings.Replace(string(good.Result), `"price":"0.08"`, `"price":"0.2"`, -1)
	cheat, err := protocol.EncodeResult(testKey("operator"), "c1", interval, "operator", []byte(bad))
	if err != nil {
		t.Fatal(err)
	}
	c.hub.Client("operator").Publish(context.Background(), op.topics.Result(interval), cheat, true)
	for _, id := range []string{"home1", "home2"} {
		alarms := c.gws[id].Alarms()
		if len(alarms) != 1 || alarms[0].Kind != protocol.AlarmMismatch || alarms[0].Interval != interval {
			t.Errorf("%s alarms %+v", id, alarms)
		}
		st, err := protocol.DecodeStatus(c.hub.Retained(op.topics.Status(id)))
		if err != nil || len(st.Alarms) != 1 || st.Alarms[0].Kind != protocol.AlarmMismatch {
			t.Errorf("%s status %+v %v", id, st, err)
		}
		if err == nil && (len(st.Verified) == 0 || st.Verified[0].Interval != interval || st.Verified[0].Clearing != protocol.AlarmMismatch) {
			t.Errorf("%s status verdicts %+v, want %s's clearing first, as %s", id, st.Verified, interval, protocol.AlarmMismatch)
		}
	}
	// A day later the alarm has been dropped.
	c.run(t0.Add(25*time.Hour), time.Minute)
	if a := c.gws["home1"].Alarms(); len(a) != 0 {
		t.Errorf("alarms a day later: %+v", a)
	}
}

// A home whose meter stops answering places no order (and says why); it
// trades again once readings are fresh.
func TestStaleMeterNoOrder(t *testing.T) {
	c := newCommunity(t,
		map[string]int64{"home1": 4000, "home2": -2000},
		map[string]config.ClearerRole{"operator": config.ClearerPrimary})
	c.homes["home1"].broken = true
	c.run(t0.Add(14*time.Minute), 5*time.Second)
	if own := c.gws["home1"].OwnOrder("2026-11-22T12:15Z"); own != nil {
		t.Errorf("order from a silent meter: %s", own)
	}
	if got := counter(t, c.gws["home1"], "p2pgrid_orders_skipped_total", "no_readings"); got != 1 {
		t.Errorf("skips counted %v", got)
	}
	if h := c.gws["home1"].Health(); h.Status != "degraded" || !strings.Contains(h.Devices["grid"], "does not answer") {
		t.Errorf("health %+v", h)
	}
	// The dead grid meter is an alarm, in the retained status, while it
	// lasts, and closed once the meter answers again.
	a := c.gws["home1"].Alarms()
	if len(a) != 1 || a[0].Kind != protocol.AlarmMeterStale || !strings.Contains(a[0].Detail, `"grid"`) {
		t.Errorf("alarms with a dead meter: %+v", a)
	}
	if st, err := protocol.DecodeStatus(c.hub.Retained(c.gws["home1"].Topics().Status("home1"))); err != nil || len(st.Alarms) != 1 {
		t.Errorf("retained status with a dead meter: %+v %v", st, err)
	}
	c.homes["home1"].mu.Lock()
	c.homes["home1"].broken = false
	c.homes["home1"].mu.Unlock()
	c.run(t0.Add(29*time.Minute), 5*time.Second)
	if a := c.gws["home1"].Alarms(); len(a) != 0 {
		t.Errorf("alarms after the meter recovered: %+v", a)
	}
	if st, err := protocol.DecodeStatus(c.hub.Retained(c.gws["home1"].Topics().Status("home1"))); err != nil || len(st.Alarms) != 0 {
		t.Errorf("retained status after recovery: %+v %v", st, err)
	}
	if own := c.gws["home1"].OwnOrder("2026-11-22T12:30Z"); own == nil {
		t.Error("no order once the meter answers again")
	}
}

// A gateway restarted mid-interval (a new process: new state, same key)
// rejoins: it picks up the retained clearing and trades the next interval.
func TestRestartMidInterval(t *testing.T) {
	c := newCommunity(t,
		map[string]int64{"home1": 4000, "home2": -2000},
		map[string]config.ClearerRole{"operator": config.ClearerPrimary})
	c.run(t0.Add(20*time.Minute), 5*time.Second)
	old := c.gws["home2"]
	g, err := New(Options{SyncPolls: true, Config: old.cfg, Key: testKey("home2"), Roster: c.roster, MQTT: c.hub.Client("home2-restarted"),
		Devices: []Device{{Name: "grid", Role: config.RoleGrid, Poll: 5 * time.Second, Reader: c.homes["home2"]}},
		Now:     func() time.Time { return c.now() },
		Observer: ObserverFuncs{OnVerified: func(_, interval string, v *clearing.Verdict, err error) {
			c.Verified("home2-restarted", interval, v, err)
		}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Start(); err != nil {
		t.Fatal(err)
	}
	c.gws["home2"] = g // the old one is gone
	if err := c.verified["2026-11-22T12:15Z"]["home2-restarted"]; err != nil {
		t.Errorf("retained clearing of 12:15 after restart: %v", err)
	}
	c.run(t0.Add(29*time.Minute), 5*time.Second)
	if g.OwnOrder("2026-11-22T12:30Z") == nil {
		t.Error("restarted gateway placed no order for 12:30")
	}
	if err, ok := c.verified["2026-11-22T12:30Z"]["home2-restarted"]; !ok || err != nil {
		t.Errorf("12:30 after restart: verified %v %v", ok, err)
	}
}

// memLedger is an in-memory Ledger.
type memLedger struct {
	mu      sync.Mutex
	entries []ledger.Entry
}

func (l *memLedger) Append(es ...ledger.Entry) ([]ledger.Record, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.entries = append(l.entries, es...)
	return nil, nil
}

func (l *memLedger) Has(kind, key string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, e := range l.entries {
		if e.Kind == kind && e.Key == key {
			return true
		}
	}
	return false
}

func (l *memLedger) find(kind, key string) []byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, e := range l.entries {
		if e.Kind == kind && e.Key == key {
			return e.Data
		}
	}
	return nil
}

// After delivery, every gateway publishes what its meter counted; the
// clearer settles and publishes; every gateway checks the settlement and
// records it in its ledger.
func TestSettlementFlow(t *testing.T) {
	c := newCommunity(t,
		map[string]int64{"home1": 4000, "home2": -2000, "home3": -1500},
		map[string]config.ClearerRole{"operator": config.ClearerPrimary})
	ledgers := map[string]*memLedger{}
	for id, g := range c.gws {
		ledgers[id] = &memLedger{}
		g.ledger = ledgers[id]
	}
	// 12:15 is cleared at 12:13, delivered 12:15-12:30, settled at 12:32.
	c.run(t0.Add(33*time.Minute), 5*time.Second)
	interval := "2026-11-22T12:15Z"
	tp0 := c.gws["operator"].Topics()
	raw := c.hub.Retained(tp0.Settlement(interval))
	msg, err := protocol.DecodeSettlement(raw)
	if err != nil {
		t.Fatalf("settlement %s: %v", raw, err)
	}
	ms, err := msg.Verify(c.roster)
	if err != nil || len(ms) != 3 {
		t.Fatalf("metered in the settlement: %v %v", len(ms), err)
	}
	for _, m := range ms {
		// Steady power over the interval, counters read at the first poll
		// after each boundary: exactly the interval's energy.
		want := map[string][2]int64{"home1": {0, 1000}, "home2": {500, 0}, "home3": {375, 0}}[m.Gateway]
		if m.ImportWh != want[0] || m.ExportWh != want[1] {
			t.Errorf("%s metered import %d export %d, want %v", m.Gateway, m.ImportWh, m.ExportWh, want)
		}
	}
	s, err := settlement.DecodeIntervalSettlement(msg.Settlement)
	if err != nil {
		t.Fatal(err)
	}
	// Two ex-ante trades, delivered; the post-delivery market sells
	// home1's 301 Wh beyond them to home2 (100 Wh) and home3 (76 Wh): the
	// 875 Wh the homes physically shared are all traded locally.
	var exAnte, post int
	for _, tr := range s.Trades {
		if settlement.IsPostDelivery(tr.ID) {
			post++
		} else if exAnte++; tr.MissingWh != 0 {
			t.Errorf("ex-ante trade %s: %d Wh missing", tr.ID, tr.MissingWh)
		}
	}
	if exAnte != 2 || post != 2 || !strings.HasSuffix(s.Policy, settlement.PostDeliverySuffix) {
		t.Errorf("trades %+v under %q, want 2 ex ante and 2 post delivery", s.Trades, s.Policy)
	}
	if c := settlement.CommunityTotals(s); c.LocalWh != 875 || c.GridImportWh != 0 {
		t.Errorf("local %d Wh, grid import %d Wh; want all 875 Wh shared locally", c.LocalWh, c.GridImportWh)
	}
	for id, l := range ledgers {
		if l.find(record.KindInterval, interval) == nil || l.find(record.KindClearing, interval) == nil ||
			l.find(record.KindStatement, interval+"/home2") == nil || l.find(record.KindTrade, s.Trades[0].ID) == nil ||
			l.find(record.KindTrade, s.Trades[len(s.Trades)-1].ID) == nil {
			t.Errorf("%s's ledger lacks the settlement of %s: %d entries", id, interval, len(l.entries))
		}
	}
	// Every gateway's status says what it concluded about the interval.
	for id := range c.gws {
		st, err := protocol.DecodeStatus(c.hub.Retained(tp0.Status(id)))
		if err != nil {
			t.Fatalf("%s's status: %v", id, err)
		}
		want := protocol.Verification{Interval: interval, Clearing: protocol.VerdictOK, Settlement: protocol.VerdictOK}
		if i := slices.IndexFunc(st.Verified, func(v protocol.Verification) bool { return v.Interval == interval }); i < 0 || st.Verified[i] != want {
			t.Errorf("%s's status says %+v of its latest intervals, want %+v among them", id, st.Verified, want)
		}
		for i := 1; i < len(st.Verified); i++ {
			if st.Verified[i-1].Interval <= st.Verified[i].Interval {
				t.Errorf("%s's status verdicts %+v are not newest first", id, st.Verified)
			}
		}
	}

	// The clearer's ledger keeps the evidence: the book and result as
	// published, which clear again to the same result anywhere. A home's
	// does not.
	tp := c.gws["operator"].Topics()
	for id, l := range ledgers {
		if id != "operator" {
			if l.find(record.KindBook, interval) != nil || l.find(record.KindResult, interval) != nil {
				t.Errorf("%s, a home, keeps the book or result of %s in its ledger", id, interval)
			}
			continue
		}
		b, err := record.DecodeBook(l.find(record.KindBook, interval))
		if err != nil {
			t.Fatalf("%s's book record of %s: %v", id, interval, err)
		}
		r, err := record.DecodeResult(l.find(record.KindResult, interval))
		if err != nil {
			t.Fatalf("%s's result record of %s: %v", id, interval, err)
		}
		for _, m := range []struct {
			name, topic string
			got         []byte
		}{{"book", tp.Book(interval), b.Message}, {"result", tp.Result(interval), r.Message}} {
			var want bytes.Buffer
			if err := json.Compact(&want, c.hub.Retained(m.topic)); err != nil || !bytes.Equal(m.got, want.Bytes()) {
				t.Errorf("%s's %s record holds %.80s, want the published message %.80s (%v)", id, m.name, m.got, want.Bytes(), err)
			}
		}
		v, err := clearing.Verify(c.roster, c.gws[id].market, "", b.Message, r.Message, nil)
		if err != nil || hex.EncodeToString(v.Result.BookSHA256[:]) != b.BookSHA256 || int64(v.Result.Orders) != b.Orders {
			t.Errorf("%s's evidence of %s: verify %v, digest %s, orders %d", id, interval, err, b.BookSHA256, b.Orders)
		}
	}
	if got := ledgers["home1"].find(record.KindReading, "home1/grid/2026-11-22T12:15Z"); !strings.Contains(string(got), `"export_wh"`) {
		t.Errorf("reading record %s", got)
	}
}

// The primary clearer restarts during delivery: the new process picks up
// the retained clearing, hears every gateway's figures after the interval,
// and settles it. A clearer that restarts after the interval ended settles
// it once it holds every trader's (retained) figures, and otherwise leaves
// it to the standby.
func TestSettlementAfterClearerRestart(t *testing.T) {
	c := newCommunity(t,
		map[string]int64{"home1": 4000, "home2": -2000},
		map[string]config.ClearerRole{"operator": config.ClearerPrimary, "home1": config.ClearerStandby})
	restart := func(id string) {
		old := c.gws[id]
		g, err := New(Options{SyncPolls: true, Config: old.cfg, Key: testKey(id), Roster: c.roster, MQTT: c.hub.Client(id + "-restarted"),
			Now: func() time.Time { return c.now() }})
		if err != nil {
			t.Fatal(err)
		}
		if err := g.Start(); err != nil {
			t.Fatal(err)
		}
		c.gws[id] = g
	}
	c.run(t0.Add(20*time.Minute), 5*time.Second) // 12:15 cleared at 12:13, delivering
	restart("operator")
	c.run(t0.Add(33*time.Minute), 5*time.Second)
	s1 := c.hub.Retained(c.gws["operator"].Topics().Settlement("2026-11-22T12:15Z"))
	if m, err := protocol.DecodeSettlement(s1); err != nil || m.Clearer != "operator" || len(m.Metered) != 2 {
		t.Fatalf("settlement of 12:15 after the restart: %v %s", err, s1)
	}

	// 12:30 is cleared at 12:28 and delivered until 12:45; the operator
	// restarts at 12:46, after the interval's figures went out. They are
	// retained: the new process gets every trader's, and settles 12:30 in
	// its turn, at 12:47.
	c.run(t0.Add(46*time.Minute), 5*time.Second)
	restart("operator")
	c.run(t0.Add(47*time.Minute+5*time.Second), 5*time.Second)
	s2 := c.hub.Retained(c.gws["operator"].Topics().Settlement("2026-11-22T12:30Z"))
	if m, err := protocol.DecodeSettlement(s2); err != nil || m.Clearer != "operator" || len(m.Metered) != 2 {
		t.Fatalf("settlement of 12:30 by the primary restarted after it ended: %v %s", err, s2)
	}

	// home2's figures of 12:45 never reach the broker, and the operator
	// restarts at 13:01: it lacks a trader's figures and was not listening
	// when the interval ended, so it does not settle (it cannot tell the
	// figures are missing rather than missed); the standby, which was
	// listening, does, a grace period late.
	c.gws["home2"].mq.(*gatewaytest.Client).Drop = func(topic string) bool { return strings.Contains(topic, "/metered/") }
	c.run(t0.Add(61*time.Minute), 5*time.Second)
	restart("operator")
	c.run(t0.Add(62*time.Minute+25*time.Second), 5*time.Second) // 13:02: the primary's turn
	if got := c.hub.Retained(c.gws["operator"].Topics().Settlement("2026-11-22T12:45Z")); got != nil {
		t.Fatalf("a settlement from a clearer that missed a trader's figures: %s", got)
	}
	c.run(t0.Add(62*time.Minute+35*time.Second), 5*time.Second) // + grace 30s: the standby's turn
	s3 := c.hub.Retained(c.gws["operator"].Topics().Settlement("2026-11-22T12:45Z"))
	if m, err := protocol.DecodeSettlement(s3); err != nil || m.Clearer != "home1" || len(m.Metered) != 1 {
		t.Fatalf("standby's settlement of 12:45: %v %s", err, s3)
	}

	// home2's figures of 13:00 never reach the broker either, and both
	// clearers restart after 13:00 ended (13:16): neither was listening.
	// They wait a gate-closure period (2 minutes) for retained figures
	// that may still come, then the primary settles without home2's,
	// rather than never.
	c.run(t0.Add(76*time.Minute), 5*time.Second)
	restart("operator")
	restart("home1")
	c.run(t0.Add(77*time.Minute+55*time.Second), 5*time.Second)
	if got := c.hub.Retained(c.gws["operator"].Topics().Settlement("2026-11-22T13:00Z")); got != nil {
		t.Fatalf("a settlement before the restarted clearers waited for retained figures: %s", got)
	}
	c.run(t0.Add(78*time.Minute+5*time.Second), 5*time.Second)
	s4 := c.hub.Retained(c.gws["operator"].Topics().Settlement("2026-11-22T13:00Z"))
	if m, err := protocol.DecodeSettlement(s4); err != nil || m.Clearer != "operator" || len(m.Metered) != 1 {
		t.Fatalf("settlement of 13:00 by the primary, restarted after it ended, without home2's figures: %v %s", err, s4)
	}
}
