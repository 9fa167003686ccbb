package mqtt_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/eclipse/paho.mqtt.golang/packets"
	"github.com/p2pgrid/p2pgrid/gateway/mqtt"
	"github.com/p2pgrid/p2pgrid/gateway/mqtt/mqtttest"
	"github.com/p2pgrid/p2pgrid/internal/pki"
	"github.com/p2pgrid/p2pgrid/internal/testtool"
)

// quiet is how long a test waits to be sure that a message does NOT come,
// after a positive control sent later by the same publisher has come.
const quiet = 300 * time.Millisecond

var mosquittoUsers = map[string]string{
	"gw-a":     "pw-a",
	"gw-b":     "pw-b",
	"gw-c":     "pw-c",
	"operator": "pw-operator", // the clearer, listed in configs/mosquitto/acl
	"app":      "pw-app",      // a neighbour's app: its own login, not a gateway's
}

func mosquittoOptions(m *mqtttest.Mosquitto, user string) mqtt.Options {
	o := options(m.URL, user)
	o.Password = mosquittoUsers[user]
	return o
}

// TestMosquittoWithShippedACL runs the gateway's client against a real
// Mosquitto that uses configs/mosquitto/acl as shipped.
func TestMosquittoWithShippedACL(t *testing.T) {
	testtool.Integration(t)
	testtool.Require(t, "mosquitto", "apt-get install mosquitto mosquitto-clients")
	m := mqtttest.Start(t, mqtttest.Config{ACLFile: mqtttest.ShippedACL(t), Users: mosquittoUsers})

	gwA := connect(t, withStatus(mosquittoOptions(m, "gw-a"), statusA))
	gwB := connect(t, mosquittoOptions(m, "gw-b"))
	clearer := connect(t, mosquittoOptions(m, "operator"))
	orders := subscribe(t, gwB, "p2pgrid/v1/c1/orders/+")
	results := subscribe(t, gwB, "p2pgrid/v1/c1/result/#")

	t.Run("gateway publishes its own order", func(t *testing.T) {
		publish(t, gwA, ordersA, "bid 1.5 kWh", false)
		orders.waitForMsg(t, msg{ordersA, "bid 1.5 kWh"})
	})

	t.Run("gateway cannot publish another gateway's order", func(t *testing.T) {
		forged := msg{"p2pgrid/v1/c1/orders/gw-b", "forged by gw-a"}
		// Mosquitto 2.0 acknowledges a denied QoS 1 publish and drops it.
		publish(t, gwA, forged.topic, forged.payload, false)
		control := msg{ordersA, "control after the forgery"}
		publish(t, gwA, control.topic, control.payload, false)
		orders.waitForMsg(t, control)
		time.Sleep(quiet)
		if orders.has(forged) {
			t.Fatalf("a gateway published to another gateway's orders: %v", orders.all())
		}
	})

	t.Run("only the clearer publishes results", func(t *testing.T) {
		forged := msg{"p2pgrid/v1/c1/result/96", "forged result"}
		publish(t, gwA, forged.topic, forged.payload, true)
		// The clearer's result is the positive control: it is the next
		// message on the topic; a forged one would have come first.
		cleared := msg{"p2pgrid/v1/c1/result/latest", `{"interval":96,"price":"0.21"}`}
		publish(t, clearer, cleared.topic, cleared.payload, true)
		results.waitForMsg(t, cleared)
		time.Sleep(quiet)
		if results.has(forged) {
			t.Fatalf("a gateway published a result: %v", results.all())
		}
	})

	t.Run("the neighbour's mosquitto_sub sees the retained result", func(t *testing.T) {
		out := mosquittoSub(t, m, "gw-b", "p2pgrid/v1/c1/result/#")
		want := `1 p2pgrid/v1/c1/result/latest {"interval":96,"price":"0.21"}`
		if out != want {
			t.Fatalf("mosquitto_sub printed %q, want %q (retained flag, topic, payload; and no forged result)", out, want)
		}
	})

	t.Run("persistent session keeps what was missed, in order", func(t *testing.T) {
		away := connect(t, mosquittoOptions(m, "gw-c"))
		subscribe(t, away, "p2pgrid/v1/c1/book/+")
		away.Close()
		var want []msg
		for i := range 3 {
			b := msg{"p2pgrid/v1/c1/book/96", fmt.Sprintf("book part %d", i)}
			want = append(want, b)
			publish(t, clearer, b.topic, b.payload, false)
		}
		back := connect(t, mosquittoOptions(m, "gw-c"))
		in := subscribe(t, back, "p2pgrid/v1/c1/book/+")
		in.waitFor(t, wait, "the 3 missed book parts", func(ms []msg) bool { return len(ms) >= 3 })
		if got := in.all(); !slices.Equal(got, want) {
			t.Fatalf("got %v, want %v", got, want)
		}
	})

	t.Run("reconnect and resubscribe after Mosquitto restarts", func(t *testing.T) {
		m.Kill() // no persistence: the restarted broker knows no session
		eventually(t, wait, "the clients to notice", func() bool { return !gwA.Connected() && !gwB.Connected() })
		m.Restart()
		eventually(t, wait, "the clients to reconnect", func() bool {
			return gwA.Connected() && gwB.Connected() && clearer.Connected()
		})
		// gw-b's subscriptions exist again once a new message reaches it;
		// the re-subscription may land a moment after the reconnect.
		deadline := time.Now().Add(wait)
		for i := 0; ; i++ {
			probe := msg{ordersA, fmt.Sprint("after restart ", i)}
			publish(t, gwA, probe.topic, probe.payload, false)
			select {
			case <-orders.changed:
			case <-time.After(50 * time.Millisecond):
			}
			if orders.has(probe) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("nothing reached gw-b in %v after the restart: it did not re-subscribe; got %v", wait, orders.all())
			}
		}
		result := msg{"p2pgrid/v1/c1/result/97", "after restart"}
		publish(t, clearer, result.topic, result.payload, false)
		results.waitForMsg(t, result)
		if s := gwB.Stats(); s.Reconnects != 1 || s.ConnectionLost != 1 {
			t.Errorf("gw-b stats %+v, want one lost connection and one reconnect", s)
		}
		// The restarted broker forgot every retained message; gw-a said
		// online again when it reconnected. (The operator reads it: a
		// neighbour such as gw-b may not, TestShippedACLPrivacy.)
		if out := mosquittoSub(t, m, "operator", statusA); out != "1 "+statusA+" online" {
			t.Errorf("status after the restart: mosquitto_sub printed %q, want gw-a online (retained)", out)
		}
	})

	t.Run("offline status on Close", func(t *testing.T) {
		gwA.Close()
		if out := mosquittoSub(t, m, "operator", statusA); out != "1 "+statusA+" offline" {
			t.Errorf("status after Close: mosquitto_sub printed %q, want offline (retained)", out)
		}
	})
}

// mosquittoSub runs mosquitto_sub as user until it has printed one message
// ("retained-flag topic payload") and returns that line.
func mosquittoSub(t *testing.T, m *mqtttest.Mosquitto, user, filter string) string {
	t.Helper()
	bin := testtool.Require(t, "mosquitto_sub", "apt-get install mosquitto-clients")
	cmd := exec.Command(bin, "-h", "127.0.0.1", "-p", strconv.Itoa(m.Port),
		"-u", user, "-P", mosquittoUsers[user], "-i", "neighbour-app-"+user,
		"-t", filter, "-q", "1", "-C", "1", "-W", "10", "-F", "%r %t %p")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() { _ = cmd.Process.Kill() }) // if it is still running
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("mosquitto_sub: %v: %s%s", err, stdout.String(), stderr.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("mosquitto_sub did not finish in 15s: %s%s", stdout.String(), stderr.String())
	}
	return strings.TrimSpace(stdout.String())
}

// TestMosquittoMutualTLS connects over TLS with a client certificate, to a
// Mosquitto that requires one.
func TestMosquittoMutualTLS(t *testing.T) {
	testtool.Integration(t)
	testtool.Require(t, "mosquitto", "apt-get install mosquitto mosquitto-clients")
	dir := t.TempDir()
	files := writePKI(t, dir)
	m := mqtttest.Start(t, mqtttest.Config{
		ACLFile: mqtttest.ShippedACL(t),
		Users:   mosquittoUsers,
		TLS:     &mqtttest.TLSFiles{CAFile: files.ca, CertFile: files.serverCert, KeyFile: files.serverKey},
	})

	o := mosquittoOptions(m, "gw-a")
	o.Broker = strings.Replace(m.TLSURL, "ssl://", "mqtts://", 1)
	o.CAFile, o.CertFile, o.KeyFile = files.ca, files.clientCert, files.clientKey
	gw := connect(t, o)
	plain := connect(t, mosquittoOptions(m, "gw-b"))
	in := subscribe(t, plain, ordersA)
	publish(t, gw, ordersA, "over TLS", false)
	in.waitForMsg(t, msg{ordersA, "over TLS"})

	// Without a client certificate Mosquitto refuses the TLS connection.
	o.CertFile, o.KeyFile = "", ""
	o.ClientID = "gw-a-nocert"
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	if c, err := mqtt.Connect(ctx, o); err == nil {
		c.Close()
		t.Fatal("connected over TLS without a client certificate")
	} else if !strings.Contains(err.Error(), o.Broker) {
		t.Errorf("error %q does not name the broker", err)
	}
}

type pkiFiles struct{ ca, serverCert, serverKey, clientCert, clientKey string }

// writePKI writes a throw-away CA, a server certificate for 127.0.0.1 and
// a client certificate for gw-a, made by internal/pki (p2pgrid certs).
func writePKI(t *testing.T, dir string) pkiFiles {
	t.Helper()
	ca, err := pki.NewCA("p2pgrid test CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := ca.IssueServer([]string{"127.0.0.1"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cli, err := ca.IssueClient("gw-a", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	f := pkiFiles{
		ca:         filepath.Join(dir, "ca.crt"),
		serverCert: filepath.Join(dir, "server.crt"), serverKey: filepath.Join(dir, "server.key"),
		clientCert: filepath.Join(dir, "client.crt"), clientKey: filepath.Join(dir, "client.key"),
	}
	if err := ca.WriteFiles(f.ca, filepath.Join(dir, "ca.key")); err != nil {
		t.Fatal(err)
	}
	if err := srv.WriteFiles(f.serverCert, f.serverKey); err != nil {
		t.Fatal(err)
	}
	if err := cli.WriteFiles(f.clientCert, f.clientKey); err != nil {
		t.Fatal(err)
	}
	return f
}

// TestShippedMosquittoConf runs Mosquitto with configs/mosquitto/mosquitto.conf
// as shipped (ports and paths aside): it starts, it enforces the ACL, and
// its persistence keeps the retained result across a clean restart.
func TestShippedMosquittoConf(t *testing.T) {
	testtool.Integration(t)
	testtool.Require(t, "mosquitto", "apt-get install mosquitto mosquitto-clients")
	m := mqtttest.StartShipped(t, mosquittoUsers)

	gwA := connect(t, mosquittoOptions(m, "gw-a"))
	gwB := connect(t, mosquittoOptions(m, "gw-b"))
	clearer := connect(t, mosquittoOptions(m, "operator"))
	orders := subscribe(t, gwB, "p2pgrid/v1/c1/orders/+")
	forged := msg{"p2pgrid/v1/c1/orders/gw-b", "forged"}
	publish(t, gwA, forged.topic, forged.payload, false)
	publish(t, gwA, ordersA, "own order", false)
	orders.waitForMsg(t, msg{ordersA, "own order"})
	time.Sleep(quiet)
	if orders.has(forged) {
		t.Fatalf("the shipped configuration let a gateway forge an order: %v", orders.all())
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if _, err := mqtt.Connect(ctx, options(m.URL, "anonymous")); !errors.Is(err, packets.ErrorRefusedNotAuthorised) {
		t.Fatalf("a client without a password: %v, want refused as not authorised", err)
	}

	publish(t, clearer, "p2pgrid/v1/c1/result/latest", "kept", true)
	m.Stop()
	m.Restart()
	// As the app: with gw-b's login, mosquitto_sub would close gw-b's
	// connection (the shipped use_username_as_clientid).
	if out := mosquittoSub(t, m, "app", "p2pgrid/v1/c1/result/latest"); out != "1 p2pgrid/v1/c1/result/latest kept" {
		t.Fatalf("after a clean restart mosquitto_sub printed %q, want the retained result", out)
	}
}

// A status published with PublishStatus (a gateway's status with alarms) is
// the client's status from then on: a late will of its own on the status
// topic is answered with it, not with the stale OnlinePayload, and so is a
// reconnect, against a real Mosquitto.
func TestMosquittoPublishStatusSurvivesLateWillAndReconnect(t *testing.T) {
	testtool.Integration(t)
	testtool.Require(t, "mosquitto", "apt-get install mosquitto mosquitto-clients")
	m := mqtttest.Start(t, mqtttest.Config{ACLFile: mqtttest.ShippedACL(t), Users: mosquittoUsers})
	gw := connect(t, withStatus(mosquittoOptions(m, "gw-a"), statusA))
	const alarms = `{"state":"online","alarms":[{"kind":"mismatch","interval":"2026-11-22T12:00Z"}]}`
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := gw.PublishStatus(ctx, []byte(alarms)); err != nil {
		t.Fatal(err)
	}
	// The operator's mosquitto_sub reads gw-a's status: only it may
	// (TestShippedACLPrivacy).
	if out := mosquittoSub(t, m, "operator", statusA); out != "1 "+statusA+" "+alarms {
		t.Fatalf("after PublishStatus mosquitto_sub printed %q, want the status with alarms", out)
	}
	// retainedStatus waits until the retained status has been restated
	// (it differs from what the test just made it), and returns it.
	retainedStatus := func(not string) string {
		t.Helper()
		var out string
		eventually(t, wait, "the status to be restated", func() bool {
			out = mosquittoSub(t, m, "operator", statusA)
			return out != "1 "+statusA+" "+not
		})
		return out
	}

	t.Run("late will", func(t *testing.T) {
		// What a late will of an old connection looks like to the client:
		// a live "offline" on its status topic (another connection of the
		// same user may write there).
		// (Its own client id: with gw-a's, each connection would take the
		// other's session over, and the publish race the reconnects.)
		o := mosquittoOptions(m, "gw-a")
		o.ClientID = "gw-a-old"
		old := connect(t, o)
		publish(t, old, statusA, "offline", true)
		if out := retainedStatus("offline"); out != "1 "+statusA+" "+alarms {
			t.Errorf("after a late will the retained status is %q, want the status with alarms", out)
		}
	})

	t.Run("reconnect", func(t *testing.T) {
		m.Kill() // no persistence: the restarted broker has no retained status
		eventually(t, wait, "the client to notice", func() bool { return !gw.Connected() })
		m.Restart()
		eventually(t, wait, "the client to reconnect", gw.Connected)
		eventually(t, wait, "a retained status", func() bool {
			return mosquittoSub(t, m, "operator", statusA) != ""
		})
		if out := mosquittoSub(t, m, "operator", statusA); out != "1 "+statusA+" "+alarms {
			t.Errorf("after a reconnect the retained status is %q, want the status with alarms", out)
		}
	})
}

// TestShippedACLPrivacy runs the shipped mosquitto.conf and acl, with the
// app login's block of configs/mosquitto/README.md appended for gw-a's app:
// every login reads the market; a gateway, and its app, read the gateway's
// own telemetry, status and metered figures and none of a neighbour's; the
// operator reads everything; a tool's login without a block reads only the
// market; the app's publishes, on its own topics and on its home's, are all
// dropped. Live and retained alike.
func TestShippedACLPrivacy(t *testing.T) {
	testtool.Integration(t)
	testtool.Require(t, "mosquitto", "apt-get install mosquitto mosquitto-clients")
	users := map[string]string{"gw-a": "pw-a", "gw-b": "pw-b", "operator": "pw-operator", "app": "pw-app", "gw-a-app": "pw-gw-a-app",
		"dashboard": "pw-dashboard"}
	app := mqtttest.AppBlock(t, "c1", "gw-a", "gw-a-app") + mqtttest.DashboardBlock(t, "c1", "dashboard")
	m := mqtttest.StartShippedWith(t, mqtttest.Shipped{Users: users, ACLAppend: app})
	login := func(user string) mqtt.Options {
		o := options(m.URL, user)
		o.Password = users[user]
		return o
	}

	const c = "p2pgrid/v1/c1/"
	own := func(gw string) []msg {
		var ms []msg
		for _, kind := range []string{"telemetry", "status", "metered"} {
			ms = append(ms, msg{c + kind + "/" + gw, kind + " of " + gw})
		}
		return ms
	}
	market := []msg{
		{c + "orders/gw-a", "order of gw-a"}, {c + "orders/gw-b", "order of gw-b"},
		{c + "book/96", "book"}, {c + "result/96", "result"}, {c + "result/latest", "result"},
		{c + "settlement/96", "settlement"}, {c + "roster", "roster"},
	}
	everything := slices.Concat(market, own("gw-a"), own("gw-b"))
	want := map[string][]msg{
		"gw-a":     slices.Concat(market, own("gw-a")),
		"gw-b":     slices.Concat(market, own("gw-b")),
		"gw-a-app": slices.Concat(market, own("gw-a")),
		"app":      market,
		"operator": everything,
		// The operator's dashboard: every gateway's status, the market.
		"dashboard": slices.Concat(market, []msg{{c + "status/gw-a", "status of gw-a"}, {c + "status/gw-b", "status of gw-b"}}),
	}
	readers := slices.Sorted(maps.Keys(want))

	// Everybody subscribes to everything, then the messages come: each
	// from its publisher, all retained; first the app's attempts.
	clients := map[string]*mqtt.Client{}
	live := map[string]*inbox{}
	for _, user := range readers {
		clients[user] = connect(t, login(user))
		live[user] = subscribe(t, clients[user], "p2pgrid/#")
	}
	for _, kind := range []string{"orders", "telemetry", "status", "metered"} {
		for _, gw := range []string{"gw-a-app", "gw-a"} {
			publish(t, clients["gw-a-app"], c+kind+"/"+gw, "forged by gw-a-app", true)
		}
		for _, gw := range []string{"dashboard", "gw-b"} {
			publish(t, clients["dashboard"], c+kind+"/"+gw, "forged by dashboard", true)
		}
	}
	for _, topic := range []string{c + "result/96", c + "roster", c + "settlement/96"} {
		publish(t, clients["dashboard"], topic, "forged by dashboard", true)
	}
	for _, ms := range everything {
		from := "operator"
		if l := strings.Split(ms.topic, "/"); slices.Contains([]string{"orders", "telemetry", "status", "metered"}, l[3]) {
			from = l[4]
		}
		publish(t, clients[from], ms.topic, ms.payload, true)
	}

	check := func(t *testing.T, how string, got map[string]*inbox) {
		t.Helper()
		for _, user := range readers {
			in := got[user]
			in.waitFor(t, wait, user+"'s "+how+" messages", func(ms []msg) bool {
				for _, w := range want[user] {
					if !slices.Contains(ms, w) {
						return false
					}
				}
				return true
			})
		}
		time.Sleep(quiet) // what is denied, had it come, would have come by now
		for _, user := range readers {
			var extra []msg
			for _, ms := range got[user].all() {
				if !slices.Contains(want[user], ms) {
					extra = append(extra, ms)
				}
			}
			if len(extra) > 0 {
				t.Errorf("%s received %s what it may not read: %v", user, how, extra)
			}
		}
	}
	t.Run("live", func(t *testing.T) { check(t, "live", live) })
	t.Run("retained", func(t *testing.T) {
		// A login is one connection (use_username_as_clientid): each
		// reader closes its first before it subscribes again.
		late := map[string]*inbox{}
		for _, user := range readers {
			clients[user].Close()
			late[user] = subscribe(t, connect(t, login(user)), "p2pgrid/#")
		}
		check(t, "retained", late)
	})
	if t.Failed() {
		t.Logf("the app's and the dashboard's blocks:\n%s", app)
	}
}
