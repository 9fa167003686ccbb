package gateway

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/p2pgrid/p2pgrid/auction"
	"github.com/p2pgrid/p2pgrid/gateway/broker"
	"github.com/p2pgrid/p2pgrid/gateway/clearing"
	"github.com/p2pgrid/p2pgrid/gateway/config"
	"github.com/p2pgrid/p2pgrid/gateway/mqtt"
	"github.com/p2pgrid/p2pgrid/gateway/mqtt/mqtttest"
	"github.com/p2pgrid/p2pgrid/gateway/protocol"
	"github.com/p2pgrid/p2pgrid/internal/testtool"
	"github.com/p2pgrid/p2pgrid/market"
	"github.com/p2pgrid/p2pgrid/settlement"
	"github.com/p2pgrid/p2pgrid/settlement/record"
)

// The community of the integration tests: an operator (primary clearer),
// home1 (a seller, and the standby clearer), home2 and home3 (buyers).
var (
	itGateways = []string{"operator", "home1", "home2", "home3"}
	itExport   = map[string]int64{"home1": 4000, "home2": -2000, "home3": -1500}
	itRoles    = map[string]config.ClearerRole{"operator": config.ClearerPrimary, "home1": config.ClearerStandby}
)

// harness runs real gateways over a real broker on a hand-moved clock.
type harness struct {
	t         *testing.T
	brokerURL string
	roster    *protocol.Roster

	mu       sync.Mutex
	clock    time.Time
	gws      map[string]*Gateway
	clients  map[string]*mqtt.Client
	homes    map[string]*home
	ledgers  map[string]*memLedger
	verified map[string]map[string]error // interval -> gateway -> result
	tune     []func(id string, o *mqtt.Options)
}

// newHarness starts the community on brokerURL; each tune, if any, adjusts
// a gateway's MQTT options (TLS, credentials) before it connects.
func newHarness(t *testing.T, brokerURL string, tune ...func(id string, o *mqtt.Options)) *harness {
	h := &harness{t: t, brokerURL: brokerURL, tune: tune, clock: t0, gws: map[string]*Gateway{}, clients: map[string]*mqtt.Client{},
		homes: map[string]*home{}, ledgers: map[string]*memLedger{}, verified: map[string]map[string]error{}}
	var members []protocol.Member
	for _, id := range itGateways {
		_, clearer := itRoles[id]
		members = append(members, protocol.Member{ID: id, PublicKey: testKey(id).Public().(ed25519.PublicKey), Clearer: clearer})
	}
	var err error
	if h.roster, err = protocol.NewRoster("c1", members); err != nil {
		t.Fatal(err)
	}
	for id, w := range itExport {
		h.homes[id] = &home{exportW: w, clock: &h.clock, impWh: 1_000_000, expWh: 500_000}
	}
	for _, id := range itGateways {
		h.start(id)
	}
	return h
}

func (h *harness) now() time.Time {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.clock
}

// start connects gateway id to the broker (as MQTT user id) and starts it.
func (h *harness) start(id string) {
	t := h.t
	topics, _ := protocol.NewTopics("c1")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	online, err := (&protocol.Status{Gateway: id, State: protocol.StateOnline, Version: "test", Time: t0}).Encode()
	if err != nil {
		t.Fatal(err)
	}
	offline, _ := (&protocol.Status{Gateway: id, State: protocol.StateOffline, Version: "test", Time: t0}).Encode()
	o := mqtt.Options{Broker: h.brokerURL, ClientID: "it-" + id, Username: id, Password: "pw-" + id,
		WillTopic: topics.Status(id), WillPayload: offline, OnlineTopic: topics.Status(id), OnlinePayload: online,
		MaxReconnectInterval: time.Second}
	for _, f := range h.tune {
		f(id, &o)
	}
	c, err := mqtt.Connect(ctx, o)
	if err != nil {
		t.Fatalf("%s: %v", id, err)
	}
	var devs []Device
	if hm := h.homes[id]; hm != nil {
		devs = []Device{{Name: "grid", Role: config.RoleGrid, Poll: 5 * time.Second, Reader: hm}}
	}
	led := &memLedger{}
	g, err := New(Options{SyncPolls: true, Config: testConfig(id, itRoles[id]), Key: testKey(id), Roster: h.roster, MQTT: c, Devices: devs,
		Ledger: led, Now: h.now, Observer: ObserverFuncs{OnVerified: func(gw, interval string, v *clearing.Verdict, err error) {
			h.mu.Lock()
			defer h.mu.Unlock()
			if h.verified[interval] == nil {
				h.verified[interval] = map[string]error{}
			}
			h.verified[interval][gw] = err
		}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Start(); err != nil {
		t.Fatal(err)
	}
	h.mu.Lock()
	h.gws[id], h.clients[id], h.ledgers[id] = g, c, led
	h.mu.Unlock()
	t.Cleanup(c.Close)
}

// stop closes gateway id's connection and forgets it: the process is gone.
func (h *harness) stop(id string) {
	h.mu.Lock()
	c := h.clients[id]
	delete(h.gws, id)
	delete(h.clients, id)
	h.mu.Unlock()
	c.Close()
}

// advance moves the clock to until in 5 s steps, ticking every gateway.
func (h *harness) advance(until time.Time) {
	for h.now().Before(until) {
		h.mu.Lock()
		h.clock = h.clock.Add(5 * time.Second)
		now := h.clock
		gws := make([]*Gateway, 0, len(h.gws))
		for _, g := range h.gws {
			gws = append(gws, g)
		}
		h.mu.Unlock()
		for _, g := range gws {
			g.Tick(context.Background(), now)
		}
		h.awaitMetered(now)
	}
}

// awaitMetered: just after an interval ends, the gateways publish what
// their meters counted; a real clearer has two minutes to receive it, this
// hand-moved clock waits for the messages before moving on.
func (h *harness) awaitMetered(now time.Time) {
	start := market.IntervalStart(now, 15*time.Minute)
	if now.Sub(start) != 10*time.Second || !start.After(t0) {
		return
	}
	interval := market.IntervalID(start.Add(-15 * time.Minute))
	var clearers []*Gateway
	homes := 0
	h.mu.Lock()
	for id, g := range h.gws {
		// A clearer cut off from every broker receives nothing meanwhile
		// (the failover test holds one off on purpose).
		if g.clearer != nil && h.clients[id].Connected() {
			clearers = append(clearers, g)
		}
		if _, ok := itExport[id]; ok && g.startedAt.Before(start.Add(-15*time.Minute)) {
			homes++
		}
	}
	h.mu.Unlock()
	for _, c := range clearers {
		h.waitFor(c.id+" to receive the metered figures of "+interval, func() bool {
			return len(c.collector.Figures(interval)) >= homes
		})
	}
}

// waitFor polls cond until it holds, failing the test after 20 s.
func (h *harness) waitFor(what string, cond func() bool) {
	h.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			h.t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (h *harness) verifiedBy(interval string) map[string]error {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := map[string]error{}
	for k, v := range h.verified[interval] {
		out[k] = v
	}
	return out
}

func (h *harness) gw(id string) *Gateway {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.gws[id]
}

// trade runs one interval: orders placed half-way, collected by the
// clearer, sealed at gate closure, verified by every running gateway.
func (h *harness) trade(delivery time.Time, clearer string) string {
	h.t.Helper()
	interval := market.IntervalID(delivery)
	gate := delivery.Add(-2 * time.Minute)
	h.advance(gate.Add(-time.Minute))
	want := 0
	for id := range itExport {
		if h.gw(id) != nil {
			want++
		}
	}
	h.waitFor(fmt.Sprintf("%d orders for %s at %s", want, interval, clearer), func() bool {
		return h.gw(clearer).clearer.Orders(interval) == want
	})
	h.advance(gate.Add(5 * time.Second)) // the primary seals at gate closure
	h.waitFor("every gateway to verify "+interval, func() bool {
		v := h.verifiedBy(interval)
		h.mu.Lock()
		n := len(h.gws)
		h.mu.Unlock()
		return len(v) >= n
	})
	h.advance(gate.Add(40 * time.Second)) // past the standby's grace: it must stay quiet
	for id, err := range h.verifiedBy(interval) {
		if err != nil {
			h.t.Errorf("%s: %s: %v", interval, id, err)
		}
	}
	return interval
}

// subscriber is mosquitto_sub, the neighbour's app, printing every result.
type subscriber struct {
	mu  sync.Mutex
	out bytes.Buffer
}

func startSubscriber(t *testing.T, url, user string) *subscriber {
	bin := testtool.Require(t, "mosquitto_sub", "apt-get install mosquitto-clients")
	hostPort := strings.TrimPrefix(url, "tcp://")
	host, port, _ := strings.Cut(hostPort, ":")
	cmd := exec.Command(bin, "-h", host, "-p", port, "-u", user, "-P", "pw-"+user, "-i", "app-"+user,
		"-t", "p2pgrid/v1/c1/result/+", "-v", "-q", "1")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &subscriber{}
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			s.mu.Lock()
			s.out.WriteString(sc.Text() + "\n")
			s.mu.Unlock()
		}
	}()
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return s
}

func (s *subscriber) saw(topic string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Contains(s.out.String(), topic+" {")
}

func TestIntegrationEmbeddedBroker(t *testing.T) {
	testtool.Integration(t)
	b, err := broker.StartWith(broker.Options{Addr: "127.0.0.1:0", ACL: true, Clearers: []string{"operator", "home1"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	runCommunity(t, b.URL())
}

func TestIntegrationMosquitto(t *testing.T) {
	testtool.Integration(t)
	runCommunity(t, startCommunityMosquitto(t).URL)
}

// startCommunityMosquitto starts Mosquitto with the shipped ACL, plus
// home1 as a second clearer, and a login for every gateway and the app.
func startCommunityMosquitto(t *testing.T) *mqtttest.Mosquitto {
	acl, err := os.ReadFile(mqtttest.ShippedACL(t))
	if err != nil {
		t.Fatal(err)
	}
	// The shipped ACL names the operator as clearer; this community's
	// standby clearer is home1, added as the ACL's comments say to.
	acl = append(acl, "\n"+mqtttest.ClearerBlock(t, "home1")...)
	// home2's read-only app login, as configs/mosquitto/README.md shows:
	// its own home's status, and the market.
	acl = append(acl, "\n"+mqtttest.AppBlock(t, "c1", "home2", "home2-app")...)
	aclFile := filepath.Join(t.TempDir(), "acl")
	if err := os.WriteFile(aclFile, acl, 0o644); err != nil {
		t.Fatal(err)
	}
	users := map[string]string{"app": "pw-app", "home2-app": "pw-home2-app"}
	for _, id := range itGateways {
		users[id] = "pw-" + id
	}
	return mqtttest.Start(t, mqtttest.Config{ACLFile: aclFile, Users: users})
}

// runCommunity is the whole story against one broker: several intervals
// of trading seen by a neighbour's app, bad orders rejected and counted, a
// gateway restarted mid-interval, and the clearer killed after gate
// closure, replaced by the standby with an identical result.
func runCommunity(t *testing.T, url string) {
	app := startSubscriber(t, url, "app")
	h := newHarness(t, url)
	op := h.gw("operator")

	// Three intervals of trading.
	var intervals []string
	for k := 1; k <= 3; k++ {
		intervals = append(intervals, h.trade(t0.Add(time.Duration(k)*15*time.Minute), "operator"))
	}
	for _, iv := range intervals {
		h.waitFor("the app to see the result of "+iv, func() bool { return app.saw(op.topics.Result(iv)) })
	}
	// The first interval was delivered 12:15-12:30 and settled at 12:32:
	// every gateway's metered figures went through the broker (and its
	// ACL), and every gateway recorded the clearer's settlement.
	for _, id := range itGateways {
		h.waitFor(id+" to record the settlement of "+intervals[0], func() bool {
			return h.ledgers[id].find(record.KindInterval, intervals[0]) != nil
		})
	}
	s, err := settlement.DecodeIntervalSettlement(h.ledgers["home2"].find(record.KindInterval, intervals[0]))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range s.Participants {
		if p.MissingIntervals != 0 {
			t.Errorf("%s's metered figures did not reach the clearer", p.Participant)
		}
	}

	// Bad orders while 13:00 is open (clock at 12:45:40): each rejected with
	// its reason and counted by the clearer.
	ctx := context.Background()
	open := "2026-11-22T13:00Z"
	home2 := h.clients["home2"]
	forged, _ := protocol.SignOrder(testKey("mallory"), "c1", open, "home2", auction.Buy, 100, 250_000, op.market)
	home1Old := h.gw("home1").OwnOrder(intervals[2])
	oversize := append([]byte(`{"pad":"`), bytes.Repeat([]byte("x"), protocol.MaxOrderSize)...)
	future, _ := protocol.SignOrder(testKey("home2"), "c1", "2026-11-22T14:00Z", "home2", auction.Buy, 100, 250_000, op.market)
	publish := func(c *mqtt.Client, gw string, payload []byte) {
		if err := c.Publish(ctx, op.topics.Orders(gw), payload, false); err != nil {
			t.Fatal(err)
		}
	}
	publish(home2, "home2", forged)
	publish(h.clients["home1"], "home1", home1Old) // a replay of last interval's order
	publish(home2, "home2", oversize)
	publish(home2, "home2", future)
	publish(home2, "home2", []byte("not json"))
	rejected := func(reason protocol.RejectReason) float64 {
		return testutil.ToFloat64(op.metrics.ordersRejected.WithLabelValues(string(reason)))
	}
	h.waitFor("the clearer to reject the bad orders", func() bool {
		return rejected(protocol.RejectForged) == 1 && rejected(protocol.RejectLate) == 1 &&
			rejected(protocol.RejectOversize) == 1 && rejected(protocol.RejectWrongInterval) == 1 &&
			rejected(protocol.RejectMalformed) == 1
	})

	// home3 restarts mid-interval: the new process has no state; it rejoins
	// through its persistent session and the retained messages, and trades.
	h.advance(t0.Add(50 * time.Minute))
	h.stop("home3")
	h.start("home3")
	// A replay: home2's order for 13:00, sent again while the gate is open.
	h.advance(t0.Add(56 * time.Minute))
	again := h.gw("home2").OwnOrder(open)
	if again == nil {
		t.Fatal("home2 placed no order for 13:00")
	}
	publish(home2, "home2", again)
	h.waitFor("the replayed order to be counted", func() bool { return rejected(protocol.RejectReplayed) == 1 })
	iv := h.trade(t0.Add(60*time.Minute), "operator")
	if h.gw("home3").OwnOrder(iv) == nil {
		t.Fatalf("restarted home3 placed no order for %s", iv)
	}
	if _, ok := h.verifiedBy(iv)["home3"]; !ok {
		t.Errorf("restarted home3 did not verify %s", iv)
	}

	// The clearer dies right after gate closure of 13:15: the standby
	// clears after its grace period, with the same result the operator
	// would have published.
	next := t0.Add(75 * time.Minute)
	interval := market.IntervalID(next)
	gate := next.Add(-2 * time.Minute)
	h.advance(gate.Add(-time.Minute))
	h.waitFor("orders for "+interval, func() bool { return op.clearer.Orders(interval) == 3 })
	h.stop("operator") // killed: it never seals
	h.advance(gate.Add(40 * time.Second))
	h.waitFor("every gateway to verify the standby's "+interval, func() bool { return len(h.verifiedBy(interval)) >= 3 })
	for id, err := range h.verifiedBy(interval) {
		if err != nil {
			t.Errorf("%s: %v", id, err)
		}
	}
	h.waitFor("the app to see the standby's result", func() bool { return app.saw(op.topics.Result(interval)) })
	primary, err := op.clearer.Seal(interval)
	if err != nil {
		t.Fatal(err)
	}
	app.mu.Lock()
	seen := app.out.String()
	app.mu.Unlock()
	var standby *protocol.ResultMsg
	for _, line := range strings.Split(seen, "\n") {
		if topic, payload, ok := strings.Cut(line, " "); ok && topic == op.topics.Result(interval) {
			if standby, err = protocol.DecodeResult([]byte(payload)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if standby == nil || standby.Clearer != "home1" {
		t.Fatalf("standby result %+v", standby)
	}
	want := mustResult(t, primary.Result).Result
	if !bytes.Equal(standby.Result, want) {
		t.Errorf("standby cleared\n%s\nthe operator would have cleared\n%s", standby.Result, want)
	}
}
