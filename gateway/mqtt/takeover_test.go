package mqtt_test

import (
	"strings"
	"testing"
	"time"

	"github.com/p2pgrid/p2pgrid/gateway/mqtt/mqtttest"
	"github.com/p2pgrid/p2pgrid/internal/testtool"
)

// TestShippedConfBindsClientIDToLogin: with the shipped mosquitto.conf
// (use_username_as_clientid), one home's password does not get at the
// clearer's session. A home that connects with the clearer's client id
// neither receives the orders queued for the offline clearer nor knocks
// the online clearer off the broker: its client id is its username. The
// price, shown last: each login is one connection, so a second connection
// with the same login (a tool run with a gateway's password) takes the
// first one's place.
func TestShippedConfBindsClientIDToLogin(t *testing.T) {
	testtool.Integration(t)
	m := mqtttest.StartShipped(t, mosquittoUsers)
	const orders = "p2pgrid/v1/c1/orders/+"
	gwB := connect(t, mosquittoOptions(m, "gw-b"))

	// The clearer subscribes on its persistent session and goes away.
	clearerOpts := mosquittoOptions(m, "operator")
	clearer := connect(t, clearerOpts)
	subscribe(t, clearer, orders)
	clearer.Close()
	queued := msg{"p2pgrid/v1/c1/orders/gw-b", "queued for the clearer"}
	publish(t, gwB, queued.topic, queued.payload, false)

	// gw-a's login with the clearer's client id, from the LAN (TLS).
	intruderOpts := mosquittoOptions(m, "gw-a")
	intruderOpts.ClientID = clearerOpts.ClientID
	intruderOpts.Broker, intruderOpts.CAFile = m.TLSURL, m.TLS.CAFile
	intruder := connect(t, intruderOpts)
	time.Sleep(quiet)
	if n := intruder.Stats().Received; n != 0 {
		t.Errorf("gw-a, connected with the clearer's client id, received %d messages queued for the clearer's session", n)
	}
	intruder.Close()

	// The control: the clearer comes back and gets what was queued for it.
	clearer = connect(t, clearerOpts)
	got := subscribe(t, clearer, orders)
	got.waitForMsg(t, queued)

	// The clearer is online; the intruder connects with its client id again.
	intruder = connect(t, intruderOpts)
	live := msg{"p2pgrid/v1/c1/orders/gw-b", "live"}
	publish(t, gwB, live.topic, live.payload, false)
	got.waitForMsg(t, live)
	time.Sleep(quiet)
	if s := clearer.Stats(); s.ConnectionLost != 0 || !clearer.Connected() {
		t.Errorf("the clearer lost its connection %d times (connected now: %v) to gw-a using its client id", s.ConnectionLost, clearer.Connected())
	}
	if n := intruder.Stats().Received; n != 0 {
		t.Errorf("gw-a, connected with the clearer's client id, received %d of the clearer's messages", n)
	}
	if !strings.Contains(m.Log(), "New client connected from 127.0.0.1") || !strings.Contains(m.Log(), " as gw-a ") {
		t.Errorf("Mosquitto's log does not show gw-a connecting as client id gw-a:\n%s", m.Log())
	}

	// One login, one connection: a second connection with gw-a's login,
	// whatever its client id, closes the first one. Both reconnect by
	// themselves, so each keeps closing the other: what a gateway whose
	// login is used elsewhere sees is a connection lost again and again,
	// each reconnect succeeding at once (a dead broker refuses them).
	second := intruderOpts
	second.ClientID = "a-tool"
	connect(t, second)
	eventually(t, wait, "the first gw-a connection to be closed three times", func() bool {
		s := intruder.Stats()
		return s.ConnectionLost >= 3 && s.Reconnects >= 3
	})
	if n := strings.Count(m.Log(), "Client gw-a already connected, closing old connection."); n < 3 {
		t.Errorf("Mosquitto's log says %d times that it closed a gw-a connection for a new one, want 3 or more:\n%s", n, m.Log())
	}
}
