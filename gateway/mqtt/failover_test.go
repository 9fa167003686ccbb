package mqtt_test

import (
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/p2pgrid/p2pgrid/gateway/mqtt"
	"github.com/p2pgrid/p2pgrid/gateway/mqtt/mqtttest"
	"github.com/p2pgrid/p2pgrid/internal/testtool"
)

// TestMosquittoFailover runs a client with two brokers, two independent
// Mosquittos (no bridge: each observer sees only its own broker, which
// shows where the client is). Killing the broker the client is on moves
// it to the other, where it subscribes again, publishes its status and
// trades; killing that one brings it back to the first.
func TestMosquittoFailover(t *testing.T) {
	testtool.Integration(t)
	testtool.Require(t, "mosquitto", "apt-get install mosquitto mosquitto-clients")
	a := mqtttest.Start(t, mqtttest.Config{Users: mosquittoUsers})
	b := mqtttest.Start(t, mqtttest.Config{Users: mosquittoUsers})

	o := withStatus(mosquittoOptions(a, "gw-a"), statusA)
	o.Broker, o.Brokers = "", []string{a.URL, b.URL}
	gw := connect(t, o)
	books := subscribe(t, gw, "p2pgrid/v1/c1/book/+")
	onA := connect(t, mosquittoOptions(a, "gw-b"))
	onB := connect(t, mosquittoOptions(b, "gw-c"))
	ordersOnA := subscribe(t, onA, ordersA)
	ordersOnB := subscribe(t, onB, ordersA)
	statusOnB := subscribe(t, onB, statusA)

	// works proves that gw trades on m: it receives what an observer on m
	// publishes, and the observer receives what it publishes.
	works := func(t *testing.T, m *mqtttest.Mosquitto, observer *mqtt.Client, orders *inbox, n int) {
		t.Helper()
		eventually(t, wait, "the client on "+m.URL, func() bool { return gw.Broker() == m.URL })
		book := msg{"p2pgrid/v1/c1/book/96", "book " + strconv.Itoa(n)}
		// The re-subscription may land a moment after the connection: the
		// observer publishes until the book arrives.
		deadline := time.Now().Add(wait)
		for !books.has(book) {
			if time.Now().After(deadline) {
				t.Fatalf("the client on %s does not receive what is published there: %v", m.URL, books.all())
			}
			publish(t, observer, book.topic, book.payload, false)
			time.Sleep(100 * time.Millisecond)
		}
		order := msg{ordersA, "order " + strconv.Itoa(n)}
		publish(t, gw, order.topic, order.payload, false)
		orders.waitForMsg(t, order)
	}

	works(t, a, onA, ordersOnA, 1)
	if ordersOnB.has(msg{ordersA, "order 1"}) {
		t.Fatal("an order published on broker A reached broker B, which is not bridged: the test proves nothing")
	}

	a.Kill()
	works(t, b, onB, ordersOnB, 2)
	statusOnB.waitForMsg(t, msg{statusA, "online"}) // retained status restated on B
	if n := gw.LostRecently(time.Minute); n != 1 {
		t.Errorf("LostRecently(1m) = %d after one broker died, want 1", n)
	}

	// A comes back: the client stays on B, which works.
	a.Restart()
	eventually(t, wait, "the observer back on A", onA.Connected)
	works(t, b, onB, ordersOnB, 3)

	// B dies: back to A.
	b.Kill()
	works(t, a, onA, ordersOnA, 4)
	if st := gw.Stats(); st.Reconnects != 2 || st.ConnectionLost != 2 {
		t.Errorf("stats %+v, want 2 reconnects after 2 connections lost", st)
	}
}

// TestMosquittoSessionTakeover: someone else connecting with the client's
// id kicks it off (Mosquitto closes the older connection); the client
// reconnects, and LostRecently counts every time.
func TestMosquittoSessionTakeover(t *testing.T) {
	testtool.Integration(t)
	testtool.Require(t, "mosquitto", "apt-get install mosquitto mosquitto-clients")
	pub := testtool.Require(t, "mosquitto_pub", "apt-get install mosquitto-clients")
	m := mqtttest.Start(t, mqtttest.Config{Users: mosquittoUsers})
	o := mosquittoOptions(m, "gw-a")
	gw := connect(t, o)
	if n := gw.LostRecently(time.Minute); n != 0 {
		t.Fatalf("LostRecently(1m) = %d before any takeover", n)
	}
	const takeovers = 3
	for i := 1; i <= takeovers; i++ {
		eventually(t, wait, "the client connected", gw.Connected)
		out, err := exec.Command(pub, "-h", "127.0.0.1", "-p", strconv.Itoa(m.Port), "-i", o.ClientID,
			"-u", "gw-b", "-P", mosquittoUsers["gw-b"], "-t", "p2pgrid/v1/c1/takeover", "-m", "x", "-q", "1").CombinedOutput()
		if err != nil {
			// The client reconnects at once and takes its session back,
			// which may cut mosquitto_pub off: a fight for the id, as in
			// the real attack.
			t.Logf("takeover %d: mosquitto_pub: %v: %s", i, err, out)
		}
		eventually(t, wait, "the takeover noticed", func() bool { return gw.LostRecently(time.Minute) >= i })
	}
	eventually(t, wait, "the client connected again", gw.Connected)
	if n := gw.LostRecently(time.Minute); n < takeovers {
		t.Errorf("LostRecently(1m) = %d after %d takeovers", n, takeovers)
	}
	if n := gw.LostRecently(0); n != 0 {
		t.Errorf("LostRecently(0) = %d: no loss happens in no time", n)
	}
	if st := gw.Stats(); st.ConnectionLost < takeovers {
		t.Errorf("stats %+v: fewer connections lost than takeovers", st)
	}
}
