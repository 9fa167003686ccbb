package gateway

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/p2pgrid/p2pgrid/gateway/config"
	"github.com/p2pgrid/p2pgrid/gateway/gatewaytest"
	"github.com/p2pgrid/p2pgrid/gateway/protocol"
	"github.com/p2pgrid/p2pgrid/gateway/summary"
	"github.com/p2pgrid/p2pgrid/settlement"
	"github.com/p2pgrid/p2pgrid/settlement/ledger"
	"github.com/p2pgrid/p2pgrid/settlement/record"
)

// appSummary is the JSON summary as an app reads it.
type appSummary struct {
	Gateway  string `json:"gateway"`
	Currency string `json:"currency"`
	TimeZone string `json:"time_zone"`
	Price    *struct {
		Interval string `json:"interval"`
		Value    string `json:"value"`
	} `json:"price"`
	Today, Month struct {
		Period string `json:"period"`
		Bought string `json:"bought_kwh"`
		Sold   string `json:"sold_kwh"`
		Saving string `json:"saving"`
	}
	LastTrade *struct {
		Interval     string `json:"interval"`
		Side         string `json:"side"`
		KWh          string `json:"kwh"`
		Counterparty string `json:"counterparty"`
	} `json:"last_trade"`
}

func retainedSummary(t *testing.T, hub *gatewaytest.Hub, topics protocol.Topics, gw string) appSummary {
	t.Helper()
	raw := hub.Retained(topics.App(gw, summary.KeySummary))
	var s appSummary
	if err := json.Unmarshal(raw, &s); err != nil {
		t.Fatalf("%s's retained summary %q: %v", gw, raw, err)
	}
	return s
}

// ledgerTotals sums gw's statements in the ledger, with settlement.Sum,
// and finds its last trade (the trades of its last interval, their kWh
// added up) and the last clearing price.
func ledgerTotals(t *testing.T, l *ledger.Ledger, gw string) (sum settlement.Statement, lastTrade record.Trade, price record.Clearing) {
	t.Helper()
	recs, err := l.Read(1, 100000)
	if err != nil {
		t.Fatal(err)
	}
	var sts []settlement.Statement
	var trades []record.Trade // of the last interval
	for _, r := range recs {
		v, err := record.Decode(r)
		if err != nil {
			t.Fatal(err)
		}
		switch v := v.(type) {
		case record.Statement:
			if v.Participant == gw {
				st, err := v.Settlement()
				if err != nil {
					t.Fatal(err)
				}
				sts = append(sts, st)
			}
		case record.Trade:
			if v.Seller == gw || v.Buyer == gw {
				if v.Interval != lastTrade.Interval {
					trades = nil
				}
				trades = append(trades, v)
				lastTrade = v
			}
		case record.Clearing:
			if v.Price.IsSet() {
				price = v
			}
		}
	}
	// The summary's last trade: of the last interval's trades, those on
	// the side and at the price of the greatest id (a post-delivery trade,
	// pdm/..., if any), their kWh added up.
	if len(trades) > 0 {
		slices.SortFunc(trades, func(a, b record.Trade) int { return strings.Compare(a.ID, b.ID) })
		top := trades[len(trades)-1]
		lastTrade = top
		kwh := decimal.Zero
		for _, tr := range trades {
			if (tr.Seller == gw) == (top.Seller == gw) && tr.Price.Value().Equal(top.Price.Value()) {
				kwh = kwh.Add(tr.KWh.Value())
			}
		}
		lastTrade.KWh = record.DecimalOf(kwh)
	}
	return settlement.Sum(sts...), lastTrade, price
}

// After settlements, a home's retained summary holds what its ledger
// holds: its statements summed, its last trade, the last clearing price;
// its single values say the same; Home Assistant's discovery configs are
// retained, bound to its status topic and its single-value topics. A
// gateway without a meter (the operator) publishes none. Restarted on the
// same ledger, the gateway publishes the same totals before any new
// settlement.
func TestAppTopicsFollowTheLedger(t *testing.T) {
	dir := t.TempDir()
	led, err := ledger.Open(dir, ledger.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { led.Close() }()
	c := newCommunityWith(t, gatewaytest.NewHub(),
		map[string]int64{"home1": 4000, "home2": -2000},
		map[string]config.ClearerRole{"operator": config.ClearerPrimary},
		func(_ *community, id string, o *Options) {
			o.Config.Apps.TimeZone = "Europe/Berlin"
			if id == "home1" {
				o.Ledger = led
			}
		})
	// 12:15 and 12:30 settle at 12:32 and 12:47.
	c.run(t0.Add(48*time.Minute), 5*time.Second)
	topics := c.gws["home1"].Topics()
	got := retainedSummary(t, c.hub, topics, "home1")
	sum, last, price := ledgerTotals(t, led, "home1")
	if sum.Intervals < 2 || sum.SoldWh == 0 {
		t.Fatalf("the ledger holds %d intervals of home1, sold %d Wh: the test settled too little", sum.Intervals, sum.SoldWh)
	}
	kwh := func(wh int64) string { return decimal.New(wh, -3).String() }
	for _, p := range []struct {
		name                 string
		bought, sold, saving string
	}{{"today", got.Today.Bought, got.Today.Sold, got.Today.Saving}, {"month", got.Month.Bought, got.Month.Sold, got.Month.Saving}} {
		if p.bought != kwh(sum.BoughtWh) || p.sold != kwh(sum.SoldWh) || p.saving != sum.Saving.String() {
			t.Errorf("summary %s: bought %s sold %s saving %s; the ledger's statements: bought %d Wh sold %d Wh saving %s",
				p.name, p.bought, p.sold, p.saving, sum.BoughtWh, sum.SoldWh, sum.Saving)
		}
	}
	if got.Today.Period != "2026-11-22" || got.Month.Period != "2026-11" || got.TimeZone != "Europe/Berlin" || got.Currency != "EUR" {
		t.Errorf("summary periods %q %q in %q, currency %q", got.Today.Period, got.Month.Period, got.TimeZone, got.Currency)
	}
	// The price is the latest verified clearing's: 12:45, cleared at
	// 12:43, not settled yet, so not in the ledger.
	if got.Price == nil || got.Price.Interval != "2026-11-22T12:45Z" || c.verified["2026-11-22T12:45Z"]["home1"] != nil {
		t.Errorf("summary price %+v, want the verified clearing of 12:45", got.Price)
	}
	if l := got.LastTrade; l == nil || l.Interval != last.Interval || l.Side != "sell" || l.Counterparty != last.Buyer || l.KWh != last.KWh.Value().String() {
		t.Errorf("summary last trade %+v, the ledger's %+v", got.LastTrade, last)
	}

	// The single values, and Home Assistant's configs for them.
	raw := c.hub.Retained(topics.App("home1", summary.KeySummary))
	values := map[string]string{summary.KeySoldToday: got.Today.Sold, summary.KeySavingMonth: got.Month.Saving,
		summary.KeyPrice: got.Price.Value, summary.KeyLastCounterparty: got.LastTrade.Counterparty, summary.KeyCurrency: "EUR"}
	for key, want := range values {
		if v := string(c.hub.Retained(topics.App("home1", key))); v != want {
			t.Errorf("single value %s = %q, the summary (%s) says %q", key, v, raw, want)
		}
	}
	for _, f := range summary.Fields {
		cfg := c.hub.Retained("homeassistant/sensor/p2pgrid_home1/" + f.Key + "/config")
		var d struct {
			StateTopic   string `json:"state_topic"`
			Availability []struct {
				Topic string `json:"topic"`
			} `json:"availability"`
		}
		if err := json.Unmarshal(cfg, &d); err != nil {
			t.Fatalf("discovery of %s: %q: %v", f.Key, cfg, err)
		}
		if d.StateTopic != topics.App("home1", f.Key) || len(d.Availability) != 1 || d.Availability[0].Topic != topics.Status("home1") {
			t.Errorf("discovery of %s: %s", f.Key, cfg)
		}
		if c.hub.Retained(d.StateTopic) == nil {
			t.Errorf("discovery of %s names %s, where nothing is retained", f.Key, d.StateTopic)
		}
	}
	if s := retainedSummary(t, c.hub, topics, "home2"); s.Today.Bought == "0" || s.LastTrade == nil || s.LastTrade.Side != "buy" {
		t.Errorf("home2's summary: %+v", s)
	}
	for _, m := range c.hub.Published {
		if strings.Contains(m.Topic, "/app/operator/") || strings.Contains(m.Topic, "p2pgrid_operator") {
			t.Fatalf("the operator, which has no meter, published %s", m.Topic)
		}
		if (strings.Contains(m.Topic, "/app/") || strings.HasPrefix(m.Topic, "homeassistant/")) && !m.Retained {
			t.Errorf("%s published not retained", m.Topic)
		}
	}

	// A restart on the same ledger: the totals before anything settles.
	if err := led.Close(); err != nil {
		t.Fatal(err)
	}
	if led, err = ledger.Open(dir, ledger.Options{}); err != nil {
		t.Fatal(err)
	}
	hub := gatewaytest.NewHub()
	cfg := c.gws["home1"].cfg
	g, err := New(Options{Config: cfg, Key: testKey("home1"), Roster: c.roster, MQTT: hub.Client("home1"),
		Devices: []Device{{Name: "grid", Role: config.RoleGrid, Poll: 5 * time.Second, Reader: c.homes["home1"]}},
		Now:     c.now, Ledger: led, SyncPolls: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Start(); err != nil {
		t.Fatal(err)
	}
	g.Tick(context.Background(), c.now())
	again := retainedSummary(t, hub, topics, "home1")
	// The price, until the broker's retained results are verified again,
	// is the ledger's last.
	if again.Today != got.Today || again.Month != got.Month || *again.LastTrade != *got.LastTrade ||
		again.Price.Interval != price.Interval || again.Price.Value != price.Price.Value().String() {
		t.Errorf("after a restart the summary is\n%+v %+v %+v\nbefore it\n%+v %+v %+v", again, *again.Price, *again.LastTrade, got, *got.Price, *got.LastTrade)
	}
}

// appPublishes counts the app and discovery messages gw published from
// message n of the hub on.
func appPublishes(hub *gatewaytest.Hub, gw string, n int) (summaries, discovery int) {
	hub.Wait()
	for _, m := range hub.Published[n:] {
		switch {
		case strings.HasSuffix(m.Topic, "/app/"+gw+"/"+summary.KeySummary):
			summaries++
		case strings.HasPrefix(m.Topic, "homeassistant/sensor/p2pgrid_"+gw+"/"):
			discovery++
		}
	}
	return summaries, discovery
}

// The app topics are published when something changed, not at every
// tick; everything, discovery included, after a reconnect; and at the
// home's midnight, with today's totals back at zero and the month's kept.
// (Guadalcanal is UTC+11 without summer time: 12:00 UTC is 23:00 there.)
func TestAppTopicsReconnectAndMidnight(t *testing.T) {
	c := newCommunityWith(t, gatewaytest.NewHub(),
		map[string]int64{"home1": 4000, "home2": -2000},
		map[string]config.ClearerRole{"operator": config.ClearerPrimary},
		func(_ *community, _ string, o *Options) { o.Config.Apps.TimeZone = "Pacific/Guadalcanal" })
	g := c.gws["home1"]
	mq := &reconnecting{Client: g.mq.(*gatewaytest.Client)}
	g.mq = mq
	topics := g.Topics()
	c.run(t0.Add(48*time.Minute), 5*time.Second) // 12:15 and 12:30 settled
	before := retainedSummary(t, c.hub, topics, "home1")
	if before.Today.Period != "2026-11-22" || before.Today.Sold == "0" || before.Today.Sold != before.Month.Sold {
		t.Fatalf("before midnight: %+v", before)
	}

	c.hub.Wait()
	n := len(c.hub.Published)
	c.run(t0.Add(50*time.Minute), 5*time.Second) // nothing settles or clears
	if s, d := appPublishes(c.hub, "home1", n); s != 0 || d != 0 {
		t.Errorf("%d summaries and %d discovery configs published with nothing new", s, d)
	}
	mq.connects.Add(1)
	n = len(c.hub.Published)
	c.run(t0.Add(50*time.Minute+5*time.Second), 5*time.Second)
	if s, d := appPublishes(c.hub, "home1", n); s != 1 || d != len(summary.Fields) {
		t.Errorf("after a reconnect: %d summaries and %d discovery configs, want 1 and %d", s, d, len(summary.Fields))
	}

	// 13:00 UTC is midnight in Guadalcanal; 12:45 (23:45 there) settles
	// at 13:02, into the month only.
	c.run(t0.Add(60*time.Minute+5*time.Second), 5*time.Second)
	midnight := retainedSummary(t, c.hub, topics, "home1")
	if midnight.Today.Period != "2026-11-23" || midnight.Today.Sold != "0" || midnight.Today.Saving != "0" || midnight.Month != before.Month {
		t.Errorf("at midnight: %+v, the month before %+v", midnight, before.Month)
	}
	c.run(t0.Add(63*time.Minute), 5*time.Second)
	after := retainedSummary(t, c.hub, topics, "home1")
	if after.Today.Sold != "0" || after.Month.Sold == before.Month.Sold || after.LastTrade.Interval != "2026-11-22T12:45Z" {
		t.Errorf("after 12:45 settled: %+v, want it in the month (before %+v) and not today", after, before.Month)
	}
}
