package mqtt_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eclipse/paho.mqtt.golang/packets"
	"github.com/p2pgrid/p2pgrid/gateway/broker"
	"github.com/p2pgrid/p2pgrid/gateway/mqtt"
	"github.com/p2pgrid/p2pgrid/gateway/mqtt/mqtttest"
)

// The gateway core declares this interface for itself; *Client must fit.
var _ interface {
	Publish(ctx context.Context, topic string, payload []byte, retained bool) error
	Subscribe(topic string, h func(topic string, payload []byte)) error
} = (*mqtt.Client)(nil)

const (
	ordersA = "p2pgrid/v1/c1/orders/gw-a"
	statusA = "p2pgrid/v1/c1/status/gw-a"
)

func TestPublishSubscribeQoS1InOrder(t *testing.T) {
	b := startBroker(t, ":0")
	sub := connect(t, options(b.URL(), "gw-b"))
	pub := connect(t, options(b.URL(), "gw-a"))
	in := subscribe(t, sub, "p2pgrid/v1/c1/orders/+")

	const n = 50
	var want []msg
	for i := range n {
		m := msg{ordersA, fmt.Sprintf("order %d", i)}
		want = append(want, m)
		publish(t, pub, m.topic, m.payload, false)
	}
	in.waitFor(t, wait, "all orders", func(ms []msg) bool { return len(ms) >= n })
	if got := in.all(); !slices.Equal(got, want) {
		t.Errorf("got %v\nwant %v (all, once, in order)", got, want)
	}
	if s := pub.Stats(); s.Published != n || s.Connects != 1 || s.Reconnects != 0 {
		t.Errorf("publisher stats %+v, want Published %d, Connects 1, Reconnects 0", s, n)
	}
	if s := sub.Stats(); s.Received != n {
		t.Errorf("subscriber stats %+v, want Received %d", s, n)
	}
	if !sub.Connected() {
		t.Error("Connected() = false for a connected client")
	}
}

func TestRetainedReachesLateSubscriber(t *testing.T) {
	b := startBroker(t, ":0")
	clearer := connect(t, options(b.URL(), "operator"))
	publish(t, clearer, "p2pgrid/v1/c1/result/latest", "r-old", true)
	publish(t, clearer, "p2pgrid/v1/c1/result/latest", "r-new", true)
	// A PUBACK does not mean the broker has finished handing the message
	// out: an early subscriber that has received it shows that it has.
	early := connect(t, options(b.URL(), "gw-early"))
	earlyIn := subscribe(t, early, "p2pgrid/v1/c1/result/1")
	publish(t, clearer, "p2pgrid/v1/c1/result/1", "not retained", false)
	earlyIn.waitForMsg(t, msg{"p2pgrid/v1/c1/result/1", "not retained"})

	late := connect(t, options(b.URL(), "gw-late"))
	in := subscribe(t, late, "p2pgrid/v1/c1/result/+")
	in.waitForMsg(t, msg{"p2pgrid/v1/c1/result/latest", "r-new"})
	// A positive control after the retained message: once it is here, the
	// broker has had its chance to (wrongly) send the older messages.
	publish(t, clearer, "p2pgrid/v1/c1/result/2", "control", false)
	in.waitForMsg(t, msg{"p2pgrid/v1/c1/result/2", "control"})
	want := []msg{{"p2pgrid/v1/c1/result/latest", "r-new"}, {"p2pgrid/v1/c1/result/2", "control"}}
	if got := in.all(); !slices.Equal(got, want) {
		t.Errorf("late subscriber got %v, want %v", got, want)
	}
}

func TestOnlineOnConnectOfflineOnClose(t *testing.T) {
	b := startBroker(t, ":0")
	observer := connect(t, options(b.URL(), "observer"))
	status := subscribe(t, observer, "p2pgrid/v1/c1/status/+")

	gw := connect(t, withStatus(options(b.URL(), "gw-a"), statusA))
	status.waitForMsg(t, msg{statusA, "online"})
	gw.Close()
	status.waitForMsg(t, msg{statusA, "offline"})
	if gw.Connected() {
		t.Error("Connected() = true after Close")
	}
	if err := gw.Publish(context.Background(), ordersA, []byte("x"), false); !errors.Is(err, mqtt.ErrClosed) {
		t.Errorf("Publish after Close: %v, want ErrClosed", err)
	}
	if err := gw.Subscribe("x/y", func(string, []byte) {}); !errors.Is(err, mqtt.ErrClosed) {
		t.Errorf("Subscribe after Close: %v, want ErrClosed", err)
	}
	gw.Close() // idempotent

	// The offline status is retained: a newcomer learns it at once.
	late := connect(t, options(b.URL(), "late"))
	lateStatus := subscribe(t, late, statusA)
	lateStatus.waitForMsg(t, msg{statusA, "offline"})
	// (The observer may see "online" twice: the broker acknowledges a
	// publish before it hands it out, so a subscription made in between
	// gets it retained and live.)
	if got := slices.Compact(status.all()); !slices.Equal(got, []msg{{statusA, "online"}, {statusA, "offline"}}) {
		t.Errorf("observer saw %v, want online then offline", got)
	}
}

func TestWillOnKilledConnectionThenOnlineAgain(t *testing.T) {
	b := startBroker(t, ":0")
	link := mqtttest.NewProxy(t, strings.TrimPrefix(b.URL(), "tcp://"))
	observer := connect(t, options(b.URL(), "observer"))
	status := subscribe(t, observer, statusA)

	gw := connect(t, withStatus(options(link.URL(), "gw-a"), statusA))
	status.waitForMsg(t, msg{statusA, "online"})

	// The link dies and stays down: the broker sees the connection die
	// without a DISCONNECT and publishes the will.
	link.Refuse(true)
	link.Cut()
	status.waitForMsg(t, msg{statusA, "offline"})
	eventually(t, wait, "Connected() = false while the link is down", func() bool { return !gw.Connected() })
	link.Refuse(false)
	// QoS 1 may deliver a message twice (a session's queue re-sent after
	// the reconnect, paho re-sending what it published at the reconnect):
	// compare without repeats.
	wantSeq := []msg{{statusA, "online"}, {statusA, "offline"}, {statusA, "online"}}
	status.waitFor(t, wait, "online after the link is back", func(ms []msg) bool { return len(slices.Compact(ms)) >= 3 })
	if got := slices.Compact(status.all()); !slices.Equal(got, wantSeq) {
		t.Fatalf("status sequence %v, want %v", got, wantSeq)
	}
	eventually(t, wait, "Connected() after the reconnect", gw.Connected)
	s := gw.Stats()
	if s.ConnectionLost != 1 || s.Reconnects != 1 || s.Connects != 2 {
		t.Errorf("stats %+v, want ConnectionLost 1, Reconnects 1, Connects 2", s)
	}
	// What a newcomer reads is the truth: online.
	late := connect(t, options(b.URL(), "late"))
	lateStatus := subscribe(t, late, statusA)
	lateStatus.waitForMsg(t, msg{statusA, "online"})
	// And it works again.
	in := subscribe(t, observer, ordersA)
	publish(t, gw, ordersA, "after the cut", false)
	in.waitForMsg(t, msg{ordersA, "after the cut"})
}

// TestLateWillIsOverruled: when a gateway reconnects before the broker has
// noticed that its old connection died, the broker publishes the old
// connection's will as it takes the session over, possibly after the new
// connection's "online" (mochi does; a quick cut-and-reconnect shows it
// now and then). The client must have the last word.
func TestLateWillIsOverruled(t *testing.T) {
	b := startBroker(t, ":0")
	gw := connect(t, withStatus(options(b.URL(), "gw-a"), statusA))
	observer := connect(t, options(b.URL(), "observer"))
	status := subscribe(t, observer, statusA)
	status.waitForMsg(t, msg{statusA, "online"}) // retained
	// What the broker would do with the late will:
	publish(t, observer, statusA, "offline", true)
	status.waitForMsg(t, msg{statusA, "offline"})
	// The gateway publishes "online" again, so the broker retains it over
	// the late will. (What the observer sees live does not tell: the
	// embedded broker acknowledges a publish before it delivers it, so
	// the gateway's "online" may reach the observer before the observer's
	// own "offline". A client subscribing now gets what is retained.)
	n := 0
	eventually(t, wait, "the broker to retain online again after the late will", func() bool {
		n++
		late := connect(t, options(b.URL(), fmt.Sprintf("late-%d", n)))
		defer late.Close()
		lateStatus := subscribe(t, late, statusA)
		lateStatus.waitFor(t, wait, "the retained status", func(ms []msg) bool { return len(ms) > 0 })
		return lateStatus.all()[0] == msg{statusA, "online"}
	})
	if s := gw.Stats(); s.Reconnects != 0 {
		t.Errorf("stats %+v: the gateway never lost its connection", s)
	}
}

func TestResubscribesAfterBrokerRestart(t *testing.T) {
	b := startBroker(t, ":0")
	addr := strings.TrimPrefix(b.URL(), "tcp://")
	gw := connect(t, options(b.URL(), "gw-a"))
	in := subscribe(t, gw, "p2pgrid/v1/c1/result/+")

	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	eventually(t, wait, "the client to notice the broker is gone", func() bool { return !gw.Connected() })
	// Same port, empty broker: no session, no subscriptions.
	b2 := startBroker(t, addr)
	eventually(t, wait, "the client to reconnect", gw.Connected)

	clearer := connect(t, options(b2.URL(), "operator"))
	// The re-subscription may land a moment after the reconnect: publish
	// probes until one arrives.
	deadline := time.Now().Add(wait)
	for i := 0; ; i++ {
		m := msg{"p2pgrid/v1/c1/result/7", fmt.Sprintf("probe %d", i)}
		publish(t, clearer, m.topic, m.payload, false)
		if in.has(m) {
			break
		}
		select {
		case <-in.changed:
		case <-time.After(50 * time.Millisecond):
		}
		if in.has(m) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no message after the broker restart in %v: the client did not re-subscribe", wait)
		}
	}
	if s := gw.Stats(); s.Reconnects < 1 || s.ConnectionLost < 1 {
		t.Errorf("stats %+v, want a lost connection and a reconnect", s)
	}
	// Messages still flow both ways from the same Client.
	publish(t, gw, "p2pgrid/v1/c1/result/8", "from the resubscribed client", false)
	in.waitForMsg(t, msg{"p2pgrid/v1/c1/result/8", "from the resubscribed client"})
}

func TestPersistentSessionDeliversWhatWasMissed(t *testing.T) {
	b := startBroker(t, ":0")
	away := connect(t, options(b.URL(), "gw-b"))
	subscribe(t, away, "p2pgrid/v1/c1/orders/+")
	away.Close() // clean disconnect; the session (and its subscription) stays

	pub := connect(t, options(b.URL(), "gw-a"))
	observer := connect(t, options(b.URL(), "observer"))
	barrier := subscribe(t, observer, "t/barrier")
	for i := range 3 {
		publish(t, pub, ordersA, fmt.Sprintf("missed %d", i), false)
	}
	// Mochi acknowledges a publish before it hands it out, and it handles
	// one client's publishes in turn: once the observer has the barrier,
	// the orders are in gw-b's session. (Otherwise the last one may be
	// handed to the session as it is being taken over, and lost.)
	publish(t, pub, "t/barrier", "after the orders", false)
	barrier.waitForMsg(t, msg{"t/barrier", "after the orders"})

	// Back again: the broker sends the queued messages right after CONNACK,
	// before the gateway can Subscribe; the client holds them for it.
	back := connect(t, options(b.URL(), "gw-b"))
	in := subscribe(t, back, "p2pgrid/v1/c1/orders/+")
	in.waitFor(t, wait, "the 3 missed orders", func(ms []msg) bool { return len(ms) >= 3 })
	// Mochi re-sends a session's queue sorted by creation second only, so
	// within a second in any order.
	want := []msg{{ordersA, "missed 0"}, {ordersA, "missed 1"}, {ordersA, "missed 2"}}
	got := in.all()
	slices.SortFunc(got, func(a, b msg) int { return strings.Compare(a.payload, b.payload) })
	if !slices.Equal(got, want) {
		t.Errorf("got %v, want %v, each once", got, want)
	}
}

// TestHandlerMayPublishAndBlock is the guard against paho's deadlock: with
// paho's ordered router, a handler that publishes and waits for the PUBACK
// blocks the goroutine that would read that PUBACK.
func TestHandlerMayPublishAndBlock(t *testing.T) {
	b := startBroker(t, ":0")
	c := connect(t, options(b.URL(), "gw-a"))
	pongs := subscribe(t, c, "t/pong")
	var handlerErr atomic.Value
	err := c.Subscribe("t/ping", func(_ string, payload []byte) {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		if err := c.Publish(ctx, "t/pong", payload, false); err != nil {
			handlerErr.Store(err)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	slow := newInbox()
	if err := c.Subscribe("t/slow", func(topic string, payload []byte) {
		<-release
		slow.handle(topic, payload)
	}); err != nil {
		t.Fatal(err)
	}
	defer close(release)

	// Jam one handler first: nothing else may wait for it.
	for i := range 5 {
		publish(t, c, "t/slow", fmt.Sprint(i), false)
	}
	const n = 30
	for i := range n {
		publish(t, c, "t/ping", fmt.Sprint(i), false)
	}
	pongs.waitFor(t, wait, "a pong for every ping", func(ms []msg) bool { return len(ms) >= n })
	if err, _ := handlerErr.Load().(error); err != nil {
		t.Fatalf("Publish inside a handler: %v", err)
	}
	if got := slow.all(); len(got) != 0 {
		t.Fatalf("the blocked handler ran: %v", got)
	}
	release <- struct{}{} // let the slow handler take one message
	slow.waitForMsg(t, msg{"t/slow", "0"})
}

func TestHandlerPanicIsRecovered(t *testing.T) {
	b := startBroker(t, ":0")
	c := connect(t, options(b.URL(), "gw-a"))
	in := newInbox()
	if err := c.Subscribe("t/p", func(topic string, payload []byte) {
		if string(payload) == "boom" {
			panic("handler bug")
		}
		in.handle(topic, payload)
	}); err != nil {
		t.Fatal(err)
	}
	publish(t, c, "t/p", "boom", false)
	publish(t, c, "t/p", "fine", false)
	in.waitForMsg(t, msg{"t/p", "fine"})
	if s := c.Stats(); s.HandlerPanics != 1 {
		t.Errorf("HandlerPanics = %d, want 1", s.HandlerPanics)
	}
}

func TestSubscribeAndPublishRejectBadInput(t *testing.T) {
	b := startBroker(t, ":0")
	c := connect(t, options(b.URL(), "gw-a"))
	noop := func(string, []byte) {}
	if err := c.Subscribe("p2pgrid/v1/#", noop); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		filter string
		h      func(string, []byte)
		want   string
	}{
		{"p2pgrid/v1/#", noop, "already subscribed"},
		{"", noop, "empty topic"},
		{"a/#/b", noop, "'#' must be the last level"},
		{"a/b+", noop, "'+' must be a whole level"},
		{"$share/g/a", noop, "shared subscriptions"},
		{"a/b", nil, "nil handler"},
	} {
		err := c.Subscribe(tc.filter, tc.h)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), b.URL()) {
			t.Errorf("Subscribe(%q): %v, want an error naming the broker and saying %q", tc.filter, err, tc.want)
		}
	}
	for _, topic := range []string{"", "a/+/b", "a/#", "a\x00b"} {
		err := c.Publish(context.Background(), topic, nil, false)
		if err == nil || !strings.Contains(err.Error(), b.URL()) {
			t.Errorf("Publish(%q): %v, want an error naming the broker", topic, err)
		}
	}
	// Still connected: bad input never reached the broker.
	if !c.Connected() || c.Stats().ConnectionLost != 0 {
		t.Errorf("connection disturbed by bad input: %+v", c.Stats())
	}
}

func TestPublishHonoursContext(t *testing.T) {
	b := startBroker(t, ":0")
	c := connect(t, options(b.URL(), "gw-a"))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	// The answer may race the cancelled context; either is fine, a hang is not.
	err := c.Publish(ctx, ordersA, []byte("x"), false)
	if err != nil && !errors.Is(err, context.Canceled) {
		t.Errorf("Publish with a cancelled context: %v", err)
	}
}

func TestConnectErrors(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "not.pem")
	if err := os.WriteFile(notPEM, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		o    mqtt.Options
		want []string
	}{
		{"no broker", mqtt.Options{ClientID: "gw"}, []string{"mqtt broker: empty"}},
		{"bad scheme", mqtt.Options{Broker: "http://127.0.0.1:1883", ClientID: "gw"}, []string{"http://127.0.0.1:1883", "want a tcp://"}},
		{"no port", mqtt.Options{Broker: "tcp://127.0.0.1", ClientID: "gw"}, []string{"tcp://127.0.0.1", "no port"}},
		{"no client id", mqtt.Options{Broker: "tcp://127.0.0.1:1883"}, []string{"tcp://127.0.0.1:1883", "ClientID is empty"}},
		{"credentials refused, not shown", mqtt.Options{Broker: "tcp://u:secret@127.0.0.1:1883", ClientID: "gw"}, []string{"credentials in the URL"}},
		{"TLS files on tcp", mqtt.Options{Broker: "tcp://127.0.0.1:1883", ClientID: "gw", CAFile: notPEM}, []string{"tcp://127.0.0.1:1883", "not TLS"}},
		{"missing CA", mqtt.Options{Broker: "mqtts://127.0.0.1:8883", ClientID: "gw", CAFile: filepath.Join(dir, "nope.pem")}, []string{"mqtts://127.0.0.1:8883", "CA file", "nope.pem"}},
		{"CA not PEM", mqtt.Options{Broker: "ssl://127.0.0.1:8883", ClientID: "gw", CAFile: notPEM}, []string{"CA file", "not.pem", "no PEM certificate"}},
		{"cert without key", mqtt.Options{Broker: "ssl://127.0.0.1:8883", ClientID: "gw", CertFile: notPEM}, []string{"cert file", "not.pem", "without a KeyFile"}},
		{"missing key", mqtt.Options{Broker: "ssl://127.0.0.1:8883", ClientID: "gw", CertFile: notPEM, KeyFile: filepath.Join(dir, "key.pem")}, []string{"key file", "key.pem"}},
		{"bad cert", mqtt.Options{Broker: "ssl://127.0.0.1:8883", ClientID: "gw", CertFile: notPEM, KeyFile: notPEM}, []string{"cert file", "not.pem"}},
		{"wildcard will", mqtt.Options{Broker: "tcp://127.0.0.1:1883", ClientID: "gw", WillTopic: "a/#"}, []string{"WillTopic", "wildcards"}},
		{"broker and brokers", mqtt.Options{Broker: "tcp://127.0.0.1:1883", Brokers: []string{"tcp://127.0.0.1:1884"}, ClientID: "gw"}, []string{"both Broker and Brokers"}},
		{"brokers, one bad", mqtt.Options{Brokers: []string{"tcp://127.0.0.1:1883", "tcp://127.0.0.1"}, ClientID: "gw"}, []string{"brokers[1]", "no port"}},
		{"brokers, TLS and not", mqtt.Options{Brokers: []string{"mqtts://a:8883", "tcp://b:1883"}, ClientID: "gw"}, []string{"brokers[1]", `"tcp://b:1883" is not a TLS URL`, "all TLS or none"}},
		{"brokers, twice the same", mqtt.Options{Brokers: []string{"tcp://a:1883", "tcp://a:1883"}, ClientID: "gw"}, []string{"brokers[1]", "given twice"}},
		{"brokers, credentials not shown", mqtt.Options{Brokers: []string{"tcp://a:1883", "tcp://u:secret@b:1883"}, ClientID: "gw"}, []string{"brokers[1]", "credentials in the URL"}},
		{"brokers, TLS files on tcp", mqtt.Options{Brokers: []string{"tcp://a:1883", "tcp://b:1883"}, ClientID: "gw", CAFile: notPEM}, []string{"tcp://a:1883 or tcp://b:1883", "not TLS"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := mqtt.Connect(context.Background(), tc.o)
			if err == nil {
				c.Close()
				t.Fatal("Connect succeeded")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "secret") {
				t.Errorf("error %q shows the password", err)
			}
		})
	}
}

func TestConnectRetriesUntilContextEnds(t *testing.T) {
	b := startBroker(t, ":0")
	url := b.URL()
	b.Close() // nobody listens there now
	ctx, cancel := context.WithTimeout(context.Background(), 700*time.Millisecond)
	defer cancel()
	_, err := mqtt.Connect(ctx, options(url, "gw-a"))
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), url) || !strings.Contains(err.Error(), "attempts") {
		t.Fatalf("Connect to a closed port: %v, want the deadline, the URL and the attempts", err)
	}
}

func TestConnectWaitsForLateBroker(t *testing.T) {
	b := startBroker(t, ":0")
	addr := strings.TrimPrefix(b.URL(), "tcp://")
	b.Close()
	go func() {
		time.Sleep(300 * time.Millisecond) // the broker comes up after the gateway
		b2, err := broker.Start(addr, nil)
		if err != nil {
			t.Error(err)
			return
		}
		t.Cleanup(func() { b2.Close() })
	}()
	c := connect(t, options("tcp://"+addr, "gw-a"))
	if !c.Connected() {
		t.Fatal("Connect returned a client that is not connected")
	}
}

func TestConnectFailsAtOnceWhenRefused(t *testing.T) {
	b, err := broker.StartWith(broker.Options{Addr: ":0", ACL: true, Logger: testLog(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	o := options(b.URL(), "gw-a")
	o.Username = "" // the ACL broker wants a username
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	start := time.Now()
	_, err = mqtt.Connect(ctx, o)
	// Mochi answers "not authorised" (0x05) for its "bad username or password".
	if !errors.Is(err, packets.ErrorRefusedNotAuthorised) || !strings.Contains(err.Error(), b.URL()) {
		t.Fatalf("Connect without a username: %v, want a refusal naming the broker", err)
	}
	if d := time.Since(start); d > wait/2 {
		t.Errorf("a refusal took %v: it should not be retried", d)
	}
}

// A client from New and Start connects in the background: until the broker
// is there, Publish fails at once (a gateway loop is not held up), Subscribe
// is remembered, and the connection, the subscription and the status (the
// last PublishStatus) come when the broker does.
func TestStartConnectsInTheBackground(t *testing.T) {
	b := startBroker(t, ":0")
	addr := strings.TrimPrefix(b.URL(), "tcp://")
	b.Close() // nobody listens there yet
	o := withStatus(options("tcp://"+addr, "gw-a"), statusA)
	o.Logger = testLog(t)
	c, err := mqtt.New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	c.Start()
	in := newInbox()
	if err := c.Subscribe(ordersA, in.handle); err != nil {
		t.Fatalf("Subscribe while disconnected: %v", err)
	}
	start := time.Now()
	err = c.Publish(context.Background(), ordersA, []byte("early"), false)
	if !errors.Is(err, mqtt.ErrNotConnected) || !strings.Contains(err.Error(), addr) {
		t.Errorf("Publish before the broker is up: %v, want ErrNotConnected naming the broker", err)
	}
	if d := time.Since(start); d > 100*time.Millisecond {
		t.Errorf("Publish while disconnected took %v; it should fail at once", d)
	}
	if err := c.PublishStatus(context.Background(), []byte("online, 1 alarm")); !errors.Is(err, mqtt.ErrNotConnected) {
		t.Errorf("PublishStatus while disconnected: %v, want ErrNotConnected", err)
	}
	if c.Connected() {
		t.Fatal("connected without a broker")
	}

	time.Sleep(300 * time.Millisecond) // a few failed attempts
	b2 := startBroker(t, addr)
	eventually(t, wait, "the client to connect", c.Connected)
	other := connect(t, options(b2.URL(), "gw-b"))
	status := subscribe(t, other, statusA)
	status.waitForMsg(t, msg{statusA, "online, 1 alarm"})
	publish(t, other, ordersA, "after the broker came", false)
	in.waitForMsg(t, msg{ordersA, "after the broker came"})
}

// Close stops a client that never got a connection, at once.
func TestCloseBeforeTheFirstConnection(t *testing.T) {
	b := startBroker(t, ":0")
	url := b.URL()
	b.Close()
	c, err := mqtt.New(options(url, "gw-a"))
	if err != nil {
		t.Fatal(err)
	}
	c.Start()
	time.Sleep(100 * time.Millisecond)
	start := time.Now()
	c.Close()
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Close took %v", d)
	}
	if err := c.Publish(context.Background(), ordersA, []byte("x"), false); !errors.Is(err, mqtt.ErrClosed) {
		t.Errorf("Publish after Close: %v, want ErrClosed", err)
	}
}

// With several brokers, a refusal by one does not end Connect: the other
// may be down only for now. Here the first broker is unreachable at first
// and the second refuses; Connect waits, and takes the first once it is up.
func TestConnectWithSeveralBrokersRetriesARefusal(t *testing.T) {
	refusing, err := broker.StartWith(broker.Options{Addr: "127.0.0.1:0", ACL: true, Logger: testLog(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer refusing.Close()
	open := startBroker(t, "127.0.0.1:0")
	link := mqtttest.NewProxy(t, strings.TrimPrefix(open.URL(), "tcp://"))
	link.Refuse(true)
	o := options("", "gw-a")
	o.Username = "" // the ACL broker refuses a client without one
	o.Brokers = []string{link.URL(), refusing.URL()}
	time.AfterFunc(time.Second, func() { link.Refuse(false) })
	c := connect(t, o)
	if got := c.Broker(); got != link.URL() {
		t.Errorf("connected to %q, want %q (the first broker, once up)", got, link.URL())
	}
}
