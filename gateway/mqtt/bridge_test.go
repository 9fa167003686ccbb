package mqtt_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"maps"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/p2pgrid/p2pgrid/gateway/mqtt"
	"github.com/p2pgrid/p2pgrid/gateway/mqtt/mqtttest"
	"github.com/p2pgrid/p2pgrid/internal/pki"
	"github.com/p2pgrid/p2pgrid/internal/testtool"
)

// bridgeWait bounds what waits for the bridge to (re)connect: its
// restart_timeout backs off up to 10 s.
const bridgeWait = 30 * time.Second

// TestShippedBridge runs a community's two brokers as
// configs/mosquitto/README.md sets them up: A and B with the shipped
// mosquitto.conf and acl, the same password file and community CA, and B
// bridged to A over TLS with the shipped bridge.conf. What a gateway
// publishes on either broker reaches the subscribers of both, once (no
// loop), retained messages included; with A killed, B carries on for its
// own clients; when A is back, what was published and retained on B
// meanwhile reaches A, and when B comes back after a stop, what was
// published on A meanwhile reaches B.
func TestShippedBridge(t *testing.T) {
	testtool.Integration(t)
	users := maps.Clone(mosquittoUsers)
	users["bridge"] = "pw-bridge"
	users["reader"] = "pw-reader" // see retained
	users["failover"] = "pw-failover"
	ca, err := pki.NewCA("p2pgrid c1 CA", pki.DefaultCAValidity)
	if err != nil {
		t.Fatal(err)
	}
	// The reader reads every home's status, as the operator does (the
	// operator's own login is the clearer's connection here).
	const reader = "user reader\ntopic read p2pgrid/v1/#\n"
	a := mqtttest.StartShippedWith(t, mqtttest.Shipped{Users: users, CA: ca, ACLAppend: reader})
	b := mqtttest.StartShippedWith(t, mqtttest.Shipped{Users: users, CA: ca, ACLAppend: reader,
		Bridge: &mqtttest.Bridge{Remote: a, Username: "bridge", Password: users["bridge"]}})
	on := func(m *mqtttest.Mosquitto, user string) mqtt.Options {
		o := mosquittoOptions(m, user)
		o.Broker, o.CAFile = m.TLSURL, m.TLS.CAFile
		return o
	}
	gwA := connect(t, on(a, "gw-a"))
	gwB := connect(t, on(b, "gw-b"))
	appA := connect(t, on(a, "app"))
	appB := connect(t, on(b, "gw-c"))
	const orders = "p2pgrid/v1/c1/orders/+"
	seenA, seenB := subscribe(t, appA, orders), subscribe(t, appB, orders)

	// The bridge connects a moment after B has started: probe until a
	// message of B's reaches A.
	probe := msg{"p2pgrid/v1/c1/orders/gw-b", "probe"}
	deadline := time.Now().Add(bridgeWait)
	for !seenA.has(probe) {
		if time.Now().After(deadline) {
			t.Fatalf("the bridge did not connect B to A in %v:\nB's log:\n%s", bridgeWait, b.Log())
		}
		publish(t, gwB, probe.topic, probe.payload, false)
		time.Sleep(200 * time.Millisecond)
	}
	if !strings.Contains(a.Log(), " as bridge ") {
		t.Errorf("A's log does not show the bridge logged in as user bridge:\n%s", a.Log())
	}

	fromA := msg{"p2pgrid/v1/c1/orders/gw-a", "published on A"}
	fromB := msg{"p2pgrid/v1/c1/orders/gw-b", "published on B"}
	publish(t, gwA, fromA.topic, fromA.payload, false)
	publish(t, gwB, fromB.topic, fromB.payload, false)
	for _, in := range []*inbox{seenA, seenB} {
		in.waitForMsg(t, fromA)
		in.waitForMsg(t, fromB)
	}
	time.Sleep(2 * quiet)
	for name, in := range map[string]*inbox{"A": seenA, "B": seenB} {
		for _, m := range []msg{fromA, fromB} {
			if n := count(in.all(), m); n != 1 {
				t.Errorf("a subscriber on %s received %q %d times, want once", name, m, n)
			}
		}
	}

	// Retained, both ways: the result the clearer publishes on A, the
	// status a gateway publishes on B, for subscribers that come later.
	clearer := connect(t, on(a, "operator"))
	result := msg{"p2pgrid/v1/c1/result/latest", "result on A"}
	status := msg{"p2pgrid/v1/c1/status/gw-b", "online on B"}
	publish(t, clearer, result.topic, result.payload, true)
	publish(t, gwB, status.topic, status.payload, true)
	eventually(t, wait, "the retained result and status on both brokers", func() bool {
		return retained(t, a, result.topic) == result.payload && retained(t, b, result.topic) == result.payload &&
			retained(t, a, status.topic) == status.payload && retained(t, b, status.topic) == status.payload
	})

	// A client that knows both brokers (paho with two AddBroker, as the
	// gateway's failover would use it) is on A, the first of its list.
	fo := newFailoverClient(t, users, a, b)
	if got := fo.broker(); got != a.TLSURL {
		t.Fatalf("the failover client connected to %s, want A (%s), the first of its list", got, a.TLSURL)
	}

	// A dies. B's clients still talk to each other, and the failover
	// client moves to B.
	a.Kill()
	eventually(t, wait, "the failover client to reconnect to B and subscribe there", func() bool {
		return fo.pc.IsConnectionOpen() && fo.broker() == b.TLSURL && fo.subscribedOn() == b.TLSURL
	})
	alone := msg{"p2pgrid/v1/c1/orders/gw-b", "while A is down"}
	publish(t, gwB, alone.topic, alone.payload, false)
	seenB.waitForMsg(t, alone)
	fo.in.waitForMsg(t, alone)
	later := msg{"p2pgrid/v1/c1/status/gw-b", "still online on B"}
	publish(t, gwB, later.topic, later.payload, true)
	if got := retained(t, b, later.topic); got != later.payload {
		t.Errorf("with A down, B's retained status is %q, want %q", got, later.payload)
	}

	// A comes back (without its state: killed before its autosave). Its
	// clients reconnect and subscribe again at once; the bridge reconnects
	// a moment later, passes on what B queued for it meanwhile, and A
	// learns what B retained.
	a.Restart()
	seenA.waitFor(t, bridgeWait, "the order published on B while A was down to reach A", func(ms []msg) bool { return count(ms, alone) > 0 })
	eventually(t, wait, "B's retained status of the outage to reach A", func() bool {
		return retained(t, a, later.topic) == later.payload
	})
	// Paho does not go back to the first broker of its list while its
	// connection to another one holds; the bridge makes that harmless.
	if got := fo.broker(); got != b.TLSURL || !fo.pc.IsConnectionOpen() {
		t.Errorf("after A's return the failover client is on %s (connected: %v), want still on B", got, fo.pc.IsConnectionOpen())
	}

	// The other way round: while B is down (stopped cleanly, so that the
	// session of B's subscriber survives), A queues for the bridge's
	// session what its clients publish, and B gets it when it is back.
	b.Stop()
	queued := msg{"p2pgrid/v1/c1/orders/gw-a", "while B is down"}
	publish(t, gwA, queued.topic, queued.payload, false)
	b.Restart()
	seenB.waitFor(t, bridgeWait, "the order published on A while B was down to reach B", func(ms []msg) bool { return count(ms, queued) > 0 })
}

// count says how many times m is in ms.
func count(ms []msg, want msg) int {
	n := 0
	for _, m := range ms {
		if m == want {
			n++
		}
	}
	return n
}

// retained returns the message retained on topic at m, "" if none, as
// mosquitto_sub (a clean session, the login "reader") prints it.
func retained(t *testing.T, m *mqtttest.Mosquitto, topic string) string {
	t.Helper()
	bin := testtool.Require(t, "mosquitto_sub", "apt-get install mosquitto-clients")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "-h", "127.0.0.1", "-p", strconv.Itoa(m.Port), "-u", "reader", "-P", "pw-reader",
		"-t", topic, "--retained-only", "-C", "1", "-W", "1", "-F", "%p").Output()
	var exit *exec.ExitError
	if errors.As(err, &exit) && exit.ExitCode() == 27 { // -W: nothing came
		return ""
	}
	if err != nil {
		t.Fatalf("mosquitto_sub %s: %v", topic, err)
	}
	return strings.TrimSuffix(string(out), "\n")
}

// failoverClient is a bare paho client given both brokers, A first, that
// subscribes to every order after each connect and notes which broker
// each connection attempt was for.
type failoverClient struct {
	pc paho.Client
	in *inbox

	mu         sync.Mutex
	attempt    string // the broker of the latest connection attempt
	subscribed string // the broker of the connection whose subscription was acknowledged (latest)
}

func newFailoverClient(t *testing.T, users map[string]string, brokers ...*mqtttest.Mosquitto) *failoverClient {
	t.Helper()
	pem, err := os.ReadFile(brokers[0].TLS.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	f := &failoverClient{in: newInbox()}
	o := paho.NewClientOptions().SetClientID("failover").SetUsername("failover").SetPassword(users["failover"]).
		SetTLSConfig(&tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}).
		SetProtocolVersion(4).SetCleanSession(true).SetAutoReconnect(true).
		SetConnectTimeout(2 * time.Second).SetMaxReconnectInterval(200 * time.Millisecond).
		SetConnectionAttemptHandler(func(broker *url.URL, cfg *tls.Config) *tls.Config {
			f.mu.Lock()
			f.attempt = broker.String()
			f.mu.Unlock()
			return cfg
		}).
		SetOnConnectHandler(func(pc paho.Client) {
			broker := f.broker()
			tok := pc.Subscribe("p2pgrid/v1/c1/orders/+", 1, func(_ paho.Client, m paho.Message) { f.in.handle(m.Topic(), m.Payload()) })
			go func() {
				// A clean session: what is published before the broker
				// acknowledges the subscription does not reach it.
				if tok.Wait() && tok.Error() == nil {
					f.mu.Lock()
					f.subscribed = broker
					f.mu.Unlock()
				}
			}()
		})
	for _, m := range brokers {
		o.AddBroker(m.TLSURL)
	}
	f.pc = paho.NewClient(o)
	if tok := f.pc.Connect(); !tok.WaitTimeout(wait) || tok.Error() != nil {
		t.Fatalf("the failover client: %v", tok.Error())
	}
	t.Cleanup(func() { f.pc.Disconnect(100) })
	return f
}

func (f *failoverClient) subscribedOn() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.subscribed
}

func (f *failoverClient) broker() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.attempt
}
