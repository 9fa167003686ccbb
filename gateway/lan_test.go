package gateway

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/eclipse/paho.mqtt.golang/packets"

	"github.com/p2pgrid/p2pgrid/gateway/config"
	"github.com/p2pgrid/p2pgrid/gateway/mqtt"
	"github.com/p2pgrid/p2pgrid/gateway/mqtt/mqtttest"
	"github.com/p2pgrid/p2pgrid/gateway/protocol"
	"github.com/p2pgrid/p2pgrid/internal/pki"
	"github.com/p2pgrid/p2pgrid/internal/testtool"
	"github.com/p2pgrid/p2pgrid/settlement"
	"github.com/p2pgrid/p2pgrid/settlement/record"
)

// lanGatewayConfig is a gateway's configuration as configs/mosquitto/README.md
// tells to write it for a broker on the LAN.
const lanGatewayConfig = `gateway: %[1]s
community: c1
roster: /etc/p2pgrid/roster.json
mqtt:
  broker: %[2]s
  username: %[1]s
  password_file: %[3]s
  ca_file: %[4]s
`

// TestLANCommunity runs a community the way configs/mosquitto/README.md
// sets one up on a LAN: Mosquitto with the shipped mosquitto.conf and acl
// as they are (ports and paths aside), the CA and the broker's certificate
// made by package pki, a password file made by mosquitto_passwd, and
// every gateway configured with mqtt.broker mqtts://..., mqtt.username,
// mqtt.password_file and mqtt.ca_file. The gateways trade, clear, verify,
// send their metered figures and settle, all over TLS; a tool's login
// reads the market but no home's status or telemetry; clients without a
// password, with a wrong one, without the CA, or in plain TCP on the TLS
// port are refused.
func TestLANCommunity(t *testing.T) {
	testtool.Integration(t)
	users := map[string]string{"app": "pw-app"}
	for _, id := range itGateways {
		users[id] = "pw-" + id
	}
	ca, err := pki.NewCA("p2pgrid c1 CA", pki.DefaultCAValidity)
	if err != nil {
		t.Fatal(err)
	}
	// home1, this community's standby clearer, is listed as a clearer the
	// way the README adds one: it settles with everybody's metered figures,
	// which only clearers may read.
	m := mqtttest.StartShippedWith(t, mqtttest.Shipped{Users: users, CA: ca, ACLAppend: mqtttest.ClearerBlock(t, "home1")})
	brokerURL := "mqtts://127.0.0.1:" + strconv.Itoa(m.TLSPort)

	dir := t.TempDir()
	cfgs := map[string]*config.MQTT{}
	for _, id := range itGateways {
		pw := filepath.Join(dir, id+".password")
		if err := os.WriteFile(pw, []byte(users[id]+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg, err := config.Parse(fmt.Appendf(nil, lanGatewayConfig, id, brokerURL, pw, m.TLS.CAFile), nil)
		if err != nil {
			t.Fatalf("%s's configuration: %v", id, err)
		}
		cfgs[id] = &cfg.MQTT
	}

	t.Run("refused", func(t *testing.T) {
		good := lanOptions(cfgs["home2"])
		for _, c := range []struct {
			what string
			edit func(o *mqtt.Options)
			want error
		}{
			{"an anonymous client", func(o *mqtt.Options) { o.Username, o.Password = "", "" }, packets.ErrorRefusedNotAuthorised},
			{"a wrong password", func(o *mqtt.Options) { o.Password = "pw-home3" }, packets.ErrorRefusedNotAuthorised},
			{"an unknown user", func(o *mqtt.Options) { o.Username = "mallory" }, packets.ErrorRefusedNotAuthorised},
		} {
			o := good
			o.ClientID = "refused"
			c.edit(&o)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			cl, err := mqtt.Connect(ctx, o)
			cancel()
			if err == nil {
				cl.Close()
				t.Errorf("%s connected over TLS", c.what)
			} else if !errors.Is(err, c.want) {
				t.Errorf("%s: %v, want %v", c.what, err, c.want)
			}
		}

		// Without mqtt.ca_file the system's roots do not know the community CA.
		o := good
		o.ClientID, o.CAFile = "no-ca-file", ""
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if cl, err := mqtt.Connect(ctx, o); err == nil {
			cl.Close()
			t.Error("connected without mqtt.ca_file")
		} else if !strings.Contains(err.Error(), "certificate signed by unknown authority") {
			t.Errorf("without mqtt.ca_file: %v, want the broker's certificate refused", err)
		}

		// Plain MQTT on the TLS port: the broker never answers in clear
		// text (no CONNACK), it drops the connection.
		conn, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(m.TLSPort), 2*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		connect := packets.NewControlPacket(packets.Connect).(*packets.ConnectPacket)
		connect.ProtocolName, connect.ProtocolVersion, connect.ClientIdentifier = "MQTT", 4, "plain"
		connect.UsernameFlag, connect.Username, connect.PasswordFlag, connect.Password = true, "home2", true, []byte("pw-home2")
		connect.Keepalive = 30
		if err := connect.Write(conn); err != nil {
			t.Fatal(err)
		}
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		reply, err := io.ReadAll(conn)
		if len(reply) > 0 && reply[0] == 0x20 {
			t.Errorf("the TLS port answered a plain MQTT CONNECT with a CONNACK: % x", reply)
		}
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Errorf("the TLS port kept a plain MQTT connection open for 5 s (read % x)", reply)
		}
		o = good
		o.ClientID, o.Broker, o.CAFile = "plain", "tcp://127.0.0.1:"+strconv.Itoa(m.TLSPort), ""
		ctx, cancel = context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if cl, err := mqtt.Connect(ctx, o); err == nil {
			cl.Close()
			t.Error("the gateway's client connected in plain TCP to the TLS port")
		}
	})

	h := newHarness(t, brokerURL, func(id string, o *mqtt.Options) {
		c := cfgs[id]
		o.Broker, o.Username, o.Password = c.Broker, c.Username, string(c.Password)
		o.CAFile, o.CertFile, o.KeyFile = c.CAFile, c.CertFile, c.KeyFile
	})
	first := h.trade(t0.Add(15*time.Minute), "operator")
	h.trade(t0.Add(30*time.Minute), "operator")
	h.advance(t0.Add(33 * time.Minute)) // past the settlement of 12:15
	for _, id := range itGateways {
		h.waitFor(id+" to record the settlement of "+first, func() bool {
			return h.ledgers[id].find(record.KindInterval, first) != nil
		})
	}
	s, err := settlement.DecodeIntervalSettlement(h.ledgers["home2"].find(record.KindInterval, first))
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Participants) != len(itExport) {
		t.Errorf("settled %d participants, want %d", len(s.Participants), len(itExport))
	}
	for _, p := range s.Participants {
		if p.MissingIntervals != 0 {
			t.Errorf("%s's metered figures did not reach the clearer through the shipped ACL", p.Participant)
		}
	}

	// The neighbour's app, as the README checks a setup: mosquitto_sub
	// over TLS with the CA file finds the retained result and settlement.
	topics, _ := protocol.NewTopics("c1")
	for _, topic := range []string{topics.ResultLatest(), topics.Settlement(first)} {
		out := mosquittoClient(t, "mosquitto_sub", "-h", "localhost", "-p", strconv.Itoa(m.TLSPort), "--cafile", m.TLS.CAFile,
			"-u", "app", "-P", users["app"], "-t", topic, "-v", "-C", "1", "-W", "10")
		if !strings.HasPrefix(out, topic+" {") {
			t.Errorf("mosquitto_sub over TLS printed %.200q, want the retained %s", out, topic)
		}
	}

	// Privacy by default: every home's status is retained on the broker
	// (each gateway says online), yet the app's login, reading the market
	// above, receives none of them in 3 s (mosquitto_sub -W: exit 27).
	sub := testtool.Require(t, "mosquitto_sub", "apt-get install mosquitto-clients")
	out, err := exec.Command(sub, "-h", "localhost", "-p", strconv.Itoa(m.TLSPort), "--cafile", m.TLS.CAFile,
		"-u", "app", "-P", users["app"], "-t", "p2pgrid/v1/c1/status/+", "-t", "p2pgrid/v1/c1/telemetry/+", "-v", "-W", "3").Output()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 27 || len(out) != 0 {
		t.Errorf("the app's login subscribed to every status and telemetry: %v, printed %.300q; want nothing (exit 27)", err, out)
	}

	// A login cannot forge a neighbour's order: mosquitto_pub, with the
	// app's own login as the README says (with home1's it would close
	// gateway home1's connection: one login, one connection), is
	// acknowledged (exit 0) and the broker drops the message. The app's own
	// orders topic, published next, is the control: the clearer counts it
	// as malformed; had the forgery come through, it would have come
	// first, and counted too.
	malformed := func() float64 {
		return counter(t, h.gw("operator"), "p2pgrid_clearer_orders_rejected_total", string(protocol.RejectMalformed))
	}
	before := malformed()
	for _, topic := range []string{topics.Orders("home2"), topics.Orders("app")} {
		mosquittoClient(t, "mosquitto_pub", "-h", "localhost", "-p", strconv.Itoa(m.TLSPort), "--cafile", m.TLS.CAFile,
			"-u", "app", "-P", users["app"], "-t", topic, "-q", "1", "-m", "not an order")
	}
	h.waitFor("the clearer to count the control", func() bool { return malformed() > before })
	time.Sleep(300 * time.Millisecond)
	if n := malformed() - before; n != 1 {
		t.Errorf("the clearer received %v malformed orders, want 1 (the control): the broker let the app publish on home2's orders", n)
	}

	// Adding a gateway, and removing it, as the README does it:
	// mosquitto_passwd on the password file, then a reload.
	passwd := testtool.Require(t, "mosquitto_passwd", "apt-get install mosquitto")
	home4 := lanOptions(cfgs["home2"])
	home4.ClientID, home4.Username, home4.Password = "home4", "home4", "pw-home4"
	connects := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c, err := mqtt.Connect(ctx, home4)
		if err == nil {
			c.Close()
		}
		return err
	}
	if err := connects(); !errors.Is(err, packets.ErrorRefusedNotAuthorised) {
		t.Fatalf("home4 before it has a password: %v, want refused", err)
	}
	for _, args := range [][]string{{"-b", m.PasswordFile, "home4", "pw-home4"}, {"-D", m.PasswordFile, "home4"}} {
		if out, err := exec.Command(passwd, args...).CombinedOutput(); err != nil {
			t.Fatalf("mosquitto_passwd %v: %v: %s", args, err, out)
		}
		m.Reload()
		added := args[0] == "-b"
		h.waitFor(fmt.Sprintf("the reloaded broker to take mosquitto_passwd %s", args[0]), func() bool {
			err := connects()
			return added && err == nil || !added && errors.Is(err, packets.ErrorRefusedNotAuthorised)
		})
	}
	for _, id := range itGateways {
		if s := h.clients[id].Stats(); s.ConnectionLost != 0 || !h.clients[id].Connected() {
			t.Errorf("%s lost its connection (%+v): a reload must not drop the gateways", id, s)
		}
	}
}

// lanOptions are the MQTT options a gateway's configuration gives.
func lanOptions(c *config.MQTT) mqtt.Options {
	return mqtt.Options{Broker: c.Broker, ClientID: c.ClientID, Username: c.Username, Password: string(c.Password),
		CAFile: c.CAFile, CertFile: c.CertFile, KeyFile: c.KeyFile,
		ConnectTimeout: 2 * time.Second, MaxReconnectInterval: 200 * time.Millisecond}
}

// mosquittoClient runs mosquitto_sub or mosquitto_pub and returns what it
// printed; it fails the test if the program fails or runs over 15 s.
func mosquittoClient(t *testing.T, name string, args ...string) string {
	t.Helper()
	bin := testtool.Require(t, name, "apt-get install mosquitto-clients")
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v: %s%s", name, strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String()
}

// TestLANMutualTLS: with require_certificate turned on in the shipped
// mosquitto.conf, as configs/mosquitto/README.md says, a gateway with a
// client certificate from `p2pgrid certs --client` (mqtt.cert_file,
// mqtt.key_file) and its password gets in; without the certificate it
// does not, password or not.
func TestLANMutualTLS(t *testing.T) {
	testtool.Integration(t)
	ca, err := pki.NewCA("p2pgrid c1 CA", pki.DefaultCAValidity)
	if err != nil {
		t.Fatal(err)
	}
	users := map[string]string{"home1": "pw-home1", "home2": "pw-home2"}
	m := mqtttest.StartShippedWith(t, mqtttest.Shipped{Users: users, CA: ca, RequireCertificate: true})
	brokerURL := "mqtts://127.0.0.1:" + strconv.Itoa(m.TLSPort)
	dir := t.TempDir()
	connect := func(id string, withCert bool) (*mqtt.Client, error) {
		pw := filepath.Join(dir, id+".password")
		if err := os.WriteFile(pw, []byte(users[id]), 0o600); err != nil {
			t.Fatal(err)
		}
		yaml := fmt.Sprintf(lanGatewayConfig, id, brokerURL, pw, m.TLS.CAFile)
		if withCert {
			crt, key := filepath.Join(dir, id+".crt"), filepath.Join(dir, id+".key")
			c, err := ca.IssueClient(id, time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			if err := c.WriteFiles(crt, key); err != nil {
				t.Fatal(err)
			}
			yaml += fmt.Sprintf("  cert_file: %s\n  key_file: %s\n", crt, key)
		}
		cfg, err := config.Parse([]byte(yaml), nil)
		if err != nil {
			t.Fatalf("%s's configuration: %v", id, err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		return mqtt.Connect(ctx, lanOptions(&cfg.MQTT))
	}
	gw, err := connect("home1", true)
	if err != nil {
		t.Fatalf("home1 with its client certificate: %v", err)
	}
	defer gw.Close()
	got := make(chan string, 1)
	topics, _ := protocol.NewTopics("c1")
	if err := gw.Subscribe(topics.TelemetryAll(), func(topic string, _ []byte) {
		select {
		case got <- topic:
		default:
		}
	}); err != nil {
		t.Fatal(err)
	}
	if err := gw.Publish(context.Background(), topics.Telemetry("home1"), []byte(`{}`), false); err != nil {
		t.Fatal(err)
	}
	select {
	case topic := <-got:
		if topic != topics.Telemetry("home1") {
			t.Errorf("received %s", topic)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("home1's own telemetry did not come back over mutual TLS")
	}

	if c, err := connect("home2", false); err == nil {
		c.Close()
		t.Fatal("home2 connected without a client certificate although require_certificate is on")
	}
}
