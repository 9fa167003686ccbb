package broker_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/p2pgrid/p2pgrid/gateway/broker"
	"github.com/p2pgrid/p2pgrid/gateway/mqtt"
	"github.com/p2pgrid/p2pgrid/gateway/mqtt/mqtttest"
	"github.com/p2pgrid/p2pgrid/gateway/protocol"
	"github.com/p2pgrid/p2pgrid/internal/testtool"
)

// aclCases are who may publish where under configs/mosquitto/acl. The same
// table is checked against CanPublish, against the embedded broker with its
// ACL on, and against Mosquitto with the shipped file, so the three cannot
// drift apart.
var aclCases = []struct {
	user, topic string
	allowed     bool
}{
	{"gw-a", "p2pgrid/v1/c1/orders/gw-a", true},
	{"gw-a", "p2pgrid/v1/c2/telemetry/gw-a", true},
	{"gw-a", "p2pgrid/v1/c1/status/gw-a", true},
	{"gw-a", "p2pgrid/v1/c1/orders/gw-b", false},
	{"gw-a", "p2pgrid/v1/c1/telemetry/gw-b", false},
	{"gw-a", "p2pgrid/v1/c1/status/gw-b", false},
	{"gw-a", "p2pgrid/v1/c1/orders/gw-a/extra", false},
	{"gw-a", "p2pgrid/v1/c1/orders", false},
	{"gw-a", "p2pgrid/v1/c1/book/96", false},
	{"gw-a", "p2pgrid/v1/c1/result/96", false},
	{"gw-a", "p2pgrid/v1/c1/result/latest", false},
	{"gw-a", "p2pgrid/v1/c1/roster", false},
	{"gw-a", "p2pgrid/v2/c1/orders/gw-a", false},
	{"gw-a", "other/orders/gw-a", false},
	{"operator", "p2pgrid/v1/c1/book/96", true},
	{"operator", "p2pgrid/v1/c1/book", true}, // "book/#" includes its parent
	{"operator", "p2pgrid/v1/c1/result/96", true},
	{"operator", "p2pgrid/v1/c2/result/latest", true},
	{"operator", "p2pgrid/v1/c1/roster", true},
	{"operator", "p2pgrid/v1/c1/status/operator", true},
	{"operator", "p2pgrid/v1/c1/roster/extra", false},
	{"operator", "p2pgrid/v1/c1/orders/gw-a", false},
	{"operator", "p2pgrid/v1/c1/status/gw-a", false},
	{"operator", "p2pgrid/v2/c1/result/96", false},
	{"gw-a", "p2pgrid/v1/c1/metered/gw-a", true},
	{"gw-a", "p2pgrid/v1/c1/metered/gw-b", false},
	{"gw-a", "p2pgrid/v1/c1/settlement/2026-11-22T12:15Z", false},
	{"operator", "p2pgrid/v1/c1/settlement/2026-11-22T12:15Z", true},
	{"operator", "p2pgrid/v1/c1/metered/gw-a", false},
	{"operator", "p2pgrid/v1/c1/metered/operator", true},
	{"gw-a", "p2pgrid/v1/c1/app/gw-a/summary", true},
	{"gw-a", "p2pgrid/v1/c2/app/gw-a/sold_today_kwh", true},
	{"gw-a", "p2pgrid/v1/c1/app/gw-b/summary", false},
	{"gw-a", "p2pgrid/v1/c1/app/gw-a", false},
	{"gw-a", "p2pgrid/v1/c1/app/gw-a/summary/extra", false},
	{"operator", "p2pgrid/v1/c1/app/gw-a/summary", false},
	{"gw-a", "homeassistant/sensor/p2pgrid_gw-a/price/config", true},
	{"gw-a", "homeassistant/sensor/p2pgrid_gw-b/price/config", false},
	{"gw-a", "homeassistant/sensor/p2pgrid_gw-a/price/state", false},
	{"gw-a", "homeassistant/binary_sensor/p2pgrid_gw-a/price/config", false},
	{"gw-a", "homeassistant/status", false},
	{"operator", "homeassistant/sensor/p2pgrid_gw-a/price/config", false},
}

// aclReadCases are who may read what under configs/mosquitto/acl: the
// market everybody, a gateway's telemetry, status and metered figures that
// gateway and the clearer, nobody else. CanRead is checked against the
// table, the embedded broker and Mosquitto against CanRead (checkACL), for
// the topics of aclCases that may be published.
var aclReadCases = []struct {
	user, topic string
	readable    bool
}{
	{"gw-b", "p2pgrid/v1/c1/orders/gw-a", true},
	{"gw-b", "p2pgrid/v1/c1/book/96", true},
	{"gw-b", "p2pgrid/v1/c1/result/96", true},
	{"gw-b", "p2pgrid/v1/c2/result/latest", true},
	{"gw-b", "p2pgrid/v1/c1/settlement/2026-11-22T12:15Z", true},
	{"gw-b", "p2pgrid/v1/c1/roster", true},
	{"gw-b", "p2pgrid/v1/c2/telemetry/gw-a", false},
	{"gw-b", "p2pgrid/v1/c1/status/gw-a", false},
	{"gw-b", "p2pgrid/v1/c1/metered/gw-a", false},
	{"gw-b", "p2pgrid/v1/c1/status/operator", false},
	{"gw-b", "p2pgrid/v1/c1/book", false}, // nobody's: book/+ wants an interval
	{"gw-a", "p2pgrid/v1/c2/telemetry/gw-a", true},
	{"gw-a", "p2pgrid/v1/c1/status/gw-a", true},
	{"gw-a", "p2pgrid/v1/c1/metered/gw-a", true},
	{"gw-a", "p2pgrid/v1/c1/metered/operator", false},
	{"operator", "p2pgrid/v1/c2/telemetry/gw-a", true},
	{"operator", "p2pgrid/v1/c1/status/gw-a", true},
	{"operator", "p2pgrid/v1/c1/metered/gw-a", true},
	{"operator", "p2pgrid/v1/c1/roster", true},
	{"operator", "p2pgrid/v1/c1/book", false},
	{"gw-a", "$SYS/broker/uptime", false},
	{"gw-a", "other/topic", false},
	{"gw-a", "p2pgrid/v2/c1/orders/gw-a", false},
	{"gw-a", "p2pgrid/v1/c1/app/gw-a/summary", true},
	{"gw-b", "p2pgrid/v1/c1/app/gw-a/summary", false},
	{"operator", "p2pgrid/v1/c1/app/gw-a/summary", false},
	{"gw-a", "homeassistant/sensor/p2pgrid_gw-a/price/config", true},
	{"gw-b", "homeassistant/sensor/p2pgrid_gw-a/price/config", false},
	{"operator", "homeassistant/sensor/p2pgrid_gw-a/price/config", false},
}

// TestACLCasesCoverEveryKind: for every kind of topic the protocol has,
// aclCases say who may publish there and who may not, so the shipped
// file, Mosquitto, CanPublish and the embedded broker agree on all of
// them: a gateway on its own topic (yes) and on another's (no) for the
// kinds gateways publish; a gateway (no) and the clearer (yes) for the
// kinds clearers publish.
func TestACLCasesCoverEveryKind(t *testing.T) {
	gatewayKinds := []string{protocol.KindOrders, protocol.KindTelemetry, protocol.KindStatus, protocol.KindMetered}
	clearerKinds := []string{protocol.KindBook, protocol.KindResult, protocol.KindSettlement, protocol.KindRoster}
	has := func(user, kind string, own, allowed bool) bool {
		for _, c := range aclCases {
			l := strings.Split(c.topic, "/")
			if len(l) < 4 || l[0] != "p2pgrid" || l[1] != "v1" || l[3] != kind || c.user != user || c.allowed != allowed {
				continue
			}
			if len(l) == 5 && (l[4] == user) == own || len(l) == 4 && kind == protocol.KindRoster {
				return true
			}
		}
		return false
	}
	for _, k := range gatewayKinds {
		if !has("gw-a", k, true, true) || !has("gw-a", k, false, false) {
			t.Errorf("aclCases lack %s: gw-a on its own (allowed) and on another's (denied)", k)
		}
	}
	for _, k := range clearerKinds {
		if !has("gw-a", k, false, false) || !has("operator", k, false, true) {
			t.Errorf("aclCases lack %s: gw-a (denied) and the clearer (allowed)", k)
		}
	}
}

var aclPasswords = map[string]string{"gw-a": "pw-a", "operator": "pw-op", "gw-b": "pw-b"}

func TestCanPublish(t *testing.T) {
	clearers := []string{"operator"}
	for _, c := range aclCases {
		if got := broker.CanPublish(c.user, c.topic, clearers); got != c.allowed {
			t.Errorf("CanPublish(%q, %q) = %v, want %v", c.user, c.topic, got, c.allowed)
		}
	}
	for _, user := range []string{"", "gw/a", "gw+", "gw#"} {
		if broker.CanPublish(user, "p2pgrid/v1/c1/orders/"+user, clearers) {
			t.Errorf("CanPublish(%q) allowed a username Mosquitto never matches", user)
		}
	}
	if broker.CanPublish("gw-a", "p2pgrid/v1/c1/result/1", nil) || !broker.CanPublish("gw-a", "p2pgrid/v1/c1/result/1", []string{"x", "gw-a"}) {
		t.Error("clearer rights do not follow the Clearers list")
	}
	for _, c := range aclReadCases {
		if got := broker.CanRead(c.user, c.topic, clearers); got != c.readable {
			t.Errorf("CanRead(%q, %q) = %v, want %v", c.user, c.topic, got, c.readable)
		}
	}
	for _, user := range []string{"", "gw+", "gw#"} {
		if broker.CanRead(user, "p2pgrid/v1/c1/status/"+user, clearers) {
			t.Errorf("CanRead(%q) allowed a username Mosquitto never matches", user)
		}
	}
}

func TestEmbeddedACLMatchesTable(t *testing.T) {
	b, err := broker.StartWith(broker.Options{Addr: ":0", ACL: true, Clearers: []string{"operator"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() }) // after the clients'
	checkACL(t, b.URL())

	// A subscription outside the tree, to a literal topic, is refused.
	c := connectAs(t, b.URL(), "gw-b")
	if err := c.Subscribe("other/topic", func(string, []byte) {}); !errors.Is(err, mqtt.ErrRefused) {
		t.Errorf("subscribing to other/topic: %v, want ErrRefused", err)
	}
	// Denied publishes are acknowledged and dropped: the publisher is not
	// thrown out (mochi's own answer), so paho does not re-send forever.
	if err := c.Publish(context.Background(), "p2pgrid/v1/c1/orders/gw-a", []byte("forged"), false); err != nil {
		t.Errorf("denied publish: %v, want it acknowledged", err)
	}
	if s := c.Stats(); s.ConnectionLost != 0 || !c.Connected() {
		t.Errorf("gw-b lost its connection after a denied publish: %+v", s)
	}
}

func TestMosquittoACLMatchesTable(t *testing.T) {
	testtool.Integration(t)
	testtool.Require(t, "mosquitto", "apt-get install mosquitto mosquitto-clients")
	m := mqtttest.Start(t, mqtttest.Config{ACLFile: mqtttest.ShippedACL(t), Users: aclPasswords})
	checkACL(t, m.URL)
}

func connectAs(t *testing.T, url, user string) *mqtt.Client {
	t.Helper()
	return connectAsID(t, url, user, user)
}

// connectAsID logs in as user with another client id: a second connection
// of the same login.
func connectAsID(t *testing.T, url, user, clientID string) *mqtt.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := mqtt.Connect(ctx, mqtt.Options{
		Broker: url, ClientID: clientID, Username: user, Password: aclPasswords[user],
		ConnectTimeout: 3 * time.Second, MaxReconnectInterval: 200 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// checkACL publishes every case (retained), then a control per publisher,
// and checks what the operator, subscribed to everything, receives live
// (what was allowed and it may read), and what each reader finds retained
// later (what was allowed and that reader may read).
func checkACL(t *testing.T, url string) {
	t.Helper()
	var mu sync.Mutex
	live := map[string]bool{}
	got := make(chan struct{}, 1)
	observer := connectAsID(t, url, "operator", "operator-observer")
	if err := observer.Subscribe("#", func(topic string, _ []byte) {
		mu.Lock()
		live[topic] = true
		mu.Unlock()
		select {
		case got <- struct{}{}:
		default:
		}
	}); err != nil {
		t.Fatal(err)
	}

	pubs := map[string]*mqtt.Client{"gw-a": connectAs(t, url, "gw-a"), "operator": connectAs(t, url, "operator")}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var want []string
	for i, c := range aclCases {
		// A denied publish is acknowledged all the same (MQTT 3.1.1).
		if err := pubs[c.user].Publish(ctx, c.topic, []byte(fmt.Sprint("case ", i)), true); err != nil {
			t.Fatalf("%s publishing to %s: %v", c.user, c.topic, err)
		}
		if c.allowed {
			want = append(want, c.topic)
		}
	}
	controls := []string{"p2pgrid/v1/c9/status/gw-a", "p2pgrid/v1/c9/status/operator"}
	for user, c := range pubs {
		if err := c.Publish(ctx, "p2pgrid/v1/c9/status/"+user, []byte("control"), true); err != nil {
			t.Fatal(err)
		}
	}
	want = append(want, controls...)
	sort.Strings(want)
	readable := func(user string) []string {
		var ts []string
		for _, topic := range want {
			if broker.CanRead(user, topic, []string{"operator"}) {
				ts = append(ts, topic)
			}
		}
		return ts
	}

	topics := func() []string {
		mu.Lock()
		defer mu.Unlock()
		var ts []string
		for topic := range live {
			ts = append(ts, topic)
		}
		sort.Strings(ts)
		return ts
	}
	for !(slices.Contains(topics(), controls[0]) && slices.Contains(topics(), controls[1])) {
		select {
		case <-got:
		case <-ctx.Done():
			t.Fatalf("the controls did not arrive; got %v", topics())
		}
	}
	time.Sleep(300 * time.Millisecond) // a denied message, had it come, would have come before its control
	if ts, want := topics(), readable("operator"); !slices.Equal(ts, want) {
		t.Errorf("delivered live to the operator:\n%v\nwant (the allowed cases and the controls it may read):\n%v", ts, want)
	}
	for _, user := range []string{"operator", "gw-a", "gw-b"} {
		checkRetained(t, url, user, readable(user))
	}
}

// checkRetained subscribes to everything as user, on a new connection, and
// checks that the retained messages that come are those of want.
func checkRetained(t *testing.T, url, user string, want []string) {
	t.Helper()
	var rmu sync.Mutex
	var retained []string
	late := connectAsID(t, url, user, user+"-late")
	if err := late.Subscribe("#", func(topic string, _ []byte) {
		rmu.Lock()
		retained = append(retained, topic)
		rmu.Unlock()
	}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		rmu.Lock()
		n := len(retained)
		rmu.Unlock()
		if n >= len(want) || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond)
	rmu.Lock()
	defer rmu.Unlock()
	sort.Strings(retained)
	retained = slices.Compact(retained) // QoS 1 may repeat one
	if !slices.Equal(retained, want) {
		t.Errorf("retained for %s:\n%v\nwant:\n%v", user, retained, want)
	}
}
