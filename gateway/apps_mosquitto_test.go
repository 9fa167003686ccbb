package gateway

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/p2pgrid/p2pgrid/gateway/mqtt"
	"github.com/p2pgrid/p2pgrid/gateway/mqtt/mqtttest"
	"github.com/p2pgrid/p2pgrid/gateway/summary"
	"github.com/p2pgrid/p2pgrid/internal/testtool"
	"github.com/p2pgrid/p2pgrid/settlement/record"
)

// seen keeps the last payload of every topic a client receives.
type seen struct {
	c    *mqtt.Client
	mu   sync.Mutex
	last map[string][]byte
}

func watch(t *testing.T, url, user, password string, filters ...string) *seen {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := mqtt.Connect(ctx, mqtt.Options{Broker: url, ClientID: user, Username: user, Password: password,
		MaxReconnectInterval: time.Second})
	if err != nil {
		t.Fatalf("%s: %v", user, err)
	}
	t.Cleanup(c.Close)
	s := &seen{c: c, last: map[string][]byte{}}
	for _, f := range filters {
		if err := c.Subscribe(f, func(topic string, payload []byte) {
			s.mu.Lock()
			s.last[topic] = payload
			s.mu.Unlock()
		}); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

func (s *seen) get(topic string) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last[topic]
}

// topicsOf returns the topics s received that contain part.
func (s *seen) topicsOf(part string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for topic := range s.last {
		if strings.Contains(topic, part) {
			out = append(out, topic)
		}
	}
	return out
}

// With the shipped mosquitto.conf and acl, and the README's block for
// home2's app login: home2's gateway publishes its app topics and Home
// Assistant's discovery configs, and the app login, subscribed as Home
// Assistant is (to the discovery prefix and to the state topics), reads
// them, with home2's status for availability; the summary's figures are
// the ledger's. A neighbour (home3) and the operator read none of them,
// live or retained, and the app's own publishes there are dropped.
func TestAppTopicsOnShippedMosquitto(t *testing.T) {
	testtool.Integration(t)
	testtool.Require(t, "mosquitto", "apt-get install mosquitto mosquitto-clients")
	users := map[string]string{"home2-app": "pw-home2-app", "home4": "pw-home4", "home5": "pw-home5"}
	for _, id := range itGateways {
		users[id] = "pw-" + id
	}
	m := mqtttest.StartShippedWith(t, mqtttest.Shipped{Users: users,
		ACLAppend: mqtttest.ClearerBlock(t, "home1") + "\n" + mqtttest.AppBlock(t, "c1", "home2", "home2-app")})
	app := watch(t, m.URL, "home2-app", users["home2-app"], "homeassistant/#", "p2pgrid/v1/c1/app/home2/+", "p2pgrid/v1/c1/status/home2")
	// A neighbour's login (a gateway's, as the ACL sees it), subscribed to
	// everything from the start.
	neighbour := watch(t, m.URL, "home4", users["home4"], "#")

	h := newHarness(t, m.URL)
	iv := h.trade(t0.Add(15*time.Minute), "operator")
	h.advance(t0.Add(33 * time.Minute)) // 12:15 settles at 12:32
	h.waitFor("home2 to record the settlement of "+iv, func() bool {
		return h.ledgers["home2"].find(record.KindStatement, record.StatementKey(iv, "home2")) != nil
	})
	h.advance(t0.Add(33*time.Minute + 5*time.Second)) // the tick that publishes it
	st, err := record.DecodeStatement(h.ledgers["home2"].find(record.KindStatement, record.StatementKey(iv, "home2")))
	if err != nil {
		t.Fatal(err)
	}
	topics := h.gw("home2").Topics()
	var got appSummary
	h.waitFor("home2's app to read the summary of the settled interval", func() bool {
		raw := app.get(topics.App("home2", summary.KeySummary))
		return raw != nil && json.Unmarshal(raw, &got) == nil && got.LastTrade != nil && got.Today.Bought != "0"
	})
	if got.Today.Bought != st.BoughtKWh.Value().String() || got.Today.Saving != st.Saving.Value().String() ||
		got.LastTrade.Interval != iv || got.LastTrade.Side != "buy" {
		t.Errorf("the app read %+v; the ledger's statement of %s: bought %s, saving %s", got, iv, st.BoughtKWh, st.Saving)
	}
	if v := app.get(topics.App("home2", summary.KeyBoughtToday)); string(v) != got.Today.Bought {
		t.Errorf("the app read bought_today_kwh %q, the summary says %q", v, got.Today.Bought)
	}
	for _, f := range summary.Fields {
		topic := "homeassistant/sensor/p2pgrid_home2/" + f.Key + "/config"
		h.waitFor("home2's app to read "+topic, func() bool { return app.get(topic) != nil })
	}
	var status struct{ State string }
	if err := json.Unmarshal(app.get(topics.Status("home2")), &status); err != nil || status.State != "online" {
		t.Errorf("the app's view of home2's status, its sensors' availability: %q %v", app.get(topics.Status("home2")), err)
	}
	if _, err := decimal.NewFromString(string(app.get(topics.App("home2", summary.KeyPrice)))); err != nil {
		t.Errorf("price: %v", err)
	}

	// The app's publishes on its home's topics, and on the ones the
	// patterns would give its own login, are acknowledged and dropped:
	// what is retained after their acknowledgements is the gateway's.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	forged := []string{topics.App("home2", summary.KeySummary), "homeassistant/sensor/p2pgrid_home2/price/config",
		topics.App("home2-app", summary.KeySummary), "homeassistant/sensor/p2pgrid_home2-app/price/config"}
	for _, topic := range forged {
		if err := app.c.Publish(ctx, topic, []byte("forged"), true); err != nil {
			t.Fatal(err)
		}
	}
	app.c.Close() // one login, one connection
	late := watch(t, m.URL, "home2-app", users["home2-app"], "homeassistant/#", "p2pgrid/v1/c1/app/+/+")
	h.waitFor("the retained summary and configs", func() bool {
		return late.get(topics.App("home2", summary.KeySummary)) != nil && late.get(forged[1]) != nil
	})
	for _, topic := range forged {
		if v := late.get(topic); string(v) == "forged" {
			t.Errorf("the app's publish on %s got through", topic)
		}
	}

	// The neighbour read nothing of home2's, live or, subscribing again,
	// retained: once the retained result of the interval (which it may
	// read) is there, the retained messages have come.
	other := watch(t, m.URL, "home5", users["home5"], "#")
	h.waitFor("home5 to receive the retained result", func() bool { return other.get(topics.Result(iv)) != nil })
	for who, s := range map[string]*seen{"home4 (live)": neighbour, "home5 (retained)": other} {
		if got := append(s.topicsOf("/app/"), s.topicsOf("homeassistant/")...); len(got) > 0 {
			t.Errorf("%s read a neighbour's app topics: %v", who, got)
		}
	}
	if neighbour.get(topics.Result(iv)) == nil {
		t.Error("home4 did not even read the market: the privacy check above tested nothing")
	}
}
