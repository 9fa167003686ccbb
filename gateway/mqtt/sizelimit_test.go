package mqtt_test

import (
	"bytes"
	"errors"
	"net"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/eclipse/paho.mqtt.golang/packets"

	"github.com/p2pgrid/p2pgrid/gateway/mqtt/mqtttest"
	"github.com/p2pgrid/p2pgrid/gateway/protocol"
	"github.com/p2pgrid/p2pgrid/internal/testtool"
)

// TestShippedConfSizeLimit: Mosquitto with the shipped mosquitto.conf
// passes on a payload of the largest size p2pgrid sends (a book, result or
// settlement of protocol.MaxBookSize bytes), drops one a byte larger
// (acknowledged, never delivered, the sender still connected), and closes
// the connection of a client that announces a packet far larger, without
// waiting for its bytes.
func TestShippedConfSizeLimit(t *testing.T) {
	testtool.Integration(t)
	largest := max(protocol.MaxBookSize, protocol.MaxResultSize, protocol.MaxSettlementSize,
		protocol.MaxOrderSize, protocol.MaxMeteredSize, protocol.MaxRosterSize)
	m := mqtttest.StartShipped(t, mosquittoUsers)
	clearer := connect(t, mosquittoOptions(m, "operator"))
	app := connect(t, mosquittoOptions(m, "app"))
	books := subscribe(t, app, "p2pgrid/v1/c1/book/#")

	fits := bytes.Repeat([]byte{'a'}, largest)
	tooBig := bytes.Repeat([]byte{'b'}, largest+1)
	publish(t, clearer, "p2pgrid/v1/c1/book/fits", string(fits), false)
	publish(t, clearer, "p2pgrid/v1/c1/book/too-big", string(tooBig), true)
	publish(t, clearer, "p2pgrid/v1/c1/book/after", "control", false)
	books.waitForMsg(t, msg{"p2pgrid/v1/c1/book/after", "control"})
	time.Sleep(quiet)
	var topics []string
	for _, got := range books.all() {
		topics = append(topics, got.topic)
		if got.topic == "p2pgrid/v1/c1/book/fits" && got.payload != string(fits) {
			t.Errorf("the largest book arrived with %d bytes, want %d", len(got.payload), len(fits))
		}
	}
	if want := []string{"p2pgrid/v1/c1/book/fits", "p2pgrid/v1/c1/book/after"}; !slices.Equal(topics, want) {
		t.Errorf("the app received %q, want %q: a payload of %d bytes must pass, one of %d must not", topics, want, largest, largest+1)
	}
	if s := clearer.Stats(); s.ConnectionLost != 0 {
		t.Errorf("the clearer was disconnected for a payload over message_size_limit (%+v); it should only be dropped", s)
	}
	late := subscribe(t, connect(t, mosquittoOptions(m, "gw-b")), "p2pgrid/v1/c1/book/#")
	time.Sleep(quiet)
	if got := late.all(); len(got) != 0 {
		t.Errorf("a later subscriber received %d retained books; the oversize one must not have been kept", len(got))
	}

	// A PUBLISH that announces 16 MiB: the broker hangs up on the fixed
	// header alone.
	conn, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(m.Port), 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	connect := packets.NewControlPacket(packets.Connect).(*packets.ConnectPacket)
	connect.ProtocolName, connect.ProtocolVersion, connect.ClientIdentifier = "MQTT", 4, "x"
	connect.UsernameFlag, connect.Username, connect.PasswordFlag, connect.Password = true, "gw-c", true, []byte(mosquittoUsers["gw-c"])
	connect.Keepalive, connect.CleanSession = 30, true
	if err := connect.Write(conn); err != nil {
		t.Fatal(err)
	}
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	ack, err := packets.ReadPacket(conn)
	if ca, ok := ack.(*packets.ConnackPacket); err != nil || !ok || ca.ReturnCode != packets.Accepted {
		t.Fatalf("CONNACK: %v, %v", ack, err)
	}
	// PUBLISH, QoS 0; remaining length 16 MiB as a variable byte integer.
	if _, err := conn.Write([]byte{0x30, 0x80, 0x80, 0x80, 0x08}); err != nil {
		t.Fatal(err)
	}
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := conn.Read(make([]byte, 1))
	if ne := net.Error(nil); errors.As(err, &ne) && ne.Timeout() {
		t.Errorf("the broker waits for the 16 MiB of a packet over max_packet_size (no disconnect in 5 s)")
	} else if n != 0 || err == nil {
		t.Errorf("the broker answered a packet over max_packet_size (%d bytes, %v); want the connection closed", n, err)
	}
}
