package gateway

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/p2pgrid/p2pgrid/gateway/protocol"
	"github.com/p2pgrid/p2pgrid/internal/testtool"
)

// An alarm reaches the broker and stays there: the gateway's retained
// status on a real Mosquitto carries it (the MQTT client no longer takes it
// for a late will and restores an alarm-free status), a neighbour's app
// reading the retained status sees it, and /healthz says degraded.
func TestAlarmReachesMosquitto(t *testing.T) {
	testtool.Integration(t)
	m := startCommunityMosquitto(t)
	h := newHarness(t, m.URL)
	interval := h.trade(t0.Add(15*time.Minute), "operator")

	// The operator signs a result that is not the book's clearing.
	op := h.gw("operator")
	good := mustResult(t, mustRetained(t, m.URL, op.topics.Result(interval)))
	bad := strings.Replace(string(good.Result), `"price":"0.08"`, `"price":"0.2"`, -1)
	cheat, err := protocol.EncodeResult(testKey("operator"), "c1", interval, "operator", []byte(bad))
	if err != nil {
		t.Fatal(err)
	}
	if err := h.clients["operator"].Publish(context.Background(), op.topics.Result(interval), cheat, true); err != nil {
		t.Fatal(err)
	}
	h.waitFor("home2 to raise the alarm", func() bool { return len(h.gw("home2").Alarms()) == 1 })
	// Give a wrongly restored status time to land, then read what the
	// broker retains, as a neighbour's app would.
	time.Sleep(500 * time.Millisecond)
	st, err := protocol.DecodeStatus(mustRetained(t, m.URL, op.topics.Status("home2")))
	if err != nil {
		t.Fatal(err)
	}
	if st.State != protocol.StateOnline || len(st.Alarms) != 1 || st.Alarms[0].Kind != protocol.AlarmMismatch || st.Alarms[0].Interval != interval {
		t.Fatalf("home2's retained status on Mosquitto: %+v, want online with the mismatch alarm of %s", st, interval)
	}
	if hl := h.gw("home2").Health(); hl.Status != "degraded" || hl.MQTT != "connected" || hl.Alarms != 1 {
		t.Errorf("home2 health with an open alarm: %+v", hl)
	}
}

// mustRetained reads the retained message on topic with mosquitto_sub, as
// the app user.
func mustRetained(t *testing.T, url, topic string) []byte { // as home2's app: its status, and the market
	t.Helper()
	bin := testtool.Require(t, "mosquitto_sub", "apt-get install mosquitto-clients")
	host, port, _ := strings.Cut(strings.TrimPrefix(url, "tcp://"), ":")
	out, err := exec.Command(bin, "-h", host, "-p", port, "-u", "home2-app", "-P", "pw-home2-app", "-t", topic,
		"-C", "1", "-W", "10", "--retained-only").Output()
	if err != nil {
		t.Fatalf("mosquitto_sub %s: %v", topic, err)
	}
	return []byte(strings.TrimSpace(string(out)))
}

// Someone with broker access keeps connecting with a gateway's client id
// (on a broker that does not bind ids to logins): the gateway is kicked off
// again and again, raises connection_unstable, and says so in its retained
// status.
func TestSessionTakeoverRaisesAlarm(t *testing.T) {
	testtool.Integration(t)
	pub := testtool.Require(t, "mosquitto_pub", "apt-get install mosquitto-clients")
	m := startCommunityMosquitto(t)
	h := newHarness(t, m.URL)
	host, port, _ := strings.Cut(strings.TrimPrefix(m.URL, "tcp://"), ":")
	for i := 1; i <= 3; i++ {
		h.waitFor("home2 connected", h.clients["home2"].Connected)
		// The app's login, home2's client id.
		exec.Command(pub, "-h", host, "-p", port, "-i", "it-home2", "-u", "app", "-P", "pw-app",
			"-t", "p2pgrid/v1/c1/takeover", "-m", "x", "-q", "1").Run()
		h.waitFor("the takeover noticed", func() bool { return h.clients["home2"].LostRecently(time.Minute) >= i })
	}
	h.waitFor("home2 connected again", h.clients["home2"].Connected)
	h.advance(h.now().Add(5 * time.Second))
	a := h.gw("home2").Alarms()
	if len(a) != 1 || a[0].Kind != protocol.AlarmConnectionUnstable {
		t.Fatalf("home2 alarms after 3 takeovers: %+v", a)
	}
	h.waitFor("the alarm in home2's retained status", func() bool {
		st, err := protocol.DecodeStatus(mustRetained(t, m.URL, h.gw("home2").topics.Status("home2")))
		return err == nil && len(st.Alarms) == 1 && st.Alarms[0].Kind == protocol.AlarmConnectionUnstable
	})
}
